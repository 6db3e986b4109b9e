//! gRPC services: thin adapters from `casman.v1` messages to the
//! application layer ([`crate::context`]). Handlers never write SQL or
//! audit: a request that changes a database calls one `Context` method with
//! the request's [`caller`]. Errors map to status codes in [`status`].

pub mod assembly;
pub mod backups;
pub mod caller;
pub mod changes;
pub mod daemon;
pub mod database;
pub mod health;
pub mod labels;
pub mod parts;
pub mod positions;
pub mod snap;
pub mod status;
pub mod streaming;
pub mod sync;
pub mod sync_status;

use std::time::Duration;

use tonic::transport::server::Router;
use tower::layer::util::{Identity, Stack};

use crate::{context::Context, rpc_metrics::RpcMetricsLayer};

/// The server's router: every request measured by [`RpcMetricsLayer`].
pub type ApiRouter = Router<Stack<RpcMetricsLayer, Identity>>;

/// Builds the router with every casman service, health and reflection,
/// each request counted and timed (`crate::rpc_metrics`).
/// Streams that follow the daemon (the change feed) end when `stop` turns true.
pub async fn router(
    ctx: Context,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<ApiRouter, crate::error::Error> {
    // Per service, on request; casman.v1.Backups follows the backups' health.
    let health = tonic_health::pb::health_server::HealthServer::new(health::HealthApi::new(ctx.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(casman_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| crate::error::Error::internal("building reflection service", e))?;
    let daemon = casman_proto::v1::daemon_server::DaemonServer::new(daemon::DaemonApi::new(ctx.clone()));
    let parts_svc = casman_proto::v1::parts_server::PartsServer::new(parts::PartsApi::new(ctx.clone()));
    let database_svc =
        casman_proto::v1::database_server::DatabaseServer::new(database::DatabaseApi::new(ctx.clone()));
    let positions_svc =
        casman_proto::v1::positions_server::PositionsServer::new(positions::PositionsApi::new(ctx.clone()));
    let snap_svc =
        casman_proto::v1::snap_boards_server::SnapBoardsServer::new(snap::SnapApi::new(ctx.clone()));
    let sync_svc = casman_proto::v1::sync_server::SyncServer::new(sync::SyncApi::new(ctx.clone()));
    let assembly_svc =
        casman_proto::v1::assembly_server::AssemblyServer::new(assembly::AssemblyApi::new(ctx.clone()));
    let labels_svc = casman_proto::v1::labels_server::LabelsServer::new(labels::LabelsApi::new(ctx.clone()));
    let changes_svc =
        casman_proto::v1::changes_server::ChangesServer::new(changes::ChangesApi::new(ctx.clone(), stop));
    let backups_svc =
        casman_proto::v1::backups_server::BackupsServer::new(backups::BackupsApi::new(ctx.clone()));
    Ok(tonic::transport::Server::builder()
        .layer(RpcMetricsLayer::new(ctx.rpc_metrics().clone()))
        // Pings keep a client that answers them from looking idle (`server.idle_timeout`).
        // An unanswered ping closes the connection after the timeout.
        .http2_keepalive_interval(Some(Duration::from_secs(30).min(ctx.config().server.idle_timeout / 2)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20).min(ctx.config().server.idle_timeout / 2)))
        .add_service(health)
        .add_service(reflection)
        .add_service(daemon)
        .add_service(parts_svc)
        .add_service(database_svc)
        .add_service(assembly_svc)
        .add_service(backups_svc)
        .add_service(sync_svc)
        .add_service(positions_svc)
        .add_service(snap_svc)
        .add_service(labels_svc)
        .add_service(changes_svc))
}

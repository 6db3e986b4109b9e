//! gRPC services: thin adapters from `casman.v1` messages to the domain.
//! Handlers never write SQL; errors map to status codes in [`status`].

pub mod daemon;
pub mod status;

use std::time::Duration;

use tonic::transport::server::Router;
use tonic_health::ServingStatus;

use crate::context::Context;

/// Builds the router with every casman service, health and reflection.
pub async fn router(ctx: Context) -> Result<Router, crate::error::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(casman_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| crate::error::Error::internal("building reflection service", e))?;
    let daemon = casman_proto::v1::daemon_server::DaemonServer::new(daemon::DaemonApi::new(ctx.clone()));
    health_reporter.set_service_status("casman.v1.Daemon", ServingStatus::Serving).await;
    health_reporter.set_service_status("", ServingStatus::Serving).await;
    Ok(tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(health)
        .add_service(reflection)
        .add_service(daemon))
}

//! `casman.v1.Daemon`: status and effective configuration.

use casman_proto::v1::{
    BackendSummary, GetConfigRequest, GetConfigResponse, GetStatusRequest, GetStatusResponse,
    daemon_server::Daemon,
};
use tonic::{Request, Response, Status};

use crate::{context::Context, error::Error};

/// Implementation of the Daemon service.
#[derive(Debug, Clone)]
pub struct DaemonApi {
    ctx: Context,
}

impl DaemonApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        DaemonApi { ctx }
    }
}

#[tonic::async_trait]
impl Daemon for DaemonApi {
    async fn get_status(
        &self,
        _req: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let s = self.ctx.status().await;
        // The backup figures and health (as /metrics and grpc.health.v1).
        let (backups, quota, health) = match crate::metrics::gather(&self.ctx).await {
            Ok(snap) => {
                let (b, q, h) = crate::metrics::status_fields(&snap, jiff::Timestamp::now());
                (b, Some(q), h)
            }
            Err(e) => (
                Vec::new(),
                None,
                casman_proto::v1::BackupHealth {
                    serving: false,
                    problems: vec![format!("could not read the backup state: {e}")],
                    backup_stale_after_seconds: self.ctx.config().health.backup_stale_after.as_secs(),
                },
            ),
        };
        let mut conflicts = Vec::new();
        for db in [crate::db::ASSEMBLED_DB, crate::db::PARTS_DB] {
            // (The status answers whatever fails to read.)
            match self.ctx.backups().conflicts(db).await {
                Ok(list) => conflicts.extend(list.into_iter().map(crate::api::sync_status::conflict_message)),
                Err(e) => {
                    tracing::warn!(database = db, error = %e, "could not read the conflicts for the status")
                }
            }
        }
        Ok(Response::new(GetStatusResponse {
            conflicts,
            version: s.version.into(),
            protocol: casman_proto::PROTOCOL,
            uptime_seconds: s.uptime.as_secs(),
            pid: std::process::id(),
            data_dir: s.data_dir.display().to_string(),
            socket: s.socket.display().to_string(),
            backend: Some(BackendSummary {
                kind: s.backend.kind.into(),
                location: s.backend.location,
                enabled: s.backend.enabled,
            }),
            databases: s
                .databases
                .into_iter()
                .map(|d| casman_proto::v1::DatabaseInfo {
                    name: d.name,
                    path: d.path.display().to_string(),
                    size_bytes: d.size_bytes,
                    schema_version: d.schema_version,
                })
                .collect(),
            site_id: s.site_id,
            started_at: s.started_at,
            backups,
            quota,
            health: Some(health),
        }))
    }

    async fn get_config(
        &self,
        _req: Request<GetConfigRequest>,
    ) -> Result<Response<GetConfigResponse>, Status> {
        let mut shown = self.ctx.config().redacted();
        // Show the backend in effect, not just what was written.
        shown.sync.backend = Some(self.ctx.config().backend());
        let toml =
            toml::to_string_pretty(&shown).map_err(|e| Error::internal("rendering configuration", e))?;
        let json = serde_json::to_string_pretty(&shown)
            .map_err(|e| Error::internal("rendering configuration", e))?;
        Ok(Response::new(GetConfigResponse { toml, json, sources: self.ctx.config_sources().to_vec() }))
    }
}

//! `grpc.health.v1`, answered per service on request. Every casman service
//! is SERVING while requests are served, and so is the overall service
//! (`""`); `casman.v1.Backups` is NOT_SERVING while the backups are not
//! healthy ([`crate::metrics::problems`]: a backup failed and waits for a
//! retry, or the oldest unsaved write is older than
//! `health.backup_stale_after`), SERVING again once that clears. `Check`
//! reads state.db when asked; `Watch` re-reads every [`WATCH_INTERVAL`] and
//! sends each change.

use std::{pin::Pin, time::Duration};

use futures_util::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus, health_server::Health,
};

use crate::{context::Context, metrics};

/// How often a `Watch` re-reads the backup health.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// The services health is reported for (`""` is the server as a whole).
pub const SERVICES: [&str; 10] = [
    "",
    "casman.v1.Daemon",
    "casman.v1.Parts",
    "casman.v1.Database",
    "casman.v1.Assembly",
    "casman.v1.Backups",
    "casman.v1.Labels",
    "casman.v1.Sync",
    "casman.v1.Positions",
    "casman.v1.SnapBoards",
];

/// Implementation of `grpc.health.v1.Health`.
#[derive(Debug, Clone)]
pub struct HealthApi {
    ctx: Context,
}

impl HealthApi {
    /// Health over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        HealthApi { ctx }
    }

    /// The status of `service`, `None` when it is not one of ours.
    async fn status(&self, service: &str) -> Option<ServingStatus> {
        if service == metrics::BACKUP_SERVICE {
            return Some(backup_status(&self.ctx).await);
        }
        SERVICES.contains(&service).then_some(ServingStatus::Serving)
    }
}

/// The status of `casman.v1.Backups`: NOT_SERVING while there are problems,
/// or when the state cannot be read.
pub async fn backup_status(ctx: &Context) -> ServingStatus {
    match metrics::gather(ctx).await {
        Ok(s) if metrics::problems(&s, jiff::Timestamp::now()).is_empty() => ServingStatus::Serving,
        Ok(_) => ServingStatus::NotServing,
        Err(e) => {
            tracing::warn!(error = %e, "health: could not read the backup state");
            ServingStatus::NotServing
        }
    }
}

fn reply(s: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: s as i32 }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthApi {
    async fn check(&self, req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        match self.status(&req.get_ref().service).await {
            Some(s) => Ok(Response::new(reply(s))),
            None => Err(Status::not_found("service not registered")),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        let service = req.into_inner().service;
        let Some(first) = self.status(&service).await else {
            return Err(Status::not_found("service not registered"));
        };
        let me = self.clone();
        let changes = futures_util::stream::unfold((me, service, first), |(me, service, last)| async move {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let now = me.status(&service).await.unwrap_or(ServingStatus::ServiceUnknown);
                if now != last {
                    return Some((Ok(reply(now)), (me, service, now)));
                }
            }
        });
        let changes = futures_util::StreamExt::chain(
            futures_util::stream::once(async move { Ok(reply(first)) }),
            changes,
        );
        Ok(Response::new(Box::pin(changes)))
    }
}

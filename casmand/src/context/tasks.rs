//! Every background task of the daemon, started in one place and waited for
//! at shutdown: the group commit of scans, the quota ledger's writer, the
//! backup scheduler (with its watcher of other programs' writes), the web
//! views, the notifications (`[notify]`), and the systemd watchdog. Request handlers start none.

use std::time::Duration;

use tokio::{sync::watch, task::JoinHandle};

use super::{Context, group_commit};

/// The running tasks, by name.
#[derive(Debug)]
pub struct Tasks {
    running: Vec<(&'static str, JoinHandle<()>)>,
    watchdog: Option<JoinHandle<()>>,
}

/// Starts every background task of `ctx`; each ends when `stop` turns true.
/// `scans` is the receiving end of the context's group commit; `web` the
/// bound web listener, if one is configured; `notify` the receiving end of
/// the backup service's [`crate::notify::Notices`], if `[notify]` sets anything.
pub fn start(
    ctx: &Context,
    scans: group_commit::Writer,
    web: Option<crate::web::Bound>,
    notify: Option<crate::notify::Receiver>,
    stop: watch::Receiver<bool>,
) -> Tasks {
    let dbs = ctx.dbs();
    let mut running = vec![
        (
            "group commit",
            scans.spawn(dbs.assembled.clone(), dbs.state.clone(), ctx.activity().clone(), stop.clone()),
        ),
        ("quota ledger", tokio::spawn(ctx.backups().quota().clone().flusher(stop.clone()))),
        ("scheduler", crate::schedule::spawn(ctx.clone(), stop.clone())),
    ];
    if let Some(rx) = notify {
        let c = ctx.config();
        let task =
            crate::notify::run(rx, c.notify.clone(), c.site_id.clone(), c.data_dir.clone(), stop.clone());
        running.push(("notifications", tokio::spawn(task)));
    }
    if let Some(w) = web {
        running.push(("web views", tokio::spawn(crate::web::serve(w, ctx.clone(), stop.clone()))));
    }
    let watchdog = crate::systemd::watchdog_interval().map(|i| tokio::spawn(crate::systemd::watchdog(i)));
    Tasks { running, watchdog }
}

impl Tasks {
    /// Waits for each task to end (`stop` has turned true), at most
    /// `timeout` each; a task that does not end in time is named in the log
    /// and left (whatever it had not finished is kept in state.db for the
    /// next start). The group commit writes what was queued before it ends.
    pub async fn stopped(self, timeout: Duration) {
        if let Some(w) = self.watchdog {
            w.abort();
        }
        for (name, task) in self.running {
            match tokio::time::timeout(timeout, task).await {
                Ok(Ok(())) => tracing::debug!(task = name, "stopped"),
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "a background task failed"),
                Err(_) => {
                    tracing::warn!(task = name, timeout = ?timeout, "did not stop in time; its pending work is kept for the next start")
                }
            }
        }
    }
}

//! The scheduler: backs up by itself when writes accumulate
//! (`backup_on_scan_count`), when unsaved writes get old (`backup_on_hours`),
//! and at once after parts generation; retries failed backups with capped
//! exponential backoff (jitter) until they land; counts writes made to the
//! database files by other programs; keeps the sd_notify STATUS= line current.
//!
//! It sleeps until the next thing is due or something happens: it never
//! polls. Everything it must not forget (counts, pending backups) is in
//! state.db, so a crash or restart loses nothing.

mod external;
mod triggers;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::sync::{
    broadcast::{self, error::RecvError},
    watch,
};

use crate::{
    backup::{manifest::Reason, service::Progress},
    context::Context,
    db::activity::Activity,
    db::{ASSEMBLED_DB, PARTS_DB, sync_state},
    notify::Report,
    systemd, timestamp,
};

pub use triggers::{Due, backoff};

/// Databases the scheduler backs up.
const DATABASES: [&str; 2] = [PARTS_DB, ASSEMBLED_DB];

/// Starts the scheduler; it stops when `stop` becomes true.
pub fn spawn(ctx: Context, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let watcher = external::spawn(ctx.clone(), stop.clone());
    tokio::spawn(async move {
        Scheduler { ctx, window_logged: AtomicU64::new(0), publish_failures: Default::default() }
            .run(stop)
            .await;
        let _ = watcher.await;
    })
}

struct Scheduler {
    ctx: Context,
    /// Per database, failed publishing attempts in a row and when the next
    /// may start.
    publish_failures: std::sync::Mutex<std::collections::HashMap<&'static str, (u32, tokio::time::Instant)>>,
    /// The effective replication window last logged, in ms (0: as configured).
    window_logged: AtomicU64,
}

/// Writes arriving within this window after one are looked at together.
const COALESCE: Duration = Duration::from_millis(50);

/// How long after a start maintenance waits at least (unless the interval is shorter).
const STARTUP_GRACE: Duration = Duration::from_secs(30 * 60);

/// When maintenance is due: `maintenance_interval` after the last run. A run
/// missed while the daemon was down (or never made) happens after the startup grace;
/// after a failed attempt the next waits at least an interval (capped at an hour).
async fn maintenance_due(
    ctx: &Context,
    started: tokio::time::Instant,
    last_attempt: Option<tokio::time::Instant>,
) -> tokio::time::Instant {
    let interval = ctx.config().sync.maintenance_interval;
    let now = tokio::time::Instant::now();
    // Never in the first minutes after a start (a fresh install, a reboot in
    // the field): the daemon's first job is to serve.
    let soon = started + interval.min(STARTUP_GRACE);
    let last = crate::backup::maintenance::last_maintenance(&ctx.dbs().state).await;
    let due = match last.and_then(|(at, _)| at.parse::<jiff::Timestamp>().ok()) {
        Some(at) => {
            let next =
                at.checked_add(jiff::SignedDuration::try_from(interval).unwrap_or_default()).unwrap_or(at);
            now + Duration::try_from(next.duration_since(jiff::Timestamp::now())).unwrap_or(Duration::ZERO)
        }
        None => now,
    };
    let due = due.max(soon);
    match last_attempt {
        Some(t) => due.max(t + interval.min(Duration::from_secs(3600))),
        None => due,
    }
}

fn no_progress(_: Progress) {}

impl Scheduler {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut activity = self.ctx.activity().subscribe();
        if self.ctx.config().sync.sync_on_start {
            self.sync_on_start().await;
        }
        self.work_due().await;
        let started = tokio::time::Instant::now();
        let mut last_attempt = None;
        let pull_every = self.ctx.config().sync.pull_every;
        let mut next_pull = started + pull_every.min(Duration::from_secs(60));
        loop {
            let maintenance_at = maintenance_due(&self.ctx, started, last_attempt).await;
            let wait = self.next_wakeup().await;
            tokio::select! {
                _ = stop.changed() => break,
                event = activity.recv() => {
                    // Under a burst of writes the schedule is looked at once
                    // per burst, not once per write: what else arrived within
                    // COALESCE is taken with this event.
                    let mut events = vec![event];
                    if matches!(events[0], Ok(Activity::Write { .. }) | Err(RecvError::Lagged(_))) {
                        tokio::time::sleep(COALESCE).await;
                    }
                    loop {
                        match activity.try_recv() {
                            Ok(e) => events.push(Ok(e)),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => events.push(Err(RecvError::Lagged(n))),
                            Err(_) => break,
                        }
                    }
                    if events.iter().any(|e| matches!(e, Err(RecvError::Closed))) {
                        break;
                    }
                    let generated = events.iter().any(|e| matches!(e, Ok(Activity::PartsGenerated { .. })));
                    if generated && self.ctx.config().sync.backup_after_parts_generation {
                        self.back_up(PARTS_DB, Reason::PartsGenerated).await;
                    }
                    if events.iter().any(|e| {
                        matches!(e, Ok(Activity::Write { .. } | Activity::PartsGenerated { .. }) | Err(RecvError::Lagged(_)))
                    }) {
                        self.work_due().await;
                    }
                }
                _ = tokio::time::sleep_until(maintenance_at), if !self.ctx.backups().store().is_none() => {
                    last_attempt = Some(tokio::time::Instant::now());
                    self.maintain().await
                }
                _ = tokio::time::sleep_until(next_pull),
                    if !pull_every.is_zero() && !self.ctx.backups().store().is_none() => {
                    self.exchange().await;
                    next_pull = tokio::time::Instant::now() + pull_every;
                }
                _ = tokio::time::sleep(wait) => self.work_due().await,
            }
        }
    }

    /// The replication window in effect (wider than `replicate_within`
    /// while the month's Class A use is ahead of pace); logged when it
    /// changes by a tenth or more, or returns to the configured one.
    async fn replication_window(&self) -> Duration {
        if self.ctx.config().sync.replicate_within.is_zero() {
            return Duration::ZERO;
        }
        let report = self.ctx.backups().quota().report().await;
        let w = crate::backup::quota::replication_window(
            &self.ctx.config().sync,
            &report,
            jiff::Timestamp::now(),
        );
        let now = if w.widened() { w.effective.as_millis().max(1) as u64 } else { 0 };
        let last = self.window_logged.load(Ordering::Relaxed);
        let moved = if last == 0 || now == 0 { last != now } else { now.abs_diff(last) * 10 >= last };
        if moved {
            self.window_logged.store(now, Ordering::Relaxed);
            let fmt = |d: Duration| casman_proto::duration::format(Duration::from_secs(d.as_secs()));
            tracing::info!(
                configured = %fmt(w.configured),
                effective = %fmt(w.effective),
                why = %w.reason(),
                "{}",
                if w.widened() { "replication window widened" } else { "replication window back to the configured one" }
            );
        }
        w.effective
    }

    /// How long until something is due (capped, so clock changes are noticed).
    async fn next_wakeup(&self) -> Duration {
        // Without a store nothing is ever due (work_due only updates the
        // status): waking at a trigger's time would wake again at once, in
        // a loop, while writes wait for a backup that never comes.
        if self.ctx.backups().store().is_none() {
            return Duration::from_secs(3600);
        }
        let window = self.replication_window().await;
        match triggers::next_due(&self.ctx, window).await {
            Ok(Some(at)) => {
                let now = tokio::time::Instant::now();
                let mut wait = at.saturating_duration_since(now).min(Duration::from_secs(3600));
                // A publication waiting out its backoff is not due before it ends.
                let backoff_ends = {
                    let map = self.publish_failures.lock().unwrap_or_else(|p| p.into_inner());
                    map.values().map(|(_, t)| *t).min()
                };
                if let Some(t) = backoff_ends.filter(|t| *t > now && wait < Duration::from_secs(1)) {
                    wait = t.saturating_duration_since(now).max(Duration::from_secs(1));
                }
                wait
            }
            Ok(None) => Duration::from_secs(3600),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the schedule; retrying in a minute");
                Duration::from_secs(60)
            }
        }
    }

    /// Runs every backup that is due now: count or time triggers, and retries.
    async fn work_due(&self) {
        if self.ctx.backups().store().is_none() {
            self.update_status().await;
            return;
        }
        let window = self.replication_window().await;
        for db in DATABASES {
            match triggers::due(&self.ctx, db, window).await {
                Ok(Some(Due::Publish)) => self.publish(db).await,
                Ok(Some(due)) => self.back_up(db, due.reason()).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(database = db, error = %e, "cannot read write activity"),
            }
        }
        self.update_status().await;
    }

    /// Backs `db` up; on failure the backup stays pending with its next attempt
    /// scheduled, and the write counter is left as it is.
    async fn back_up(&self, db: &'static str, reason: Reason) {
        if self.ctx.backups().store().is_none() {
            return;
        }
        let state = &self.ctx.dbs().state;
        match self.ctx.backups().backup(db, reason, &no_progress).await {
            Ok(outcome) => {
                // The failure this ends, as state.db kept it (for a recovery
                // after a restart: see `crate::notify::gate`).
                let was_failing = match self.ctx.backups().notices().enabled() {
                    true => sync_state::pending(state).await.ok().and_then(|p| {
                        let p = p.into_iter().find(|p| p.database == db)?;
                        Some((p.first_failed_at.parse().ok()?, u32::try_from(p.attempts).unwrap_or(u32::MAX)))
                    }),
                    false => None,
                };
                if let Err(e) = sync_state::backup_landed(state, db).await {
                    tracing::warn!(database = db, error = %e, "could not clear the pending backup");
                }
                // The changes go to the other sites with the version.
                if let Err(e) = self.ctx.backups().publish_changes(db).await {
                    tracing::warn!(database = db, error = %e, "could not publish the changes; the next pull tries again");
                }
                tracing::info!(
                    database = db,
                    key = %outcome.version.key,
                    uploaded = outcome.uploaded,
                    reason = reason.as_str(),
                    "automatic backup stored"
                );
                let key = outcome.version.key;
                let stored = Report::BackupStored { database: db.into(), key, was_failing };
                self.ctx.backups().notices().report(stored);
            }
            Err(e) => {
                let attempts = sync_state::pending(state)
                    .await
                    .ok()
                    .and_then(|p| p.into_iter().find(|p| p.database == db).map(|p| p.attempts))
                    .unwrap_or(0);
                let cfg = &self.ctx.config().sync;
                let wait = backoff(attempts as u32, cfg.retry_initial, cfg.retry_max, rand::random::<f64>());
                let next = jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::ZERO))
                    .unwrap_or_else(|_| jiff::Timestamp::now());
                let next = timestamp::format(next);
                tracing::warn!(database = db, error = %e, retry_at = %next, "backup failed; it stays pending");
                if let Err(e2) =
                    sync_state::backup_failed(state, db, reason.as_str(), &e.to_string(), &next).await
                {
                    tracing::error!(database = db, error = %e2, "could not record the pending backup");
                }
                self.report_failure(db, &e).await;
            }
        }
        self.update_status().await;
    }

    /// Publishes this site's new changes of `db` (continuous protection
    /// with the exchange); after a failure, the next attempt waits as a
    /// failed backup's would (capped exponential backoff with jitter).
    async fn publish(&self, db: &'static str) {
        let now = tokio::time::Instant::now();
        let (attempts, not_before) = self.publish_backoff(db);
        if not_before.is_some_and(|t| t > now) {
            return;
        }
        match self.ctx.backups().publish_changes(db).await {
            Ok((segments, changes)) => {
                self.set_publish_backoff(db, None);
                tracing::debug!(database = db, segments, changes, "continuous protection: changes published");
            }
            Err(e) => {
                let cfg = &self.ctx.config().sync;
                let wait = backoff(attempts, cfg.retry_initial, cfg.retry_max, rand::random::<f64>());
                tracing::warn!(database = db, error = %e, retry_in = ?wait, "publishing changes failed");
                self.set_publish_backoff(db, Some((attempts + 1, now + wait)));
            }
        }
    }

    fn publish_backoff(&self, db: &str) -> (u32, Option<tokio::time::Instant>) {
        let map = self.publish_failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(db).map_or((0, None), |(n, t)| (*n, Some(*t)))
    }

    fn set_publish_backoff(&self, db: &'static str, v: Option<(u32, tokio::time::Instant)>) {
        let mut map = self.publish_failures.lock().unwrap_or_else(|p| p.into_inner());
        match v {
            Some(v) => map.insert(db, v),
            None => map.remove(db),
        };
    }

    /// Publishes this site's changes and applies the other sites' (every
    /// `sync.pull_every`); a failure is logged and tried again next time.
    async fn exchange(&self) {
        if let Err(e) = self.ctx.exchange(&DATABASES).await {
            tracing::warn!(error = %e, "exchanging changes with the other sites failed; trying again later");
        }
    }

    /// Reports the failed backup of `db` (`crate::notify`): attempts in a
    /// row and since when, as state.db now holds them; a full disk as such.
    async fn report_failure(&self, db: &str, e: &crate::error::Error) {
        let notices = self.ctx.backups().notices();
        if !notices.enabled() {
            return;
        }
        let now = jiff::Timestamp::now();
        if e.disk_full() {
            notices.event(crate::notify::Event::disk_full(Some(db), &e.to_string(), now));
        }
        let pending = sync_state::pending(&self.ctx.dbs().state).await.ok().unwrap_or_default();
        let p = pending.into_iter().find(|p| p.database == db);
        let attempts = p.as_ref().map_or(1, |p| u32::try_from(p.attempts).unwrap_or(u32::MAX));
        // state.db keeps whole seconds: a first failure is now, precisely
        // (`notify.after` counts from it); an older one (the daemon
        // restarted while it went on) is as recorded.
        let since = match p {
            Some(p) if attempts > 1 => p.first_failed_at.parse().unwrap_or(now),
            _ => now,
        };
        notices.report(Report::BackupFailed { database: db.into(), since, attempts, error: e.to_string() });
    }

    /// Runs storage maintenance (the weekly timer).
    async fn maintain(&self) {
        match self.ctx.backups().maintain(&no_progress).await {
            Ok(report) => tracing::info!(summary = %report.summary(), "scheduled maintenance done"),
            Err(e) => {
                tracing::warn!(error = %e, "scheduled maintenance failed; it runs again at the next interval")
            }
        }
    }

    /// With `sync_on_start` (CAsMan's `CASMAN_AUTO_SYNC_ON_INSTALL`): fetch
    /// newer versions from other sites, by the sync rules: a database with
    /// local changes is never replaced (a divergence is stored and logged).
    /// An unreachable store is logged; the daemon serves regardless.
    async fn sync_on_start(&self) {
        for db in DATABASES {
            match self.ctx.sync_on_start(db, &no_progress).await {
                Ok(crate::backup::sync::SyncOutcome::Pulled { version, .. }) => {
                    tracing::info!(database = db, key = %version.key, site = %version.site, "sync on start: pulled");
                }
                Ok(crate::backup::sync::SyncOutcome::Diverged(d)) => tracing::warn!(
                    database = db,
                    site = %d.remote.site,
                    remote = %d.remote.key,
                    local = %d.local.key,
                    "sync on start: diverged from another site; local changes kept (casmanctl sync merge)"
                ),
                Ok(_) => tracing::info!(database = db, "sync on start: nothing to fetch"),
                Err(e) => {
                    tracing::warn!(database = db, error = %e, "sync on start failed; serving the local database")
                }
            }
        }
    }

    /// The one-line sd_notify status: writes waiting and pending retries.
    async fn update_status(&self) {
        let state = &self.ctx.dbs().state;
        let mut parts = Vec::new();
        for db in DATABASES {
            if let Ok(a) = sync_state::activity(state, db).await {
                parts.push(format!("{db} {} unsaved", a.writes_since_backup));
            }
        }
        let pending = sync_state::pending(state).await.map(|p| p.len()).unwrap_or(0);
        let backend = self.ctx.config().backend().as_str();
        let line = if pending > 0 {
            format!("serving; {}; {pending} backup(s) pending retry ({backend})", parts.join(", "))
        } else {
            format!("serving; {} ({backend})", parts.join(", "))
        };
        systemd::status(&line);
    }
}

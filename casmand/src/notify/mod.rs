//! Notifications (`[notify]`, issue 31): telling someone when protection
//! fails, without anyone watching a screen.
//!
//! * The places where things happen hold a [`Notices`] handle and report
//!   there, in one line each, without waiting: the scheduler (a backup
//!   failed, a backup was stored), the backup service (quota warning and
//!   block at its quota check, a failed verification in maintenance, a lost
//!   and a rebuilt manifest). Reports go into a bounded queue
//!   ([`QUEUE`]); when it is full the report is dropped with a warning: a
//!   write or a backup never waits for a notification.
//! * One background task ([`run`], started by `crate::context::tasks`)
//!   drains it through the [`gate::Gate`] (what is told, once, and when)
//!   and hands each event to its sinks: `notify.command`
//!   ([`command`]) and `notify.webhook` ([`http`], retried with backoff),
//!   each draining its own bounded queue, so a slow webhook delays neither
//!   the command nor the next events. The success ping is sent after a
//!   stored backup, at most once per `notify.success_ping_every`.
//! * The same task reads the free space of the data directory's file
//!   system every [`DISK_CHECK`] (`disk_full`, whatever was refused).
//! * The JSON of an event is [`event::Event::to_json`]. URLs are shown
//!   only redacted ([`redact`]).

pub mod command;
pub mod event;
pub mod gate;
pub mod http;
pub mod redact;

use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use event::{Event, Kind};

use crate::config::NotifyConfig;

/// Reports waiting for the notification task, and events waiting for each sink.
pub const QUEUE: usize = 256;

/// What the places where things happen report.
#[derive(Debug, Clone)]
pub enum Report {
    /// A backup of `database` failed: `attempts` in a row since `since`.
    BackupFailed {
        /// The database.
        database: String,
        /// When the first of the failed attempts in a row was made.
        since: jiff::Timestamp,
        /// Failed attempts in a row.
        attempts: u32,
        /// The last error, as told to a client.
        error: String,
    },
    /// A backup of `database` was stored (or found unchanged) as `key`.
    BackupStored {
        /// The database.
        database: String,
        /// The version now describing it.
        key: String,
        /// The failure it ends, as state.db kept it: since when, and the
        /// failed attempts.
        was_failing: Option<(jiff::Timestamp, u32)>,
    },
    /// Anything else, told once per its key.
    Event(Event),
}

/// Where reports go: cheap to clone, never blocks. A handle made by
/// [`Notices::off`] drops everything (nothing is configured, or a test).
#[derive(Debug, Clone, Default)]
pub struct Notices {
    tx: Option<mpsc::Sender<Report>>,
}

/// The receiving end of [`Notices`], drained by [`run`].
#[derive(Debug)]
pub struct Receiver(mpsc::Receiver<Report>);

impl Notices {
    /// A handle that drops every report.
    pub fn off() -> Notices {
        Notices { tx: None }
    }

    /// A handle and its receiver when `cfg` sets anything to notify; an
    /// [`Notices::off`] handle otherwise.
    pub fn channel(cfg: &NotifyConfig) -> (Notices, Option<Receiver>) {
        if !cfg.any() {
            return (Notices::off(), None);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        (Notices { tx: Some(tx) }, Some(Receiver(rx)))
    }

    /// Whether reports go anywhere.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues `report` without waiting (dropped, with a warning, when the
    /// queue is full).
    pub fn report(&self, report: Report) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::error::TrySendError::Full(r)) = tx.try_send(report) {
            tracing::warn!(report = ?r, "notify: the queue is full; a report was dropped");
        }
    }

    /// Queues `event`.
    pub fn event(&self, event: Event) {
        self.report(Report::Event(event));
    }
}

/// The sinks of one daemon: a queue per sink, each drained by its own task.
struct Sinks {
    command: Option<mpsc::Sender<serde_json::Value>>,
    webhook: Option<mpsc::Sender<serde_json::Value>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sinks {
    fn start(cfg: &NotifyConfig, http: &http::Http, stop: &watch::Receiver<bool>) -> Sinks {
        let mut tasks = Vec::new();
        let command = cfg.command.clone().map(|program| {
            let (tx, mut rx) = mpsc::channel::<serde_json::Value>(QUEUE);
            let timeout = cfg.timeout;
            tasks.push(tokio::spawn(async move {
                while let Some(json) = rx.recv().await {
                    match command::run(&program, &json, timeout).await {
                        Ok(()) => tracing::info!(event = %json["event"], "notify: command run"),
                        Err(e) => {
                            tracing::warn!(event = %json["event"], error = %e, "notify: the command failed")
                        }
                    }
                }
            }));
            tx
        });
        let webhook = cfg.webhook.clone().map(|url| {
            let (tx, mut rx) = mpsc::channel::<serde_json::Value>(QUEUE);
            let (http, mut stop) = (http.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(json) = rx.recv().await {
                    if *stop.borrow() {
                        tracing::warn!(event = %json["event"], "notify: webhook not delivered: casmand is stopping");
                        continue;
                    }
                    let body = json.to_string();
                    match http.post_with_retries(&url, body.as_bytes(), &mut stop).await {
                        Ok(attempts) => tracing::info!(
                            event = %json["event"],
                            to = %redact::url(&url),
                            attempts,
                            "notify: webhook delivered"
                        ),
                        Err(e) => tracing::warn!(event = %json["event"], error = %e, "notify: webhook not delivered; given up"),
                    }
                }
            }));
            tx
        });
        Sinks { command, webhook, tasks }
    }

    fn deliver(&self, json: &serde_json::Value) {
        for (name, tx) in [("command", &self.command), ("webhook", &self.webhook)] {
            if let Some(tx) = tx
                && tx.try_send(json.clone()).is_err()
            {
                tracing::warn!(sink = name, event = %json["event"], "notify: the queue is full; an event was dropped");
            }
        }
    }

    /// Closes the queues and waits for what is queued to be delivered
    /// (webhook retries end on `stop`; the caller bounds the wait).
    async fn close(self) {
        drop(self.command);
        drop(self.webhook);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Tells `event` now through `cfg`'s command and webhook (the webhook
/// retried as usual), outside the daemon: `casmand --notify-failed UNIT`.
/// Returns what failed, one line each.
pub async fn tell_now(cfg: &NotifyConfig, site: &str, event: &Event) -> Vec<String> {
    let json = event.to_json(site);
    let mut failed = Vec::new();
    if let Some(program) = &cfg.command
        && let Err(e) = command::run(program, &json, cfg.timeout).await
    {
        failed.push(e.to_string());
    }
    if let Some(url) = &cfg.webhook {
        let (_keep, mut never) = watch::channel(false);
        let body = json.to_string();
        if let Err(e) = http::Http::new(cfg.timeout).post_with_retries(url, body.as_bytes(), &mut never).await
        {
            failed.push(format!("notify.webhook {e}"));
        }
    }
    failed
}

/// How often the free space of the data directory's file system is read
/// (one `statvfs`).
pub const DISK_CHECK: Duration = Duration::from_secs(10);

/// Bytes available to casmand on the file system holding `dir`.
// The counts are u64 on 64-bit Linux, narrower elsewhere.
#[allow(clippy::useless_conversion)]
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size())))
}

/// How long until `at` (0 if past), at most an hour.
fn until(at: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO).min(Duration::from_secs(3600))
}

/// The notification task: drains `rx` through the gate to the sinks until
/// `stop` turns true, and reads the free space of `data_dir` every
/// [`DISK_CHECK`]. `site` is this site's id, in every event.
pub async fn run(
    rx: Receiver,
    cfg: NotifyConfig,
    site: String,
    data_dir: std::path::PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let Receiver(mut rx) = rx;
    let mut disk = tokio::time::interval(DISK_CHECK);
    disk.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shown_dir = data_dir.display().to_string();
    let mut gate = gate::Gate::new(cfg.after, cfg.after_attempts, cfg.success_ping_every);
    let http = http::Http::new(cfg.timeout);
    let sinks = Sinks::start(&cfg, &http, &stop);
    let tell = |sinks: &Sinks, e: Event| {
        let json = e.to_json(&site);
        tracing::info!(event = e.kind.as_str(), database = e.database.as_deref().unwrap_or(""), message = %e.message, "notify: telling");
        sinks.deliver(&json);
    };
    loop {
        if *stop.borrow() {
            break;
        }
        let wait = gate.next_due().map(|at| until(at, jiff::Timestamp::now()));
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            _ = disk.tick() => {
                let dir = data_dir.clone();
                let free = tokio::task::spawn_blocking(move || free_bytes(&dir)).await.ok().flatten();
                if let Some(e) = free.and_then(|f| gate.disk_space(f, &shown_dir, jiff::Timestamp::now())) {
                    tell(&sinks, e);
                }
            }
            _ = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600))), if wait.is_some() => {
                for e in gate.due(jiff::Timestamp::now()) {
                    tell(&sinks, e);
                }
            }
            report = rx.recv() => {
                let Some(report) = report else { break };
                let now = jiff::Timestamp::now();
                match report {
                    Report::BackupFailed { database, since, attempts, error } => {
                        if let Some(e) = gate.failed(&database, since, attempts, &error, now) {
                            tell(&sinks, e);
                        }
                    }
                    Report::BackupStored { database, key, was_failing } => {
                        if let Some(e) = gate.stored(&database, &key, was_failing, now) {
                            tell(&sinks, e);
                        }
                        if let Some(url) = cfg.success_ping.as_deref()
                            && gate.ping(now)
                        {
                            let (http, url) = (http.clone(), url.to_owned());
                            // Not awaited here: a slow ping delays no event.
                            tokio::spawn(async move {
                                match http.send(&url, None).await {
                                    Ok(_) => tracing::debug!(to = %redact::url(&url), "notify: success ping sent"),
                                    Err(e) => tracing::warn!(error = %e, "notify: success ping failed"),
                                }
                            });
                        }
                    }
                    Report::Event(e) => {
                        if let Some(e) = gate.pass(e) {
                            tell(&sinks, e);
                        }
                    }
                }
            }
        }
    }
    sinks.close().await;
}

//! The application layer: the one door of every change to the databases.
//!
//! Each operation that changes a database (scans, parts, positions, SNAP
//! boards, coordinates, CSV loads, clears, restores, syncs, merges,
//! repairs) is one method of [`Context`], in the file named after what it
//! changes. It validates, writes (scans through the [`group_commit`]),
//! audits with the [`Caller`](caller::Caller) and announces the activity
//! (which drives the backup triggers), in that one place. The front ends
//! are adapters side by side above it: `api` (gRPC), `web` (HTTP) and
//! `schedule`; none writes SQL, audits or counts writes by itself (the
//! audit helpers are private to this module). Nothing here knows a
//! transport. Background tasks start in [`tasks`].

mod backups;
pub mod caller;
mod conflicts;
mod database;
pub mod group_commit;
mod parts;
mod positions;
mod scans;
pub mod tasks;

pub use positions::CoordinatesLoad;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    backup::service::BackupService,
    config::{Backend, Config, Loaded},
    db::Databases,
    db::activity::ActivityBus,
};

/// Cheap-to-clone handle on the daemon's shared state.
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    sources: Vec<String>,
    socket: PathBuf,
    started: Instant,
    started_at: String,
    dbs: Databases,
    activity: ActivityBus,
    admin_gid: Option<u32>,
    backups: BackupService,
    /// The group-commit queue of assembly writes (its writer is one of the
    /// [`tasks`]).
    scans: group_commit::GroupCommit,
    /// Held while parts are generated (numbers are chosen, leased, written).
    generating: tokio::sync::Mutex<()>,
    /// Counts and durations of the gRPC requests (`crate::rpc_metrics`).
    rpc: crate::rpc_metrics::RpcMetrics,
}

/// A snapshot of the daemon's status, transport-free.
#[derive(Debug, Clone)]
pub struct DaemonStatus {
    /// casmand's version.
    pub version: &'static str,
    /// Time since start.
    pub uptime: Duration,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Socket path.
    pub socket: PathBuf,
    /// Backup store summary.
    pub backend: BackendInfo,
    /// Databases owned.
    pub databases: Vec<DatabaseFile>,
    /// This site's id.
    pub site_id: String,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
}

/// Where backups go.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// `local`, `s3`, `r2` or `none`.
    pub kind: &'static str,
    /// Directory or endpoint/bucket.
    pub location: String,
    /// Whether backups run.
    pub enabled: bool,
}

/// One database file.
#[derive(Debug, Clone)]
pub struct DatabaseFile {
    /// File name.
    pub name: String,
    /// Path.
    pub path: PathBuf,
    /// Size of the main file.
    pub size_bytes: u64,
    /// Last applied migration, 0 when none.
    pub schema_version: i64,
}

impl Context {
    /// Builds the context for a daemon about to serve on `socket`; scans go
    /// to the queue `scans`, whose writer [`tasks::start`] runs.
    pub fn new(
        loaded: Loaded,
        socket: PathBuf,
        dbs: Databases,
        admin_gid: Option<u32>,
        backups: BackupService,
        scans: group_commit::GroupCommit,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                config: loaded.config,
                sources: loaded.sources,
                socket,
                started: Instant::now(),
                dbs,
                backups,
                activity: ActivityBus::default(),
                admin_gid,
                scans,
                generating: tokio::sync::Mutex::new(()),
                rpc: crate::rpc_metrics::RpcMetrics::default(),
                started_at: jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or_else(|_| jiff::Timestamp::now())
                    .to_string(),
            }),
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The configuration layers, lowest first.
    pub fn config_sources(&self) -> &[String] {
        &self.inner.sources
    }

    /// The databases.
    pub fn dbs(&self) -> &Databases {
        &self.inner.dbs
    }

    /// Backups of the databases.
    pub fn backups(&self) -> &BackupService {
        &self.inner.backups
    }

    /// Counts a write to `database` made by another program (the sqlite3
    /// shell, an old script), seen by the scheduler's watcher: it drives the
    /// backup triggers like any write.
    pub async fn count_external_write(&self, database: &'static str) {
        let write = crate::db::activity::Activity::Write { database, action: "external", writes: 1 };
        self.record(write).await;
    }

    /// Records `activity` that no request made: write counts are persisted
    /// in state.db first (they drive the backup triggers and must survive a
    /// crash), then announced.
    async fn record(&self, activity: crate::db::activity::Activity) {
        if let Some((db, n)) = activity.counted()
            && let Err(e) = crate::db::sync_state::count_writes(&self.inner.dbs.state, db, n).await
        {
            tracing::warn!(database = db, error = %e, "could not count a write");
        }
        self.inner.activity.publish(activity);
    }

    /// Counts and durations of the gRPC requests.
    pub fn rpc_metrics(&self) -> &crate::rpc_metrics::RpcMetrics {
        &self.inner.rpc
    }

    /// Requests per group-commit batch so far.
    pub fn group_commit_batches(&self) -> crate::histogram::Figures {
        self.inner.scans.batch_sizes()
    }

    /// Where writes are announced.
    pub fn activity(&self) -> &ActivityBus {
        &self.inner.activity
    }

    /// The admin group's id, if one is configured.
    pub fn admin_gid(&self) -> Option<u32> {
        self.inner.admin_gid
    }

    /// A status snapshot.
    pub async fn status(&self) -> DaemonStatus {
        let dbs = &self.inner.dbs;
        let mut databases = Vec::new();
        for db in [&dbs.parts, &dbs.assembled, &dbs.state] {
            databases.push(DatabaseFile {
                name: db.name.to_owned(),
                path: db.path.clone(),
                size_bytes: db.size_bytes(),
                schema_version: db.schema_version().await,
            });
        }
        let c = &self.inner.config;
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION"),
            uptime: self.inner.started.elapsed(),
            data_dir: c.data_dir.clone(),
            socket: self.inner.socket.clone(),
            backend: backend_info(c),
            databases,
            site_id: c.site_id.clone(),
            started_at: self.inner.started_at.clone(),
        }
    }
}

fn backend_info(c: &Config) -> BackendInfo {
    let backend = c.backend();
    let location = match backend {
        Backend::Local => c.backup_dir().display().to_string(),
        Backend::R2 | Backend::S3 => {
            let endpoint = c.store.endpoint_for(backend).unwrap_or_else(|| "default AWS endpoint".into());
            format!("{endpoint} bucket {}", c.store.bucket_name)
        }
        Backend::None => String::new(),
    };
    BackendInfo { kind: backend.as_str(), location, enabled: backend != Backend::None }
}

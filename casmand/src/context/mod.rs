//! What every request handler can reach: configuration, paths, start time, and
//! (as the daemon grows) the databases and the backup scheduler.

pub mod caller;

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use crate::{
    backup::service::BackupService,
    config::{Backend, Config, Loaded},
    context::caller::Caller,
    db::activity::ActivityBus,
    db::{
        ASSEMBLED_DB, Databases,
        batch::{GroupCommit, Who},
        scans::{self, Applied, ScanOp, canonical_id},
    },
    error::{Error, Result},
    inventory::Edge,
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
    /// The group-commit queue of assembly writes, started on first use.
    scans: OnceLock<GroupCommit>,
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
    /// Builds the context for a daemon about to serve on `socket`.
    pub fn new(
        loaded: Loaded,
        socket: PathBuf,
        dbs: Databases,
        admin_gid: Option<u32>,
        backups: BackupService,
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
                scans: OnceLock::new(),
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

    /// Records `activity`: write counts are persisted in state.db first (they
    /// drive the backup triggers and must survive a crash), then announced.
    pub async fn record(&self, activity: crate::db::activity::Activity) {
        if let Some((db, n)) = activity.counted()
            && let Err(e) = crate::db::sync_state::count_writes(&self.inner.dbs.state, db, n).await
        {
            tracing::warn!(database = db, error = %e, "could not count a write");
        }
        self.inner.activity.publish(activity);
    }

    /// The queue in front of the assembly writer (group commit, see
    /// [`crate::db::batch`]); started on first use.
    pub fn group_commit(&self) -> &GroupCommit {
        self.inner.scans.get_or_init(|| {
            GroupCommit::start(
                self.inner.dbs.assembled.clone(),
                self.inner.dbs.state.clone(),
                self.inner.activity.clone(),
            )
        })
    }

    /// Connects `source -> target` as scanned (any case, SNAP ports in either
    /// form) for `caller`: resolves both parts, then checks every rule and
    /// appends the event in a group-committed transaction; audited. The entry
    /// point of every front end (gRPC, web).
    pub async fn connect(&self, caller: &Caller, source: &str, target: &str) -> Result<Edge> {
        let [source, target] = scans::resolve_all(&self.dbs().parts, [source, target]).await?;
        match self.scan(caller, ScanOp::Connect { source, target }).await? {
            Applied::Connected(e) => Ok(e),
            other => Err(Error::internal("connect", format!("{other:?}"))),
        }
    }

    /// Disconnects `a` and `b` (either order, as scanned) for `caller`.
    pub async fn disconnect(&self, caller: &Caller, a: &str, b: &str) -> Result<Edge> {
        let (a, b) = (canonical_id(a), canonical_id(b));
        if a.is_empty() || b.is_empty() {
            return Err(Error::invalid("disconnect needs two part numbers"));
        }
        match self.scan(caller, ScanOp::Disconnect { a, b }).await? {
            Applied::Disconnected(e) => Ok(e),
            other => Err(Error::internal("disconnect", format!("{other:?}"))),
        }
    }

    /// Disconnects every current connection of `part` for `caller`; returns them.
    pub async fn remove_part(&self, caller: &Caller, part: &str) -> Result<Vec<Edge>> {
        let part = canonical_id(part);
        if part.is_empty() {
            return Err(Error::invalid("remove needs a part number"));
        }
        match self.scan(caller, ScanOp::Remove { part }).await? {
            Applied::Removed(e) => Ok(e),
            other => Err(Error::internal("remove", format!("{other:?}"))),
        }
    }

    /// Submits one write to the group commit; once it is durable (with its
    /// audit entry), logs it. The group commit announces the activity, once
    /// per batch.
    async fn scan(&self, caller: &Caller, op: ScanOp) -> Result<Applied> {
        let who = Who { peer: caller.peer, operator: caller.operator.clone(), client: caller.client.clone() };
        let (applied, audited) = self.group_commit().submit(op, who).await?;
        if let Some(a) = audited {
            caller.log_applied(a.action, ASSEMBLED_DB, &a.detail);
        }
        Ok(applied)
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

//! One SQLite database file: a single writer connection and a small pool of
//! read-only readers, WAL, `synchronous=FULL` (an acknowledged write survives
//! power loss), an explicit busy timeout. The file can be replaced under a
//! running daemon (restore, sync): writers and readers pause, the old
//! connections close, the new file is renamed into place, reopened and
//! migrated, and everything resumes.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::{Arc, RwLock},
    time::Duration,
};

use sqlx::{
    ConnectOptions, SqlitePool,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::sync::{OwnedRwLockReadGuard, RwLock as Gate};

use super::DbError;

/// How long a statement waits for a lock held by another connection or program.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers per database.
const READERS: u32 = 4;

/// Handles on one database file. Cheap to clone; clones share the pools.
#[derive(Debug, Clone)]
pub struct Db {
    /// File name (`parts.db`, ...).
    pub name: &'static str,
    /// Path of the file.
    pub path: PathBuf,
    migrator: &'static Migrator,
    pools: Arc<RwLock<Pools>>,
    /// Held (shared) by every request from the moment it takes a pool until
    /// its statement started; taken exclusively while the file is replaced, so
    /// no request can pick up a pool that is about to close.
    gate: Arc<Gate<()>>,
    /// Answers "changed since?" without reading the file.
    watch: Arc<super::watch::ChangeWatch>,
    /// The site whose changes the writer connection stamps, once set
    /// ([`Db::stamp_as`]); every new writer connection installs the
    /// stamping triggers (`super::stamping`).
    site: Arc<std::sync::OnceLock<String>>,
    /// The clock the writer reached before the file was last replaced:
    /// sequence numbers and clock values are never issued again. Kept in
    /// `<file>.clock-floor` too, so a restart right after a restore of an
    /// older file does not forget it.
    clock_floor: Arc<std::sync::Mutex<(i64, i64)>>,
    /// Bumped each time the writer connection is handed back (after every
    /// write transaction, committed or not) and when the file is replaced:
    /// the change feed (`super::feed`) wakes on it instead of polling.
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set when the daemon stops: long work on the file (the history's
    /// entry, minutes at 10× the field size) ends at its next transaction
    /// instead of holding the stop up ([`Db::stop_long_work`]).
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// A pool handed to one request, holding the gate open until it is dropped
/// (the end of the statement that took it). Dereferences to the pool.
#[derive(Debug)]
pub struct PoolRef {
    pool: SqlitePool,
    _gate: OwnedRwLockReadGuard<()>,
}

impl std::ops::Deref for PoolRef {
    type Target = SqlitePool;

    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

#[derive(Debug, Clone)]
struct Pools {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Whether this file's history from before the upgrade has entered the
    /// change exchange since it was opened (`super::history`): a file put
    /// in place later (a restore) is checked again.
    /// (Held while it runs, so a second caller waits for the first instead
    /// of doing the same work beside it.)
    history_entered: Arc<tokio::sync::Mutex<bool>>,
}

/// casman's pragmas. `temp_store = FILE`: the bundled SQLite keeps temporary
/// tables and indexes in memory by default (`SQLITE_TEMP_STORE=2`), so work
/// that builds a large one held it all: VACUUM a copy of the whole file
/// (106 MB for the 10x fixture), the kept state's rebuild every event. In a
/// file they cost only the page cache; a small one (the stamping clock)
/// never leaves the cache, so nothing is written for it.
fn options(path: &Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("temp_store", "FILE")
        .disable_statement_logging())
}

async fn open_pools(
    path: &Path,
    site: &Arc<std::sync::OnceLock<String>>,
    floor: &Arc<std::sync::Mutex<(i64, i64)>>,
    commits: &Arc<tokio::sync::watch::Sender<u64>>,
) -> Result<Pools, DbError> {
    let released = commits.clone();
    let stamp_site = site.clone();
    let stamp_floor = floor.clone();
    let err = |e: sqlx::Error| DbError::Open { path: path.to_path_buf(), reason: e.to_string() };
    // No ping before handing a connection out: an SQLite connection is a
    // thread of this process, not a socket that can go away, and the ping is
    // a round trip to that thread on every request (sqlx still pings on
    // release, in the background, and drops a connection that fails it).
    let writer = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(60))
        .after_release(move |conn, _| {
            // Whatever the writer did is committed (or rolled back) by now.
            released.send_modify(|n| *n = n.wrapping_add(1));
            Box::pin(async move { writer_still_usable(conn).await })
        })
        // A writer connection made after the site is known (a reopen after a
        // file swap, a replacement after a failed commit) stamps from its
        // first write; one that cannot is not used.
        .after_connect(move |conn, _| {
            let site = stamp_site.clone();
            let floor = *stamp_floor.lock().unwrap_or_else(|p| p.into_inner());
            Box::pin(async move {
                if let Some(site) = site.get() {
                    super::stamping::install(conn, site, floor).await?;
                }
                Ok(())
            })
        })
        .connect_with(options(path).map_err(err)?.create_if_missing(true))
        .await
        .map_err(err)?;
    let reader = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(READERS)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options(path).map_err(err)?.read_only(true))
        .await
        .map_err(err)?;
    Ok(Pools { writer, reader, history_entered: Arc::default() })
}

/// Whether the writer connection can go back to the pool. A COMMIT that
/// failed (SQLITE_FULL: "database or disk is full") leaves sqlx counting an
/// open transaction after SQLite rolled it back, so the rollback queued when
/// the transaction was dropped fails too and every later `BEGIN` would be
/// refused ("attempted to call begin_with at non-zero transaction depth").
/// Such a connection is closed (closing rolls back whatever is still open)
/// and the pool opens a fresh one for the next write.
async fn writer_still_usable(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A transaction dropped on an error path queued its rollback on the
    // connection's thread: a ping runs after it, so the count is settled.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("the writer connection was left inside a failed transaction: replacing it");
        return Ok(false);
    }
    Ok(true)
}

/// Where the change clock's floor of the database at `path` is kept.
fn floor_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.clock-floor", path.display()))
}

/// The floor kept at `path`: (sequence, clock); (0, 0) when there is none
/// or it does not read.
fn read_floor(path: &Path) -> (i64, i64) {
    let Ok(text) = std::fs::read_to_string(path) else { return (0, 0) };
    let mut it = text.split_whitespace().map(str::parse::<i64>);
    match (it.next(), it.next()) {
        (Some(Ok(seq)), Some(Ok(hlc))) => (seq, hlc),
        _ => (0, 0),
    }
}

/// Keeps `floor` at `path` durably (written beside, synced, renamed).
fn write_floor(path: &Path, (seq, hlc): (i64, i64)) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{seq} {hlc}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent())
}

/// After a crash during a file replacement, the safety copies left half way
/// in `<data>/safety`: a `.partial` (a page copy being written) is removed; a
/// `.link` is the replaced file if the swap happened (named as meant) or
/// still the live file if it did not (removed).
pub fn settle_safety_copies(data_dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(data_dir.join("safety")) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        if name.ends_with(".partial") {
            let _ = std::fs::remove_file(&path);
        } else if let Some(kept) = name.strip_suffix(".link") {
            let db = kept.split(".20").next().unwrap_or("");
            let live = std::fs::metadata(data_dir.join(db)).map(|m| m.ino()).ok();
            let this = std::fs::metadata(&path).map(|m| m.ino()).ok();
            let outcome = if live.is_some() && live == this {
                std::fs::remove_file(&path)
            } else {
                std::fs::rename(&path, path.with_file_name(kept))
            };
            if let Err(err) = outcome {
                tracing::warn!(file = %path.display(), error = %err, "cannot settle a safety copy left by a crash");
            }
        }
    }
}

/// Makes a directory's entries (a rename, a link) durable.
fn sync_dir(dir: Option<&Path>) -> std::io::Result<()> {
    match dir {
        Some(d) => std::fs::File::open(d)?.sync_all(),
        None => Ok(()),
    }
}

/// Makes the content of the file at `path` durable (fsync), on a blocking
/// thread. Cheap when nothing of it is left unwritten.
pub async fn sync_file(path: &Path) -> std::io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(path)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

impl Db {
    /// Opens (creating if missing) the file at `path` with casman's pragmas.
    /// `migrator` is applied by [`Db::migrate`] and after a file replacement.
    pub async fn open(name: &'static str, path: PathBuf, migrator: &'static Migrator) -> Result<Db, DbError> {
        let site = Arc::new(std::sync::OnceLock::new());
        let clock_floor = Arc::new(std::sync::Mutex::new(read_floor(&floor_path(&path))));
        let commits = Arc::new(tokio::sync::watch::Sender::new(0));
        let pools = open_pools(&path, &site, &clock_floor, &commits).await?;
        let watch = Arc::new(super::watch::ChangeWatch::new(&path));
        Ok(Db {
            name,
            path,
            migrator,
            pools: Arc::new(RwLock::new(pools)),
            gate: Arc::new(Gate::new(())),
            watch,
            site,
            clock_floor,
            commits,
            stopping: Arc::default(),
        })
    }

    /// Asks long work on this file to end at its next transaction (see
    /// [`Db::stopping`]): the daemon is stopping.
    pub fn stop_long_work(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the daemon is stopping ([`Db::stop_long_work`]).
    pub fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A receiver that sees a change each time the writer connection was
    /// handed back after a write (see `commits`) or the file was replaced.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// From now on, stamps every change the writer makes with the identity
    /// of site `site` (see `super::stamping`): installs the triggers on the
    /// writer connection, and on every writer connection opened later. Call
    /// after [`Db::migrate`]. A second call with another site is refused.
    pub async fn stamp_as(&self, site: &str) -> Result<(), DbError> {
        let fail = |reason: String| DbError::Open { path: self.path.clone(), reason };
        if self.site.get_or_init(|| site.to_owned()) != site {
            return Err(fail(format!("already stamping as site {:?}, not {site:?}", self.site.get())));
        }
        self.restamp().await
    }

    /// Installs the stamping triggers on the current writer connection (after
    /// a migration that may have added the tables or columns they name).
    async fn restamp(&self) -> Result<(), DbError> {
        let Some(site) = self.site.get() else { return Ok(()) };
        let fail = |e: sqlx::Error| DbError::Open {
            path: self.path.clone(),
            reason: format!("installing the change stamps of site {site}: {e}"),
        };
        let mut conn = self.writer().await.acquire().await.map_err(fail)?;
        let floor = *self.clock_floor.lock().unwrap_or_else(|p| p.into_inner());
        super::stamping::install(&mut conn, site, floor).await.map_err(fail)?;
        Ok(())
    }

    /// Applies the migrations.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrator
            .run(&*self.writer().await)
            .await
            .map_err(|e| DbError::Migrate { path: self.path.clone(), reason: e.to_string() })
    }

    fn pools(&self) -> Pools {
        match self.pools.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The writer pool (one connection: write transactions are serialised).
    /// Waits while the file is being replaced, so requests arriving meanwhile
    /// run on the new file.
    pub async fn writer(&self) -> PoolRef {
        let gate = self.gate.clone().read_owned().await;
        PoolRef { pool: self.pools().writer, _gate: gate }
    }

    /// Whether [`super::history::enter`] ran on the file in place: held by
    /// the caller running it, who sets it when done.
    pub async fn history_entered(&self) -> tokio::sync::OwnedMutexGuard<bool> {
        self.pools().history_entered.lock_owned().await
    }

    /// The read-only pool; waits while the file is being replaced.
    pub async fn reader(&self) -> PoolRef {
        let gate = self.gate.clone().read_owned().await;
        PoolRef { pool: self.pools().reader, _gate: gate }
    }

    /// The file's change token now: equal tokens mean no commit (by this
    /// daemon or any other program) and no replacement in between.
    pub fn change_token(&self) -> Result<super::watch::ChangeToken, DbError> {
        self.watch.token()
    }

    /// `PRAGMA data_version` on the writer connection: it changes only when
    /// another connection (another program) commits, never for casmand's
    /// own writes.
    pub async fn writer_data_version(&self) -> Option<i64> {
        sqlx::query_scalar("PRAGMA data_version").fetch_one(&*self.writer().await).await.ok()
    }

    /// Frees what the page caches of this database's idle connections hold
    /// (`PRAGMA shrink_memory`): after work that read the whole file (an
    /// adoption, a rebuild), the caches would otherwise stay full while the
    /// daemon idles. Connections in use are left alone; the caches refill
    /// as requests need them.
    pub async fn release_memory(&self) {
        let pools = self.pools();
        let _ = sqlx::query("PRAGMA shrink_memory").execute(&pools.writer).await;
        let mut idle = Vec::new();
        while idle.len() < READERS as usize {
            match pools.reader.try_acquire() {
                Some(conn) => idle.push(conn),
                None => break,
            }
        }
        for conn in &mut idle {
            let _ = sqlx::query("PRAGMA shrink_memory").execute(&mut **conn).await;
        }
    }

    /// Closes every connection after checkpointing the WAL into the main
    /// file. The readers close first (none keeps a snapshot the checkpoint
    /// must leave in the WAL), and the writer pool is closed as soon as the
    /// checkpoint has the writer: a task still writing (the history being
    /// entered, a backup's bookkeeping) cannot add a frame after it. A WAL
    /// left with frames would cost the next start a full integrity check
    /// (see `checked`): 1.2 s at 10× the field size, on one start in five
    /// of the scale bench's, those right after adoption.
    pub async fn close(&self) {
        let pools = self.pools();
        pools.reader.close().await;
        match pools.writer.acquire().await {
            Ok(mut conn) => {
                let closing = pools.writer.close();
                let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await;
                drop(conn);
                closing.await;
            }
            Err(_) => pools.writer.close().await,
        }
    }

    /// Replaces the database file with `new_file` (a complete, synced SQLite
    /// file on the same file system), under the running daemon: new requests
    /// wait, in-flight ones finish, the connections close, the file is renamed
    /// into place (atomic: a crash leaves the old file or the new one, never a
    /// mix), reopened and migrated. If anything fails before the rename, the
    /// old file is reopened unchanged.
    ///
    /// With `keep_old`, the replaced file itself becomes a copy at that path
    /// (same file system): hard-linked there before the rename, so no copy is
    /// made and a crash at any moment leaves the live name on the old file or
    /// the new one. When the WAL could not be checkpointed into the old file
    /// (another program holds it open), a page copy is made instead.
    pub async fn replace_file(&self, new_file: &Path, keep_old: Option<&Path>) -> Result<(), DbError> {
        self.replace_file_if_unchanged(new_file, keep_old, None).await
    }

    /// [`Db::replace_file`], only if the file is still as it was when
    /// `unchanged_since` was taken ([`Db::change_token`]): checked once every
    /// write in progress has committed and no new one can start, so a write
    /// acknowledged before the swap is never replaced away. Otherwise
    /// nothing is replaced and [`DbError::ChangedMeanwhile`] is returned.
    pub async fn replace_file_if_unchanged(
        &self,
        new_file: &Path,
        keep_old: Option<&Path>,
        unchanged_since: Option<super::watch::ChangeToken>,
    ) -> Result<(), DbError> {
        let fail = |reason: String| DbError::Open { path: self.path.clone(), reason };
        // Durable before it is renamed into place: never a name over a file
        // whose pages a power cut may lose. (A restore syncs it earlier,
        // while it reads the file; then this finds nothing to write.)
        sync_file(new_file).await.map_err(|e| fail(format!("syncing {}: {e}", new_file.display())))?;
        // The new file takes the mode of the one it replaces (a downloaded
        // temporary file is 0600).
        if let Ok(meta) = std::fs::metadata(&self.path) {
            std::fs::set_permissions(new_file, meta.permissions())
                .map_err(|e| fail(format!("setting the mode of {}: {e}", new_file.display())))?;
        }
        // Exclusive: every request that took a pool has started its statement
        // (connections it holds are waited for by close()); new ones wait.
        let gate = self.gate.clone().write_owned().await;
        if let Some(expected) = unchanged_since {
            // Every request that took a pool holds the gate until its
            // statement (a write: its whole transaction) is done, so what
            // is committed now is all that will be.
            let now = self.watch.token();
            if now.as_ref().ok() != Some(&expected) {
                drop(gate);
                now?;
                return Err(DbError::ChangedMeanwhile { path: self.path.clone() });
            }
        }
        // The clock reached on the file being replaced (every write to it is
        // done): the next file's stamps go on from there, whatever it holds,
        // also after a restart.
        if let Ok(mut conn) = self.pools().writer.acquire().await
            && let Ok(Some(reached)) = super::stamping::clock(&mut conn).await
        {
            let floor = {
                let mut floor = self.clock_floor.lock().unwrap_or_else(|p| p.into_inner());
                *floor = (floor.0.max(reached.0), floor.1.max(reached.1));
                *floor
            };
            if let Err(e) = write_floor(&floor_path(&self.path), floor) {
                drop(gate);
                return Err(DbError::Open {
                    path: self.path.clone(),
                    reason: format!("keeping the change clock before the file is replaced: {e}"),
                });
            }
        }
        self.watch.reset();
        let result = async {
            self.close().await;
            let wal = PathBuf::from(format!("{}-wal", self.path.display()));
            // The replaced file is kept by a hard link named `<keep>.link`,
            // renamed to `keep` once the new file is in place: until then the
            // link is the live file itself, and start-up removes a `.link`
            // that still is (settle_safety_copies).
            let mut linked = None;
            if let Some(keep) = keep_old {
                let checkpointed = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
                let kept = if checkpointed {
                    let link = PathBuf::from(format!("{}.link", keep.display()));
                    let made = std::fs::hard_link(&self.path, &link).map_err(|e| e.to_string());
                    linked = Some(link);
                    made
                } else {
                    // Copied beside, then renamed: never a torn copy under its name.
                    let partial = PathBuf::from(format!("{}.partial", keep.display()));
                    super::page_copy::page_copy(&self.path, &partial)
                        .map_err(|e| e.to_string())
                        .and_then(|()| std::fs::rename(&partial, keep).map_err(|e| e.to_string()))
                };
                kept.map_err(|e| fail(format!("keeping the replaced file as {}: {e}", keep.display())))?;
            }
            let unlink = |linked: &Option<PathBuf>| {
                if let Some(l) = linked {
                    let _ = std::fs::remove_file(l);
                }
            };
            for side in ["-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{side}", self.path.display()));
                if p.exists()
                    && let Err(e) = std::fs::remove_file(&p)
                {
                    unlink(&linked);
                    return Err(fail(format!("removing {}: {e}", p.display())));
                }
            }
            if let Err(e) = std::fs::rename(new_file, &self.path) {
                unlink(&linked);
                return Err(fail(format!("renaming the new file into place: {e}")));
            }
            sync_dir(self.path.parent()).map_err(|e| fail(e.to_string()))?;
            if let (Some(link), Some(keep)) = (&linked, keep_old) {
                std::fs::rename(link, keep)
                    .map_err(|e| fail(format!("naming the kept file {}: {e}", keep.display())))?;
            }
            if let Some(keep) = keep_old {
                sync_dir(keep.parent()).map_err(|e| fail(e.to_string()))?;
            }
            Ok(())
        }
        .await;
        // Reopen whichever file is now in place (the new one, or the old one if
        // the rename did not happen).
        let reopened = open_pools(&self.path, &self.site, &self.clock_floor, &self.commits).await;
        if let Ok(pools) = &reopened {
            match self.pools.write() {
                Ok(mut p) => *p = pools.clone(),
                Err(poisoned) => *poisoned.into_inner() = pools.clone(),
            }
        }
        drop(gate);
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        result?;
        reopened?;
        self.migrate().await?;
        self.restamp().await
    }

    /// Number of the newest applied migration, 0 when none.
    pub async fn schema_version(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&*self.reader().await)
            .await
            .unwrap_or(0)
    }

    /// Size of the database on disk in bytes: the main file and its WAL
    /// (committed data may still live in the WAL until a checkpoint).
    pub fn size_bytes(&self) -> u64 {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        len(&self.path) + len(&PathBuf::from(format!("{}-wal", self.path.display())))
    }
}

#[cfg(test)]
mod settle_tests {
    use super::*;

    #[test]
    fn half_made_safety_copies_are_removed_or_named() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let safety = dir.path().join("safety");
        std::fs::create_dir_all(&safety)?;
        std::fs::write(dir.path().join("parts.db"), b"live")?;
        let still_live = safety.join("parts.db.20260101T000000.000Z.pre-restore.link");
        std::fs::hard_link(dir.path().join("parts.db"), &still_live)?;
        let swapped = safety.join("parts.db.20260102T000000.000Z.pre-restore.link");
        std::fs::write(&swapped, b"old")?;
        let torn = safety.join("parts.db.20260103T000000.000Z.pre-restore.partial");
        std::fs::write(&torn, b"to")?;
        settle_safety_copies(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(&safety)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["parts.db.20260102T000000.000Z.pre-restore"]);
        assert_eq!(std::fs::read(dir.path().join("parts.db"))?, b"live");
        Ok(())
    }
}

#[cfg(test)]
mod replace_tests {
    #![allow(clippy::unwrap_used)]

    use crate::{
        db::{Databases, DbError, parts},
        inventory::{PartType, Polarization},
    };

    async fn count(db: &super::Db) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM parts").fetch_one(&*db.reader().await).await.unwrap()
    }

    /// A write committed after the moment a replacement was decided on is
    /// never replaced away: the file stays, with the write.
    #[tokio::test]
    async fn a_file_written_since_the_decision_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        let other = dir.path().join("other.db");
        sqlx::query("VACUUM INTO ?")
            .bind(other.display().to_string())
            .execute(&*dbs.parts.reader().await)
            .await
            .unwrap();
        let before = dbs.parts.change_token().unwrap();
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P1, 2, 1..=99_999)
            .await
            .unwrap();
        let e = dbs.parts.replace_file_if_unchanged(&other, None, Some(before)).await.unwrap_err();
        assert!(matches!(e, DbError::ChangedMeanwhile { .. }), "{e}");
        assert_eq!(count(&dbs.parts).await, 2);
        // Unchanged since the token: replaced.
        let now = dbs.parts.change_token().unwrap();
        dbs.parts.replace_file_if_unchanged(&other, None, Some(now)).await.unwrap();
        assert_eq!(count(&dbs.parts).await, 0);
    }
}

//! The three database files casmand owns, opened with casman's pragmas,
//! adopted from the Python tool when needed, and migrated.
//!
//! SQL lives here and nowhere else: the API layer calls these functions.

pub mod activity;
pub mod adopt;
mod adopt_tables;
pub mod adopt_trackers;
pub mod as_of;
pub mod assembly;
pub mod audit;
pub mod batch;
pub mod batch_plan;
pub mod boards;
pub mod chain_graph;
pub mod change_history;
pub mod change_operators;
pub mod changes;
pub mod checked;
pub mod feed;
pub mod feed_entry;
pub mod feed_watch;
pub mod history;
pub mod inputs;
pub mod issued;
pub mod leases;
pub mod listings;
pub mod merge;
pub mod page_copy;
pub mod paged;
pub mod part_code;
pub mod parts;
mod pool;
pub mod positions;
pub mod preflight;
pub mod quota_ledger;
pub mod read_only;
pub mod revert;
pub mod scans;
pub mod stamping;
pub mod sync_state;
pub mod verifications;
pub mod watch;
pub mod web_requests;
pub mod web_sessions;
pub mod whole;

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use sqlx::migrate::Migrator;

pub use pool::{Db, PoolRef, settle_safety_copies, sync_file};

/// Migrations of parts.db.
pub static PARTS_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/parts");
/// Migrations of assembled_casm.db.
pub static ASSEMBLED_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/assembled");
/// Migrations of state.db.
pub static STATE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/state");

/// File name of the parts database.
pub const PARTS_DB: &str = "parts.db";
/// File name of the assembly database.
pub const ASSEMBLED_DB: &str = "assembled_casm.db";
/// File name of the daemon's bookkeeping database.
pub const STATE_DB: &str = "state.db";

/// Why a database could not be opened. casmand refuses to start on any of
/// these, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file exists but is not an SQLite database; it was not touched.
    #[error(
        "{path} is not an SQLite database; casmand left it untouched and will not start (move it away or restore a backup)"
    )]
    NotSqlite {
        /// The file.
        path: PathBuf,
    },
    /// `PRAGMA integrity_check` failed; the file was not touched.
    #[error(
        "{path} fails PRAGMA integrity_check ({detail}); casmand left it untouched and will not start (restore a backup)"
    )]
    Integrity {
        /// The file.
        path: PathBuf,
        /// What the check reported.
        detail: String,
    },
    /// The file could not be opened or created.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file was written after the moment a replacement was decided on
    /// (a scan committed while a sync downloaded): it was not replaced.
    #[error("{path} was written while it was about to be replaced; it was left as it is")]
    ChangedMeanwhile {
        /// The file.
        path: PathBuf,
    },
    /// A migration failed (the migration's own transaction was rolled back).
    #[error("cannot migrate {path}: {reason}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Adopting a file written by the Python tool failed; its transaction
    /// was rolled back and the original is unchanged.
    #[error("cannot adopt {path}: {reason} (the file is unchanged)")]
    Adopt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The daemon's databases.
#[derive(Debug, Clone)]
pub struct Databases {
    /// parts.db: parts, antenna positions, SNAP boards, grid coordinates.
    pub parts: Db,
    /// assembled_casm.db: the connection event log.
    pub assembled: Db,
    /// state.db: audit log, activity counters, pending work.
    pub state: Db,
}

impl Databases {
    /// Opens all three databases in `dir`: checks existing files, adopts files
    /// written by the Python tool (legacy times read in `tz`), applies migrations.
    pub async fn open(dir: &Path, tz: &TimeZone) -> Result<Databases, DbError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbError::Open { path: dir.to_path_buf(), reason: e.to_string() })?;
        // Check every existing file before touching any of them (in full,
        // unless it is as casmand left it at its last clean stop).
        let mut unchanged = Vec::new();
        for name in [PARTS_DB, ASSEMBLED_DB, STATE_DB] {
            let path = dir.join(name);
            if checked::take_unchanged(&path) {
                preflight::check_header(&path)?;
                unchanged.push(name);
            } else {
                preflight::check(&path).await?;
            }
        }
        let (parts, parts_adopted) = open_one(dir, PARTS_DB, &PARTS_MIGRATIONS, Some(tz)).await?;
        let (assembled, assembled_adopted) =
            open_one(dir, ASSEMBLED_DB, &ASSEMBLED_MIGRATIONS, Some(tz)).await?;
        let (state, _) = open_one(dir, STATE_DB, &STATE_MIGRATIONS, None).await?;
        // Every number the files mention is known as issued before the first
        // request (the old part_sequences marks, adopted CAsMan files).
        let started = std::time::Instant::now();
        // (A parts.db unchanged since a clean stop had its numbers recorded then.)
        let parts_known = unchanged.contains(&PARTS_DB) && unchanged.contains(&STATE_DB);
        let known = issued::absorb_live(&parts, &assembled, &state, parts_known).await.map_err(|e| {
            DbError::Open { path: dir.join(STATE_DB), reason: format!("recording issued part numbers: {e}") }
        })?;
        tracing::info!(
            duration_ms = started.elapsed().as_millis() as u64,
            runs = known.iter().map(|(_, _, r)| r.len()).sum::<usize>(),
            "issued part numbers recorded"
        );
        let dbs = Databases { parts, assembled, state };
        let adopted: Vec<&'static str> = [(PARTS_DB, parts_adopted), (ASSEMBLED_DB, assembled_adopted)]
            .into_iter()
            .filter_map(|(n, a)| a.then_some(n))
            .collect();
        // The Python tool's trackers, read once on adoption.
        adopt_trackers::import(&dbs, dir, &adopted).await?;
        Ok(dbs)
    }

    /// Stamps every change casmand makes to parts.db and assembled_casm.db
    /// with the identity of site `site` (see [`stamping`]).
    pub async fn stamp_as(&self, site: &str) -> Result<(), DbError> {
        self.parts.stamp_as(site).await?;
        self.assembled.stamp_as(site).await
    }

    /// The database called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Db> {
        [&self.parts, &self.assembled, &self.state].into_iter().find(|d| d.name == name)
    }

    /// Frees the page caches of every database's idle connections (see
    /// [`Db::release_memory`]) and returns freed memory to the system, now
    /// and once the connections a swap closed are gone (see
    /// [`crate::memory::release_free_memory_after_swap`]): after work that
    /// read or replaced a whole file (adopting, restoring, pulling).
    pub async fn release_memory(&self) {
        for db in [&self.parts, &self.assembled, &self.state] {
            db.release_memory().await;
        }
        crate::memory::release_free_memory_after_swap();
    }

    /// Asks long work on every database to end at its next transaction
    /// ([`Db::stop_long_work`]): the daemon is stopping.
    pub fn stop_long_work(&self) {
        for db in [&self.parts, &self.assembled, &self.state] {
            db.stop_long_work();
        }
    }

    /// Records the part numbers parts.db holds in state.db, checkpoints and
    /// closes every database, and records each file as it is left (see
    /// [`checked`]; parts.db only if its numbers were recorded).
    pub async fn close(&self) {
        let absorbed = match issued::absorb_parts(&self.parts, &self.state).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "recording parts.db's numbers at the stop; the next start reads them");
                false
            }
        };
        for db in [&self.parts, &self.assembled, &self.state] {
            db.close().await;
            if absorbed || db.name != PARTS_DB {
                checked::remember(&db.path);
            }
        }
    }
}

async fn open_one(
    dir: &Path,
    name: &'static str,
    migrator: &'static Migrator,
    legacy_tz: Option<&TimeZone>,
) -> Result<(Db, bool), DbError> {
    open_path(dir.join(name), name, migrator, legacy_tz, false).await
}

/// Brings a downloaded copy of `name` (a file about to replace the live one)
/// to the current schema, adopting it if the Python tool wrote it, and closes
/// it again: everything that could fail happens before the live file is
/// touched.
///
/// `verified`: the copy's bytes are a casman snapshot whose SHA-256 matched
/// (the snapshot was checked when it was taken). Its integrity is not checked
/// again and, at the current schema, the kept current state (maintained by
/// the triggers in the same transactions as the log) is not rebuilt: a
/// rebuild would derive the same rows at a cost that grows with the log
/// (`casmanctl database check` compares them at any time). Otherwise the
/// copy is checked and its kept state rebuilt from its log.
pub async fn prepare_replacement(
    path: &Path,
    name: &'static str,
    tz: &TimeZone,
    verified: bool,
) -> Result<(), DbError> {
    let migrator = match name {
        PARTS_DB => &PARTS_MIGRATIONS,
        ASSEMBLED_DB => &ASSEMBLED_MIGRATIONS,
        _ => &STATE_MIGRATIONS,
    };
    let current = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let rebuild = !verified || schema_version_of(path).await < current;
    if !verified {
        preflight::check(path).await?;
    }
    let (db, _) = open_path(path.to_path_buf(), name, migrator, Some(tz), rebuild).await?;
    db.close().await;
    Ok(())
}

/// The newest migration applied to the file at `path` (0 when none, or
/// when it cannot be read).
async fn schema_version_of(path: &Path) -> i64 {
    let Ok(mut conn) = preflight::read_only(path).await else { return 0 };
    let v = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap_or(0);
    let _ = sqlx::Connection::close(conn).await;
    v
}

/// Rebuilds the kept current state of assembled_casm.db from its log.
async fn rebuild_kept_state(db: &Db) -> Result<(), DbError> {
    match assembly::rebuild_db(db).await {
        Ok(n) => {
            tracing::info!(database = db.name, connections = n, "current state rebuilt from the log");
            Ok(())
        }
        Err(e) => Err(DbError::Migrate {
            path: db.path.clone(),
            reason: format!("rebuilding the current state: {e}"),
        }),
    }
}

async fn open_path(
    path: PathBuf,
    name: &'static str,
    migrator: &'static Migrator,
    legacy_tz: Option<&TimeZone>,
    rebuild: bool,
) -> Result<(Db, bool), DbError> {
    let adopt_plan = match legacy_tz {
        Some(tz) => adopt::plan(&path, tz).await?,
        None => None,
    };
    let db = Db::open(name, path.clone(), migrator).await?;
    let adopted = adopt_plan.is_some();
    if let Some(plan) = adopt_plan {
        adopt::run(&db, plan).await?;
    }
    db.migrate().await?;
    // Adoption, or the first start with the kept state (migration 0003): build
    // it from the log. Afterwards every event keeps it up to date itself.
    if name == ASSEMBLED_DB && (rebuild || adopted || !assembly::was_rebuilt(&db).await.unwrap_or(false)) {
        rebuild_kept_state(&db).await?;
    }
    if name == ASSEMBLED_DB {
        match assembly::settle_file(&db, adopted).await {
            Ok(true) => tracing::info!(database = db.name, "file compacted (VACUUM)"),
            Ok(false) => {}
            Err(e) => tracing::warn!(database = db.name, error = %e, "compacting the file and its WAL"),
        }
    }
    Ok((db, adopted))
}

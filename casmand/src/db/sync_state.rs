//! state.db bookkeeping of backups: each database's sync base and the
//! activity counters that a stored backup resets.

use super::Db;
use crate::{error::Result, timestamp};

/// The version a database descends from.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Base {
    /// Object key of the version.
    pub key: String,
    /// Its SHA-256.
    pub sha256: String,
    /// When it became the base.
    pub set_at: String,
    /// Why (`backup`, `restore`, `sync`, `merge`).
    pub reason: String,
}

/// The base of `database`, if it has one.
pub async fn base(state: &Db, database: &str) -> Result<Option<Base>> {
    Ok(sqlx::query_as("SELECT key, sha256, set_at, reason FROM sync_base WHERE database = ?")
        .bind(database)
        .fetch_optional(&state.reader())
        .await?)
}

/// Records that `database` now descends from (`key`, `sha256`).
pub async fn set_base(state: &Db, database: &str, key: &str, sha256: &str, reason: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_base (database, key, sha256, set_at, reason) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (database) DO UPDATE SET key = excluded.key, sha256 = excluded.sha256,
             set_at = excluded.set_at, reason = excluded.reason",
    )
    .bind(database)
    .bind(key)
    .bind(sha256)
    .bind(timestamp::now())
    .bind(reason)
    .execute(&state.writer())
    .await?;
    Ok(())
}

/// Writes counted for `database` since its last stored backup.
pub async fn writes_since_backup(state: &Db, database: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT writes_since_backup FROM activity WHERE database = ?")
        .bind(database)
        .fetch_optional(&state.reader())
        .await?
        .unwrap_or(0))
}

/// Records a stored backup of `database` that covers the first `covered`
/// counted writes (those made before its snapshot): the counter goes down by
/// that many, only now that the version is stored; writes made during the
/// backup stay counted.
pub async fn backup_stored(state: &Db, database: &str, key: &str, covered: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO activity (database, writes_since_backup, last_backup_at, last_backup_key) VALUES (?, 0, ?, ?)
         ON CONFLICT (database) DO UPDATE SET
             writes_since_backup = MAX(0, writes_since_backup - ?4),
             last_backup_at = excluded.last_backup_at,
             last_backup_key = excluded.last_backup_key",
    )
    .bind(database)
    .bind(timestamp::now())
    .bind(key)
    .bind(covered)
    .execute(&state.writer())
    .await?;
    Ok(())
}

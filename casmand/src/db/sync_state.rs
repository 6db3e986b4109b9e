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
        .fetch_optional(&*state.reader().await)
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
    .execute(&*state.writer().await)
    .await?;
    Ok(())
}

/// Writes counted for `database` since its last stored backup.
pub async fn writes_since_backup(state: &Db, database: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT writes_since_backup FROM activity WHERE database = ?")
        .bind(database)
        .fetch_optional(&*state.reader().await)
        .await?
        .unwrap_or(0))
}

/// Records that version `key`, made at `at`, holds `database`, covering the
/// first `covered` counted writes (those made before its snapshot): the
/// counter goes down by that many, only now that the version is stored;
/// writes made during the backup stay counted. The last backup's time and key
/// are always those of the same version.
pub async fn backup_stored(state: &Db, database: &str, key: &str, at: &str, covered: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO activity (database, writes_since_backup, last_backup_at, last_backup_key) VALUES (?, 0, ?, ?)
         ON CONFLICT (database) DO UPDATE SET
             writes_since_backup = MAX(0, writes_since_backup - ?4),
             first_unsaved_write_at = CASE WHEN writes_since_backup - ?4 > 0 THEN first_unsaved_write_at END,
             last_backup_at = excluded.last_backup_at,
             last_backup_key = excluded.last_backup_key",
    )
    .bind(database)
    .bind(at)
    .bind(key)
    .bind(covered)
    .execute(&*state.writer().await)
    .await?;
    Ok(())
}

/// Counts `writes` writes to `database` (persisted at once: counts survive a
/// crash).
pub async fn count_writes(state: &Db, database: &str, writes: u32) -> Result<()> {
    count_writes_on(&mut *state.writer().await.acquire().await?, database, writes).await
}

/// [`count_writes`] on a given connection (inside the caller's transaction).
pub async fn count_writes_on(conn: &mut sqlx::SqliteConnection, database: &str, writes: u32) -> Result<()> {
    sqlx::query(
        "INSERT INTO activity (database, writes_since_backup, last_write_at, first_unsaved_write_at)
         VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (database) DO UPDATE SET
             writes_since_backup = writes_since_backup + ?2,
             last_write_at = ?3,
             first_unsaved_write_at = COALESCE(first_unsaved_write_at, ?3)",
    )
    .bind(database)
    .bind(i64::from(writes))
    .bind(timestamp::now())
    .execute(conn)
    .await?;
    Ok(())
}

/// One database's activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Activity {
    /// Writes not yet in a stored backup.
    pub writes_since_backup: i64,
    /// When the oldest of them happened.
    pub first_unsaved_write_at: Option<String>,
    /// Last stored backup.
    pub last_backup_at: Option<String>,
    /// Its key.
    pub last_backup_key: Option<String>,
}

/// The activity of `database`.
pub async fn activity(state: &Db, database: &str) -> Result<Activity> {
    Ok(sqlx::query_as(
        "SELECT writes_since_backup, first_unsaved_write_at, last_backup_at, last_backup_key
         FROM activity WHERE database = ?",
    )
    .bind(database)
    .fetch_optional(&*state.reader().await)
    .await?
    .unwrap_or_default())
}

/// A backup that failed and waits for a retry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pending {
    /// Database.
    pub database: String,
    /// Why it was wanted.
    pub reason: String,
    /// When it first failed.
    pub first_failed_at: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// When it is tried next.
    pub next_attempt_at: Option<String>,
}

/// Every pending backup.
pub async fn pending(state: &Db) -> Result<Vec<Pending>> {
    Ok(sqlx::query_as(
        "SELECT database, reason, first_failed_at, attempts, last_error, next_attempt_at FROM pending_backups
         ORDER BY database",
    )
    .fetch_all(&*state.reader().await)
    .await?)
}

/// Records a failed attempt to back up `database`; the next one is at `next`.
pub async fn backup_failed(state: &Db, database: &str, reason: &str, error: &str, next: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO pending_backups (database, reason, first_failed_at, attempts, last_error, next_attempt_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5)
         ON CONFLICT (database) DO UPDATE SET attempts = attempts + 1, last_error = ?4, next_attempt_at = ?5",
    )
    .bind(database)
    .bind(reason)
    .bind(timestamp::now())
    .bind(error)
    .bind(next)
    .execute(&*state.writer().await)
    .await?;
    Ok(())
}

/// Clears the pending backup of `database` (it landed).
pub async fn backup_landed(state: &Db, database: &str) -> Result<()> {
    sqlx::query("DELETE FROM pending_backups WHERE database = ?")
        .bind(database)
        .execute(&*state.writer().await)
        .await?;
    Ok(())
}

/// What this site has published of `db` to the change exchange: (its last
/// segment, the sequence number of that segment's last change); (0, 0)
/// before the first.
pub async fn published(state: &Db, db: &str) -> Result<(i64, i64)> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT segment, last_seq FROM exchange_published WHERE database = ?")
            .bind(db)
            .fetch_optional(&*state.reader().await)
            .await?;
    Ok(row.unwrap_or((0, 0)))
}

/// Records that this site's segment `segment` of `db`, holding its changes
/// `first_seq..=last_seq`, is in the store.
pub async fn set_published(state: &Db, db: &str, segment: i64, first_seq: i64, last_seq: i64) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO exchange_own_segments (database, segment, first_seq, last_seq) VALUES (?, ?, ?, ?)",
    )
    .bind(db)
    .bind(segment)
    .bind(first_seq)
    .bind(last_seq)
    .execute(&*state.writer().await)
    .await?;
    sqlx::query(
        "INSERT INTO exchange_published (database, segment, last_seq, published_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (database) DO UPDATE SET segment = excluded.segment, last_seq = excluded.last_seq,
                                              published_at = excluded.published_at",
    )
    .bind(db)
    .bind(segment)
    .bind(last_seq)
    .bind(crate::timestamp::now())
    .execute(&*state.writer().await)
    .await?;
    Ok(())
}

/// This site's published segments of `db` holding changes after `seq`.
pub async fn own_segments_after(state: &Db, db: &str, seq: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT segment FROM exchange_own_segments WHERE database = ? AND last_seq > ? ORDER BY segment",
    )
    .bind(db)
    .bind(seq)
    .fetch_all(&*state.reader().await)
    .await?)
}

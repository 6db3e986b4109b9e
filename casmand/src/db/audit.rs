//! The audit log in state.db: who asked for which change, and when.

use super::Db;
use crate::{error::Result, peer::Peer, timestamp};

/// One mutating request to record.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Who sent it over the socket.
    pub peer: Option<Peer>,
    /// The operator name the client gave (`--operator`), if any.
    pub operator: Option<&'a str>,
    /// The HTTP client address of a web request (the socket has none).
    pub client: Option<&'a str>,
    /// What was done (`parts.add`, `scan.connect`, ...).
    pub action: &'a str,
    /// Which database changed.
    pub database: &'a str,
    /// Details as JSON.
    pub detail: serde_json::Value,
}

/// Appends `entry` to the audit log.
pub async fn record(state: &Db, entry: AuditEntry<'_>) -> Result<()> {
    record_counting(state, entry, None).await
}

/// Appends `entry` to the audit log and, in the same transaction (one sync
/// to disk instead of two), counts `writes` = (database, n) for the backup
/// triggers.
pub async fn record_counting(state: &Db, entry: AuditEntry<'_>, writes: Option<(&str, u32)>) -> Result<()> {
    let writes: Vec<(&str, u32)> = writes.into_iter().collect();
    record_many(state, std::slice::from_ref(&entry), &writes).await
}

/// Appends every entry of `entries` and counts every `writes` = (database, n)
/// in one state.db transaction (one sync to disk for a whole batch of
/// requests: see [`super::batch`]).
pub async fn record_many(state: &Db, entries: &[AuditEntry<'_>], writes: &[(&str, u32)]) -> Result<()> {
    let mut tx = state.writer().await.begin().await?;
    let at = timestamp::now();
    // One statement for the whole batch (each statement is a round trip to
    // the connection's thread); at most 500 rows (9 parameters each) per
    // statement, well inside SQLite's limit of bound parameters.
    for chunk in entries.chunks(500) {
        let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
            "INSERT INTO audit_log (at, uid, gid, pid, operator, client, action, database, detail) ",
        );
        q.push_values(chunk, |mut b, entry| {
            b.push_bind(at.clone())
                .push_bind(entry.peer.map(|p| p.uid as i64))
                .push_bind(entry.peer.map(|p| p.gid as i64))
                .push_bind(entry.peer.and_then(|p| p.pid).map(i64::from))
                .push_bind(entry.operator.map(str::to_owned))
                .push_bind(entry.client.map(str::to_owned))
                .push_bind(entry.action.to_owned())
                .push_bind(entry.database.to_owned())
                .push_bind(entry.detail.to_string());
        });
        q.build().execute(&mut *tx).await?;
    }
    for (database, n) in writes {
        super::sync_state::count_writes_on(&mut tx, database, *n).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One audit entry as read back (for the scanner's history).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    /// When it was recorded.
    pub at: String,
    /// Socket peer uid, if the request came over the socket.
    pub uid: Option<i64>,
    /// Operator name given.
    pub operator: Option<String>,
    /// HTTP client address, if it came over HTTP.
    pub client: Option<String>,
    /// The action (`scan.connect`, ...).
    pub action: String,
    /// Details as JSON text.
    pub detail: Option<String>,
}

/// The newest `limit` entries of actions starting with `prefix` whose detail
/// names `part` (as a JSON string or inside one), newest first.
pub async fn naming(state: &Db, prefix: &str, part: &str, limit: u32) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as(
        "SELECT at, uid, operator, client, action, detail FROM audit_log
         WHERE substr(action, 1, length(?1)) = ?1 AND instr(detail, ?2) > 0 ORDER BY id DESC LIMIT ?3",
    )
    .bind(prefix)
    .bind(part)
    .bind(i64::from(limit))
    .fetch_all(&*state.reader().await)
    .await?)
}

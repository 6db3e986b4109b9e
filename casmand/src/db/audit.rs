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
/// requests: see [`super::batch`]). The whole transaction is one round trip
/// to the connection's thread: BEGIN, both statements and COMMIT go as one
/// script, whatever the number of entries (they travel as JSON).
pub async fn record_many(state: &Db, entries: &[AuditEntry<'_>], writes: &[(&str, u32)]) -> Result<()> {
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!([
                e.peer.map(|p| p.uid),
                e.peer.map(|p| p.gid),
                e.peer.and_then(|p| p.pid),
                e.operator,
                e.client,
                e.action,
                e.database,
                e.detail.to_string()
            ])
        })
        .collect();
    let counts: Vec<serde_json::Value> = writes.iter().map(|(db, n)| serde_json::json!([db, n])).collect();
    let mut conn = state.writer().await.acquire().await?;
    let done = sqlx::query(
        "BEGIN;
         INSERT INTO audit_log (at, uid, gid, pid, operator, client, action, database, detail)
         SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
                value ->> 7
           FROM json_each(?2) ORDER BY key;
         INSERT INTO activity (database, writes_since_backup, last_write_at, first_unsaved_write_at)
         SELECT value ->> 0, value ->> 1, ?1, ?1 FROM json_each(?3) WHERE true
         ON CONFLICT (database) DO UPDATE SET
             writes_since_backup = writes_since_backup + excluded.writes_since_backup,
             last_write_at = excluded.last_write_at,
             first_unsaved_write_at = COALESCE(first_unsaved_write_at, excluded.first_unsaved_write_at);
         COMMIT",
    )
    // ?N names the N-th argument in every statement of the script.
    .bind(timestamp::now())
    .bind(serde_json::Value::from(rows).to_string())
    .bind(serde_json::Value::from(counts).to_string())
    .execute(&mut *conn)
    .await;
    if let Err(e) = done {
        // Harmless when the transaction did not open or already ended.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e.into());
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::db::Databases;

    /// One script: every entry, the counts, one transaction; counts add up.
    #[tokio::test]
    async fn record_many_writes_entries_and_counts_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        let peer = Peer { uid: 1000, gid: 100, pid: Some(42) };
        let entry = |action, client| AuditEntry {
            peer: Some(peer),
            operator: Some("ana"),
            client,
            action,
            database: "assembled_casm.db",
            detail: serde_json::json!({"source": "ANT00001P1"}),
        };
        let entries = [entry("scan.connect", None), entry("scan.disconnect", Some("10.0.0.9"))];
        record_many(&dbs.state, &entries, &[("assembled_casm.db", 2)]).await.unwrap();
        record_many(&dbs.state, &entries[..1], &[("assembled_casm.db", 1)]).await.unwrap();
        type Row = (i64, i64, i64, String, Option<String>, String, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT uid, gid, pid, operator, client, action, detail FROM audit_log ORDER BY id",
        )
        .fetch_all(&*dbs.state.reader().await)
        .await
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            (
                1000,
                100,
                42,
                "ana".into(),
                Some("10.0.0.9".into()),
                "scan.disconnect".into(),
                r#"{"source":"ANT00001P1"}"#.into()
            )
        );
        let writes =
            super::super::sync_state::writes_since_backup(&dbs.state, "assembled_casm.db").await.unwrap();
        assert_eq!(writes, 3);
    }
}

//! The Python CAsMan's tracker files, read once when its databases are
//! adopted (python-casman-behaviour §7.6, §7.7), so that the first automatic
//! backup comes when it would have and this month's quota is right:
//!
//! * `.scan_tracker.json` (`scans_since_backup`, `last_backup_time`): the
//!   Python counter was shared by both databases (its trigger backed up
//!   both), so both get its count as writes since their last backup and its
//!   time as their last backup;
//! * `.r2_quota_tracker.json`: Class A/B operations, backups and restores
//!   go into the ledger of the month of its `last_reset` (earlier months are
//!   history), `total_storage_bytes` counts as the bytes of the Python
//!   tool's objects, which stay in the bucket.
//!
//! An adopted database casman never backed up is queued for a backup at
//! once (the retry queue keeps trying while offline). What was imported is
//! added to the notes of the adoption report (parts.db's when both were adopted) (`casmanctl database
//! adoption`). The files themselves are left as they are.

use std::path::Path;

use serde::Deserialize;

use super::{ASSEMBLED_DB, Databases, DbError, PARTS_DB, adopt};

/// state.db `meta` key set once the trackers were read.
const IMPORTED_KEY: &str = "legacy_trackers_imported";
/// `quota_storage` row standing for the Python tool's objects.
pub const LEGACY_STORAGE_ROW: &str = "CAsMan tracker";
/// Reason of the backup queued for an adopted database.
pub const ADOPTED_REASON: &str = "adopted";

/// `.scan_tracker.json`.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct ScanTracker {
    /// UTC ISO time of the last triggered backup (null before the first).
    pub last_backup_time: Option<String>,
    /// Writes counted since.
    #[serde(default)]
    pub scans_since_backup: i64,
}

/// `.r2_quota_tracker.json`.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct QuotaTracker {
    /// Bytes uploaded, ever (never decreased by the Python tool).
    pub total_storage_bytes: i64,
    /// Class A operations of the month of `last_reset`.
    pub class_a_ops_month: i64,
    /// Class B operations of that month.
    pub class_b_ops_month: i64,
    /// When the monthly counters were last reset (UTC ISO).
    pub last_reset: Option<String>,
    /// Backups (never reset by the Python tool).
    pub backups_this_month: i64,
    /// Restores (never reset by the Python tool).
    pub restores_this_month: i64,
}

/// A tracker time (`2025-01-15T10:30:00.123456+00:00`, or naive = UTC) as
/// casman's UTC ISO.
fn utc(ts: &str) -> Option<jiff::Timestamp> {
    ts.parse::<jiff::Timestamp>().ok().or_else(|| {
        ts.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path, notes: &mut Vec<String>) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // The Python tool treated an unreadable tracker as fresh defaults too.
            notes.push(format!("{name} not imported: {e}"));
            tracing::warn!(file = %path.display(), error = %e, "unreadable CAsMan tracker not imported");
            None
        }
    }
}

/// Imports the trackers in `dir` after `adopted` databases were adopted
/// (once: later starts do nothing), and queues a first backup of every
/// adopted database casman has not backed up.
pub async fn import(dbs: &Databases, dir: &Path, adopted: &[&'static str]) -> Result<(), DbError> {
    if adopted.is_empty() {
        return Ok(());
    }
    let state = &dbs.state;
    let err = |e: sqlx::Error| DbError::Adopt {
        path: state.path.clone(),
        reason: format!("importing trackers: {e}"),
    };
    let done: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(IMPORTED_KEY)
        .fetch_optional(&*state.reader().await)
        .await
        .map_err(err)?;
    let mut notes = Vec::new();
    let now = crate::timestamp::now();
    let writer = state.writer().await;
    let mut tx = writer.begin().await.map_err(err)?;
    if done.is_none() {
        if let Some(t) = read::<ScanTracker>(&dir.join(".scan_tracker.json"), &mut notes) {
            let last = t.last_backup_time.as_deref().and_then(utc).map(crate::timestamp::format);
            let writes = t.scans_since_backup.max(0);
            for db in [PARTS_DB, ASSEMBLED_DB] {
                sqlx::query(
                    "INSERT INTO activity (database, writes_since_backup, last_write_at, first_unsaved_write_at, last_backup_at)
                     VALUES (?1, ?2, NULL, CASE WHEN ?2 > 0 THEN ?3 END, ?4)
                     ON CONFLICT (database) DO UPDATE SET
                         writes_since_backup = writes_since_backup + ?2,
                         first_unsaved_write_at = COALESCE(first_unsaved_write_at, CASE WHEN ?2 > 0 THEN ?3 END),
                         last_backup_at = COALESCE(last_backup_at, ?4)",
                )
                .bind(db)
                .bind(writes)
                .bind(&now)
                .bind(&last)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            }
            notes.push(format!(
                ".scan_tracker.json imported: {writes} write(s) since the last backup ({}), counted for both databases",
                last.as_deref().unwrap_or("never backed up")
            ));
        }
        if let Some(q) = read::<QuotaTracker>(&dir.join(".r2_quota_tracker.json"), &mut notes) {
            let month = q.last_reset.as_deref().and_then(utc).map(crate::timestamp::month_of);
            let month = month.unwrap_or_else(crate::timestamp::current_month);
            let current = month == crate::timestamp::current_month();
            let n = |v: i64| v.max(0);
            sqlx::query(
                "INSERT INTO quota_ledger (month, class_a, class_b, free, backups, restores, updated_at)
                 VALUES (?, ?, ?, 0, ?, ?, ?)
                 ON CONFLICT (month) DO UPDATE SET
                     class_a = class_a + excluded.class_a, class_b = class_b + excluded.class_b,
                     backups = backups + excluded.backups, restores = restores + excluded.restores,
                     updated_at = excluded.updated_at",
            )
            .bind(&month)
            .bind(n(q.class_a_ops_month))
            .bind(n(q.class_b_ops_month))
            .bind(n(q.backups_this_month))
            .bind(n(q.restores_this_month))
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(
                "INSERT INTO quota_storage (database, stored_bytes, versions, updated_at) VALUES (?, ?, 0, ?)
                 ON CONFLICT (database) DO UPDATE SET stored_bytes = excluded.stored_bytes, updated_at = excluded.updated_at",
            )
            .bind(LEGACY_STORAGE_ROW)
            .bind(n(q.total_storage_bytes))
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            notes.push(format!(
                ".r2_quota_tracker.json imported into {month}{}: class A {}, class B {}, {} backup(s), {} restore(s), {} bytes stored",
                if current { " (this month)" } else { " (an earlier month)" },
                n(q.class_a_ops_month),
                n(q.class_b_ops_month),
                n(q.backups_this_month),
                n(q.restores_this_month),
                n(q.total_storage_bytes),
            ));
        }
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
            .bind(IMPORTED_KEY)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    }
    for db in adopted {
        let backed_up: Option<String> =
            sqlx::query_scalar("SELECT last_backup_key FROM activity WHERE database = ?")
                .bind(*db)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?
                .flatten();
        if backed_up.is_some() {
            continue;
        }
        sqlx::query(
            "INSERT INTO pending_backups (database, reason, first_failed_at, attempts, last_error, next_attempt_at)
             VALUES (?1, ?2, ?3, 0, NULL, ?3) ON CONFLICT (database) DO NOTHING",
        )
        .bind(*db)
        .bind(ADOPTED_REASON)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        notes.push(format!("{db}: first casman backup queued (never backed up by casman)"));
    }
    tx.commit().await.map_err(err)?;
    drop(writer);
    for n in &notes {
        tracing::info!(detail = %n, "adoption");
    }
    // On the report of the first adopted file (parts.db when both were).
    if let Some(db) = adopted.first().and_then(|name| dbs.by_name(name))
        && !notes.is_empty()
    {
        adopt::add_notes(db, &notes).await.map_err(|e| DbError::Adopt {
            path: db.path.clone(),
            reason: format!("recording the tracker import: {e}"),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_files_parse_as_the_python_tool_wrote_them() -> Result<(), serde_json::Error> {
        let s: ScanTracker = serde_json::from_str(
            r#"{"last_backup_time": "2026-11-30T08:15:00.123456+00:00", "scans_since_backup": 7}"#,
        )?;
        assert_eq!(s.scans_since_backup, 7);
        assert_eq!(
            s.last_backup_time.as_deref().and_then(utc).map(crate::timestamp::format).as_deref(),
            Some("2026-11-30T08:15:00Z")
        );
        let fresh: ScanTracker =
            serde_json::from_str(r#"{"last_backup_time": null, "scans_since_backup": 0}"#)?;
        assert_eq!(fresh, ScanTracker::default());
        let q: QuotaTracker = serde_json::from_str(
            r#"{"total_storage_bytes": 5000, "class_a_ops_month": 4, "class_b_ops_month": 2,
                "last_reset": "2026-12-01T00:00:00+00:00", "backups_this_month": 1, "restores_this_month": 1}"#,
        )?;
        assert_eq!((q.class_a_ops_month, q.class_b_ops_month, q.total_storage_bytes), (4, 2, 5000));
        assert_eq!(
            q.last_reset.as_deref().and_then(utc).map(crate::timestamp::month_of).as_deref(),
            Some("2026-12")
        );
        assert!(utc("2026-12-01T00:00:00").is_some());
        Ok(())
    }
}

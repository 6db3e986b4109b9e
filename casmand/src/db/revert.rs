//! Returning a database to a stored version's state by compensating
//! changes (`casmanctl sync revert KEY`): what differs between the live file
//! and the version is written as ordinary changes through the writer, so
//! they are stamped, replicate to every site like any change, and are
//! audited. Nothing is replaced and no history is dropped: a revert is one
//! more step of the log.
//!
//! * parts.db: rows of the tracked tables (parts, antenna positions, SNAP
//!   boards, grid codes) the version lacks are deleted, rows it holds
//!   otherwise or alone are written back with its values.
//! * assembled_casm.db: connections current now and not in the version are
//!   disconnected, and connections current in the version and not now are
//!   connected again, by new scan events stamped now (the log keeps every
//!   event before them).
//!
//! The version's file, already brought to the current schema, is attached
//! as `v` to the connection that compares ([`diff`]) and writes ([`apply`]).

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

use super::{Db, stamping};
use crate::error::{Error, Result};

/// One compensating change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The table (`connections` for the assembly log).
    pub table: String,
    /// The row's key, or `SOURCE -> TARGET` for a connection.
    pub key: String,
    /// `remove`, `restore`, `change` (rows), `disconnect`, `connect`.
    pub action: &'static str,
    /// The row now (JSON), empty when absent.
    pub before: String,
    /// The row as the version holds it (JSON), empty when absent.
    pub after: String,
}

/// The compensating changes and their digest (what a confirmation names,
/// so that what was previewed is what is written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes, by table then key.
    pub steps: Vec<Step>,
    /// SHA-256 (hex) over the steps.
    pub digest: String,
}

impl Plan {
    fn of(steps: Vec<Step>) -> Plan {
        let mut h = Sha256::new();
        for s in &steps {
            for part in [s.table.as_str(), &s.key, s.action, &s.before, &s.after] {
                h.update(part.as_bytes());
                h.update([0]);
            }
        }
        Plan { steps, digest: hex::encode(h.finalize()) }
    }
}

async fn attach(conn: &mut SqliteConnection, version: &std::path::Path) -> Result<()> {
    sqlx::query("ATTACH DATABASE ? AS v")
        .bind(version.to_string_lossy().as_ref())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn detach(conn: &mut SqliteConnection) {
    if let Err(e) = sqlx::query("DETACH DATABASE v").execute(&mut *conn).await {
        tracing::warn!(error = %e, "could not detach the version compared for a revert");
    }
}

/// The compensating changes that would bring `db` to the state of the
/// version file at `version`, read on a read-only connection of its own
/// (nothing waits for it).
pub async fn preview(db: &Db, version: &std::path::Path) -> Result<Plan> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db.path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    attach(&mut conn, version).await?;
    let plan = diff(&mut conn, db.name).await;
    detach(&mut conn).await;
    plan
}

/// Writes the compensating changes to `db` in one write transaction on the
/// writer connection, stamped like any change, if they are still the ones
/// previewed (`digest`); returns them.
pub async fn apply(db: &Db, version: &std::path::Path, digest: &str) -> Result<Plan> {
    let writer = db.writer().await;
    let mut conn = writer.acquire().await?;
    attach(&mut conn, version).await?;
    let done = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let plan = diff(&mut tx, db.name).await?;
        if plan.digest != digest.trim() {
            return Err(Error::Aborted(format!(
                "{} changed since the revert was previewed ({} compensating change(s) now); \
                 nothing was written: preview again",
                db.name,
                plan.steps.len()
            )));
        }
        if db.name == super::ASSEMBLED_DB {
            write_connections(&mut tx, &plan.steps).await?;
        } else {
            for t in stamping::TRACKED {
                write_rows(&mut tx, t).await?;
            }
        }
        tx.commit().await?;
        Ok(plan)
    }
    .await;
    detach(&mut conn).await;
    done
}

async fn has_table(conn: &mut SqliteConnection, schema: &str, name: &str) -> Result<bool> {
    let sql =
        format!("SELECT count(*) FROM {schema}.sqlite_master WHERE type IN ('table', 'view') AND name = ?");
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).bind(name).fetch_one(&mut *conn).await?;
    Ok(n > 0)
}

/// The columns of `tbl` both files hold (all but the local `id`).
async fn columns(conn: &mut SqliteConnection, tbl: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT m.name FROM pragma_table_info(?1, 'main') m
          WHERE m.name <> 'id' AND m.name IN (SELECT name FROM pragma_table_info(?1, 'v')) ORDER BY m.cid",
    )
    .bind(tbl)
    .fetch_all(&mut *conn)
    .await?)
}

async fn diff(conn: &mut SqliteConnection, db_name: &str) -> Result<Plan> {
    let mut steps = Vec::new();
    if db_name == super::ASSEMBLED_DB {
        diff_connections(conn, &mut steps).await?;
    } else {
        for t in stamping::TRACKED {
            if has_table(conn, "main", t).await? && has_table(conn, "v", t).await? {
                diff_rows(conn, t, &mut steps).await?;
            }
        }
    }
    Ok(Plan::of(steps))
}

/// Rows of `tbl` that differ: (key, row now, row in the version), by key.
async fn diff_rows(conn: &mut SqliteConnection, tbl: &str, steps: &mut Vec<Step>) -> Result<()> {
    let Some(key) = stamping::key_column(tbl) else { return Ok(()) };
    let cols = columns(conn, tbl).await?;
    let obj = |side: &str| {
        let f: Vec<String> = cols.iter().map(|c| format!("'{c}', {side}.{c}")).collect();
        format!("json_object({})", f.join(", "))
    };
    let same: Vec<String> = cols.iter().map(|c| format!("c.{c} IS o.{c}")).collect();
    let sql = format!(
        "SELECT CAST(c.{key} AS TEXT), {cur}, CASE WHEN o.{key} IS NULL THEN '' ELSE {old} END
           FROM main.{tbl} c LEFT JOIN v.{tbl} o ON o.{key} = c.{key}
          WHERE o.{key} IS NULL OR NOT ({same})
         UNION ALL
         SELECT CAST(o.{key} AS TEXT), '', {old} FROM v.{tbl} o
          WHERE NOT EXISTS (SELECT 1 FROM main.{tbl} c WHERE c.{key} = o.{key})
         ORDER BY 1",
        cur = obj("c"),
        old = obj("o"),
        same = same.join(" AND ")
    );
    let rows: Vec<(String, String, String)> =
        sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    for (k, before, after) in rows {
        let action = match (before.is_empty(), after.is_empty()) {
            (false, true) => "remove",
            (true, false) => "restore",
            _ => "change",
        };
        steps.push(Step { table: tbl.to_owned(), key: k, action, before, after });
    }
    Ok(())
}

/// Writes the version's rows of `tbl` back: rows it lacks go, rows that
/// differ are written with its values (rows holding unique places, such as
/// positions and slots, are removed first and written again, so two rows
/// that swapped places come back).
async fn write_rows(conn: &mut SqliteConnection, tbl: &str) -> Result<()> {
    let Some(key) = stamping::key_column(tbl) else { return Ok(()) };
    if !has_table(conn, "main", tbl).await? || !has_table(conn, "v", tbl).await? {
        return Ok(());
    }
    let cols = columns(conn, tbl).await?;
    let same: Vec<String> = cols.iter().map(|c| format!("c.{c} IS o.{c}")).collect();
    let same = same.join(" AND ");
    let list = cols.join(", ");
    let picked: Vec<String> = cols.iter().map(|c| format!("o.{c}")).collect();
    let picked = picked.join(", ");
    if tbl == "parts" {
        // Only its number is unique: rows are updated in place.
        let set: Vec<String> = cols
            .iter()
            .filter(|c| c.as_str() != key)
            .map(|c| format!("{c} = (SELECT o.{c} FROM v.parts o WHERE o.{key} = parts.{key})"))
            .collect();
        let sql = format!(
            "DELETE FROM main.parts WHERE NOT EXISTS (SELECT 1 FROM v.parts o WHERE o.{key} = parts.{key});
             UPDATE main.parts SET {set}
              WHERE EXISTS (SELECT 1 FROM v.parts o, main.parts c
                             WHERE o.{key} = parts.{key} AND c.{key} = parts.{key} AND NOT ({same}));
             INSERT INTO main.parts ({list}) SELECT {picked} FROM v.parts o
              WHERE NOT EXISTS (SELECT 1 FROM main.parts c WHERE c.{key} = o.{key}) ORDER BY o.rowid;",
            set = set.join(", ")
        );
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM main.{tbl} WHERE NOT EXISTS (SELECT 1 FROM v.{tbl} o, main.{tbl} c
                                                    WHERE o.{key} = {tbl}.{key} AND c.{key} = {tbl}.{key} AND {same});
         INSERT INTO main.{tbl} ({list}) SELECT {picked} FROM v.{tbl} o
          WHERE NOT EXISTS (SELECT 1 FROM main.{tbl} c WHERE c.{key} = o.{key});"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(())
}

/// The columns of a connection, as `active_connections` names them.
const EDGE: &str = "source, source_type, source_polarization, target, target_type, target_polarization";

/// Connections current in one file and not the other.
async fn diff_connections(conn: &mut SqliteConnection, steps: &mut Vec<Step>) -> Result<()> {
    if !has_table(conn, "main", "active_connections").await?
        || !has_table(conn, "v", "active_connections").await?
    {
        return Ok(());
    }
    // Both sides copied to indexed TEMP tables: the views join the kept
    // state to the log, and each side is probed once per row of the other.
    let sql = format!(
        "DROP TABLE IF EXISTS temp.revert_now; DROP TABLE IF EXISTS temp.revert_then;
         CREATE TEMP TABLE revert_now AS SELECT {EDGE} FROM main.active_connections;
         CREATE TEMP TABLE revert_then AS SELECT {EDGE} FROM v.active_connections;
         CREATE INDEX temp.revert_now_edge ON revert_now(source, target);
         CREATE INDEX temp.revert_then_edge ON revert_then(source, target);"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    let obj = "json_object('source', e.source, 'source_type', e.source_type, 'source_polarization',
                   e.source_polarization, 'target', e.target, 'target_type', e.target_type,
                   'target_polarization', e.target_polarization)";
    let sql = format!(
        "SELECT e.source || ' -> ' || e.target, 'disconnect', {obj}, '' FROM temp.revert_now e
          WHERE NOT EXISTS (SELECT 1 FROM temp.revert_then o WHERE o.source = e.source AND o.target = e.target)
         UNION ALL
         SELECT e.source || ' -> ' || e.target, 'connect', '', {obj} FROM temp.revert_then e
          WHERE NOT EXISTS (SELECT 1 FROM temp.revert_now o WHERE o.source = e.source AND o.target = e.target)
         ORDER BY 2 DESC, 1"
    );
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    sqlx::raw_sql("DROP TABLE temp.revert_now; DROP TABLE temp.revert_then").execute(&mut *conn).await?;
    for (key, action, before, after) in rows {
        let action = if action == "connect" { "connect" } else { "disconnect" };
        steps.push(Step { table: "connections".into(), key, action, before, after });
    }
    Ok(())
}

/// Appends the events of the connection steps (disconnections first), all
/// stamped now.
async fn write_connections(conn: &mut SqliteConnection, steps: &[Step]) -> Result<()> {
    let now = crate::timestamp::now();
    for s in steps.iter().filter(|s| s.table == "connections") {
        let (edge, status) = match s.action {
            "disconnect" => (&s.before, "disconnected"),
            _ => (&s.after, "connected"),
        };
        sqlx::query(
            "INSERT INTO main.assembly (part_number, part_type, polarization, scan_time, connected_to,
                                        connected_to_type, connected_polarization, connected_scan_time, connection_status)
             SELECT ?1 ->> 'source', ?1 ->> 'source_type', ?1 ->> 'source_polarization', ?2, ?1 ->> 'target',
                    ?1 ->> 'target_type', ?1 ->> 'target_polarization', ?2, ?3",
        )
        .bind(edge)
        .bind(&now)
        .bind(status)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{
        db::{Databases, parts, positions},
        inventory::{GridCode, PartType, Polarization},
    };

    async fn places(dbs: &Databases) -> Vec<(String, String)> {
        sqlx::query_as("SELECT antenna_number, grid_code FROM antenna_positions ORDER BY 1")
            .fetch_all(&*dbs.parts.reader().await)
            .await
            .unwrap()
    }

    async fn assign(dbs: &Databases, ant: &str, code: &str) {
        positions::assign(&dbs.parts, ant, GridCode::parse(code).unwrap(), None, true).await.unwrap();
    }

    /// Two antennas that swapped places go back; a plan that went stale
    /// between preview and confirmation writes nothing.
    #[tokio::test]
    async fn swapped_places_come_back_and_a_stale_preview_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dbs = Databases::open(d.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        dbs.stamp_as("site-a").await.unwrap();
        parts::generate(&dbs.parts, &dbs.state, PartType::Antenna, Polarization::P1, 3, 1..=99_999)
            .await
            .unwrap();
        assign(&dbs, "ANT00001", "CN001E01").await;
        assign(&dbs, "ANT00002", "CN001E02").await;
        let version = d.path().join("version.db");
        sqlx::query("VACUUM INTO ?")
            .bind(version.to_string_lossy().as_ref())
            .execute(&*dbs.parts.reader().await)
            .await
            .unwrap();
        let then = places(&dbs).await;
        positions::remove(&dbs.parts, "ANT00001").await.unwrap();
        assign(&dbs, "ANT00002", "CN001E01").await;
        assign(&dbs, "ANT00001", "CN001E02").await;
        let plan = preview(&dbs.parts, &version).await.unwrap();
        assert_eq!(plan.steps.len(), 2, "{plan:?}");
        assert!(plan.steps.iter().all(|s| s.action == "change"), "{plan:?}");
        // A write between preview and confirmation: refused, nothing written.
        assign(&dbs, "ANT00003", "CN001E03").await;
        let now = places(&dbs).await;
        let err = apply(&dbs.parts, &version, &plan.digest).await.unwrap_err();
        assert!(matches!(err, Error::Aborted(_)), "{err}");
        assert_eq!(places(&dbs).await, now);
        let plan = preview(&dbs.parts, &version).await.unwrap();
        assert_eq!(plan.steps.len(), 3, "{plan:?}");
        let done = apply(&dbs.parts, &version, &plan.digest).await.unwrap();
        assert_eq!(done, plan);
        assert_eq!(places(&dbs).await, then);
        assert!(preview(&dbs.parts, &version).await.unwrap().steps.is_empty());
        // Written as changes this site publishes.
        let published = crate::db::changes::local_since(&dbs.parts, "site-a", 0, 1000).await.unwrap();
        assert!(published.iter().any(|c| c.tbl == "antenna_positions" && c.op == "delete"), "{published:?}");
    }
}

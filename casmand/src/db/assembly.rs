//! SQL for the `assembly` event log and its kept current state
//! (`pair_state`, the newest event of every pair, migrations/assembled/0004;
//! the view `active_connections` joins its active rows to the log): reading events and
//! current edges, tracing chains hop by hop, rebuilding the kept state from
//! the log by the canonical rule and checking it for drift.

use std::{collections::BTreeSet, sync::LazyLock};

use sqlx::{Connection, FromRow, SqliteConnection};

use super::{
    Db,
    as_of::{self, At},
    part_code::{codes_of_json, part_code},
};
use crate::{
    error::Result,
    inventory::{Chain, Edge, Event, current_edges, trace_chain},
};

/// One row of `assembly`, as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AssemblyRow {
    /// Row id.
    pub id: i64,
    /// First end as recorded.
    pub part_number: Option<String>,
    /// Its type.
    pub part_type: Option<String>,
    /// Its polarization.
    pub polarization: Option<String>,
    /// When it was scanned (UTC ISO).
    pub scan_time: Option<String>,
    /// Other end as recorded.
    pub connected_to: Option<String>,
    /// Its type.
    pub connected_to_type: Option<String>,
    /// Its polarization.
    pub connected_polarization: Option<String>,
    /// When the other end was scanned.
    pub connected_scan_time: Option<String>,
    /// `connected` or `disconnected`.
    pub connection_status: Option<String>,
}

const COLUMNS: &str = "id, part_number, part_type, polarization, scan_time, connected_to, connected_to_type, \
                       connected_polarization, connected_scan_time, connection_status";

impl AssemblyRow {
    /// The row as an event of the current-state rule; `None` if an end is NULL.
    pub fn event(&self) -> Option<Event> {
        Some(Event {
            id: self.id,
            clock: 0,
            part_number: self.part_number.clone()?,
            part_type: self.part_type.clone(),
            connected_to: self.connected_to.clone()?,
            connected_to_type: self.connected_to_type.clone(),
            scan_time: self.scan_time.clone().unwrap_or_default(),
            connected: self.connection_status.as_deref() != Some("disconnected"),
        })
    }
}

/// Every row, in id order.
pub async fn all_rows(db: &Db) -> Result<Vec<AssemblyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM assembly ORDER BY id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&*db.reader().await).await?)
}

/// The event of every current connection (the `current_connections` view:
/// the kept state joined to the log by id; at `at` when given, see
/// [`as_of`]), oldest first by (scan_time, id).
pub async fn current_rows(db: &Db, at: Option<&At>) -> Result<Vec<AssemblyRow>> {
    let source = match at {
        None => "current_connections".to_owned(),
        Some(at) => format!("assembly WHERE id IN (SELECT event_id FROM {})", as_of::connections(at, "")),
    };
    let sql = format!("SELECT {COLUMNS} FROM {source} ORDER BY COALESCE(scan_time, ''), id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&*db.reader().await).await?)
}

/// The newest `scan_time` or `connected_scan_time` in the log (the legacy
/// tool recorded the second scan of a pair in `connected_scan_time`). The
/// first by index; the second reads the column (no index on it: one more
/// index on every append for a page footer is not worth it).
pub async fn last_scan_time(db: &Db) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(t) FROM (SELECT MAX(scan_time) AS t FROM assembly
                             UNION ALL SELECT MAX(connected_scan_time) FROM assembly)",
    )
    .fetch_one(&*db.reader().await)
    .await?)
}

/// Rows in which any of `parts` is either end, in id order: the parts' pairs
/// and their events from the kept state (`pair_state`, `pair_other`) by key,
/// the rows by id. The log has no index by part (migrations/assembled/0005).
pub async fn rows_touching(conn: &mut SqliteConnection, parts: &[&str]) -> Result<Vec<AssemblyRow>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let codes = codes_of_json(1);
        format!(
            "SELECT {COLUMNS} FROM assembly
              WHERE id IN (SELECT event_id FROM pair_state WHERE lo IN {codes} OR hi IN {codes}
                           UNION ALL
                           SELECT event_id FROM pair_other WHERE lo IN {codes} OR hi IN {codes})
              ORDER BY id"
        )
    });
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(SQL.as_str())).bind(json_names(parts)).fetch_all(conn).await?)
}

/// `parts` as the JSON array the queries of [`codes_of_json`] read.
fn json_names(parts: &[&str]) -> String {
    serde_json::Value::from(parts.to_vec()).to_string()
}

fn events(rows: &[AssemblyRow]) -> Vec<Event> {
    rows.iter().filter_map(AssemblyRow::event).collect()
}

/// A current connection as kept in `active_connections`: the edge and the
/// polarizations its connecting event recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Current {
    /// The edge, oriented as its connecting event recorded it.
    pub edge: Edge,
    /// Polarization recorded for the source.
    pub source_polarization: Option<String>,
    /// Polarization recorded for the target.
    pub target_polarization: Option<String>,
}

#[derive(FromRow)]
struct KeptRow {
    source: String,
    source_type: Option<String>,
    source_polarization: Option<String>,
    target: String,
    target_type: Option<String>,
    target_polarization: Option<String>,
    since: Option<String>,
    event_id: i64,
}

impl From<KeptRow> for Current {
    fn from(r: KeptRow) -> Current {
        Current {
            edge: Edge {
                source: r.source,
                source_type: r.source_type,
                target: r.target,
                target_type: r.target_type,
                scan_time: r.since.unwrap_or_default(),
                event_id: r.event_id,
            },
            source_polarization: r.source_polarization,
            target_polarization: r.target_polarization,
        }
    }
}

pub(super) const KEPT_COLUMNS: &str = "source, source_type, source_polarization, target, target_type, target_polarization, \
                            since, event_id";
/// The order [`current_edges`] returns: oldest first by (scan_time, event id).
pub(super) const KEPT_ORDER: &str = "ORDER BY COALESCE(since, ''), event_id";

/// Every current connection, oldest first, read from the kept state (no
/// pass over the log).
pub async fn current_all(conn: &mut SqliteConnection) -> Result<Vec<Current>> {
    let sql = format!("SELECT {KEPT_COLUMNS} FROM active_connections {KEPT_ORDER}");
    let rows: Vec<KeptRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(conn).await?;
    Ok(rows.into_iter().map(Current::from).collect())
}

/// All current connections (newest event per unordered pair), oldest first.
pub async fn current(db: &Db) -> Result<Vec<Edge>> {
    let mut conn = db.reader().await.acquire().await?;
    Ok(current_all(&mut conn).await?.into_iter().map(|c| c.edge).collect())
}

/// Current connections with any of `parts` at either end, oldest first,
/// looked up in the kept state by its keys, the codes of the pair's ends
/// (the cost does not grow with the parts' history).
pub async fn current_touching(conn: &mut SqliteConnection, parts: &[&str]) -> Result<Vec<Current>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let (codes, kept) = (codes_of_json(1), as_of::log_columns("a"));
        format!(
            "SELECT {kept} FROM pair_state k JOIN assembly a ON a.id = k.event_id
              WHERE k.active AND (k.lo IN {codes} OR k.hi IN {codes}) {KEPT_ORDER}"
        )
    });
    let rows: Vec<KeptRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(SQL.as_str())).bind(json_names(parts)).fetch_all(conn).await?;
    Ok(rows.into_iter().map(Current::from).collect())
}

#[derive(FromRow)]
struct KeptOrLater {
    later: i64,
    #[sqlx(flatten)]
    kept: KeptRow,
}

/// Opens the write transaction (`BEGIN IMMEDIATE`) and, in the same round
/// trip to the connection's thread, reads the kept connections touching any
/// of `parts` (oldest first) and whether the log holds an event of one of
/// them later than `after` (a `scan_time` compared as stored, as the
/// triggers compare it): the newest event of each of their pairs, which
/// `pair_state` names. Both lookups go by key. On an error the
/// transaction may be open: the caller rolls back.
pub async fn begin_reading_kept(
    conn: &mut SqliteConnection,
    parts: &[&str],
    after: &str,
) -> Result<(Vec<Current>, bool)> {
    // Built once: this runs for every batch of scans.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let (codes, kept) = (codes_of_json(1), as_of::log_columns("a"));
        format!(
            "BEGIN IMMEDIATE;
             SELECT 0 AS later, {kept}
               FROM pair_state k JOIN assembly a ON a.id = k.event_id
              WHERE k.active AND (k.lo IN {codes} OR k.hi IN {codes})
             UNION ALL
             SELECT 1, '', NULL, NULL, '', NULL, NULL, NULL, 0
              WHERE EXISTS (SELECT 1 FROM pair_state k JOIN assembly a ON a.id = k.event_id
                             WHERE (k.lo IN {codes} OR k.hi IN {codes}) AND a.scan_time > ?2)"
        )
    });
    let rows: Vec<KeptOrLater> = sqlx::query_as(sqlx::AssertSqlSafe(SQL.as_str()))
        .bind(json_names(parts))
        .bind(after)
        .fetch_all(conn)
        .await?;
    let later = rows.iter().any(|r| r.later != 0);
    let mut kept: Vec<Current> =
        rows.into_iter().filter(|r| r.later == 0).map(|r| Current::from(r.kept)).collect();
    // The order of KEPT_ORDER.
    kept.sort_by(|x, y| (&x.edge.scan_time, x.edge.event_id).cmp(&(&y.edge.scan_time, y.edge.event_id)));
    Ok((kept, later))
}

/// The connections touching any of `parts` at `at` (see [`super::as_of`]),
/// oldest first: the kept state's rows of their pairs, and for a pair
/// changed since, its newest event then, found by key.
pub async fn touching_at(conn: &mut SqliteConnection, parts: &[&str], at: &At) -> Result<Vec<Current>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let codes = codes_of_json(1);
    let source = as_of::connections(at, &format!("WHERE (k.lo IN {codes} OR k.hi IN {codes})"));
    let sql = format!("SELECT {KEPT_COLUMNS} FROM {source} {KEPT_ORDER}");
    let rows: Vec<KeptRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(json_names(parts)).fetch_all(conn).await?;
    Ok(rows.into_iter().map(Current::from).collect())
}

/// Current connections touching any of `parts`, oldest first (from the kept state).
pub async fn edges_touching(conn: &mut SqliteConnection, parts: &[&str]) -> Result<Vec<Edge>> {
    Ok(current_touching(conn, parts).await?.into_iter().map(|c| c.edge).collect())
}

/// Current connections recomputed from the whole log by the canonical rule
/// ([`current_edges`]), with the polarizations of their events.
pub async fn recompute(conn: &mut SqliteConnection) -> Result<Vec<Current>> {
    let sql = format!("SELECT {COLUMNS} FROM assembly ORDER BY id");
    let rows: Vec<AssemblyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    let by_id: std::collections::HashMap<i64, &AssemblyRow> = rows.iter().map(|r| (r.id, r)).collect();
    let clocks: std::collections::HashMap<i64, i64> =
        sqlx::query_as::<_, (i64, i64)>("SELECT event_id, hlc FROM event_origin")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut events = events(&rows);
    for e in &mut events {
        e.clock = clocks.get(&e.id).copied().unwrap_or(0);
    }
    Ok(current_edges(&events)
        .into_iter()
        .map(|edge| {
            let row = by_id.get(&edge.event_id);
            Current {
                source_polarization: row.and_then(|r| r.polarization.clone()),
                target_polarization: row.and_then(|r| r.connected_polarization.clone()),
                edge,
            }
        })
        .collect())
}

/// `casman_meta` key recording when the kept state was last rebuilt from the log.
pub const REBUILT_KEY: &str = "active_connections_rebuilt_at";

/// Rebuilds the kept state from the whole log by the canonical rule, inside
/// the caller's transaction (adoption, restore, pull, merge): every event
/// coded once ([`part_code`]), ranked within its pair, the newest into
/// `pair_state`, the rest into `pair_other`; the indexes are built after the
/// rows (sorted, full pages). Returns the number of current connections.
pub async fn rebuild(conn: &mut SqliteConnection) -> Result<usize> {
    let (x, y) = (part_code("part_number"), part_code("connected_to"));
    let sql = format!(
        "DROP INDEX IF EXISTS pair_state_hi;
         DROP INDEX IF EXISTS pair_other_hi;
         DELETE FROM pair_state;
         DELETE FROM pair_other;
         DROP TABLE IF EXISTS temp.coded_events;
         CREATE TEMP TABLE coded_events AS
           WITH c AS MATERIALIZED (SELECT a.id, COALESCE(a.scan_time, '') AS t, COALESCE(o.hlc, 0) AS h,
                                          a.connection_status IS NOT 'disconnected' AS active, {x} AS x, {y} AS y
                                     FROM assembly a LEFT JOIN event_origin o ON o.event_id = a.id),
                p AS MATERIALIZED (SELECT id, t, h, active, min(x, y) AS lo, max(x, y) AS hi FROM c)
           SELECT id, lo, hi, active,
                  lo = -1 OR row_number() OVER (PARTITION BY lo, hi ORDER BY t DESC, h DESC, id DESC) > 1 AS other
             FROM p;
         INSERT INTO pair_state (lo, hi, event_id, active) SELECT lo, hi, id, active FROM coded_events WHERE NOT other;
         INSERT INTO pair_other (lo, hi, event_id) SELECT lo, hi, id FROM coded_events WHERE other;
         DROP TABLE temp.coded_events;
         CREATE INDEX pair_state_hi ON pair_state(hi);
         CREATE INDEX pair_other_hi ON pair_other(hi);"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pair_state WHERE active").fetch_one(&mut *conn).await?;
    sqlx::query("INSERT INTO casman_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(REBUILT_KEY)
        .bind(crate::timestamp::now())
        .execute(&mut *conn)
        .await?;
    Ok(current as usize)
}

/// Rebuilds the kept state of `db` in its own write transaction.
pub async fn rebuild_db(db: &Db) -> Result<usize> {
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let n = rebuild(&mut tx).await?;
    tx.commit().await?;
    Ok(n)
}

/// After opening (and migrating, adopting, rebuilding): compacts the file if
/// most of it is free pages (the first start after migration 0004, an
/// adoption: the indexes of 0002 and the table of 0003 were built and
/// dropped), or always after an adoption (`adopted`: once per site; the
/// rows written in key order fill B-tree pages to ~88%, VACUUM to ~100%:
/// 21.5 MB -> 20.0 MB on the fixture), and moves the WAL into the file,
/// truncating it (an adoption or a rebuild rewrites every row: the WAL would
/// otherwise stay that size on disk). Returns whether it compacted.
pub async fn settle_file(db: &Db, adopted: bool) -> Result<bool> {
    let writer = db.writer().await;
    let mut conn = writer.acquire().await?;
    let (free, pages): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_count FROM pragma_page_count)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let compact = adopted || (free > 256 && free * 4 > pages);
    if compact {
        sqlx::query("VACUUM").execute(&mut *conn).await?;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await?;
    Ok(compact)
}

/// Whether the kept state has ever been built from the log (false on a file
/// that was just migrated or adopted).
pub async fn was_rebuilt(db: &Db) -> Result<bool> {
    let v: Option<String> = sqlx::query_scalar("SELECT value FROM casman_meta WHERE key = ?")
        .bind(REBUILT_KEY)
        .fetch_optional(&*db.reader().await)
        .await?;
    Ok(v.is_some())
}

/// What comparing the kept state with the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Events in the log.
    pub events: u64,
    /// Current connections by the log (the canonical rule).
    pub by_log: u64,
    /// Rows of the kept state.
    pub kept: u64,
    /// Connections the log implies that the kept state lacks (or keeps differently).
    pub missing: Vec<Current>,
    /// Kept rows the log does not imply.
    pub extra: Vec<Current>,
    /// Events the kept state files under no pair or the wrong one (`history`
    /// would miss them), plus its rows that name no such event.
    pub misfiled: u64,
}

impl Drift {
    /// Whether the kept state equals the log's.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.misfiled == 0
    }
}

/// Compares the kept state with the state recomputed from the log, both read
/// in one read transaction (one consistent snapshot).
pub async fn check(db: &Db) -> Result<Drift> {
    let mut conn = db.reader().await.acquire().await?;
    let mut tx = conn.begin().await?;
    let by_log = recompute(&mut tx).await?;
    let kept = current_all(&mut tx).await?;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assembly").fetch_one(&mut *tx).await?;
    let misfiled = misfiled(&mut tx, events).await?;
    tx.commit().await?;
    let kept_set: std::collections::HashSet<&Current> = kept.iter().collect();
    let log_set: std::collections::HashSet<&Current> = by_log.iter().collect();
    Ok(Drift {
        events: events as u64,
        by_log: by_log.len() as u64,
        kept: kept.len() as u64,
        missing: by_log.iter().filter(|c| !kept_set.contains(c)).cloned().collect(),
        extra: kept.iter().filter(|c| !log_set.contains(c)).cloned().collect(),
        misfiled,
    })
}

/// Events of the log not filed under their pair in exactly one of
/// `pair_state` and `pair_other`, plus rows of those that name no such event.
async fn misfiled(conn: &mut SqliteConnection, events: i64) -> Result<u64> {
    let (x, y) = (part_code("part_number"), part_code("connected_to"));
    let sql = format!(
        "WITH e AS MATERIALIZED (SELECT min(x, y) AS lo, max(x, y) AS hi, id
                                   FROM (SELECT id, {x} AS x, {y} AS y FROM assembly)),
              k AS (SELECT lo, hi, event_id FROM pair_state UNION ALL SELECT lo, hi, event_id FROM pair_other)
         SELECT (SELECT COUNT(*) FROM (SELECT lo, hi, id FROM e EXCEPT SELECT lo, hi, event_id FROM k)),
                (SELECT COUNT(*) FROM k)"
    );
    let (unfiled, filed): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await?;
    // `filed - (events - unfiled)` rows of k match no event (or repeat one).
    Ok((unfiled + filed - (events - unfiled)).max(0) as u64)
}

/// The chain through `part` (at `at` when given), walked hop by hop over
/// indexed lookups (no full scan of the log). Stops after 64 parts, far
/// beyond a real chain.
pub async fn trace(db: &Db, part: &str, at: Option<&At>) -> Result<Chain> {
    let mut conn = db.reader().await.acquire().await?;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut frontier: Vec<String> = vec![part.to_owned()];
    let mut edges: Vec<Edge> = Vec::new();
    while !frontier.is_empty() && seen.len() < 64 {
        let batch: Vec<&str> = frontier.iter().map(String::as_str).collect();
        let found = match at {
            None => edges_touching(&mut conn, &batch).await?,
            Some(at) => touching_at(&mut conn, &batch, at).await?.into_iter().map(|c| c.edge).collect(),
        };
        seen.extend(frontier.drain(..));
        for e in found {
            for end in [&e.source, &e.target] {
                if !seen.contains(end) && !frontier.contains(end) {
                    frontier.push(end.clone());
                }
            }
            if !edges.iter().any(|x| x.event_id == e.event_id) {
                edges.push(e);
            }
        }
    }
    Ok(trace_chain(part, &edges))
}

/// Every row in which `part` is either end, newest first.
pub async fn history(db: &Db, part: &str) -> Result<Vec<AssemblyRow>> {
    let mut conn = db.reader().await.acquire().await?;
    let mut rows = rows_touching(&mut conn, &[part]).await?;
    rows.sort_by(|a, b| (&b.scan_time, b.id).cmp(&(&a.scan_time, a.id)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::db::Databases;

    /// The chains page's reads: one row per current connection (its event),
    /// and the newest time of either column of the whole log.
    #[tokio::test]
    async fn current_rows_and_the_last_scan_time() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        // A legacy row recorded the second scan later, in connected_scan_time.
        for (a, b, t, t2, status) in [
            ("ANT00001P1", "LNA00001P1", "2025-01-01T00:00:00Z", "2025-01-01T00:00:09Z", "connected"),
            ("ANT00002P1", "LNA00002P1", "2025-01-02T00:00:00Z", "2025-01-02T00:00:00Z", "connected"),
            ("ANT00002P1", "LNA00002P1", "2025-01-03T00:00:00Z", "2025-01-05T00:00:00Z", "disconnected"),
        ] {
            sqlx::query(
                "INSERT INTO assembly (part_number, scan_time, connected_to, connected_scan_time, connection_status)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(a)
            .bind(t)
            .bind(b)
            .bind(t2)
            .bind(status)
            .execute(&*dbs.assembled.writer().await)
            .await
            .unwrap();
        }
        let rows = current_rows(&dbs.assembled, None).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].part_number.as_deref(), Some("ANT00001P1"));
        assert_eq!(rows[0].connected_scan_time.as_deref(), Some("2025-01-01T00:00:09Z"));
        assert_eq!(last_scan_time(&dbs.assembled).await.unwrap().as_deref(), Some("2025-01-05T00:00:00Z"));
    }

    /// An install at migration 0003 (the wide `active_connections` table and
    /// the three log indexes, its kept state already built) converts to
    /// 0005: the pair state names the newest event of every pair by the
    /// canonical rule (also disconnected pairs, a NULL scan_time first, an
    /// older event merged in after a newer one) under the codes of its ends,
    /// every other event is filed under its pair (an event with a NULL end
    /// under -1), the views keep their columns, the log keeps no index, the
    /// space of the old tables goes back to the file system and the WAL is
    /// empty.
    #[tokio::test]
    async fn an_install_at_0003_converts_to_the_compact_state() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/assembled");
        for f in ["0001_schema.sql", "0002_indexes.sql", "0003_active_connections.sql"] {
            std::fs::copy(src.join(f), old.join(f)).unwrap();
        }
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let file = data.join(crate::db::ASSEMBLED_DB);
        {
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&opts).await.unwrap();
            sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&mut conn).await.unwrap();
            sqlx::raw_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                 INSERT INTO assembly (part_number, scan_time, connected_to, connection_status)
                 SELECT printf('ANT%05dP1', i), '2025-01-01T00:00:00Z', printf('LNA%05dP1', i), 'connected' FROM n;
                 INSERT INTO assembly (part_number, scan_time, connected_to, connection_status) VALUES
                   ('LNA00001P1', '2025-02-01T00:00:00Z', 'ANT00001P1', 'disconnected'),
                   ('ANT00002P1', '2024-01-01T00:00:00Z', 'LNA00002P1', 'disconnected'),
                   ('X1', NULL, 'Y1', 'connected'),
                   ('Y1', NULL, 'X1', 'disconnected'),
                   ('X2', NULL, 'Y2', 'disconnected'),
                   ('X2', '', 'Y2', 'connected'),
                   ('X3', NULL, NULL, 'connected');
                 INSERT INTO casman_meta (key, value) VALUES ('active_connections_rebuilt_at', 'then');",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM active_connections")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(kept, 20000 - 1 + 1);
            conn.close().await.unwrap();
        }
        let before = std::fs::metadata(&file).unwrap().len();
        let dbs = Databases::open(&data, &jiff::tz::TimeZone::UTC).await.unwrap();
        let db = &dbs.assembled;
        let drift = check(db).await.unwrap();
        assert!(drift.is_clean(), "{drift:?}");
        assert_eq!(drift.kept, 20000 - 1 + 1);
        let mut conn = db.reader().await.acquire().await.unwrap();
        let pairs: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT CAST(lo AS TEXT), CAST(hi AS TEXT), event_id, active FROM pair_state
              WHERE typeof(lo) = 'text' OR lo < 1000030 ORDER BY lo, hi",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let row = |lo: &str, hi: &str, id, active| (lo.to_owned(), hi.to_owned(), id, active);
        assert_eq!(
            pairs,
            [
                row("1000011", "2000011", 20001, 0),
                row("1000021", "2000021", 2, 1),
                row("X1", "Y1", 20004, 0),
                row("X2", "Y2", 20006, 1),
            ]
        );
        let others: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT CAST(lo AS TEXT), CAST(hi AS TEXT), event_id FROM pair_other ORDER BY event_id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let other = |lo: &str, hi: &str, id| (lo.to_owned(), hi.to_owned(), id);
        assert_eq!(
            others,
            [
                other("1000011", "2000011", 1),
                other("1000021", "2000021", 20002),
                other("X1", "Y1", 20003),
                other("X2", "Y2", 20005),
                other("-1", "X3", 20007),
            ]
        );
        let cols: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('current_connections')")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert_eq!(cols.join(" "), COLUMNS.replace(',', ""));
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
               AND tbl_name NOT IN ('change_log', 'event_origin') ORDER BY name",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert_eq!(indexes, ["pair_other_hi", "pair_state_hi"]);
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count").fetch_one(&mut *conn).await.unwrap();
        assert!(free < 64, "{free} free pages");
        drop(conn);
        let after = std::fs::metadata(&file).unwrap().len();
        assert!(after * 3 < before * 2, "{before} -> {after} bytes");
        let wal = std::fs::metadata(data.join(format!("{}-wal", crate::db::ASSEMBLED_DB))).map(|m| m.len());
        assert_eq!(wal.unwrap_or(0), 0);
        // The triggers keep it from here: a newer event, an older one merged in.
        for (a, b, t, status) in [
            ("ANT00001P1", "LNA00001P1", "2025-03-01T00:00:00Z", "connected"),
            ("LNA00002P1", "ANT00002P1", "2023-01-01T00:00:00Z", "disconnected"),
        ] {
            sqlx::query("INSERT INTO assembly (part_number, scan_time, connected_to, connection_status) VALUES (?, ?, ?, ?)")
                .bind(a)
                .bind(t)
                .bind(b)
                .bind(status)
                .execute(&*db.writer().await)
                .await
                .unwrap();
        }
        let drift = check(db).await.unwrap();
        assert!(drift.is_clean(), "{drift:?}");
        assert_eq!(drift.kept, 20000 + 1);
        // history finds every event of a part from either end, a NULL end too.
        let ids = |rows: Vec<AssemblyRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(history(db, "ANT00001P1").await.unwrap()), [20008, 20001, 1]);
        assert_eq!(ids(history(db, "LNA00002P1").await.unwrap()), [2, 20002, 20009]);
        assert_eq!(ids(history(db, "X3").await.unwrap()), [20007]);
        assert_eq!(ids(history(db, "Y2").await.unwrap()), [20006, 20005]);
        // A misfiled event is drift, and a rebuild mends it.
        sqlx::query("DELETE FROM pair_other WHERE event_id = 20007")
            .execute(&*db.writer().await)
            .await
            .unwrap();
        assert_eq!(check(db).await.unwrap().misfiled, 1);
        rebuild_db(db).await.unwrap();
        assert!(check(db).await.unwrap().is_clean());
    }
}

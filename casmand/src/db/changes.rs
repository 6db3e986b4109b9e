//! Changes as sites exchange them (DESIGN.md "Sync between sites"): this
//! site's own changes read from a file in sequence order, and other sites'
//! changes applied to it through the writer connection, idempotently by
//! their identity (site, sequence).
//!
//! What a change is. In parts.db a row written, replaced or deleted in a
//! tracked table (its values as JSON), or a table cleared (`change_log`). In
//! assembled_casm.db a scan event (a row of `assembly` with its
//! `event_origin`), or the log cleared.
//!
//! The state a set of changes implies does not depend on the order they
//! arrive in:
//! * scan events are a log: each is appended once; the current connection
//!   of a pair is its newest event by (scan_time, clock, id) (migration
//!   assembled 0007);
//! * a row of parts.db is what its newest change in the total order (clock,
//!   then site id) says (`row_clock`): an older change arriving later is
//!   recorded in the log and not applied. A row that would take another
//!   row's unique place (a position, a slot) takes it only if its change is
//!   the newer; either way the pair is listed in `exchange_conflicts`;
//! * a clear removes what was older than it.

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

use super::{Db, stamping};
use crate::error::{Error, Result};

/// One change, as a segment carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The site's sequence number of the change in this database.
    pub seq: i64,
    /// Its hybrid logical clock value.
    pub hlc: i64,
    /// The table (`assembly` for scan events).
    pub tbl: String,
    /// `insert`, `update`, `delete` or `clear`.
    pub op: String,
    /// The row's values (absent for a clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<serde_json::Value>,
    /// A scan event from before the upgrade (clock 0): its rank among the
    /// publishing site's such events of the same content (`super::history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<i64>,
}

/// The columns of an event, as a change carries them (the row id is local).
pub(crate) const EVENT_COLUMNS: [&str; 9] = [
    "part_number",
    "part_type",
    "polarization",
    "scan_time",
    "connected_to",
    "connected_to_type",
    "connected_polarization",
    "connected_scan_time",
    "connection_status",
];

/// Whether the file holds table `name`.
pub(crate) async fn has_table(conn: &mut SqliteConnection, name: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// A change as read from a file: (seq, hlc, tbl, op, row, nth).
type LogRow = (i64, i64, String, String, Option<String>, Option<i64>);

/// Changes of site `site_id` in `db` with a sequence number after `after`,
/// in sequence order, at most `limit`: its change log, its scan events, and
/// its rows of `parts` from before the upgrade (numbered in `row_clock`
/// alone, their values read from the table: `super::history`).
pub async fn local_since(db: &Db, site_id: &str, after: i64, limit: i64) -> Result<Vec<Change>> {
    let mut conn = db.reader().await.acquire().await?;
    if !has_table(&mut conn, "change_log").await? {
        return Ok(Vec::new());
    }
    let code: Option<i64> = sqlx::query_scalar("SELECT code FROM sites WHERE site_id = ?")
        .bind(site_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(code) = code else { return Ok(Vec::new()) };
    // Each source is read in sequence order by its (site, seq) index and
    // cut at `limit` before they are merged: a first publication of a
    // large file reads each segment's changes, not the whole file each time.
    let mut sources = vec![
        "SELECT seq, hlc, tbl, op, row, NULL AS nth FROM change_log
          WHERE site = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            .to_owned(),
    ];
    if has_table(&mut conn, "event_origin").await? {
        let fields: Vec<String> = EVENT_COLUMNS.iter().map(|c| format!("'{c}', a.{c}")).collect();
        sources.push(format!(
            "SELECT o.seq, o.hlc, 'assembly', 'insert', json_object({}), o.nth FROM event_origin o
               JOIN assembly a ON a.id = o.event_id WHERE o.site = ?1 AND o.seq > ?2 ORDER BY o.seq LIMIT ?3",
            fields.join(", ")
        ));
    }
    if has_table(&mut conn, "row_clock").await? && has_table(&mut conn, "parts").await? {
        let cols: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('parts') WHERE name <> 'id' ORDER BY cid")
                .fetch_all(&mut *conn)
                .await?;
        let fields: Vec<String> = cols.iter().map(|c| format!("'{c}', t.{c}")).collect();
        sources.push(format!(
            "SELECT r.seq, 0, 'parts', 'insert', json_object({}), NULL FROM row_clock r
               JOIN parts t ON t.part_number = r.key
              WHERE r.site = ?1 AND r.seq > ?2 AND r.hlc = 0 AND r.tbl = 'parts'
                AND NOT EXISTS (SELECT 1 FROM change_log c WHERE c.site = r.site AND c.seq = r.seq)
              ORDER BY r.seq LIMIT ?3",
            fields.join(", ")
        ));
    }
    let merged: Vec<String> = sources.iter().map(|q| format!("SELECT * FROM ({q})")).collect();
    let sql = format!("SELECT * FROM ({}) ORDER BY 1 LIMIT ?3", merged.join(" UNION ALL "));
    let rows: Vec<LogRow> =
        sqlx::query_as(AssertSqlSafe(sql)).bind(code).bind(after).bind(limit).fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|(seq, hlc, tbl, op, row, nth)| {
            let row = row
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| Error::internal("reading a change of the change log", e))?;
            Ok(Change { seq, hlc, tbl, op, row, nth })
        })
        .collect()
}

/// The newest change of site `site_id` in `db` with a sequence number at
/// most `seq` (0 for none): after a restore of an older version, the changes
/// after it that the site published are missing from the file.
pub async fn newest_own_at_most(db: &Db, site_id: &str, seq: i64) -> Result<i64> {
    let mut conn = db.reader().await.acquire().await?;
    if !has_table(&mut conn, "change_log").await? {
        return Ok(0);
    }
    let events = if has_table(&mut conn, "event_origin").await? {
        "(SELECT MAX(o.seq) FROM event_origin o WHERE o.site = s.code AND o.seq <= ?2)"
    } else {
        "NULL"
    };
    // (Rows of parts.db from before the upgrade are numbered in `row_clock`
    // alone: `super::history`.)
    let rows = if has_table(&mut conn, "row_clock").await? {
        "(SELECT MAX(r.seq) FROM row_clock r WHERE r.site = s.code AND r.seq <= ?2)"
    } else {
        "NULL"
    };
    let sql = format!(
        "SELECT max(COALESCE((SELECT MAX(c.seq) FROM change_log c WHERE c.site = s.code AND c.seq <= ?2), 0),
                    COALESCE({events}, 0), COALESCE({rows}, 0))
           FROM sites s WHERE s.site_id = ?1"
    );
    let n: Option<i64> =
        sqlx::query_scalar(AssertSqlSafe(sql)).bind(site_id).bind(seq).fetch_optional(&mut *conn).await?;
    Ok(n.unwrap_or(0))
}

/// The clock of the oldest change of site `site_id` in `db` after sequence
/// number `after` (the oldest change not yet published), if any.
pub async fn oldest_after(db: &Db, site_id: &str, after: i64) -> Result<Option<i64>> {
    Ok(local_since(db, site_id, after, 1).await?.first().map(|c| c.hlc))
}

/// How far `db` has applied each other site's segments: site id →
/// (segment, sequence number of its last change).
pub async fn applied(db: &Db) -> Result<std::collections::HashMap<String, (i64, i64)>> {
    let mut conn = db.reader().await.acquire().await?;
    if !has_table(&mut conn, "exchange_applied").await? {
        return Ok(Default::default());
    }
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT site_id, segment, seq FROM exchange_applied").fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(s, g, q)| (s, (g, q))).collect())
}

/// What applying changes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Changes applied (new to this file and the newest of their row).
    pub applied: u64,
    /// Changes recorded but not applied: an older change of a row (or one
    /// older than a clear) that arrived after a newer one.
    pub superseded: u64,
    /// Changes this file already had.
    pub known: u64,
    /// Rows that could not both stand (see `exchange_conflicts`).
    pub conflicts: u64,
}

impl Applied {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Applied) {
        self.applied += other.applied;
        self.superseded += other.superseded;
        self.known += other.known;
        self.conflicts += other.conflicts;
    }
}

/// Applies `changes` of site `site_id` to `db` in one write transaction on
/// the writer connection (the same single writer as local writes: scans
/// wait at most one such transaction), and, with `through = Some((segment,
/// seq))`, records that the site's segments are applied through that one.
/// Changes this file already has are skipped, so applying again is
/// harmless.
pub async fn apply(
    db: &Db,
    site_id: &str,
    changes: &[Change],
    through: Option<(i64, i64)>,
) -> Result<Applied> {
    let writer = db.writer().await;
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    stamping::pause(&mut tx, true).await?;
    if let Some(newest) = changes.iter().map(|c| c.hlc).max() {
        stamping::observe(&mut tx, newest).await?;
    }
    let code = stamping::site_code(&mut tx, site_id).await?;
    let mut done = Applied::default();
    let mut cleared_events = false;
    let mut touched: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut shapes = Shapes::default();
    for c in changes {
        let outcome = match (c.tbl.as_str(), c.op.as_str()) {
            ("assembly", "insert") => {
                let o = apply_event(&mut tx, code, c).await?;
                if matches!(o, Outcome::Applied) {
                    for end in ["part_number", "connected_to"] {
                        if let Some(p) = c.row.as_ref().and_then(|r| r.get(end)).and_then(|v| v.as_str()) {
                            touched.insert(p.to_owned());
                        }
                    }
                }
                o
            }
            ("assembly", "clear") => {
                cleared_events = true;
                apply_event_clear(&mut tx, code, c).await?
            }
            (t, "clear") if stamping::key_column(t).is_some() => apply_row_clear(&mut tx, code, c).await?,
            (t, "insert" | "update" | "delete") if stamping::key_column(t).is_some() => {
                apply_row(&mut tx, code, site_id, c, &mut shapes).await?
            }
            (t, op) => {
                // A kind of change this version does not know (a newer
                // casmand): kept in the log, not applied.
                tracing::warn!(
                    site = site_id,
                    seq = c.seq,
                    table = t,
                    op,
                    "change of an unknown kind not applied"
                );
                record(&mut tx, code, c).await?;
                Outcome::Superseded
            }
        };
        match outcome {
            Outcome::Applied => done.applied += 1,
            Outcome::Superseded => done.superseded += 1,
            Outcome::Known => done.known += 1,
            Outcome::Conflict { applied } => {
                done.conflicts += 1;
                if applied { done.applied += 1 } else { done.superseded += 1 }
            }
        }
    }
    if cleared_events {
        super::assembly::rebuild(&mut tx).await?;
    }
    for t in ["antenna_positions", "snap_boards"] {
        if changes.iter().any(|c| c.tbl == t) && has_table(&mut tx, "row_clock").await? {
            done.conflicts += place_by_recency(&mut tx, t).await?;
        }
    }
    if !touched.is_empty() || cleared_events {
        recheck_suspects(&mut tx, touched).await?;
    }
    if let Some((segment, seq)) = through {
        sqlx::query(
            "INSERT INTO exchange_applied (site_id, segment, seq) VALUES (?, ?, ?)
             ON CONFLICT (site_id) DO UPDATE SET segment = excluded.segment, seq = excluded.seq",
        )
        .bind(site_id)
        .bind(segment)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    }
    stamping::pause(&mut tx, false).await?;
    tx.commit().await?;
    Ok(done)
}

enum Outcome {
    Applied,
    Superseded,
    Known,
    Conflict { applied: bool },
}

/// Records `c` in the change log; false when it is there already.
async fn record(conn: &mut SqliteConnection, code: i64, c: &Change) -> Result<bool> {
    let row = c.row.as_ref().map(|r| r.to_string());
    let done = sqlx::query(
        "INSERT OR IGNORE INTO change_log (site, seq, hlc, tbl, op, row) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(code)
    .bind(c.seq)
    .bind(c.hlc)
    .bind(&c.tbl)
    .bind(&c.op)
    .bind(row)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The newest clear of the event log this file holds (its clock), if any.
async fn events_cleared_at(conn: &mut SqliteConnection) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT MAX(hlc) FROM change_log WHERE tbl = 'assembly' AND op = 'clear'")
        .fetch_one(&mut *conn)
        .await?)
}

/// Appends the scan event `c` with its origin (written first, so the kept
/// state orders it by its clock), unless the file has it, or a clear newer
/// than it.
async fn apply_event(conn: &mut SqliteConnection, code: i64, c: &Change) -> Result<Outcome> {
    let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM event_origin WHERE site = ? AND seq = ?")
        .bind(code)
        .bind(c.seq)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_some() {
        return Ok(Outcome::Known);
    }
    if events_cleared_at(conn).await?.is_some_and(|at| at > c.hlc) {
        return Ok(Outcome::Superseded);
    }
    let row = c.row.as_ref().map(|r| r.to_string()).unwrap_or_else(|| "{}".into());
    if let (0, Some(nth)) = (c.hlc, c.nth)
        && history_copies(conn, &row).await? >= nth
    {
        // From before the upgrade, and this file holds as many copies.
        return Ok(Outcome::Known);
    }
    let id: i64 = sqlx::query_scalar(
        "SELECT max(COALESCE((SELECT MAX(id) FROM assembly), 0), COALESCE((SELECT MAX(event_id) FROM event_origin), 0)) + 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO event_origin (event_id, site, seq, hlc, nth) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(code)
        .bind(c.seq)
        .bind(c.hlc)
        .bind(c.nth)
        .execute(&mut *conn)
        .await?;
    let values: Vec<String> =
        EVENT_COLUMNS.iter().map(|col| format!("json_extract(?2, '$.{col}')")).collect();
    let sql =
        format!("INSERT INTO assembly (id, {}) VALUES (?1, {})", EVENT_COLUMNS.join(", "), values.join(", "));
    sqlx::query(AssertSqlSafe(sql)).bind(id).bind(row).execute(&mut *conn).await?;
    Ok(Outcome::Applied)
}

/// How many events from before the upgrade (clock 0, or no identity yet)
/// with the content of `row` (an event's JSON) this file holds.
async fn history_copies(conn: &mut SqliteConnection, row: &str) -> Result<i64> {
    let sql = super::history::count_same_content("COALESCE(g.hlc, 0) = 0");
    Ok(sqlx::query_scalar(AssertSqlSafe(sql)).bind(row).fetch_one(&mut *conn).await?)
}

/// A clear of the event log made at another site: the events older than it
/// go (the kept state is rebuilt once at the end of the batch).
async fn apply_event_clear(conn: &mut SqliteConnection, code: i64, c: &Change) -> Result<Outcome> {
    if !record(conn, code, c).await? {
        return Ok(Outcome::Known);
    }
    sqlx::query(
        "DELETE FROM assembly WHERE id IN (SELECT a.id FROM assembly a LEFT JOIN event_origin o ON o.event_id = a.id
                                            WHERE COALESCE(o.hlc, 0) < ?)",
    )
    .bind(c.hlc)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM event_origin WHERE hlc < ?").bind(c.hlc).execute(&mut *conn).await?;
    Ok(Outcome::Applied)
}

/// The newest change of row `key` of `tbl` this file knows: (clock, site id).
async fn row_clock(conn: &mut SqliteConnection, tbl: &str, key: &str) -> Result<Option<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT r.hlc, COALESCE(s.site_id, '') FROM row_clock r LEFT JOIN sites s ON s.code = r.site
          WHERE r.tbl = ? AND r.key = ?",
    )
    .bind(tbl)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?)
}

async fn set_row_clock(conn: &mut SqliteConnection, code: i64, c: &Change, key: &str) -> Result<()> {
    sqlx::query("INSERT OR REPLACE INTO row_clock (tbl, key, hlc, site, seq) VALUES (?, ?, ?, ?, ?)")
        .bind(&c.tbl)
        .bind(key)
        .bind(c.hlc)
        .bind(code)
        .bind(c.seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether a change at (`hlc`, `site`) is newer than `than` in the total order.
fn newer(hlc: i64, site: &str, than: &Option<(i64, String)>) -> bool {
    than.as_ref().is_none_or(|(h, s)| (hlc, site) > (*h, s.as_str()))
}

/// A clear of a table of parts.db made at another site: rows whose newest
/// change is older than it go.
async fn apply_row_clear(conn: &mut SqliteConnection, code: i64, c: &Change) -> Result<Outcome> {
    let Some(key) = stamping::key_column(&c.tbl) else { return Ok(Outcome::Superseded) };
    if !record(conn, code, c).await? {
        return Ok(Outcome::Known);
    }
    let sql = format!(
        "DELETE FROM {t} WHERE {key} NOT IN (SELECT key FROM row_clock WHERE tbl = ?1 AND key <> '' AND hlc > ?2)",
        t = c.tbl
    );
    sqlx::query(AssertSqlSafe(sql)).bind(&c.tbl).bind(c.hlc).execute(&mut *conn).await?;
    let newest = row_clock(conn, &c.tbl, "").await?;
    if newest.is_none_or(|(h, _)| h < c.hlc) {
        set_row_clock(conn, code, c, "").await?;
    }
    Ok(Outcome::Applied)
}

/// The columns of a table a change carries, and its unique column sets.
type Shape = (Vec<String>, Vec<Vec<String>>);

/// [`shape`] read once per table and batch (it is a handful of pragma
/// queries; a batch applies hundreds of rows).
#[derive(Default)]
struct Shapes(std::collections::HashMap<String, Shape>);

impl Shapes {
    async fn of(&mut self, conn: &mut SqliteConnection, tbl: &str, key: &str) -> Result<Shape> {
        if let Some(s) = self.0.get(tbl) {
            return Ok(s.clone());
        }
        let s = shape(conn, tbl, key).await?;
        self.0.insert(tbl.to_owned(), s.clone());
        Ok(s)
    }
}

/// The columns of `tbl` a change carries (all but the local `id`), and its
/// unique column sets other than the key (positions, slots, addresses).
async fn shape(conn: &mut SqliteConnection, tbl: &str, key: &str) -> Result<Shape> {
    let cols: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind(tbl)
        .fetch_all(&mut *conn)
        .await?;
    let cols = cols.into_iter().filter(|c| c != "id").collect();
    let indexes: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_list(?) WHERE \"unique\"")
        .bind(tbl)
        .fetch_all(&mut *conn)
        .await?;
    let mut uniques = Vec::new();
    for idx in indexes {
        let on: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
            .bind(&idx)
            .fetch_all(&mut *conn)
            .await?;
        if !on.is_empty() && on != [key.to_owned()] && on != ["id".to_owned()] {
            uniques.push(on);
        }
    }
    Ok((cols, uniques))
}

fn key_of(c: &Change, key: &str) -> Option<String> {
    match c.row.as_ref()?.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Brings the contested places of parts.db (antenna positions, SNAP board
/// slots) to what the set of changes says ([`place_by_recency`]), in one
/// write transaction; writes only what differs. Run at every pull, so a
/// place freed here (a position removed) goes to the row that wants it
/// next at every site alike. Returns the conflicts found.
pub async fn settle_places(db: &Db) -> Result<u64> {
    let writer = db.writer().await;
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    if !has_table(&mut tx, "row_clock").await? {
        return Ok(0);
    }
    stamping::pause(&mut tx, true).await?;
    let mut n = 0;
    for t in ["antenna_positions", "snap_boards"] {
        n += place_by_recency(&mut tx, t).await?;
    }
    stamping::pause(&mut tx, false).await?;
    tx.commit().await?;
    Ok(n)
}

/// The rows of `tbl` (antenna positions, SNAP boards: tables whose rows
/// hold unique places besides their key) as the set of changes says,
/// whatever order they arrived in: every key's newest change, if it is not
/// a deletion, is the row it wants; taken newest first (clock, then site
/// id), a row takes its places unless a newer row holds one of them, in
/// which case it gives way and the pair is a conflict. The table is brought
/// to that state (rows that differ are replaced; local ids of unchanged
/// rows stay). Returns the conflicts found.
async fn place_by_recency(conn: &mut SqliteConnection, tbl: &str) -> Result<u64> {
    let Some(key_col) = stamping::key_column(tbl) else { return Ok(0) };
    let (cols, uniques) = shape(conn, tbl, key_col).await?;
    let fields: Vec<String> = cols.iter().map(|c| format!("'{c}', t.{c}")).collect();
    let fields = fields.join(", ");
    // Wanted rows: each key's newest change (its row, unless a deletion or a
    // change that moved the row to another key), newer than the last clear;
    // and rows no change of which is known (from before the upgrade).
    let sql = format!(
        "SELECT r.key, r.hlc, COALESCE(s.site_id, ''), c.op, c.row FROM row_clock r
           JOIN change_log c ON c.site = r.site AND c.seq = r.seq
           LEFT JOIN sites s ON s.code = r.site
          WHERE r.tbl = ?1 AND r.key <> ''
            AND r.hlc > COALESCE((SELECT hlc FROM row_clock WHERE tbl = ?1 AND key = ''), -1)
         UNION ALL
         SELECT CAST(t.{key_col} AS TEXT), 0, '', 'insert', json_object({fields}) FROM {tbl} t
          WHERE CAST(t.{key_col} AS TEXT) NOT IN (SELECT key FROM row_clock WHERE tbl = ?1)"
    );
    let rows: Vec<(String, i64, String, String, Option<String>)> =
        sqlx::query_as(AssertSqlSafe(sql)).bind(tbl).fetch_all(&mut *conn).await?;
    let mut wanted: Vec<(String, i64, String, serde_json::Value)> = Vec::new();
    for (key, hlc, site, op, row) in rows {
        let Some(row) = row.and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok()) else {
            continue;
        };
        // (The keys of these tables are text.)
        let same_key = row.get(key_col).and_then(|v| v.as_str()) == Some(key.as_str());
        if op != "delete" && same_key {
            wanted.push((key, hlc, site, row));
        }
    }
    wanted.sort_by(|a, b| (b.1, &b.2, &b.0).cmp(&(a.1, &a.2, &a.0)));
    let place = |row: &serde_json::Value, on: &[String]| -> Option<String> {
        let vals: Vec<&serde_json::Value> =
            on.iter().map(|c| row.get(c).unwrap_or(&serde_json::Value::Null)).collect();
        (!vals.iter().any(|v| v.is_null()))
            .then(|| serde_json::Value::from(vals.into_iter().cloned().collect::<Vec<_>>()).to_string())
    };
    let mut taken: Vec<std::collections::HashMap<String, (String, i64)>> =
        vec![Default::default(); uniques.len()];
    let mut kept: std::collections::HashMap<String, serde_json::Value> = Default::default();
    let mut conflicts = 0;
    let now = crate::timestamp::now();
    for (key, hlc, _, row) in &wanted {
        let holder = uniques
            .iter()
            .enumerate()
            .find_map(|(i, on)| place(row, on).and_then(|p| taken[i].get(&p).cloned()));
        if let Some((winner, at)) = holder {
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM exchange_conflicts WHERE tbl = ? AND kept_key = ? AND lost_key = ? AND hlc = ?",
            )
            .bind(tbl)
            .bind(&winner)
            .bind(key)
            .bind(at.max(*hlc))
            .fetch_optional(&mut *conn)
            .await?;
            if known.is_none() {
                note_conflict(conn, tbl, &winner, key, at.max(*hlc), &now).await?;
                conflicts += 1;
            }
            continue;
        }
        for (i, on) in uniques.iter().enumerate() {
            if let Some(p) = place(row, on) {
                taken[i].insert(p, (key.clone(), *hlc));
            }
        }
        kept.insert(key.clone(), row.clone());
    }
    // The table now: rows that are not wanted, or differ, go; wanted rows
    // missing then come in.
    let sql = format!("SELECT CAST(t.{key_col} AS TEXT), json_object({fields}) FROM {tbl} t");
    let current: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    let mut present = std::collections::HashSet::new();
    for (key, row) in current {
        let row: serde_json::Value = serde_json::from_str(&row).unwrap_or_default();
        let same = kept.get(&key).is_some_and(|want| cols.iter().all(|c| want.get(c) == row.get(c)));
        if same {
            present.insert(key);
        } else {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {tbl} WHERE CAST({key_col} AS TEXT) = ?")))
                .bind(&key)
                .execute(&mut *conn)
                .await?;
        }
    }
    let values: Vec<String> = cols.iter().map(|c| format!("json_extract(?1, '$.{c}')")).collect();
    let insert = format!("INSERT INTO {tbl} ({}) VALUES ({})", cols.join(", "), values.join(", "));
    for (key, row) in &kept {
        if !present.contains(key) {
            sqlx::query(AssertSqlSafe(insert.clone())).bind(row.to_string()).execute(&mut *conn).await?;
        }
    }
    Ok(conflicts)
}

/// A row of parts.db written or deleted at another site, applied if it is
/// the row's newest change.
async fn apply_row(
    conn: &mut SqliteConnection,
    code: i64,
    site_id: &str,
    c: &Change,
    shapes: &mut Shapes,
) -> Result<Outcome> {
    let Some(key_col) = stamping::key_column(&c.tbl) else { return Ok(Outcome::Superseded) };
    if c.hlc == 0 && c.tbl == "parts" {
        return apply_history_part(conn, code, site_id, c, shapes).await;
    }
    if !record(conn, code, c).await? {
        return Ok(Outcome::Known);
    }
    let Some(key) = key_of(c, key_col) else { return Ok(Outcome::Superseded) };
    let cleared = row_clock(conn, &c.tbl, "").await?;
    if !newer(c.hlc, site_id, &row_clock(conn, &c.tbl, &key).await?)
        || cleared.as_ref().is_some_and(|(h, _)| *h > c.hlc)
    {
        return Ok(Outcome::Superseded);
    }
    let t = c.tbl.as_str();
    if c.op == "delete" {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {t} WHERE {key_col} = ?")))
            .bind(&key)
            .execute(&mut *conn)
            .await?;
        set_row_clock(conn, code, c, &key).await?;
        return Ok(Outcome::Applied);
    }
    let (cols, uniques) = shapes.of(conn, t, key_col).await?;
    if !uniques.is_empty() {
        // Positions and slots: which row holds a contested place is decided
        // for the whole table once the batch is in (`place_by_recency`).
        set_row_clock(conn, code, c, &key).await?;
        return Ok(Outcome::Applied);
    }
    let row = c.row.as_ref().map(|r| r.to_string()).unwrap_or_else(|| "{}".into());
    // Rows holding a unique place this row takes.
    let mut displaced: Vec<String> = Vec::new();
    for on in &uniques {
        let cond: Vec<String> =
            on.iter().map(|col| format!("{col} IS json_extract(?2, '$.{col}')")).collect();
        let sql = format!(
            "SELECT CAST({key_col} AS TEXT) FROM {t} WHERE {} AND {key_col} IS NOT ?1",
            cond.join(" AND ")
        );
        let keys: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(sql)).bind(&key).bind(&row).fetch_all(&mut *conn).await?;
        for k in keys {
            if !displaced.contains(&k) {
                displaced.push(k);
            }
        }
    }
    let mut lost_to = None;
    for k in &displaced {
        let theirs = row_clock(conn, t, k).await?;
        if !newer(c.hlc, site_id, &theirs) {
            lost_to = Some((k.clone(), theirs.map_or(c.hlc, |(h, _)| h)));
        }
    }
    let now = crate::timestamp::now();
    if let Some((winner, at)) = lost_to {
        note_conflict(conn, t, &winner, &key, at, &now).await?;
        return Ok(Outcome::Conflict { applied: false });
    }
    for k in &displaced {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {t} WHERE {key_col} = ?")))
            .bind(k)
            .execute(&mut *conn)
            .await?;
        note_conflict(conn, t, &key, k, c.hlc, &now).await?;
    }
    upsert(conn, t, key_col, &cols, &row).await?;
    set_row_clock(conn, code, c, &key).await?;
    Ok(if displaced.is_empty() { Outcome::Applied } else { Outcome::Conflict { applied: true } })
}

/// A part from before the upgrade at another site (`super::history`):
/// every site may hold the same row, so it is not copied to the change log;
/// it replaces this file's row if its clock (0, then site id) is the newer
/// and the values differ.
async fn apply_history_part(
    conn: &mut SqliteConnection,
    code: i64,
    site_id: &str,
    c: &Change,
    shapes: &mut Shapes,
) -> Result<Outcome> {
    let Some(key) = key_of(c, "part_number") else { return Ok(Outcome::Superseded) };
    let cleared = row_clock(conn, "parts", "").await?.is_some();
    if cleared || !newer(0, site_id, &row_clock(conn, "parts", &key).await?) {
        return Ok(Outcome::Superseded);
    }
    // (`parts` holds no unique place besides its number.)
    let (cols, _) = shapes.of(conn, "parts", "part_number").await?;
    let fields: Vec<String> = cols.iter().map(|col| format!("'{col}', {col}")).collect();
    let sql = format!("SELECT json_object({}) FROM parts WHERE part_number = ?", fields.join(", "));
    let local: Option<String> =
        sqlx::query_scalar(AssertSqlSafe(sql)).bind(&key).fetch_optional(&mut *conn).await?;
    let local: Option<serde_json::Value> = local.and_then(|l| serde_json::from_str(&l).ok());
    let row = c.row.as_ref();
    let same = local.as_ref().zip(row).is_some_and(|(l, r)| cols.iter().all(|col| l.get(col) == r.get(col)));
    set_row_clock(conn, code, c, &key).await?;
    if same {
        return Ok(Outcome::Known);
    }
    let row = row.map(|r| r.to_string()).unwrap_or_else(|| "{}".into());
    upsert(conn, "parts", "part_number", &cols, &row).await?;
    Ok(Outcome::Applied)
}

/// Writes `row` (JSON with `cols`) into `tbl`, replacing the values of the
/// row with the same `key_col` if there is one.
async fn upsert(
    conn: &mut SqliteConnection,
    tbl: &str,
    key_col: &str,
    cols: &[String],
    row: &str,
) -> Result<()> {
    let values: Vec<String> = cols.iter().map(|col| format!("json_extract(?1, '$.{col}')")).collect();
    let updates: Vec<String> =
        cols.iter().filter(|c| c.as_str() != key_col).map(|col| format!("{col} = excluded.{col}")).collect();
    let sql = format!(
        "INSERT INTO {tbl} ({}) VALUES ({}) ON CONFLICT ({key_col}) DO UPDATE SET {}",
        cols.join(", "),
        values.join(", "),
        updates.join(", ")
    );
    sqlx::query(AssertSqlSafe(sql)).bind(row).execute(&mut *conn).await?;
    Ok(())
}

async fn note_conflict(
    conn: &mut SqliteConnection,
    tbl: &str,
    kept: &str,
    lost: &str,
    hlc: i64,
    now: &str,
) -> Result<()> {
    let what = match tbl {
        "antenna_positions" => "antenna position",
        "snap_boards" => "SNAP board place",
        _ => "unique value",
    };
    let detail = format!(
        "{kept} and {lost} were given the same {what} at different sites; {kept} (the newer change) holds it, \
         {lost}'s change is kept in the log; change either to resolve"
    );
    sqlx::query("INSERT INTO exchange_conflicts (tbl, kept_key, lost_key, hlc, detail, found_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(tbl)
        .bind(kept)
        .bind(lost)
        .bind(hlc)
        .bind(detail)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A combination that breaks a rule, made by changes that met in an
/// exchange, still standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// What kind: `two incoming`, `two outgoing` (connections), or the table
    /// of parts.db whose unique place two rows were given.
    pub kind: String,
    /// The part (or row key) the rule is about.
    pub subject: String,
    /// The other ends or rows concerned.
    pub with: Vec<String>,
    /// In words, with what to do.
    pub detail: String,
}

impl Conflict {
    /// Whether the conflict is about `part` (a part number such as
    /// `ANT00002P1`; rows of parts.db are named by an antenna or board
    /// number, which the part number of its polarizations begins with).
    pub fn concerns(&self, part: &str) -> bool {
        let names = |key: &str| {
            key == part || part.strip_prefix(key).is_some_and(|rest| rest.len() == 2 && rest.starts_with('P'))
        };
        names(&self.subject) || self.with.iter().any(|w| names(w))
    }
}

/// The conflicts standing in parts.db: pairs of rows that were given one
/// unique place, neither changed since.
pub async fn row_conflicts(db: &Db) -> Result<Vec<Conflict>> {
    let mut conn = db.reader().await.acquire().await?;
    if !has_table(&mut conn, "exchange_conflicts").await? {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.tbl, c.kept_key, c.lost_key, c.detail FROM exchange_conflicts c
          WHERE NOT EXISTS (SELECT 1 FROM row_clock r WHERE r.tbl = c.tbl AND r.key IN (c.kept_key, c.lost_key)
                              AND r.hlc > c.hlc)
          GROUP BY c.tbl, c.kept_key, c.lost_key ORDER BY MIN(c.id)",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, kept, lost, detail)| Conflict { kind, subject: kept, with: vec![lost], detail })
        .collect())
}

/// The connection rules the current connections of `parts` break (a part
/// receiving from two sources, or sending to two targets), by kind, then
/// part.
async fn broken_rules(conn: &mut SqliteConnection, parts: &[String]) -> Result<Vec<Conflict>> {
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let current = super::assembly::current_touching(conn, &refs).await?;
    let mut out = Vec::new();
    for (kind, incoming) in [("two incoming", true), ("two outgoing", false)] {
        for part in parts {
            let mut with: Vec<String> = current
                .iter()
                .filter(|c| if incoming { &c.edge.target == part } else { &c.edge.source == part })
                .map(|c| if incoming { c.edge.source.clone() } else { c.edge.target.clone() })
                .collect();
            if with.len() < 2 {
                continue;
            }
            with.sort();
            let verb = if incoming { "connected from" } else { "connected to" };
            let detail = format!(
                "{part} is {verb} {} (scanned at different sites); disconnect the wrong one",
                with.join(" and ")
            );
            out.push(Conflict { kind: kind.into(), subject: part.clone(), with, detail });
        }
    }
    Ok(out)
}

/// After events of other sites were applied: the parts they touched and
/// the suspects from before are checked against the rules; those breaking
/// one are the suspects now.
async fn recheck_suspects(
    conn: &mut SqliteConnection,
    touched: std::collections::BTreeSet<String>,
) -> Result<()> {
    let mut parts = touched;
    let before: std::collections::BTreeSet<String> = sqlx::query_scalar("SELECT part FROM exchange_suspects")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    parts.extend(before.iter().cloned());
    let parts: Vec<String> = parts.into_iter().collect();
    let mut broken: std::collections::BTreeMap<String, Conflict> = std::collections::BTreeMap::new();
    for chunk in parts.chunks(500) {
        for c in broken_rules(conn, chunk).await? {
            broken.entry(c.subject.clone()).or_insert(c);
        }
    }
    // Only what changed is written, and logged in `conflict_log` (the
    // change feed's opened and resolved conflicts).
    let logged = has_table(conn, "conflict_log").await?;
    let now = crate::timestamp::now();
    for p in before.difference(&broken.keys().cloned().collect()) {
        sqlx::query("DELETE FROM exchange_suspects WHERE part = ?").bind(p).execute(&mut *conn).await?;
        if logged {
            sqlx::query(
                "INSERT INTO conflict_log (at, state, kind, subject, other)
                 SELECT ?1, 'resolved', kind, subject, other FROM conflict_log
                  WHERE id = (SELECT MAX(id) FROM conflict_log WHERE subject = ?2 AND state = 'opened'
                                AND kind IN ('connections', 'two incoming', 'two outgoing'))",
            )
            .bind(&now)
            .bind(p)
            .execute(&mut *conn)
            .await?;
        }
    }
    for (p, c) in &broken {
        if before.contains(p) {
            continue;
        }
        sqlx::query("INSERT INTO exchange_suspects (part) VALUES (?)").bind(p).execute(&mut *conn).await?;
        if logged {
            sqlx::query(
                "INSERT INTO conflict_log (at, state, kind, subject, other, detail) VALUES (?, 'opened', ?, ?, ?, ?)",
            )
            .bind(&now)
            .bind(&c.kind)
            .bind(p)
            .bind(c.with.join(", "))
            .bind(&c.detail)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The connection rules broken in assembled_casm.db by changes from other
/// sites (a part receiving from two sources, or sending to two targets),
/// read from the current connections of the parts found breaking one when
/// those changes were applied (`exchange_suspects`): a scan that resolved
/// one since is seen at once; the cost is that of the suspects, not of the
/// whole assembly. (A file adopted from the Python tool may hold older
/// breaks of its own; they are not conflicts between sites.)
pub async fn connection_conflicts(db: &Db) -> Result<Vec<Conflict>> {
    let mut conn = db.reader().await.acquire().await?;
    if !has_table(&mut conn, "exchange_suspects").await? {
        return Ok(Vec::new());
    }
    let parts: Vec<String> =
        sqlx::query_scalar("SELECT part FROM exchange_suspects ORDER BY part").fetch_all(&mut *conn).await?;
    broken_rules(&mut conn, &parts).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{
        db::{Databases, batch::run_batch, parts, positions, scans},
        inventory::{GridCode, PartType, Polarization},
    };

    async fn site(dir: &std::path::Path, name: &str) -> Databases {
        let dbs = Databases::open(dir, &jiff::tz::TimeZone::UTC).await.unwrap();
        dbs.stamp_as(name).await.unwrap();
        dbs
    }

    async fn connect(dbs: &Databases, a: &str, b: &str, connected: bool) -> bool {
        let (source, target) =
            (scans::resolve(&dbs.parts, a).await.unwrap(), scans::resolve(&dbs.parts, b).await.unwrap());
        let op = if connected {
            scans::ScanOp::Connect { source, target }
        } else {
            scans::ScanOp::Disconnect { a: source.id, b: target.id }
        };
        run_batch(&dbs.assembled, &[&op]).await[0].is_ok()
    }

    /// Everything `from` made, applied to `to`.
    async fn send(from: &Databases, from_site: &str, to: &Databases) {
        for (f, t) in [(&from.parts, &to.parts), (&from.assembled, &to.assembled)] {
            let all = local_since(f, from_site, 0, 1_000_000).await.unwrap();
            apply(t, from_site, &all, Some((1, all.last().map_or(0, |c| c.seq)))).await.unwrap();
        }
    }

    async fn state(dbs: &Databases) -> (Vec<(String, String)>, Vec<(String, String)>, i64) {
        let edges: Vec<(String, String)> =
            sqlx::query_as("SELECT source, target FROM active_connections ORDER BY source, target")
                .fetch_all(&*dbs.assembled.reader().await)
                .await
                .unwrap();
        let pos: Vec<(String, String)> =
            sqlx::query_as("SELECT antenna_number, grid_code FROM antenna_positions ORDER BY antenna_number")
                .fetch_all(&*dbs.parts.reader().await)
                .await
                .unwrap();
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM assembly")
            .fetch_one(&*dbs.assembled.reader().await)
            .await
            .unwrap();
        (edges, pos, events)
    }

    /// Two sites change the same things offline, then exchange in opposite
    /// orders (and twice): both end with the same connections and
    /// positions, every event once, and the broken rules listed.
    #[tokio::test]
    async fn two_sites_converge_whatever_the_order_and_conflicts_are_listed() {
        let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (site(da.path(), "site-a").await, site(db_.path(), "site-b").await);
        // Parts from A, sent to B (both sites know them).
        for t in [PartType::Antenna, PartType::Lna] {
            parts::generate(&a.parts, &a.state, t, Polarization::P1, 3, 1..=99_999).await.unwrap();
        }
        send(&a, "site-a", &b).await;
        assert_eq!(state(&b).await.2, 0);
        // Offline: both connect something into LNA00001P1; a same-second
        // reconnect at A; both place an antenna at one position.
        assert!(connect(&a, "ANT00001P1", "LNA00001P1", true).await);
        assert!(connect(&b, "ANT00002P1", "LNA00001P1", true).await);
        assert!(connect(&a, "ANT00003P1", "LNA00003P1", true).await);
        assert!(connect(&a, "ANT00003P1", "LNA00003P1", false).await);
        assert!(connect(&a, "ANT00003P1", "LNA00003P1", true).await);
        let code = GridCode::parse("CN002E03").unwrap();
        positions::assign(&a.parts, "ANT00001", code, None, false).await.unwrap();
        positions::assign(&b.parts, "ANT00002", code, None, false).await.unwrap();
        // Exchange, in opposite orders, then again (nothing new).
        send(&b, "site-b", &a).await;
        send(&a, "site-a", &b).await;
        send(&a, "site-a", &b).await;
        send(&b, "site-b", &a).await;
        let (sa, sb) = (state(&a).await, state(&b).await);
        assert_eq!(sa, sb);
        assert_eq!(sa.2, 5, "every event once: {sa:?}");
        // B's assignment is the newer: it holds the position at both sites.
        assert_eq!(sa.1, vec![("ANT00002".into(), "CN002E03".into())]);
        for s in [&a, &b] {
            let c = connection_conflicts(&s.assembled).await.unwrap();
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!((c[0].kind.as_str(), c[0].subject.as_str()), ("two incoming", "LNA00001P1"));
            let r = row_conflicts(&s.parts).await.unwrap();
            assert_eq!(r.len(), 1, "{r:?}");
            assert_eq!((r[0].subject.as_str(), r[0].with[0].as_str()), ("ANT00002", "ANT00001"));
        }
        // An ordinary scan at A resolves the connection conflict; sent to B,
        // it is resolved there too.
        assert!(connect(&a, "ANT00002P1", "LNA00001P1", false).await);
        send(&a, "site-a", &b).await;
        assert!(connection_conflicts(&a.assembled).await.unwrap().is_empty());
        assert!(connection_conflicts(&b.assembled).await.unwrap().is_empty());
        assert_eq!(state(&a).await, state(&b).await);
        // The kept state is what the log implies at both.
        for s in [&a, &b] {
            assert!(crate::db::assembly::check(&s.assembled).await.unwrap().is_clean());
        }
    }

    /// Writes made before the upgrade: no identity.
    async fn before_upgrade(dbs: &Databases, events: &[(&str, &str, &str)], parts: &[(&str, &str)]) {
        for (a, b, t) in events {
            sqlx::query(
                "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to,
                   connected_to_type, connected_polarization, connected_scan_time, connection_status)
                 VALUES (?, 'ANTENNA', 'P1', ?, ?, 'LNA', 'P1', ?, 'connected')",
            )
            .bind(a)
            .bind(t)
            .bind(b)
            .bind(t)
            .execute(&*dbs.assembled.writer().await)
            .await
            .unwrap();
        }
        for (pn, created) in parts {
            sqlx::query(
                "INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified)
                 VALUES (?, 'LNA', 'P1', ?, ?)",
            )
            .bind(pn)
            .bind(created)
            .bind(created)
            .execute(&*dbs.parts.writer().await)
            .await
            .unwrap();
        }
    }

    async fn enter_and_send(from: &Databases, from_site: &str, to: &Databases, to_site: &str) {
        for (f, t) in [(&from.parts, &to.parts), (&from.assembled, &to.assembled)] {
            crate::db::history::enter(f, from_site).await.unwrap();
            crate::db::history::enter(t, to_site).await.unwrap();
        }
        send(from, from_site, to).await;
    }

    async fn parts_of(dbs: &Databases) -> Vec<(String, String)> {
        sqlx::query_as("SELECT part_number, date_created FROM parts ORDER BY part_number")
            .fetch_all(&*dbs.parts.reader().await)
            .await
            .unwrap()
    }

    /// History from before the upgrade, shared by whole-file sync then
    /// diverged offline, enters the exchange: sites upgraded one after
    /// another end with every event (the most copies any site had, never
    /// the sum), every part, and one value of a part both changed.
    #[tokio::test]
    async fn history_from_before_the_upgrade_is_exchanged_once() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let utc = jiff::tz::TimeZone::UTC;
        let a = Databases::open(dirs[0].path(), &utc).await.unwrap();
        let b = Databases::open(dirs[1].path(), &utc).await.unwrap();
        let c = Databases::open(dirs[2].path(), &utc).await.unwrap();
        let t0 = "2025-01-01 10:00:00";
        // Shared history (A holds one event twice: a double scan).
        let shared = [("ANT00001P1", "LNA00001P1", t0)];
        before_upgrade(
            &a,
            &[shared[0], shared[0], ("ANT00002P1", "LNA00002P1", "2025-02-01 10:00:00")],
            &[("LNA00001P1", "2025-01-01"), ("LNA00004P1", "2025-03-01")],
        )
        .await;
        before_upgrade(
            &b,
            &[shared[0], ("ANT00003P1", "LNA00003P1", "2025-02-02 10:00:00")],
            &[("LNA00001P1", "2025-01-01"), ("LNA00004P1", "2025-03-02"), ("LNA00005P1", "2025-03-03")],
        )
        .await;
        // Upgraded one after another: A first (and scans), then B, then C new.
        a.stamp_as("site-a").await.unwrap();
        before_upgrade(&b, &[], &[]).await;
        b.stamp_as("site-b").await.unwrap();
        c.stamp_as("site-c").await.unwrap();
        enter_and_send(&a, "site-a", &b, "site-b").await;
        enter_and_send(&b, "site-b", &a, "site-a").await;
        enter_and_send(&a, "site-a", &c, "site-c").await;
        enter_and_send(&b, "site-b", &c, "site-c").await;
        // Again: nothing new.
        enter_and_send(&a, "site-a", &b, "site-b").await;
        enter_and_send(&b, "site-b", &c, "site-c").await;
        let (sa, sb, sc) = (state(&a).await, state(&b).await, state(&c).await);
        assert_eq!(sa, sb);
        assert_eq!(sa, sc);
        assert_eq!(sa.2, 4, "the double scan twice, the others once: {sa:?}");
        assert_eq!(sa.0.len(), 3, "{sa:?}");
        let pa = parts_of(&a).await;
        assert_eq!(pa, parts_of(&b).await);
        assert_eq!(pa, parts_of(&c).await);
        // LNA00004P1 differed: the greater site id's value everywhere.
        assert!(pa.contains(&("LNA00004P1".into(), "2025-03-02".into())), "{pa:?}");
        assert_eq!(pa.len(), 3, "{pa:?}");
        // Entered once: a later sync publishes only what is new.
        assert!(local_since(&a.assembled, "site-a", 3, 100).await.unwrap().is_empty());
        for s in [&a, &b, &c] {
            assert!(crate::db::assembly::check(&s.assembled).await.unwrap().is_clean());
        }
    }

    /// casmand's own events are stamped before the file's triggers order
    /// them: a disconnect in the same second as its connect wins, and the
    /// kept state is what the log implies.
    #[tokio::test]
    async fn a_same_second_disconnect_wins_over_its_connect() {
        let d = tempfile::tempdir().unwrap();
        let a = site(d.path(), "site-a").await;
        for t in [PartType::Antenna, PartType::Lna] {
            parts::generate(&a.parts, &a.state, t, Polarization::P1, 1, 1..=99_999).await.unwrap();
        }
        for _ in 0..3 {
            assert!(connect(&a, "ANT00001P1", "LNA00001P1", true).await);
            assert!(connect(&a, "ANT00001P1", "LNA00001P1", false).await);
            assert!(state(&a).await.0.is_empty());
            assert!(crate::db::assembly::check(&a.assembled).await.unwrap().is_clean());
        }
    }
}

//! History from before the upgrade enters the change exchange.
//!
//! Changes written before casmand stamped them (by CAsMan, by casman before
//! the exchange, or by another program since) carry no identity, so no site
//! would publish them and sites upgraded one after another would never
//! hold each other's older work. Before a site first publishes or applies
//! anything, [`enter`] gives each of them this site's identity with clock
//! 0: older than every stamped change, and the same at every site.
//!
//! * A scan event gets an `event_origin` row (clock 0) and `nth`, its rank
//!   among this site's pre-upgrade events of the same content. Every site
//!   may hold a copy of such an event (whole-file sync copied them), so a
//!   site receiving one keeps it only if it holds fewer than `nth` events of
//!   that content from before the upgrade ([`super::changes`]): each site
//!   ends with the most copies any site had, never the sum.
//! * A row of parts.db gets its `row_clock` entry (clock 0). Parts are read
//!   from their table when published (the file does not grow by a copy of
//!   every part); the rows of the small tables (positions, boards, grid
//!   codes) are also written to `change_log`, where the placing of
//!   contested places reads them. Two sites holding different pre-upgrade
//!   values of one row end with the value of the greater site id.
//!
//! The work is done in transactions of [`CHUNK`] rows, so scans wait at most
//! one of them while a large log enters.

use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

use super::{
    Db,
    changes::{EVENT_COLUMNS, has_table},
    part_code::part_code,
    stamping,
};
use crate::error::Result;

/// Rows given an identity per write transaction (~0.1 s on the 10× fixture).
const CHUNK: i64 = 5_000;

/// SQL counting the events with the content of the event bound as JSON in
/// `?1` that pass `filter` (over `a`, the event, and `g`, its origin, which
/// may be NULL). The log has no index of its own: an event's copies are
/// found through its pair (`pair_state`, `pair_other`, keyed by the codes
/// of its two ends, migration assembled 0005).
pub(crate) fn count_same_content(filter: &str) -> String {
    let same: Vec<String> =
        EVENT_COLUMNS.iter().map(|c| format!("a.{c} IS json_extract(?1, '$.{c}')")).collect();
    let same = same.join(" AND ");
    let side = |t: &str| {
        format!(
            "(SELECT count(*) FROM {t} e JOIN assembly a ON a.id = e.event_id
                LEFT JOIN event_origin g ON g.event_id = a.id
               WHERE e.lo = k.lo AND e.hi = k.hi AND {same} AND {filter})"
        )
    };
    format!(
        "SELECT {} + {} FROM (SELECT min(x, y) AS lo, max(x, y) AS hi
                                FROM (SELECT {} AS x, {} AS y
                                        FROM (SELECT json_extract(?1, '$.part_number') AS p,
                                                     json_extract(?1, '$.connected_to') AS q))) k",
        side("pair_state"),
        side("pair_other"),
        part_code("p"),
        part_code("q")
    )
}

/// What [`enter`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entered {
    /// Scan events given an identity.
    pub events: u64,
    /// Rows of parts.db given an identity.
    pub rows: u64,
}

/// Gives every change of `db` that has no identity this site's, with clock
/// 0 (see the module). Once per opened file; a no-op where stamping is not
/// installed (a file being adopted).
pub async fn enter(db: &Db, site_id: &str) -> Result<Entered> {
    let mut entered = db.history_entered().await;
    if *entered {
        return Ok(Entered::default());
    }
    let mut done = Entered::default();
    let mut after = Cursor::default();
    loop {
        // A stop ends the entry between two transactions; the next start
        // goes on from there (what is entered stays entered).
        if db.stopping() {
            return Err(crate::error::Error::Unavailable(format!(
                "casmand is stopping: {} changes of {} entered so far into the change exchange, the rest at the next start",
                done.events + done.rows,
                db.name
            )));
        }
        let Some((events, rows)) = enter_chunk(db, site_id, &mut after).await? else { return Ok(done) };
        done.events += events;
        done.rows += rows;
        if events + rows == 0 {
            break;
        }
    }
    if done != Entered::default() {
        tracing::info!(
            database = db.name,
            events = done.events,
            rows = done.rows,
            "history from before the upgrade entered the change exchange"
        );
    }
    *entered = true;
    Ok(done)
}

/// How far [`enter`] went: the last event id and table rowids looked at
/// (every chunk starts where the previous one stopped).
#[derive(Debug, Default)]
struct Cursor {
    event: i64,
    rows: std::collections::HashMap<&'static str, i64>,
}

/// One transaction: at most [`CHUNK`] events and rows entered (`None`
/// where the writer does not stamp).
async fn enter_chunk(db: &Db, site_id: &str, after: &mut Cursor) -> Result<Option<(u64, u64)>> {
    let writer = db.writer().await;
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let Some((seq, _)) = stamping::clock(&mut tx).await? else { return Ok(None) };
    let code = stamping::site_code(&mut tx, site_id).await?;
    let mut next = seq;
    let events = if has_table(&mut tx, "event_origin").await? && has_table(&mut tx, "assembly").await? {
        enter_events(&mut tx, code, &mut next, &mut after.event).await?
    } else {
        0
    };
    let mut rows = 0;
    if has_table(&mut tx, "row_clock").await? {
        for t in stamping::TRACKED {
            if rows + events >= CHUNK as u64 {
                break;
            }
            if has_table(&mut tx, t).await? {
                let last = after.rows.entry(t).or_default();
                rows += enter_rows(&mut tx, t, code, &mut next, CHUNK - (rows + events) as i64, last).await?;
            }
        }
    }
    sqlx::query("UPDATE temp.casman_clock SET seq = ?").bind(next).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some((events, rows)))
}

/// Up to [`CHUNK`] events without identity after event `last`, oldest
/// first; `last` moves past them.
async fn enter_events(conn: &mut SqliteConnection, code: i64, next: &mut i64, last: &mut i64) -> Result<u64> {
    let fields: Vec<String> = EVENT_COLUMNS.iter().map(|c| format!("'{c}', a.{c}")).collect();
    let sql = format!(
        "SELECT a.id, json_object({}) FROM assembly a
          WHERE a.id > ?1 AND NOT EXISTS (SELECT 1 FROM event_origin o WHERE o.event_id = a.id)
          ORDER BY a.id LIMIT ?2",
        fields.join(", ")
    );
    let events: Vec<(i64, String)> =
        sqlx::query_as(AssertSqlSafe(sql)).bind(*last).bind(CHUNK).fetch_all(&mut *conn).await?;
    // Its rank among this site's pre-upgrade events of the same content
    // (entered in id order, so the earlier ones are this site's already).
    let rank = count_same_content("g.site = ?2 AND g.hlc = 0 AND a.id < ?3");
    for (id, row) in &events {
        let earlier: i64 = sqlx::query_scalar(AssertSqlSafe(rank.as_str()))
            .bind(row)
            .bind(code)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        *next += 1;
        sqlx::query("INSERT INTO event_origin (event_id, site, seq, hlc, nth) VALUES (?, ?, ?, 0, ?)")
            .bind(id)
            .bind(code)
            .bind(*next)
            .bind(earlier + 1)
            .execute(&mut *conn)
            .await?;
        *last = *id;
    }
    Ok(events.len() as u64)
}

/// Up to `limit` rows of `tbl` without identity.
async fn enter_rows(
    conn: &mut SqliteConnection,
    tbl: &str,
    code: i64,
    next: &mut i64,
    limit: i64,
    last: &mut i64,
) -> Result<u64> {
    let Some(key) = stamping::key_column(tbl) else { return Ok(0) };
    let found: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT t.rowid, CAST({key} AS TEXT) FROM {tbl} t WHERE t.rowid > ?3 AND t.{key} IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM row_clock r WHERE r.tbl = ?1 AND r.key = CAST(t.{key} AS TEXT))
          ORDER BY t.rowid LIMIT ?2"
    )))
    .bind(tbl)
    .bind(limit)
    .bind(*last)
    .fetch_all(&mut *conn)
    .await?;
    if let Some((rowid, _)) = found.last() {
        *last = *rowid;
    }
    let keys: Vec<String> = found.into_iter().map(|(_, k)| k).collect();
    // The small tables' rows are copied to the change log too (see the module).
    let logged = tbl != "parts";
    let json = if logged {
        let cols: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) WHERE name <> 'id'")
                .bind(tbl)
                .fetch_all(&mut *conn)
                .await?;
        let fields: Vec<String> = cols.iter().map(|c| format!("'{c}', t.{c}")).collect();
        format!(
            "INSERT INTO change_log (site, seq, hlc, tbl, op, row)
             SELECT ?1, ?2, 0, ?3, 'insert', json_object({}) FROM {tbl} t WHERE CAST(t.{key} AS TEXT) = ?4",
            fields.join(", ")
        )
    } else {
        String::new()
    };
    for k in &keys {
        *next += 1;
        sqlx::query("INSERT INTO row_clock (tbl, key, hlc, site, seq) VALUES (?, ?, 0, ?, ?)")
            .bind(tbl)
            .bind(k)
            .bind(code)
            .bind(*next)
            .execute(&mut *conn)
            .await?;
        if logged {
            sqlx::query(AssertSqlSafe(json.as_str()))
                .bind(code)
                .bind(*next)
                .bind(tbl)
                .bind(k)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(keys.len() as u64)
}

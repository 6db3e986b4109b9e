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

use super::{Db, changes::EVENT_COLUMNS, stamping};
use crate::error::Result;

/// Rows given an identity per write transaction (~0.1 s on the 10× fixture).
const CHUNK: i64 = 5_000;

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
    if db.history_entered() {
        return Ok(Entered::default());
    }
    let mut done = Entered::default();
    loop {
        let Some((events, rows)) = enter_chunk(db, site_id).await? else { return Ok(done) };
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
    db.set_history_entered();
    Ok(done)
}

async fn has_table(conn: &mut SqliteConnection, name: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// One transaction: at most [`CHUNK`] events and rows entered (`None`
/// where the writer does not stamp).
async fn enter_chunk(db: &Db, site_id: &str) -> Result<Option<(u64, u64)>> {
    let writer = db.writer().await;
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let Some((seq, _)) = stamping::clock(&mut tx).await? else { return Ok(None) };
    let code = stamping::site_code(&mut tx, site_id).await?;
    let mut next = seq;
    let events = if has_table(&mut tx, "event_origin").await? && has_table(&mut tx, "assembly").await? {
        enter_events(&mut tx, code, &mut next).await?
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
                rows += enter_rows(&mut tx, t, code, &mut next, CHUNK - (rows + events) as i64).await?;
            }
        }
    }
    sqlx::query("UPDATE temp.casman_clock SET seq = ?").bind(next).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some((events, rows)))
}

/// Up to [`CHUNK`] events without identity, oldest first.
async fn enter_events(conn: &mut SqliteConnection, code: i64, next: &mut i64) -> Result<u64> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM assembly a WHERE NOT EXISTS (SELECT 1 FROM event_origin o WHERE o.event_id = a.id)
          ORDER BY a.id LIMIT ?",
    )
    .bind(CHUNK)
    .fetch_all(&mut *conn)
    .await?;
    // Its rank among this site's pre-upgrade events of the same content
    // (entered in id order, so the earlier ones are this site's already).
    let same: Vec<String> = EVENT_COLUMNS.iter().map(|c| format!("b.{c} IS a.{c}")).collect();
    let sql = format!(
        "INSERT INTO event_origin (event_id, site, seq, hlc, nth)
         SELECT a.id, ?1, ?2, 0,
                1 + (SELECT count(*) FROM assembly b JOIN event_origin o ON o.event_id = b.id
                      WHERE b.part_number IS a.part_number AND {} AND b.id < a.id
                        AND o.site = ?1 AND o.hlc = 0)
           FROM assembly a WHERE a.id = ?3",
        same.join(" AND ")
    );
    for id in &ids {
        *next += 1;
        sqlx::query(AssertSqlSafe(sql.as_str())).bind(code).bind(*next).bind(id).execute(&mut *conn).await?;
    }
    Ok(ids.len() as u64)
}

/// Up to `limit` rows of `tbl` without identity.
async fn enter_rows(
    conn: &mut SqliteConnection,
    tbl: &str,
    code: i64,
    next: &mut i64,
    limit: i64,
) -> Result<u64> {
    let Some(key) = stamping::key_column(tbl) else { return Ok(0) };
    let keys: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT CAST({key} AS TEXT) FROM {tbl} t WHERE t.{key} IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM row_clock r WHERE r.tbl = ?1 AND r.key = CAST(t.{key} AS TEXT))
          ORDER BY t.rowid LIMIT ?2"
    )))
    .bind(tbl)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
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

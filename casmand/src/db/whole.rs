//! Whole-database operations (not to be confused with the store's maintenance in
//! backup/maintenance.rs): dumping every table, and clearing a database
//! after taking a local safety copy.

use std::path::PathBuf;

use sqlx::{AssertSqlSafe, Row};

use super::{ASSEMBLED_DB, Db, PARTS_DB};
use crate::error::{Error, Result};

/// Rows in one page of a dump: what one message to a client carries.
pub const DUMP_PAGE_ROWS: u32 = 1000;

/// One page of a table's contents, every value as text (NULL as `None`).
#[derive(Debug, Clone)]
pub struct TablePage {
    /// The database file it comes from.
    pub database: &'static str,
    /// Table name.
    pub table: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of this page, in rowid order.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows of the whole table (at most the dump's limit), counted when its
    /// first page was read.
    pub table_rows: u64,
    /// False on a table's first page, true on the pages after it.
    pub continuation: bool,
}

/// Dumps every table of `db` page by page into `tx`, at most `limit` rows a
/// table (0 = all), [`DUMP_PAGE_ROWS`] rows a page. Each page is its own short
/// query from the last rowid seen, so memory stays at one page whatever the
/// table's size, and a slow reader holds no transaction or lock (a restore
/// may replace the file between two pages; later pages then come from the new
/// file). Stops early, without error, when the receiver is gone.
pub async fn dump(db: &Db, limit: u32, tx: &tokio::sync::mpsc::Sender<Result<TablePage>>) -> Result<()> {
    // The tables with rowids: the kept state (`pair_state`, WITHOUT ROWID)
    // is derived from the log, which is printed.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND wr = 0
           AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&*db.reader().await)
    .await?;
    for table in tables.into_iter().filter(|t| !t.starts_with("_sqlx")) {
        let (columns, count) = {
            let mut conn = db.reader().await.acquire().await?;
            let columns: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
                    .fetch_all(&mut *conn)
                    .await?;
            let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM \"{table}\"")))
                .fetch_one(&mut *conn)
                .await?;
            (columns, count.max(0) as u64)
        };
        let table_rows = if limit > 0 { count.min(u64::from(limit)) } else { count };
        let select = columns.iter().map(|c| format!("CAST(\"{c}\" AS TEXT)")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT rowid, {select} FROM \"{table}\" WHERE rowid > ? ORDER BY rowid LIMIT ?");
        let (mut after, mut sent, mut continuation) = (i64::MIN, 0u64, false);
        loop {
            let want = (table_rows - sent).min(u64::from(DUMP_PAGE_ROWS));
            let rows = {
                let mut conn = db.reader().await.acquire().await?;
                sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(after)
                    .bind(want as i64)
                    .fetch_all(&mut *conn)
                    .await?
            };
            let got = rows.len() as u64;
            if let Some(last) = rows.last() {
                after = last.try_get::<i64, _>(0)?;
            }
            let rows = rows
                .iter()
                .map(|r| {
                    (1..=columns.len()).map(|i| r.try_get::<Option<String>, _>(i).ok().flatten()).collect()
                })
                .collect();
            let page = TablePage {
                database: db.name,
                table: table.clone(),
                columns: columns.clone(),
                rows,
                table_rows,
                continuation,
            };
            if tx.send(Ok(page)).await.is_err() {
                return Ok(());
            }
            sent += got;
            continuation = true;
            if got < want || want == 0 || sent >= table_rows {
                break;
            }
        }
    }
    Ok(())
}

/// What clearing did.
#[derive(Debug, Clone)]
pub struct Cleared {
    /// Rows deleted.
    pub rows_deleted: u64,
    /// The safety copy taken first.
    pub safety_copy: PathBuf,
}

/// Deletes every row of the main table of `db` (`parts` in parts.db, `assembly`
/// in assembled_casm.db), as CAsMan's `database clear` did, after writing a
/// consistent copy of the whole file to `<data dir>/safety/`. Every part
/// number the cleared rows mention is recorded in `state` first, so none is
/// issued again.
pub async fn clear(db: &Db, state: &Db) -> Result<Cleared> {
    let table = match db.name {
        PARTS_DB => "parts",
        ASSEMBLED_DB => "assembly",
        other => {
            return Err(Error::invalid(format!(
                "database {other:?}: only parts.db and assembled_casm.db can be cleared"
            )));
        }
    };
    let dir = db.path.parent().map(|d| d.join("safety")).unwrap_or_else(|| PathBuf::from("safety"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::internal("creating the safety directory", e))?;
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let safety_copy = dir.join(format!("{}.{stamp}.pre-clear", db.name));
    let _ = std::fs::remove_file(&safety_copy);
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    // VACUUM INTO cannot run inside a transaction; the copy is taken on a reader
    // while we hold the write lock, so it is exactly what is about to be cleared.
    sqlx::query("VACUUM INTO ?")
        .bind(safety_copy.display().to_string())
        .execute(&*db.reader().await)
        .await
        .map_err(|e| Error::internal("taking the safety copy", e))?;
    let mentioned = match db.name {
        PARTS_DB => super::issued::in_parts(&mut tx).await?,
        _ => super::issued::in_assembly(&mut tx).await?,
    };
    super::issued::record(state, &mentioned).await?;
    // One `clear` change, not a change per deleted row.
    super::stamping::pause(&mut tx, true).await?;
    let done = sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
    super::stamping::pause(&mut tx, false).await?;
    super::stamping::note(&mut tx, table, "clear").await?;
    tx.commit().await?;
    Ok(Cleared { rows_deleted: done.rows_affected(), safety_copy })
}

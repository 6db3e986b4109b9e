//! Whole-database operations (not to be confused with the store's maintenance in
//! backup/maintenance.rs): dumping every table, and clearing a database
//! after taking a local safety copy.

use std::path::PathBuf;

use sqlx::AssertSqlSafe;

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
///
/// Read with rusqlite on a blocking thread ([`super::paged`]), a page ahead
/// of the client.
pub async fn dump(db: &Db, limit: u32, tx: &tokio::sync::mpsc::Sender<Result<TablePage>>) -> Result<()> {
    let (name, path) = (db.name, db.path.clone());
    super::paged::produce(
        &db.path,
        "printing a database",
        move |conn, emit| dump_file(conn, &path, name, limit, emit),
        |pages| async move {
            for page in pages {
                if tx.send(Ok(page)).await.is_err() {
                    return false;
                }
            }
            true
        },
    )
    .await
}

/// [`dump`] of the file at `path` (named `name`), which `conn` reads, on
/// its thread.
fn dump_file(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    name: &'static str,
    limit: u32,
    emit: &mut super::paged::Emit<'_, TablePage>,
) -> rusqlite::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let inode = || std::fs::metadata(path).ok().map(|m| m.ino());
    let mut reopened: Option<(rusqlite::Connection, Option<u64>)> = None;
    let opened = inode();
    // The tables with rowids: the kept state (`pair_state`, WITHOUT ROWID)
    // is derived from the log, which is printed.
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND wr = 0
               AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in tables.into_iter().filter(|t| !t.starts_with("_sqlx")) {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let count: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0))?;
        let count = count.max(0) as u64;
        let table_rows = if limit > 0 { count.min(u64::from(limit)) } else { count };
        let select = columns.iter().map(|c| format!("CAST(\"{c}\" AS TEXT)")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT rowid, {select} FROM \"{table}\" WHERE rowid > ? ORDER BY rowid LIMIT ?");
        let (mut after, mut sent, mut continuation) = (i64::MIN, 0u64, false);
        loop {
            let want = (table_rows - sent).min(u64::from(DUMP_PAGE_ROWS));
            // A file swapped in since (a restore): the later pages are its own.
            let now = inode();
            if now != opened && reopened.as_ref().is_none_or(|(_, at)| *at != now) {
                reopened = Some((super::read_only::open(path)?, now));
            }
            let c = reopened.as_ref().map_or(conn, |(c, _)| c);
            let mut stmt = c.prepare(&sql)?;
            let mut rows = Vec::with_capacity(want as usize);
            let mut q = stmt.query(rusqlite::params![after, want as i64])?;
            while let Some(r) = q.next()? {
                after = r.get(0)?;
                rows.push(
                    (1..=columns.len()).map(|i| r.get::<_, Option<String>>(i).ok().flatten()).collect(),
                );
            }
            drop(q);
            drop(stmt);
            let got = rows.len() as u64;
            let page = TablePage {
                database: name,
                table: table.clone(),
                columns: columns.clone(),
                rows,
                table_rows,
                continuation,
            };
            if !emit(vec![page]) {
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

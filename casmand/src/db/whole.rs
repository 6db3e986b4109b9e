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
/// (Each value is cast to text by SQLite; a BLOB that is not UTF-8 is NULL.)
#[derive(Debug, Clone)]
pub struct TablePage {
    /// The database file it comes from.
    pub database: &'static str,
    /// Table name.
    pub table: String,
    /// Column names.
    pub columns: Vec<String>,
    /// This page's rows, in rowid order, keyed by rowid (see
    /// [`TablePage::rows`]).
    rows: super::paged::TextRows,
    /// Rows of the whole table (at most the dump's limit), counted when its
    /// first page was read.
    pub table_rows: u64,
    /// False on a table's first page, true on the pages after it.
    pub continuation: bool,
}

impl TablePage {
    /// The rows of this page, in rowid order, each its values as text (NULL
    /// as None).
    pub fn rows(&self) -> impl Iterator<Item = impl Iterator<Item = Option<&str>>> {
        self.rows.rows().map(|(_, values)| values)
    }

    /// Rows in this page.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The page's values packed (see [`super::paged::TextRows::into_packed`]),
    /// and the page without them.
    pub fn into_packed(mut self) -> ((String, Vec<u32>, Vec<u32>), TablePage) {
        let rows = std::mem::take(&mut self.rows);
        (rows.into_packed(), self)
    }
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
    // The tables with rowids: the kept state (`pair_state`, WITHOUT ROWID)
    // is derived from the log, which is printed.
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND wr = 0
               AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut reopened: Option<rusqlite::Connection> = None;
    for table in tables.into_iter().filter(|t| !t.starts_with("_sqlx")) {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let count: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0))?;
        let count = count.max(0) as u64;
        let mut pages = Pages {
            page: TablePage {
                database: name,
                table,
                columns,
                rows: super::paged::TextRows::default(),
                table_rows: if limit > 0 { count.min(u64::from(limit)) } else { count },
                continuation: false,
            },
            after: i64::MIN,
            sent: 0,
        };
        loop {
            let c = reopened.as_ref().unwrap_or(conn);
            match pages.send(c, path, emit)? {
                Paged::Done => break,
                Paged::Stopped => return Ok(()),
                // A file swapped in since (a restore): the later pages are its own.
                Paged::Swapped => reopened = Some(super::read_only::open(path)?),
            }
        }
    }
    Ok(())
}

/// The pages of one table, from the row after `after`.
struct Pages {
    /// The next page's head (its rows are read into it).
    page: TablePage,
    after: i64,
    sent: u64,
}

/// How sending a table's pages ended.
enum Paged {
    Done,
    Stopped,
    Swapped,
}

impl Pages {
    /// Reads and emits pages by `conn` until the table is done, the
    /// consumer stops listening, or the file at `path` is no longer the one
    /// `conn` reads. One statement, each page its own run of it.
    fn send(
        &mut self,
        conn: &rusqlite::Connection,
        path: &std::path::Path,
        emit: &mut super::paged::Emit<'_, TablePage>,
    ) -> rusqlite::Result<Paged> {
        use std::os::unix::fs::MetadataExt;
        let inode = || std::fs::metadata(path).ok().map(|m| m.ino());
        let reading = inode();
        let columns = self.page.columns.len();
        let select =
            self.page.columns.iter().map(|c| format!("CAST(\"{c}\" AS TEXT)")).collect::<Vec<_>>().join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT rowid, {select} FROM \"{}\" WHERE rowid > ? ORDER BY rowid LIMIT ?",
            self.page.table
        ))?;
        loop {
            if inode() != reading {
                return Ok(Paged::Swapped);
            }
            let want = (self.page.table_rows - self.sent).min(u64::from(DUMP_PAGE_ROWS));
            let mut rows = super::paged::TextRows::new(columns, want as usize);
            let mut q = stmt.query(rusqlite::params![self.after, want as i64])?;
            while let Some(r) = q.next()? {
                self.after = r.get(0)?;
                rows.push(self.after, r, 1)?;
            }
            drop(q);
            let got = rows.len() as u64;
            let page = TablePage { rows, ..self.page.clone() };
            if !emit(vec![page]) {
                return Ok(Paged::Stopped);
            }
            self.sent += got;
            self.page.continuation = true;
            if got < want || want == 0 || self.sent >= self.page.table_rows {
                return Ok(Paged::Done);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::db::Databases;

    /// Every value as the text SQLite casts it to, NULL as None, in rowid
    /// order, in pages of DUMP_PAGE_ROWS; `limit` rows at most.
    #[tokio::test]
    async fn a_table_is_dumped_a_page_at_a_time_every_value_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        let n = DUMP_PAGE_ROWS as i64 + 5;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
             INSERT INTO parts (part_number, part_type, polarization, date_created)
             SELECT printf('ANT%05dP1', i), CASE WHEN i % 3 = 0 THEN NULL ELSE 'ANTENNA' END,
                    CASE WHEN i % 5 = 0 THEN '' ELSE 'P1' END, 'é ' || i FROM n;"
        )))
        .execute(&*dbs.parts.writer().await)
        .await
        .unwrap();
        for limit in [0, 3] {
            let (tx, mut rx) = tokio::sync::mpsc::channel(2);
            let db = dbs.parts.clone();
            let task = tokio::spawn(async move { dump(&db, limit, &tx).await });
            let mut pages = Vec::new();
            while let Some(p) = rx.recv().await {
                let p = p.unwrap();
                if p.table == "parts" {
                    pages.push(p);
                }
            }
            task.await.unwrap().unwrap();
            let want = if limit == 0 { n as usize } else { 3 };
            assert_eq!(pages.iter().map(TablePage::len).sum::<usize>(), want);
            assert!(!pages[0].continuation);
            assert!(pages.iter().skip(1).all(|p| p.continuation));
            let col = |name: &str| pages[0].columns.iter().position(|c| c == name).unwrap();
            let (number, kind, pol, created) =
                (col("part_number"), col("part_type"), col("polarization"), col("date_created"));
            let rows: Vec<Vec<Option<String>>> = pages
                .iter()
                .flat_map(|p| {
                    p.rows().map(|r| r.map(|v| v.map(str::to_owned)).collect::<Vec<_>>()).collect::<Vec<_>>()
                })
                .collect();
            for (i, r) in rows.iter().enumerate() {
                let i = i + 1;
                assert_eq!(r[col("id")].as_deref(), Some(i.to_string().as_str()));
                assert_eq!(r[number].as_deref(), Some(format!("ANT{i:05}P1").as_str()));
                assert_eq!(r[kind].as_deref(), (i % 3 != 0).then_some("ANTENNA"));
                assert_eq!(r[pol].as_deref(), Some(if i % 5 == 0 { "" } else { "P1" }));
                assert_eq!(r[created].as_deref(), Some(format!("é {i}").as_str()));
                assert_eq!(r[col("date_modified")], None);
            }
        }
    }
}

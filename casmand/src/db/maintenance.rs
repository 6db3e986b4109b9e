//! Whole-database operations: dumping every table, and clearing a database
//! after taking a local safety copy.

use std::path::PathBuf;

use sqlx::{AssertSqlSafe, Row};

use super::{ASSEMBLED_DB, Db, PARTS_DB, adopt::table_names};
use crate::error::{Error, Result};

/// One table's contents, every value as text (NULL as `None`).
#[derive(Debug, Clone)]
pub struct TableDump {
    /// Table name.
    pub table: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<String>>>,
}

/// Every table of `db` (casman's bookkeeping tables included), rows in id order.
pub async fn dump(db: &Db, limit: u32) -> Result<Vec<TableDump>> {
    let mut conn = db.reader().await.acquire().await?;
    let mut out = Vec::new();
    for table in table_names(&mut conn).await? {
        if table.starts_with("_sqlx") {
            continue;
        }
        let columns: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
                .fetch_all(&mut *conn)
                .await?;
        let select = columns.iter().map(|c| format!("CAST(\"{c}\" AS TEXT)")).collect::<Vec<_>>().join(", ");
        let mut sql = format!("SELECT {select} FROM \"{table}\" ORDER BY rowid");
        if limit > 0 {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
        let rows = rows
            .iter()
            .map(|r| (0..columns.len()).map(|i| r.try_get::<Option<String>, _>(i).ok().flatten()).collect())
            .collect();
        out.push(TableDump { table, columns, rows });
    }
    Ok(out)
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
    let done = sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Cleared { rows_deleted: done.rows_affected(), safety_copy })
}

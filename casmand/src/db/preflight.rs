//! Before casmand touches an existing file: is it SQLite at all, and does it
//! pass `PRAGMA integrity_check`? Both checks open the file read-only, so a
//! file that fails them is never modified.

use std::{io::Read, path::Path, str::FromStr};

use sqlx::{ConnectOptions, Connection, sqlite::SqliteConnectOptions};

use super::DbError;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Checks `path` if it exists. A missing or empty file is fine (it will be created).
pub async fn check(path: &Path) -> Result<(), DbError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DbError::Open { path: path.to_path_buf(), reason: e.to_string() }),
    };
    if meta.len() == 0 {
        return Ok(());
    }
    let mut magic = [0u8; 16];
    let readable = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if readable.is_err() || &magic != SQLITE_MAGIC {
        return Err(DbError::NotSqlite { path: path.to_path_buf() });
    }
    let integrity = integrity_check(path).await?;
    if integrity != "ok" {
        return Err(DbError::Integrity { path: path.to_path_buf(), detail: integrity });
    }
    Ok(())
}

/// Whether `path` starts with the SQLite header (the structure beyond it is
/// read by whoever opens it next).
pub fn check_header(path: &Path) -> Result<(), DbError> {
    let mut magic = [0u8; 16];
    let readable = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if readable.is_err() || &magic != SQLITE_MAGIC {
        return Err(DbError::NotSqlite { path: path.to_path_buf() });
    }
    Ok(())
}

/// A read-only connection to the SQLite file at `path`, outside any pool.
pub async fn read_only(path: &Path) -> Result<sqlx::SqliteConnection, sqlx::Error> {
    SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .read_only(true)
        .disable_statement_logging()
        .connect()
        .await
}

/// Runs `PRAGMA integrity_check` on a read-only connection and returns its
/// result (`"ok"` when sound).
pub async fn integrity_check(path: &Path) -> Result<String, DbError> {
    let err = |e: sqlx::Error| DbError::Open { path: path.to_path_buf(), reason: e.to_string() };
    let mut conn = read_only(path).await.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.message().contains("not a database") => {
            DbError::NotSqlite { path: path.to_path_buf() }
        }
        _ => err(e),
    })?;
    let rows: Vec<String> =
        sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await.map_err(|e| match &e {
            sqlx::Error::Database(d)
                if d.message().contains("not a database") || d.message().contains("malformed") =>
            {
                DbError::Integrity { path: path.to_path_buf(), detail: d.message().to_owned() }
            }
            _ => err(e),
        })?;
    let _ = conn.close().await;
    Ok(rows.join("; "))
}

//! One SQLite database file: a single writer connection and a small pool of
//! read-only readers, WAL, `synchronous=FULL` (an acknowledged write survives
//! power loss), an explicit busy timeout.

use std::{path::PathBuf, str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::DbError;

/// How long a statement waits for a lock held by another connection or program.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers per database.
const READERS: u32 = 4;

/// Handles on one database file.
#[derive(Debug, Clone)]
pub struct Db {
    /// File name (`parts.db`, ...).
    pub name: &'static str,
    /// Path of the file.
    pub path: PathBuf,
    /// The one connection that writes. Transactions on it are serialised.
    pub writer: SqlitePool,
    /// Read-only connections for queries.
    pub reader: SqlitePool,
}

fn options(path: &std::path::Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .disable_statement_logging())
}

impl Db {
    /// Opens (creating if missing) the file at `path` with casman's pragmas.
    pub async fn open(name: &'static str, path: PathBuf) -> Result<Db, DbError> {
        let err = |e: sqlx::Error| DbError::Open { path: path.clone(), reason: e.to_string() };
        let writer_opts = options(&path).map_err(err)?.create_if_missing(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(writer_opts)
            .await
            .map_err(err)?;
        let reader_opts = options(&path).map_err(err)?.read_only(true);
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(reader_opts)
            .await
            .map_err(err)?;
        Ok(Db { name, path, writer, reader })
    }

    /// Closes every connection (before a file is replaced, and at shutdown).
    /// The WAL is checkpointed into the main file first.
    pub async fn close(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Number of the newest applied migration, 0 when none.
    pub async fn schema_version(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.reader)
            .await
            .unwrap_or(0)
    }

    /// Size of the main file in bytes.
    pub fn size_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }
}

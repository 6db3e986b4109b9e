//! Has a database file changed? Answered without reading it: a dedicated,
//! never-writing connection per file asks SQLite for `PRAGMA data_version`,
//! which changes whenever any other connection (this daemon's writer, the
//! sqlite3 CLI, a lab script) commits to the file. With a generation bumped
//! each time the file is replaced, two equal [`ChangeToken`]s mean the
//! content is the same.

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use rusqlite::{Connection, OpenFlags};

use super::DbError;

/// The state of a file at one moment; equal tokens, equal content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeToken {
    generation: u64,
    data_version: i64,
}

/// The watching connection of one file.
#[derive(Debug)]
pub struct ChangeWatch {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
    generation: AtomicU64,
}

impl ChangeWatch {
    /// A watch on the file at `path` (opened on first use).
    pub fn new(path: &Path) -> ChangeWatch {
        ChangeWatch { path: path.to_path_buf(), conn: Mutex::new(None), generation: AtomicU64::new(0) }
    }

    /// The file's current token. Microseconds: one pragma on an open
    /// connection, which reads the WAL index, not the file.
    pub fn token(&self) -> Result<ChangeToken, DbError> {
        let err = |e: rusqlite::Error| DbError::Open { path: self.path.clone(), reason: e.to_string() };
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            *conn = Some(
                Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(err)?,
            );
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let data_version = match conn.as_ref() {
            Some(c) => c.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(err)?,
            None => 0,
        };
        Ok(ChangeToken { generation, data_version })
    }

    /// Forgets the connection: the file is about to be replaced. Tokens taken
    /// before never equal tokens taken after.
    pub fn reset(&self) {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        *conn = None;
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_by_other_connections_change_the_token() -> Result<(), DbError> {
        let dir =
            tempfile::tempdir().map_err(|e| DbError::Open { path: PathBuf::new(), reason: e.to_string() })?;
        let path = dir.path().join("w.db");
        let writer = Connection::open(&path)
            .map_err(|e| DbError::Open { path: path.clone(), reason: e.to_string() })?;
        let run = |sql: &str| {
            writer.execute_batch(sql).map_err(|e| DbError::Open { path: path.clone(), reason: e.to_string() })
        };
        run("PRAGMA journal_mode=WAL; CREATE TABLE t (x);")?;
        let watch = ChangeWatch::new(&path);
        let first = watch.token()?;
        assert_eq!(watch.token()?, first, "nothing committed");
        run("INSERT INTO t VALUES (1);")?;
        let second = watch.token()?;
        assert_ne!(second, first);
        // A read is not a change.
        run("SELECT * FROM t;")?;
        assert_eq!(watch.token()?, second);
        watch.reset();
        assert_ne!(watch.token()?, second, "a replaced file is a new file");
        Ok(())
    }
}

//! Read-only rusqlite connections of their own to a database file, for the
//! reads that visit every row (listings, the part numbers of a file, page
//! copies): rusqlite steps rows in the calling thread, where sqlx hands each
//! one across threads. Blocking: call from a blocking thread.

use std::{path::Path, time::Duration};

use rusqlite::{Connection, OpenFlags};

/// How long a read waits for a lock (WAL recovery, a checkpoint).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A read-only connection to the database file at `path` (live, in WAL
/// mode, or a closed copy).
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Sorts and temporary tables of large reads spill to a file, as the
    // pool's connections do (see `super::pool`).
    conn.pragma_update(None, "temp_store", "FILE")?;
    Ok(conn)
}

/// Whether the database of `conn` holds the table `name`.
pub fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}

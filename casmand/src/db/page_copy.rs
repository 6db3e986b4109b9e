//! A consistent copy of a live database file by SQLite's online backup API,
//! in one step (`sqlite3_backup_step(-1)`): one read transaction on the
//! source, so writers keep committing (WAL) and the copy is never restarted
//! or torn. Its cost follows the file's pages; nothing is rebuilt. Blocking.

use std::{path::Path, time::Duration};

use rusqlite::{Connection, OpenFlags, backup::StepResult};

/// How often a page copy that found the source busy (a writer holding an
/// exclusive lock, WAL recovery) is retried, and how long it waits between.
const BUSY_RETRIES: u32 = 200;
const BUSY_PAUSE: Duration = Duration::from_millis(10);

/// Copies every page of the database at `source` into a new file at `dest`
/// in one step: one read transaction on the source.
pub fn page_copy(source: &Path, dest: &Path) -> rusqlite::Result<()> {
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(5))?;
    let mut dst = Connection::open(dest)?;
    let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
    for _ in 0..BUSY_RETRIES {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            _ => std::thread::sleep(BUSY_PAUSE),
        }
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some(format!("{} stayed locked for {:?}", source.display(), BUSY_PAUSE * BUSY_RETRIES)),
    ))
}

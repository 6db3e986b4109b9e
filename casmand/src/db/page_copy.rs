//! A consistent copy of a live database file by SQLite's online backup API,
//! in one step (`sqlite3_backup_step(-1)`): one read transaction on the
//! source, so writers keep committing (WAL) and the copy is never restarted
//! or torn. Its cost follows the file's pages; nothing is rebuilt. Blocking.

use std::{
    collections::BTreeMap,
    io::{Seek, SeekFrom, Write},
    path::Path,
    time::Duration,
};

use rusqlite::{Connection, backup::StepResult};

use super::DbError;

/// Main tables whose rows are counted in a snapshot's description.
pub const COUNTED: [&str; 5] = ["parts", "antenna_positions", "snap_boards", "grid_positions", "assembly"];

/// How often a page copy that found the source busy (a writer holding an
/// exclusive lock, WAL recovery) is retried, and how long it waits between.
const BUSY_RETRIES: u32 = 200;
const BUSY_PAUSE: Duration = Duration::from_millis(10);

/// Copies every page of the database at `source` into a new file at `dest`
/// in one step: one read transaction on the source. The copy is synced to
/// disk before this returns.
pub fn page_copy(source: &Path, dest: &Path) -> rusqlite::Result<()> {
    copy_pages(source, dest, true)
}

/// [`page_copy`], the copy synced (`synced`) or left to the page cache: a
/// temporary file read back at once needs no sync (no journal either).
fn copy_pages(source: &Path, dest: &Path, synced: bool) -> rusqlite::Result<()> {
    let src = super::read_only::open(source)?;
    let mut dst = Connection::open(dest)?;
    if !synced {
        dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    }
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

/// A copy of the live database at `source` written to `dest` as a plain,
/// closed SQLite file: one-step page copy, header normalised (rollback
/// journal mode, bytes that depend on the content only). Opening no
/// connection on the copy leaves no side files (-wal, -shm) beside it.
///
/// Not synced (a snapshot is hashed and uploaded from the page cache; the
/// spool syncs what it keeps): the sync was 40 % of a backup's time.
pub fn plain_copy(source: &Path, dest: &Path) -> Result<(), DbError> {
    let err = |e: &dyn std::fmt::Display| DbError::Open { path: dest.to_path_buf(), reason: e.to_string() };
    copy_pages(source, dest, false).map_err(|e| err(&e))?;
    normalise_header(dest).map_err(|e| err(&e))
}

/// Header fields a copy takes from its source or its own history rather
/// than from the content. The file format versions (18, 19) are set to 1:
/// rollback-journal mode, one file that any sqlite3 opens as it is (the page
/// copy carries the live file's WAL flag, and the copy has no WAL). The file
/// change counter (24), the schema cookie (40) and the version-valid-for
/// number (92) are set to 1, so that the bytes, and so the SHA-256 (the
/// version's identity), depend on the content only (a snapshot of a restored
/// snapshot is the same version). Safe: no connection has the file open and
/// no WAL belongs to it; 24 and 92 stay equal, so the in-header page count
/// stays valid; any positive cookie is valid.
fn normalise_header(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(18))?;
    f.write_all(&[1, 1])?;
    for offset in [24u64, 40, 92] {
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(&1u32.to_be_bytes())?;
    }
    Ok(())
}

/// `PRAGMA quick_check`, then the row counts and schema version, of the
/// closed copy at `raw` (read-only).
pub fn check_and_describe(raw: &Path) -> Result<(BTreeMap<String, i64>, i64), DbError> {
    let err = |e: rusqlite::Error| DbError::Open { path: raw.to_path_buf(), reason: e.to_string() };
    let copy = super::read_only::open(raw).map_err(err)?;
    let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(err)?;
    if check != "ok" {
        return Err(DbError::Integrity { path: raw.to_path_buf(), detail: check });
    }
    describe_conn(&copy).map_err(err)
}

/// Row counts of the main tables ([`COUNTED`]) and the schema version of an open database.
pub fn describe_conn(conn: &Connection) -> rusqlite::Result<(BTreeMap<String, i64>, i64)> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let tables: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut counts = BTreeMap::new();
    for t in COUNTED.iter().filter(|t| tables.iter().any(|x| x == *t)) {
        let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))?;
        counts.insert((*t).to_owned(), n);
    }
    let schema = if tables.iter().any(|t| t == "_sqlx_migrations") {
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success", [], |r| {
            r.get(0)
        })?
    } else {
        0
    };
    Ok((counts, schema))
}

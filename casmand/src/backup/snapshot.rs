//! Consistent copies of a live database, taken with SQLite's online backup
//! API as one page copy (`sqlite3_backup_step(-1)`: a single read
//! transaction, so writers keep committing in WAL mode and the copy is one
//! transaction's view, never restarted and never torn). Cost follows the
//! file's pages, not its rows: nothing is rebuilt (`VACUUM INTO` rewrote
//! every table and index).
//!
//! The copy is checked (`PRAGMA quick_check`) and counted on one core while
//! it is hashed (whole file and every page) on the other, in 1 MiB blocks:
//! memory stays bounded whatever the size of the file. It is compressed
//! ([`pack`]) only when it is stored in full: a version stored as a delta
//! never pays for compressing the whole file. Blocking work runs on the
//! blocking pool.

use std::{collections::BTreeMap, fs::File, io::Read, path::Path};

use rusqlite::{Connection, OpenFlags};

use super::{codec, delta};
use crate::{
    db::{Db, page_copy},
    error::{Error, Result},
};

/// A snapshot: its raw copy (compressed by [`pack`] when stored in full; a
/// delta takes its pages from it) and its identity.
#[derive(Debug)]
pub struct Snapshot {
    /// The raw page copy (deleted when dropped).
    pub raw: tempfile::TempPath,
    /// Page size and the SHA-256 of every page (`None` when the file is
    /// not a whole number of pages: it is then always stored in full).
    pub pages: Option<(u32, Vec<delta::PageHash>)>,
    /// SHA-256 of the raw file.
    pub sha256: String,
    /// Size of the raw file.
    pub raw_bytes: u64,
    /// Rows per main table.
    pub record_counts: BTreeMap<String, i64>,
    /// Last applied migration.
    pub schema_version: i64,
}

/// Snapshots `db` into new files under `tmp_dir`.
pub async fn take(db: &Db, tmp_dir: &Path) -> Result<Snapshot> {
    std::fs::create_dir_all(tmp_dir).map_err(|e| Error::internal("creating the temporary directory", e))?;
    let temp = |what: &str| -> Result<tempfile::TempPath> {
        Ok(tempfile::Builder::new()
            .prefix(&format!("{}.{what}.", db.name))
            .tempfile_in(tmp_dir)
            .map_err(|e| Error::internal("creating a snapshot file", e))?
            .into_temp_path())
    };
    let file = temp("snapshot")?;
    let source = db.path.clone();
    // The copy's file belongs to the blocking thread until it is done: a
    // backup abandoned meanwhile (a stop that waited long enough) drops the
    // future, not the file under the thread's feet.
    let (file, taken) = tokio::task::spawn_blocking(move || {
        let taken = take_blocking(&source, &file);
        (file, taken)
    })
    .await
    .map_err(|e| Error::internal("taking a snapshot", e))?;
    let taken = taken?;
    Ok(Snapshot {
        raw: file,
        pages: taken.pages,
        sha256: taken.sha256,
        raw_bytes: taken.raw_bytes,
        record_counts: taken.record_counts,
        schema_version: taken.schema_version,
    })
}

/// Compresses the raw copy of `snap` into `out` (not synced: a temporary
/// file for the upload); returns the compressed size.
pub async fn pack(snap: &Snapshot, out: &Path) -> Result<u64> {
    let (raw, zst) = (snap.raw.to_path_buf(), out.to_path_buf());
    tokio::task::spawn_blocking(move || codec::compress(&raw, &zst))
        .await
        .map_err(|e| Error::internal("compressing the snapshot", e))?
        .map_err(|e| Error::internal("compressing the snapshot", e))
}

struct Taken {
    sha256: String,
    pages: Option<(u32, Vec<delta::PageHash>)>,
    raw_bytes: u64,
    record_counts: BTreeMap<String, i64>,
    schema_version: i64,
}

fn take_blocking(source: &Path, raw: &Path) -> Result<Taken> {
    let mut phases = super::phases::Phases::start();
    page_copy::plain_copy(source, raw).map_err(|e| Error::internal("taking a snapshot (page copy)", e))?;
    phases.mark("copy");
    // Checking and counting on one core, hashing on the other.
    let (checked, hashed) = std::thread::scope(|scope| {
        let check = scope.spawn(|| page_copy::check_and_describe(raw));
        let hashed = hash(raw);
        (check.join(), hashed)
    });
    phases.mark("check and hash");
    tracing::debug!(phases = %phases, "snapshot taken");
    let (record_counts, schema_version) = checked
        .map_err(|_| Error::internal("checking the snapshot", "the check thread panicked"))?
        .map_err(|e| Error::internal("checking the snapshot", e))?;
    let (sha256, raw_bytes, pages) = hashed.map_err(|e| Error::internal("hashing the snapshot", e))?;
    Ok(Taken { sha256, pages, raw_bytes, record_counts, schema_version })
}

/// What [`hash`] learns: SHA-256, size, page hashes.
type Hashed = (String, u64, Option<(u32, Vec<delta::PageHash>)>);

/// Reads `raw` once: its SHA-256, size and page hashes.
fn hash(raw: &Path) -> std::io::Result<Hashed> {
    let mut header = [0u8; 100];
    let page_size = match File::open(raw)?.read_exact(&mut header) {
        Ok(()) => delta::page_size_of(&header),
        Err(_) => None,
    };
    let mut pages = page_size.map(delta::PageHasher::new);
    let (sha, total) = codec::hash_through(File::open(raw)?, |b| {
        if let Some(p) = pages.as_mut() {
            p.update(b);
        }
        Ok(())
    })?;
    let pages = page_size.zip(pages.and_then(delta::PageHasher::finish));
    Ok((sha, total, pages))
}

/// Whether the SQLite file at `path` has a table named `table` (its schema
/// read, no row counted).
pub async fn has_table(path: &Path, table: &'static str) -> Result<bool> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::db::read_only::has_table(
            &Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
            table,
        )
    })
    .await
    .map_err(|e| Error::internal("reading a snapshot", e))?
    .map_err(|e| Error::internal("reading a snapshot", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(path: &Path, sql: &str) {
        let c = Connection::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        c.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    #[test]
    fn a_page_copy_is_a_plain_file_whose_bytes_depend_on_the_content_only() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal("tempdir", e))?;
        let live = dir.path().join("live.db");
        exec(
            &live,
            "PRAGMA journal_mode=WAL; CREATE TABLE parts (part_number TEXT);
             INSERT INTO parts VALUES ('ANT00001P1'), ('ANT00002P1');",
        );
        let mut shas = Vec::new();
        for i in 0..2 {
            let (raw, zst) = (dir.path().join(format!("raw{i}")), dir.path().join(format!("zst{i}")));
            let taken = take_blocking(&live, &raw)?;
            assert_eq!(taken.record_counts.get("parts"), Some(&2));
            assert_eq!(taken.raw_bytes, std::fs::metadata(&raw).map(|m| m.len()).unwrap_or(0));
            let stored = codec::compress(&raw, &zst).map_err(|e| Error::internal("compress", e))?;
            assert!(stored > 0 && stored < taken.raw_bytes);
            // Rollback-journal mode in the header (bytes 18 and 19 are 1).
            let bytes = std::fs::read(&raw).map_err(|e| Error::internal("read", e))?;
            assert_eq!((bytes[18], bytes[19]), (1, 1));
            let (sha, _) = codec::sha256_file(&raw).map_err(|e| Error::internal("hash", e))?;
            assert_eq!(sha, taken.sha256);
            let unpacked = dir.path().join(format!("unpacked{i}"));
            codec::decompress(&zst, &unpacked).map_err(|e| Error::internal("decompress", e))?;
            assert_eq!(codec::sha256_file(&unpacked).map_err(|e| Error::internal("hash", e))?.0, sha);
            shas.push(sha);
        }
        // Same content, same identity; a snapshot of a snapshot too.
        assert_eq!(shas[0], shas[1]);
        let raw = dir.path().join("raw-again");
        assert_eq!(take_blocking(&dir.path().join("raw0"), &raw)?.sha256, shas[0]);
        exec(&live, "INSERT INTO parts VALUES ('ANT00003P1');");
        let raw = dir.path().join("raw2");
        let changed = take_blocking(&live, &raw)?;
        assert_ne!(changed.sha256, shas[0]);
        assert_eq!(changed.record_counts.get("parts"), Some(&3));
        Ok(())
    }
}

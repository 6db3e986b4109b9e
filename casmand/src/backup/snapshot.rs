//! Consistent copies of a live database, taken with `VACUUM INTO` on a reader
//! connection while writers keep committing (WAL): the copy is one
//! transaction's view, never a file copied mid-write. The copy is checked
//! with `PRAGMA integrity_check` before anything uses it.

use std::{collections::BTreeMap, path::Path};

use sqlx::Connection;

use super::codec;
use crate::{
    db::{Db, preflight},
    error::{Error, Result},
};

/// Main tables whose rows are counted in the manifest.
pub const COUNTED: [&str; 5] = ["parts", "antenna_positions", "snap_boards", "grid_positions", "assembly"];

/// A snapshot file and its identity.
#[derive(Debug)]
pub struct Snapshot {
    /// The raw SQLite file (deleted when dropped).
    pub file: tempfile::TempPath,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Its size.
    pub raw_bytes: u64,
    /// Rows per main table.
    pub record_counts: BTreeMap<String, i64>,
    /// Last applied migration.
    pub schema_version: i64,
}

/// Snapshots `db` into a new file under `tmp_dir`.
pub async fn take(db: &Db, tmp_dir: &Path) -> Result<Snapshot> {
    std::fs::create_dir_all(tmp_dir).map_err(|e| Error::internal("creating the temporary directory", e))?;
    let file = tempfile::Builder::new()
        .prefix(&format!("{}.snapshot.", db.name))
        .tempfile_in(tmp_dir)
        .map_err(|e| Error::internal("creating a snapshot file", e))?
        .into_temp_path();
    // VACUUM INTO accepts an existing empty file.
    sqlx::query("VACUUM INTO ?")
        .bind(file.display().to_string())
        .execute(&*db.reader().await)
        .await
        .map_err(|e| Error::internal("taking a snapshot (VACUUM INTO)", e))?;
    normalise_header(&file).map_err(|e| Error::internal("normalising the snapshot", e))?;
    let integrity =
        preflight::integrity_check(&file).await.map_err(|e| Error::internal("checking the snapshot", e))?;
    if integrity != "ok" {
        return Err(Error::internal("the snapshot failed PRAGMA integrity_check", integrity));
    }
    let (record_counts, schema_version) = describe(&file).await?;
    let path = file.to_path_buf();
    let (sha256, raw_bytes) = tokio::task::spawn_blocking(move || codec::sha256_file(&path))
        .await
        .map_err(|e| Error::internal("hashing the snapshot", e))?
        .map_err(|e| Error::internal("hashing the snapshot", e))?;
    Ok(Snapshot { file, sha256, raw_bytes, record_counts, schema_version })
}

/// Offset of the schema cookie in the SQLite header.
const SCHEMA_COOKIE: u64 = 40;

/// `VACUUM INTO` writes the source's schema cookie plus one, so a snapshot of
/// a restored snapshot would differ from it by that counter alone. Setting it
/// to 1 in the fresh, unopened copy makes a snapshot's bytes (and so its
/// SHA-256, the version's identity) depend on the content only. Safe: no
/// connection has the file open, and any positive cookie is valid.
fn normalise_header(path: &Path) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(SCHEMA_COOKIE))?;
    f.write_all(&1u32.to_be_bytes())?;
    f.sync_all()
}

/// Row counts of the main tables and the schema version of an SQLite file.
pub async fn describe(path: &Path) -> Result<(BTreeMap<String, i64>, i64)> {
    let err = |e: sqlx::Error| Error::internal("reading a snapshot", e);
    let mut conn = preflight::read_only(path).await.map_err(err)?;
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&mut conn)
        .await
        .map_err(err)?;
    let mut counts = BTreeMap::new();
    for t in COUNTED.iter().filter(|t| tables.iter().any(|x| x == *t)) {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
        counts.insert((*t).to_owned(), n);
    }
    let schema = if tables.iter().any(|t| t == "_sqlx_migrations") {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .map_err(err)?
    } else {
        0
    };
    let _ = conn.close().await;
    Ok((counts, schema))
}

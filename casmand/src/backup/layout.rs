//! Object keys in the bucket. CAsMan's layout `backups/<db>/<UTC
//! yyyymmdd_HHMMSS>_<db>` (plus `.metadata.json`) is what users have and type
//! in `restore`; casman keeps reading it and writes
//! `backups/<db>/<UTC yyyymmdd_HHMMSS>_<site>_<seq>_<db>.zst`, unique per site
//! and sequence, and self-describing. Each database has a manifest
//! `backups/<db>/MANIFEST.json`.

use crate::error::{Error, Result};

/// Databases that are backed up.
pub const BACKED_UP: [&str; 2] = ["parts.db", "assembled_casm.db"];

/// The databases named in a request (`parts.db`, `assembled_casm.db`); none
/// means both.
pub fn databases(requested: &[String]) -> Result<Vec<&'static str>> {
    if requested.is_empty() {
        return Ok(BACKED_UP.to_vec());
    }
    requested
        .iter()
        .map(|d| {
            BACKED_UP.iter().copied().find(|b| *b == d.trim()).ok_or_else(|| {
                Error::invalid(format!("database {d:?}: expected parts.db or assembled_casm.db"))
            })
        })
        .collect()
}

/// Prefix of every backup object.
pub const ROOT: &str = "backups";

/// Key of the manifest of `db`.
pub fn manifest_key(db: &str) -> String {
    format!("{ROOT}/{db}/MANIFEST.json")
}

/// Key of a new version.
pub fn version_key(db: &str, stamp: &str, site: &str, seq: u64) -> String {
    format!("{ROOT}/{db}/{stamp}_{site}_{seq}_{db}.zst")
}

/// Key of a new delta version (pages changed since its delta base; see
/// [`crate::backup::delta`]): the version key with `.delta.zst`.
pub fn delta_key(db: &str, stamp: &str, site: &str, seq: u64) -> String {
    format!("{ROOT}/{db}/{stamp}_{site}_{seq}_{db}.delta.zst")
}

/// UTC `yyyymmdd_HHMMSS` of `ts`.
pub fn stamp(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y%m%d_%H%M%S").to_string()
}

/// The database a backup key belongs to (`backups/<db>/...`), checked against
/// the databases casman backs up.
pub fn database_of(key: &str) -> Result<&'static str> {
    let mut parts = key.trim().split('/');
    let (Some(ROOT), Some(db), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::invalid(format!(
            "backup key {key:?}: expected backups/<database>/<file> as `casmanctl sync list` prints it, \
             e.g. backups/parts.db/20261201_212528_lab_3_parts.db.zst (CAsMan's \
             backups/parts.db/20241208_143022_parts.db works too)"
        )));
    };
    let db = BACKED_UP.iter().find(|d| **d == db).ok_or_else(|| {
        Error::invalid(format!("backup key {key:?}: database {db:?} is not parts.db or assembled_casm.db"))
    })?;
    if file.is_empty() || parts.next().is_some() {
        return Err(Error::invalid(format!("backup key {key:?}: expected backups/<database>/<file>")));
    }
    Ok(db)
}

/// True for CAsMan's keys: `backups/<db>/<yyyymmdd_HHMMSS>_<db>`.
pub fn is_legacy_version(key: &str, db: &str) -> bool {
    let Some(file) = key.strip_prefix(&format!("{ROOT}/{db}/")) else { return false };
    let Some(stamp) = file.strip_suffix(&format!("_{db}")) else { return false };
    stamp.len() == 15
        && stamp.as_bytes()[8] == b'_'
        && stamp.bytes().enumerate().all(|(i, b)| i == 8 || b.is_ascii_digit())
}

/// The metadata key CAsMan wrote beside a version.
pub fn legacy_metadata_key(key: &str) -> String {
    format!("{key}.metadata.json")
}

/// The UTC time in a CAsMan key, as stored-form ISO (`2024-12-08T14:30:22Z`).
pub fn legacy_time(key: &str, db: &str) -> Option<String> {
    let file = key.strip_prefix(&format!("{ROOT}/{db}/"))?;
    let s = file.get(..15)?;
    Some(format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(manifest_key("parts.db"), "backups/parts.db/MANIFEST.json");
        assert_eq!(
            version_key("parts.db", "20260101_120000", "lab", 3),
            "backups/parts.db/20260101_120000_lab_3_parts.db.zst"
        );
        assert_eq!(
            delta_key("parts.db", "20260101_120000", "lab", 4),
            "backups/parts.db/20260101_120000_lab_4_parts.db.delta.zst"
        );
        assert_eq!(database_of(&delta_key("parts.db", "20260101_120000", "lab", 4)).ok(), Some("parts.db"));
        assert_eq!(database_of("backups/parts.db/20241208_143022_parts.db").ok(), Some("parts.db"));
        assert_eq!(
            database_of("backups/assembled_casm.db/20261201_212528_lab_3_assembled_casm.db.zst").ok(),
            Some("assembled_casm.db")
        );
        assert!(database_of("backups/other.db/x").is_err());
        let e = database_of("parts.db").map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("backups/parts.db/20261201_212528_lab_3_parts.db.zst"), "{e}");
        assert!(is_legacy_version("backups/parts.db/20241208_143022_parts.db", "parts.db"));
        assert!(!is_legacy_version("backups/parts.db/20241208_143022_lab_1_parts.db.zst", "parts.db"));
        assert!(!is_legacy_version("backups/parts.db/20241208_143022_parts.db.metadata.json", "parts.db"));
        assert_eq!(
            legacy_time("backups/parts.db/20241208_143022_parts.db", "parts.db").as_deref(),
            Some("2024-12-08T14:30:22Z")
        );
    }
}

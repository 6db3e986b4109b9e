//! A store that survives losing its index (issue 31): every version object
//! casman uploads carries its manifest entry, stored with it before the
//! manifest update: as S3 user metadata on the object's own PUT (no request
//! of its own), or as a sidecar `<key>.meta.json` (a local store, or an
//! entry over S3's metadata limit); see `Store::put_version_file`. The
//! manifest of a database can be rebuilt from one LIST of its prefix plus
//! one HEAD or GET per version. Objects without an entry (stored before
//! entries existed) are described from
//! their key (time, site, sequence, full or delta) and content (a delta's
//! header names its base and result; a full snapshot is downloaded and
//! hashed).
//!
//! A rebuilt manifest is written by compare-and-swap only while the manifest
//! is still missing (or still the same unreadable object), automatically when
//! a backup, sync or list finds version objects but no manifest, or by
//! `casmanctl sync repair`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    codec, delta, layout,
    manifest::{Kind, Manifest, Reason, Version},
    service::BackupService,
    store::{ObjectInfo, Precondition, StoreError},
};
use crate::error::{Error, Result};

/// Suffix of a version's sidecar.
pub const SIDECAR_SUFFIX: &str = ".meta.json";

/// Format number of a sidecar.
pub const SIDECAR_FORMAT: u32 = 1;

/// Key of the sidecar of the version object `key`.
pub fn sidecar_key(key: &str) -> String {
    format!("{key}{SIDECAR_SUFFIX}")
}

/// What a casman version key says: `<stamp>_<site>_<seq>_<db>.zst` or
/// `.delta.zst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts {
    /// UTC `yyyymmdd_HHMMSS`.
    pub stamp: String,
    /// Site that stored it.
    pub site: String,
    /// Its sequence number at that site.
    pub seq: u64,
    /// A delta object.
    pub delta: bool,
}

impl KeyParts {
    /// The time in the key, stored-form ISO (`2026-12-01T21:25:28Z`).
    pub fn created_at(&self) -> String {
        let s = &self.stamp;
        format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15])
    }
}

/// The parts of a casman version key of `db`; `None` for anything else
/// (the manifest, sidecars, CAsMan's keys, foreign objects).
pub fn parse_version_key(key: &str, db: &str) -> Option<KeyParts> {
    let file = key.strip_prefix(&format!("{}/{db}/", layout::ROOT))?;
    let (rest, delta) = match file.strip_suffix(&format!("_{db}.delta.zst")) {
        Some(r) => (r, true),
        None => (file.strip_suffix(&format!("_{db}.zst"))?, false),
    };
    let stamp = rest.get(..15)?;
    let ok_stamp =
        stamp.bytes().enumerate().all(|(i, b)| if i == 8 { b == b'_' } else { b.is_ascii_digit() });
    let (site, seq) = rest.get(16..)?.rsplit_once('_')?;
    if !ok_stamp || rest.as_bytes().get(15) != Some(&b'_') || site.is_empty() {
        return None;
    }
    let seq = seq.parse().ok()?;
    Some(KeyParts { stamp: stamp.to_owned(), site: site.to_owned(), seq, delta })
}

/// Key of the sidecar of a restore record (no object of its own: it
/// points at an older version's), beside that object.
pub fn restore_sidecar_key(v: &Version) -> String {
    format!("{}.restore_{}_{}{SIDECAR_SUFFIX}", v.key, v.site, v.seq)
}

/// The version key a sidecar key of `db` (a version's or a restore
/// record's) belongs to.
pub fn sidecar_of<'k>(key: &'k str, db: &str) -> Option<&'k str> {
    let base = key.strip_suffix(SIDECAR_SUFFIX)?;
    let base = base.rsplit_once(".restore_").map_or(base, |(b, _)| b);
    parse_version_key(base, db).is_some().then_some(base)
}

/// The content of a sidecar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sidecar {
    /// [`SIDECAR_FORMAT`].
    pub format: u32,
    /// File name of the database.
    pub database: String,
    /// The version's manifest entry, as written when it was stored.
    pub version: Version,
}

/// The bytes of the sidecar of `v`, a version of `db`.
pub fn sidecar_bytes(db: &str, v: &Version) -> Vec<u8> {
    let s = Sidecar { format: SIDECAR_FORMAT, database: db.to_owned(), version: v.clone() };
    serde_json::to_vec(&s).unwrap_or_default()
}

/// The version a sidecar holds, checked against the object it sits beside.
pub fn parse_sidecar(bytes: &[u8], db: &str, key: &str) -> std::result::Result<Version, String> {
    let s: Sidecar = serde_json::from_slice(bytes)
        .map_err(|e| format!("{} is not a valid sidecar: {e}", sidecar_key(key)))?;
    if s.database != db || s.version.key != key {
        return Err(format!(
            "{} describes {} of {}, not {key} of {db}",
            sidecar_key(key),
            s.version.key,
            s.database
        ));
    }
    Ok(s.version)
}

/// What the words for an unreadable manifest `key` whose content is
/// `bytes` are (`None` when it reads).
pub fn unreadable(key: &str, bytes: &[u8]) -> Option<String> {
    let e = serde_json::from_slice::<Manifest>(bytes).err()?;
    let what = if e.is_eof() {
        format!("is not valid JSON (truncated at byte {}?)", bytes.len())
    } else if e.is_syntax() {
        format!("is not valid JSON ({e})")
    } else {
        format!("is not a casman manifest ({e})")
    };
    Some(format!("{key} in the store {what}: run casmanctl sync repair"))
}

/// What a version object without sidecar says by its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// SHA-256 of the rebuilt file.
    pub sha256: String,
    /// Size of the rebuilt file.
    pub raw_bytes: u64,
    /// For a delta: the key of its base.
    pub delta_base: Option<String>,
}

/// A manifest of `db` from its `objects` (one LIST): the versions whose
/// `sidecars` were read, then those `derived` from their content, plus
/// `others` (CAsMan's versions, restore records). Each site's base is its
/// newest version.
pub fn assemble(
    db: &str,
    objects: &[(String, ObjectInfo)],
    sidecars: &BTreeMap<String, Version>,
    derived: &BTreeMap<String, Derived>,
    others: Vec<Version>,
) -> Manifest {
    let mut m = Manifest::new(db);
    m.versions = others;
    for (key, info) in objects {
        let Some(parts) = parse_version_key(key, db) else { continue };
        let v = if let Some(v) = sidecars.get(key) {
            Version { stored_bytes: info.size, ..v.clone() }
        } else if let Some(d) = derived.get(key) {
            Version {
                key: key.clone(),
                created_at: parts.created_at(),
                site: parts.site.clone(),
                seq: parts.seq,
                sha256: d.sha256.clone(),
                content_sha256: None,
                raw_bytes: d.raw_bytes,
                stored_bytes: info.size,
                codec: "zstd".into(),
                parent: None,
                merged_from: None,
                reason: Reason::Scheduled,
                record_counts: BTreeMap::new(),
                casman_version: String::new(),
                schema_version: 0,
                branch: false,
                kind: if d.delta_base.is_some() { Kind::Delta } else { Kind::Full },
                delta_base: d.delta_base.clone(),
                chain_depth: 0,
            }
        } else {
            continue;
        };
        m.versions.push(v);
    }
    m.versions.sort_by(|a, b| (&a.created_at, &a.site, a.seq).cmp(&(&b.created_at, &b.site, b.seq)));
    // A derived version's parent: the one its site stored before it.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let shas: BTreeMap<String, String> =
        m.versions.iter().map(|v| (v.key.clone(), v.sha256.clone())).collect();
    for v in m.versions.iter_mut() {
        if !sidecars.contains_key(&v.key) && derived.contains_key(&v.key) {
            v.parent = last
                .get(&v.site)
                .cloned()
                .or_else(|| v.delta_base.as_ref().and_then(|b| shas.get(b).cloned()));
        }
        last.insert(v.site.clone(), v.sha256.clone());
    }
    // A derived delta's place in its chain.
    let depth_of = |m: &Manifest, key: &str| -> u32 {
        let mut depth = 0;
        let mut at = m.find(key);
        while let Some(v) = at.filter(|v| v.kind == Kind::Delta) {
            depth += 1;
            if depth as usize > m.versions.len() {
                break;
            }
            at = v.delta_base.as_deref().and_then(|b| m.find(b));
        }
        depth
    };
    let depths: Vec<u32> = m.versions.iter().map(|v| depth_of(&m, &v.key)).collect();
    for (v, d) in m.versions.iter_mut().zip(depths) {
        if v.chain_depth == 0 {
            v.chain_depth = d;
        }
    }
    for v in m.versions.iter().filter(|v| v.reason != Reason::PreRestore && v.reason != Reason::Legacy) {
        m.bases.insert(v.site.clone(), v.sha256.clone());
    }
    m.rebuilt_at = Some(crate::timestamp::format(jiff::Timestamp::now()));
    // Its history starts at the oldest object it was rebuilt from.
    m.keep_history_start(None);
    m
}

/// Objects of `db` that look like versions a manifest does not account
/// for: history it lost. Among `candidates` (the objects no version of `m`
/// references), a version object stamped before the start of the
/// manifest's history ([`Manifest::history_start`]) and not retired by
/// retention, with the sidecars beside it. Maintenance deletes no orphan
/// while there is one.
///
/// Why the time separates the two cases: a version's key is stamped with
/// the clock when its upload starts (a spooled one with its snapshot's
/// time), and the manifest's history starts at its first version's time.
/// An upload left unrecorded (killed between the object or sidecar and the
/// manifest update, a lost race whose clean-up failed, a spooled version
/// retried under the next sequence number) was made while the manifest
/// existed, so it is stamped at or after that start however far retention
/// has moved the oldest listed version since: an orphan. History the
/// manifest lost (it was replaced by a freshly started one, or by one
/// written before the objects it no longer lists) is older than its start.
/// The sequence number in the key does not separate them: a crash's
/// leftover takes the number the site's next version then takes again
/// (`Manifest::next_seq` counts listed versions only), and a freshly
/// started manifest counts from 1 again, so lost versions have numbers the
/// new history reaches too.
///
/// Key times have whole seconds: an object stamped in the very second the
/// history starts cannot be told apart from one before it, and counts as
/// lost (reported, nothing deleted: the safe side; an error can be cleared,
/// a deletion cannot be undone). An upload is stamped in that second only
/// when made in the same second as the manifest's first version.
///
/// A sidecar whose object is not among `candidates` (gone, e.g. a clean-up
/// that deleted the object but not the sidecar) describes nothing that can
/// be read back: it is an ordinary orphan.
pub fn unaccounted<'o>(m: &Manifest, db: &str, candidates: &[&'o (String, ObjectInfo)]) -> Vec<&'o str> {
    // No start (no version listed): every version object is unaccounted.
    let start = m.history_start();
    let retired: BTreeSet<&str> = m.retired.iter().map(String::as_str).collect();
    let lost = |key: &str| {
        parse_version_key(key, db).is_some_and(|p| {
            !retired.contains(key) && start.as_deref().is_none_or(|s| p.created_at().as_str() <= s)
        })
    };
    let objects: BTreeSet<&str> = candidates.iter().map(|(k, _)| k.as_str()).collect();
    candidates
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| match sidecar_of(k, db) {
            Some(object) => objects.contains(object) && lost(object),
            None => lost(k),
        })
        .collect()
}

/// Outcome of a repair of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The database.
    pub database: String,
    /// True when a manifest was written.
    pub repaired: bool,
    /// Versions the manifest lists now.
    pub versions: usize,
    /// What was found and done, in words.
    pub detail: String,
}

impl BackupService {
    /// A manifest of `db` rebuilt from `objects` (its prefix, listed once).
    pub(super) async fn rebuild_from(&self, db: &str, objects: &[(String, ObjectInfo)]) -> Result<Manifest> {
        let present: BTreeSet<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
        let mut sidecars = BTreeMap::new();
        let mut derived = BTreeMap::new();
        for (key, _) in objects.iter().filter(|(k, _)| parse_version_key(k, db).is_some()) {
            // The entry: a sidecar object beside it (a local store, or an
            // entry too large for S3 metadata), else the object's own
            // metadata (one HEAD on S3; see Store::put_version_file).
            let side = sidecar_key(key);
            let entry = if present.contains(side.as_str()) {
                self.store.get_bytes(&side, None).await.map(|found| found.map(|(bytes, _)| bytes))
            } else {
                self.store.version_entry(key).await
            };
            match entry {
                Ok(Some(bytes)) => match parse_sidecar(&bytes, db, key) {
                    Ok(v) => {
                        sidecars.insert(key.clone(), v);
                        continue;
                    }
                    Err(e) => tracing::warn!(key = %key, error = %e, "unreadable entry; reading the object"),
                },
                Ok(None) => {}
                Err(e) => return Err(Error::from(e)),
            }
            derived.insert(key.clone(), self.derive(db, key).await?);
        }
        let mut others = super::legacy::import_from(&self.store, db, objects).await?.versions;
        // Restore records: their sidecars, beside an object still there.
        for (side, _) in
            objects.iter().filter(|(k, _)| k.ends_with(SIDECAR_SUFFIX) && k.contains(".restore_"))
        {
            let Some(key) = sidecar_of(side, db).filter(|k| present.contains(k)) else { continue };
            let record = match self.store.get_bytes(side, None).await {
                Ok(Some((bytes, _))) => parse_sidecar(&bytes, db, key),
                Ok(None) => continue,
                Err(e) => return Err(Error::from(e)),
            };
            match record {
                Ok(v) if v.reason == Reason::Restore => others.push(v),
                Ok(_) => tracing::warn!(key = %side, "not a restore record; skipped"),
                Err(e) => tracing::warn!(key = %side, error = %e, "unreadable restore record; skipped"),
            }
        }
        Ok(assemble(db, objects, &sidecars, &derived, others))
    }

    /// Describes the version object `key` (no sidecar) from its content.
    async fn derive(&self, db: &str, key: &str) -> Result<Derived> {
        let download = self.tmp_path(db, "rebuild")?;
        self.store.get_file(key, &download, &|_| {}).await.map_err(Error::from)?;
        let raw = self.tmp_path(db, "rebuild-raw")?;
        let (src, dst, is_delta) = (download.to_path_buf(), raw.to_path_buf(), key.ends_with(".delta.zst"));
        let what = format!("reading {key} to rebuild the manifest");
        tokio::task::spawn_blocking(move || -> std::io::Result<Derived> {
            if is_delta {
                let (h, _) = delta::read_records(&src)?;
                Ok(Derived {
                    sha256: h.result_sha256,
                    raw_bytes: h.page_count * u64::from(h.page_size),
                    delta_base: Some(h.base_key),
                })
            } else {
                codec::decompress(&src, &dst)?;
                let (sha256, raw_bytes) = codec::sha256_file(&dst)?;
                Ok(Derived { sha256, raw_bytes, delta_base: None })
            }
        })
        .await
        .map_err(|e| Error::internal(&what, e))?
        .map_err(|e| Error::internal(&what, e))
    }

    /// Reports that the manifest of `db` is lost (`problem`), with
    /// `objects` version objects found, if counted (`crate::notify`).
    pub(super) fn index_lost(&self, db: &str, problem: &str, objects: Option<usize>) {
        let problem = problem.split(": run casmanctl").next().unwrap_or(problem);
        let e = crate::notify::Event::index_lost(db, problem, objects, jiff::Timestamp::now());
        self.notices.event(e);
    }

    /// Called when `db` has no manifest: one LIST; when it finds casman
    /// version objects, rebuilds the manifest from them and writes it (only
    /// if still absent). `Ok(None)`: no casman version there (CAsMan's
    /// import stands in, as before).
    pub(super) async fn recover_missing(&self, db: &str) -> Result<Option<(Manifest, Option<String>)>> {
        let objects = match self.store.list(&format!("{}/{db}/", layout::ROOT)).await {
            Ok(o) => o,
            Err(StoreError::Disabled) => return Ok(Some((Manifest::new(db), None))),
            Err(e) => return Err(Error::from(e)),
        };
        let found: Vec<&str> =
            objects.iter().map(|(k, _)| k.as_str()).filter(|k| parse_version_key(k, db).is_some()).collect();
        let Some(first) = found.first() else {
            let m = super::legacy::import_from(&self.store, db, &objects).await?;
            return Ok(Some((m, None)));
        };
        let key = layout::manifest_key(db);
        self.index_lost(db, &format!("{key} is missing"), Some(found.len()));
        tracing::warn!(
            database = db,
            objects = found.len(),
            "{key} is missing from the store but {} version objects of {db} are there: rebuilding the manifest from them",
            found.len()
        );
        let refuse = |e: &dyn std::fmt::Display| {
            Error::FailedPrecondition(format!(
                "{key} is missing but the store holds {} version objects of {db} (e.g. {first}); rebuilding \
                 the manifest from them failed ({e}), so no new history is started over them: run \
                 casmanctl sync repair",
                found.len()
            ))
        };
        let m = self.rebuild_from(db, &objects).await.map_err(|e| refuse(&e))?;
        match self.store.put_bytes(&key, m.to_bytes(), Some(Precondition::Absent)).await {
            Ok(etag) => {
                tracing::warn!(database = db, versions = m.versions.len(), "{key} rebuilt from the objects");
                self.notices.event(crate::notify::Event::index_repaired(
                    db,
                    m.versions.len(),
                    jiff::Timestamp::now(),
                ));
                self.remember_manifest(db, &m, Some(etag.clone()).filter(|e| !e.is_empty()));
                Ok(Some((m, Some(etag).filter(|e| !e.is_empty()))))
            }
            // Another site or request wrote one meanwhile: read that.
            Err(StoreError::PreconditionFailed(_)) => Ok(None),
            Err(e) => Err(refuse(&e)),
        }
    }

    /// `casmanctl sync repair`: rebuilds the manifest of `db` from the
    /// objects when it is missing or unreadable (compare-and-swap on what
    /// was found); a readable manifest is left alone.
    pub async fn repair(&self, db: &str) -> Result<Repair> {
        let _guard = self.lock(db).await?;
        let key = layout::manifest_key(db);
        let (cond, problem) = match self.store.get_bytes(&key, None).await {
            Ok(Some((bytes, etag))) => match unreadable(&key, &bytes) {
                None => {
                    let m = Manifest::parse(&bytes).map_err(Error::invalid)?;
                    return Ok(Repair {
                        database: db.to_owned(),
                        repaired: false,
                        versions: m.versions.len(),
                        detail: format!("{key} reads; nothing to repair"),
                    });
                }
                Some(problem) => (Precondition::Matches(etag), problem),
            },
            Ok(None) => return Err(Error::internal("reading the manifest", "unexpected not-modified")),
            Err(StoreError::NotFound(_)) => (Precondition::Absent, format!("{key} is missing")),
            Err(e) => return Err(Error::from(e)),
        };
        self.index_lost(db, &problem, None);
        let objects = self.store.list(&format!("{}/{db}/", layout::ROOT)).await.map_err(Error::from)?;
        let m = self.rebuild_from(db, &objects).await?;
        match self.store.put_bytes(&key, m.to_bytes(), Some(cond)).await {
            Ok(etag) => {
                self.remember_manifest(db, &m, Some(etag).filter(|e| !e.is_empty()));
                let problem = problem.split(": run casmanctl").next().unwrap_or_default().to_owned();
                self.notices.event(crate::notify::Event::index_repaired(
                    db,
                    m.versions.len(),
                    jiff::Timestamp::now(),
                ));
                tracing::warn!(
                    database = db,
                    versions = m.versions.len(),
                    "{problem}: manifest rebuilt from the objects"
                );
                Ok(Repair {
                    database: db.to_owned(),
                    repaired: true,
                    versions: m.versions.len(),
                    detail: format!("{problem}: rebuilt from the objects, {} versions", m.versions.len()),
                })
            }
            Err(StoreError::PreconditionFailed(_)) => Err(Error::Aborted(format!(
                "{key} changed while it was being rebuilt (another site or request wrote it); run casmanctl \
                 sync repair again to check it"
            ))),
            Err(e) => Err(Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::tests::v;

    fn info(size: u64) -> ObjectInfo {
        ObjectInfo { size, ..Default::default() }
    }

    #[test]
    fn version_keys_are_parsed_and_others_are_not() {
        let k = "backups/parts.db/20261201_212528_field_site_3_parts.db.delta.zst";
        let p = parse_version_key(k, "parts.db");
        assert_eq!(
            p,
            Some(KeyParts {
                stamp: "20261201_212528".into(),
                site: "field_site".into(),
                seq: 3,
                delta: true
            })
        );
        assert_eq!(p.map(|p| p.created_at()).as_deref(), Some("2026-12-01T21:25:28Z"));
        for other in [
            "backups/parts.db/MANIFEST.json",
            "backups/parts.db/20241208_143022_parts.db",
            "backups/parts.db/20241208_143022_parts.db.metadata.json",
            "backups/parts.db/20261201_212528_lab_3_parts.db.zst.meta.json",
            "backups/parts.db/20261201_212528_lab_x_parts.db.zst",
            "backups/assembled_casm.db/20261201_212528_lab_3_assembled_casm.db.zst",
        ] {
            assert_eq!(parse_version_key(other, "parts.db"), None, "{other}");
        }
        assert_eq!(
            sidecar_of("backups/parts.db/20261201_212528_lab_3_parts.db.zst.meta.json", "parts.db"),
            Some("backups/parts.db/20261201_212528_lab_3_parts.db.zst")
        );
        let mut r = v("backups/parts.db/20261201_212528_lab_3_parts.db.zst", "t", "lab", 3, Reason::Manual);
        r.seq = 9;
        let side = restore_sidecar_key(&r);
        assert_eq!(side, "backups/parts.db/20261201_212528_lab_3_parts.db.zst.restore_lab_9.meta.json");
        assert_eq!(sidecar_of(&side, "parts.db"), Some(r.key.as_str()));
        assert_eq!(sidecar_of("backups/parts.db/20241208_143022_parts.db.metadata.json", "parts.db"), None);
    }

    #[test]
    fn a_sidecar_round_trips_and_must_match_its_object() {
        let x = v(
            "backups/parts.db/20260101_000000_lab_1_parts.db.zst",
            "2026-01-01T00:00:00Z",
            "lab",
            1,
            Reason::Manual,
        );
        let bytes = sidecar_bytes("parts.db", &x);
        assert_eq!(parse_sidecar(&bytes, "parts.db", &x.key), Ok(x.clone()));
        assert!(parse_sidecar(&bytes, "parts.db", "other").is_err_and(|e| e.contains("other")));
        assert!(parse_sidecar(b"{", "parts.db", &x.key).is_err_and(|e| e.contains("meta.json")));
    }

    #[test]
    fn a_truncated_manifest_is_described_in_words() {
        let key = "backups/parts.db/MANIFEST.json";
        let e = unreadable(key, br#"{"format":1,"datab"#).unwrap_or_default();
        assert!(
            e.contains("not valid JSON (truncated at byte 18?)")
                && e.contains(key)
                && e.contains("sync repair"),
            "{e}"
        );
        assert!(unreadable(key, b"[1]").is_some_and(|e| e.contains("not a casman manifest")));
        assert_eq!(unreadable(key, &Manifest::new("parts.db").to_bytes()), None);
    }

    #[test]
    fn a_manifest_is_assembled_from_sidecars_and_contents() {
        let db = "parts.db";
        let full = "backups/parts.db/20260101_000000_lab_1_parts.db.zst";
        let d2 = "backups/parts.db/20260102_000000_lab_2_parts.db.delta.zst";
        let d3 = "backups/parts.db/20260103_000000_lab_3_parts.db.delta.zst";
        let objects: Vec<(String, ObjectInfo)> =
            [full, d2, d3, "backups/parts.db/other"].iter().map(|k| (k.to_string(), info(7))).collect();
        let mut sidecars = BTreeMap::new();
        let mut f = v(full, "2026-01-01T00:00:00Z", "lab", 1, Reason::Manual);
        f.record_counts.insert("parts".into(), 4);
        sidecars.insert(full.to_owned(), f.clone());
        let mut derived = BTreeMap::new();
        derived.insert(
            d2.to_owned(),
            Derived { sha256: "s2".into(), raw_bytes: 8, delta_base: Some(full.into()) },
        );
        derived.insert(
            d3.to_owned(),
            Derived { sha256: "s3".into(), raw_bytes: 8, delta_base: Some(d2.into()) },
        );
        let m = assemble(db, &objects, &sidecars, &derived, Vec::new());
        let keys: Vec<&str> = m.versions.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, [full, d2, d3]);
        assert_eq!(m.versions[0].record_counts, f.record_counts);
        assert_eq!(m.versions[0].stored_bytes, 7);
        assert_eq!((m.versions[2].chain_depth, m.versions[2].parent.as_deref()), (2, Some("s2")));
        assert_eq!(m.chain(&m.versions[2]).map(|c| c.len()), Ok(3));
        assert_eq!(m.bases.get("lab").map(String::as_str), Some("s3"));
        assert_eq!(m.next_seq("lab"), 4);
        assert!(m.rebuilt_at.is_some());
    }

    /// The rule maintenance decides by: an unrecorded upload is stamped
    /// after the start of the manifest's history, however far retention
    /// moved the oldest listed version since (an orphan); lost history is
    /// stamped before it.
    #[test]
    fn a_leftover_upload_is_an_orphan_and_lost_history_is_not() {
        let db = "parts.db";
        let key =
            |day: u32, seq: u64| format!("backups/parts.db/202601{day:02}_000000_lab_{seq}_parts.db.zst");
        let at = |day: u32| format!("2026-01-{day:02}T00:00:00Z");
        // Created with version 1 on the 1st; a backup killed on the 3rd
        // after its object and sidecar (sequence 3, which the next version,
        // on the 4th, took again); retention has moved on to the 10th and
        // no longer remembers retiring anything before it.
        let mut m = Manifest::new(db);
        m.versions.push(v(&key(1, 1), &at(1), "lab", 1, Reason::Manual));
        m.keep_history_start(None);
        assert_eq!(m.history_since.as_deref(), Some(at(1).as_str()), "set when created");
        let start = m.history_start();
        m.versions = vec![
            v(&key(10, 9), &at(10), "lab", 9, Reason::Scheduled),
            v(&key(11, 10), &at(11), "lab", 10, Reason::Scheduled),
        ];
        m.keep_history_start(start);
        assert_eq!(m.history_since.as_deref(), Some(at(1).as_str()), "retention does not move it");
        let leftover = key(3, 3);
        let objects: Vec<(String, ObjectInfo)> = [
            leftover.clone(),
            sidecar_key(&leftover),
            // A sidecar whose object is gone.
            sidecar_key(&key(2, 2)),
        ]
        .into_iter()
        .map(|k| (k, info(1)))
        .collect();
        let refs: Vec<&(String, ObjectInfo)> = objects.iter().collect();
        assert_eq!(unaccounted(&m, db, &refs), Vec::<&str>::new(), "orphans, not lost history");
        // In the very second the history starts: cannot be told apart, kept.
        let same = [(key(1, 2), info(1))];
        let same: Vec<&(String, ObjectInfo)> = same.iter().collect();
        assert_eq!(unaccounted(&m, db, &same), [key(1, 2)]);

        // The same objects under a freshly started manifest (its history
        // starts on the 10th, sequences from 1 again, past the leftover's):
        // history it lost.
        let mut fresh = Manifest::new(db);
        for (day, seq) in [(10, 1), (11, 2), (12, 3), (13, 4)] {
            let start = fresh.history_start();
            fresh.versions.push(v(&key(day, seq), &at(day), "lab", seq, Reason::Scheduled));
            fresh.keep_history_start(start);
        }
        assert_eq!(fresh.history_since.as_deref(), Some(at(10).as_str()));
        assert_eq!(unaccounted(&fresh, db, &refs), [leftover.clone(), sidecar_key(&leftover)]);
        // Written before the field existed: its history starts at the
        // oldest listed or retired version (CAsMan's versions aside, which
        // every new manifest imports again).
        fresh.history_since = None;
        fresh.versions.push(v("backups/parts.db/20241208_143022_parts.db", &at(1), "lab", 0, Reason::Legacy));
        assert_eq!(fresh.history_start().as_deref(), Some(at(10).as_str()));
        fresh.retired.push(key(2, 2));
        assert_eq!(fresh.history_start().as_deref(), Some(at(2).as_str()));
        assert_eq!(unaccounted(&fresh, db, &refs), Vec::<&str>::new());
        // A spooled version recorded later with its snapshot's older time
        // moves the start back: its retry's leftover is an orphan too.
        let start = m.history_start();
        m.versions.push(v(&key(0, 11), "2025-12-31T23:59:59Z", "field", 1, Reason::Scheduled));
        m.keep_history_start(start);
        assert_eq!(m.history_since.as_deref(), Some("2025-12-31T23:59:59Z"));
        // Round trip; an older manifest without the field reads.
        assert_eq!(Manifest::parse(&m.to_bytes()), Ok(m.clone()));
        let old = br#"{"format":1,"database":"parts.db","versions":[]}"#;
        assert_eq!(Manifest::parse(old).map(|m| m.history_since), Ok(None));
        assert!(!String::from_utf8_lossy(&Manifest::new(db).to_bytes()).contains("history_since"));
    }

    #[test]
    fn a_rebuilt_manifest_starts_its_history_at_the_oldest_object() {
        let db = "parts.db";
        let a = "backups/parts.db/20260101_000000_lab_1_parts.db.zst";
        let b = "backups/parts.db/20260102_000000_lab_2_parts.db.zst";
        let objects: Vec<(String, ObjectInfo)> = [b, a].iter().map(|k| (k.to_string(), info(7))).collect();
        let derived: BTreeMap<String, Derived> = [a, b]
            .iter()
            .map(|k| (k.to_string(), Derived { sha256: format!("s-{k}"), raw_bytes: 8, delta_base: None }))
            .collect();
        let m = assemble(db, &objects, &BTreeMap::new(), &derived, Vec::new());
        assert_eq!(m.history_since.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn objects_older_than_the_manifest_are_unaccounted_for() {
        let db = "parts.db";
        let mut m = Manifest::new(db);
        m.versions.push(v(
            "backups/parts.db/20260105_000000_lab_1_parts.db.zst",
            "2026-01-05T00:00:00Z",
            "lab",
            1,
            Reason::Manual,
        ));
        m.retired.push("backups/parts.db/20260102_000000_lab_2_parts.db.zst".into());
        let objects: Vec<(String, ObjectInfo)> = [
            "backups/parts.db/20260101_000000_lab_1_parts.db.zst",
            "backups/parts.db/20260101_000000_lab_1_parts.db.zst.meta.json",
            "backups/parts.db/20260102_000000_lab_2_parts.db.zst",
            "backups/parts.db/20260106_000000_lab_2_parts.db.zst",
            "backups/parts.db/junk",
        ]
        .iter()
        .map(|k| (k.to_string(), info(1)))
        .collect();
        let refs: Vec<&(String, ObjectInfo)> = objects.iter().collect();
        assert_eq!(
            unaccounted(&m, db, &refs),
            [
                "backups/parts.db/20260101_000000_lab_1_parts.db.zst",
                "backups/parts.db/20260101_000000_lab_1_parts.db.zst.meta.json"
            ]
        );
    }
}

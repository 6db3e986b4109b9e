//! Objects in the store that no manifest version references: left by a crash
//! between an upload and the manifest update (or between retention's manifest
//! update and its delete). Maintenance lists them and deletes those older than
//! `sync.orphan_grace`; a younger one may be an upload in progress at another
//! site, whose manifest update has not landed yet, and is only reported.
//! Such a leftover stays an orphan however far retention has moved on: it
//! is stamped after the start of the manifest's history
//! (`Manifest::history_since`), while history the manifest lost is stamped
//! before it (`backup::rebuild::unaccounted`), in which case nothing is
//! deleted and the run reports it.
//!
//! Only casman's own objects are considered: the manifest and CAsMan's
//! versions and metadata files (which the Python tool may still be writing at
//! a site) are never orphans.

use std::time::Duration;

use super::{
    layout,
    maintenance::MaintenanceReport,
    manifest::Manifest,
    service::BackupService,
    store::{ObjectInfo, StoreError},
};

/// The objects of `db`'s prefix in `objects` that no version of `m`
/// references, with their store information.
pub fn unreferenced<'o>(
    m: &Manifest,
    db: &str,
    objects: &'o [(String, ObjectInfo)],
) -> Vec<&'o (String, ObjectInfo)> {
    let referenced = m.referenced_keys();
    let manifest = layout::manifest_key(db);
    let prefix = format!("{}/{db}/", layout::ROOT);
    objects
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && *k != manifest)
        .filter(|(k, _)| !is_legacy(k, db))
        .filter(|(k, _)| !referenced.contains(k.as_str()))
        // A version's sidecar goes with it.
        .filter(|(k, _)| !super::rebuild::sidecar_of(k, db).is_some_and(|v| referenced.contains(v)))
        .collect()
}

/// CAsMan's version keys and the metadata beside them.
fn is_legacy(key: &str, db: &str) -> bool {
    layout::is_legacy_version(key, db)
        || key.strip_suffix(".metadata.json").is_some_and(|v| layout::is_legacy_version(v, db))
}

/// Whether the object was last modified more than `grace` before `now`. An
/// object of unknown age is treated as new: it is never deleted.
pub fn older_than(info: &ObjectInfo, now: jiff::Timestamp, grace: Duration) -> bool {
    let Some(modified) = info.last_modified.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return false;
    };
    let Ok(grace) = jiff::SignedDuration::try_from(grace) else { return false };
    now.duration_since(modified) > grace
}

impl BackupService {
    /// Lists `db`'s objects, then reads its manifest (so an object recorded
    /// between the two is seen as referenced), and deletes the orphans older
    /// than `grace`, into `report` (`orphans`, `orphans_deleted`, `errors`).
    /// The caller holds the database's lock, so no upload of this daemon is
    /// between its object and its manifest entry meanwhile.
    pub(super) async fn orphans(&self, db: &'static str, grace: Duration, report: &mut MaintenanceReport) {
        let objects = match self.store.list(&format!("{}/{db}/", layout::ROOT)).await {
            Ok(o) => o,
            Err(StoreError::Disabled) => return,
            Err(e) => {
                report.errors.push(format!("{db}: listing the objects to find orphans: {e}"));
                return;
            }
        };
        let m = match self.manifest(db).await {
            Ok((m, _)) => m,
            Err(e) => {
                report.errors.push(format!("{db}: reading the manifest to find orphans: {e}"));
                return;
            }
        };
        // No manifest and no CAsMan version: nothing is known to be
        // referenced (a lost manifest); deleting would lose what is left.
        if m.versions.is_empty() {
            return;
        }
        let candidates = unreferenced(&m, db, &objects);
        // Objects that look like versions stamped before the manifest's
        // history starts and that retention did not retire: the manifest
        // lost history (replaced by a freshly started one, or by one older
        // than these objects). Nothing is deleted: say so. An unrecorded
        // upload is stamped after that start, however far retention moved
        // on since: an ordinary orphan (see `rebuild::unaccounted`).
        let unaccounted = super::rebuild::unaccounted(&m, db, &candidates);
        if let Some(first) = unaccounted.first() {
            let since = m.history_start().unwrap_or_default();
            tracing::warn!(
                database = db,
                objects = unaccounted.len(),
                history_since = %since,
                "objects that look like versions the manifest does not list, older than the start of its \
                 history: no orphan deleted"
            );
            report.errors.push(format!(
                "{db}: {} objects look like versions from before the manifest's history starts ({since}) \
                 and not retired by retention (e.g. {first}): the manifest may have lost history, so no \
                 orphan was deleted; to get those versions back, move {} aside and run casmanctl sync \
                 repair (it rebuilds the manifest from every object)",
                unaccounted.len(),
                layout::manifest_key(db)
            ));
            report.orphans.extend(candidates.iter().map(|(k, _)| k.clone()));
            return;
        }
        let now = jiff::Timestamp::now();
        for (key, info) in candidates {
            if !older_than(info, now, grace) {
                tracing::info!(key = %key, "an object no manifest version references, younger than sync.orphan_grace: kept");
                report.orphans.push(key.clone());
                continue;
            }
            match self.store.delete(key).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {
                    tracing::info!(key = %key, "deleted an object no manifest version references (older than sync.orphan_grace)");
                    report.orphans_deleted.push(key.clone());
                }
                Err(e) => report.errors.push(format!("{key}: deleting an orphan: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(modified: Option<&str>) -> ObjectInfo {
        ObjectInfo {
            size: 1,
            etag: String::new(),
            storage_class: None,
            last_modified: modified.map(str::to_owned),
        }
    }

    #[test]
    fn only_unreferenced_casman_objects_are_orphans() {
        let db = "parts.db";
        let mut m = Manifest::new(db);
        let kept = "backups/parts.db/20260101_000000_lab_1_parts.db.zst";
        let v: super::super::manifest::Version = serde_json::from_value(serde_json::json!({
            "key": kept, "created_at": "2026-01-01T00:00:00Z", "site": "lab", "seq": 1,
            "sha256": "a".repeat(64), "raw_bytes": 1, "stored_bytes": 1, "codec": "zstd",
            "reason": "manual"
        }))
        .unwrap();
        m.versions.push(v);
        let objects: Vec<(String, ObjectInfo)> = [
            kept,
            "backups/parts.db/MANIFEST.json",
            "backups/parts.db/20260101_000001_lab_2_parts.db.zst",
            "backups/parts.db/20241208_143022_parts.db",
            "backups/parts.db/20241208_143022_parts.db.metadata.json",
            "backups/assembled_casm.db/20260101_000001_lab_2_assembled_casm.db.zst",
        ]
        .iter()
        .map(|k| (k.to_string(), info(None)))
        .collect();
        let found: Vec<&str> = unreferenced(&m, db, &objects).iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(found, ["backups/parts.db/20260101_000001_lab_2_parts.db.zst"]);
    }

    #[test]
    fn only_objects_older_than_the_grace_period_may_go() {
        let now: jiff::Timestamp = "2026-02-10T00:00:00Z".parse().unwrap();
        let week = Duration::from_secs(7 * 86_400);
        assert!(older_than(&info(Some("2026-02-01T00:00:00Z")), now, week));
        assert!(!older_than(&info(Some("2026-02-05T00:00:00Z")), now, week));
        assert!(!older_than(&info(None), now, week), "unknown age: kept");
        assert!(!older_than(&info(Some("yesterday")), now, week), "unreadable age: kept");
    }
}

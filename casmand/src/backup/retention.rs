//! Retention: keep the newest `keep_versions` versions of each database.
//! Never deleted: the newest version, a pre-restore safety copy younger than a
//! day, and any version this site descends from (its sync base). Entries leave
//! the manifest first (compare-and-swap), objects are deleted after.

use super::{
    layout,
    manifest::{Manifest, Reason, Version},
    service::BackupService,
};
use crate::{db::sync_state, error::Result};

/// Safety copies are kept at least this long.
const SAFETY_COPY_DAYS: i64 = 1;

/// The versions retention would delete from `m`, keeping `keep` and the
/// protected ones (`protected` holds SHA-256s of sync bases).
pub fn doomed<'m>(
    m: &'m Manifest,
    keep: usize,
    protected: &[String],
    now: jiff::Timestamp,
) -> Vec<&'m Version> {
    let day_ago = now.checked_sub(jiff::SignedDuration::from_hours(24 * SAFETY_COPY_DAYS)).unwrap_or(now);
    let cutoff = crate::timestamp::format(day_ago);
    let doomed: Vec<&Version> = m
        .newest_first()
        .into_iter()
        .skip(keep.max(1))
        .filter(|v| !(v.reason == Reason::PreRestore && v.created_at >= cutoff))
        .filter(|v| !protected.contains(&v.sha256))
        .collect();
    // An object a kept version points at (a restore record shares its
    // object with the restored version; a delta needs every object of its
    // chain) stays, with every entry naming it.
    let mut kept: Vec<&str> = Vec::new();
    for v in m.versions.iter().filter(|v| !doomed.contains(v)) {
        kept.push(&v.key);
        if let Ok(chain) = m.chain(v) {
            kept.extend(chain.iter().map(|c| c.key.as_str()));
        }
    }
    doomed.into_iter().filter(|v| !kept.contains(&v.key.as_str())).collect()
}

/// Applies retention to `db`'s versions; returns the keys deleted.
pub async fn apply(svc: &BackupService, db: &str) -> Result<Vec<String>> {
    let mut protected: Vec<String> = Vec::new();
    if let Some(base) = sync_state::base(&svc.dbs.state, db).await? {
        protected.push(base.sha256);
    }
    let (m, _) = svc.manifest(db).await?;
    protected.extend(m.bases.values().cloned());
    let now = jiff::Timestamp::now();
    let keys: Vec<String> =
        doomed(&m, svc.keep_versions, &protected, now).iter().map(|v| v.key.clone()).collect();
    if keys.is_empty() {
        return Ok(keys);
    }
    svc.update_manifest(db, |m| {
        // Re-decide on the fresh manifest: only what is still doomed goes.
        let still: Vec<String> =
            doomed(m, svc.keep_versions, &protected, now).iter().map(|v| v.key.clone()).collect();
        m.versions.retain(|v| !(keys.contains(&v.key) && still.contains(&v.key)));
        m.retired.extend(still.iter().filter(|k| keys.contains(k)).cloned());
        let excess = m.retired.len().saturating_sub(super::manifest::RETIRED_MAX);
        m.retired.drain(..excess);
        Ok(())
    })
    .await?;
    for key in &keys {
        if let Err(e) = svc.store.delete(key).await {
            tracing::warn!(key = %key, error = %e, "could not delete an expired version (it is no longer listed)");
        }
        if layout::is_legacy_version(key, db) {
            let _ = svc.store.delete(&layout::legacy_metadata_key(key)).await;
        } else if super::rebuild::parse_version_key(key, db).is_some() {
            let _ = svc.store.delete(&super::rebuild::sidecar_key(key)).await;
            for r in m.versions.iter().filter(|v| v.key == *key && v.reason == Reason::Restore) {
                let _ = svc.store.delete(&super::rebuild::restore_sidecar_key(r)).await;
            }
        }
    }
    tracing::info!(database = db, deleted = keys.len(), "retention applied");
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::Manifest;

    fn v(key: &str, at: &str, reason: Reason) -> Version {
        Version {
            key: key.into(),
            created_at: at.into(),
            site: "lab".into(),
            seq: 1,
            sha256: format!("sha-{key}"),
            content_sha256: None,
            raw_bytes: 1,
            stored_bytes: 1,
            codec: "zstd".into(),
            parent: None,
            merged_from: None,
            reason,
            record_counts: Default::default(),
            casman_version: String::new(),
            schema_version: 1,
            branch: false,
            kind: Default::default(),
            delta_base: None,
            chain_depth: 0,
        }
    }

    #[test]
    fn keeps_newest_bases_and_fresh_safety_copies() {
        let now: jiff::Timestamp = "2026-01-10T12:00:00Z".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut m = Manifest::new("parts.db");
        m.versions.push(v("old-base", "2026-01-01T00:00:00Z", Reason::Manual));
        m.versions.push(v("old", "2026-01-02T00:00:00Z", Reason::Manual));
        m.versions.push(v("old-safety", "2026-01-03T00:00:00Z", Reason::PreRestore));
        m.versions.push(v("fresh-safety", "2026-01-10T06:00:00Z", Reason::PreRestore));
        m.versions.push(v("new", "2026-01-10T11:00:00Z", Reason::Scheduled));
        let keys = |d: Vec<&Version>| d.iter().map(|v| v.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(doomed(&m, 1, &["sha-old-base".into()], now)), ["old-safety", "old"]);
        assert_eq!(keys(doomed(&m, 10, &[], now)), Vec::<String>::new());
        // keep 0 still keeps the newest.
        assert!(!keys(doomed(&m, 0, &[], now)).contains(&"new".to_owned()));
        // A kept restore record keeps the object it points at.
        let record = m.versions[1].restored(Some("sha-new"), "lab", 2, "2026-01-10T11:30:00Z");
        m.versions.push(record);
        assert_eq!(keys(doomed(&m, 2, &["sha-old-base".into()], now)), ["old-safety"]);
    }

    #[test]
    fn the_chain_of_a_kept_delta_is_kept() {
        let now: jiff::Timestamp = "2026-01-10T12:00:00Z".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut m = Manifest::new("parts.db");
        m.versions.push(v("older", "2026-01-01T00:00:00Z", Reason::Manual));
        m.versions.push(v("full", "2026-01-02T00:00:00Z", Reason::Manual));
        for (i, base) in [(3, "full"), (4, "d3"), (5, "d4")] {
            let mut d = v(&format!("d{i}"), &format!("2026-01-0{i}T00:00:00Z"), Reason::Scheduled);
            (d.kind, d.delta_base) = (crate::backup::manifest::Kind::Delta, Some(base.into()));
            m.versions.push(d);
        }
        let keys = |d: Vec<&Version>| d.iter().map(|v| v.key.clone()).collect::<Vec<_>>();
        // Keeping only the newest delta keeps everything it is built on.
        assert_eq!(keys(doomed(&m, 1, &[], now)), ["older"]);
    }
}

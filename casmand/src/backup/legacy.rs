//! Versions written by the Python CAsMan (`backups/<db>/<stamp>_<db>` plus
//! `<key>.metadata.json`): found once with a LIST when a database has no
//! manifest yet, and entered into the new manifest so they are listed and
//! restorable like casman's own.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    layout,
    manifest::{Manifest, Reason, Version},
    store::Store,
};
use crate::error::{Error, Result};

/// Site name given to CAsMan's versions.
pub const LEGACY_SITE: &str = "casman-python";

/// CAsMan's metadata file (spec section 7.2).
#[derive(Debug, Deserialize)]
struct Metadata {
    timestamp: Option<String>,
    checksum: Option<String>,
    size_bytes: Option<u64>,
    record_count: Option<i64>,
    operation: Option<String>,
}

/// A manifest for `db` holding the CAsMan versions found in the bucket (empty
/// if there are none). Not stored here: the caller's compare-and-swap does that.
pub async fn import(store: &Store, db: &str) -> Result<Manifest> {
    let prefix = format!("{}/{db}/", layout::ROOT);
    let objects = match store.list(&prefix).await {
        Ok(o) => o,
        Err(super::store::StoreError::Disabled) => return Ok(Manifest::new(db)),
        Err(e) => return Err(Error::from(e)),
    };
    import_from(store, db, &objects).await
}

/// Like [`import`], from `objects` already listed (`db`'s prefix).
pub async fn import_from(
    store: &Store,
    db: &str,
    objects: &[(String, super::store::ObjectInfo)],
) -> Result<Manifest> {
    let mut m = Manifest::new(db);
    for (key, info) in objects.iter().filter(|(k, _)| layout::is_legacy_version(k, db)) {
        let meta: Option<Metadata> = match store.get_bytes(&layout::legacy_metadata_key(key), None).await {
            Ok(Some((bytes, _))) => serde_json::from_slice(&bytes).ok(),
            _ => None,
        };
        let created_at = meta
            .as_ref()
            .and_then(|m| m.timestamp.as_deref())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(crate::timestamp::format)
            .or_else(|| layout::legacy_time(key, db))
            .unwrap_or_default();
        let sha256 = meta
            .as_ref()
            .and_then(|m| m.checksum.clone())
            .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| "unknown".into());
        let mut record_counts = BTreeMap::new();
        if let Some(n) = meta.as_ref().and_then(|m| m.record_count) {
            record_counts.insert(if db == "parts.db" { "parts" } else { "assembly" }.to_owned(), n);
        }
        let raw = meta.as_ref().and_then(|m| m.size_bytes).unwrap_or(info.size);
        if let Some(op) = meta.as_ref().and_then(|m| m.operation.as_deref()) {
            tracing::debug!(key = %key, operation = op, "CAsMan version found");
        }
        m.versions.push(Version {
            key: key.clone(),
            created_at,
            site: LEGACY_SITE.into(),
            seq: 0,
            sha256,
            content_sha256: None,
            raw_bytes: raw,
            stored_bytes: info.size,
            codec: "none".into(),
            parent: None,
            merged_from: None,
            reason: Reason::Legacy,
            record_counts,
            casman_version: String::new(),
            schema_version: 0,
            branch: false,
            kind: Default::default(),
            delta_base: None,
            chain_depth: 0,
        });
    }
    if !m.versions.is_empty() {
        tracing::info!(
            database = db,
            versions = m.versions.len(),
            "found versions written by the Python CAsMan"
        );
    }
    Ok(m)
}

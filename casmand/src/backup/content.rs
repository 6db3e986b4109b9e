//! The content of a version as a raw file: its object downloaded and
//! decompressed, or, for a delta, its chain (full snapshot and deltas)
//! downloaded in parallel and applied in order. The SHA-256 returned is that
//! of the rebuilt file; the caller compares it with the version's.

use futures_util::future::try_join_all;

use super::{
    codec, delta,
    manifest::{Kind, Version},
    service::{BackupService, Progress, ProgressFn},
};
use crate::error::{Error, Result};

/// A version's content in a temporary file.
#[derive(Debug)]
pub struct Content {
    /// The raw file (deleted when dropped).
    pub file: tempfile::TempPath,
    /// Its hex SHA-256.
    pub sha256: String,
}

impl BackupService {
    /// Downloads and rebuilds the content of `version` of `db`. A stored
    /// object that does not decode, or a chain whose links disagree with the
    /// manifest, is refused naming the object, and so is a chain object
    /// whose content does not hash to its own SHA-256 in the manifest (the
    /// full base at once; a delta once the rebuilt version fails its check).
    /// The caller compares the returned SHA-256 with the version's.
    pub async fn fetch_content(
        &self,
        db: &str,
        version: &Version,
        progress: ProgressFn<'_>,
    ) -> Result<Content> {
        let refuse = |check: String| {
            Error::refused(format!("backup {} failed {check}; nothing was changed", version.key))
        };
        let chain: Vec<Version> = match version.kind {
            Kind::Full => vec![version.clone()],
            Kind::Delta => {
                let (m, _) = self.manifest(db).await?;
                m.chain(version)
                    .map_err(|e| refuse(format!("the chain check ({e})")))?
                    .into_iter()
                    .cloned()
                    .collect()
            }
        };
        let total: u64 = chain.iter().map(|v| v.stored_bytes).sum();
        let done = std::sync::atomic::AtomicU64::new(0);
        let name = db.to_owned();
        let report = |n: u64| {
            let so_far = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            progress(Progress { database: name.clone(), phase: "download", done: so_far, total });
        };
        let (full, deltas) = (&chain[0], &chain[1..]);
        let download = |v: &Version| {
            let key = v.key.clone();
            let last = std::sync::atomic::AtomicU64::new(0);
            let report = &report;
            let step =
                move |at: u64| report(at.saturating_sub(last.swap(at, std::sync::atomic::Ordering::Relaxed)));
            (key, step)
        };
        // The deltas download into temporary files while the full snapshot
        // streams into the decompressor: all of the chain at once.
        let delta_files = try_join_all(deltas.iter().map(|v| async {
            let path = self.tmp_path(db, "download")?;
            let (key, step) = download(v);
            self.store.get_file(&key, &path, &step).await.map_err(Error::from)?;
            Ok::<_, Error>(path)
        }));
        if full.codec != "zstd" {
            // CAsMan's uncompressed versions: the object is the file.
            let path = self.tmp_path(db, "download")?;
            let (key, step) = download(full);
            self.store.get_file(&key, &path, &step).await.map_err(Error::from)?;
            let hashed = path.to_path_buf();
            let (sha, _) = tokio::task::spawn_blocking(move || codec::sha256_file(&hashed))
                .await
                .map_err(|e| Error::internal("hashing", e))?
                .map_err(|e| Error::internal("hashing", e))?;
            return Ok(Content { file: path, sha256: sha });
        }
        let raw = self.tmp_path(db, "restore")?;
        let unpacked = async {
            let sink =
                codec::Unpacker::create(&raw).map_err(|e| Error::internal("creating a restore file", e))?;
            let (key, step) = download(full);
            let written = self.store.get_into(&key, &step, sink).await.map_err(Error::from)?;
            progress(Progress { database: db.into(), phase: "verify", done: 0, total: version.raw_bytes });
            written.and_then(codec::Unpacker::finish).map_err(|e| {
                if codec::WriteError::is(&e) {
                    // A full disk, say: nothing is known of the object.
                    return Error::internal("writing the downloaded version", e);
                }
                tracing::warn!(key = %full.key, error = %e, "stored object does not decode");
                refuse(format!("decompression ({} is not a valid zstd stream: {e})", full.key))
            })
        };
        let ((full_sha, _), delta_files) = tokio::try_join!(unpacked, delta_files)?;
        if deltas.is_empty() {
            return Ok(Content { file: raw, sha256: full_sha });
        }
        // The chain's full snapshot has its own SHA-256 in the manifest: a
        // base replaced or damaged in the store is named as such, not left
        // to surface as the version's own checksum failing.
        if let Some(damage) = Damage::check(full, &full_sha, "full base") {
            tracing::warn!(key = %version.key, base = %full.key, error = %damage, "the full base of a delta version is damaged");
            return Err(refuse(format!("the SHA-256 check: {damage}")));
        }
        let (dst, links) = (raw.to_path_buf(), chain.clone());
        let sources: Vec<std::path::PathBuf> = delta_files.iter().map(|p| p.to_path_buf()).collect();
        let rebuilt = tokio::task::spawn_blocking(move || apply_deltas(&links, &sources, &dst))
            .await
            .map_err(|e| Error::internal("rebuilding a version", e))?;
        let sha = rebuilt.map_err(|(key, e)| {
            tracing::warn!(key = %key, error = %e, "stored object does not decode");
            refuse(format!("decompression ({key} is not a valid zstd stream or delta: {e})"))
        })?;
        if Damage::check(version, &sha, "rebuilt version").is_some() {
            // Only on failure: rebuild again, hashing after every link, to
            // name the first object of the chain that is not what it was.
            if let Some(damage) = self.damaged_link(db, &chain, &delta_files).await? {
                tracing::warn!(key = %version.key, object = %damage.key, error = %damage, "an object of a delta chain is damaged");
                return Err(refuse(format!("the SHA-256 check: {damage}")));
            }
        }
        Ok(Content { file: raw, sha256: sha })
    }

    /// The first object of `chain` (full snapshot, then the deltas already
    /// downloaded into `delta_files`) whose result does not hash to its own
    /// SHA-256 in the manifest. The full snapshot is downloaded again (this
    /// runs only once the rebuilt version failed its check).
    async fn damaged_link(
        &self,
        db: &str,
        chain: &[Version],
        delta_files: &[tempfile::TempPath],
    ) -> Result<Option<Damage>> {
        let Some(full) = chain.first() else { return Ok(None) };
        let raw = self.tmp_path(db, "diagnose")?;
        let sink =
            codec::Unpacker::create(&raw).map_err(|e| Error::internal("creating a restore file", e))?;
        let written = self.store.get_into(&full.key, &|_| {}, sink).await.map_err(Error::from)?;
        let full_sha = match written.and_then(codec::Unpacker::finish) {
            Ok((sha, _)) => sha,
            Err(e) if codec::WriteError::is(&e) => {
                return Err(Error::internal("writing the downloaded version", e));
            }
            Err(e) => {
                return Ok(Some(Damage {
                    key: full.key.clone(),
                    role: "full base".into(),
                    expected: full.content_sha().to_owned(),
                    got: format!("no valid zstd stream: {e}"),
                }));
            }
        };
        if let Some(damage) = Damage::check(full, &full_sha, "full base") {
            return Ok(Some(damage));
        }
        let (dst, links) = (raw.to_path_buf(), chain.to_vec());
        let sources: Vec<std::path::PathBuf> = delta_files.iter().map(|p| p.to_path_buf()).collect();
        let found = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Damage>> {
            let n = links.len() - 1;
            for (i, (link, src)) in links.iter().skip(1).zip(&sources).enumerate() {
                delta::apply(src, &dst)?;
                let (sha, _) = codec::sha256_file(&dst)?;
                if let Some(damage) = Damage::check(link, &sha, &format!("delta (link {} of {n})", i + 1)) {
                    return Ok(Some(damage));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|e| Error::internal("checking a version's chain", e))?;
        found.map_err(|e| Error::internal("checking a version's chain", e))
    }
}

/// An object of a chain whose content does not hash to its own SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Damage {
    /// The object's key.
    key: String,
    /// What it is to the version: `full base`, `delta (link 2 of 3)`.
    role: String,
    /// Its SHA-256 in the manifest.
    expected: String,
    /// What its content hashed to (or why there is none).
    got: String,
}

impl Damage {
    /// `Some` when `sha` is not `link`'s own SHA-256 (known ones only).
    fn check(link: &Version, sha: &str, role: &str) -> Option<Damage> {
        let expected = link.content_sha();
        (expected != "unknown" && sha != expected).then(|| Damage {
            key: link.key.clone(),
            role: role.to_owned(),
            expected: expected.to_owned(),
            got: sha.to_owned(),
        })
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its {} {} is damaged (expected sha256 {}, got {})",
            self.role, self.key, self.expected, self.got
        )
    }
}

/// Applies to `dst` (the chain's full snapshot, decompressed) the deltas
/// `sources` of `chain[1..]` in order, checking each header against the
/// manifest's chain, and hashes the result. The error names the object.
fn apply_deltas(
    chain: &[Version],
    sources: &[std::path::PathBuf],
    dst: &std::path::Path,
) -> std::result::Result<String, (String, std::io::Error)> {
    for (i, (link, src)) in chain.iter().skip(1).zip(sources).enumerate() {
        let header = delta::apply(src, dst).map_err(|e| (link.key.clone(), e))?;
        let base = &chain[i];
        let mismatch =
            |what: String| (link.key.clone(), std::io::Error::new(std::io::ErrorKind::InvalidData, what));
        if header.base_key != base.key || header.base_sha256 != base.content_sha() {
            return Err(mismatch(format!(
                "its header names base {} ({}), the manifest {} ({})",
                header.base_key,
                header.base_sha256,
                base.key,
                base.content_sha()
            )));
        }
        if header.result_sha256 != link.content_sha() {
            return Err(mismatch(format!(
                "its header names result {}, the manifest {}",
                header.result_sha256,
                link.content_sha()
            )));
        }
    }
    codec::sha256_file(dst).map(|(sha, _)| sha).map_err(|e| (chain[0].key.clone(), e))
}

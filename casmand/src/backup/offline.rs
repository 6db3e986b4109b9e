//! Backing up while the store is unreachable: the snapshot goes into the
//! offline spool (`backup::spool`) as a delta against the previous state
//! (the last stored or spooled one) or a full snapshot where the chain rules
//! ask for one, and the backup still fails, so the scheduler keeps retrying
//! with backoff. The first operation that reaches the store again stores the
//! spooled versions in order, each recorded with its original time, before
//! anything else is stored.
//!
//! A crash at any point leaves each spooled version either in the spool or
//! recorded in the manifest: an entry is removed only once its version is
//! recorded, and an entry whose content this site already recorded (the
//! crash came between the two) is removed without being stored again.

use std::sync::Arc;

use super::{
    chain::{Bases, PageRecord},
    codec,
    manifest::{Kind, Manifest, Reason, Version},
    service::{BackupService, DeltaBase},
    spool::{self, Entry},
    store::{Precondition, StoreError},
};
use crate::{
    db::{Db, sync_state},
    error::{Error, Result},
};

/// How many taken keys are skipped before giving up on one version.
const KEY_RETRIES: u64 = 16;

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(what, e))?
        .map_err(|e| Error::internal(what, e))
}

impl BackupService {
    /// Versions of `db` waiting in the offline spool.
    pub fn spooled(&self, db: &str) -> usize {
        self.spool.count(db)
    }

    /// Puts a snapshot of `source` into the spool (unless its content is
    /// the last stored or spooled one) and returns the error to report:
    /// the store is unreachable (`why`), and where the state waits.
    pub(super) async fn spool_backup(&self, source: &Db, reason: Reason, why: String) -> Error {
        match self.spool_snapshot(source, reason).await {
            Ok(Some(n)) => Error::Unavailable(format!(
                "{why}; this state of {} waits in the local spool ({n} version(s)) and is stored when the \
                 store answers",
                source.name
            )),
            Ok(None) => Error::Unavailable(why),
            Err(e) => {
                tracing::error!(database = source.name, error = %e, "could not spool the backup");
                Error::Unavailable(format!("{why}; spooling it locally failed too: {e}"))
            }
        }
    }

    async fn spool_snapshot(&self, source: &Db, reason: Reason) -> Result<Option<usize>> {
        let db = source.name;
        let spool = self.spool.clone();
        let entries = blocking("reading the offline spool", move || spool.entries(db)).await?;
        // Retries with nothing new since the newest entry: no snapshot.
        if entries.last().is_some_and(|l| self.known_content(source).as_deref() == Some(l.sha256.as_str())) {
            return Ok(None);
        }
        let snap = self.snapshot(source).await?;
        let base = sync_state::base(&self.dbs.state, db).await?;
        let stored = self.pages.lock().unwrap_or_else(|p| p.into_inner()).get(db).map(|b| b.newest().clone());
        // What the new entry builds on: the newest entry, else the last
        // stored version (if this process stored it: its pages are known).
        let record = match entries.last() {
            Some(last) if last.sha256 == snap.sha256 => return Ok(None),
            Some(last) => self.spool.pages(db, &last.sha256).map(|(page_size, hashes)| PageRecord {
                key: spool::SPOOLED_BASE.to_owned(),
                content_sha: last.sha256.clone(),
                page_size,
                hashes: Arc::new(hashes),
                depth: last.depth,
                delta_bytes: last.chain_bytes,
                full_bytes: last.full_bytes,
            }),
            None => {
                let base_content = base.as_ref().and_then(|b| {
                    let (m, _) = self.cached_manifest(db)?;
                    m.versions.iter().find(|v| v.sha256 == b.sha256).map(|v| v.content_sha().to_owned())
                });
                let same = |r: &PageRecord| {
                    base.as_ref().is_some_and(|b| b.key == r.key) && r.content_sha == snap.sha256
                };
                if base_content.as_deref() == Some(snap.sha256.as_str()) || stored.as_ref().is_some_and(same)
                {
                    return Ok(None);
                }
                stored.filter(|r| base.as_ref().is_some_and(|b| b.key == r.key))
            }
        };
        let record = record.filter(|r| {
            r.depth < self.delta_chain_max
                && snap.pages.as_ref().is_some_and(|(size, _)| *size == r.page_size)
        });
        // Each spooled delta is against the state before it (the chain's
        // skips to older bases apply to versions stored online).
        let record: Option<DeltaBase> = record.map(|r| {
            let (depth, before) = (r.depth + 1, r.delta_bytes);
            (r, depth, before)
        });
        let delta_file = self.tmp_path(db, "spool-delta")?;
        let upload = match &record {
            Some(r) => self.delta_upload(&snap, r, &delta_file).await?,
            None => None,
        };
        let parent = entries.last().map(|l| l.sha256.clone()).or(base.map(|b| b.sha256));
        let mut entry = Entry {
            seq: 0,
            first_seq: 0,
            object: String::new(),
            kind: Kind::Full,
            created_at: crate::timestamp::format(jiff::Timestamp::now()),
            reason,
            sha256: snap.sha256.clone(),
            parent,
            base_sha256: None,
            base_key: None,
            raw_bytes: snap.raw_bytes,
            stored_bytes: 0,
            record_counts: snap.record_counts.clone(),
            schema_version: snap.schema_version,
            depth: 0,
            chain_bytes: 0,
            full_bytes: 0,
        };
        let full_file = self.tmp_path(db, "spool-full")?;
        let object = match upload.and_then(|u| Some((u.path, u.stored_bytes, u.delta?))) {
            Some((path, stored, (base, depth, chain_bytes))) => {
                entry.kind = Kind::Delta;
                entry.base_sha256 = Some(base.content_sha.clone());
                entry.base_key = (base.key != spool::SPOOLED_BASE).then(|| base.key.clone());
                (entry.stored_bytes, entry.depth, entry.chain_bytes) = (stored, depth, chain_bytes);
                entry.full_bytes = base.full_bytes;
                path.to_path_buf()
            }
            None => {
                let (raw, dst) = (snap.raw.to_path_buf(), full_file.to_path_buf());
                let stored =
                    blocking("compressing a spooled snapshot", move || codec::compress(&raw, &dst)).await?;
                (entry.stored_bytes, entry.full_bytes) = (stored, stored);
                full_file.to_path_buf()
            }
        };
        let (spool, tmp, pages) = (self.spool.clone(), self.tmp_dir.clone(), snap.pages.clone());
        let (kind, stored) = (entry.kind, entry.stored_bytes);
        let n = blocking("writing the offline spool", move || {
            spool.push(db, entry, &object, pages.as_ref(), &tmp)
        })
        .await?;
        tracing::warn!(
            database = db,
            spooled = n,
            kind = if kind == Kind::Delta { "delta" } else { "full" },
            stored_bytes = stored,
            "the store is unreachable; the backup waits in the offline spool"
        );
        Ok(Some(n))
    }

    /// Stores the versions spooled for `db`, oldest first; true when there
    /// were any. Stops at the first failure (the rest stay spooled).
    pub(super) async fn drain_spool(&self, db: &str) -> Result<bool> {
        let spool = self.spool.clone();
        let name = db.to_owned();
        let entries = blocking("reading the offline spool", move || spool.entries(&name)).await?;
        if entries.is_empty() {
            return Ok(false);
        }
        let (mut manifest, _) = self.manifest(db).await?;
        let total = entries.len();
        // The version the next entry descends from and builds on.
        let mut prev: Option<Version> = None;
        for e in entries {
            let recorded = manifest
                .versions
                .iter()
                .find(|v| v.site == self.site && v.sha256 == e.sha256 && v.created_at == e.created_at);
            // The content of the version it descends from (spooled after a
            // restart, before the manifest was read): nothing new.
            let parent = prev.as_ref().map(|p| p.sha256.clone()).or(e.parent.clone());
            let unchanged = parent
                .and_then(|p| manifest.versions.iter().find(|v| v.sha256 == p))
                .filter(|v| v.content_sha() == e.sha256);
            let version = match recorded.or(unchanged).cloned() {
                // Recorded before a crash removed the entry, or unchanged.
                Some(v) => v,
                None => match self.store_entry(db, &e, &manifest, prev.as_ref()).await? {
                    Some((v, m)) => {
                        manifest = m;
                        v
                    }
                    None => {
                        self.remove_entry(db, &e).await?;
                        prev = None;
                        continue;
                    }
                },
            };
            sync_state::set_base(&self.dbs.state, db, &version.key, &version.sha256, "backup").await?;
            sync_state::backup_stored(&self.dbs.state, db, &version.key, &version.created_at, 0).await?;
            self.remove_entry(db, &e).await?;
            prev = Some(version);
        }
        // The next version is a delta on the last one stored here.
        if let Some(last) = prev {
            self.remember_spooled_pages(db, &manifest, &last);
        }
        let spool = self.spool.clone();
        let name = db.to_owned();
        blocking("clearing the offline spool", move || spool.clear_pages(&name)).await?;
        tracing::info!(database = db, versions = total, "offline spool stored");
        Ok(true)
    }

    async fn remove_entry(&self, db: &str, e: &Entry) -> Result<()> {
        let (spool, name, e) = (self.spool.clone(), db.to_owned(), e.clone());
        blocking("removing a spool entry", move || spool.remove(&name, &e)).await
    }

    /// Uploads and records entry `e`; `prev` is the version recorded for the
    /// entry before. `None` when a delta's base is not in the store any more
    /// (it cannot be stored; the live database still holds its writes, and
    /// the next backup stores them).
    async fn store_entry(
        &self,
        db: &str,
        e: &Entry,
        manifest: &Manifest,
        prev: Option<&Version>,
    ) -> Result<Option<(Version, Manifest)>> {
        let object = self.spool.object_path(db, e);
        let rekeyed = self.tmp_path(db, "spool-upload")?;
        let base = match (e.kind, e.base_sha256.as_deref()) {
            (Kind::Full, _) => None,
            (Kind::Delta, Some(want)) => {
                let by_key = e.base_key.as_deref().and_then(|k| manifest.find(k));
                let found = prev
                    .filter(|p| p.content_sha() == want)
                    .or(by_key.filter(|v| v.content_sha() == want))
                    .or_else(|| manifest.find_content(want))
                    .cloned();
                if found.is_none() {
                    tracing::warn!(
                        database = db,
                        created_at = %e.created_at,
                        base = want,
                        "a spooled version builds on content no longer in the store; dropped (its writes \
                         are in the live database and go into the next backup)"
                    );
                    return Ok(None);
                }
                found
            }
            (Kind::Delta, None) => return Err(Error::internal("a spooled delta", "names no base")),
        };
        let upload = match &base {
            Some(b) if e.base_key.as_deref() != Some(b.key.as_str()) => {
                let (src, dst, key) = (object.clone(), rekeyed.to_path_buf(), b.key.clone());
                blocking("re-keying a spooled delta", move || spool::rekey(&src, &key, &dst)).await?;
                rekeyed.to_path_buf()
            }
            _ => object,
        };
        let stored_bytes =
            std::fs::metadata(&upload).map_err(|err| Error::internal("a spooled object", err))?.len();
        let at: jiff::Timestamp =
            e.created_at.parse().map_err(|err| Error::internal("a spooled version's time", err))?;
        let first = manifest.next_seq(&self.site);
        let mut seq = first;
        let mut version = Version {
            key: String::new(),
            created_at: e.created_at.clone(),
            site: self.site.clone(),
            seq: first,
            sha256: e.sha256.clone(),
            content_sha256: None,
            raw_bytes: e.raw_bytes,
            stored_bytes,
            codec: "zstd".into(),
            parent: prev.map(|p| p.sha256.clone()).or(e.parent.clone()),
            merged_from: None,
            reason: e.reason,
            record_counts: e.record_counts.clone(),
            casman_version: env!("CARGO_PKG_VERSION").into(),
            schema_version: e.schema_version,
            branch: false,
            kind: e.kind,
            delta_base: base.as_ref().map(|b| b.key.clone()),
            chain_depth: base.as_ref().map_or(0, |b| b.chain_depth + 1),
        };
        // The entry goes up with the object (see Store::put_version_file).
        let described = loop {
            let key = match e.kind {
                Kind::Delta => super::layout::delta_key(db, &super::layout::stamp(at), &self.site, seq),
                Kind::Full => super::layout::version_key(db, &super::layout::stamp(at), &self.site, seq),
            };
            (version.key, version.seq) = (key.clone(), seq);
            let entry = super::rebuild::sidecar_bytes(db, &version);
            match self.store.put_version_file(&key, &upload, Some(Precondition::Absent), &entry).await {
                Ok((_, described)) => break described,
                // Taken (an upload a crash left unrecorded, or a race): never
                // overwritten; the next sequence number.
                Err(StoreError::PreconditionFailed(_)) if seq < first + KEY_RETRIES => seq += 1,
                Err(err) => return Err(Error::from(err)),
            }
        };
        let key = version.key.clone();
        let m = self.record_version(db, &mut version, described).await?;
        self.quota().count_backup();
        tracing::info!(
            database = db,
            key = %key,
            created_at = %version.created_at,
            stored_bytes,
            chain_depth = version.chain_depth,
            branch = version.branch,
            "spooled backup stored"
        );
        Ok(Some((version, m)))
    }

    /// Takes the spool's page hashes of `last` (just stored) as the page
    /// record the next delta is computed against.
    fn remember_spooled_pages(&self, db: &str, m: &Manifest, last: &Version) {
        let mut known = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        known.remove(db);
        let (Some((page_size, hashes)), Ok(chain)) = (self.spool.pages(db, &last.sha256), m.chain(last))
        else {
            return;
        };
        let Some(full) = chain.first() else { return };
        // The next online version is a delta on it (the chain's skips start
        // over from here).
        known.insert(
            db.to_owned(),
            Bases::full(PageRecord {
                key: last.key.clone(),
                content_sha: last.content_sha().to_owned(),
                page_size,
                hashes: Arc::new(hashes),
                depth: last.chain_depth,
                delta_bytes: chain.iter().skip(1).map(|v| v.stored_bytes).sum(),
                full_bytes: full.stored_bytes,
            }),
        );
    }
}

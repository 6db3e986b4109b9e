//! Making backups: snapshot, hash, skip if unchanged, compress, upload as an
//! immutable object (`If-None-Match: *`), record in the manifest by
//! compare-and-swap, move the sync base, apply retention.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use tokio::sync::Mutex;

use super::{
    chain::{Bases, PageRecord},
    layout,
    manifest::{Kind, Manifest, Reason, Version},
    retention,
    snapshot::{self, Snapshot},
    spool::Spool,
    store::{Precondition, Store, StoreError},
};
use crate::{
    db::{Databases, Db, sync_state, watch::ChangeToken},
    error::{Error, Result},
    timestamp,
};

/// How many times a lost race (key collision, manifest changed) is retried.
const RACE_RETRIES: u32 = 16;

/// What a long operation reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Database concerned.
    pub database: String,
    /// Step: `snapshot`, `compress`, `upload`, `download`, `verify`, `swap`, ...
    pub phase: &'static str,
    /// Bytes done in this step.
    pub done: u64,
    /// Bytes in this step (0 when unknown).
    pub total: u64,
}

/// Receives progress.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// Result of backing up one database.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The version now describing the database (new, or the existing head).
    pub version: Version,
    /// False when the database was unchanged and nothing was uploaded.
    pub uploaded: bool,
}

/// Backups of the daemon's databases to its store.
#[derive(Debug, Clone)]
pub struct BackupService {
    pub(super) store: Store,
    pub(super) dbs: Databases,
    pub(super) site: String,
    pub(super) keep_versions: usize,
    pub(super) tmp_dir: PathBuf,
    pub(super) legacy_tz: jiff::tz::TimeZone,
    locks: Arc<HashMap<&'static str, Mutex<()>>>,
    /// Last manifest read of each database and its entity tag (`None`: no
    /// manifest in the store, the CAsMan import stands in): re-reads are
    /// conditional GETs answered "not modified".
    manifests: Arc<std::sync::Mutex<HashMap<String, CachedManifest>>>,
    /// The content SHA-256 of each database at its last snapshot, with the
    /// file's change token taken just before it: while the token is the
    /// same, the content is known without reading the file.
    identities: Arc<std::sync::Mutex<HashMap<&'static str, (ChangeToken, String)>>>,
    /// The conflicts standing in each database, with the file's change
    /// token when they were read (`super::exchange`): read again only after
    /// the file changed.
    pub(super) conflict_cache: Arc<std::sync::Mutex<HashMap<&'static str, CachedConflicts>>>,
    /// Whether this site is known to be in `changes/sites.json`.
    pub(super) site_registered: Arc<std::sync::atomic::AtomicBool>,
    /// Per database, the page hashes of the stored versions the next
    /// deltas are computed against (see `backup::chain`). Kept in memory
    /// only: after a restart the next version is a full snapshot.
    pub(super) pages: Arc<std::sync::Mutex<HashMap<String, Bases>>>,
    /// Longest delta chain (`sync.delta_chain_max`; 0: no deltas).
    pub(super) delta_chain_max: u32,
    /// Largest share of the full snapshot a chain's deltas may add up to.
    delta_max_share: f64,
    /// Whether `sync` exchanges changes (`sync.exchange`, the default) or
    /// moves whole files as versions before issue 30 did.
    pub(super) exchange_changes: bool,
    /// Versions taken while the store was unreachable (`backup::offline`).
    pub(super) spool: Spool,
    /// Where quota, verification and manifest troubles are reported
    /// (`crate::notify`; off unless `[notify]` sets something).
    pub(super) notices: crate::notify::Notices,
}

/// Where a delta goes: the record it is computed against, the new
/// version's depth, and the stored bytes of the chain's deltas before it.
pub(super) type DeltaBase = (PageRecord, u32, u64);

/// An object ready to upload for a snapshot: the full file or a delta.
pub(super) struct Upload<'a> {
    pub(super) path: &'a std::path::Path,
    pub(super) stored_bytes: u64,
    /// `Some((base, depth, delta bytes of the chain))` for a delta.
    pub(super) delta: Option<(&'a PageRecord, u32, u64)>,
}

/// A manifest as last read and its entity tag.
type CachedManifest = (Manifest, Option<String>);

/// The version already holding content `sha`: the newest version, or this
/// site's base (identity `base`), which need not be the newest by the clock
/// (a merge stored in the same second as another site's version). Storing
/// that content again would make a version its own parent.
fn unchanged_in<'m>(m: &'m Manifest, base: Option<&str>, sha: &str) -> Option<&'m Version> {
    let base = base.and_then(|b| m.versions.iter().find(|v| v.sha256 == b));
    m.newest().into_iter().chain(base).find(|v| v.content_sha() == sha)
}

/// The conflicts of a database as read at a change token of its file.
type CachedConflicts = (ChangeToken, Vec<crate::db::changes::Conflict>);

impl BackupService {
    /// A service storing `dbs` in `store` as site `site`.
    pub fn new(
        store: Store,
        dbs: Databases,
        site: String,
        keep_versions: u32,
        data_dir: &std::path::Path,
        legacy_tz: jiff::tz::TimeZone,
    ) -> Self {
        let locks = layout::BACKED_UP.iter().map(|d| (*d, Mutex::new(()))).collect();
        store.accounting().quota().attach(dbs.state.clone(), site.clone());
        BackupService {
            store,
            dbs,
            site,
            keep_versions: keep_versions.max(1) as usize,
            tmp_dir: data_dir.join("tmp"),
            legacy_tz,
            locks: Arc::new(locks),
            manifests: Arc::default(),
            identities: Arc::default(),
            conflict_cache: Arc::default(),
            site_registered: Arc::default(),
            pages: Arc::default(),
            delta_chain_max: 0,
            delta_max_share: 0.0,
            exchange_changes: true,
            spool: Spool::new(data_dir.join("spool"), 0),
            notices: crate::notify::Notices::off(),
        }
    }

    /// Reports quota, verification and manifest troubles to `notices`.
    pub fn with_notices(mut self, notices: crate::notify::Notices) -> Self {
        self.notices = notices;
        self
    }

    /// Where troubles are reported.
    pub fn notices(&self) -> &crate::notify::Notices {
        &self.notices
    }

    /// Keeps at most `max` versions per database in the offline spool while
    /// the store is unreachable (0: none, a backup just fails).
    pub fn with_spool(mut self, max: u32) -> Self {
        self.spool.max = max as usize;
        self
    }

    /// Stores versions as deltas in chains of at most `chain_max` deltas
    /// adding up to at most `max_share` of their full snapshot.
    pub fn with_deltas(mut self, chain_max: u32, max_share: f64) -> Self {
        (self.delta_chain_max, self.delta_max_share) = (chain_max, max_share);
        self
    }

    /// With `false`, `sync` moves whole files (the flow before the change
    /// exchange: pull, diverge, merge), for a store shared with sites that
    /// still run an older casman (`sync.exchange = false`).
    pub fn with_exchange(mut self, on: bool) -> Self {
        self.exchange_changes = on;
        self
    }

    /// The quota ledger of the store's requests.
    pub fn quota(&self) -> &crate::backup::quota::Quota {
        self.store.accounting().quota()
    }

    /// Refuses `op` when the store's free tier is (nearly) used up.
    /// Each resource at or past the warn or block threshold is reported
    /// (`crate::notify` tells it once per resource, level and month).
    pub async fn check_quota(&self, op: crate::backup::quota::Op) -> Result<()> {
        let checked = self.quota().check(op).await;
        if self.notices.enabled() && self.quota().settings().enforced() {
            let r = self.quota().report().await;
            let now = jiff::Timestamp::now();
            for (resource, f) in crate::backup::quota::fractions(&r.fleet, &r.limits) {
                use crate::backup::quota::Resource;
                let resource = match resource {
                    Resource::Storage => "storage",
                    Resource::ClassA => "class_a",
                    Resource::ClassB => "class_b",
                };
                let (warn, block) = (r.limits.warn_threshold, r.limits.block_threshold);
                if f >= warn {
                    let blocked = f >= block;
                    let threshold = if blocked { block } else { warn };
                    self.notices.event(crate::notify::Event::quota(
                        resource,
                        &r.fleet.month,
                        f,
                        threshold,
                        blocked,
                        now,
                    ));
                }
            }
        }
        checked
    }

    pub(super) fn cached_manifest(&self, db: &str) -> Option<(Manifest, Option<String>)> {
        self.manifests.lock().unwrap_or_else(|p| p.into_inner()).get(db).cloned()
    }

    pub(super) fn remember_manifest(&self, db: &str, m: &Manifest, etag: Option<String>) {
        self.quota().note_manifest(db, m);
        self.manifests.lock().unwrap_or_else(|p| p.into_inner()).insert(db.to_owned(), (m.clone(), etag));
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This site's id.
    pub fn site(&self) -> &str {
        &self.site
    }

    pub(super) fn db(&self, name: &str) -> Result<&Db> {
        match name {
            crate::db::PARTS_DB => Ok(&self.dbs.parts),
            crate::db::ASSEMBLED_DB => Ok(&self.dbs.assembled),
            other => {
                Err(Error::invalid(format!("database {other:?}: expected parts.db or assembled_casm.db")))
            }
        }
    }

    /// Serialises backups and restores of one database.
    pub(super) async fn lock(&self, db: &str) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        let m =
            self.locks.get(db).ok_or_else(|| Error::invalid(format!("database {db:?} is not backed up")))?;
        Ok(m.lock().await)
    }

    /// Reads the manifest of `db` and its entity tag. A missing manifest is
    /// created from the bucket's CAsMan versions, if any (one LIST, once).
    /// Re-reads are conditional (`If-None-Match`): unchanged, the cached copy
    /// is used; the CAsMan import is not repeated while there is no manifest.
    pub async fn manifest(&self, db: &str) -> Result<(Manifest, Option<String>)> {
        let cached = self.cached_manifest(db);
        let known = cached.as_ref().and_then(|(_, e)| e.as_deref());
        match self.store.get_bytes(&layout::manifest_key(db), known).await {
            Ok(Some((bytes, etag))) => {
                let key = layout::manifest_key(db);
                if let Some(problem) = super::rebuild::unreadable(&key, &bytes) {
                    tracing::warn!(database = db, "{problem}");
                    self.index_lost(db, &problem, None);
                    return Err(Error::FailedPrecondition(problem));
                }
                let m = Manifest::parse(&bytes).map_err(|e| Error::internal("reading the manifest", e))?;
                self.remember_manifest(db, &m, Some(etag.clone()));
                Ok((m, Some(etag)))
            }
            Ok(None) => match cached {
                Some((m, Some(etag))) => Ok((m, Some(etag))),
                _ => Err(Error::internal("reading the manifest", "unexpected not-modified")),
            },
            Err(StoreError::NotFound(_)) => {
                if let Some((m, None)) = cached {
                    return Ok((m, None));
                }
                // One LIST: casman's own version objects there mean the
                // manifest was lost; it is rebuilt from them, never
                // replaced by a new history.
                match self.recover_missing(db).await? {
                    Some((m, Some(etag))) => Ok((m, Some(etag))),
                    Some((m, None)) => {
                        self.remember_manifest(db, &m, None);
                        Ok((m, None))
                    }
                    // Written meanwhile by someone else: read that one.
                    None => match self.store.get_bytes(&layout::manifest_key(db), None).await {
                        Ok(Some((bytes, etag))) => {
                            let key = layout::manifest_key(db);
                            if let Some(problem) = super::rebuild::unreadable(&key, &bytes) {
                                self.index_lost(db, &problem, None);
                                return Err(Error::FailedPrecondition(problem));
                            }
                            let m = Manifest::parse(&bytes)
                                .map_err(|e| Error::internal("reading the manifest", e))?;
                            self.remember_manifest(db, &m, Some(etag.clone()));
                            Ok((m, Some(etag)))
                        }
                        Ok(None) => Err(Error::internal("reading the manifest", "unexpected not-modified")),
                        Err(e) => Err(Error::from(e)),
                    },
                }
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    /// Applies `change` to the manifest of `db` by compare-and-swap, re-reading
    /// and re-applying it whenever another writer got there first.
    ///
    /// The first attempt starts from the copy this process last read or
    /// wrote, without reading it again: the write is conditional on its
    /// entity tag, so a copy that is no longer current is refused (412, or
    /// 404 if the manifest is gone) and the next attempt reads the store.
    pub async fn update_manifest<F>(&self, db: &str, mut change: F) -> Result<Manifest>
    where
        F: FnMut(&mut Manifest) -> Result<()>,
    {
        let mut cached = self.cached_manifest(db).and_then(|(m, e)| Some((m, Some(e?))));
        for _ in 0..RACE_RETRIES {
            let optimistic = cached.is_some();
            let (mut m, etag) = match cached.take() {
                Some(known) => known,
                None => self.manifest(db).await?,
            };
            // The start of the manifest's history, kept across the change
            // (taken before it: retention may retire the oldest versions).
            let start = m.history_start();
            change(&mut m)?;
            m.keep_history_start(start);
            let cond = match etag {
                Some(e) => Precondition::Matches(e),
                None => Precondition::Absent,
            };
            match self.store.put_bytes(&layout::manifest_key(db), m.to_bytes(), Some(cond)).await {
                Ok(etag) => {
                    // An empty entity tag cannot be used in a conditional read.
                    if etag.is_empty() {
                        self.manifests.lock().unwrap_or_else(|p| p.into_inner()).remove(db);
                        self.quota().note_manifest(db, &m);
                    } else {
                        self.remember_manifest(db, &m, Some(etag));
                    }
                    return Ok(m);
                }
                Err(StoreError::PreconditionFailed(_)) => {
                    tracing::debug!(database = db, "manifest changed meanwhile; retrying");
                }
                Err(StoreError::NotFound(_)) if optimistic => {
                    tracing::debug!(database = db, "manifest gone since last read; reading it again");
                }
                Err(e) => return Err(Error::from(e)),
            }
        }
        Err(Error::Aborted(format!("the manifest of {db} kept changing; try again")))
    }

    /// Backs up `db` for `reason`. An unchanged database (same SHA-256 as the
    /// newest version) is not uploaded again.
    pub async fn backup(&self, db: &str, reason: Reason, progress: ProgressFn<'_>) -> Result<Outcome> {
        self.check_quota(crate::backup::quota::Op::Backup).await?;
        let _guard = self.lock(db).await?;
        let source = self.db(db)?.clone();
        self.backup_locked(&source, reason, progress).await
    }

    pub(super) async fn backup_locked(
        &self,
        source: &Db,
        reason: Reason,
        progress: ProgressFn<'_>,
    ) -> Result<Outcome> {
        match self.backup_online(source, reason, progress).await {
            // The store is unreachable: the snapshot waits in the spool.
            Err(e) if self.spool.max > 0 && e.store_unusable() => {
                Err(self.spool_backup(source, reason, e.to_string()).await)
            }
            other => other,
        }
    }

    async fn backup_online(&self, source: &Db, reason: Reason, progress: ProgressFn<'_>) -> Result<Outcome> {
        let db = source.name;
        let mut phases = super::phases::Phases::start();
        // Versions spooled while the store was unreachable land first, in order.
        self.drain_spool(db).await?;
        let covered = sync_state::writes_since_backup(&self.dbs.state, db).await?;
        let base = sync_state::base(&self.dbs.state, db).await?.map(|b| b.sha256);
        // Unchanged since the last snapshot, and that content is the newest
        // version: decided without reading the file (one conditional GET).
        if let Some(sha) = self.known_content(source) {
            let (manifest, _) = self.manifest(db).await?;
            if let Some(same) = unchanged_in(&manifest, base.as_deref(), &sha) {
                return self.unchanged(db, same, covered).await;
            }
        }
        progress(Progress { database: db.into(), phase: "snapshot", done: 0, total: 0 });
        phases.mark("start");
        let snap = self.snapshot(source).await?;
        phases.mark("snapshot");
        let (manifest, _) = self.manifest(db).await?;
        phases.mark("manifest");
        if let Some(same) = unchanged_in(&manifest, base.as_deref(), &snap.sha256) {
            return self.unchanged(db, same, covered).await;
        }
        let version = self.store_snapshot(db, &snap, reason, &manifest, None, progress).await?;
        phases.mark("store");
        drop(snap);
        // The check and the copy allocated on the blocking threads: give it back.
        crate::memory::release_free_memory();
        sync_state::set_base(&self.dbs.state, db, &version.key, &version.sha256, "backup").await?;
        sync_state::backup_stored(&self.dbs.state, db, &version.key, &version.created_at, covered).await?;
        phases.mark("state");
        // Not after a safety copy: the version about to be restored may be the
        // oldest kept one; the next regular backup applies retention, by which
        // time the restored version is the protected base.
        if reason != Reason::PreRestore
            && let Err(e) = retention::apply(self, db).await
        {
            tracing::warn!(database = db, error = %e, "retention failed; old versions kept");
        }
        phases.mark("retention");
        tracing::debug!(database = db, key = %version.key, phases = %phases, "backup done");
        Ok(Outcome { version, uploaded: true })
    }

    async fn unchanged(&self, db: &str, newest: &Version, covered: i64) -> Result<Outcome> {
        tracing::info!(database = db, key = %newest.key, "unchanged since the newest version; nothing uploaded");
        sync_state::backup_stored(&self.dbs.state, db, &newest.key, &newest.created_at, covered).await?;
        Ok(Outcome { version: newest.clone(), uploaded: false })
    }

    /// The content SHA-256 of `source` if no commit or replacement happened
    /// since its last snapshot.
    pub(super) fn known_content(&self, source: &Db) -> Option<String> {
        let now = source.change_token().ok()?;
        let known = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        known.get(source.name).filter(|(token, _)| *token == now).map(|(_, sha)| sha.clone())
    }

    /// Snapshots `source`, remembering its content for [`Self::known_content`].
    pub(super) async fn snapshot(&self, source: &Db) -> Result<Snapshot> {
        let token = source.change_token().ok();
        let snap = snapshot::take(source, &self.tmp_dir).await?;
        if let Some(token) = token {
            let mut known = self.identities.lock().unwrap_or_else(|p| p.into_inner());
            known.insert(source.name, (token, snap.sha256.clone()));
        }
        Ok(snap)
    }

    /// Compresses and uploads `snap`, then records it in the manifest.
    pub(super) async fn store_snapshot(
        &self,
        db: &str,
        snap: &Snapshot,
        reason: Reason,
        manifest: &Manifest,
        merged_from: Option<String>,
        progress: ProgressFn<'_>,
    ) -> Result<Version> {
        let started = std::time::Instant::now();
        let drained;
        let manifest = match self.drain_spool(db).await? {
            true => {
                drained = self.manifest(db).await?.0;
                &drained
            }
            false => manifest,
        };
        let base = sync_state::base(&self.dbs.state, db).await?;
        let delta_file = self.tmp_path(db, "delta")?;
        let record = self.delta_base(db, snap, manifest, base.as_ref().map(|b| b.key.as_str()));
        let delta = match &record {
            Some(record) => self.delta_upload(snap, record, &delta_file).await?,
            None => None,
        };
        let full_file;
        let upload = match delta {
            Some(delta) => delta,
            None => {
                progress(Progress { database: db.into(), phase: "compress", done: 0, total: snap.raw_bytes });
                full_file = self.tmp_path(db, "upload")?;
                let stored_bytes = snapshot::pack(snap, &full_file).await?;
                Upload { path: &full_file, stored_bytes, delta: None }
            }
        };
        let (zst, stored_bytes) = (upload.path, upload.stored_bytes);
        let parent = base.map(|b| b.sha256);
        let now = jiff::Timestamp::now();
        let mut seq = manifest.next_seq(&self.site);
        progress(Progress { database: db.into(), phase: "upload", done: 0, total: stored_bytes });
        let mut version = Version {
            key: String::new(),
            created_at: timestamp::format(now),
            site: self.site.clone(),
            seq,
            sha256: snap.sha256.clone(),
            content_sha256: None,
            raw_bytes: snap.raw_bytes,
            stored_bytes,
            codec: "zstd".into(),
            parent: parent.clone(),
            merged_from: merged_from.clone(),
            reason,
            record_counts: snap.record_counts.clone(),
            casman_version: env!("CARGO_PKG_VERSION").into(),
            schema_version: snap.schema_version,
            branch: false,
            kind: match upload.delta {
                Some(_) => Kind::Delta,
                None => Kind::Full,
            },
            delta_base: upload.delta.map(|(b, _, _)| b.key.clone()),
            chain_depth: upload.delta.map_or(0, |(_, depth, _)| depth),
        };
        // The entry goes up with the object (see Store::put_version_file).
        let described = loop {
            let key = match upload.delta {
                Some(_) => layout::delta_key(db, &layout::stamp(now), &self.site, seq),
                None => layout::version_key(db, &layout::stamp(now), &self.site, seq),
            };
            (version.key, version.seq) = (key.clone(), seq);
            let entry = super::rebuild::sidecar_bytes(db, &version);
            match self.store.put_version_file(&key, zst, Some(Precondition::Absent), &entry).await {
                Ok((_, described)) => break described,
                // Another backup of this site took the key (same second, same
                // sequence): the object is never overwritten; take the next one.
                Err(StoreError::PreconditionFailed(_))
                    if seq < manifest.next_seq(&self.site) + RACE_RETRIES as u64 =>
                {
                    seq += 1
                }
                Err(e) => return Err(Error::from(e)),
            }
        };
        progress(Progress { database: db.into(), phase: "upload", done: stored_bytes, total: stored_bytes });
        let key = version.key.clone();
        self.record_version(db, &mut version, described).await?;
        self.quota().count_backup();
        self.remember_pages(db, snap, &version, upload.delta);
        tracing::info!(
            database = db,
            key = %key,
            raw_bytes = snap.raw_bytes,
            stored_bytes,
            kind = if upload.delta.is_some() { "delta" } else { "full" },
            chain_depth = version.chain_depth,
            reason = reason.as_str(),
            branch = version.branch,
            duration_ms = started.elapsed().as_millis() as u64,
            "backup stored"
        );
        Ok(version)
    }

    /// Records `version` (its object just uploaded) in the manifest of `db`,
    /// deciding whether it is a branch; idempotent on its key. On failure
    /// the object is removed so it is not an orphan. Unless the object went
    /// up `described` (its entry stored with it), the entry is stored first
    /// as a sidecar object, so the manifest can be rebuilt from the store.
    pub(super) async fn record_version(
        &self,
        db: &str,
        version: &mut Version,
        described: bool,
    ) -> Result<Manifest> {
        let ledger = self.quota().site_ledger().await;
        // parts.db's manifest carries the numbers this site knows as issued.
        let issued = match db {
            crate::db::PARTS_DB => {
                Some(super::manifest::issued_runs(&crate::db::issued::load(&self.dbs.state).await?))
            }
            _ => None,
        };
        let (reason, parent, key) = (version.reason, version.parent.clone(), version.key.clone());
        // The sidecar first: the manifest can be rebuilt from the objects
        // (a local store wrote it with the object; removed with the object
        // below if the manifest update fails).
        let sidecar = super::rebuild::sidecar_key(&key);
        if !described {
            match self
                .store
                .put_bytes(&sidecar, super::rebuild::sidecar_bytes(db, version), Some(Precondition::Absent))
                .await
            {
                Ok(_) | Err(StoreError::PreconditionFailed(_)) => {}
                Err(e) => {
                    let _ = self.store.delete(&key).await;
                    return Err(Error::from(e));
                }
            }
        }
        let recorded = self
            .update_manifest(db, |m| {
                m.ledgers.insert(self.site.clone(), ledger.clone());
                if let Some(issued) = &issued {
                    m.issued.insert(self.site.clone(), issued.clone());
                }
                // A branch: this site's base is not the head any more (another
                // site stored something meanwhile). Stored all the same.
                // A merge descends from the head it merged; a site may move past
                // its own head (e.g. after restoring an older version).
                version.branch = reason != Reason::PreRestore
                    && reason != Reason::Merge
                    && m.head().is_some_and(|h| {
                        h.site != self.site && !parent.as_deref().is_some_and(|p| m.is_ancestor(&h.sha256, p))
                    });
                if m.find(&key).is_none() {
                    m.versions.push(version.clone());
                }
                if reason != Reason::PreRestore {
                    m.bases.insert(self.site.clone(), version.sha256.clone());
                }
                Ok(())
            })
            .await;
        if recorded.is_err() {
            let _ = self.store.delete(&key).await;
            let _ = self.store.delete(&sidecar).await;
        }
        recorded
    }

    pub(super) fn tmp_path(&self, db: &str, what: &str) -> Result<tempfile::TempPath> {
        std::fs::create_dir_all(&self.tmp_dir)
            .map_err(|e| Error::internal("creating the temporary directory", e))?;
        Ok(tempfile::Builder::new()
            .prefix(&format!("{db}.{what}."))
            .tempfile_in(&self.tmp_dir)
            .map_err(|e| Error::internal("creating a temporary file", e))?
            .into_temp_path())
    }

    /// What a delta of `snap` can be computed against: the newest object
    /// this process stored for `db` must still be listed with that content,
    /// still be this site's base, have the same page size, and the chain
    /// not be at its limit; the base the chain's rule picks must still be
    /// listed too.
    fn delta_base(
        &self,
        db: &str,
        snap: &Snapshot,
        m: &Manifest,
        base_key: Option<&str>,
    ) -> Option<DeltaBase> {
        let (page_size, _) = snap.pages.as_ref()?;
        let bases = self.pages.lock().unwrap_or_else(|p| p.into_inner()).get(db).cloned()?;
        let listed = |r: &PageRecord| m.find(&r.key).is_some_and(|v| v.content_sha() == r.content_sha);
        let newest = bases.newest();
        let (depth, base) = bases.next();
        (listed(newest)
            && listed(base)
            && base_key == Some(newest.key.as_str())
            && newest.page_size == *page_size
            && newest.depth < self.delta_chain_max)
            .then(|| (base.clone(), depth, newest.delta_bytes))
    }

    /// Writes the delta from `record` to `snap` into `out`; `None` when the
    /// chain's deltas would exceed their share of the chain's full snapshot
    /// (or the delta is no smaller than it): store it in full.
    pub(super) async fn delta_upload<'a>(
        &self,
        snap: &Snapshot,
        (record, depth, chain_before): &'a DeltaBase,
        out: &'a tempfile::TempPath,
    ) -> Result<Option<Upload<'a>>> {
        let Some((page_size, hashes)) = snap.pages.as_ref() else { return Ok(None) };
        let pages = super::delta::changed_pages(&record.hashes, hashes);
        let header = super::delta::Header {
            page_size: *page_size,
            page_count: hashes.len() as u64,
            base_sha256: record.content_sha.clone(),
            result_sha256: snap.sha256.clone(),
            base_key: record.key.clone(),
        };
        let (raw, dst) = (snap.raw.to_path_buf(), out.to_path_buf());
        let stored = tokio::task::spawn_blocking(move || super::delta::write(&raw, &pages, &header, &dst))
            .await
            .map_err(|e| Error::internal("writing a delta", e))?
            .map_err(|e| Error::internal("writing a delta", e))?;
        let chain_bytes = chain_before + stored;
        if chain_bytes as f64 > self.delta_max_share * record.full_bytes as f64 || stored >= record.full_bytes
        {
            tracing::debug!(key = %record.key, chain_bytes, "delta chain at its share of the full snapshot");
            return Ok(None);
        }
        Ok(Some(Upload { path: out, stored_bytes: stored, delta: Some((record, *depth, chain_bytes)) }))
    }

    /// Remembers the page hashes of `version`, just stored from `snap`.
    fn remember_pages(
        &self,
        db: &str,
        snap: &Snapshot,
        version: &Version,
        delta: Option<(&PageRecord, u32, u64)>,
    ) {
        let mut known = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let Some((page_size, hashes)) = snap.pages.clone() else {
            known.remove(db);
            return;
        };
        let (depth, delta_bytes, full_bytes) = match delta {
            Some((base, depth, bytes)) => (depth, bytes, base.full_bytes),
            None => (0, 0, version.stored_bytes),
        };
        let record = PageRecord {
            key: version.key.clone(),
            content_sha: version.content_sha().to_owned(),
            page_size,
            hashes: Arc::new(hashes),
            depth,
            delta_bytes,
            full_bytes,
        };
        match (delta, known.get_mut(db)) {
            (Some(_), Some(bases)) => bases.push(record),
            _ => {
                known.insert(db.to_owned(), Bases::full(record));
            }
        }
    }
}

//! The site's request ledger: counts kept in memory and written to state.db
//! by a background task (see the module above), the stored bytes of every
//! manifest, and the ledgers other sites published.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use super::policy::{
    Counts, Level, Op, RequestClass, Settings, SiteLedger, Usage, current_month, fleet, judge, worst,
};
use crate::{
    backup::manifest::Manifest,
    config::QuotaConfig,
    db::{Db, quota_ledger},
    error::Result,
};

/// How long to wait before retrying a failed write of the ledger.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The ledger of this site: counts, storage, other sites' published ledgers.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Quota {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    settings: Settings,
    state: OnceLock<(Db, String)>,
    mem: Mutex<Mem>,
    io: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Mem {
    /// Month whose persisted counts are in `base`.
    base_month: Option<String>,
    base: Counts,
    /// Counts not yet written, per month.
    delta: BTreeMap<String, Counts>,
    /// Counts being written.
    inflight: BTreeMap<String, Counts>,
    /// Per database: (stored bytes, versions).
    storage: BTreeMap<String, (u64, u64)>,
    storage_dirty: BTreeSet<String>,
    storage_loaded: bool,
    /// Per database: the ledgers published in its manifest.
    published: BTreeMap<String, BTreeMap<String, SiteLedger>>,
}

/// A status snapshot of the quota.
#[derive(Debug, Clone)]
pub struct QuotaReport {
    /// Whether limits apply (`r2`, `s3`).
    pub enforced: bool,
    /// Limits and thresholds.
    pub limits: QuotaConfig,
    /// This site's use.
    pub site: Usage,
    /// The fleet's use (this site live, others as published).
    pub fleet: Usage,
    /// Other sites' latest ledgers this month.
    pub other_sites: BTreeMap<String, SiteLedger>,
    /// Versions this site stored this month.
    pub backups: u64,
    /// Restores this site did this month.
    pub restores: u64,
}

fn lock(m: &Mutex<Mem>) -> std::sync::MutexGuard<'_, Mem> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Quota {
    /// A ledger with `settings`, counting in memory until [`Quota::attach`].
    pub fn new(settings: Settings) -> Quota {
        Quota { inner: Arc::new(Inner { settings, ..Inner::default() }) }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Persists the ledger in `state` as site `site` from now on, written by
    /// [`Quota::flusher`] (until that runs, counts stay in memory). Only the
    /// first call has an effect.
    pub fn attach(&self, state: Db, site: String) {
        let _ = self.inner.state.set((state, site));
    }

    /// The background writer of the ledger: writes the counts each time
    /// requests were counted (those made while a write runs go with the
    /// next), retries a failed write after [`FLUSH_INTERVAL`], and when
    /// `stop` turns true writes what is left once more and ends. Started by
    /// the daemon's task list (`crate::context::tasks`).
    pub async fn flusher(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                _ = self.inner.wake.notified() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            match self.flush().await {
                Ok(()) if stopping => return,
                Ok(()) => {}
                Err(e) if stopping => {
                    tracing::warn!(error = %e, "could not write the quota ledger at shutdown");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not write the quota ledger; retrying");
                    tokio::time::sleep(FLUSH_INTERVAL).await;
                    self.inner.wake.notify_one();
                }
            }
        }
    }

    fn bump(&self, f: impl FnOnce(&mut Counts)) {
        {
            let mut m = lock(&self.inner.mem);
            f(m.delta.entry(current_month()).or_default());
        }
        self.inner.wake.notify_one();
    }

    /// Counts one request.
    pub fn record(&self, class: RequestClass) {
        self.bump(|c| match class {
            RequestClass::A => c.class_a += 1,
            RequestClass::B => c.class_b += 1,
            RequestClass::Free => c.free += 1,
        });
    }

    /// Counts a stored version.
    pub fn count_backup(&self) {
        self.bump(|c| c.backups += 1);
    }

    /// Counts a restore.
    pub fn count_restore(&self) {
        self.bump(|c| c.restores += 1);
    }

    /// Takes note of a manifest just read or written: its stored bytes and
    /// the ledgers published in it.
    pub fn note_manifest(&self, db: &str, m: &Manifest) {
        let now = (m.stored_bytes(), m.versions.len() as u64);
        let changed = {
            let mut mem = lock(&self.inner.mem);
            mem.published.insert(db.to_owned(), m.ledgers.clone());
            let changed = mem.storage.get(db) != Some(&now);
            if changed {
                mem.storage.insert(db.to_owned(), now);
                mem.storage_dirty.insert(db.to_owned());
            }
            changed
        };
        if changed {
            self.inner.wake.notify_one();
        }
    }

    /// Writes pending counts and storage to state.db.
    pub async fn flush(&self) -> Result<()> {
        let Some((db, _)) = self.inner.state.get() else { return Ok(()) };
        let _io = self.inner.io.lock().await;
        let (counts, storage) = {
            let mut m = lock(&self.inner.mem);
            let counts = std::mem::take(&mut m.delta);
            m.inflight = counts.clone();
            let dirty = std::mem::take(&mut m.storage_dirty);
            let storage: Vec<(String, (u64, u64))> =
                dirty.into_iter().filter_map(|d| m.storage.get(&d).map(|s| (d, *s))).collect();
            (counts, storage)
        };
        if counts.values().all(Counts::is_zero) && storage.is_empty() {
            lock(&self.inner.mem).inflight.clear();
            return Ok(());
        }
        let rows: Vec<(String, [u64; 5])> = counts
            .iter()
            .filter(|(_, c)| !c.is_zero())
            .map(|(m, c)| (m.clone(), [c.class_a, c.class_b, c.free, c.backups, c.restores]))
            .collect();
        let sizes: Vec<(String, u64, u64)> = storage.iter().map(|(d, (b, v))| (d.clone(), *b, *v)).collect();
        let written = quota_ledger::write(db, &rows, &sizes).await;
        let mut m = lock(&self.inner.mem);
        let inflight = std::mem::take(&mut m.inflight);
        match written {
            Ok(()) => {
                for (month, c) in &inflight {
                    if m.base_month.as_deref() == Some(month.as_str()) {
                        m.base.add(c);
                    }
                }
                Ok(())
            }
            Err(e) => {
                for (month, c) in inflight {
                    m.delta.entry(month).or_default().add(&c);
                }
                m.storage_dirty.extend(storage.into_iter().map(|(d, _)| d));
                drop(m);
                self.inner.wake.notify_one();
                Err(e)
            }
        }
    }

    /// Loads the persisted counts of `month` (and the stored sizes, once).
    async fn ensure_loaded(&self, month: &str) {
        let ready = |m: &Mem| m.base_month.as_deref() == Some(month) && m.storage_loaded;
        if ready(&lock(&self.inner.mem)) {
            return;
        }
        let Some((db, _)) = self.inner.state.get() else { return };
        let _io = self.inner.io.lock().await;
        if ready(&lock(&self.inner.mem)) {
            return;
        }
        match quota_ledger::load(db, month).await {
            Ok(([class_a, class_b, free, backups, restores], storage)) => {
                let base = Counts { class_a, class_b, free, backups, restores };
                let mut m = lock(&self.inner.mem);
                m.base_month = Some(month.to_owned());
                m.base = base;
                if !m.storage_loaded {
                    for (d, bytes, versions) in storage {
                        m.storage.entry(d).or_insert((bytes, versions));
                    }
                    m.storage_loaded = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the quota ledger"),
        }
    }

    /// This site's counts of this month.
    pub async fn counts(&self) -> Counts {
        let month = current_month();
        self.ensure_loaded(&month).await;
        let m = lock(&self.inner.mem);
        let mut c = if m.base_month.as_deref() == Some(month.as_str()) { m.base } else { Counts::default() };
        for map in [&m.inflight, &m.delta] {
            if let Some(d) = map.get(&month) {
                c.add(d);
            }
        }
        c
    }

    /// This site's ledger as published in manifests.
    pub async fn site_ledger(&self) -> SiteLedger {
        let c = self.counts().await;
        SiteLedger {
            month: current_month(),
            class_a: c.class_a,
            class_b: c.class_b,
            updated_at: crate::timestamp::now(),
        }
    }

    /// The quota now: this site's and the fleet's use.
    pub async fn report(&self) -> QuotaReport {
        let month = current_month();
        let c = self.counts().await;
        let own_site = self.inner.state.get().map(|(_, s)| s.clone()).unwrap_or_default();
        let (storage_bytes, published) = {
            let m = lock(&self.inner.mem);
            let bytes = m.storage.values().map(|(b, _)| b).sum();
            let all: Vec<(String, SiteLedger)> =
                m.published.values().flat_map(|l| l.iter().map(|(s, l)| (s.clone(), l.clone()))).collect();
            (bytes, all)
        };
        let (a, b, others) =
            fleet(&own_site, (c.class_a, c.class_b), &month, published.iter().map(|(s, l)| (s, l)));
        let site = Usage { month: month.clone(), storage_bytes, class_a: c.class_a, class_b: c.class_b };
        let fleet = Usage { month, storage_bytes, class_a: a, class_b: b };
        QuotaReport {
            enforced: self.settings().enforced(),
            limits: self.settings().limits.clone(),
            site,
            fleet,
            other_sites: others,
            backups: c.backups,
            restores: c.restores,
        }
    }

    /// Checks `op` against the fleet's use: refused from the block threshold
    /// (r2 and s3 only), a warning from the warn threshold.
    pub async fn check(&self, op: Op) -> Result<()> {
        if !self.settings().enforced() {
            return Ok(());
        }
        let r = self.report().await;
        let level = judge(&r.fleet, &r.limits, op).inspect_err(|e| {
            tracing::warn!(operation = op.as_str(), "{e}");
        })?;
        if level == Level::Warn {
            let (resource, f) = worst(&r.fleet, &r.limits, op);
            tracing::warn!(
                operation = op.as_str(),
                resource = resource.as_str(),
                percent = format!("{:.1}", f * 100.0),
                "the object store's free tier is nearly used up"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_of_last_month_does_not_count() {
        let published: BTreeMap<String, SiteLedger> = [
            (
                "field".to_owned(),
                SiteLedger { month: "2026-01".into(), class_a: 900_000, class_b: 5, updated_at: "x".into() },
            ),
            (
                "lab".to_owned(),
                SiteLedger { month: "2026-02".into(), class_a: 7, class_b: 8, updated_at: "x".into() },
            ),
            (
                "me".to_owned(),
                SiteLedger { month: "2026-02".into(), class_a: 1000, class_b: 1000, updated_at: "x".into() },
            ),
        ]
        .into_iter()
        .collect();
        let (a, b, others) = fleet("me", (1, 2), "2026-02", &published);
        assert_eq!((a, b), (8, 10));
        assert_eq!(others.keys().collect::<Vec<_>>(), ["lab"]);
    }

    #[test]
    fn storage_goes_down_when_versions_are_deleted() {
        use crate::backup::manifest::{Reason, tests::v};
        let q = Quota::new(Settings::default());
        let mut m = Manifest::new("parts.db");
        m.versions.push(v("a", "2026-01-01T00:00:00Z", "lab", 1, Reason::Manual));
        m.versions.push(v("b", "2026-01-02T00:00:00Z", "lab", 2, Reason::Manual));
        q.note_manifest("parts.db", &m);
        let bytes = |q: &Quota| lock(&q.inner.mem).storage.values().map(|s| s.0).sum::<u64>();
        assert_eq!(bytes(&q), 10);
        m.versions.remove(0);
        q.note_manifest("parts.db", &m);
        assert_eq!(bytes(&q), 5);
    }

    #[test]
    fn storage_counts_each_object_once_and_deltas_at_their_size() {
        use crate::backup::manifest::{Kind, Reason, tests::v};
        let q = Quota::new(Settings::default());
        let mut m = Manifest::new("assembled_casm.db");
        let mut full = v("full", "2026-01-01T00:00:00Z", "lab", 1, Reason::Manual);
        full.stored_bytes = 2_370_000;
        let mut delta = v("delta", "2026-01-01T00:00:10Z", "lab", 2, Reason::Scheduled);
        (delta.kind, delta.delta_base, delta.stored_bytes) = (Kind::Delta, Some("full".into()), 4_000);
        // A restore record shares the delta's object.
        let restored = delta.restored(Some("sha-delta"), "lab", 3, "2026-01-01T00:01:00Z");
        m.versions.extend([full, delta, restored]);
        q.note_manifest("assembled_casm.db", &m);
        assert_eq!(lock(&q.inner.mem).storage.get("assembled_casm.db"), Some(&(2_374_000, 3)));
    }

    #[test]
    fn requests_count_by_class_this_month() {
        let q = Quota::new(Settings::default());
        for c in [RequestClass::A, RequestClass::A, RequestClass::B, RequestClass::Free] {
            q.record(c);
        }
        q.count_backup();
        let m = lock(&q.inner.mem);
        let c = m.delta.get(&current_month()).copied().unwrap_or_default();
        assert_eq!((c.class_a, c.class_b, c.free, c.backups), (2, 1, 1, 1));
    }
}

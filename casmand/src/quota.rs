//! The object-store ledger and the free-tier enforcement (Cloudflare R2's by
//! default: 10 GB stored, 1 M Class A and 10 M Class B requests a month).
//!
//! * Every store request is counted by [`crate::backup::accounting`] and lands
//!   here: counts are kept in memory and written to state.db (`quota_ledger`,
//!   one row per UTC calendar month, so the monthly reset happens by
//!   construction) by a background task as soon as it can (requests counted
//!   while a write runs go into the next one; a failed write is retried after
//!   [`FLUSH_INTERVAL`]): a crash loses at most the counts of the last few
//!   milliseconds (a second or two if state.db is failing).
//! * Storage is the stored size of every version listed in the manifests (all
//!   sites), refreshed whenever a manifest is read or written: it goes down
//!   when versions are deleted (CAsMan's tracker only ever added).
//! * Each site publishes its ledger in the manifests it writes (see
//!   [`crate::backup::manifest::Manifest::ledgers`]); the fleet's use is this
//!   site's live counts plus the latest published ledger of every other site
//!   for the current month. The free tier belongs to the account, so checks
//!   use the fleet's figures.
//! * Checks before operations: backup → max(storage, Class A); restore, sync,
//!   verify → Class B; list → Class A; maintain → all three. From the block
//!   threshold the operation fails with [`Error::ResourceExhausted`]; from the
//!   warn threshold a warning is logged. Only the `r2` and `s3` backends are
//!   limited: `local` and `none` are counted, never refused.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    backup::{accounting::RequestClass, manifest::Manifest},
    config::{Backend, Config, QuotaConfig},
    db::Db,
    error::{Error, Result},
};

/// How long to wait before retrying a failed write of the ledger.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The operations checked against the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Storing versions (Class A and storage).
    Backup,
    /// Downloading a version (Class B).
    Restore,
    /// Pulling another site's version (Class B).
    Sync,
    /// Downloading versions to check them (Class B).
    Verify,
    /// Listing versions (Class A, as CAsMan counted it).
    List,
    /// Storage-class maintenance (everything).
    Maintain,
}

impl Op {
    /// Its name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Backup => "backup",
            Op::Restore => "restore",
            Op::Sync => "sync",
            Op::Verify => "verify",
            Op::List => "list",
            Op::Maintain => "maintain",
        }
    }

    fn resources(self) -> &'static [Resource] {
        match self {
            Op::Backup => &[Resource::Storage, Resource::ClassA],
            Op::Restore | Op::Sync | Op::Verify => &[Resource::ClassB],
            Op::List => &[Resource::ClassA],
            Op::Maintain => &[Resource::Storage, Resource::ClassA, Resource::ClassB],
        }
    }
}

/// A limited resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Bytes stored.
    Storage,
    /// Class A requests this month.
    ClassA,
    /// Class B requests this month.
    ClassB,
}

impl Resource {
    /// Its name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Storage => "storage",
            Resource::ClassA => "Class A operations",
            Resource::ClassB => "Class B operations",
        }
    }
}

/// Where a fraction of a limit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Below the warn threshold (✓).
    Ok,
    /// From the warn threshold (⚠).
    Warn,
    /// From the block threshold (✗).
    Block,
}

impl Level {
    /// `ok`, `warn` or `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Block => "block",
        }
    }

    /// The documents' mark: ✓, ⚠ or ✗.
    pub fn symbol(self) -> &'static str {
        match self {
            Level::Ok => "✓",
            Level::Warn => "⚠",
            Level::Block => "✗",
        }
    }
}

/// Counts of one month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Class A requests.
    pub class_a: u64,
    /// Class B requests.
    pub class_b: u64,
    /// Free requests (deletes).
    pub free: u64,
    /// Versions stored.
    pub backups: u64,
    /// Restores.
    pub restores: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.class_a += o.class_a;
        self.class_b += o.class_b;
        self.free += o.free;
        self.backups += o.backups;
        self.restores += o.restores;
    }

    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// A site's ledger as published in the manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLedger {
    /// UTC month, `YYYY-MM`.
    pub month: String,
    /// Class A requests of the site that month.
    pub class_a: u64,
    /// Class B requests.
    pub class_b: u64,
    /// When published, UTC ISO.
    #[serde(default)]
    pub updated_at: String,
}

/// Use of the free tier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// UTC month, `YYYY-MM`.
    pub month: String,
    /// Bytes stored (all versions of all sites).
    pub storage_bytes: u64,
    /// Class A requests this month.
    pub class_a: u64,
    /// Class B requests this month.
    pub class_b: u64,
}

/// What the store's policy needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The backend in effect.
    pub backend: Backend,
    /// Limits and thresholds.
    pub limits: QuotaConfig,
    /// Storage class every version is kept in.
    pub storage_class: String,
    /// Every version is downloaded and checked within this period.
    pub verify_period: Duration,
    /// How often maintenance runs.
    pub maintenance_interval: Duration,
    /// Download budget of the verification, MiB per day.
    pub verify_mib_per_day: u64,
}

impl Settings {
    /// The settings of `cfg`.
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            backend: cfg.backend(),
            limits: cfg.quota.clone(),
            storage_class: cfg.sync.storage_class.clone(),
            verify_period: cfg.sync.verify_period,
            maintenance_interval: cfg.sync.maintenance_interval,
            verify_mib_per_day: cfg.sync.verify_mib_per_day,
        }
    }

    /// True when the limits apply (`r2`, `s3`).
    pub fn enforced(&self) -> bool {
        matches!(self.backend, Backend::R2 | Backend::S3)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}

/// The UTC month (`YYYY-MM`) of `ts`.
pub fn month_of(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m").to_string()
}

/// This UTC month.
pub fn current_month() -> String {
    month_of(jiff::Timestamp::now())
}

fn fraction(used: f64, limit: f64) -> f64 {
    if limit > 0.0 { used / limit } else { 0.0 }
}

/// The fraction of its limit each resource uses.
pub fn fractions(u: &Usage, limits: &QuotaConfig) -> [(Resource, f64); 3] {
    [
        (Resource::Storage, fraction(u.storage_bytes as f64 / GIB, limits.storage_gb)),
        (Resource::ClassA, fraction(u.class_a as f64, limits.class_a_operations as f64)),
        (Resource::ClassB, fraction(u.class_b as f64, limits.class_b_operations as f64)),
    ]
}

/// The level of `fraction`.
pub fn level(fraction: f64, limits: &QuotaConfig) -> Level {
    if fraction >= limits.block_threshold {
        Level::Block
    } else if fraction >= limits.warn_threshold {
        Level::Warn
    } else {
        Level::Ok
    }
}

/// The resource `op` depends on that is closest to its limit, and its fraction.
pub fn worst(u: &Usage, limits: &QuotaConfig, op: Op) -> (Resource, f64) {
    fractions(u, limits)
        .into_iter()
        .filter(|(r, _)| op.resources().contains(r))
        .fold((op.resources()[0], f64::MIN), |best, cur| if cur.1 > best.1 { cur } else { best })
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// GB (GiB) with up to two decimals, trailing zeros dropped (`10`, `3.45`).
fn gb(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Bytes as GB (GiB), as the documents print them.
pub fn storage_gb(bytes: u64) -> f64 {
    bytes as f64 / GIB
}

/// The refusal message of the documents.
pub fn blocked_message(u: &Usage, limits: &QuotaConfig, op: Op, resource: Resource, fraction: f64) -> String {
    format!(
        "R2 quota limit reached: {:.1}% of {} used. Operation '{}' blocked to prevent exceeding free tier \
         limits. Storage: {:.2}/{} GB, Class A: {}/{}, Class B: {}/{}",
        fraction * 100.0,
        resource.as_str(),
        op.as_str(),
        storage_gb(u.storage_bytes),
        gb(limits.storage_gb),
        thousands(u.class_a),
        thousands(limits.class_a_operations),
        thousands(u.class_b),
        thousands(limits.class_b_operations),
    )
}

/// Decides whether `op` may run with `u`: refused from the block threshold.
pub fn judge(u: &Usage, limits: &QuotaConfig, op: Op) -> Result<Level> {
    let (resource, f) = worst(u, limits, op);
    match level(f, limits) {
        Level::Block => Err(Error::ResourceExhausted(blocked_message(u, limits, op, resource, f))),
        l => Ok(l),
    }
}

/// Class A and B of the fleet this month: `own` plus, for every other site,
/// its latest ledger of `month` among `published`.
pub fn fleet<'a>(
    own_site: &str,
    own: (u64, u64),
    month: &str,
    published: impl IntoIterator<Item = (&'a String, &'a SiteLedger)>,
) -> (u64, u64, BTreeMap<String, SiteLedger>) {
    let mut latest: BTreeMap<String, SiteLedger> = BTreeMap::new();
    for (site, l) in published {
        if site == own_site || l.month != month {
            continue;
        }
        if latest.get(site).is_none_or(|cur| cur.updated_at < l.updated_at) {
            latest.insert(site.clone(), l.clone());
        }
    }
    let (a, b) = latest.values().fold(own, |(a, b), l| (a + l.class_a, b + l.class_b));
    (a, b, latest)
}

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

    /// Persists the ledger in `state` as site `site` from now on, with a
    /// background writer (needs a tokio runtime; without one, counts stay in
    /// memory). Only the first call has an effect.
    pub fn attach(&self, state: Db, site: String) {
        if self.inner.state.set((state, site)).is_err() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                inner.wake.notified().await;
                // Requests made while this flush runs are written by the next.
                if let Err(e) = (Quota { inner }).flush().await {
                    tracing::warn!(error = %e, "could not write the quota ledger; retrying");
                    tokio::time::sleep(FLUSH_INTERVAL).await;
                }
            }
        });
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
        let written = write(db, &counts, &storage).await;
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
        match load(db, month).await {
            Ok((base, storage)) => {
                let mut m = lock(&self.inner.mem);
                m.base_month = Some(month.to_owned());
                m.base = base;
                if !m.storage_loaded {
                    for (d, s) in storage {
                        m.storage.entry(d).or_insert(s);
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

async fn write(db: &Db, counts: &BTreeMap<String, Counts>, storage: &[(String, (u64, u64))]) -> Result<()> {
    let now = crate::timestamp::now();
    let mut tx = db.writer().await.begin().await?;
    for (month, c) in counts.iter().filter(|(_, c)| !c.is_zero()) {
        sqlx::query(
            "INSERT INTO quota_ledger (month, class_a, class_b, free, backups, restores, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (month) DO UPDATE SET
                 class_a = class_a + excluded.class_a, class_b = class_b + excluded.class_b,
                 free = free + excluded.free, backups = backups + excluded.backups,
                 restores = restores + excluded.restores, updated_at = excluded.updated_at",
        )
        .bind(month)
        .bind(c.class_a as i64)
        .bind(c.class_b as i64)
        .bind(c.free as i64)
        .bind(c.backups as i64)
        .bind(c.restores as i64)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    for (database, (bytes, versions)) in storage {
        sqlx::query(
            "INSERT INTO quota_storage (database, stored_bytes, versions, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (database) DO UPDATE SET stored_bytes = excluded.stored_bytes,
                 versions = excluded.versions, updated_at = excluded.updated_at",
        )
        .bind(database)
        .bind(*bytes as i64)
        .bind(*versions as i64)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

type Loaded = (Counts, Vec<(String, (u64, u64))>);

async fn load(db: &Db, month: &str) -> Result<Loaded> {
    let row: Option<(i64, i64, i64, i64, i64)> =
        sqlx::query_as("SELECT class_a, class_b, free, backups, restores FROM quota_ledger WHERE month = ?")
            .bind(month)
            .fetch_optional(&*db.reader().await)
            .await?;
    let n = |v: i64| v.max(0) as u64;
    let counts = row
        .map(|(a, b, f, k, r)| Counts {
            class_a: n(a),
            class_b: n(b),
            free: n(f),
            backups: n(k),
            restores: n(r),
        })
        .unwrap_or_default();
    let storage: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT database, stored_bytes, versions FROM quota_storage")
            .fetch_all(&*db.reader().await)
            .await?;
    Ok((counts, storage.into_iter().map(|(d, b, v)| (d, (n(b), n(v)))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QuotaConfig {
        QuotaConfig::default()
    }

    fn usage(storage_bytes: u64, class_a: u64, class_b: u64) -> Usage {
        Usage { month: "2026-01".into(), storage_bytes, class_a, class_b }
    }

    fn blocked(u: &Usage, op: Op) -> bool {
        matches!(judge(u, &limits(), op), Err(Error::ResourceExhausted(_)))
    }

    #[test]
    fn storage_of_9_6_gib_blocks_backups_only() {
        let u = usage((9.6 * GIB) as u64, 0, 0);
        assert!(blocked(&u, Op::Backup));
        assert!(blocked(&u, Op::Maintain));
        assert!(!blocked(&u, Op::Restore));
        assert!(!blocked(&u, Op::List));
    }

    #[test]
    fn class_a_960_000_blocks_backup_and_list() {
        let u = usage(0, 960_000, 0);
        assert!(blocked(&u, Op::Backup));
        assert!(blocked(&u, Op::List));
        assert!(!blocked(&u, Op::Restore));
    }

    #[test]
    fn class_b_9_600_000_blocks_restore_sync_and_verify() {
        let u = usage(0, 0, 9_600_000);
        for op in [Op::Restore, Op::Sync, Op::Verify, Op::Maintain] {
            assert!(blocked(&u, op), "{op:?}");
        }
        assert!(!blocked(&u, Op::Backup));
    }

    #[test]
    fn warn_from_80_percent() {
        assert_eq!(judge(&usage(0, 850_000, 0), &limits(), Op::Backup).ok(), Some(Level::Warn));
        assert_eq!(judge(&usage(0, 799_999, 0), &limits(), Op::Backup).ok(), Some(Level::Ok));
        assert_eq!(level(0.8, &limits()), Level::Warn);
        assert_eq!(level(0.95, &limits()), Level::Block);
        assert_eq!(Level::Warn.symbol(), "⚠");
    }

    #[test]
    fn the_message_is_the_documents() {
        let u = usage((3.45 * GIB) as u64 + 1, 953_000, 234_567);
        let err = judge(&u, &limits(), Op::Backup).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            err,
            "R2 quota limit reached: 95.3% of Class A operations used. Operation 'backup' blocked to prevent \
             exceeding free tier limits. Storage: 3.45/10 GB, Class A: 953,000/1,000,000, Class B: \
             234,567/10,000,000"
        );
    }

    #[test]
    fn storage_gb_of_5_000_000_bytes() {
        assert!((storage_gb(5_000_000) - 0.00465).abs() < 0.00001);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(gb(10.0), "10");
    }

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

    #[test]
    fn only_r2_and_s3_are_limited() {
        let mut s = Settings::default();
        assert!(!s.enforced());
        s.backend = Backend::S3;
        assert!(s.enforced());
        s.backend = Backend::R2;
        assert!(s.enforced());
        s.backend = Backend::None;
        assert!(!s.enforced());
    }

    #[test]
    fn months_are_utc() {
        let ts: jiff::Timestamp = "2026-01-31T23:30:00-05:00".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(month_of(ts), "2026-02");
    }
}

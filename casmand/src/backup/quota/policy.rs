//! The free-tier policy, pure: which resources an operation depends on, the
//! levels (ok, warn, block), the fleet's use from the sites' published
//! ledgers, and the refusal message of the documents. No I/O.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    config::{Backend, Config, QuotaConfig},
    error::{Error, Result},
};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// How R2 bills a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// PutObject, CopyObject, ListObjects, multipart: Class A.
    A,
    /// GetObject, HeadObject: Class B.
    B,
    /// DeleteObject: free.
    Free,
}

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

    pub(super) fn resources(self) -> &'static [Resource] {
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
    pub(super) fn add(&mut self, o: &Counts) {
        self.class_a += o.class_a;
        self.class_b += o.class_b;
        self.free += o.free;
        self.backups += o.backups;
        self.restores += o.restores;
    }

    pub(super) fn is_zero(&self) -> bool {
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
    pub verify_daily_mib: u64,
    /// Age past which maintenance deletes an orphaned object.
    pub orphan_grace: Duration,
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
            verify_daily_mib: cfg.sync.verify_daily_mib,
            orphan_grace: cfg.sync.orphan_grace,
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

pub use crate::timestamp::{current_month, month_of};

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

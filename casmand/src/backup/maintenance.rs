//! Storage-class maintenance (weekly by the scheduler, and on
//! `casmanctl sync maintain`): for every version in the manifests, HEAD the
//! object; move it back to the configured storage class when the store
//! changed it (R2 Infrequent Access has no free tier); report missing objects
//! and size mismatches; download and check a rotating sample of versions so
//! that each is verified within `sync.verify_period`, within a download
//! budget (`sync.verify_daily_mib`); apply retention. The
//! report is logged and recorded in state.db.

use std::{collections::HashMap, time::Duration};

use serde::Serialize;

use super::quota::Op;
use super::{
    layout,
    manifest::Version,
    retention,
    service::{BackupService, Progress, ProgressFn},
    store::StoreError,
};
use crate::{
    db::verifications,
    error::{Error, Result},
};

pub use crate::db::verifications::last_maintenance;

/// A version moved back to the configured storage class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// Object key.
    pub key: String,
    /// The class it was in.
    pub from: String,
    /// The class it is in now.
    pub to: String,
}

/// A version whose object has another size than the manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizeMismatch {
    /// Object key.
    pub key: String,
    /// Stored size in the manifest.
    pub expected: u64,
    /// Size in the store.
    pub actual: u64,
}

/// The download check of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Object key.
    pub key: String,
    /// What failed, if anything.
    pub problem: Option<String>,
}

/// What a maintenance run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// When it started, UTC ISO.
    pub at: String,
    /// Versions whose object was looked at (HEAD).
    pub checked: u64,
    /// Versions moved back to the configured class.
    pub moved: Vec<Moved>,
    /// Versions listed in a manifest whose object is gone.
    pub missing: Vec<String>,
    /// Versions whose object has another size.
    pub size_mismatches: Vec<SizeMismatch>,
    /// Versions downloaded and checked.
    pub verified: Vec<Checked>,
    /// Versions deleted by retention.
    pub deleted: Vec<String>,
    /// Objects no version references, younger than `sync.orphan_grace`: kept.
    pub orphans: Vec<String>,
    /// Objects no version references, older than it: deleted.
    pub orphans_deleted: Vec<String>,
    /// Steps that failed (the run went on).
    pub errors: Vec<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

impl MaintenanceReport {
    /// Versions that passed the download check.
    pub fn verified_ok(&self) -> usize {
        self.verified.iter().filter(|c| c.problem.is_none()).count()
    }

    /// Versions that failed it.
    pub fn verified_failed(&self) -> usize {
        self.verified.len() - self.verified_ok()
    }

    /// True when nothing needs an operator's attention.
    pub fn healthy(&self) -> bool {
        self.missing.is_empty()
            && self.size_mismatches.is_empty()
            && self.verified_failed() == 0
            && self.errors.is_empty()
    }

    /// One line for logs and `sync status`.
    pub fn summary(&self) -> String {
        format!(
            "{} checked, {} moved to the configured class, {} missing, {} size mismatches, \
             {} verified ok, {} failed verification, {} deleted by retention, {} orphans kept, \
             {} orphans deleted, {} errors, in {:.1}s",
            self.checked,
            self.moved.len(),
            self.missing.len(),
            self.size_mismatches.len(),
            self.verified_ok(),
            self.verified_failed(),
            self.deleted.len(),
            self.orphans.len(),
            self.orphans_deleted.len(),
            self.errors.len(),
            self.duration_ms as f64 / 1000.0
        )
    }
}

/// The versions to download this run: every version never verified or whose
/// last check would be older than `period` before the next run, and at least
/// the share `interval / period` of all versions (at least one), least
/// recently verified first. `last` maps keys to their last check (UTC ISO).
pub fn sample<'v>(
    versions: &[&'v Version],
    last: &HashMap<String, String>,
    now: jiff::Timestamp,
    period: Duration,
    interval: Duration,
) -> Vec<&'v Version> {
    if versions.is_empty() {
        return Vec::new();
    }
    let n = versions.len();
    let share = if period.is_zero() {
        n
    } else {
        ((n as f64 * interval.as_secs_f64() / period.as_secs_f64()).ceil() as usize).clamp(1, n)
    };
    let slack = jiff::SignedDuration::try_from(period.saturating_sub(interval)).unwrap_or_default();
    let cutoff = crate::timestamp::format(now.checked_sub(slack).unwrap_or(now));
    let when = |v: &Version| last.get(&v.key).cloned().unwrap_or_default();
    let mut order: Vec<&Version> = versions.to_vec();
    order.sort_by(|a, b| (when(a), &a.created_at).cmp(&(when(b), &b.created_at)));
    let due = order.iter().filter(|v| when(v) < cutoff).count();
    order.truncate(due.max(share));
    order
}

/// The longest prefix of `due` (least recently verified first) whose stored
/// bytes fit in `budget`, and at least its first version, so that
/// verification always progresses.
pub fn within_budget(due: Vec<&Version>, budget: u64) -> Vec<&Version> {
    let mut spent = 0u64;
    let mut out = Vec::new();
    for v in due {
        if !out.is_empty() && spent.saturating_add(v.stored_bytes) > budget {
            break;
        }
        spent = spent.saturating_add(v.stored_bytes);
        out.push(v);
    }
    out
}

/// Bytes a run may download for checking: `mib_per_day` per day of `interval`
/// (at least one day's worth).
pub fn run_budget(mib_per_day: u64, interval: Duration) -> u64 {
    let days = (interval.as_secs_f64() / 86_400.0).max(1.0);
    (mib_per_day as f64 * days * 1_048_576.0) as u64
}

impl BackupService {
    /// Runs maintenance over every database's versions; see the module docs.
    /// Fails only when the quota refuses it or the store cannot be reached.
    pub async fn maintain(&self, progress: ProgressFn<'_>) -> Result<MaintenanceReport> {
        self.check_quota(Op::Maintain).await?;
        let started = std::time::Instant::now();
        let settings = self.quota().settings().clone();
        let target = settings.storage_class.clone();
        let mut report = MaintenanceReport { at: crate::timestamp::now(), ..Default::default() };
        let mut present: Vec<Version> = Vec::new();
        for db in layout::BACKED_UP {
            {
                let _guard = self.lock(db).await?;
                match retention::apply(self, db).await {
                    Ok(keys) => report.deleted.extend(keys),
                    Err(e) => report.errors.push(format!("{db}: retention: {e}")),
                }
                self.orphans(db, settings.orphan_grace, &mut report).await;
            }
            let (m, _) = self.manifest(db).await?;
            // The store lost this site's last backup (an emptied bucket, a
            // lost manifest): say so, and store the current state again.
            let last = crate::db::sync_state::activity(&self.dbs.state, db).await?.last_backup_key;
            if let Some(key) = super::status::lost_backup(&m, last.as_deref()) {
                tracing::warn!(database = db, key = %key, "the store no longer holds the last backup; storing the current state again");
                report.missing.push(key);
                let _guard = self.lock(db).await?;
                let source = self.db(db)?.clone();
                match self.backup_locked(&source, super::manifest::Reason::Scheduled, progress).await {
                    Ok(o) => {
                        tracing::info!(database = db, key = %o.version.key, "the current state is stored again")
                    }
                    Err(e) => report.errors.push(format!("{db}: storing the current state again: {e}")),
                }
            }
            let (m, _) = self.manifest(db).await?;
            let total = m.versions.len() as u64;
            for (i, v) in m.versions.iter().enumerate() {
                progress(Progress { database: db.into(), phase: "check", done: i as u64, total });
                let info = match self.store.head(&v.key).await {
                    Ok(info) => info,
                    Err(StoreError::NotFound(_)) => {
                        tracing::warn!(key = %v.key, "a version listed in the manifest is missing from the store");
                        report.missing.push(v.key.clone());
                        continue;
                    }
                    Err(e @ (StoreError::Unavailable(_) | StoreError::Auth(_) | StoreError::Disabled)) => {
                        return Err(Error::from(e));
                    }
                    Err(e) => {
                        report.errors.push(format!("{}: {e}", v.key));
                        continue;
                    }
                };
                report.checked += 1;
                if let Some(class) = info.storage_class.filter(|c| *c != target) {
                    match self.store.set_storage_class(&v.key, &target).await {
                        Ok(()) => {
                            tracing::info!(key = %v.key, from = %class, to = %target, "moved back to the configured storage class");
                            report.moved.push(Moved { key: v.key.clone(), from: class, to: target.clone() });
                        }
                        Err(e) => report.errors.push(format!("{}: moving to {target}: {e}", v.key)),
                    }
                }
                if info.size != v.stored_bytes {
                    tracing::warn!(key = %v.key, expected = v.stored_bytes, actual = info.size, "stored size differs from the manifest");
                    report.size_mismatches.push(SizeMismatch {
                        key: v.key.clone(),
                        expected: v.stored_bytes,
                        actual: info.size,
                    });
                }
                present.push(v.clone());
            }
            progress(Progress { database: db.into(), phase: "check", done: total, total });
        }
        let state = &self.dbs.state;
        let keys: Vec<String> = present.iter().map(|v| v.key.clone()).collect();
        let last = verifications::verified_at(state, &keys).await?;
        let refs: Vec<&Version> = present.iter().collect();
        let now = jiff::Timestamp::now();
        let rotation = sample(&refs, &last, now, settings.verify_period, settings.maintenance_interval);
        let wanted = rotation.len();
        let budget = run_budget(settings.verify_daily_mib, settings.maintenance_interval);
        let mut due = within_budget(rotation, budget);
        if due.len() < wanted {
            tracing::info!(
                due = wanted,
                checked = due.len(),
                budget_bytes = budget,
                "verification spread over later runs (sync.verify_daily_mib)"
            );
        }
        // A size mismatch, or a version that failed its last check, is checked
        // now, whatever the rotation says.
        let failed = verifications::failed_verifications(state).await?;
        for v in &refs {
            let suspect = report.size_mismatches.iter().any(|s| s.key == v.key) || failed.contains(&v.key);
            if suspect && !due.iter().any(|d| d.key == v.key) {
                due.push(v);
            }
        }
        for v in due {
            let r = self.verify(v, progress).await;
            if let Some(p) = &r.problem {
                tracing::warn!(key = %v.key, problem = %p, "a stored version failed verification");
                let db = layout::database_of(&v.key).unwrap_or_default();
                self.notices.event(crate::notify::Event::verify_failed(
                    db,
                    &v.key,
                    p,
                    jiff::Timestamp::now(),
                ));
            }
            verifications::record_verification(
                state,
                &v.key,
                layout::database_of(&v.key).unwrap_or_default(),
                r.problem.as_deref(),
            )
            .await?;
            report.verified.push(Checked { key: v.key.clone(), problem: r.problem });
        }
        verifications::forget_verifications(state, &keys).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        let summary = report.summary();
        if report.healthy() {
            tracing::info!(summary = %summary, "maintenance done");
        } else {
            tracing::warn!(summary = %summary, "maintenance done; problems found");
        }
        let json = serde_json::to_string(&report).unwrap_or_default();
        verifications::record_run(state, &report.at, &summary, &json).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::{Reason, tests::v};

    const DAY: Duration = Duration::from_secs(86400);

    fn keys(s: Vec<&Version>) -> Vec<String> {
        s.iter().map(|v| v.key.clone()).collect()
    }

    #[test]
    fn never_verified_versions_come_first_then_the_oldest_checks() {
        let now: jiff::Timestamp = "2026-03-01T00:00:00Z".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let all: Vec<Version> = (1..=8)
            .map(|i| v(&format!("k{i}"), &format!("2026-01-0{i}T00:00:00Z"), "lab", i, Reason::Manual))
            .collect();
        let refs: Vec<&Version> = all.iter().collect();
        // Nothing verified yet: everything is due.
        assert_eq!(sample(&refs, &HashMap::new(), now, 30 * DAY, 7 * DAY).len(), 8);
        // A fresh install does not download everything at once: the budget
        // takes the least recently verified first, at least one.
        let fresh = sample(&refs, &HashMap::new(), now, 30 * DAY, 7 * DAY);
        let each = fresh[0].stored_bytes;
        assert_eq!(within_budget(fresh.clone(), 3 * each).len(), 3);
        assert_eq!(within_budget(fresh.clone(), 0).len(), 1);
        assert_eq!(within_budget(fresh, u64::MAX).len(), 8);
        assert_eq!(run_budget(64, 7 * DAY), 7 * 64 * 1_048_576);
        assert_eq!(run_budget(64, Duration::from_secs(60)), 64 * 1_048_576);
        // All verified recently: the weekly share (ceil(8 * 7 / 30) = 2), oldest checks first.
        let last: HashMap<String, String> = all
            .iter()
            .enumerate()
            .map(|(i, v)| (v.key.clone(), format!("2026-02-2{}T00:00:00Z", 8 - i.min(7))))
            .collect();
        assert_eq!(keys(sample(&refs, &last, now, 30 * DAY, 7 * DAY)), ["k8", "k7"]);
        // One check older than period - interval: due, on top of nothing else.
        let mut old = last.clone();
        old.insert("k3".into(), "2026-01-15T00:00:00Z".into());
        assert_eq!(keys(sample(&refs, &old, now, 30 * DAY, 7 * DAY)), ["k3", "k8"]);
        // Over a whole period, every version is checked.
        let mut seen = std::collections::BTreeSet::new();
        let mut last = last;
        let mut t = now;
        for _ in 0..5 {
            for v in sample(&refs, &last, t, 30 * DAY, 7 * DAY) {
                seen.insert(v.key.clone());
                last.insert(v.key.clone(), crate::timestamp::format(t));
            }
            t = t.checked_add(jiff::SignedDuration::from_hours(24 * 7)).unwrap_or(t);
        }
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn the_summary_counts_everything() {
        let r = MaintenanceReport {
            checked: 4,
            moved: vec![Moved { key: "a".into(), from: "STANDARD_IA".into(), to: "STANDARD".into() }],
            missing: vec!["b".into()],
            verified: vec![
                Checked { key: "c".into(), problem: None },
                Checked { key: "d".into(), problem: Some("bad".into()) },
            ],
            ..Default::default()
        };
        assert!(!r.healthy());
        assert_eq!(
            r.summary(),
            "4 checked, 1 moved to the configured class, 1 missing, 0 size mismatches, 1 verified ok, \
             1 failed verification, 0 deleted by retention, 0 orphans kept, 0 orphans deleted, 0 errors, in 0.0s"
        );
    }
}

//! What `casmanctl sync status` reports, transport-free: the backup settings,
//! whether the store answers (one conditional manifest GET per database),
//! each database's backup state (writes since the last backup, pending
//! retries, newer versions at other sites), the quota of this site and of
//! the fleet, and maintenance.

use std::time::Duration;

use super::{layout, manifest::Version, service::BackupService};
use crate::{
    backup::quota::{QuotaReport, ReplicationWindow, replication_window},
    config::Config,
    db::sync_state,
    error::Result,
};

/// A backup waiting to be retried (table `pending_backups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Why the backup was wanted.
    pub reason: Option<String>,
    /// When it first failed.
    pub first_failed_at: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// When it is tried next.
    pub next_attempt_at: Option<String>,
}

impl From<sync_state::Pending> for Pending {
    fn from(p: sync_state::Pending) -> Pending {
        Pending {
            reason: Some(p.reason),
            first_failed_at: Some(p.first_failed_at),
            attempts: p.attempts,
            last_error: p.last_error,
            next_attempt_at: p.next_attempt_at,
        }
    }
}

/// The backup state of one database.
#[derive(Debug, Clone)]
pub struct DatabaseSync {
    /// File name.
    pub name: &'static str,
    /// Size of the live file.
    pub size_bytes: u64,
    /// Writes counted since its last stored backup.
    pub writes_since_backup: i64,
    /// When the last backup was stored (or found unchanged).
    pub last_backup_at: Option<String>,
    /// Its key.
    pub last_backup_key: Option<String>,
    /// A failed backup waiting to be retried.
    pub pending: Option<Pending>,
    /// The version the live file descends from.
    pub base: Option<sync_state::Base>,
    /// Another site's head whose content differs from the base.
    pub newer: Option<Version>,
    /// Versions in the manifest (when it could be read).
    pub versions: Option<usize>,
    /// Their stored bytes.
    pub stored_bytes: u64,
    /// The last backup this site recorded, when the store no longer lists it
    /// (the bucket was emptied or its manifest lost): that state must be
    /// stored again.
    pub lost: Option<String>,
    /// Versions waiting in the offline spool for the store to answer.
    pub spooled: usize,
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct SyncStatus {
    /// This site.
    pub site: String,
    /// Keep this many versions per database.
    pub keep_versions: u32,
    /// Back up after this many writes.
    pub backup_on_scan_count: u32,
    /// ...or this long after the last backup.
    pub backup_on_hours: Duration,
    /// The configured storage class.
    pub storage_class: String,
    /// How often maintenance runs.
    pub maintenance_interval: Duration,
    /// Every version verified within this period.
    pub verify_period: Duration,
    /// `None` when backups are disabled; else whether the store answered.
    pub reachable: Option<bool>,
    /// Why it did not.
    pub error: Option<String>,
    /// Per database.
    pub databases: Vec<DatabaseSync>,
    /// Quota use.
    pub quota: QuotaReport,
    /// The replication window configured and in effect.
    pub replication: ReplicationWindow,
    /// When maintenance last ran and its summary.
    pub last_maintenance: Option<(String, String)>,
    /// When it runs next (UTC ISO); `None`: due now.
    pub next_maintenance: Option<String>,
}

/// `last_key` (this site's last backup) when `m` does not list it: the store
/// lost it. (Retention never deletes the newest version nor a site's base,
/// which the last backup is.)
pub fn lost_backup(m: &super::manifest::Manifest, last_key: Option<&str>) -> Option<String> {
    last_key.filter(|k| !k.is_empty() && m.find(k).is_none()).map(str::to_owned)
}

/// The next maintenance after one at `last`, or `None` when it is due.
pub fn next_maintenance(last: Option<&str>, interval: Duration, now: jiff::Timestamp) -> Option<String> {
    let last: jiff::Timestamp = last?.parse().ok()?;
    let next = last.checked_add(jiff::SignedDuration::try_from(interval).ok()?).ok()?;
    (next > now).then(|| crate::timestamp::format(next))
}

impl BackupService {
    /// Gathers the sync status.
    pub async fn sync_status(&self, cfg: &Config) -> Result<SyncStatus> {
        let state = &self.dbs.state;
        let mut reachable = (!self.store.is_none()).then_some(true);
        let mut error = None;
        let mut databases = Vec::new();
        for name in layout::BACKED_UP {
            let act = sync_state::activity(state, name).await?;
            let (writes, last_at, last_key) =
                (act.writes_since_backup, act.last_backup_at, act.last_backup_key);
            let base = sync_state::base(state, name).await?;
            let manifest = if reachable == Some(true) {
                match self.manifest(name).await {
                    Ok((m, _)) => Some(m),
                    Err(e) => {
                        reachable = Some(false);
                        error = Some(e.to_string());
                        None
                    }
                }
            } else {
                None
            };
            let lost = manifest.as_ref().and_then(|m| lost_backup(m, last_key.as_deref()));
            let newer = manifest.as_ref().and_then(|m| {
                m.head()
                    .filter(|h| h.site != self.site)
                    .filter(|h| base.as_ref().is_none_or(|b| b.sha256 != h.sha256))
                    .cloned()
            });
            databases.push(DatabaseSync {
                name,
                size_bytes: self.db(name)?.size_bytes(),
                writes_since_backup: writes,
                last_backup_at: last_at,
                last_backup_key: last_key,
                pending: sync_state::pending(state)
                    .await?
                    .into_iter()
                    .find(|p| p.database == name)
                    .map(Pending::from),
                base,
                newer,
                versions: manifest.as_ref().map(|m| m.versions.len()),
                stored_bytes: manifest.as_ref().map_or(0, |m| m.stored_bytes()),
                lost,
                spooled: self.spooled(name),
            });
        }
        let last_maintenance = super::maintenance::last_maintenance(state).await;
        let quota = self.quota().report().await;
        let next_maintenance = next_maintenance(
            last_maintenance.as_ref().map(|(at, _)| at.as_str()),
            cfg.sync.maintenance_interval,
            jiff::Timestamp::now(),
        );
        Ok(SyncStatus {
            site: self.site.clone(),
            keep_versions: cfg.sync.keep_versions,
            backup_on_scan_count: cfg.sync.backup_on_scan_count,
            backup_on_hours: cfg.sync.backup_on_hours,
            storage_class: cfg.sync.storage_class.clone(),
            maintenance_interval: cfg.sync.maintenance_interval,
            verify_period: cfg.sync.verify_period,
            reachable,
            error,
            databases,
            replication: replication_window(&cfg.sync, &quota, jiff::Timestamp::now()),
            quota,
            last_maintenance,
            next_maintenance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_backup_missing_from_the_manifest_is_lost() {
        let mut m = super::super::manifest::Manifest::new("parts.db");
        assert_eq!(lost_backup(&m, Some("k1")).as_deref(), Some("k1"));
        assert_eq!(lost_backup(&m, None), None);
        m.versions.push(super::super::manifest::tests::v(
            "k1",
            "2026-01-01T00:00:00Z",
            "lab",
            1,
            super::super::manifest::Reason::Manual,
        ));
        assert_eq!(lost_backup(&m, Some("k1")), None);
    }

    #[test]
    fn maintenance_is_due_when_never_run_or_overdue() {
        let now: jiff::Timestamp = "2026-03-10T00:00:00Z".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let week = Duration::from_secs(7 * 86400);
        assert_eq!(next_maintenance(None, week, now), None);
        assert_eq!(next_maintenance(Some("2026-03-01T00:00:00Z"), week, now), None);
        assert_eq!(
            next_maintenance(Some("2026-03-05T00:00:00Z"), week, now).as_deref(),
            Some("2026-03-12T00:00:00Z")
        );
    }
}

//! `Backups.GetSyncStatus` and `Backups.Maintain`: conversions from the
//! domain's status and maintenance report to `casman.v1` messages.

use casman_proto::v1::{
    DatabaseSyncStatus, MaintenanceReport, MaintenanceStatus, MovedVersion, PendingBackup, QuotaItem,
    QuotaStatus, QuotaUsage, ReplicationWindow, SiteLedger, SizeMismatch, StoreReachability, SyncSettings,
    SyncStatus, VerifyResult,
};

use super::backups::version_message;
use crate::{
    backup::quota::{self, Usage},
    backup::{maintenance, status},
    config::QuotaConfig,
    context::Context,
    error::Result,
};

fn item(used: u64, limit: u64, fraction: f64, limits: &QuotaConfig) -> QuotaItem {
    QuotaItem { used, limit, fraction, level: quota::level(fraction, limits).as_str().to_owned() }
}

fn usage(u: &Usage, limits: &QuotaConfig) -> QuotaUsage {
    let [(_, s), (_, a), (_, b)] = quota::fractions(u, limits);
    let storage_limit = (limits.storage_gb * 1024.0 * 1024.0 * 1024.0) as u64;
    QuotaUsage {
        storage: Some(item(u.storage_bytes, storage_limit, s, limits)),
        class_a: Some(item(u.class_a, limits.class_a_operations, a, limits)),
        class_b: Some(item(u.class_b, limits.class_b_operations, b, limits)),
    }
}

/// A conflict standing after an exchange, as the API says it.
pub fn conflict_message(c: crate::db::changes::Conflict) -> casman_proto::v1::Conflict {
    casman_proto::v1::Conflict { kind: c.kind, subject: c.subject, with: c.with, detail: c.detail }
}

/// The sync status of the daemon in `ctx`.
pub async fn get(ctx: &Context) -> Result<SyncStatus> {
    let s = ctx.backups().sync_status(ctx.config()).await?;
    let backend = ctx.status().await.backend;
    let q = &s.quota;
    let mut conflicts = std::collections::HashMap::new();
    for d in &s.databases {
        conflicts.insert(d.name, ctx.backups().conflicts(d.name).await?);
    }
    let databases = s
        .databases
        .iter()
        .map(|d: &status::DatabaseSync| DatabaseSyncStatus {
            conflicts: conflicts
                .remove(d.name)
                .unwrap_or_default()
                .into_iter()
                .map(conflict_message)
                .collect(),
            database: d.name.to_owned(),
            size_bytes: d.size_bytes,
            writes_since_backup: d.writes_since_backup,
            last_backup_at: d.last_backup_at.clone().unwrap_or_default(),
            last_backup_key: d.last_backup_key.clone().unwrap_or_default(),
            pending: d.pending.as_ref().map(|p| PendingBackup {
                reason: p.reason.clone().unwrap_or_default(),
                first_failed_at: p.first_failed_at.clone().unwrap_or_default(),
                attempts: p.attempts,
                last_error: p.last_error.clone().unwrap_or_default(),
                next_attempt_at: p.next_attempt_at.clone().unwrap_or_default(),
            }),
            base_key: d.base.as_ref().map(|b| b.key.clone()).unwrap_or_default(),
            base_sha256: d.base.as_ref().map(|b| b.sha256.clone()).unwrap_or_default(),
            newer: d.newer.as_ref().map(version_message),
            versions: d.versions.map_or(-1, |n| n as i64),
            stored_bytes: d.stored_bytes,
            lost: d.lost.clone().unwrap_or_default(),
            spooled: Some(d.spooled as u32),
        })
        .collect();
    Ok(SyncStatus {
        site: s.site.clone(),
        settings: Some(SyncSettings {
            backend: backend.kind.to_owned(),
            location: backend.location,
            keep_versions: s.keep_versions,
            backup_on_scan_count: s.backup_on_scan_count,
            backup_on_seconds: s.backup_on_hours.as_secs(),
            storage_class: s.storage_class.clone(),
            maintenance_interval_seconds: s.maintenance_interval.as_secs(),
            verify_period_seconds: s.verify_period.as_secs(),
        }),
        store: Some(StoreReachability {
            enabled: s.reachable.is_some(),
            reachable: s.reachable == Some(true),
            error: s.error.clone().unwrap_or_default(),
        }),
        databases,
        quota: Some(QuotaStatus {
            enforced: q.enforced,
            month: q.site.month.clone(),
            site: Some(usage(&q.site, &q.limits)),
            fleet: Some(usage(&q.fleet, &q.limits)),
            backups_this_month: q.backups,
            restores_this_month: q.restores,
            warn_threshold: q.limits.warn_threshold,
            block_threshold: q.limits.block_threshold,
            other_sites: q
                .other_sites
                .iter()
                .map(|(site, l)| SiteLedger {
                    site: site.clone(),
                    month: l.month.clone(),
                    class_a: l.class_a,
                    class_b: l.class_b,
                    updated_at: l.updated_at.clone(),
                })
                .collect(),
        }),
        maintenance: Some(MaintenanceStatus {
            last_at: s.last_maintenance.as_ref().map(|(at, _)| at.clone()).unwrap_or_default(),
            last_summary: s.last_maintenance.as_ref().map(|(_, m)| m.clone()).unwrap_or_default(),
            next_at: s.next_maintenance.clone().unwrap_or_default(),
            due: s.next_maintenance.is_none(),
        }),
        replication: Some(ReplicationWindow {
            configured_ms: s.replication.configured.as_millis() as u64,
            effective_ms: s.replication.effective.as_millis() as u64,
            widened: s.replication.widened(),
            class_a_fraction: s.replication.class_a_fraction,
            warn_threshold: s.replication.warn_threshold,
            reason: s.replication.reason(),
        }),
    })
}

/// The API message of a maintenance report.
pub fn report_message(r: &maintenance::MaintenanceReport) -> MaintenanceReport {
    MaintenanceReport {
        at: r.at.clone(),
        checked: r.checked,
        moved: r
            .moved
            .iter()
            .map(|m| MovedVersion { key: m.key.clone(), from_class: m.from.clone(), to_class: m.to.clone() })
            .collect(),
        missing: r.missing.clone(),
        size_mismatches: r
            .size_mismatches
            .iter()
            .map(|m| SizeMismatch { key: m.key.clone(), expected: m.expected, actual: m.actual })
            .collect(),
        verified: r
            .verified
            .iter()
            .map(|c| VerifyResult {
                key: c.key.clone(),
                ok: c.problem.is_none(),
                problem: c.problem.clone().unwrap_or_default(),
                checksum_checked: c.problem.is_none(),
            })
            .collect(),
        deleted: r.deleted.clone(),
        orphans: r.orphans.clone(),
        orphans_deleted: r.orphans_deleted.clone(),
        errors: r.errors.clone(),
        duration_ms: r.duration_ms,
        summary: r.summary(),
    }
}

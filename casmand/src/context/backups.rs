//! Backups, restores, sync and merge between sites, and store maintenance,
//! as asked for by a caller (the scheduler's own backups are not requests
//! and are not audited: see `crate::schedule`).

use serde_json::json;

use super::{Context, caller::Caller};
use crate::{
    backup::{
        maintenance::MaintenanceReport,
        manifest::Reason,
        rebuild::Repair,
        restore::{Restored, Verified},
        revert::Reverted,
        service::{Outcome, ProgressFn},
        sync::{MergeOutcome, SyncOutcome},
    },
    db::{activity::Activity, merge::Prefer},
    error::Result,
};

impl Context {
    /// Backs up database `db` now (`Reason::Manual`), reporting to `progress`.
    pub async fn backup_now(&self, caller: &Caller, db: &str, progress: ProgressFn<'_>) -> Result<Outcome> {
        let o = self.backups().backup(db, Reason::Manual, progress).await?;
        caller.audit(self, "sync.backup", db, json!({"key": o.version.key, "uploaded": o.uploaded})).await;
        Ok(o)
    }

    /// Replaces the live database with the version `key`, after storing a
    /// safety backup of the current state when `safety_backup`. (Who may
    /// restore in place is the door's to decide: an admin.)
    pub async fn restore_in_place(
        &self,
        caller: &Caller,
        key: &str,
        safety_backup: bool,
        progress: ProgressFn<'_>,
    ) -> Result<Restored> {
        let svc = self.backups();
        let done = svc.restore_in_place(key, safety_backup, progress).await?;
        svc.quota().count_restore();
        let db = crate::backup::layout::database_of(&done.version.key)?;
        let safety = done.safety_backup.as_ref().map(|v| v.key.clone());
        let detail = json!({"key": done.version.key, "safety_backup": safety, "missing_parts": done.missing_parts.listed,
                "missing_parts_total": done.missing_parts.total, "missing_parts_file": done.missing_parts.file});
        caller.audit_activity(self, "sync.restore", db, detail, Activity::Restored { database: db }).await;
        Ok(done)
    }

    /// Downloads and verifies the version `key` for a caller that takes the
    /// file away (nothing local changes; counted as a restore).
    pub async fn restore_to_client(&self, key: &str, progress: ProgressFn<'_>) -> Result<Verified> {
        let svc = self.backups();
        let version = svc.find_version(key).await?;
        let verified = svc.fetch_verified(&version, progress).await?;
        svc.quota().count_restore();
        Ok(verified)
    }

    /// Brings database `db` up to the store's head (or, with `force`, takes
    /// it over local changes); a pulled file is announced as replaced.
    pub async fn sync_database(
        &self,
        caller: &Caller,
        db: &'static str,
        force: bool,
        progress: ProgressFn<'_>,
    ) -> Result<SyncOutcome> {
        let outcome = self.backups().sync(db, force, progress).await?;
        let detail = json!({"state": outcome.state(), "force": force});
        self.announce_received(db, &outcome).await;
        if matches!(outcome, SyncOutcome::Pulled { .. }) {
            caller.audit_activity(self, "sync.sync", db, detail, Activity::Restored { database: db }).await;
        } else {
            caller.audit(self, "sync.sync", db, detail).await;
        }
        Ok(outcome)
    }

    /// The daemon's own pull at start (`sync.sync_on_start`): like
    /// [`Context::sync_database`] without `force`, announced the same way,
    /// but not audited (no one asked for it; it is logged by the scheduler).
    pub async fn sync_on_start(&self, db: &'static str, progress: ProgressFn<'_>) -> Result<SyncOutcome> {
        let outcome = self.backups().sync(db, false, progress).await?;
        self.announce_received(db, &outcome).await;
        if matches!(outcome, SyncOutcome::Pulled { .. }) {
            self.record(Activity::Restored { database: db }).await;
        }
        Ok(outcome)
    }

    /// The scheduler's exchange (`sync.pull_every`, after backups): this
    /// site's changes published, the other sites' applied; not audited (no
    /// one asked for it; logged).
    pub async fn exchange(&self, databases: &[&'static str]) -> Result<()> {
        // A new, empty site starts from the newest version, as `sync sync` does.
        let mut rest = Vec::new();
        for &db in databases {
            let pulled = self.backups().is_new(db).await?
                && matches!(self.sync_on_start(db, &|_| {}).await?, SyncOutcome::Pulled { .. });
            if !pulled {
                rest.push(db);
            }
        }
        for (db, ex) in self.backups().exchange(&rest).await? {
            self.announce_received(db, &SyncOutcome::Exchanged(ex)).await;
        }
        Ok(())
    }

    /// Other sites' changes applied by `outcome` are announced (web views
    /// refresh; not counted as writes to back up: they are in the store).
    async fn announce_received(&self, db: &'static str, outcome: &SyncOutcome) {
        if let SyncOutcome::Exchanged(ex) = outcome
            && ex.applied.applied > 0
        {
            self.record(Activity::Received { database: db, changes: ex.applied.applied }).await;
        }
    }

    /// Merges the store's head of database `db` into the live file.
    pub async fn merge(
        &self,
        caller: &Caller,
        db: &'static str,
        prefer: Option<Prefer>,
        progress: ProgressFn<'_>,
    ) -> Result<MergeOutcome> {
        let outcome = self.backups().merge(db, prefer, progress).await?;
        if outcome.merged.applied {
            let added: u64 = outcome.merged.added.iter().map(|(_, n)| n).sum();
            caller.audit_write(self, "sync.merge", db, json!({"rows_added": added})).await;
        }
        Ok(outcome)
    }

    /// Rebuilds the manifest of `db` from the store's objects when it is
    /// missing or unreadable (see `backup::rebuild`). (Who may repair is the
    /// door's to decide: an admin.)
    pub async fn repair_manifest(&self, caller: &Caller, db: &str) -> Result<Repair> {
        let db = crate::backup::layout::databases(&[db.to_owned()])?.first().copied().ok_or_else(|| {
            crate::error::Error::invalid(format!("database {db:?}: expected parts.db or assembled_casm.db"))
        })?;
        let done = self.backups().repair(db).await?;
        let detail = json!({"repaired": done.repaired, "versions": done.versions, "detail": done.detail});
        caller.audit(self, "sync.repair", db, detail).await;
        Ok(done)
    }

    /// Runs the store's maintenance now (storage classes, retention, orphans).
    pub async fn maintain(&self, caller: &Caller, progress: ProgressFn<'_>) -> Result<MaintenanceReport> {
        let report = self.backups().maintain(progress).await?;
        caller.audit(self, "sync.maintain", "", json!({"summary": report.summary()})).await;
        Ok(report)
    }

    /// Previews (`confirm` = `None`) or writes the compensating changes
    /// that bring the database of version `key` back to its state, for
    /// every site (`crate::db::revert`); written changes are audited. (Who
    /// may revert is the door's to decide: an admin.)
    pub async fn revert(
        &self,
        caller: &Caller,
        key: &str,
        confirm: Option<&str>,
        progress: ProgressFn<'_>,
    ) -> Result<Reverted> {
        let svc = self.backups();
        let done = svc.revert(key, confirm, progress).await?;
        svc.quota().count_restore();
        if done.applied {
            let db = crate::backup::layout::database_of(&done.version.key)?;
            let detail = json!({"version": done.version.key, "changes": done.plan.steps.len(),
                                "digest": done.plan.digest});
            caller.audit_write(self, "sync.revert", db, detail).await;
        }
        Ok(done)
    }
}

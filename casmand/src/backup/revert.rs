//! `casmanctl sync revert KEY`: every site back to a stored version's state
//! by compensating changes (`crate::db::revert`), where `sync restore` puts
//! the version's file back at this site only (disaster recovery) and the
//! site then catches up with every change the store holds.

use super::{
    layout,
    manifest::Version,
    service::{BackupService, ProgressFn},
};
use crate::{
    db::revert::{self, Plan},
    error::Result,
};

/// What a revert showed or did.
#[derive(Debug, Clone)]
pub struct Reverted {
    /// The version whose state the database returns to.
    pub version: Version,
    /// The compensating changes.
    pub plan: Plan,
    /// Whether they were written (false for a preview).
    pub applied: bool,
}

impl BackupService {
    /// The compensating changes that bring the database of version `key`
    /// back to its state (`confirm` = `None`: a preview), or, with the
    /// digest of a preview, writes them if they are still those, then
    /// publishes them to the other sites.
    pub async fn revert(
        &self,
        key: &str,
        confirm: Option<&str>,
        progress: ProgressFn<'_>,
    ) -> Result<Reverted> {
        let version = self.find_version(key).await?;
        let db_name = layout::database_of(&version.key)?;
        let db = self.db(db_name)?.clone();
        // The other sites' changes first: the revert answers for what the
        // store holds, not only what this site had received.
        if self.exchange_changes {
            self.exchange(&[db_name]).await?;
        }
        let _guard = self.lock(db_name).await?;
        let verified = self.fetch_verified(&version, progress).await?;
        self.to_current_schema(&verified).await?;
        let Some(digest) = confirm else {
            let plan = revert::preview(&db, &verified.file).await?;
            return Ok(Reverted { version, plan, applied: false });
        };
        let plan = revert::apply(&db, &verified.file, digest).await?;
        drop(_guard);
        if self.exchange_changes
            && !plan.steps.is_empty()
            && let Err(e) = self.publish_changes(db_name).await
        {
            tracing::warn!(database = db_name, error = %e, "revert written; publishing it waits for the next sync");
        }
        Ok(Reverted { version, plan, applied: true })
    }
}

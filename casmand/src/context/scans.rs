//! Scans: connect, disconnect, remove a part's connections (through the
//! group commit), and the repair of the kept state.

use serde_json::json;

use super::{Context, caller::Caller};
use crate::{
    db::{
        ASSEMBLED_DB,
        assembly::{self, Drift},
        scans::{self, Applied, ScanOp, canonical_id},
    },
    error::{Error, Result},
    inventory::Edge,
};

impl Context {
    /// Connects `source -> target` as scanned (any case, SNAP ports in either
    /// form) for `caller`: resolves both parts, then checks every rule and
    /// appends the event in a group-committed transaction; audited.
    pub async fn connect(&self, caller: &Caller, source: &str, target: &str) -> Result<Edge> {
        let [source, target] = scans::resolve_all(&self.dbs().parts, [source, target]).await?;
        match self.scan(caller, ScanOp::Connect { source, target }).await? {
            Applied::Connected(e) => Ok(e),
            other => Err(Error::internal("connect", format!("{other:?}"))),
        }
    }

    /// Disconnects `a` and `b` (either order, as scanned) for `caller`.
    pub async fn disconnect(&self, caller: &Caller, a: &str, b: &str) -> Result<Edge> {
        let (a, b) = (canonical_id(a), canonical_id(b));
        if a.is_empty() || b.is_empty() {
            return Err(Error::invalid("disconnect needs two part numbers"));
        }
        match self.scan(caller, ScanOp::Disconnect { a, b }).await? {
            Applied::Disconnected(e) => Ok(e),
            other => Err(Error::internal("disconnect", format!("{other:?}"))),
        }
    }

    /// Disconnects every current connection of `part` for `caller`; returns them.
    pub async fn remove_part(&self, caller: &Caller, part: &str) -> Result<Vec<Edge>> {
        let part = canonical_id(part);
        if part.is_empty() {
            return Err(Error::invalid("remove needs a part number"));
        }
        match self.scan(caller, ScanOp::Remove { part }).await? {
            Applied::Removed(e) => Ok(e),
            other => Err(Error::internal("remove", format!("{other:?}"))),
        }
    }

    /// Submits one write to the group commit; once it is durable (with its
    /// audit entry and write count), logs it. The group commit announces the
    /// activity, once per batch.
    async fn scan(&self, caller: &Caller, op: ScanOp) -> Result<Applied> {
        let (applied, audited) = self.inner.scans.submit(op, caller.clone()).await?;
        if let Some(a) = audited {
            caller.log_applied(a.action, ASSEMBLED_DB, &a.detail);
        }
        Ok(applied)
    }

    /// Compares the kept state of assembled_casm.db with what its log says;
    /// with `repair`, rebuilds the kept state from the log when they differ
    /// (audited). Returns the drift found and whether it was repaired.
    pub async fn check_current_state(&self, caller: &Caller, repair: bool) -> Result<(Drift, bool)> {
        let db = &self.dbs().assembled;
        let drift = assembly::check(db).await?;
        let repaired = repair && !drift.is_clean();
        if repaired {
            let n = assembly::rebuild_db(db).await?;
            let detail = json!({"missing": drift.missing.len(), "extra": drift.extra.len(),
                                "misfiled": drift.misfiled, "connections": n});
            caller.audit(self, "database.rebuild_current_state", db.name, detail).await;
        }
        Ok((drift, repaired))
    }
}

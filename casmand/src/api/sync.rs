//! `casman.v1.Sync`: sync and merge between sites.

use casman_proto::v1::{
    MergeConflict, MergeEvent, MergeRequest, MergeResult, RevertRequest, RevertResponse, RevertStep,
    SyncEvent, SyncRequest, SyncResult, TableRows, merge_event, sync_event, sync_server::Sync,
};
use tonic::{Request, Response, Status};

use super::{
    backups::version_message,
    streaming::{self, EventStream, streamed},
};
use crate::{
    authz,
    backup::{
        layout,
        sync::{MergeOutcome, SyncOutcome},
    },
    context::Context,
    db::merge::Prefer,
    error::Error,
};

/// Implementation of the Sync service.
#[derive(Debug, Clone)]
pub struct SyncApi {
    ctx: Context,
}

impl SyncApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        SyncApi { ctx }
    }
}

fn result_message(db: &str, outcome: SyncOutcome) -> SyncResult {
    let mut r = SyncResult { database: db.to_owned(), state: outcome.state().into(), ..Default::default() };
    match outcome {
        SyncOutcome::UpToDate(v) => {
            r.message = format!("{db} is up to date");
            r.version = v.as_ref().map(version_message);
        }
        SyncOutcome::Pulled { version, safety, forced } => {
            r.message = match &safety {
                Some(s) if forced => format!(
                    "{db}: replaced by {} from site {} (forced; the local state is kept as {})",
                    version.key, version.site, s.key
                ),
                Some(s) => format!(
                    "{db}: replaced by {} from site {} (local changes kept as {})",
                    version.key, version.site, s.key
                ),
                None => format!("{db}: downloaded {} from site {}", version.key, version.site),
            };
            r.version = Some(version_message(&version));
            r.local = safety.as_ref().map(version_message);
        }
        SyncOutcome::LocalAhead { unsaved_writes } => {
            r.unsaved_writes = unsaved_writes;
            r.message = format!(
                "{db}: nothing newer to pull; {unsaved_writes} local write(s) not yet backed up \
                 (casmanctl sync backup)"
            );
        }
        SyncOutcome::Diverged(d) => {
            r.message = format!(
                "{db} has diverged: site {} stored {} ({} version(s) since the common base) while this site \
                 changed it too; your changes are kept as {} and the local file was not replaced. \
                 Run `casmanctl sync merge` to combine both, or `casmanctl sync sync --force` to take the \
                 other site's version",
                d.remote.site, d.remote.key, d.remote_versions, d.local.key
            );
            r.local = Some(version_message(&d.local));
            r.remote = Some(version_message(&d.remote));
            r.remote_versions = d.remote_versions as u32;
            r.rows = d
                .row_differences
                .into_iter()
                .map(|(table, local, remote)| TableRows { table, local, remote })
                .collect();
        }
        SyncOutcome::Exchanged(ex) => {
            r.published_changes = ex.published_changes as i64;
            r.applied_changes = ex.applied.applied as i64;
            r.fetched_segments = ex.fetched_segments as u32;
            let mut said = format!(
                "{db}: {} change(s) published, {} change(s) from other sites applied",
                ex.published_changes, ex.applied.applied
            );
            if ex.applied.superseded > 0 {
                said.push_str(&format!(
                    " ({} older than what this site holds, kept in the log)",
                    ex.applied.superseded
                ));
            }
            if !ex.conflicts.is_empty() {
                said.push_str(&format!(
                    "; {} conflict(s) standing (casmanctl database check lists them)",
                    ex.conflicts.len()
                ));
            }
            r.message = said;
            r.conflicts = ex.conflicts.into_iter().map(crate::api::sync_status::conflict_message).collect();
        }
    }
    r
}

fn merge_message(db: &str, m: MergeOutcome) -> MergeResult {
    MergeResult {
        database: db.to_owned(),
        applied: m.merged.applied,
        conflicts: m
            .merged
            .conflicts
            .into_iter()
            .map(|c| MergeConflict { kind: c.kind.into(), key: c.key, local: c.local, remote: c.remote })
            .collect(),
        added: m
            .merged
            .added
            .into_iter()
            .map(|(t, n)| TableRows { table: t.into(), local: n as i64, remote: 0 })
            .collect(),
        version: m.version.as_ref().map(version_message),
        remote: Some(version_message(&m.remote)),
        up_to_date: m.up_to_date,
    }
}

#[tonic::async_trait]
impl Sync for SyncApi {
    type SyncDatabasesStream = EventStream<SyncEvent>;

    async fn sync_databases(
        &self,
        req: Request<SyncRequest>,
    ) -> Result<Response<Self::SyncDatabasesStream>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let dbs = layout::databases(&r.databases)?;
        if r.force {
            authz::require_admin(caller.peer, self.ctx.admin_gid(), "a forced sync")?;
        }
        let ctx = self.ctx.clone();
        Ok(Response::new(streamed(move |tx| async move {
            let progress =
                streaming::progress(&tx, |p| SyncEvent { event: Some(sync_event::Event::Progress(p)) });
            for db in dbs {
                let msg = match ctx.sync_database(&caller, db, r.force, &progress).await {
                    Ok(outcome) => {
                        Ok(SyncEvent { event: Some(sync_event::Event::Result(result_message(db, outcome))) })
                    }
                    Err(e) => Err(Status::from(e)),
                };
                if !streaming::send(&tx, msg).await {
                    return;
                }
            }
        })))
    }

    type MergeStream = EventStream<MergeEvent>;

    async fn merge(&self, req: Request<MergeRequest>) -> Result<Response<Self::MergeStream>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let dbs = layout::databases(&r.databases)?;
        let prefer = match r.prefer.trim() {
            "" => None,
            "local" => Some(Prefer::Local),
            "remote" => Some(Prefer::Remote),
            other => return Err(Error::invalid(format!("prefer {other:?}: expected local or remote")).into()),
        };
        let ctx = self.ctx.clone();
        Ok(Response::new(streamed(move |tx| async move {
            let progress =
                streaming::progress(&tx, |p| MergeEvent { event: Some(merge_event::Event::Progress(p)) });
            for db in dbs {
                let msg = match ctx.merge(&caller, db, prefer, &progress).await {
                    Ok(outcome) => {
                        Ok(MergeEvent { event: Some(merge_event::Event::Result(merge_message(db, outcome))) })
                    }
                    Err(e) => Err(Status::from(e)),
                };
                if !streaming::send(&tx, msg).await {
                    return;
                }
            }
        })))
    }

    async fn revert(&self, req: Request<RevertRequest>) -> Result<Response<RevertResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        authz::require_admin(caller.peer, self.ctx.admin_gid(), "reverting to a version")?;
        let confirm = Some(r.confirm.trim()).filter(|c| !c.is_empty());
        let done = self.ctx.revert(&caller, &r.key, confirm, &|_| {}).await?;
        let db = layout::database_of(&done.version.key)?;
        let total = done.plan.steps.len();
        let message = match (done.applied, total) {
            (_, 0) => format!("{db} already holds the state of {}; nothing to revert", done.version.key),
            (false, n) => format!(
                "{n} compensating change(s) would bring {db} back to {}; confirm with the digest to write them",
                done.version.key
            ),
            (true, n) => format!(
                "{n} compensating change(s) written: {db} is back to the state of {}; they reach the other \
                 sites with the next sync",
                done.version.key
            ),
        };
        Ok(Response::new(RevertResponse {
            database: db.to_owned(),
            version: Some(version_message(&done.version)),
            total: total as u64,
            digest: done.plan.digest,
            applied: done.applied,
            message,
            steps: done
                .plan
                .steps
                .into_iter()
                .take(REVERT_STEPS_SHOWN)
                .map(|s| RevertStep {
                    table: s.table,
                    key: s.key,
                    action: s.action.into(),
                    before: s.before,
                    after: s.after,
                })
                .collect(),
        }))
    }
}

/// Most compensating changes a revert's answer lists (all are counted).
const REVERT_STEPS_SHOWN: usize = 2_000;

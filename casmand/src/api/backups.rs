//! `casman.v1.Backups`: backup, list, restore, verify — long operations stream
//! their progress.

use casman_proto::v1::{
    BackupDone, BackupEvent, BackupRequest, BackupVersion, GetSyncStatusRequest, ListBackupsRequest,
    ListBackupsResponse, MaintainEvent, MaintainRequest, RepairRequest, RepairResponse, RepairResult,
    RestoreDone, RestoreEvent, RestoreRequest, SyncStatus, VerifyEvent, VerifyRequest, VerifyResult,
    backup_event, backups_server::Backups, maintain_event, restore_event, verify_event,
};
use tonic::{Request, Response, Status};

use super::streaming::{self, EventStream, Sender, streamed};
use crate::{
    authz,
    backup::{layout, manifest::Version, quota::Op, service::Progress},
    context::Context,
    error::Error,
};

/// Implementation of the Backups service.
#[derive(Debug, Clone)]
pub struct BackupsApi {
    ctx: Context,
}

impl BackupsApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        BackupsApi { ctx }
    }
}

/// The API message of a version.
pub fn version_message(v: &Version) -> BackupVersion {
    BackupVersion {
        key: v.key.clone(),
        database: layout::database_of(&v.key).unwrap_or_default().to_owned(),
        sha256: v.sha256.clone(),
        raw_bytes: v.raw_bytes,
        stored_bytes: v.stored_bytes,
        created_at: v.created_at.clone(),
        site: v.site.clone(),
        seq: v.seq,
        reason: v.reason.as_str().to_owned(),
        codec: v.codec.clone(),
        parent: v.parent.clone().unwrap_or_default(),
        record_counts: v.record_counts.clone().into_iter().collect(),
        schema_version: v.schema_version,
        branch: v.branch,
        casman_version: v.casman_version.clone(),
    }
}

#[tonic::async_trait]
impl Backups for BackupsApi {
    type BackupStream = EventStream<BackupEvent>;

    async fn backup(&self, req: Request<BackupRequest>) -> Result<Response<Self::BackupStream>, Status> {
        let caller = super::caller::of(&req)?;
        let dbs = layout::databases(&req.into_inner().databases)?;
        let ctx = self.ctx.clone();
        Ok(Response::new(streamed(move |tx| async move {
            let progress =
                streaming::progress(&tx, |p| BackupEvent { event: Some(backup_event::Event::Progress(p)) });
            for db in dbs {
                let msg = match ctx.backup_now(&caller, db, &progress).await {
                    Ok(o) => Ok(BackupEvent {
                        event: Some(backup_event::Event::Done(BackupDone {
                            version: Some(version_message(&o.version)),
                            uploaded: o.uploaded,
                        })),
                    }),
                    Err(e) => Err(Status::from(e)),
                };
                if !streaming::send(&tx, msg).await {
                    return;
                }
            }
        })))
    }

    async fn list_backups(
        &self,
        req: Request<ListBackupsRequest>,
    ) -> Result<Response<ListBackupsResponse>, Status> {
        let r = req.into_inner();
        let wanted = if r.database.trim().is_empty() { vec![] } else { vec![r.database] };
        self.ctx.backups().check_quota(Op::List).await?;
        let mut versions = Vec::new();
        for db in layout::databases(&wanted)? {
            let (m, _) = self.ctx.backups().manifest(db).await?;
            versions.extend(m.newest_first().into_iter().map(version_message));
        }
        // Stable: within one second, each manifest's own order (site, sequence) stays.
        versions.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(Response::new(ListBackupsResponse { versions }))
    }

    type RestoreStream = EventStream<RestoreEvent>;

    async fn restore(&self, req: Request<RestoreRequest>) -> Result<Response<Self::RestoreStream>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let db = layout::database_of(&r.key)?;
        if !r.to_client {
            authz::require_admin(caller.peer, self.ctx.admin_gid(), &format!("restoring {db} in place"))?;
        }
        self.ctx.backups().check_quota(Op::Restore).await?;
        let ctx = self.ctx.clone();
        Ok(Response::new(streamed(move |tx| async move {
            let progress =
                streaming::progress(&tx, |p| RestoreEvent { event: Some(restore_event::Event::Progress(p)) });
            let done = if r.to_client {
                to_client(&ctx, &r.key, &progress, &tx).await
            } else {
                ctx.restore_in_place(&caller, &r.key, !r.no_backup, &progress).await.map(|done| RestoreDone {
                    version: Some(version_message(&done.version)),
                    safety_backup: done.safety_backup.as_ref().map(version_message),
                    local_copy: done.local_copy.display().to_string(),
                    checksum_checked: done.version.sha256 != "unknown",
                    missing_parts_total: done.missing_parts.total as u64,
                    missing_parts_file: done
                        .missing_parts
                        .file
                        .map(|f| f.display().to_string())
                        .unwrap_or_default(),
                    missing_parts: done.missing_parts.listed,
                })
            };
            let msg = done
                .map(|d| RestoreEvent { event: Some(restore_event::Event::Done(d)) })
                .map_err(Status::from);
            let _ = tx.send(msg).await;
        })))
    }

    type VerifyStream = EventStream<VerifyEvent>;

    async fn verify(&self, req: Request<VerifyRequest>) -> Result<Response<Self::VerifyStream>, Status> {
        let r = req.into_inner();
        let svc = self.ctx.backups().clone();
        svc.check_quota(Op::Verify).await?;
        let mut versions = Vec::new();
        if !r.key.trim().is_empty() {
            versions.push(svc.find_version(&r.key).await?);
        } else {
            let wanted = if r.database.trim().is_empty() { vec![] } else { vec![r.database.clone()] };
            for db in layout::databases(&wanted)? {
                let (m, _) = svc.manifest(db).await?;
                let list = m.newest_first();
                versions.extend(list.into_iter().take(if r.all { usize::MAX } else { 1 }).cloned());
            }
        }
        Ok(Response::new(streamed(move |tx| async move {
            let progress =
                streaming::progress(&tx, |p| VerifyEvent { event: Some(verify_event::Event::Progress(p)) });
            for v in versions {
                let Some(result) = svc.verify_listed(&v, &progress).await else { continue };
                let msg = VerifyEvent {
                    event: Some(verify_event::Event::Result(VerifyResult {
                        key: result.key,
                        ok: result.problem.is_none(),
                        problem: result.problem.unwrap_or_default(),
                        checksum_checked: result.checksum_checked,
                    })),
                };
                if !streaming::send(&tx, Ok(msg)).await {
                    return;
                }
            }
        })))
    }

    async fn get_sync_status(
        &self,
        _req: Request<GetSyncStatusRequest>,
    ) -> Result<Response<SyncStatus>, Status> {
        Ok(Response::new(super::sync_status::get(&self.ctx).await?))
    }

    async fn repair(&self, req: Request<RepairRequest>) -> Result<Response<RepairResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let dbs = layout::databases(&req.into_inner().databases)?;
        authz::require_admin(caller.peer, self.ctx.admin_gid(), "repairing the backup manifest")?;
        let mut results = Vec::new();
        for db in dbs {
            let r = self.ctx.repair_manifest(&caller, db).await?;
            results.push(RepairResult {
                database: r.database,
                repaired: r.repaired,
                versions: r.versions as u64,
                detail: r.detail,
            });
        }
        Ok(Response::new(RepairResponse { results }))
    }

    type MaintainStream = EventStream<MaintainEvent>;

    async fn maintain(
        &self,
        req: Request<MaintainRequest>,
    ) -> Result<Response<Self::MaintainStream>, Status> {
        let caller = super::caller::of(&req)?;
        let ctx = self.ctx.clone();
        Ok(Response::new(streamed(move |tx| async move {
            let progress = streaming::progress(&tx, |p| MaintainEvent {
                event: Some(maintain_event::Event::Progress(p)),
            });
            let msg = match ctx.maintain(&caller, &progress).await {
                Ok(report) => Ok(MaintainEvent {
                    event: Some(maintain_event::Event::Report(super::sync_status::report_message(&report))),
                }),
                Err(e) => Err(Status::from(e)),
            };
            let _ = tx.send(msg).await;
        })))
    }
}

/// Verifies `key` and streams the verified file to the client.
async fn to_client(
    ctx: &Context,
    key: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
    tx: &Sender<RestoreEvent>,
) -> Result<RestoreDone, Error> {
    use tokio::io::AsyncReadExt;
    let verified = ctx.restore_to_client(key, progress).await?;
    let mut f = tokio::fs::File::open(&verified.file)
        .await
        .map_err(|e| Error::internal("reading the verified file", e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| Error::internal("reading the verified file", e))?;
        if n == 0 {
            break;
        }
        let chunk = RestoreEvent { event: Some(restore_event::Event::Chunk(buf[..n].to_vec())) };
        tx.send(Ok(chunk)).await.map_err(|_| Error::Aborted("the client went away".into()))?;
    }
    Ok(RestoreDone {
        version: Some(version_message(&verified.version)),
        safety_backup: None,
        local_copy: String::new(),
        checksum_checked: verified.checksum_checked,
        ..Default::default()
    })
}

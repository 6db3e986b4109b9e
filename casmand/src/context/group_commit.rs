//! The group commit of assembly writes: concurrent scan requests share one
//! SQLite transaction and one sync to disk ([`crate::db::batch`] runs a
//! batch), their audit entries and write count one state.db transaction,
//! and the batch is announced once.
//!
//! Requests queue on a channel in arrival order. The writer task takes every
//! request waiting (up to `[server] write_batch`) and runs them as one batch.
//!
//! Audit entries and write counts (state.db). Choice: they stay in state.db
//! (the audit log and the backup triggers' counters live there; moving them
//! into assembled_casm.db would put bookkeeping into the file people query
//! and back up as the record, and one transaction cannot span two WAL files
//! atomically anyway). Every request of a batch that wrote gets its audit
//! entry, and the batch's write count is added, in ONE state.db transaction
//! (one more fsync per batch, not per request). That transaction runs in a
//! second task, so while batch N's audit is being synced, batch N+1's
//! assembly transaction already runs; batches waiting for the audit task are
//! written together. A request is answered only after both commits returned:
//! nothing is acknowledged before its event is durable, and an acknowledged
//! event always has its audit entry and count (a failure to write the audit is
//! logged and does not fail the request: its event is committed).
//!
//! A lone client pays one assembly commit and one state.db commit (three
//! round trips to SQLite threads in all) plus two channel hops; no request
//! waits for a timer: the writer takes what is queued when it is free.
//!
//! Lifetime: [`channel`] makes the queue (held by the [`super::Context`])
//! and its [`Writer`], which the daemon's task list starts
//! ([`super::tasks`]). At shutdown the writer stops taking new requests,
//! finishes what is queued, and both tasks end.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use super::caller::Caller;
use crate::{
    db::{
        ASSEMBLED_DB, Db,
        activity::{Activity, ActivityBus},
        audit::{self, AuditEntry},
        batch::run_batch,
        scans::{Applied, ScanOp},
    },
    error::{Error, Result},
    histogram::Histogram,
};

/// What a request's audit entry says.
#[derive(Debug, Clone, PartialEq)]
pub struct Audited {
    /// `scan.connect`, `scan.disconnect`, `scan.remove`.
    pub action: &'static str,
    /// The entry's detail.
    pub detail: serde_json::Value,
    /// Writes it counts for the backup triggers.
    pub writes: u32,
}

/// The audit entry of an applied request (`None`: nothing was written, e.g.
/// removing a part without connections).
pub fn audit_of(applied: &Applied, op: &ScanOp) -> Option<Audited> {
    match applied {
        Applied::Connected(e) => Some(Audited {
            action: "scan.connect",
            detail: json!({"source": e.source, "target": e.target, "event_id": e.event_id}),
            writes: 1,
        }),
        Applied::Disconnected(e) => Some(Audited {
            action: "scan.disconnect",
            detail: json!({"source": e.source, "target": e.target}),
            writes: 1,
        }),
        Applied::Removed(edges) if edges.is_empty() => None,
        Applied::Removed(edges) => {
            let part = match op {
                ScanOp::Remove { part } => part.clone(),
                _ => String::new(),
            };
            let ended: Vec<String> = edges.iter().map(|e| format!("{} -> {}", e.source, e.target)).collect();
            Some(Audited {
                action: "scan.remove",
                detail: json!({"part": part, "ended": ended}),
                writes: edges.len() as u32,
            })
        }
    }
}

/// A request's answer: what it did and its audit entry.
pub type Outcome = Result<(Applied, Option<Audited>)>;

struct Job {
    op: ScanOp,
    caller: Caller,
    reply: oneshot::Sender<Outcome>,
}

struct Finished {
    caller: Caller,
    outcome: Outcome,
    reply: oneshot::Sender<Outcome>,
}

/// The queue in front of the assembly writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Job>,
    /// Requests per committed batch (`casman_group_commit_batch_size`).
    batches: Arc<Histogram>,
}

/// The receiving end of the queue, to be started by [`Writer::spawn`].
#[derive(Debug)]
pub struct Writer {
    rx: mpsc::Receiver<Job>,
    max: usize,
    batches: Arc<Histogram>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("op", &self.op).finish_non_exhaustive()
    }
}

/// A queue whose batches hold at most `max_batch` requests (at least 1).
pub fn channel(max_batch: usize) -> (GroupCommit, Writer) {
    let (tx, rx) = mpsc::channel::<Job>(4096);
    let batches = Arc::new(Histogram::new(crate::histogram::BATCH));
    (GroupCommit { tx, batches: batches.clone() }, Writer { rx, max: max_batch.max(1), batches })
}

fn shutting_down() -> Error {
    Error::Unavailable("casmand is shutting down".into())
}

impl GroupCommit {
    /// Requests per committed batch, so far.
    pub fn batch_sizes(&self) -> crate::histogram::Figures {
        self.batches.figures()
    }

    /// Queues `op` for `caller` and waits until it is committed (or
    /// refused). The answer comes after the event and its audit entry are
    /// on disk.
    pub async fn submit(&self, op: ScanOp, caller: Caller) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job { op, caller, reply }).await.map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

impl Writer {
    /// Starts the writer on `assembled` (the log) and the auditor on `state`
    /// (audit entries, write counts); the writes are announced on
    /// `activity`. When `stop` turns true the writer takes no new request,
    /// finishes the queued ones, and both tasks end; the returned task ends
    /// after the last answer is sent.
    pub fn spawn(
        self,
        assembled: Db,
        state: Db,
        activity: ActivityBus,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Vec<Finished>>();
        let writer = tokio::spawn(writer(assembled, self.rx, done_tx, (self.max, self.batches), stop));
        tokio::spawn(async move {
            auditor(state, done_rx, activity).await;
            let _ = writer.await;
        })
    }
}

async fn writer(
    db: Db,
    mut rx: mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<Vec<Finished>>,
    (max, batches): (usize, Arc<Histogram>),
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            job = rx.recv() => job,
            _ = stop.wait_for(|s| *s) => {
                // No new requests; those already queued are still written.
                rx.close();
                None
            }
        };
        let Some(first) = (match first {
            Some(job) => Some(job),
            None => rx.recv().await,
        }) else {
            break;
        };
        let mut jobs = vec![first];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let ops: Vec<&ScanOp> = jobs.iter().map(|j| &j.op).collect();
        let results = run_batch(&db, &ops).await;
        batches.observe(jobs.len() as f64);
        if jobs.len() > 1 {
            tracing::debug!(requests = jobs.len(), "group commit");
        }
        let finished = jobs
            .into_iter()
            .zip(results)
            .map(|(j, r)| {
                let outcome = r.map(|applied| {
                    let audited = audit_of(&applied, &j.op);
                    (applied, audited)
                });
                Finished { caller: j.caller, outcome, reply: j.reply }
            })
            .collect();
        if done.send(finished).is_err() {
            break;
        }
    }
}

async fn auditor(state: Db, mut rx: mpsc::UnboundedReceiver<Vec<Finished>>, activity: ActivityBus) {
    while let Some(first) = rx.recv().await {
        let mut finished = first;
        while let Ok(more) = rx.try_recv() {
            finished.extend(more);
        }
        let audited: Vec<(&Caller, &Audited)> = finished
            .iter()
            .filter_map(|f| match &f.outcome {
                Ok((_, Some(a))) => Some((&f.caller, a)),
                _ => None,
            })
            .collect();
        if !audited.is_empty() {
            let entries: Vec<AuditEntry<'_>> = audited
                .iter()
                .map(|(caller, a)| caller.entry(a.action, ASSEMBLED_DB, a.detail.clone()))
                .collect();
            let writes: u32 = audited.iter().map(|(_, a)| a.writes).sum();
            if let Err(e) = audit::record_many(&state, &entries, &[(ASSEMBLED_DB, writes)]).await {
                tracing::warn!(requests = entries.len(), error = %e, "could not write the audit log");
            }
        }
        let announced = announcements(&audited);
        for f in finished {
            let _ = f.reply.send(f.outcome);
        }
        for a in announced {
            activity.publish(a);
        }
    }
}

/// What a batch announces on the activity bus: one write per action, with
/// the writes of all its requests. Every announcement costs its subscribers
/// work (the backup scheduler reads state.db on each), so a batch announces
/// once, not once per request.
fn announcements(audited: &[(&Caller, &Audited)]) -> Vec<Activity> {
    let mut out: Vec<Activity> = Vec::new();
    for (_, a) in audited {
        match out.iter_mut().find(|w| matches!(w, Activity::Write { action, .. } if *action == a.action)) {
            Some(Activity::Write { writes, .. }) => *writes += a.writes,
            _ => out.push(Activity::Write { database: ASSEMBLED_DB, action: a.action, writes: a.writes }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{
        db::{Databases, parts, scans},
        inventory::{PartType, Polarization},
    };

    /// Through the queue: concurrent submissions, one winner per contested
    /// part, audit entries and one write count per batch in state.db; at
    /// stop, what was queued is written and later submissions are refused.
    #[tokio::test]
    async fn submissions_race_are_audited_and_drain_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        for t in [PartType::Antenna, PartType::Lna] {
            parts::generate(&dbs.parts, &dbs.state, t, Polarization::P1, 3, 1..=99_999).await.unwrap();
        }
        let connect = |a: String| {
            let parts = dbs.parts.clone();
            async move {
                ScanOp::Connect {
                    source: scans::resolve(&parts, &a).await.unwrap(),
                    target: scans::resolve(&parts, "LNA00002P1").await.unwrap(),
                }
            }
        };
        let bus = ActivityBus::default();
        let mut announced = bus.subscribe();
        let (stop_tx, stop) = watch::channel(false);
        let (gc, w) = channel(256);
        let task = w.spawn(dbs.assembled.clone(), dbs.state.clone(), bus, stop);
        let mut tasks = Vec::new();
        for a in 1..=3 {
            let op = connect(format!("ANT0000{a}P1")).await;
            let gc = gc.clone();
            let who = Caller { operator: Some("ann".into()), ..Caller::default() };
            tasks.push(tokio::spawn(async move { gc.submit(op, who).await }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
        let state = dbs.state.reader().await;
        let audited: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT action, operator FROM audit_log WHERE action LIKE 'scan.%'")
                .fetch_all(&*state)
                .await
                .unwrap();
        assert_eq!(audited, vec![("scan.connect".to_owned(), Some("ann".to_owned()))]);
        let writes: i64 = sqlx::query_scalar(
            "SELECT writes_since_backup FROM activity WHERE database = 'assembled_casm.db'",
        )
        .fetch_one(&*state)
        .await
        .unwrap();
        assert_eq!(writes, 1);
        assert_eq!(
            announced.try_recv().unwrap(),
            Activity::Write { database: ASSEMBLED_DB, action: "scan.connect", writes: 1 }
        );
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let late = gc.submit(connect("ANT00003P1".into()).await, Caller::default()).await;
        assert!(matches!(late, Err(Error::Unavailable(_))), "{late:?}");
    }
}

//! Group commit for assembly writes: concurrent scan requests share one
//! SQLite transaction and one sync to disk.
//!
//! Requests queue on a channel in arrival order. The writer task takes every
//! request waiting (up to [`max_batch`]), opens one `BEGIN IMMEDIATE`
//! transaction on the single writer connection and runs each request inside
//! its own savepoint, in arrival order: its rules are checked against the
//! kept state as the requests before it in the batch left it. A refused
//! request (or one whose SQL fails) is rolled back to its savepoint and gets
//! its own error; the others go on. Then one `COMMIT` (`synchronous=FULL`:
//! one fsync of the WAL for the whole batch). If the commit fails, every
//! request of the batch gets the error and nothing of it was written.
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
//! logged and does not fail the request, as before: its event is committed).
//!
//! A lone client pays what it paid before (one assembly commit, one state.db
//! commit) plus two channel hops; a batch of one runs without a savepoint.

use std::sync::OnceLock;

use serde_json::json;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::{
    ASSEMBLED_DB, Db,
    audit::{self, AuditEntry},
    scans::{self, Applied, ScanOp},
};
use crate::{
    error::{Error, Result},
    peer::Peer,
    timestamp,
};

/// Default largest batch (requests per transaction).
pub const DEFAULT_MAX_BATCH: usize = 256;

/// The largest batch: `CASMAN_WRITE_BATCH` (1 turns batching off: one
/// transaction per request), else [`DEFAULT_MAX_BATCH`].
pub fn max_batch() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("CASMAN_WRITE_BATCH")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(DEFAULT_MAX_BATCH)
    })
}

/// Who sent a request, for its audit entry.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// Socket peer credentials.
    pub peer: Option<Peer>,
    /// Operator name, if given.
    pub operator: Option<String>,
    /// The HTTP client address of a web request (`None` on the socket).
    pub client: Option<String>,
}

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
    who: Who,
    reply: oneshot::Sender<Outcome>,
}

struct Finished {
    who: Who,
    outcome: Outcome,
    reply: oneshot::Sender<Outcome>,
}

/// The queue in front of the assembly writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("op", &self.op).finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer and audit tasks for `assembled` (the log) and
    /// `state` (audit entries, write counts). Needs a Tokio runtime.
    pub fn start(assembled: Db, state: Db) -> GroupCommit {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Vec<Finished>>();
        tokio::spawn(writer(assembled, rx, done_tx, max_batch()));
        tokio::spawn(auditor(state, done_rx));
        GroupCommit { tx }
    }

    /// Queues `op` and waits until it is committed (or refused). The answer
    /// comes after the event and its audit entry are on disk.
    pub async fn submit(&self, op: ScanOp, who: Who) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { op, who, reply })
            .await
            .map_err(|_| Error::Unavailable("casmand is shutting down".into()))?;
        answer.await.map_err(|_| Error::Unavailable("casmand is shutting down".into()))?
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Job>, done: mpsc::UnboundedSender<Vec<Finished>>, max: usize) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let ops: Vec<&ScanOp> = jobs.iter().map(|j| &j.op).collect();
        let results = run_batch(&db, &ops).await;
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
                Finished { who: j.who, outcome, reply: j.reply }
            })
            .collect();
        if done.send(finished).is_err() {
            break;
        }
    }
}

async fn auditor(state: Db, mut rx: mpsc::UnboundedReceiver<Vec<Finished>>) {
    while let Some(first) = rx.recv().await {
        let mut finished = first;
        while let Ok(more) = rx.try_recv() {
            finished.extend(more);
        }
        let audited: Vec<(&Who, &Audited)> = finished
            .iter()
            .filter_map(|f| match &f.outcome {
                Ok((_, Some(a))) => Some((&f.who, a)),
                _ => None,
            })
            .collect();
        if !audited.is_empty() {
            let entries: Vec<AuditEntry<'_>> = audited
                .iter()
                .map(|(who, a)| AuditEntry {
                    peer: who.peer,
                    operator: who.operator.as_deref(),
                    client: who.client.as_deref(),
                    action: a.action,
                    database: ASSEMBLED_DB,
                    detail: a.detail.clone(),
                })
                .collect();
            let writes: u32 = audited.iter().map(|(_, a)| a.writes).sum();
            if let Err(e) = audit::record_many(&state, &entries, &[(ASSEMBLED_DB, writes)]).await {
                tracing::warn!(requests = entries.len(), error = %e, "could not write the audit log");
            }
        }
        for f in finished {
            let _ = f.reply.send(f.outcome);
        }
    }
}

/// The same error for another request of a failed batch.
fn replicate(e: &Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::AlreadyExists(m) => Error::AlreadyExists(m.clone()),
        Error::FailedPrecondition(m) => Error::FailedPrecondition(m.clone()),
        Error::ResourceExhausted(m) => Error::ResourceExhausted(m.clone()),
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::PermissionDenied(m) => Error::PermissionDenied(m.clone()),
        Error::Aborted(m) => Error::Aborted(m.clone()),
        Error::Internal(m) => Error::Internal(m.clone()),
    }
}

fn all_failed(n: usize, e: &Error) -> Vec<Result<Applied>> {
    (0..n).map(|_| Err(replicate(e))).collect()
}

/// Runs `ops` in one write transaction, each in its own savepoint, in order;
/// one result per op. Nothing of it is written unless the COMMIT succeeded.
pub async fn run_batch(db: &Db, ops: &[&ScanOp]) -> Vec<Result<Applied>> {
    let pool = db.writer().await;
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return all_failed(ops.len(), &Error::from(e)),
    };
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return all_failed(ops.len(), &Error::from(e));
    }
    match in_transaction(&mut conn, ops).await {
        // A lone request that failed: undo whatever part of it was written.
        Ok(results) if ops.len() == 1 && results.iter().all(Result::is_err) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            results
        }
        Ok(results) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => results,
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                all_failed(ops.len(), &Error::from(e))
            }
        },
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            all_failed(ops.len(), &e)
        }
    }
}

/// The body of a batch; an `Err` aborts the whole transaction.
async fn in_transaction(conn: &mut SqliteConnection, ops: &[&ScanOp]) -> Result<Vec<Result<Applied>>> {
    let mut out = Vec::with_capacity(ops.len());
    if let [op] = ops {
        // A batch of one needs no savepoint: if it fails, the caller rolls
        // the whole transaction back.
        out.push(scans::apply(conn, op, &timestamp::now()).await);
        return Ok(out);
    }
    for op in ops {
        sqlx::query("SAVEPOINT scan_request").execute(&mut *conn).await?;
        match scans::apply(conn, op, &timestamp::now()).await {
            Ok(applied) => {
                sqlx::query("RELEASE scan_request").execute(&mut *conn).await?;
                out.push(Ok(applied));
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO scan_request").execute(&mut *conn).await?;
                sqlx::query("RELEASE scan_request").execute(&mut *conn).await?;
                out.push(Err(e));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{
        db::{Databases, assembly, parts},
        inventory::{PartType, Polarization},
    };

    async fn stocked() -> (tempfile::TempDir, Databases) {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        for t in [PartType::Antenna, PartType::Lna] {
            parts::generate(&dbs.parts, &dbs.state, t, Polarization::P1, 3, 1..=99_999).await.unwrap();
        }
        (dir, dbs)
    }

    async fn connect(dbs: &Databases, a: &str, b: &str) -> ScanOp {
        ScanOp::Connect {
            source: scans::resolve(&dbs.parts, a).await.unwrap(),
            target: scans::resolve(&dbs.parts, b).await.unwrap(),
        }
    }

    async fn log_rows(dbs: &Databases) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM assembly")
            .fetch_one(&*dbs.assembled.reader().await)
            .await
            .unwrap()
    }

    /// Refusals inside a batch write nothing; each request sees the ones
    /// before it; the others commit.
    #[tokio::test]
    async fn a_refused_request_in_a_batch_writes_nothing_and_the_others_commit() {
        let (_dir, dbs) = stocked().await;
        let ops = [
            connect(&dbs, "ANT00001P1", "LNA00001P1").await,
            // Sees the first request: LNA00001P1 already receives.
            connect(&dbs, "ANT00002P1", "LNA00001P1").await,
            ScanOp::Disconnect { a: "ANT00003P1".into(), b: "LNA00003P1".into() },
            connect(&dbs, "ANT00002P1", "LNA00002P1").await,
            ScanOp::Remove { part: "LNA00001P1".into() },
            connect(&dbs, "ANT00001P1", "LNA00001P1").await,
            // Same pair again in the same batch: refused.
            connect(&dbs, "ANT00001P1", "LNA00001P1").await,
        ];
        let refs: Vec<&ScanOp> = ops.iter().collect();
        let results = run_batch(&dbs.assembled, &refs).await;
        assert!(matches!(&results[0], Ok(Applied::Connected(_))));
        let e = results[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("LNA00001P1 already receives from ANT00001P1"), "{e}");
        let e = results[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("ANT00003P1 and LNA00003P1 are not connected"), "{e}");
        assert!(matches!(&results[3], Ok(Applied::Connected(_))));
        assert!(matches!(&results[4], Ok(Applied::Removed(v)) if v.len() == 1));
        assert!(matches!(&results[5], Ok(Applied::Connected(_))));
        let e = results[6].as_ref().unwrap_err().to_string();
        assert!(e.contains("already connected"), "{e}");
        // Four events: two connects, the removal's disconnect, the reconnect.
        assert_eq!(log_rows(&dbs).await, 4);
        let drift = assembly::check(&dbs.assembled).await.unwrap();
        assert!(drift.is_clean(), "{drift:?}");
        let pairs: Vec<(String, String)> = assembly::current(&dbs.assembled)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.source, e.target))
            .collect();
        assert_eq!(pairs.len(), 2);
        assert!(pairs.contains(&("ANT00001P1".into(), "LNA00001P1".into())));
        assert!(pairs.contains(&("ANT00002P1".into(), "LNA00002P1".into())));
        // A lone refused request writes nothing either.
        let lone = connect(&dbs, "ANT00003P1", "LNA00001P1").await;
        assert!(run_batch(&dbs.assembled, &[&lone]).await[0].is_err());
        assert_eq!(log_rows(&dbs).await, 4);
    }

    /// Through the queue: concurrent submissions, one winner per contested
    /// part, audit entries and one write count per batch in state.db.
    #[tokio::test]
    async fn submissions_race_and_are_audited() {
        let (_dir, dbs) = stocked().await;
        let gc = GroupCommit::start(dbs.assembled.clone(), dbs.state.clone());
        let mut tasks = Vec::new();
        for a in 1..=3 {
            let op = connect(&dbs, &format!("ANT0000{a}P1"), "LNA00002P1").await;
            let gc = gc.clone();
            tasks.push(tokio::spawn(async move { gc.submit(op, Who::default()).await }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(log_rows(&dbs).await, 1);
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'scan.connect'")
            .fetch_one(&*dbs.state.reader().await)
            .await
            .unwrap();
        assert_eq!(audited, 1);
        let writes: i64 = sqlx::query_scalar(
            "SELECT writes_since_backup FROM activity WHERE database = 'assembled_casm.db'",
        )
        .fetch_one(&*dbs.state.reader().await)
        .await
        .unwrap();
        assert_eq!(writes, 1);
    }
}

//! Group commit for assembly writes: concurrent scan requests share one
//! SQLite transaction and one sync to disk.
//!
//! Requests queue on a channel in arrival order. The writer task takes every
//! request waiting (up to [`max_batch`]) and runs them in one `BEGIN
//! IMMEDIATE` transaction on the single writer connection, in arrival order:
//! each request's rules are checked against the kept state as the requests
//! before it in the batch left it. A refused request writes nothing and gets
//! its own error; the others go on. Then one `COMMIT` (`synchronous=FULL`:
//! one fsync of the WAL for the whole batch). If a statement or the commit
//! fails (a full disk, an I/O error), every request of the batch gets the
//! error and nothing of it was written.
//!
//! Cost. Every statement is a round trip to the connection's thread (sqlx
//! runs SQLite on a thread of its own: two thread wakeups per statement), so
//! a batch costs two of them whatever its size: the kept state of every part
//! it names is read with the `BEGIN` ([`assembly::begin_reading_kept`]), the
//! rules are decided in memory ([`batch_plan`]), and the accepted events are
//! appended by one statement sent with the `COMMIT`
//! ([`scans::append_all_and_commit`]). Only when the log holds an event
//! later than the batch for one of its parts does it fall back to one
//! savepoint per request (see [`run_batch`]).
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
//! A lone client pays one assembly commit and one state.db commit (three
//! round trips to SQLite threads in all) plus two channel hops; no request
//! waits for a timer: the writer takes what is queued when it is free.

use std::sync::OnceLock;

use serde_json::json;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::{
    ASSEMBLED_DB, Db, assembly,
    audit::{self, AuditEntry},
    batch_plan,
    scans::{self, Applied, ScanOp},
};
use crate::{
    db::activity::{Activity, ActivityBus},
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
    /// `state` (audit entries, write counts); the writes are announced on
    /// `activity`. Needs a Tokio runtime.
    pub fn start(assembled: Db, state: Db, activity: ActivityBus) -> GroupCommit {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Vec<Finished>>();
        tokio::spawn(writer(assembled, rx, done_tx, max_batch()));
        tokio::spawn(auditor(state, done_rx, activity));
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

async fn auditor(state: Db, mut rx: mpsc::UnboundedReceiver<Vec<Finished>>, activity: ActivityBus) {
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
fn announcements(audited: &[(&Who, &Audited)]) -> Vec<Activity> {
    let mut out: Vec<Activity> = Vec::new();
    for (_, a) in audited {
        match out.iter_mut().find(|w| matches!(w, Activity::Write { action, .. } if *action == a.action)) {
            Some(Activity::Write { writes, .. }) => *writes += a.writes,
            _ => out.push(Activity::Write { database: ASSEMBLED_DB, action: a.action, writes: a.writes }),
        }
    }
    out
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

/// Runs `ops` in one write transaction, in order; one result per op.
/// Nothing of it is written unless the COMMIT succeeded, and nothing of a
/// refused op at all.
///
/// Fast path (two statements per batch, whatever its size): one read of the
/// kept state of every part the batch names, the rules decided in memory
/// ([`batch_plan`]), the accepted events appended by one statement sent
/// together with the COMMIT. If the log holds an event later than the
/// batch's timestamp for one of those parts (merged in from a site whose
/// clock is ahead, or this clock stepped back), the triggers might not apply
/// the new events as planned: then each op runs in its own savepoint,
/// checked against the kept state as the triggers left it.
pub async fn run_batch(db: &Db, ops: &[&ScanOp]) -> Vec<Result<Applied>> {
    let pool = db.writer().await;
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return all_failed(ops.len(), &Error::from(e)),
    };
    let at = timestamp::now();
    match planned(&mut conn, ops, &at).await {
        Ok(Some(results)) => results,
        Ok(None) => with_savepoints(&mut conn, ops, &at).await,
        Err(e) => {
            rollback(&mut conn).await;
            all_failed(ops.len(), &e)
        }
    }
}

async fn rollback(conn: &mut SqliteConnection) {
    // Harmless when no transaction is open (the COMMIT went through, or the
    // BEGIN failed).
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
}

/// The fast path; `Ok(None)` (transaction rolled back): take the savepoint path.
async fn planned(
    conn: &mut SqliteConnection,
    ops: &[&ScanOp],
    at: &str,
) -> Result<Option<Vec<Result<Applied>>>> {
    let mut names: Vec<&str> = ops.iter().flat_map(|op| batch_plan::parts_of(op)).collect();
    names.sort_unstable();
    names.dedup();
    let (kept, later) = assembly::begin_reading_kept(conn, &names, at).await?;
    if later {
        rollback(conn).await;
        return Ok(None);
    }
    let ats: Vec<String> = vec![at.to_owned(); ops.len()];
    let mut plan = batch_plan::plan(kept, ops, &ats);
    if plan.events.is_empty() {
        rollback(conn).await;
        return Ok(Some(plan.results));
    }
    let ids = scans::append_all_and_commit(conn, &plan.events).await?;
    if !plan.settle(&ids) {
        return Err(Error::internal(
            "group commit",
            format!("{} events committed but {} ids returned", plan.events.len(), ids.len()),
        ));
    }
    Ok(Some(plan.results))
}

/// The savepoint path: each op in its own savepoint, checked against the
/// kept state as the ops before it and the triggers left it.
async fn with_savepoints(conn: &mut SqliteConnection, ops: &[&ScanOp], at: &str) -> Vec<Result<Applied>> {
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return all_failed(ops.len(), &Error::from(e));
    }
    match in_transaction(conn, ops, at).await {
        // A lone request that failed: undo whatever part of it was written.
        Ok(results) if ops.len() == 1 && results.iter().all(Result::is_err) => {
            rollback(conn).await;
            results
        }
        Ok(results) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => results,
            Err(e) => {
                rollback(conn).await;
                all_failed(ops.len(), &Error::from(e))
            }
        },
        Err(e) => {
            rollback(conn).await;
            all_failed(ops.len(), &e)
        }
    }
}

/// The body of a batch on the savepoint path; an `Err` aborts the whole
/// transaction.
async fn in_transaction(
    conn: &mut SqliteConnection,
    ops: &[&ScanOp],
    at: &str,
) -> Result<Vec<Result<Applied>>> {
    let mut out = Vec::with_capacity(ops.len());
    if let [op] = ops {
        // A batch of one needs no savepoint: if it fails, the caller rolls
        // the whole transaction back.
        out.push(scans::apply(conn, op, at).await);
        return Ok(out);
    }
    for op in ops {
        sqlx::query("SAVEPOINT scan_request").execute(&mut *conn).await?;
        match scans::apply(conn, op, at).await {
            Ok(applied) => {
                sqlx::query("RELEASE scan_request").execute(&mut *conn).await?;
                out.push(Ok(applied));
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO scan_request; RELEASE scan_request").execute(&mut *conn).await?;
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

    /// A batch decided in memory answers exactly as the same batch run
    /// request by request in savepoints, and leaves the same log and kept
    /// state: random batches over a few parts, on two identical files.
    #[tokio::test]
    async fn the_planned_path_equals_the_savepoint_path() {
        let (_d1, fast) = stocked().await;
        let (_d2, slow) = stocked().await;
        let names = ["ANT00001P1", "ANT00002P1", "LNA00001P1", "LNA00002P1", "LNA00003P1", "ANT00003P1"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let at = timestamp::now();
        for _ in 0..150 {
            let mut ops = Vec::new();
            for _ in 0..1 + next(6) {
                let (a, b) = (names[next(names.len())], names[next(names.len())]);
                ops.push(match next(4) {
                    0 | 1 => connect(&fast, a, b).await,
                    2 => ScanOp::Disconnect { a: a.into(), b: b.into() },
                    _ => ScanOp::Remove { part: a.into() },
                });
            }
            let refs: Vec<&ScanOp> = ops.iter().collect();
            let mut conn = fast.assembled.writer().await.acquire().await.unwrap();
            let planned = planned(&mut conn, &refs, &at).await.unwrap().expect("no later events");
            drop(conn);
            let mut conn = slow.assembled.writer().await.acquire().await.unwrap();
            let saved = with_savepoints(&mut conn, &refs, &at).await;
            drop(conn);
            let show = |r: &[Result<Applied>]| r.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>();
            assert_eq!(show(&planned), show(&saved), "{ops:?}");
        }
        assert!(log_rows(&fast).await > 50);
        let rows = |dbs: &Databases| {
            let db = dbs.assembled.clone();
            async move { assembly::all_rows(&db).await.unwrap() }
        };
        assert_eq!(rows(&fast).await, rows(&slow).await);
        assert_eq!(
            assembly::current(&fast.assembled).await.unwrap(),
            assembly::current(&slow.assembled).await.unwrap()
        );
        assert!(assembly::check(&fast.assembled).await.unwrap().is_clean());
    }

    /// An event later than the batch (another site's clock ahead): the new
    /// events may not become the kept state, so the batch runs request by
    /// request against the kept state as the triggers leave it.
    #[tokio::test]
    async fn a_later_event_in_the_log_takes_the_savepoint_path() {
        let (_dir, dbs) = stocked().await;
        sqlx::query(
            "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                 connected_polarization, connected_scan_time, connection_status)
             VALUES ('ANT00001P1', 'ANTENNA', 'P1', '2099-01-01T00:00:00Z', 'LNA00001P1', 'LNA', 'P1',
                     '2099-01-01T00:00:00Z', 'connected')",
        )
        .execute(&*dbs.assembled.writer().await)
        .await
        .unwrap();
        let ops = [
            ScanOp::Disconnect { a: "ANT00001P1".into(), b: "LNA00001P1".into() },
            connect(&dbs, "ANT00001P1", "LNA00002P1").await,
        ];
        let refs: Vec<&ScanOp> = ops.iter().collect();
        let results = run_batch(&dbs.assembled, &refs).await;
        // The disconnect is recorded, but the 2099 connect stays the newest
        // event of the pair: ANT00001P1 still connects to LNA00001P1.
        assert!(matches!(&results[0], Ok(Applied::Disconnected(_))));
        let e = results[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("ANT00001P1 already connects to LNA00001P1"), "{e}");
        assert_eq!(log_rows(&dbs).await, 2);
        assert!(assembly::check(&dbs.assembled).await.unwrap().is_clean());
    }

    /// Through the queue: concurrent submissions, one winner per contested
    /// part, audit entries and one write count per batch in state.db.
    #[tokio::test]
    async fn submissions_race_and_are_audited() {
        let (_dir, dbs) = stocked().await;
        let bus = ActivityBus::default();
        let mut announced = bus.subscribe();
        let gc = GroupCommit::start(dbs.assembled.clone(), dbs.state.clone(), bus);
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
        assert_eq!(
            announced.try_recv().unwrap(),
            Activity::Write { database: ASSEMBLED_DB, action: "scan.connect", writes: 1 }
        );
    }
}

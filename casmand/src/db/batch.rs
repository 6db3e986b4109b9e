//! One batch of assembly writes in one SQLite transaction: the database
//! half of the group commit (the queue, audit and announcements are in
//! `crate::context::group_commit`).
//!
//! The requests of a batch run in one `BEGIN IMMEDIATE` transaction on the
//! single writer connection, in arrival order: each request's rules are
//! checked against the kept state as the requests before it in the batch
//! left it. A refused request writes nothing and gets its own error; the
//! others go on. Then one `COMMIT` (`synchronous=FULL`: one fsync of the WAL
//! for the whole batch). If a statement or the commit fails (a full disk, an
//! I/O error), every request of the batch gets the error and nothing of it
//! was written.
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

use sqlx::SqliteConnection;

use super::{
    Db, assembly, batch_plan,
    scans::{self, Applied, ScanOp},
};
use crate::{
    error::{Error, Result},
    timestamp,
};

fn all_failed(n: usize, e: &Error) -> Vec<Result<Applied>> {
    (0..n).map(|_| Err(e.replicate())).collect()
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
        let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15);
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
}

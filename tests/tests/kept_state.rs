//! Property test: after any sequence of connects, disconnects and removals
//! (batched, with refusals), writes by other programs (events at any time,
//! NULL times, deletions, edits), merges of another site's copy and restores
//! of older copies (with a stale or missing kept state), the kept current
//! state equals the state recomputed from the log by the canonical rule, and
//! every event is filed under its pair (`Drift::misfiled`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, str::FromStr};

use casmand::{
    db::{
        ASSEMBLED_DB, Databases, assembly, batch, merge, parts, prepare_replacement,
        scans::{self, ScanOp},
    },
    inventory::{PartType, Polarization},
};
use proptest::prelude::*;
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};

const PARTS: [&str; 10] = [
    "ANT00001P1",
    "ANT00002P1",
    "LNA00001P1",
    "LNA00002P1",
    "CXS00001P1",
    "CXS00002P1",
    "BAC00001P1",
    "SNAP1A00",
    "SNAP1A01",
    "LNA00001P2",
];

/// An event written directly (another program, another site): ends, time
/// choice (0-59: seconds of an old minute, 60-69: far future, 70: NULL), status.
type Raw = (usize, usize, u8, bool);

#[derive(Debug, Clone)]
enum Scan {
    Connect(usize, usize),
    Disconnect(usize, usize),
    Remove(usize),
}

#[derive(Debug, Clone)]
enum Op {
    /// Scans submitted together: one group-committed transaction.
    Batch(Vec<Scan>),
    /// Events appended by the sqlite3 shell.
    Raw(Vec<Raw>),
    /// Another program deletes the n-th event (mod count).
    Delete(usize),
    /// Another program flips the status of the n-th event.
    Flip(usize),
    /// Another program moves the n-th event to another pair and time:
    /// other end (PARTS.len() = NULL), time choice.
    Edit(usize, usize, u8),
    /// Merge another site's copy: ours plus these events.
    Merge(Vec<Raw>),
    /// Keep a copy for a later restore.
    Snapshot,
    /// Restore the latest copy; `stale`: its kept state emptied first (a
    /// copy written by something that did not keep it).
    Restore { stale: bool },
}

fn scan() -> impl Strategy<Value = Scan> {
    let p = 0..PARTS.len();
    prop_oneof![
        4 => (p.clone(), p.clone()).prop_map(|(a, b)| Scan::Connect(a, b)),
        2 => (p.clone(), p.clone()).prop_map(|(a, b)| Scan::Disconnect(a, b)),
        1 => p.prop_map(Scan::Remove),
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    (0..PARTS.len(), 0..PARTS.len(), 0u8..=70, any::<bool>())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec(scan(), 1..6).prop_map(Op::Batch),
        2 => prop::collection::vec(raw(), 1..4).prop_map(Op::Raw),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::Flip),
        1 => (any::<usize>(), 0..=PARTS.len(), 0u8..=70).prop_map(|(n, b, t)| Op::Edit(n, b, t)),
        2 => prop::collection::vec(raw(), 1..5).prop_map(Op::Merge),
        1 => Just(Op::Snapshot),
        1 => any::<bool>().prop_map(|stale| Op::Restore { stale }),
    ]
}

fn time(t: u8) -> Option<String> {
    match t {
        0..=59 => Some(format!("2026-01-01T00:00:{t:02}Z")),
        60..=69 => Some(format!("2099-01-01T00:00:0{}Z", t - 60)),
        _ => None,
    }
}

async fn raw_conn(path: &Path) -> SqliteConnection {
    let opts = SqliteConnectOptions::from_str("sqlite://").unwrap().filename(path);
    SqliteConnection::connect_with(&opts).await.unwrap()
}

async fn insert_raw(conn: &mut SqliteConnection, events: &[Raw]) {
    for (a, b, t, connected) in events {
        sqlx::query(
            "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                 connected_polarization, connected_scan_time, connection_status) VALUES (?, 'X', 'P1', ?, ?, 'Y', 'P1', ?, ?)",
        )
        .bind(PARTS[*a])
        .bind(time(*t))
        .bind(PARTS[*b])
        .bind(time(*t))
        .bind(if *connected { "connected" } else { "disconnected" })
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// A consistent copy of the live file.
async fn copy_of(dbs: &Databases, to: &Path) {
    let _ = std::fs::remove_file(to);
    sqlx::query("VACUUM INTO ?")
        .bind(to.display().to_string())
        .execute(&*dbs.assembled.reader().await)
        .await
        .unwrap();
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    // The property is about logic, not durability: on tmpfs (when there is
    // one) the syncs cost nothing and many more sequences fit in the time.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let dbs = Databases::open(&dir.path().join("data"), &jiff::tz::TimeZone::UTC).await.unwrap();
    for t in [PartType::Antenna, PartType::Lna, PartType::CoaxShort, PartType::Bacboard] {
        parts::generate(&dbs.parts, &dbs.state, t, Polarization::P1, 2, 1..=99_999).await.unwrap();
    }
    parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P2, 1, 1..=99_999).await.unwrap();
    let live = dbs.assembled.path.clone();
    let snapshot = dir.path().join("snapshot.db");
    let mut have_snapshot = false;
    for (step, op) in ops.into_iter().enumerate() {
        match &op {
            Op::Batch(scans_) => {
                let mut batch_ops = Vec::new();
                for s in scans_ {
                    batch_ops.push(match s {
                        Scan::Connect(a, b) => ScanOp::Connect {
                            source: scans::resolve(&dbs.parts, PARTS[*a]).await.unwrap(),
                            target: scans::resolve(&dbs.parts, PARTS[*b]).await.unwrap(),
                        },
                        Scan::Disconnect(a, b) => {
                            ScanOp::Disconnect { a: PARTS[*a].into(), b: PARTS[*b].into() }
                        }
                        Scan::Remove(a) => ScanOp::Remove { part: PARTS[*a].into() },
                    });
                }
                let refs: Vec<&ScanOp> = batch_ops.iter().collect();
                let before = assembly::current(&dbs.assembled).await.unwrap();
                let results = batch::run_batch(&dbs.assembled, &refs).await;
                // A refusal is a rule's, never a storage failure.
                for r in &results {
                    if let Err(e) = r {
                        prop_assert!(
                            matches!(
                                e,
                                casmand::error::Error::FailedPrecondition(_)
                                    | casmand::error::Error::InvalidArgument(_)
                            ),
                            "{e:?}"
                        );
                    }
                }
                if results.iter().all(Result::is_err) {
                    prop_assert_eq!(assembly::current(&dbs.assembled).await.unwrap(), before);
                }
            }
            Op::Raw(events) => {
                let mut c = raw_conn(&live).await;
                insert_raw(&mut c, events).await;
            }
            Op::Edit(n, b, t) => {
                let mut c = raw_conn(&live).await;
                sqlx::query(
                    "UPDATE assembly SET connected_to = ?, scan_time = ?
                      WHERE id = (SELECT id FROM assembly ORDER BY id LIMIT 1 OFFSET ? % max(1, (SELECT COUNT(*) FROM assembly)))",
                )
                .bind(PARTS.get(*b).copied())
                .bind(time(*t))
                .bind(*n as i64 & i64::from(u32::MAX))
                .execute(&mut c)
                .await
                .unwrap();
            }
            Op::Delete(n) | Op::Flip(n) => {
                let mut c = raw_conn(&live).await;
                let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM assembly ORDER BY id")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                if !ids.is_empty() {
                    let id = ids[n % ids.len()];
                    let sql = if matches!(op, Op::Delete(_)) {
                        "DELETE FROM assembly WHERE id = ?"
                    } else {
                        "UPDATE assembly SET connection_status = CASE connection_status WHEN 'connected'
                             THEN 'disconnected' ELSE 'connected' END WHERE id = ?"
                    };
                    sqlx::query(sql).bind(id).execute(&mut c).await.unwrap();
                }
            }
            Op::Merge(events) => {
                let other = dir.path().join("other.db");
                copy_of(&dbs, &other).await;
                let mut c = raw_conn(&other).await;
                insert_raw(&mut c, events).await;
                c.close().await.unwrap();
                prepare_replacement(&other, ASSEMBLED_DB, &jiff::tz::TimeZone::UTC, false).await.unwrap();
                let merged = merge::merge(&dbs.assembled, &other, None).await.unwrap();
                prop_assert!(merged.applied);
            }
            Op::Snapshot => {
                copy_of(&dbs, &snapshot).await;
                have_snapshot = true;
            }
            Op::Restore { stale } => {
                if !have_snapshot {
                    continue;
                }
                let incoming = dir.path().join("data/incoming.db");
                std::fs::copy(&snapshot, &incoming).unwrap();
                if *stale {
                    let mut c = raw_conn(&incoming).await;
                    sqlx::raw_sql("DELETE FROM pair_state; DELETE FROM pair_other;")
                        .execute(&mut c)
                        .await
                        .unwrap();
                    c.close().await.unwrap();
                }
                // What a restore and a pull do: prepare the copy, swap it in.
                prepare_replacement(&incoming, ASSEMBLED_DB, &jiff::tz::TimeZone::UTC, false).await.unwrap();
                dbs.assembled.replace_file(&incoming, None).await.unwrap();
            }
        }
        let drift = assembly::check(&dbs.assembled).await.unwrap();
        prop_assert!(drift.is_clean(), "after step {} ({:?}): {:?}", step, op, drift);
    }
    dbs.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kept_state_equals_the_state_recomputed_from_the_log(ops in prop::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}

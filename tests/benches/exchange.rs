//! The change exchange between sites (issue 30), on the field-size fixture
//! and, with `CASMAN_BENCH_FIXTURE_10X=DIR`, on the 10× one
//! (`make_fixture_dbs.py DIR 1000000`), against moto on 127.0.0.1 and the
//! release binaries, printed in one run beside the floors measured beside
//! them:
//!
//! * a sync bringing N = 1, 100, 10,000 changes to the other site: time of
//!   `casmanctl sync sync` there (fetch and apply), per change, against the
//!   floor (a plain SDK GET of the same segment bytes plus the same rows
//!   inserted into a plain SQLite table on the same disk, 500 per commit);
//!   per-change time at 1× and at 10× (goal: flat, O(N));
//! * scan latency at that site while a 10,000-change sync applies (p50,
//!   p99; goal p99 ≤ 50 ms), against the same scans with nothing applying;
//! * Class A / Class B requests per publish and per sync (moto's log);
//! * a field month for 10 sites from those counts (R2 free tier: 1,000,000
//!   Class A, 10,000,000 Class B; goal ≤ 50 %).
//!
//! * the upgrade: each site's first sync enters its history from before
//!   the exchange and publishes it; the second site holds the same history
//!   and applies none of it again;
//!
//! The changes are disconnects of connections the fixture holds (the
//! fixture's part numbers are all issued, so no new parts are made).
//!
//! Run: `cargo build --release --bins && cargo bench -p casman-tests --bench exchange`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;
// (The backup benchmarks' helpers this one does not use.)
#[allow(dead_code)]
#[path = "common/store.rs"]
mod store;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use casman_proto::v1::{ConnectRequest, DisconnectRequest, assembly_client::AssemblyClient};
use casman_tests::{Daemon, MotoServer, sqlite};
use store::{BUCKET, requests_since, sdk_client, stats};

const SIZES: [usize; 3] = [1, 100, 10_000];
const REPEATS: usize = 3;

fn site(moto: &MotoServer, fixture: &Path, name: &str) -> Daemon {
    let dir = store::data_dir_with(fixture);
    Daemon::start_in(
        dir,
        moto.daemon_opts(BUCKET, name)
            .env("CASMAN_LOG", "warn")
            .env("CASMAN_SYNC__PULL_EVERY", "0s")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "10000000")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false"),
    )
}

/// `n` connections of the fixture, from `offset` on (source, target).
fn pairs(d: &Daemon, offset: usize, n: usize) -> Vec<(String, String)> {
    let out = sqlite(
        &d.data_dir.join("assembled_casm.db"),
        &format!(
            "SELECT source || ' ' || target FROM active_connections ORDER BY event_id LIMIT {n} OFFSET {offset}"
        ),
    );
    out.lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_owned(), b.to_owned())
        })
        .collect()
}

/// Disconnects `pairs` at `d` over 8 concurrent clients.
async fn disconnect_all(d: &Daemon, pairs: Vec<(String, String)>) {
    let channel = casman_proto::client::connect(&d.socket).await.unwrap();
    let chunks: Vec<Vec<(String, String)>> =
        pairs.chunks(pairs.len().div_ceil(8)).map(<[_]>::to_vec).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let mut c = AssemblyClient::new(channel.clone());
            tokio::spawn(async move {
                for (a, b) in chunk {
                    c.disconnect(DisconnectRequest { a, b }).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Scan latencies (ms) at `d` until `stop` says so: disconnect and connect
/// again one connection of the fixture.
async fn scan_latencies(
    d: &Daemon,
    pair: (String, String),
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<f64> {
    let channel = casman_proto::client::connect(&d.socket).await.unwrap();
    let mut c = AssemblyClient::new(channel);
    let mut out = Vec::new();
    let (a, b) = pair;
    while !*stop.borrow() {
        let t = Instant::now();
        c.disconnect(DisconnectRequest { a: a.clone(), b: b.clone() }).await.unwrap();
        out.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        c.connect(ConnectRequest { source: a.clone(), target: b.clone() }).await.unwrap();
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The floor of applying `n` changes: the segment's bytes fetched with a
/// plain SDK GET, and `n` rows inserted into a plain table, 500 per commit,
/// in a database on the same disk.
async fn floor(moto: &MotoServer, key: &str, dir: &Path, n: usize) -> Duration {
    let client = sdk_client(moto);
    let file = dir.join(format!("floor-{n}.db"));
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, at TEXT, status TEXT)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let t = Instant::now();
    let body = client.get_object().bucket(BUCKET).key(key).send().await.unwrap();
    let bytes = body.body.collect().await.unwrap().into_bytes();
    assert!(!bytes.is_empty());
    let mut left = n;
    while left > 0 {
        let k = left.min(500);
        let mut tx = pool.begin().await.unwrap();
        for i in 0..k {
            sqlx::query(
                "INSERT INTO t (a, b, at, status) VALUES (?, ?, '2026-01-01T00:00:00Z', 'disconnected')",
            )
            .bind(format!("ANT{i:05}P1"))
            .bind(format!("LNA{i:05}P1"))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        left -= k;
    }
    let took = t.elapsed();
    pool.close().await;
    took
}

/// The newest segment `site` published of assembled_casm.db.
fn newest_segment(moto: &MotoServer, site: &str) -> String {
    let log = moto.log_text();
    log.lines()
        .filter_map(|l| l.split('"').nth(1))
        .filter(|r| r.starts_with("PUT "))
        .filter_map(|r| r.split_whitespace().nth(1))
        .filter(|p| p.starts_with(&format!("/{BUCKET}/changes/assembled_casm.db/{site}/")))
        .map(|p| p.trim_start_matches(&format!("/{BUCKET}/")).split('?').next().unwrap().to_owned())
        .next_back()
        .unwrap()
}

/// Events and rows of parts.db `d` gave its identity with clock 0 (its
/// history from before the upgrade).
fn history_entered(d: &Daemon) -> i64 {
    let q = |db: &str, sql: &str| sqlite(&d.data_dir.join(db), sql).trim().parse::<i64>().unwrap();
    q("assembled_casm.db", "SELECT count(*) FROM event_origin WHERE hlc = 0")
        + q("parts.db", "SELECT count(*) FROM row_clock WHERE hlc = 0")
}

/// `field` of a `sync sync --json` answer, summed over its results
/// (64-bit numbers are strings in the proto JSON mapping).
fn count(v: &serde_json::Value, field: &str) -> i64 {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[field] {
            serde_json::Value::String(s) => s.parse().unwrap(),
            other => other.as_i64().unwrap_or(0),
        })
        .sum()
}

struct Measured {
    per_change_ms: Vec<(usize, f64)>,
}

async fn run(label: &str, fixture: &Path, moto: &MotoServer, scratch: &Path) -> Measured {
    // The upgrade: each site's history from before the exchange enters it
    // once, published by the site's first backup or sync, whichever comes
    // first (the adoption's backup, here). The time from the site being
    // ready to its first `sync sync` returning covers it; the field site
    // holds the same history and finds every event and part of the lab's
    // there already.
    let started = Instant::now();
    let lab = site(moto, fixture, &format!("lab-{label}"));
    let adopted = started.elapsed();
    let t = Instant::now();
    lab.ctl_ok(&["sync", "sync"]);
    let lab_first = t.elapsed();
    let field = site(moto, fixture, &format!("field-{label}"));
    let t = Instant::now();
    let second = field.ctl_json(&["sync", "sync"]);
    let field_first = t.elapsed();
    let entered = history_entered(&lab);
    let applied = count(&second, "applied_changes");
    let key = newest_segment(moto, &format!("lab-{label}"));
    let upgrade_floor = floor(moto, &key, scratch, entered as usize).await;
    println!(
        "[{label}] a site adopted the fixture in {:.1} s; upgrade: {entered} events and parts entered the exchange \
         and were published by the lab's first sync {:.2} s after it was ready; the field's first sync (its own \
         history, then the lab's: {applied} new) {:.2} s; floor (a segment GET + as many plain inserts) {:.2} s: \
         {:.2}x and {:.2}x",
        adopted.as_secs_f64(),
        lab_first.as_secs_f64(),
        field_first.as_secs_f64(),
        upgrade_floor.as_secs_f64(),
        lab_first.as_secs_f64() / upgrade_floor.as_secs_f64().max(0.001),
        field_first.as_secs_f64() / upgrade_floor.as_secs_f64().max(0.001),
    );
    // The shared history is not applied twice: both sites hold the same rows.
    let rows = |d: &Daemon| {
        let q = |db: &str, t: &str| sqlite(&d.data_dir.join(db), &format!("SELECT count(*) FROM {t}"));
        (q("assembled_casm.db", "assembly"), q("parts.db", "parts"))
    };
    assert_eq!(rows(&lab), rows(&field), "the sites disagree after the upgrade ({applied} applied)");
    let mut offset = 0;
    let mut per_change = Vec::new();
    for n in SIZES {
        let mut times = Vec::new();
        let mut floors = Vec::new();
        let (mut pub_req, mut sync_req) = ((0, 0), (0, 0));
        for _ in 0..REPEATS {
            disconnect_all(&lab, pairs(&lab, offset, n)).await;
            offset += n;
            let mark = moto.log_text().len();
            lab.ctl_ok(&["sync", "sync", "--assembled"]);
            pub_req = requests_since(moto, mark);
            let mark = moto.log_text().len();
            let t = Instant::now();
            field.ctl_ok(&["sync", "sync", "--assembled"]);
            times.push(t.elapsed());
            sync_req = requests_since(moto, mark);
            let key = newest_segment(moto, &format!("lab-{label}"));
            floors.push(floor(moto, &key, scratch, n).await);
        }
        let (med, min, max) = stats(&times);
        let (fmed, _, _) = stats(&floors);
        println!(
            "[{label}] sync bringing {n:>6} change(s): {med:8.1} ms ({min:.1}–{max:.1}), {:.3} ms/change; \
             floor (SDK GET + plain inserts) {fmed:.1} ms: {:.2}x; publish A/B {}/{}, sync A/B {}/{}",
            med / n as f64,
            med / fmed.max(0.001),
            pub_req.0,
            pub_req.1,
            sync_req.0,
            sync_req.1
        );
        per_change.push((n, med / n as f64));
    }
    // Scan latency at the field site while it applies 10,000 changes, and
    // with nothing applying.
    // A connection between two parts parts.db knows (the fixture's log also
    // names parts it does not hold), far from those disconnected.
    let probe = {
        let parts = field.data_dir.join("parts.db");
        let l = sqlite(
            &field.data_dir.join("assembled_casm.db"),
            &format!(
                "ATTACH '{}' AS p; SELECT source || ' ' || target FROM active_connections
                  WHERE source IN (SELECT part_number FROM p.parts) AND target IN (SELECT part_number FROM p.parts)
                  ORDER BY event_id DESC LIMIT 1",
                parts.display()
            ),
        );
        let (a, b) = l.trim().split_once(' ').expect("a connection between two known parts");
        (a.to_owned(), b.to_owned())
    };
    disconnect_all(&lab, pairs(&lab, offset, 10_000)).await;
    lab.ctl_ok(&["sync", "sync", "--assembled"]);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let field_ref: &Daemon = &field;
    let scanning = scan_latencies(field_ref, probe.clone(), rx);
    // casmanctl runs on a blocking thread: the scans go on meanwhile.
    let mut cmd = field.ctl_cmd();
    cmd.args(["sync", "sync", "--assembled"]);
    let syncing = async {
        let t = Instant::now();
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let took = t.elapsed();
        tx.send(true).unwrap();
        took
    };
    let (mut during, took) = tokio::join!(scanning, syncing);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let quiet = scan_latencies(field_ref, probe, rx);
    let stopper = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        tx.send(true).unwrap();
    };
    let (mut idle, ()) = tokio::join!(quiet, stopper);
    println!(
        "[{label}] scans while a 10,000-change sync applies ({:.1} s): {} scans, p50 {:.1} ms, p99 {:.1} ms \
         (goal ≤ 50 ms); nothing applying: p50 {:.1} ms, p99 {:.1} ms: p99 ratio {:.2}",
        took.as_secs_f64(),
        during.len(),
        pct(&mut during, 0.5),
        pct(&mut during, 0.99),
        pct(&mut idle, 0.5),
        pct(&mut idle, 0.99),
        pct(&mut during, 0.99) / pct(&mut idle, 0.99).max(0.001)
    );
    // Every change arrived, once.
    let a = sqlite(&lab.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM active_connections");
    let b = sqlite(&field.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM active_connections");
    assert_eq!(a.trim(), b.trim(), "the two sites disagree");
    Measured { per_change_ms: per_change }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let one = fixture::fixture(scratch.path());
    let m1 = run("1x", &one, &moto, scratch.path()).await;
    if let Ok(ten) = std::env::var("CASMAN_BENCH_FIXTURE_10X") {
        let m10 = run("10x", Path::new(&ten), &moto, scratch.path()).await;
        for ((n, a), (_, b)) in m1.per_change_ms.iter().zip(&m10.per_change_ms) {
            println!("per change, N = {n}: 1x {a:.3} ms, 10x {b:.3} ms: ratio {:.2} (goal: flat)", b / a);
        }
    } else {
        println!("(set CASMAN_BENCH_FIXTURE_10X=DIR to compare with the 10x fixture)");
    }
    // A field month for 10 sites: each site pulls every 5 minutes, 24 h a
    // day, 30 days (one GET of the site list and one per other site and
    // database); publishes at most once per 10 s window of 8 working hours
    // with scans (one PUT per database with news), 22 days.
    let sites = 10.0;
    let pulls = sites * 30.0 * 24.0 * 12.0;
    let class_b = pulls * (1.0 + 2.0 * (sites - 1.0));
    let windows_per_day = 1_000.0_f64.min(8.0 * 3600.0 / 10.0);
    let class_a = sites * 22.0 * windows_per_day * 1.0 + sites * 22.0 * 100.0 * 2.0;
    println!(
        "field month, 10 sites, pull every 5 min, 1,000 scans a day each: Class B {class_b:.0} ({:.1}% of 10,000,000); \
         Class A {class_a:.0} ({:.1}% of 1,000,000: one segment PUT per protected window plus a version every \
         10 scans, 2 requests each)",
        class_b / 1e5,
        class_a / 1e4
    );
}

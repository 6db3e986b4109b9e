//! Assembly benchmarks on the field-size fixture (issue 13), all measured in
//! one run, on one disk, against the real (release) casmand binary over its
//! socket:
//!
//! * per-event latency on a fresh pair, and on the same pair after 5,000 more
//!   events of it (ratio; goal <= 1.2);
//! * events/s with 1, 4 and 16 concurrent clients against the raw SQLite
//!   floor (WAL, synchronous=FULL, one INSERT per COMMIT, one writer, same
//!   directory) (goals: 16 clients >= 1.5x the floor, one client <= 2 ms/event);
//! * casmand's CPU per event at 16 clients (from /proc);
//! * `chain PART` and `history PART` on the fixture.
//!
//! Medians with min and max over repeated runs.
//!
//! The fixture: `../shared/bench/make_fixture_dbs.py OUT` (100,000 events,
//! 100,010 parts), copied into an empty data directory (casmand adopts it);
//! `CASMAN_BENCH_FIXTURE=DIR` uses an existing one (`CASMAN_SHARED_DIR` names
//! shared/ when it is not beside the checkout).
//!
//! Run: `cargo build --release --bins && cargo bench -p casman-tests --bench assembly`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;

mod common;

use std::time::Instant;

use casman_proto::v1::{
    AddPartsRequest, ConnectRequest, DisconnectRequest, GetChainRequest, GetHistoryRequest,
    assembly_client::AssemblyClient, parts_client::PartsClient,
};
use casman_tests::{Daemon, DaemonOpts};
use common::raw_pool;
use tonic::transport::Channel;

type Client = AssemblyClient<Channel>;

/// Median, min and max of `xs`.
fn stats(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn fmt_ms((med, min, max): (f64, f64, f64)) -> String {
    format!("median {:>7.3} ms (min {:.3}, max {:.3})", med * 1e3, min * 1e3, max * 1e3)
}

fn fmt_rate((med, min, max): (f64, f64, f64)) -> String {
    format!("median {med:>7.0}/s (min {min:.0}, max {max:.0})")
}

/// casmand's CPU time so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // /proc reports in USER_HZ, 100 on Linux.
    ticks / 100.0
}

/// Context switches of all casmand's threads so far (voluntary: a thread
/// went to sleep waiting, e.g. for another thread to wake it; involuntary:
/// preempted), from /proc: the cost of cross-thread handoffs.
fn context_switches(pid: u32) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return total };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        for line in status.lines() {
            let value =
                |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if line.starts_with("voluntary_ctxt_switches") {
                total.0 += value(line);
            } else if line.starts_with("nonvoluntary_ctxt_switches") {
                total.1 += value(line);
            }
        }
    }
    total
}

/// New parts of `t` (P1) generated through the socket.
async fn new_parts(channel: &Channel, t: &str, n: u32) -> Vec<String> {
    let mut p = PartsClient::new(channel.clone());
    let r = p
        .add_parts(AddPartsRequest { part_type: t.into(), count: n, polarization: "1".into() })
        .await
        .unwrap()
        .into_inner();
    r.parts.into_iter().map(|p| p.part_number).collect()
}

/// One connect and one disconnect of `a -> b`; returns each event's latency.
async fn cycle(c: &mut Client, a: &str, b: &str) -> [f64; 2] {
    let t = Instant::now();
    c.connect(ConnectRequest { source: a.into(), target: b.into() }).await.unwrap();
    let t1 = t.elapsed().as_secs_f64();
    let t = Instant::now();
    c.disconnect(DisconnectRequest { a: a.into(), b: b.into() }).await.unwrap();
    [t1, t.elapsed().as_secs_f64()]
}

/// Latencies of `events` events (connect/disconnect cycles) on one pair.
async fn latencies(c: &mut Client, a: &str, b: &str, events: u32) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..events / 2 {
        out.extend(cycle(c, a, b).await);
    }
    out
}

/// Events/s of `clients` concurrent clients, each cycling its own pair
/// `events_each / 2` times; also casmand's CPU seconds and (voluntary,
/// involuntary) context switches per event during the run.
async fn throughput(
    c: &Client,
    pairs: &[(String, String)],
    clients: usize,
    events_each: u32,
    pid: u32,
) -> (f64, f64, (f64, f64)) {
    let cpu0 = cpu_seconds(pid);
    let cs0 = context_switches(pid);
    let t = Instant::now();
    let tasks: Vec<_> = pairs[..clients]
        .iter()
        .cloned()
        .map(|(a, b)| {
            let mut c = c.clone();
            tokio::spawn(async move {
                for _ in 0..events_each / 2 {
                    cycle(&mut c, &a, &b).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let events = f64::from(events_each) * clients as f64;
    let cs = context_switches(pid);
    let per_event = ((cs.0 - cs0.0) as f64 / events, (cs.1 - cs0.1) as f64 / events);
    (events / wall, (cpu_seconds(pid) - cpu0) / events, per_event)
}

/// The floor: one INSERT per COMMIT, one writer, WAL, synchronous=FULL, in
/// `dir` (the daemon's disk). Events/s.
async fn floor(pool: &sqlx::SqlitePool, n: u32) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query(
            "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                 connected_polarization, connected_scan_time, connection_status)
             VALUES (?, 'ANTENNA', 'P1', '2026-01-01T00:00:00Z', ?, 'LNA', 'P1', '2026-01-01T00:00:00Z', 'connected')",
        )
        .bind(format!("ANT{:05}P1", i % 99_999 + 1))
        .bind(format!("LNA{:05}P1", i % 99_999 + 1))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

async fn timed<F: std::future::Future<Output = ()>>(f: F) -> f64 {
    let t = Instant::now();
    f.await;
    t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let fixture = fixture::fixture(scratch.path());
    let dir = tempfile::Builder::new().prefix("casman-bench-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    for f in ["parts.db", "assembled_casm.db"] {
        std::fs::copy(fixture.join(f), dir.path().join("data").join(f)).unwrap();
    }
    let started = Instant::now();
    // Production log level (info: one "request applied" line per write).
    // Backups off unless CASMAN_BENCH_BACKUPS=1: the default trigger backs the
    // 10 MB file up every 10 writes, which under sustained load means one
    // snapshot + zstd after another, measured here apart from the write path.
    let backups = std::env::var("CASMAN_BENCH_BACKUPS").is_ok_and(|v| v == "1");
    let mut opts = DaemonOpts::default().env("CASMAN_LOG", "info");
    if !backups {
        opts = opts.env("CASMAN_SYNC_ENABLED", "false");
    }
    let d = Daemon::start_in(dir, opts);
    println!(
        "fixture adopted and daemon ready in {:.1} s; backups {}",
        started.elapsed().as_secs_f64(),
        if backups {
            "on (every 10 writes, local directory)"
        } else {
            "off (CASMAN_BENCH_BACKUPS=1 turns them on)"
        }
    );
    let pid = d.pid();
    let channel = casman_proto::client::connect(&d.socket).await.unwrap();
    let mut c = AssemblyClient::new(channel.clone());
    // The fixture's log names parts up to number 12500 that parts.db lacks:
    // generate past them, so the pairs have no history.
    let ants = new_parts(&channel, "ANTENNA", 2_520).await;
    let lnas = new_parts(&channel, "LNA", 2_520).await;
    let pairs: Vec<(String, String)> = ants.into_iter().zip(lnas).skip(2_520 - 17).collect();
    let (a, b) = pairs[16].clone();
    println!(
        "fresh pair {a} -> {b}; fixture: 100,000 events; {} build; 2 client threads in this process",
        if cfg!(debug_assertions) { "DEBUG" } else { "release" }
    );

    // --- latency: fresh pair vs the same pair after 5,000 more events ----------------
    latencies(&mut c, &a, &b, 20).await; // warm-up
    let mut fresh = latencies(&mut c, &a, &b, 400).await;
    let t = Instant::now();
    latencies(&mut c, &a, &b, 5_000).await;
    let grow = t.elapsed().as_secs_f64();
    let mut after = latencies(&mut c, &a, &b, 400).await;
    let (fresh, after) = (stats(&mut fresh), stats(&mut after));
    println!("per event, 1 client, fresh pair            : {}", fmt_ms(fresh));
    println!("per event, same pair after 5,000 more      : {}", fmt_ms(after));
    println!(
        "  ratio after/fresh (median) {:.2} (goal <= 1.2); the 5,000 events took {:.1} s",
        after.0 / fresh.0,
        grow
    );

    // --- throughput vs the raw SQLite floor, same disk --------------------------------
    let floor_pool = raw_pool(d.data_dir.join("floor.db")).await;
    sqlx::query(
        "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, part_type TEXT, polarization TEXT,
             scan_time TEXT, connected_to TEXT, connected_to_type TEXT, connected_polarization TEXT,
             connected_scan_time TEXT, connection_status TEXT DEFAULT 'connected')",
    )
    .execute(&floor_pool)
    .await
    .unwrap();
    floor(&floor_pool, 100).await;
    const RUNS: usize = 5;
    let mut floors = Vec::new();
    // Per client count: events/s, CPU per event, context switches per event.
    type Row = (usize, Vec<f64>, Vec<f64>, Vec<(f64, f64)>);
    let mut rows: Vec<Row> = Vec::new();
    for clients in [1usize, 4, 16] {
        rows.push((clients, Vec::new(), Vec::new(), Vec::new()));
    }
    // Interleaved, so that the floor and every client count see the same disk weather.
    for _ in 0..RUNS {
        floors.push(floor(&floor_pool, 1_000).await);
        for (clients, rates, cpus, switches) in rows.iter_mut() {
            let events_each = (1_600 / *clients as u32).max(200);
            let (rate, cpu, cs) = throughput(&c, &pairs, *clients, events_each, pid).await;
            rates.push(rate);
            cpus.push(cpu);
            switches.push(cs);
        }
    }
    let floor_stats = stats(&mut floors);
    println!("raw SQLite floor (1 INSERT per COMMIT)     : {}", fmt_rate(floor_stats));
    for (clients, rates, cpus, switches) in rows.iter_mut() {
        let r = stats(rates);
        let cpu = stats(cpus);
        let voluntary = stats(&mut switches.iter().map(|s| s.0).collect::<Vec<_>>()).0;
        let involuntary = stats(&mut switches.iter().map(|s| s.1).collect::<Vec<_>>()).0;
        println!(
            "events/s, {clients:>2} client(s) via socket       : {} | {:.2}x floor | {:.3} ms/event | casmand CPU {:.0} us/event (min {:.0}, max {:.0}), {:.2} cores",
            fmt_rate(r),
            r.0 / floor_stats.0,
            1e3 / r.0,
            cpu.0 * 1e6,
            cpu.1 * 1e6,
            cpu.2 * 1e6,
            cpu.0 * r.0
        );
        println!(
            "    casmand context switches per event (median): {voluntary:.1} voluntary, {involuntary:.1} involuntary"
        );
    }
    let r16 = stats(&mut rows[2].1.clone()).0;
    let r1 = stats(&mut rows[0].1.clone()).0;
    println!(
        "  goals: 16 clients {:.2}x floor (>= 1.5) | 1 client {:.3} ms/event (<= 2) | latency ratio {:.2} (<= 1.2)",
        r16 / floor_stats.0,
        1e3 / r1,
        after.0 / fresh.0
    );

    // --- chain PART and history PART on the fixture -----------------------------------
    let mut chain = Vec::new();
    let mut history = Vec::new();
    for i in 0..201u32 {
        let k = 1 + (i * 7919) % 10_000;
        let part = format!("CXS{k:05}P1");
        let mut c2 = c.clone();
        chain.push(
            timed(async move {
                let r =
                    c2.get_chain(GetChainRequest { part, ..Default::default() }).await.unwrap().into_inner();
                assert!(r.parts.len() >= 4, "{:?}", r.parts);
            })
            .await,
        );
        let part = format!("LNA{k:05}P1");
        let mut c2 = c.clone();
        history.push(
            timed(async move {
                c2.get_history(GetHistoryRequest { part }).await.unwrap();
            })
            .await,
        );
    }
    println!("chain PART on the fixture (socket)         : {}", fmt_ms(stats(&mut chain)));
    println!("history PART on the fixture (socket)       : {}", fmt_ms(stats(&mut history)));
    let mut fresh_history = Vec::new();
    for _ in 0..51 {
        let mut c2 = c.clone();
        let part = a.clone();
        fresh_history.push(
            timed(async move {
                c2.get_history(GetHistoryRequest { part }).await.unwrap();
            })
            .await,
        );
    }
    println!("history PART of the pair with 5,820 events : {}", fmt_ms(stats(&mut fresh_history)));
    drop(d);
}

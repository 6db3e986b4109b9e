//! The change feed and the change history on the field-size fixture
//! (issue 33), against the real (release) casmand over its socket:
//!
//! * latency from a scan's acknowledgement to its arrival at a connected
//!   watcher (`Changes.WatchChanges`), and from the scan's request to the
//!   arrival, median/min/max over 300 scans, beside the floor: one SQLite
//!   commit (WAL, synchronous=FULL, one INSERT) on the same disk (goal: a
//!   change reaches a watcher within 100 ms of its commit);
//! * `casmanctl changes --since` over the last day (the scans just made)
//!   and over the whole fixture (100,000 events, 100,010 parts from before
//!   the upgrade, listed by their own dates).
//!
//! The fixture: `../shared/bench/make_fixture_dbs.py OUT`, or
//! `CASMAN_BENCH_FIXTURE=DIR` (a copy is adopted in a new data directory).
//!
//! Run: `cargo build --release --bins && cargo bench -p casman-tests --bench feed`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use casman_proto::v1::{
    AddPartsRequest, ConnectRequest, DisconnectRequest, WatchChangesRequest, assembly_client::AssemblyClient,
    changes_client::ChangesClient, parts_client::PartsClient,
};
use casman_tests::{Daemon, DaemonOpts};
use common::raw_pool;

const SCANS: u32 = 300;

fn stats(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn fmt_ms((med, min, max): (f64, f64, f64)) -> String {
    format!("median {:>8.3} ms (min {:.3}, max {:.3})", med * 1e3, min * 1e3, max * 1e3)
}

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let fixture = fixture::fixture(scratch.path());
    let dir = tempfile::Builder::new().prefix("casman-bench-feed-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    for f in ["parts.db", "assembled_casm.db"] {
        std::fs::copy(fixture.join(f), dir.path().join("data").join(f)).unwrap();
    }
    let started = Instant::now();
    let d = Daemon::start_in(dir, DaemonOpts::default().env("CASMAN_SITE_ID", "bench"));
    println!("fixture adopted and daemon ready in {:.1} s", started.elapsed().as_secs_f64());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let floor = rt.block_on(async {
        let pool = raw_pool(d.data_dir.join("floor.db")).await;
        sqlx::query("CREATE TABLE t (x)").execute(&pool).await.unwrap();
        let mut xs = Vec::new();
        for i in 0..200 {
            let t = Instant::now();
            sqlx::query("INSERT INTO t VALUES (?)").bind(i).execute(&pool).await.unwrap();
            xs.push(t.elapsed().as_secs_f64());
        }
        stats(&mut xs)
    });
    let (after_ack, after_request) = rt.block_on(async {
        let ch = casman_proto::client::connect(&d.socket).await.unwrap();
        let mut parts = PartsClient::new(ch.clone());
        for t in ["ANTENNA", "LNA"] {
            let req = AddPartsRequest { part_type: t.into(), count: SCANS, polarization: "1".into() };
            parts.add_parts(req).await.unwrap();
        }
        let first = |t: &str| {
            let t = t.to_owned();
            let mut p = PartsClient::new(ch.clone());
            async move {
                let req = casman_proto::v1::ListPartsRequest { part_type: t, limit: 1, ..Default::default() };
                let mut s = p.list_parts(req).await.unwrap().into_inner();
                let page = s.message().await.unwrap().unwrap();
                page.parts[0].part_number.clone()
            }
        };
        let (ant, lna) = (first("ANTENNA").await, first("LNA").await);
        // The watcher: its own connection, recording each arrival.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let watch_ch = casman_proto::client::connect(&d.socket).await.unwrap();
        let mut stream = ChangesClient::new(watch_ch)
            .watch_changes(WatchChangesRequest::default())
            .await
            .unwrap()
            .into_inner();
        tokio::spawn(async move {
            while let Ok(Some(m)) = stream.message().await {
                let _ = tx.send((m.kind, Instant::now()));
            }
        });
        let mut assembly = AssemblyClient::new(ch.clone());
        let (mut acked, mut requested) = (Vec::new(), Vec::new());
        for i in 0..SCANS {
            let sent = Instant::now();
            if i % 2 == 0 {
                assembly.connect(ConnectRequest { source: ant.clone(), target: lna.clone() }).await.unwrap();
            } else {
                assembly.disconnect(DisconnectRequest { a: ant.clone(), b: lna.clone() }).await.unwrap();
            }
            let ack = Instant::now();
            let want = if i % 2 == 0 { "connected" } else { "disconnected" };
            let arrived = loop {
                let (kind, at) =
                    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
                if kind == want {
                    break at;
                }
            };
            acked.push(arrived.saturating_duration_since(ack).as_secs_f64());
            requested.push(arrived.duration_since(sent).as_secs_f64());
        }
        (stats(&mut acked), stats(&mut requested))
    });
    println!("feed latency over {SCANS} scans, one watcher connected:");
    println!("  acknowledgement -> watcher   {}", fmt_ms(after_ack));
    println!("  request -> watcher           {}", fmt_ms(after_request));
    println!("  floor: one SQLite commit     {}", fmt_ms(floor));
    let since_day = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    for (what, since) in [("last day", since_day.as_str()), ("whole fixture", "1970-01-01")] {
        let mut xs = Vec::new();
        let mut lines = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let out = d
                .ctl_cmd()
                .args(["changes", "--csv", "--since", since])
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            xs.push(t.elapsed().as_secs_f64());
            assert!(out.status.success());
            lines = out.stdout.iter().filter(|b| **b == b'\n').count().saturating_sub(1);
        }
        println!("changes --since ({what}): {lines} changes, {}", fmt_ms(stats(&mut xs)));
    }
}

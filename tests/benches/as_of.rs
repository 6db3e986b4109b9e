//! The array at any moment (issue 33): what an as-of question costs beside
//! the same question about now, on the field-size fixture and, with
//! `CASMAN_BENCH_FIXTURE_10X=DIR`, the 10× one, in one run, release
//! binaries. For each size: `connections`, `chains`, `chain PART`, `positions list` and
//! `export inputs` now and
//! `--at` a recent moment (an hour before the last scan), the median scan
//! time, and an early one (the first tenth of the log), each as the ratio to
//! the same command about now (goal ≤ 2× plus the work of the pairs changed
//! since); the floor is the sqlite3 shell's SELECT of the kept state.
//!
//! Run: `cargo build --release --bins && CASMAN_BENCH_FIXTURE_10X=DIR cargo bench -p casman-tests --bench as_of`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "common/store.rs"]
mod store;

use std::{path::Path, process::Command, time::Duration};

use casman_tests::{Daemon, DaemonOpts, sqlite};
use store::stats;

/// Runs of each measure.
const REPEATS: usize = 5;

/// `cmd` into /dev/null, `REPEATS` times: wall times.
fn times(mut cmd: impl FnMut() -> Command) -> Vec<Duration> {
    (0..REPEATS).map(|_| process::run(&mut cmd()).0).collect()
}

fn line(label: &str, what: &str, xs: &[Duration], now: &[Duration]) -> String {
    let (m, lo, hi) = stats(xs);
    let (nm, _, _) = stats(now);
    format!(
        "[{label}] {what:<34} {m:>8.1} ms ({lo:.1}–{hi:.1}) | {:>5.2}x the same about now",
        m / nm.max(0.001)
    )
}

fn measure(fixture: &Path, label: &str) -> Vec<String> {
    let store = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(
        store::data_dir_with(fixture),
        DaemonOpts::local_site(store.path(), label).env("CASMAN_LOG", "warn"),
    );
    let db = d.data_dir.join("assembled_casm.db");
    let q = |sql: &str| sqlite(&db, sql).trim().to_owned();
    let events: u64 = q("SELECT count(*) FROM assembly").parse().unwrap();
    let nth = |n: u64| q(&format!("SELECT scan_time FROM assembly ORDER BY scan_time LIMIT 1 OFFSET {n}"));
    let last = q("SELECT max(scan_time) FROM assembly");
    let recent = q(&format!("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', '{last}', '-1 hour')"));
    let changed_since = |t: &str| {
        q(&format!(
            "SELECT count(*) FROM pair_state k JOIN assembly a ON a.id = k.event_id WHERE COALESCE(a.scan_time, '') > '{t}'"
        ))
    };
    let moments = [("recent", recent), ("median", nth(events / 2)), ("early", nth(events / 10))];
    // A part in the middle of a complete chain now.
    let part = q("SELECT source FROM active_connections WHERE source LIKE 'CXS%' LIMIT 1");
    let mut lines = vec![format!("[{label}] {events} events; moments: {moments:?}")];
    let floor = times(|| {
        let mut c = Command::new("sqlite3");
        c.arg(&db).arg("SELECT source, target, since, event_id FROM active_connections ORDER BY COALESCE(since, ''), event_id");
        c
    });
    let (fm, flo, fhi) = stats(&floor);
    lines.push(format!("[{label}] floor: sqlite3 SELECT of the kept state {fm:.1} ms ({flo:.1}–{fhi:.1})"));
    for (what, args) in [
        ("connections", vec!["connections"]),
        ("chains", vec!["chains"]),
        ("chain", vec!["chain", part.as_str()]),
        ("positions list", vec!["positions", "list"]),
        ("export inputs --csv", vec!["export", "inputs", "--csv"]),
    ] {
        let now = times(|| {
            let mut c = d.ctl_cmd();
            c.args(&args);
            c
        });
        lines.push(line(label, &format!("{what} (now)"), &now, &now));
        for (name, t) in &moments {
            let xs = times(|| {
                let mut c = d.ctl_cmd();
                c.args(&args).args(["--at", t]);
                c
            });
            let pairs = changed_since(t);
            lines.push(line(label, &format!("{what} --at {name} ({pairs} pairs changed since)"), &xs, &now));
        }
    }
    for l in &lines {
        println!("{l}");
    }
    lines
}

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let one = fixture::fixture(scratch.path());
    let mut all = measure(&one, "1x");
    match std::env::var("CASMAN_BENCH_FIXTURE_10X") {
        Ok(ten) => all.extend(measure(Path::new(&ten), "10x")),
        Err(_) => println!("(set CASMAN_BENCH_FIXTURE_10X=DIR to measure the 10x fixture too)"),
    }
    println!("\nmedian (min–max) of {REPEATS} runs, casmanctl into /dev/null");
    for l in all {
        println!("{l}");
    }
}

//! The multi-site property (issue 30): 3 to 5 real casmand sites on one
//! local store do seeded random work (scans, disconnects, parts added,
//! antennas placed, syncs) in random order, and some are killed (SIGKILL)
//! and restarted at random moments. After everyone syncs, every site gives
//! the same answers (connections, parts, positions), every acknowledged
//! scan is there once, no part number names two parts, and every broken
//! rule in the combined state is listed as a conflict.
//!
//! Each run prints its seed; `CASMAN_MULTISITE_SEED=N` replays one,
//! `CASMAN_MULTISITE_RUNS` sets how many (default 3; `tests/run --soak N`
//! runs N).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use casman_tests::{Daemon, DaemonOpts, sqlite};

fn site(store: &std::path::Path, name: &str) -> Daemon {
    Daemon::start_with(
        DaemonOpts::local_site(store, name).env("CASMAN_SYNC__PULL_EVERY", "0s").env("CASMAN_LOG", "warn"),
    )
}

fn lines(d: &Daemon, db: &str, sql: &str) -> Vec<String> {
    sqlite(&d.data_dir.join(db), sql).lines().map(str::to_owned).collect()
}

/// What a site answers.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    connections: Vec<String>,
    parts: Vec<String>,
    positions: Vec<String>,
    events: usize,
}

fn answers(d: &Daemon) -> Answers {
    Answers {
        connections: lines(
            d,
            "assembled_casm.db",
            "SELECT source || '>' || target FROM active_connections ORDER BY 1",
        ),
        parts: lines(d, "parts.db", "SELECT part_number FROM parts ORDER BY 1"),
        positions: lines(
            d,
            "parts.db",
            "SELECT antenna_number || '@' || grid_code FROM antenna_positions ORDER BY 1",
        ),
        events: sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly")
            .trim()
            .parse()
            .unwrap(),
    }
}

/// The parts of a type a site knows, by number.
fn numbers(d: &Daemon, prefix: &str) -> Vec<String> {
    lines(
        d,
        "parts.db",
        &format!("SELECT part_number FROM parts WHERE part_number LIKE '{prefix}%P1' ORDER BY 1"),
    )
}

fn run(seed: u64) {
    println!("multi-site seed {seed} (CASMAN_MULTISITE_SEED={seed} replays it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let store = tempfile::tempdir().unwrap();
    let n_sites = rng.usize(3..=5);
    let names: Vec<String> = (0..n_sites).map(|i| format!("site{i}")).collect();
    let mut sites: Vec<Daemon> = Vec::new();
    let first = site(store.path(), &names[0]);
    first.ctl_ok(&["parts", "add", "ANTENNA", "12", "1"]);
    first.ctl_ok(&["parts", "add", "LNA", "12", "1"]);
    first.ctl_ok(&["sync", "backup"]);
    first.ctl_ok(&["sync", "sync"]);
    sites.push(first);
    for name in &names[1..] {
        let d = site(store.path(), name);
        d.ctl_ok(&["sync", "sync"]);
        sites.push(d);
    }
    let mut acknowledged_events = 0usize;
    let mut added: BTreeMap<String, String> = BTreeMap::new();
    // Few positions, so that sites contend for them offline.
    let grid = ["CN001E01", "CN001E02", "CN002E01", "CN002E02", "CN003E01"];
    let steps = rng.usize(60..=120);
    for step in 0..steps {
        let i = rng.usize(..n_sites);
        let d = &sites[i];
        let what = rng.u32(..100);
        let log = |s: &str| println!("  {step:>2} {}: {s}", names[i]);
        match what {
            0..=39 => {
                let (ants, lnas) = (numbers(d, "ANT"), numbers(d, "LNA"));
                let (a, l) = (&ants[rng.usize(..ants.len())], &lnas[rng.usize(..lnas.len())]);
                if d.ctl(&["scan", "connect", a, l]).status.success() {
                    acknowledged_events += 1;
                    log(&format!("connect {a} {l}"));
                }
            }
            40..=54 => {
                let current =
                    lines(d, "assembled_casm.db", "SELECT source || ' ' || target FROM active_connections");
                if let Some(pair) = (!current.is_empty()).then(|| &current[rng.usize(..current.len())]) {
                    let (a, b) = pair.split_once(' ').unwrap();
                    if d.ctl(&["scan", "disconnect", a, b]).status.success() {
                        acknowledged_events += 1;
                        log(&format!("disconnect {a} {b}"));
                    }
                }
            }
            55..=62 => {
                let t = if rng.bool() { "ANTENNA" } else { "LNA" };
                let n = rng.u32(1..=3).to_string();
                let out = d.ctl(&["--json", "parts", "add", t, &n, "1"]);
                if out.status.success() {
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    for p in v["parts"].as_array().unwrap() {
                        let number = p.as_str().unwrap().to_owned();
                        assert!(
                            added.insert(number.clone(), names[i].clone()).is_none(),
                            "{number} issued twice"
                        );
                    }
                    log(&format!("parts add {t} {n}"));
                }
            }
            63..=72 => {
                let ants = numbers(d, "ANT");
                let a = ants[rng.usize(..ants.len())].trim_end_matches("P1").to_owned();
                let g = grid[rng.usize(..grid.len())];
                if d.ctl(&["positions", "assign", &a, g]).status.success() {
                    log(&format!("positions assign {a} {g}"));
                }
            }
            73..=92 => {
                d.ctl_ok(&["sync", "sync"]);
                log("sync");
            }
            _ => {
                log("kill -9, restart");
                sites[i].kill();
                sites[i].restart();
            }
        }
    }
    // Everyone syncs, twice round.
    for _ in 0..2 {
        for d in &sites {
            d.ctl_ok(&["sync", "sync"]);
        }
    }
    let first = answers(&sites[0]);
    for (d, name) in sites.iter().zip(&names) {
        let a = answers(d);
        let other = &names[0];
        assert_eq!(
            a.connections, first.connections,
            "seed {seed}: {name} and {other} disagree on connections"
        );
        assert_eq!(a.parts, first.parts, "seed {seed}: {name} and {other} disagree on parts");
        assert_eq!(a.positions, first.positions, "seed {seed}: {name} and {other} disagree on positions");
        assert_eq!(a.events, first.events, "seed {seed}: {name} and {other} disagree on the events");
    }
    assert_eq!(first.events, acknowledged_events, "seed {seed}: every acknowledged scan once");
    let parts: BTreeSet<&String> = first.parts.iter().collect();
    assert_eq!(parts.len(), first.parts.len(), "seed {seed}: a number names two parts");
    for number in added.keys() {
        assert!(parts.contains(number), "seed {seed}: {number} (added at {}) is missing", added[number]);
    }
    // Every broken connection rule is listed, at every site.
    let mut incoming: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outgoing: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &first.connections {
        let (a, b) = c.split_once('>').unwrap();
        *outgoing.entry(a).or_default() += 1;
        *incoming.entry(b).or_default() += 1;
    }
    let broken: BTreeSet<String> = incoming
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(p, _)| format!("two incoming {p}"))
        .chain(outgoing.iter().filter(|(_, n)| **n > 1).map(|(p, _)| format!("two outgoing {p}")))
        .collect();
    for (d, name) in sites.iter().zip(&names) {
        let said = d.ctl_json(&["sync", "status"]);
        let listed: BTreeSet<String> = said["databases"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|db| db["conflicts"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["kind"].as_str().is_some_and(|k| k.starts_with("two ")))
            .map(|c| format!("{} {}", c["kind"].as_str().unwrap(), c["subject"].as_str().unwrap()))
            .collect();
        assert_eq!(listed, broken, "seed {seed}: {name} lists other conflicts than the state breaks");
        let check = d.ctl(&["database", "check"]);
        let positions_conflicts = said.to_string().contains("antenna_positions");
        assert_eq!(
            check.status.success(),
            broken.is_empty() && !positions_conflicts,
            "seed {seed}: {name}: database check {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    println!(
        "seed {seed}: {n_sites} sites, {steps} steps, {} events, {} conflicts: all agree",
        first.events,
        broken.len()
    );
}

#[test]
fn sites_working_in_any_order_end_with_the_same_answers() {
    if let Some(seed) = std::env::var("CASMAN_MULTISITE_SEED").ok().and_then(|s| s.parse().ok()) {
        return run(seed);
    }
    let runs: u64 = std::env::var("CASMAN_MULTISITE_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = fastrand::u64(..1_000_000);
    for k in 0..runs {
        run(base + k);
    }
}

//! The store down while continuous protection is on: every due backup waits
//! in the offline spool (`<data>/spool/`), bounded by
//! `sync.offline_spool_max` (older entries folded), and when the store answers
//! again the spooled versions land in order, every write with them, each
//! rebuilding to its SHA-256. A kill -9 while the spool drains loses nothing
//! and records nothing twice. The real casmand and casmanctl, moto behind
//! the fault proxy (tests/src/fault_proxy.rs) on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use casman_tests::{DEADLINE, Daemon, Fault, FaultProxy, MotoServer, sqlite, wait_for};
use serde_json::Value;

const BUCKET: &str = "casman-offline";
const ASSEMBLED: &str = "assembled_casm.db";
const SPOOL_MAX: usize = 4;

/// Continuous protection by versions (the whole-file flow: with the change
/// exchange, a window closes with a change segment instead, published when
/// the store answers again; see tests/tests/exchange.rs).
fn daemon(proxy: &FaultProxy) -> Daemon {
    Daemon::start_with(
        proxy
            .daemon_opts(BUCKET, "field")
            .whole_file_sync()
            .env("CASMAN_SYNC__REPLICATE_WITHIN", "1s")
            .env("CASMAN_SYNC__RETRY_INITIAL", "1s")
            .env("CASMAN_SYNC__RETRY_MAX", "1s")
            .env("CASMAN_SYNC__OFFLINE_SPOOL_MAX", SPOOL_MAX.to_string())
            .env("CASMAN_SYNC__KEEP_VERSIONS", "1000")
            // The assembled database is small here: a delta may be most of it.
            .env("CASMAN_SYNC__DELTA_MAX_SHARE", "1")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false"),
    )
}

/// The store stops answering (every request: 503).
fn cut(proxy: &FaultProxy) {
    proxy.inject("*", "", Fault::Status(503, "ServiceUnavailable"), u32::MAX);
}

fn spool_dir(d: &Daemon) -> PathBuf {
    d.data_dir.join("spool").join(ASSEMBLED)
}

/// Versions waiting in the spool (their sidecars).
fn spooled(d: &Daemon) -> usize {
    std::fs::read_dir(spool_dir(d))
        .map_or(0, |r| r.flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".json")).count())
}

fn versions(m: &MotoServer) -> Vec<Value> {
    m.get_object(BUCKET, &format!("backups/{ASSEMBLED}/MANIFEST.json"))
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|m| m["versions"].as_array().cloned())
        .unwrap_or_default()
}

fn events(path: &Path) -> i64 {
    sqlite(path, "SELECT COUNT(*) FROM assembly").trim().parse().unwrap()
}

/// Scans `pairs` (ANTn to LNAn, n from `first`) through one interactive
/// scanning session fed on stdin: one casmanctl process for all of them.
fn scan_pairs(d: &Daemon, first: u32, pairs: u32) {
    let mut input = String::new();
    for n in first..first + pairs {
        input.push_str(&format!("ANT{n:05}P1\nLNA{n:05}P1\n"));
    }
    input.push_str("quit\n");
    let mut child = d
        .ctl_cmd()
        .args(["scan", "connection"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

/// This site's versions are in order and each one rebuilds to its SHA-256.
fn chain_is_valid(d: &Daemon, m: &MotoServer) -> Vec<Value> {
    let listed = versions(m);
    let mine: Vec<&Value> = listed.iter().filter(|v| v["site"] == "field").collect();
    for w in mine.windows(2) {
        assert!(w[0]["seq"].as_u64() < w[1]["seq"].as_u64(), "out of order: {} {}", w[0]["key"], w[1]["key"]);
        assert!(
            w[0]["created_at"].as_str() <= w[1]["created_at"].as_str(),
            "{} {}",
            w[0]["key"],
            w[1]["key"]
        );
    }
    let mut shas: Vec<&str> = listed.iter().map(|v| v["sha256"].as_str().unwrap()).collect();
    shas.sort();
    let n = shas.len();
    shas.dedup();
    assert_eq!(shas.len(), n, "a version recorded twice: {listed:?}");
    for v in listed.iter().filter(|v| v["kind"] == "delta") {
        let base = v["delta_base"].as_str().unwrap();
        assert!(listed.iter().any(|b| b["key"] == base), "{} builds on {base}, not listed", v["key"]);
    }
    let out = d.ctl_json_allow_fail(&["sync", "verify", "--all"]);
    let results = out["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.iter().all(|r| r["ok"] == true), "{out}");
    listed
}

fn setup() -> (MotoServer, FaultProxy, Daemon) {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let proxy = FaultProxy::start(moto.port);
    let d = daemon(&proxy);
    d.ctl_ok(&["parts", "add", "ANTENNA", "500", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "500", "1"]);
    d.ctl_ok(&["sync", "backup"]);
    (moto, proxy, d)
}

#[test]
fn store_down_for_500_writes_then_back_every_write_lands_in_a_valid_chain() {
    let started = Instant::now();
    let (moto, proxy, d) = setup();
    let before = versions(&moto).len();
    cut(&proxy);
    // 500 scans in batches while the store is down; the spool fills (one
    // version per retry) and stays bounded.
    let mut most = 0;
    for batch in 0..10 {
        scan_pairs(&d, batch * 50 + 1, 50);
        most = most.max(spooled(&d));
        assert!(most <= SPOOL_MAX, "{most} versions spooled, bound {SPOOL_MAX}");
    }
    assert_eq!(events(&d.data_dir.join(ASSEMBLED)), 500);
    wait_for("a spooled version", DEADLINE, || (spooled(&d) > 0).then_some(()));
    let status = d.ctl_json(&["sync", "status"]);
    let db = status["databases"].as_array().unwrap().iter().find(|x| x["db"] == ASSEMBLED).unwrap().clone();
    assert!(db["spooled"].as_u64().unwrap() > 0, "{db}");
    assert!(db["pending"].is_object(), "the backup stays pending while the store is down: {db}");
    assert_eq!(versions(&moto).len(), before, "nothing reached the store");
    eprintln!("{:?}: 500 scans done, {} spooled (most {most})", started.elapsed(), spooled(&d));

    // The store answers again: the spool drains, then the live state lands.
    proxy.clear();
    let landed = wait_for("every write in the store", Duration::from_secs(30), || {
        let listed = versions(&moto);
        let newest = listed.last()?.clone();
        (newest["record_counts"]["assembly"] == 500 && spooled(&d) == 0).then_some(newest)
    });
    eprintln!("{:?}: landed as {}", started.elapsed(), landed["key"]);
    let listed = chain_is_valid(&d, &moto);
    let new: Vec<&Value> = listed[before..].iter().collect();
    assert!(new.len() >= 2, "the spooled versions, then the live state: {new:?}");
    assert!(new.iter().any(|v| v["kind"] == "delta"), "spooled deltas: {new:?}");
    let dest = d.dir.path().join("restored.db");
    d.ctl_ok(&["sync", "restore", landed["key"].as_str().unwrap(), "--dest", dest.to_str().unwrap()]);
    assert_eq!(events(&dest), 500, "a restore of the newest version has every write");
    let status = d.ctl_json(&["sync", "status"]);
    for db in status["databases"].as_array().unwrap() {
        assert_eq!(db["spooled"], 0, "{db}");
        assert!(db["pending"].is_null(), "{db}");
    }
    assert!(started.elapsed() < Duration::from_secs(90), "took {:?}", started.elapsed());
}

#[test]
fn kill_9_while_the_spool_drains_loses_nothing_and_records_nothing_twice() {
    let (moto, proxy, mut d) = setup();
    cut(&proxy);
    let mut n = 1;
    wait_for("three spooled versions", Duration::from_secs(40), || {
        scan_pairs(&d, n, 2);
        n += 2;
        (spooled(&d) >= 3).then_some(())
    });
    let want = events(&d.data_dir.join(ASSEMBLED));
    d.kill();
    // A copy of the spool as it was, to put back later: as if a crash came
    // after versions were recorded and before their entries were removed.
    let saved = d.dir.path().join("spool-copy");
    copy_dir(&spool_dir(&d), &saved);

    // The first spooled version goes up; its manifest update hangs: kill -9.
    proxy.clear();
    let (seen, applied) = (proxy.seen().len(), proxy.applied().len());
    proxy.inject("PUT", "assembled_casm.db/MANIFEST.json", Fault::Stall(Duration::from_secs(120)), 1);
    d.restart();
    let mut ctl = d.ctl_cmd().args(["sync", "backup", "--assembled"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("a spooled version uploaded and its manifest update stalled", DEADLINE, || {
        let up = proxy.seen()[seen..].iter().any(|(m, p)| m == "PUT" && p.contains("_assembled_casm.db"));
        (up && proxy.applied().len() > applied).then_some(())
    });
    d.kill();
    let _ = ctl.wait();
    assert!(spooled(&d) >= 3, "nothing was removed from the spool before it was recorded");

    // Restarted with the store up: the spool lands, every write with it.
    proxy.clear();
    d.restart();
    d.ctl_ok(&["sync", "backup", "--assembled"]);
    assert_eq!(spooled(&d), 0);
    let listed = chain_is_valid(&d, &moto);
    let newest = listed.last().unwrap().clone();
    assert_eq!(newest["record_counts"]["assembly"], want, "{newest}");

    // The spool put back as it was: every entry is recognised as recorded.
    d.kill();
    std::fs::remove_dir_all(spool_dir(&d)).ok();
    copy_dir(&saved, &spool_dir(&d));
    d.restart();
    d.ctl_ok(&["sync", "backup", "--assembled"]);
    assert_eq!(spooled(&d), 0);
    let again = chain_is_valid(&d, &moto);
    assert_eq!(again.len(), listed.len(), "nothing recorded twice: {again:?}");
    let dest = d.dir.path().join("restored.db");
    d.ctl_ok(&["sync", "restore", newest["key"].as_str().unwrap(), "--dest", dest.to_str().unwrap()]);
    assert_eq!(events(&dest), want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

/// The kinds of the spooled entries, oldest first (from their sidecars).
fn spooled_kinds(d: &Daemon) -> Vec<String> {
    let mut sidecars: Vec<PathBuf> = std::fs::read_dir(spool_dir(d))
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    sidecars.sort();
    sidecars
        .iter()
        .map(|p| {
            let e: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            e["kind"].as_str().unwrap_or("full").to_owned()
        })
        .collect()
}

#[test]
fn the_spool_survives_a_restart_and_goes_on_with_deltas() {
    let (moto, proxy, mut d) = setup();
    cut(&proxy);
    scan_pairs(&d, 1, 1);
    wait_for("the first scan spooled", DEADLINE, || (spooled(&d) >= 1).then_some(()));
    d.kill();
    d.restart();
    scan_pairs(&d, 2, 1);
    wait_for("the second scan spooled", DEADLINE, || (spooled(&d) >= 2).then_some(()));
    // The page hashes kept beside the spool: still a delta after the restart.
    assert_eq!(spooled_kinds(&d), ["delta", "delta"]);
    proxy.clear();
    wait_for("both scans in the store", DEADLINE, || {
        let listed = versions(&moto);
        (listed.last()?["record_counts"]["assembly"] == 2 && spooled(&d) == 0).then_some(())
    });
    let listed = chain_is_valid(&d, &moto);
    let landed: Vec<&Value> = listed.iter().filter(|v| v["reason"] == "scheduled").collect();
    assert_eq!(landed.len(), 2, "{listed:?}");
    assert!(landed.iter().all(|v| v["kind"] == "delta"), "{landed:?}");
    assert_eq!(landed[1]["delta_base"], landed[0]["key"]);
}

//! Two sites with continuous protection (`sync.replicate_within`) on one S3
//! bucket (moto on 127.0.0.1): each site's scans reach the store within the
//! window on their own, the sites diverge (one stores a branch), and after
//! `sync merge` and `sync sync` both hold every scan of both; every version
//! in the manifest, deltas included, rebuilds to its recorded SHA-256. A
//! site cut off from the store spools its versions meanwhile; back online
//! they land as its branch, and the merge loses nobody's scans.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casman_tests::{DEADLINE, Daemon, Fault, FaultProxy, MotoServer, sqlite, wait_for};
use serde_json::Value;

const BUCKET: &str = "casman-continuous";
const ASSEMBLED: &str = "assembled_casm.db";

/// A site backing up by itself within 1 s of a write (no count trigger).
fn site(m: &MotoServer, name: &str) -> Daemon {
    Daemon::start_with(continuous(m.daemon_opts(BUCKET, name)))
}

fn continuous(opts: casman_tests::DaemonOpts) -> casman_tests::DaemonOpts {
    opts.whole_file_sync()
        .env("CASMAN_SYNC__REPLICATE_WITHIN", "1s")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
}

fn manifest(m: &MotoServer, db: &str) -> Value {
    let bytes = m.get_object(BUCKET, &format!("backups/{db}/MANIFEST.json")).expect("a manifest");
    serde_json::from_slice(&bytes).unwrap()
}

fn versions(m: &MotoServer, db: &str) -> Vec<Value> {
    manifest(m, db)["versions"].as_array().unwrap().clone()
}

/// Every assembly event of a site's live database, as `part>other@time`.
fn scans(d: &Daemon) -> Vec<String> {
    let out = sqlite(
        &d.data_dir.join(ASSEMBLED),
        "SELECT part_number || '>' || connected_to || '@' || scan_time FROM assembly ORDER BY 1",
    );
    out.lines().map(str::to_owned).collect()
}

/// Waits until `site` stored a version of the assembled database holding
/// `events` assembly rows, without anyone asking for a backup.
fn landed(m: &MotoServer, site: &str, events: i64) -> Value {
    wait_for(&format!("{site}'s scans in the store"), Duration::from_secs(20), || {
        let bytes = m.get_object(BUCKET, &format!("backups/{ASSEMBLED}/MANIFEST.json"))?;
        let m: Value = serde_json::from_slice(&bytes).ok()?;
        m["versions"]
            .as_array()?
            .iter()
            .find(|v| v["site"] == site && v["record_counts"]["assembly"] == events)
            .cloned()
    })
}

/// Each site syncs; one that diverged merges; then each syncs again: all
/// hold the same state.
fn converge(sites: &[&Daemon]) {
    for d in sites {
        let r = d.ctl_json_allow_fail(&["sync", "sync", "--assembled"]);
        let state = r["results"][0]["state"].as_str().unwrap().to_owned();
        if state == "diverged" {
            let merged = d.ctl_json(&["sync", "merge", "--assembled"]);
            assert_eq!(merged["results"][0]["applied"], true, "{merged}");
        } else {
            assert!(["pulled", "up-to-date"].contains(&state.as_str()), "{r}");
        }
    }
    for d in sites {
        let r = d.ctl_json_allow_fail(&["sync", "sync", "--assembled"]);
        assert!(["pulled", "up-to-date"].contains(&r["results"][0]["state"].as_str().unwrap()), "{r}");
    }
}

fn verify_all(d: &Daemon) {
    let out = d.ctl_json_allow_fail(&["sync", "verify", "--all"]);
    let results = out["results"].as_array().unwrap();
    assert!(!results.is_empty(), "{out}");
    assert!(results.iter().all(|r| r["ok"] == true), "a version does not rebuild to its SHA-256: {out}");
}

#[test]
fn two_sites_with_continuous_protection_diverge_and_merge_without_losing_scans() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "ANTENNA", "4", "1"]);
    a.ctl_ok(&["parts", "add", "LNA", "5", "1"]);
    a.ctl_ok(&["sync", "backup"]);
    let b = site(&m, "field");
    let r = b.ctl_json_allow_fail(&["sync", "sync"]);
    assert!(r["results"].as_array().unwrap().iter().any(|x| x["state"] == "pulled"), "{r}");

    // Different chains at each site, and one antenna connected to a
    // different LNA at each (a conflicting pair): nobody asks for a backup.
    a.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    b.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    a.ctl_ok(&["scan", "connect", "ANT00003P1", "LNA00003P1"]);
    b.ctl_ok(&["scan", "connect", "ANT00003P1", "LNA00004P1"]);
    let va = landed(&m, "lab", 2);
    let vb = landed(&m, "field", 2);
    // The later of the two is a branch: its parent is not the other's head.
    assert!(va["branch"] == true || vb["branch"] == true, "one site diverged: {va} {vb}");
    // A backed up before its scans: its scans' version is a delta on that.
    assert_eq!(va["kind"], "delta", "{va}");
    let (mut seen_a, mut seen_b) = (scans(&a), scans(&b));
    assert_eq!((seen_a.len(), seen_b.len()), (2, 2), "{seen_a:?} {seen_b:?}");

    // The site whose version is the branch merges the other's in; the
    // other fast-forwards to the merge.
    converge(&[&a, &b]);
    let mut all: Vec<String> = seen_a.drain(..).chain(seen_b.drain(..)).collect();
    all.sort();
    assert_eq!(scans(&a), all, "site A lost a scan");
    assert_eq!(scans(&b), all, "site B lost a scan");
    for d in [&a, &b] {
        assert_eq!(d.ctl_json(&["chain", "ANT00001P1"])["parts"][1], "LNA00001P1");
        assert_eq!(d.ctl_json(&["chain", "ANT00002P1"])["parts"][1], "LNA00002P1");
    }

    // Both keep scanning after the merge: both land, then merge again.
    a.ctl_ok(&["scan", "connect", "ANT00004P1", "LNA00005P1"]);
    let after_a = landed(&m, "lab", 5);
    b.ctl_ok(&["scan", "disconnect", "ANT00002P1", "LNA00002P1"]);
    let after_b = landed(&m, "field", 5);
    assert!(after_a["branch"] == true || after_b["branch"] == true, "{after_a} {after_b}");
    converge(&[&a, &b]);
    let final_a = scans(&a);
    assert_eq!(final_a.len(), 6, "every scan of both sites: {final_a:?}");
    assert_eq!(scans(&b), final_a);

    // Every version in the store rebuilds to its SHA-256, and every delta's
    // base is a version the manifest still lists.
    for db in ["parts.db", ASSEMBLED] {
        let listed = versions(&m, db);
        for v in listed.iter().filter(|v| v["kind"] == "delta") {
            let base = v["delta_base"].as_str().unwrap();
            assert!(listed.iter().any(|b| b["key"] == base), "{} names a missing base {base}", v["key"]);
        }
    }
    // No version repeats the content it descends from (a merge is not
    // stored a second time by the next window).
    for db in ["parts.db", ASSEMBLED] {
        for v in versions(&m, db) {
            assert_ne!(v["parent"], v["sha256"], "{} is its own parent", v["key"]);
        }
    }
    verify_all(&a);
    verify_all(&b);
    let deltas = versions(&m, ASSEMBLED).iter().filter(|v| v["kind"] == "delta").count();
    assert!(deltas >= 2, "continuous protection stored deltas: {:?}", versions(&m, ASSEMBLED));
}

/// Versions waiting in a site's offline spool for the assembled database.
fn spooled(d: &Daemon) -> usize {
    std::fs::read_dir(d.data_dir.join("spool").join(ASSEMBLED))
        .map_or(0, |r| r.flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".json")).count())
}

#[test]
fn a_site_cut_off_spools_its_scans_then_they_land_as_a_branch_and_merge() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let proxy = FaultProxy::start(m.port);
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "ANTENNA", "4", "1"]);
    a.ctl_ok(&["parts", "add", "LNA", "4", "1"]);
    a.ctl_ok(&["sync", "backup"]);
    let b = Daemon::start_with(
        continuous(proxy.daemon_opts(BUCKET, "field"))
            .env("CASMAN_SYNC__RETRY_INITIAL", "1s")
            .env("CASMAN_SYNC__RETRY_MAX", "1s"),
    );
    let r = b.ctl_json_allow_fail(&["sync", "sync"]);
    assert!(r["results"].as_array().unwrap().iter().any(|x| x["state"] == "pulled"), "{r}");

    // B loses the store and scans twice: two versions wait in its spool.
    proxy.inject("*", "", Fault::Status(503, "ServiceUnavailable"), u32::MAX);
    b.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    wait_for("B's first scan spooled", DEADLINE, || (spooled(&b) >= 1).then_some(()));
    b.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    wait_for("B's second scan spooled", DEADLINE, || (spooled(&b) >= 2).then_some(()));
    // Meanwhile A's scan lands.
    a.ctl_ok(&["scan", "connect", "ANT00003P1", "LNA00003P1"]);
    landed(&m, "lab", 1);

    // The store answers B again: its spooled versions land in order, as a
    // branch, the second a delta on the first.
    proxy.clear();
    let second = landed(&m, "field", 2);
    let first = landed(&m, "field", 1);
    wait_for("B's spool empty", DEADLINE, || (spooled(&b) == 0).then_some(()));
    assert_eq!(second["kind"], "delta", "{second}");
    assert_eq!(second["delta_base"], first["key"], "{second}");
    assert_eq!(second["parent"], first["sha256"]);
    assert!(first["branch"] == true && second["branch"] == true, "{first} {second}");
    assert!(first["created_at"].as_str() <= second["created_at"].as_str());

    let merged = b.ctl_json(&["sync", "merge", "--assembled"]);
    assert_eq!(merged["results"][0]["applied"], true, "{merged}");
    let r = a.ctl_json_allow_fail(&["sync", "sync", "--assembled"]);
    assert_eq!(r["results"][0]["state"], "pulled", "{r}");
    let all = scans(&a);
    assert_eq!(all.len(), 3, "every scan of both sites: {all:?}");
    assert_eq!(scans(&b), all);
    for v in versions(&m, ASSEMBLED) {
        assert_ne!(v["parent"], v["sha256"], "{} is its own parent", v["key"]);
    }
    verify_all(&a);
    verify_all(&b);
}

//! Sync between field sites: two casmand processes (two sites) with their own
//! data directories against one S3 server (moto on 127.0.0.1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use casman_tests::{DEADLINE, Daemon, MotoServer, sqlite, wait_for};
use serde_json::Value;

const BUCKET: &str = "casman-sites";

fn moto() -> MotoServer {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    m
}

/// A site; automatic backups are off (high count) so the tests decide when.
fn site(m: &MotoServer, name: &str) -> Daemon {
    Daemon::start_with(
        m.daemon_opts(BUCKET, name)
            .whole_file_sync()
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false"),
    )
}

fn sync(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["sync", "sync"];
    all.extend_from_slice(args);
    d.ctl_json_allow_fail(&all)["results"].as_array().unwrap().clone()
}

fn state_of<'a>(results: &'a [Value], db: &str) -> &'a Value {
    results.iter().find(|r| r["database"] == db).unwrap()
}

fn events(d: &Daemon) -> i64 {
    sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT COUNT(*) FROM assembly").trim().parse().unwrap()
}

#[test]
fn two_sites_scan_diverge_and_merge_without_losing_anything() {
    let m = moto();
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    a.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    a.ctl_ok(&["sync", "backup"]);

    // Person B at another site starts with nothing and receives A's work.
    let b = site(&m, "field");
    let r = sync(&b, &[]);
    assert_eq!(state_of(&r, "parts.db")["state"], "pulled", "{r:?}");
    assert_eq!(b.ctl_json(&["parts", "count"])["total"], 6);

    // Both scan different chains and back up: both versions are stored.
    a.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    b.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    a.ctl_ok(&["sync", "backup", "--assembled"]);
    b.ctl_ok(&["sync", "backup", "--assembled"]);
    let listed = b.ctl_json(&["sync", "list", "--db", "assembled_casm.db"]);
    let versions = listed["backups"].as_array().unwrap();
    assert!(versions.iter().any(|v| v["site"] == "lab"), "{listed}");
    assert!(versions.iter().any(|v| v["site"] == "field" && v["branch"] == true), "{listed}");

    // B syncs: the divergence is reported and B's file is untouched.
    let before = sqlite(&b.data_dir.join("assembled_casm.db"), "SELECT * FROM assembly ORDER BY id");
    let r = sync(&b, &["--assembled"]);
    let s = state_of(&r, "assembled_casm.db");
    assert_eq!(s["state"], "diverged", "{r:?}");
    assert_eq!(s["remote"]["site"], "lab");
    assert!(s["message"].as_str().unwrap().contains("lab"), "{s}");
    assert_eq!(sqlite(&b.data_dir.join("assembled_casm.db"), "SELECT * FROM assembly ORDER BY id"), before);

    // Merge: both sites' scans are present, and the current state is right.
    let merged = b.ctl_json(&["sync", "merge", "--assembled"]);
    assert_eq!(merged["results"][0]["applied"], true, "{merged}");
    assert_eq!(events(&b), 2);
    assert_eq!(b.ctl_json(&["chain", "ANT00001P1"])["parts"][1], "LNA00001P1");
    assert_eq!(b.ctl_json(&["chain", "ANT00002P1"])["parts"][1], "LNA00002P1");
    assert_eq!(merged["results"][0]["version"]["reason"], "merge");

    // A fast-forwards to the merge.
    let r = sync(&a, &["--assembled"]);
    assert_eq!(state_of(&r, "assembled_casm.db")["state"], "pulled", "{r:?}");
    assert_eq!(events(&a), 2);
    let r = sync(&b, &[]);
    assert!(r.iter().all(|x| x["state"] == "up-to-date"), "{r:?}");
}

#[test]
fn conflicting_parts_block_the_merge_until_a_side_is_preferred() {
    let m = moto();
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    a.ctl_ok(&["sync", "backup", "--parts"]);
    let b = site(&m, "field");
    sync(&b, &["--parts"]);
    // Both add boards for the same slot with different serials.
    let csv = |d: &Daemon, sn: &str| {
        let p = d.dir.path().join("boards.csv");
        std::fs::write(
            &p,
            format!("chassis,slot,sn,mac,ip,feng_id,notes\n1,A,{sn},00:11:22:33:01:00,192.168.1.1,0,x\n"),
        )
        .unwrap();
        d.ctl_ok(&["database", "load-snap-boards", "--csv", p.to_str().unwrap()]);
    };
    csv(&a, "SN-A");
    csv(&b, "SN-B");
    a.ctl_ok(&["sync", "backup", "--parts"]);
    b.ctl_ok(&["sync", "backup", "--parts"]);
    let out = b.ctl(&["--json", "sync", "merge", "--parts"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["results"][0]["conflicts"][0];
    assert_eq!(c["kind"], "boards");
    assert_eq!(c["key"], "SNAP1A");
    assert_eq!(
        sqlite(&b.data_dir.join("parts.db"), "SELECT serial_number FROM snap_boards").trim(),
        "SN-B",
        "nothing merged"
    );
    let v = b.ctl_json(&["sync", "merge", "--parts", "--prefer", "remote"]);
    assert_eq!(v["results"][0]["applied"], true);
    assert_eq!(sqlite(&b.data_dir.join("parts.db"), "SELECT serial_number FROM snap_boards").trim(), "SN-A");
}

#[test]
fn a_restore_is_not_undone_by_the_next_sync_here_or_elsewhere() {
    let m = moto();
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let old = a.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();
    a.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    a.ctl_ok(&["sync", "backup", "--parts"]);
    let b = site(&m, "field");
    sync(&b, &["--parts"]);
    assert_eq!(b.ctl_json(&["parts", "count"])["total"], 6);

    a.ctl_ok(&["sync", "restore", &old, "--yes"]);
    assert_eq!(a.ctl_json(&["parts", "count"])["total"], 3);
    let r = sync(&a, &["--parts"]);
    assert_eq!(state_of(&r, "parts.db")["state"], "up-to-date", "{r:?}");
    assert_eq!(a.ctl_json(&["parts", "count"])["total"], 3, "the restore was undone");
    // The other site follows the restore.
    let r = sync(&b, &["--parts"]);
    assert_eq!(state_of(&r, "parts.db")["state"], "pulled", "{r:?}");
    assert_eq!(b.ctl_json(&["parts", "count"])["total"], 3);
}

#[test]
fn two_sites_backing_up_in_the_same_second_both_keep_their_version() {
    let m = moto();
    let a = site(&m, "lab");
    let b = site(&m, "field");
    a.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    b.ctl_ok(&["parts", "add", "LNA", "2", "2"]);
    let kids: Vec<_> = [&a, &b]
        .iter()
        .map(|d| d.ctl_cmd().args(["sync", "backup", "--parts"]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    let listed = a.ctl_json(&["sync", "list", "--db", "parts.db"]);
    let sites: Vec<&str> =
        listed["backups"].as_array().unwrap().iter().map(|v| v["site"].as_str().unwrap()).collect();
    assert!(sites.contains(&"lab") && sites.contains(&"field"), "{listed}");
}

#[test]
fn sync_on_start_with_the_store_offline_does_no_harm() {
    let mut m = moto();
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    a.ctl_ok(&["sync", "backup"]);
    m.stop();
    let b = Daemon::start_with(m.daemon_opts(BUCKET, "field").env("CASMAN_AUTO_SYNC_ON_INSTALL", "true"));
    // A new site that never reached the store holds no block of part
    // numbers: it issues none (another site may be issuing them) and says why.
    let err = b.ctl_err(&["parts", "add", "ANTENNA", "2", "1"], 1);
    assert!(err.contains("holds no block") && err.contains("unreachable"), "{err}");
    assert_eq!(b.ctl_json(&["parts", "count"])["total"], 0);
    let err = b.ctl_err(&["sync", "sync"], 1);
    assert!(err.contains("unreachable"), "{err}");
    wait_for("b still serving", DEADLINE, || b.ctl(&["status"]).status.success().then_some(()));
}

#[test]
fn sync_on_start_fetches_the_other_sites_work() {
    let m = moto();
    let a = site(&m, "lab");
    a.ctl_ok(&["parts", "add", "LNA", "4", "1"]);
    a.ctl_ok(&["sync", "backup"]);
    let b = Daemon::start_with(m.daemon_opts(BUCKET, "field").env("CASMAN_AUTO_SYNC_ON_INSTALL", "true"));
    // While the file is swapped in, a request may be told to try again.
    wait_for("the parts pulled at start", DEADLINE, || {
        let out = b.ctl(&["--json", "parts", "count"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["total"] == 4).then_some(())
    });
}

//! The store misbehaving, through a fault-injecting proxy in front of moto on
//! 127.0.0.1: error statuses, resets in the middle of uploads and downloads,
//! truncated objects, stalls. Backups retry and land or fail in words,
//! nothing half-recorded reaches the manifest, restores refuse what does not
//! check out and leave the live database alone, and scans are served
//! throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use casman_tests::{DEADLINE, Daemon, Fault, FaultProxy, MotoServer, sqlite, wait_for};

const BUCKET: &str = "casman-faults";
/// The path of every stored version object of assembled_casm.db.
const VERSION: &str = "_assembled_casm.db.zst";

fn setup() -> (MotoServer, FaultProxy, Daemon) {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let p = FaultProxy::start(m.port);
    let d = Daemon::start_with(
        p.daemon_opts(BUCKET, "lab")
            .env("CASMAN_SYNC__RETRY_INITIAL", "200ms")
            .env("CASMAN_SYNC__RETRY_MAX", "1s")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "20", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "20", "1"]);
    (m, p, d)
}

fn connect(d: &Daemon, i: u32) {
    d.ctl_ok(&["scan", "connect", &format!("ANT{i:05}P1"), &format!("LNA{i:05}P1")]);
}

fn versions(d: &Daemon) -> Vec<serde_json::Value> {
    d.ctl_json(&["sync", "list", "--db", "assembled_casm.db"])["backups"].as_array().unwrap().clone()
}

fn rows(d: &Daemon) -> String {
    sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly").trim().to_owned()
}

/// Every version the manifest names is stored whole and checks out.
fn all_verify(d: &Daemon) {
    let out = d.ctl(&["sync", "verify", "--all"]);
    assert!(
        out.status.success(),
        "a recorded version does not verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn slowdown_and_server_errors_are_retried_and_the_backup_lands() {
    let (_m, p, d) = setup();
    connect(&d, 1);
    p.inject("PUT", VERSION, Fault::Status(503, "SlowDown"), 1);
    p.inject("PUT", VERSION, Fault::Status(500, "InternalError"), 1);
    d.ctl_ok(&["sync", "backup", "--assembled"]);
    assert_eq!(p.applied().len(), 2, "{:?}", p.applied());
    let v = versions(&d);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["record_counts"]["assembly"], 1);
    all_verify(&d);
}

#[test]
fn a_reset_in_the_middle_of_an_upload_records_nothing_half_done() {
    let (_m, p, d) = setup();
    connect(&d, 1);
    // More resets than the client's own retries: the backup fails, in words.
    p.inject("PUT", VERSION, Fault::ResetMidRequest, 10);
    let out = d.ctl(&["sync", "backup", "--assembled"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("internal error"), "says what failed: {stderr}");
    assert!(versions(&d).is_empty(), "nothing recorded for a failed upload");
    // Scans are still served while the store misbehaves.
    connect(&d, 2);
    p.clear();
    d.ctl_ok(&["sync", "backup", "--assembled"]);
    // The failed backup's state waited in the offline spool: it lands too.
    let mut counts: Vec<i64> =
        versions(&d).iter().map(|v| v["record_counts"]["assembly"].as_i64().unwrap()).collect();
    counts.sort();
    assert_eq!(counts, [1, 2], "{:?}", versions(&d));
    all_verify(&d);
}

#[test]
fn a_truncated_download_is_refused_and_the_live_database_left_alone() {
    let (_m, p, d) = setup();
    connect(&d, 1);
    d.ctl_ok(&["sync", "backup", "--assembled"]);
    let key = versions(&d)[0]["key"].as_str().unwrap().to_owned();
    connect(&d, 2);
    assert_eq!(rows(&d), "2");
    for fault in [Fault::ShortBody, Fault::ResetMidResponse] {
        p.inject("GET", VERSION, fault, 10);
        let out = d.ctl(&["sync", "restore", &key, "--no-backup", "--yes"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{fault:?}: a damaged download was restored: {stderr}");
        assert!(!stderr.contains("internal error"), "{fault:?}: says what failed: {stderr}");
        assert_eq!(rows(&d), "2", "{fault:?}: the live database is untouched");
        p.clear();
    }
    assert!(!p.applied().is_empty());
    // Whole again, the same restore goes through.
    d.ctl_ok(&["sync", "restore", &key, "--no-backup", "--yes"]);
    assert_eq!(rows(&d), "1");
}

#[test]
fn scans_are_served_while_an_upload_stalls() {
    let (_m, p, d) = setup();
    connect(&d, 1);
    p.inject("PUT", VERSION, Fault::Stall(std::time::Duration::from_secs(6)), 1);
    let mut backup =
        d.ctl_cmd().args(["sync", "backup", "--assembled"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("the upload to reach the proxy", DEADLINE, || (!p.applied().is_empty()).then_some(()));
    for i in 2..=6 {
        connect(&d, i);
    }
    assert!(backup.try_wait().unwrap().is_none(), "the scans were answered while the upload was stalled");
    let status = wait_for("the stalled backup to finish", DEADLINE, || backup.try_wait().unwrap());
    assert!(status.success());
    assert_eq!(rows(&d), "6");
    all_verify(&d);
}

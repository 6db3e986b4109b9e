//! Automatic backups against a real S3 server (moto on 127.0.0.1): count and
//! time triggers, parts generation, the store going away and coming back,
//! a crash with pending work, and writes by other programs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casman_tests::{DEADLINE, Daemon, DaemonOpts, MotoServer, sqlite, wait_for};

const BUCKET: &str = "casman-test";

fn moto() -> MotoServer {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    m
}

fn opts(m: &MotoServer) -> DaemonOpts {
    m.daemon_opts(BUCKET, "lab")
        .env("CASMAN_SYNC__RETRY_INITIAL", "200ms")
        .env("CASMAN_SYNC__RETRY_MAX", "1s")
}

/// Versions of `db` listed by the daemon (reads the manifest in the store).
fn listed(d: &Daemon, db: &str) -> Vec<serde_json::Value> {
    let out = d.ctl(&["--json", "sync", "list", "--db", db]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["backups"].as_array().unwrap().clone()
}

fn stock(d: &Daemon, n: u32) {
    d.ctl_ok(&["parts", "add", "ANTENNA", &n.to_string(), "1"]);
    d.ctl_ok(&["parts", "add", "LNA", &n.to_string(), "1"]);
}

fn connect(d: &Daemon, i: u32) {
    d.ctl_ok(&["scan", "connect", &format!("ANT{i:05}P1"), &format!("LNA{i:05}P1")]);
}

fn state(d: &Daemon, sql: &str) -> String {
    sqlite(&d.data_dir.join("state.db"), sql).trim().to_owned()
}

#[test]
fn ten_connects_and_parts_generation_trigger_backups_without_a_command() {
    let m = moto();
    let d = Daemon::start_with(opts(&m));
    stock(&d, 10);
    // Parts generation: a parts.db backup follows at once.
    let parts = wait_for("parts.db backups", DEADLINE, || {
        let v = listed(&d, "parts.db");
        (v.len() >= 2).then_some(v)
    });
    assert!(parts.iter().all(|v| v["reason"] == "parts-generated"), "{parts:?}");
    for i in 1..=9 {
        connect(&d, i);
    }
    assert!(listed(&d, "assembled_casm.db").is_empty(), "no backup before the 10th write");
    connect(&d, 10);
    let asm = wait_for("an assembly backup", DEADLINE, || {
        let v = listed(&d, "assembled_casm.db");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(asm[0]["reason"], "scheduled");
    assert_eq!(asm[0]["record_counts"]["assembly"], 10);
    // The version is in the manifest before casmand records the backup in
    // state.db: wait for that record rather than race it.
    wait_for("the write counter reset after the backup", DEADLINE, || {
        (state(&d, "SELECT writes_since_backup FROM activity WHERE database = 'assembled_casm.db'") == "0")
            .then_some(())
    });
}

#[test]
fn the_time_trigger_backs_up_old_unsaved_writes() {
    let m = moto();
    let d = Daemon::start_with(opts(&m).env("CASMAN_SYNC__BACKUP_ON_HOURS", "2s"));
    stock(&d, 1);
    connect(&d, 1);
    let asm = wait_for("a time-triggered backup", DEADLINE, || {
        let v = listed(&d, "assembled_casm.db");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(asm[0]["record_counts"]["assembly"], 1);
}

#[test]
fn backups_wait_while_the_store_is_down_and_all_land_when_it_returns() {
    let mut m = moto();
    let d = Daemon::start_with(opts(&m));
    stock(&d, 50);
    wait_for("parts.db backed up", DEADLINE, || (!listed(&d, "parts.db").is_empty()).then_some(()));
    m.stop();
    for i in 1..=50 {
        connect(&d, i);
    }
    // Every request was served; backups are pending, the counter is kept.
    wait_for("a pending backup", DEADLINE, || {
        (state(&d, "SELECT COUNT(*) FROM pending_backups WHERE database = 'assembled_casm.db'") == "1")
            .then_some(())
    });
    let err = state(&d, "SELECT last_error FROM pending_backups WHERE database = 'assembled_casm.db'");
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(
        state(&d, "SELECT writes_since_backup FROM activity WHERE database = 'assembled_casm.db'"),
        "50"
    );
    m.restart();
    m.create_bucket(BUCKET);
    // What was spooled while the store was down lands first, then the
    // current state: every write.
    wait_for("the pending backup to land, nothing lost", DEADLINE, || {
        let v = listed(&d, "assembled_casm.db");
        v.iter().any(|v| v["record_counts"]["assembly"] == 50).then_some(())
    });
    wait_for("the pending row cleared", DEADLINE, || {
        (state(&d, "SELECT COUNT(*) FROM pending_backups") == "0").then_some(())
    });
}

#[test]
fn pending_work_survives_a_crash_and_lands_after_restart() {
    let mut m = moto();
    let mut d = Daemon::start_with(opts(&m).env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "3"));
    stock(&d, 3);
    wait_for("parts.db backed up", DEADLINE, || (!listed(&d, "parts.db").is_empty()).then_some(()));
    m.stop();
    for i in 1..=3 {
        connect(&d, i);
    }
    wait_for("a pending backup", DEADLINE, || {
        (state(&d, "SELECT COUNT(*) FROM pending_backups WHERE database = 'assembled_casm.db'") == "1")
            .then_some(())
    });
    d.kill();
    d.restart();
    assert_eq!(state(&d, "SELECT COUNT(*) FROM pending_backups WHERE database = 'assembled_casm.db'"), "1");
    assert_eq!(
        state(&d, "SELECT writes_since_backup FROM activity WHERE database = 'assembled_casm.db'"),
        "3"
    );
    m.restart();
    m.create_bucket(BUCKET);
    let asm = wait_for("the pending backup to land after restart", DEADLINE, || {
        let v = listed(&d, "assembled_casm.db");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(asm[0]["record_counts"]["assembly"], 3);
}

#[test]
fn writes_by_other_programs_are_counted_once() {
    let m = moto();
    let d = Daemon::start_with(opts(&m).env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100"));
    stock(&d, 2);
    connect(&d, 1);
    let count = || state(&d, "SELECT writes_since_backup FROM activity WHERE database = 'assembled_casm.db'");
    wait_for("the daemon's own write counted", DEADLINE, || (count() == "1").then_some(()));
    sqlite(
        &d.data_dir.join("assembled_casm.db"),
        "INSERT INTO assembly (part_number, part_type, connected_to, connected_to_type, scan_time, connection_status)
         VALUES ('ANT00002P1', 'ANTENNA', 'LNA00002P1', 'LNA', '2026-01-01T00:00:00Z', 'connected')",
    );
    wait_for("the external write counted", DEADLINE, || (count() == "2").then_some(()));
    // casmand's own writes are not counted again through the file watcher.
    d.ctl_ok(&["scan", "disconnect", "ANT00001P1", "LNA00001P1"]);
    wait_for("one more", DEADLINE, || (count() == "3").then_some(()));
    // A negative check: give a double count (the watcher debounces 300 ms) the
    // time to show up; this waits for no condition.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(count(), "3");
}

#[test]
fn maintenance_runs_by_itself_when_due() {
    let m = moto();
    let d = Daemon::start_with(opts(&m).env("CASMAN_SYNC__MAINTENANCE_INTERVAL", "1s"));
    stock(&d, 1);
    // Never run before: it runs soon after start, then every interval.
    wait_for("two scheduled maintenance runs", DEADLINE, || {
        (state(&d, "SELECT COUNT(*) FROM maintenance_runs").parse::<u32>().unwrap_or(0) >= 2).then_some(())
    });
    let status = d.ctl_json(&["sync", "status"]);
    assert!(status["maintenance"]["last_at"].is_string(), "{status}");
}

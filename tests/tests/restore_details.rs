//! What a user sees around a restore: `sync status` names the restored
//! version (its key and its time), the restored file keeps the mode of the
//! one it replaced, database sizes count the WAL, durations print as the
//! configuration writes them, and `sync list` fits 100 columns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use casman_tests::{Daemon, DaemonOpts};
use serde_json::Value;

fn daemon() -> Daemon {
    Daemon::start_with(
        DaemonOpts::default()
            .env("CASMAN_SITE_ID", "lab")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    )
}

fn sync_status_of(d: &Daemon, db: &str) -> Value {
    let s = d.ctl_json(&["sync", "status"]);
    s["databases"].as_array().unwrap().iter().find(|x| x["db"] == db).unwrap().clone()
}

#[test]
fn after_a_restore_sync_status_names_the_restored_version_and_the_mode_is_kept() {
    let d = daemon();
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    let old = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    d.ctl_ok(&["sync", "backup", "--parts"]);
    let parts = d.data_dir.join("parts.db");
    std::fs::set_permissions(&parts, std::fs::Permissions::from_mode(0o640)).unwrap();

    d.ctl_ok(&["sync", "restore", &old, "--yes"]);
    let mode = std::fs::metadata(&parts).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "parts.db mode after the restore: {mode:o}");

    // The newest version is the restore's record; status pairs its key with its time.
    let list = d.ctl_json(&["sync", "list", "--db", "parts.db"]);
    let newest = &list["backups"][0];
    assert_eq!(newest["reason"], "restore", "{list}");
    let st = sync_status_of(&d, "parts.db");
    assert_eq!(st["last_backup_key"], newest["key"], "{st}");
    assert_eq!(st["last_backup_at"], newest["created_at"], "{st}");
    let human = d.ctl_ok(&["sync", "status"]);
    let line = format!("{} ({})", newest["created_at"].as_str().unwrap(), newest["key"].as_str().unwrap());
    assert!(human.contains(&line), "{line:?} not in:\n{human}");
}

#[test]
fn database_sizes_include_the_wal() {
    let d = daemon();
    d.ctl_ok(&["parts", "add", "ANTENNA", "20", "1"]);
    let parts = d.data_dir.join("parts.db");
    let wal = d.data_dir.join("parts.db-wal");
    let on_disk = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(on_disk(&wal) > 0, "the test needs data in the WAL");
    let s = d.ctl_json(&["status"]);
    let db = s["databases"].as_array().unwrap().iter().find(|x| x["name"] == "parts.db").unwrap().clone();
    assert_eq!(db["size_bytes"].as_u64().unwrap(), on_disk(&parts) + on_disk(&wal), "{db}");
    let st = sync_status_of(&d, "parts.db");
    assert_eq!(st["size_bytes"].as_u64().unwrap(), on_disk(&parts) + on_disk(&wal), "{st}");
}

#[test]
fn durations_print_as_the_configuration_writes_them() {
    let d = daemon();
    let status = d.ctl_ok(&["sync", "status"]);
    assert!(status.contains("or 24h after the last backup"), "{status}");
    let config = d.ctl_ok(&["config"]);
    for line in [
        "backup_on_hours = \"24h\"",
        "maintenance_interval = \"7d\"",
        "verify_period = \"30d\"",
        "retry_initial = \"30s\"",
        "shutdown_timeout = \"10s\"",
    ] {
        assert!(config.contains(line), "{line:?} not in:\n{config}");
    }
    assert!(!config.contains("day"), "{config}");
}

#[test]
fn sync_list_fits_100_columns_unless_wide() {
    let d = daemon();
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    d.ctl_ok(&["sync", "backup"]);
    let keys: Vec<String> = d.ctl_json(&["sync", "list"])["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    let text = d.ctl_ok(&["sync", "list"]);
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
    for k in &keys {
        assert!(text.lines().any(|l| l == k), "{k} is not a line of its own:\n{text}");
    }
    let wide = d.ctl_ok(&["sync", "list", "--wide"]);
    assert!(
        wide.lines().any(|l| l.contains(&keys[0]) && l.contains("lab") && l.contains("manual")),
        "{wide}"
    );
}

//! Objects in the store that no manifest version references (a kill between
//! an upload and the manifest update leaves one): `sync maintain` reports
//! them, deletes those older than `sync.orphan_grace`, and never a younger
//! one (an upload in progress at another site).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use casman_tests::{Daemon, DaemonOpts};
use serde_json::Value;

fn keys(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
}

#[test]
fn maintenance_reports_orphans_and_deletes_only_those_past_the_grace_period() {
    let d = Daemon::start_with(
        DaemonOpts::default()
            .env("CASMAN_SITE_ID", "lab")
            .env("CASMAN_SYNC__ORPHAN_GRACE", "1h")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let stored = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();
    let objects = d.data_dir.join("backups");
    // Uploads whose manifest update never happened: one two days old, one
    // just made; and a file of the Python CAsMan, which is never casman's
    // to delete.
    let old = "backups/parts.db/29990101_000000_lab_7_parts.db.zst";
    let young = "backups/parts.db/29990101_000001_elsewhere_1_parts.db.zst";
    let legacy = "backups/parts.db/20241208_143022_parts.db.metadata.json";
    for k in [old, young, legacy] {
        std::fs::write(objects.join(k), b"not referenced").unwrap();
    }
    for k in [old, legacy] {
        let touched = Command::new("touch").args(["-d", "2 days ago"]).arg(objects.join(k)).status().unwrap();
        assert!(touched.success());
    }

    let r = d.ctl_json(&["sync", "maintain"]);
    assert_eq!(keys(&r["orphans_deleted"]), [old], "{r}");
    assert_eq!(keys(&r["orphans"]), [young], "{r}");
    assert_eq!(keys(&r["missing"]), Vec::<String>::new(), "{r}");
    assert!(!objects.join(old).exists(), "the old orphan is deleted");
    assert!(objects.join(young).exists(), "a young orphan is kept");
    assert!(objects.join(legacy).exists(), "CAsMan's files are left alone");
    assert!(objects.join(&stored).exists(), "the referenced version is kept");
    let text = d.ctl_ok(&["sync", "maintain"]);
    assert!(text.contains(young) && text.contains("orphan"), "{text}");
    // The stored version still restores.
    let dest = d.dir.path().join("check.db");
    d.ctl_ok(&["sync", "restore", &stored, "--dest", dest.to_str().unwrap()]);
}

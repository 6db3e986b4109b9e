//! A restore keeps the database file's mode; a manifest entry altered behind
//! casman's back (its SHA-256 no longer what this site stored) is refused as
//! such by `sync sync`, naming the key, instead of reported as this site
//! diverging from itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use casman_tests::{Daemon, DaemonOpts};

fn opts() -> DaemonOpts {
    DaemonOpts::default()
        .whole_file_sync()
        .env("CASMAN_SITE_ID", "lab")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_restore_keeps_the_mode_of_the_database_file() {
    let d = Daemon::start_with(opts());
    let parts = d.data_dir.join("parts.db");
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    std::fs::set_permissions(&parts, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    d.ctl_ok(&["sync", "restore", &key, "--yes"]);
    assert_eq!(mode(&parts), 0o644, "restore kept parts.db's mode");
    std::fs::set_permissions(&parts, std::fs::Permissions::from_mode(0o640)).unwrap();
    d.ctl_ok(&["sync", "restore", &key, "--yes"]);
    assert_eq!(mode(&parts), 0o640, "restore kept parts.db's mode");
}

#[test]
fn a_tampered_sha256_in_the_manifest_is_refused_naming_the_key() {
    let d = Daemon::start_with(opts());
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let key = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();
    let manifest_path = d.data_dir.join("backups/backups/parts.db/MANIFEST.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let versions = m["versions"].as_array_mut().unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    versions[0]["sha256"] = "0".repeat(64).into();
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();

    let err = d.ctl_err(&["sync", "sync", "--parts"], 1);
    assert!(err.contains(&key), "names the key: {err}");
    assert!(err.contains("altered"), "says the entry was altered: {err}");
    assert!(!err.contains("diverged"), "{err}");
    // Nothing was stored or changed.
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(after["versions"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 3);
}

/// A delta version whose full base was replaced in the store (other bytes,
/// still a valid zstd stream) is refused naming the damaged base, by
/// restore and by verify, and nothing is changed.
#[test]
fn a_replaced_full_base_is_named_when_its_delta_version_fails() {
    let d = Daemon::start_with(opts());
    d.ctl_ok(&["parts", "add", "ANTENNA", "300", "1"]);
    let backup = |d: &Daemon| {
        d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned()
    };
    let full = backup(&d);
    assert!(full.ends_with("_parts.db.zst"), "{full}");
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let delta = backup(&d);
    assert!(delta.ends_with("_parts.db.delta.zst"), "{delta}");
    // The base's object now holds the delta's bytes: it decompresses, but
    // not to the content the manifest records for it.
    let store = d.data_dir.join("backups");
    std::fs::copy(store.join(&delta), store.join(&full)).unwrap();
    let before = d.ctl_json(&["parts", "count"])["total"].clone();

    let err = d.ctl_err(&["sync", "restore", &delta, "--yes"], 1);
    assert!(err.contains("failed the SHA-256 check"), "{err}");
    assert!(err.contains(&format!("its full base {full} is damaged")), "names the base: {err}");
    assert!(err.contains("expected sha256"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], before);

    let out = d.ctl(&["sync", "verify", "--key", &delta]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("its full base {full} is damaged")), "verify names the base: {text}");
}

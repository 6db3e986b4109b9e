//! Delta versions end to end: the real casmand and casmanctl, local-directory
//! and moto stores. A version after a few writes stores only the changed
//! pages; restoring, verifying and the standalone recovery script
//! (tools/casman-rebuild.py) all rebuild it byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, process::Command};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, Fault, FaultProxy, MotoServer, skip, sqlite, wait_for};
use serde_json::Value;

const BUCKET: &str = "casman-test";

fn opts() -> DaemonOpts {
    DaemonOpts::default()
        .env("CASMAN_SITE_ID", "lab")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
}

fn backup_parts(d: &Daemon) -> Value {
    let out = d.ctl_json(&["sync", "backup", "--parts"]);
    out["backups"].as_array().unwrap().iter().find(|b| b["database"] == "parts.db").unwrap().clone()
}

fn manifest(d: &Daemon) -> Value {
    let path = d.data_dir.join("backups/backups/parts.db/MANIFEST.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn entry(m: &Value, key: &str) -> Value {
    m["versions"].as_array().unwrap().iter().find(|v| v["key"] == key).unwrap().clone()
}

fn rows(path: &std::path::Path) -> String {
    sqlite(path, "SELECT * FROM parts ORDER BY id")
}

/// A full snapshot then deltas (`.delta.zst`, a chain), each a fraction of
/// the full size; each one restores to the content it was taken from.
fn full_then_deltas(d: &Daemon) -> Vec<(String, String)> {
    d.ctl_ok(&["parts", "add", "ANTENNA", "3000", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "3000", "1"]);
    let full = backup_parts(d);
    let key = full["key"].as_str().unwrap().to_owned();
    assert!(key.ends_with("_lab_1_parts.db.zst"), "{full}");
    let mut taken = vec![(key, rows(&d.data_dir.join("parts.db")))];
    for (i, kind) in ["COAXLONG", "CXS"].iter().enumerate() {
        d.ctl_ok(&["parts", "add", kind, "1", "1"]);
        let v = backup_parts(d);
        let key = v["key"].as_str().unwrap().to_owned();
        assert!(key.ends_with(&format!("_lab_{}_parts.db.delta.zst", i + 2)), "{v}");
        let (stored, full_stored) =
            (v["stored_bytes"].as_u64().unwrap(), full["stored_bytes"].as_u64().unwrap());
        assert!(stored * 4 < full_stored, "delta {stored} bytes vs full {full_stored}");
        taken.push((key, rows(&d.data_dir.join("parts.db"))));
    }
    taken
}

#[test]
fn deltas_restore_verify_and_rebuild_with_the_standalone_script() {
    let d = Daemon::start_with(opts().env("CASMAN_SYNC_BACKEND", "local"));
    let taken = full_then_deltas(&d);
    let m = manifest(&d);
    let last = entry(&m, &taken[2].0);
    assert_eq!(last["kind"], "delta", "{last}");
    assert_eq!(last["delta_base"], taken[1].0.as_str());
    assert_eq!(last["chain_depth"], 2);
    assert!(entry(&m, &taken[0].0).get("kind").is_none(), "full versions keep the old form");

    // Every version restores (to a copy) as it was; verify checks the chain.
    for (key, want) in &taken {
        let dest = d.dir.path().join(format!("copy-{}.db", key.len()));
        let _ = std::fs::remove_file(&dest);
        d.ctl_ok(&["sync", "restore", key, "--dest", dest.to_str().unwrap()]);
        assert_eq!(&rows(&dest), want, "{key}");
    }
    let ok = d.ctl_json(&["sync", "verify", "--all"]);
    assert!(ok["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{ok}");

    // The recovery script rebuilds the delta byte for byte.
    let restored = d.dir.path().join("by-casman.db");
    d.ctl_ok(&["sync", "restore", &taken[2].0, "--dest", restored.to_str().unwrap()]);
    match rebuild_with_script(&d, &taken[2].0, "by-script.db") {
        Some(rebuilt) => {
            let script_bytes = std::fs::read(&rebuilt).unwrap();
            assert_eq!(sha256_hex(&script_bytes), last["sha256"].as_str().unwrap());
            // casman's --dest copy is migrated/prepared; the script's is the
            // stored content: compare their rows, and the bytes to the manifest.
            assert_eq!(rows(&rebuilt), taken[2].1);
        }
        None => skip("no Python with zstandard (tests/run installs it into the venv)"),
    }

    // In place: the delta becomes the live database.
    d.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    d.ctl_ok(&["sync", "restore", &taken[1].0, "--yes"]);
    assert_eq!(rows(&d.data_dir.join("parts.db")), taken[1].1);
    // After a restore the next version is a full snapshot.
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let after = backup_parts(&d);
    assert!(after["key"].as_str().unwrap().ends_with("_parts.db.zst"), "{after}");
    assert!(!after["key"].as_str().unwrap().ends_with(".delta.zst"), "{after}");
}

#[test]
fn deltas_work_on_s3_and_a_restarted_daemon_starts_with_a_full_snapshot() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let s3 = opts()
        .env("CASMAN_SYNC_BACKEND", "s3")
        .env("R2_ENDPOINT", &moto.endpoint)
        .env("R2_BUCKET_NAME", BUCKET)
        .env("R2_ACCESS_KEY_ID", "test")
        .env("R2_SECRET_ACCESS_KEY", "test")
        .env("CASMAN_STORE__PATH_STYLE", "true");
    let mut d = Daemon::start_with(s3);
    let taken = full_then_deltas(&d);
    let dest = d.dir.path().join("copy.db");
    d.ctl_ok(&["sync", "restore", &taken[2].0, "--dest", dest.to_str().unwrap()]);
    assert_eq!(rows(&dest), taken[2].1);
    d.kill();
    d.restart();
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let v = backup_parts(&d);
    let key = v["key"].as_str().unwrap();
    assert!(key.ends_with("_lab_4_parts.db.zst"), "no page record after a restart: full ({v})");
}

/// A chain of 17 deltas: versions 1-7 are deltas of the one before, 8 of
/// the full snapshot, 9-15 of 8, 16 of 8, 17 of 16 (docs/object-format.md);
/// each rebuilds to its content, through casman and through the script.
#[test]
fn every_eighth_delta_skips_back_so_chains_rebuild_in_few_steps() {
    let d = Daemon::start_with(
        opts()
            .env("CASMAN_SYNC_BACKEND", "local")
            .env("CASMAN_SYNC__KEEP_VERSIONS", "50")
            .env("CASMAN_SYNC__DELTA_MAX_SHARE", "1"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "9000", "1"]);
    let mut taken =
        vec![(backup_parts(&d)["key"].as_str().unwrap().to_owned(), rows(&d.data_dir.join("parts.db")))];
    for _ in 1..=17 {
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        taken
            .push((backup_parts(&d)["key"].as_str().unwrap().to_owned(), rows(&d.data_dir.join("parts.db"))));
    }
    let m = manifest(&d);
    for (depth, base) in [(1, 0), (7, 6), (8, 0), (9, 8), (15, 14), (16, 8), (17, 16)] {
        let v = entry(&m, &taken[depth].0);
        assert_eq!(v["kind"], "delta", "{v}");
        assert_eq!(v["chain_depth"], depth, "{v}");
        assert_eq!(v["delta_base"], taken[base].0.as_str(), "base of version {depth}: {v}");
    }
    for depth in [8, 15, 16, 17] {
        let (key, want) = &taken[depth];
        let dest = d.dir.path().join(format!("depth-{depth}.db"));
        d.ctl_ok(&["sync", "restore", key, "--dest", dest.to_str().unwrap()]);
        assert_eq!(&rows(&dest), want, "{key}");
    }
    let ok = d.ctl_json(&["sync", "verify", "--all"]);
    assert!(ok["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{ok}");
    match rebuild_with_script(&d, &taken[17].0, "by-script-17.db") {
        Some(rebuilt) => {
            let bytes = std::fs::read(&rebuilt).unwrap();
            assert_eq!(sha256_hex(&bytes), entry(&m, &taken[17].0)["sha256"].as_str().unwrap());
            assert_eq!(rows(&rebuilt), taken[17].1);
        }
        None => skip("no Python with zstandard (tests/run installs it into the venv)"),
    }
}

/// Rebuilds `key` from the local store of `d` with tools/casman-rebuild.py
/// into `name` (in the test's directory); `None` without a Python that has
/// zstandard.
fn rebuild_with_script(d: &Daemon, key: &str, name: &str) -> Option<PathBuf> {
    let python = python_with_zstandard()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/casman-rebuild.py");
    let rebuilt = d.dir.path().join(name);
    let out = Command::new(python)
        .arg(&script)
        .arg(d.data_dir.join("backups"))
        .arg(key)
        .arg(&rebuilt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(rebuilt)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// `$CASMAN_PYTHON`, else the venv's Python, if it imports zstandard.
fn python_with_zstandard() -> Option<PathBuf> {
    let python = std::env::var_os("CASMAN_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let venv = std::env::var_os("CASMAN_VENV").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/casman-venv")
        });
        venv.join("bin/python")
    });
    let ok =
        Command::new(&python).args(["-c", "import zstandard"]).output().is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// With `sync.replicate_within`, a scan is in the store within the window
/// (plus slack for the backup itself), without any count or time trigger.
#[test]
fn with_a_replication_window_a_scan_reaches_the_store_within_it() {
    let window = std::time::Duration::from_secs(2);
    let d = Daemon::start_with(
        opts().env("CASMAN_SYNC_BACKEND", "local").env("CASMAN_SYNC__REPLICATE_WITHIN", "2s"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    d.ctl_ok(&["sync", "backup"]);
    // Sites exchange changes: a window closes with the scan's change
    // segment in the store (not a version: see tests/tests/exchange.rs).
    let segments = d.data_dir.join("backups/changes/assembled_casm.db");
    let count = || -> usize {
        std::fs::read_dir(&segments)
            .map(|sites| {
                sites
                    .flatten()
                    .filter_map(|s| std::fs::read_dir(s.path()).ok())
                    .flat_map(|f| f.flatten())
                    .filter(|f| f.file_name().to_string_lossy().ends_with(".json.zst"))
                    .count()
            })
            .unwrap_or(0)
    };
    for (ant, lna) in [("ANT00001P1", "LNA00001P1"), ("ANT00002P1", "LNA00002P1")] {
        let before = count();
        let acknowledged = std::time::Instant::now();
        d.ctl_ok(&["scan", "connect", ant, lna]);
        let slack = std::time::Duration::from_secs(3);
        casman_tests::wait_for("the scan's change segment in the store", window + slack, || {
            (count() > before).then_some(())
        });
        let took = acknowledged.elapsed();
        eprintln!("scan durable after {took:?} (window {window:?})");
    }
}

/// Retention at capacity keeps every object a kept delta is built on, and
/// every kept version still restores.
#[test]
fn retention_keeps_the_chain_of_every_kept_delta() {
    let d =
        Daemon::start_with(opts().env("CASMAN_SYNC_BACKEND", "local").env("CASMAN_SYNC__KEEP_VERSIONS", "2"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "3000", "1"]);
    let full = backup_parts(&d)["key"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        backup_parts(&d);
    }
    let m = manifest(&d);
    let listed: Vec<&str> =
        m["versions"].as_array().unwrap().iter().map(|v| v["key"].as_str().unwrap()).collect();
    assert!(listed.contains(&full.as_str()), "the chain's full snapshot stays: {listed:?}");
    let objects = d.data_dir.join("backups/backups/parts.db");
    for key in &listed {
        assert!(objects.join(key.rsplit('/').next().unwrap()).exists(), "{key} listed but deleted");
    }
    let ok = d.ctl_json(&["sync", "verify", "--all"]);
    assert!(ok["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{ok}");
}

/// kill -9 after a delta is uploaded and before the manifest lists it: no
/// version is lost or half-recorded; after the restart the next backup (full:
/// the page record is gone) stores what was missing, and every listed version
/// verifies.
#[test]
fn kill_9_between_a_delta_upload_and_its_manifest_update() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let proxy = FaultProxy::start(moto.port);
    let mut d = Daemon::start_with(
        proxy
            .daemon_opts(BUCKET, "lab")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "3000", "1"]);
    backup_parts(&d);
    d.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    let wanted = rows(&d.data_dir.join("parts.db"));
    // The delta goes up; its manifest update hangs until the daemon is killed.
    proxy.inject("PUT", "parts.db/MANIFEST.json", Fault::Stall(std::time::Duration::from_secs(120)), 1);
    let mut ctl =
        d.ctl_cmd().args(["sync", "backup", "--parts"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    wait_for("the delta uploaded and the manifest update stalled", DEADLINE, || {
        let seen = proxy.seen();
        let delta = seen.iter().any(|(m, p)| m == "PUT" && p.contains("_parts.db.delta.zst"));
        (delta && !proxy.applied().is_empty()).then_some(())
    });
    d.kill();
    let _ = ctl.wait();
    proxy.clear();
    d.restart();
    let listed = d.ctl_json(&["sync", "list", "--db", "parts.db"]);
    let keys: Vec<String> =
        listed["backups"].as_array().unwrap().iter().map(|v| v["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(keys.len(), 1, "the unrecorded delta is not listed: {keys:?}");
    let v = backup_parts(&d);
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(!key.ends_with(".delta.zst"), "after a restart the next version is full: {v}");
    let dest = d.dir.path().join("after.db");
    d.ctl_ok(&["sync", "restore", &key, "--dest", dest.to_str().unwrap()]);
    assert_eq!(rows(&dest), wanted);
    let ok = d.ctl_json(&["sync", "verify", "--all"]);
    assert!(ok["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{ok}");
}

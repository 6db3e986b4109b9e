//! What a backup and a restore cost (issue 14), checked for what it means to
//! users: a restore of a stored version uploads nothing, keeps the replaced
//! file as the local safety copy, and no sync undoes it; an unchanged database
//! is noticed without a snapshot, and a write by another program to the file
//! is not missed; a daemon killed in the middle of a backup's upload or a
//! restore's download leaves the old file, whole, and no temporary files.
//! Real casmand, casmanctl, moto on 127.0.0.1 (behind the fault proxy where a
//! request must be held).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{process::Stdio, time::Duration};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, Fault, FaultProxy, MotoServer, sqlite, wait_for};
use serde_json::Value;

const BUCKET: &str = "casman-cost";

fn quiet(opts: DaemonOpts) -> DaemonOpts {
    // The tests decide when backups happen.
    opts.env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
}

fn backup_parts(d: &Daemon) -> Value {
    d.ctl_json(&["sync", "backup", "--parts"])["backups"][0].clone()
}

/// Version objects (not the manifest) uploaded since byte `from` of moto's log.
fn version_puts_since(m: &MotoServer, from: usize) -> Vec<String> {
    let log = m.log_text();
    log[from.min(log.len())..]
        .lines()
        // Not the sidecars (`<key>.meta.json`) beside them, nor the change
        // segments a sync publishes.
        .filter(|l| {
            l.contains("\"PUT /")
                && l.contains("/backups/")
                && l.contains(".zst")
                && !l.contains(".meta.json")
        })
        .map(str::to_owned)
        .collect()
}

fn count(d: &Daemon) -> u64 {
    d.ctl_json(&["parts", "count"])["total"].as_u64().unwrap()
}

#[test]
fn restoring_a_stored_version_uploads_nothing_keeps_the_replaced_file_and_sync_does_not_undo_it() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let d = Daemon::start_with(quiet(m.daemon_opts(BUCKET, "lab")));
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let old = backup_parts(&d)["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let new = backup_parts(&d)["key"].as_str().unwrap().to_owned();

    let mark = m.log_text().len();
    // With the safety backup: the current state is the stored `new`, so the
    // safety backup is that version and nothing is uploaded either.
    let out = d.ctl_json(&["sync", "restore", &old, "--yes"]);
    assert_eq!(out["restored"]["key"], old.as_str(), "{out}");
    assert_eq!(out["safety_backup"]["key"], new.as_str(), "{out}");
    assert_eq!(version_puts_since(&m, mark), Vec::<String>::new(), "a restore uploaded a version");
    assert_eq!(count(&d), 3);
    // The replaced file is the local copy, whole.
    let copy = std::path::PathBuf::from(out["local_copy"].as_str().unwrap());
    assert_eq!(sqlite(&copy, "PRAGMA integrity_check").trim(), "ok");
    assert_eq!(sqlite(&copy, "SELECT COUNT(*) FROM parts").trim(), "6");

    // The manifest records the restore as the newest version: the same object.
    let listed = d.ctl_json(&["sync", "list", "--db", "parts.db"]);
    let newest = &listed["backups"][0];
    assert_eq!(
        (newest["reason"].as_str(), newest["key"].as_str()),
        (Some("restore"), Some(old.as_str())),
        "{listed}"
    );
    // A sync does not undo it, and backing up now uploads nothing.
    d.ctl_ok(&["sync", "sync", "--parts"]);
    assert_eq!(count(&d), 3, "the restore was undone");
    assert_eq!(backup_parts(&d)["uploaded"], false);
    assert_eq!(version_puts_since(&m, mark), Vec::<String>::new());

    // The restored version is a version like any other: verify, then work on.
    let verified = d.ctl_json(&["sync", "verify", "--all"]);
    assert!(verified["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{verified}");
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let after = backup_parts(&d);
    assert_eq!(after["uploaded"], true, "{after}");
    assert_eq!(version_puts_since(&m, mark).len(), 1);
}

#[test]
fn a_write_by_another_program_is_not_mistaken_for_no_change() {
    let d = Daemon::start_with(quiet(DaemonOpts::default().env("CASMAN_SITE_ID", "lab")));
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    let first = backup_parts(&d);
    assert_eq!(first["uploaded"], true);
    assert_eq!(backup_parts(&d)["uploaded"], false, "nothing changed");
    // A lab script writes to the file directly (not through casmand).
    sqlite(
        &d.data_dir.join("parts.db"),
        "UPDATE parts SET date_modified = '2027-01-01T00:00:00Z' WHERE id = 1",
    );
    let second = backup_parts(&d);
    assert_eq!(second["uploaded"], true, "the outside write was missed: {second}");
    assert_ne!(second["sha256"], first["sha256"]);
    assert_eq!(backup_parts(&d)["uploaded"], false);
    // The stored version holds the outside write.
    let dest = d.dir.path().join("copy.db");
    d.ctl_ok(&["sync", "restore", second["key"].as_str().unwrap(), "--dest", dest.to_str().unwrap()]);
    assert_eq!(sqlite(&dest, "SELECT date_modified FROM parts WHERE id = 1").trim(), "2027-01-01T00:00:00Z");
}

/// The files in the data directory's `tmp/`.
fn tmp_files(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.data_dir.join("tmp"))
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn a_daemon_killed_during_an_upload_or_a_download_leaves_the_old_file_and_no_temporary_files() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let p = FaultProxy::start(m.port);
    let mut d = Daemon::start_with(quiet(p.daemon_opts(BUCKET, "lab")));
    d.ctl_ok(&["parts", "add", "ANTENNA", "500", "1"]);
    let key = backup_parts(&d)["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["parts", "add", "LNA", "300", "1"]);
    let parts = d.data_dir.join("parts.db");

    for (method, what) in [("PUT", "backup"), ("GET", "restore")] {
        // Hold the version object's request (the manifest passes) until the kill.
        p.inject(method, "_parts.db.zst", Fault::Stall(Duration::from_secs(60)), 1);
        let seen_before = p.seen().len();
        let args: Vec<&str> = match what {
            "backup" => vec!["sync", "backup", "--parts"],
            _ => vec!["sync", "restore", &key, "--no-backup", "--yes"],
        };
        let mut child = d.ctl_cmd().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_for(&format!("the {what} to reach the store"), DEADLINE, || {
            p.seen()[seen_before..]
                .iter()
                .any(|(m, path)| m == method && path.contains("_parts.db.zst"))
                .then_some(())
        });
        assert!(!tmp_files(&d).is_empty(), "{what}: the test needs the temporary files to exist");
        d.kill();
        let _ = child.wait();
        p.clear();
        assert_eq!(sqlite(&parts, "PRAGMA integrity_check").trim(), "ok", "{what}");
        assert_eq!(sqlite(&parts, "SELECT COUNT(*) FROM parts").trim(), "800", "{what}: not the old file");
        d.restart();
        assert_eq!(tmp_files(&d), Vec::<String>::new(), "{what}: temporary files left after the restart");
        assert_eq!(count(&d), 800);
    }
    // Nothing half-recorded: the next backup stores the state, and it restores.
    let done = backup_parts(&d);
    assert_eq!(done["uploaded"], true, "{done}");
    d.ctl_ok(&["sync", "restore", &key, "--no-backup", "--yes"]);
    assert_eq!(count(&d), 500);
}

fn parts_status(d: &Daemon) -> Value {
    let s = d.ctl_json(&["sync", "status"]);
    s["databases"].as_array().unwrap().iter().find(|x| x["db"] == "parts.db").unwrap().clone()
}

#[test]
fn a_store_that_lost_everything_is_noticed_and_the_current_state_stored_again() {
    let mut m = MotoServer::start();
    m.create_bucket(BUCKET);
    let d = Daemon::start_with(quiet(m.daemon_opts(BUCKET, "lab")));
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let key = backup_parts(&d)["key"].as_str().unwrap().to_owned();
    assert_eq!(parts_status(&d)["lost"], "");
    // The store forgets everything (moto keeps nothing across a restart).
    m.stop();
    m.restart();
    m.create_bucket(BUCKET);
    let st = parts_status(&d);
    assert_eq!(st["lost"], key.as_str(), "{st}");
    let human = d.ctl_ok(&["sync", "status"]);
    assert!(human.contains("no longer holds the last backup"), "{human}");
    // Maintenance says so and fails, and stores the current state again.
    let out = d.ctl(&["sync", "maintain"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "maintain exited 0 with the store emptied:\n{text}");
    assert!(text.contains(&format!("missing: {key}")), "{text}");
    let listed = d.ctl_json(&["sync", "list", "--db", "parts.db"]);
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(parts_status(&d)["lost"], "");
    d.ctl_ok(&["sync", "maintain"]);
    // What was stored again restores.
    let again = listed["backups"][0]["key"].as_str().unwrap().to_owned();
    let dest = d.dir.path().join("again.db");
    d.ctl_ok(&["sync", "restore", &again, "--dest", dest.to_str().unwrap()]);
    assert_eq!(sqlite(&dest, "SELECT COUNT(*) FROM parts").trim(), "3");
}

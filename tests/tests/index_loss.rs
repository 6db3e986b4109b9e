//! A store that survives losing its index (issue 31): with
//! `backups/<db>/MANIFEST.json` deleted or truncated, no backup starts a new
//! history and maintenance deletes nothing; the manifest is rebuilt from the
//! objects (their `.meta.json` sidecars, or the objects themselves for
//! versions stored without one), automatically or by `casmanctl sync
//! repair`; every earlier version restores and sequences continue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

use casman_tests::{Daemon, DaemonOpts, MotoServer};
use serde_json::Value;

const MANIFEST: &str = "backups/parts.db/MANIFEST.json";

/// How long a test waits for something that takes moments.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn opts() -> DaemonOpts {
    DaemonOpts::default()
        .env("CASMAN_SITE_ID", "lab")
        .env("CASMAN_SYNC__ORPHAN_GRACE", "1h")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
}

fn count(d: &Daemon) -> u64 {
    d.ctl_json(&["parts", "count"])["total"].as_u64().unwrap()
}

/// Adds `n` antennas and backs parts.db up; returns the stored version.
fn add_and_back_up(d: &Daemon, n: u32) -> Value {
    d.ctl_ok(&["parts", "add", "ANTENNA", &n.to_string(), "1"]);
    let v = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0].clone();
    assert_eq!(v["uploaded"], true, "{v}");
    v
}

fn listed(d: &Daemon) -> Vec<(String, u64)> {
    let l = d.ctl_json(&["sync", "list", "--db", "parts.db"]);
    let mut v: Vec<(String, u64)> = l["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["key"].as_str().unwrap().to_owned(), b["seq"].as_u64().unwrap()))
        .collect();
    v.sort_by_key(|(_, seq)| *seq);
    v
}

/// Every file under the local store's `backups/parts.db/`, relative keys.
fn objects(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("backups/parts.db"))
        .unwrap()
        .map(|e| format!("backups/parts.db/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

fn age_everything(root: &Path) {
    for k in objects(root) {
        let ok = Command::new("touch").args(["-d", "2 days ago"]).arg(root.join(&k)).status().unwrap();
        assert!(ok.success());
    }
}

/// Restores each version in place (no safety copy) and checks the part count.
fn restore_each(d: &Daemon, versions: &[(String, u64)]) {
    for (key, expected) in versions {
        d.ctl_ok(&["sync", "restore", key, "--no-backup", "--yes"]);
        assert_eq!(count(d), *expected, "{key}");
    }
}

#[test]
fn a_deleted_manifest_is_rebuilt_nothing_is_deleted_and_every_version_restores() {
    let d = Daemon::start_with(opts().env("CASMAN_SYNC__ORPHAN_GRACE", "1s"));
    let root = d.data_dir.join("backups");
    let mut stored = Vec::new();
    for (n, total) in [(3, 3), (2, 5), (4, 9)] {
        let v = add_and_back_up(&d, n);
        stored.push((v["key"].as_str().unwrap().to_owned(), total));
    }
    assert!(stored[1].0.ends_with(".delta.zst"), "the second version is a delta: {stored:?}");
    for (key, _) in &stored {
        assert!(root.join(format!("{key}.meta.json")).exists(), "each version has its sidecar: {key}");
    }
    // The first version as stored before sidecars existed: described from its content.
    std::fs::remove_file(root.join(format!("{}.meta.json", stored[0].0))).unwrap();
    let before = objects(&root);

    // The index is lost; everything is older than the orphan grace.
    std::fs::remove_file(root.join(MANIFEST)).unwrap();
    age_everything(&root);
    let r = d.ctl_json(&["sync", "maintain"]);
    assert_eq!(r["orphans_deleted"], Value::Array(vec![]), "{r}");
    let mut after = objects(&root);
    after.retain(|k| k != MANIFEST);
    let mut expected = before.clone();
    expected.retain(|k| k != MANIFEST);
    assert_eq!(after, expected, "maintenance deleted nothing");
    assert!(root.join(MANIFEST).exists(), "the manifest was rebuilt");
    assert!(d.log_text().contains("rebuilding the manifest"), "a warning says so");
    let keys: Vec<String> = listed(&d).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, stored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());

    // Lost again: `sync repair` rebuilds it; a readable one is left alone.
    std::fs::remove_file(root.join(MANIFEST)).unwrap();
    let rep = d.ctl_json(&["sync", "repair", "--parts"]);
    assert_eq!(rep["results"][0]["repaired"], true, "{rep}");
    assert_eq!(rep["results"][0]["versions"], 3, "{rep}");
    assert!(rep["results"][0]["detail"].as_str().unwrap().contains("missing"), "{rep}");
    let again = d.ctl_json(&["sync", "repair", "--parts"]);
    assert_eq!(again["results"][0]["repaired"], false, "{again}");

    let verified = d.ctl_json(&["sync", "verify", "--all", "--db", "parts.db"]);
    let results = verified["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{verified}");
    assert!(results.iter().all(|r| r["ok"] == true), "{verified}");
    restore_each(&d, &stored);

    // Lost once more, then a backup: it rebuilds first (the restore records
    // too), the sequence continues.
    let before = listed(&d);
    assert_eq!(before.len(), 6, "three versions, three restore records: {before:?}");
    std::fs::remove_file(root.join(MANIFEST)).unwrap();
    let v = add_and_back_up(&d, 1);
    assert_eq!(v["seq"], 7, "{v}");
    assert_eq!(listed(&d).len(), 7);
    restore_each(&d, &stored[..1]);
}

#[test]
fn maintenance_deletes_no_orphan_when_the_manifest_lost_history() {
    let d = Daemon::start_with(opts().env("CASMAN_SYNC__DELTA_CHAIN_MAX", "0"));
    let root = d.data_dir.join("backups");
    let first = add_and_back_up(&d, 3)["key"].as_str().unwrap().to_owned();
    let second = add_and_back_up(&d, 2)["key"].as_str().unwrap().to_owned();
    // A manifest that no longer lists the first version (recreated or
    // replaced behind casman's back).
    let path = root.join(MANIFEST);
    let mut m: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(m["history_since"].is_string(), "casman records when the history starts: {m}");
    m["versions"].as_array_mut().unwrap().retain(|v| v["key"] != first.as_str());
    // Recreated: its history starts with the version it lists.
    m["history_since"] = m["versions"][0]["created_at"].clone();
    // Later than the first version's key: the daemon re-reads it.
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    age_everything(&root);
    let r = d.ctl_json_allow_fail(&["sync", "maintain"]);
    assert_eq!(r["orphans_deleted"], Value::Array(vec![]), "{r}");
    let errors = r["errors"].to_string();
    assert!(errors.contains("lost history") && errors.contains(&first), "{r}");
    assert!(root.join(&first).exists() && root.join(&second).exists());
    assert!(root.join(format!("{first}.meta.json")).exists());

    // The same manifest as an older casman (no `history_since`) or another
    // tool writes it: its history starts at the oldest version it lists.
    m.as_object_mut().unwrap().remove("history_since");
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    age_everything(&root);
    let r = d.ctl_json_allow_fail(&["sync", "maintain"]);
    assert_eq!(r["orphans_deleted"], Value::Array(vec![]), "{r}");
    let errors = r["errors"].to_string();
    assert!(errors.contains("lost history") && errors.contains(&first), "{r}");
    assert!(root.join(&first).exists() && root.join(format!("{first}.meta.json")).exists());
}

/// A backup killed between uploading its object and sidecar and updating
/// the manifest (a power cut at a field site) leaves them unlisted, under
/// the sequence number the site's next version takes again. Once retention
/// has moved past it, it is still an ordinary orphan: maintenance deletes
/// it past `sync.orphan_grace` and reports no error, every listed version
/// still verifies, and the next run finds nothing more.
#[test]
fn an_upload_a_crash_left_unrecorded_is_deleted_as_an_orphan_after_retention_moved_past_it() {
    let d = Daemon::start_with(
        opts().env("CASMAN_SYNC__KEEP_VERSIONS", "2").env("CASMAN_SYNC__DELTA_CHAIN_MAX", "0"),
    );
    let root = d.data_dir.join("backups");
    let first = add_and_back_up(&d, 3)["key"].as_str().unwrap().to_owned();
    assert!(first.contains("_lab_1_"), "{first}");
    // The time in a key (`<yyyymmdd_HHMMSS>_...`), as the manifest writes times.
    let created = |key: &str| {
        let (d, t) = key["backups/parts.db/".len()..].split_at(8);
        format!("{}-{}-{}T{}:{}:{}Z", &d[0..4], &d[4..6], &d[6..8], &t[1..3], &t[3..5], &t[5..7])
    };
    // The killed backup started after the first version's second (a key's
    // time has whole seconds): its object and sidecar, under the key it
    // took (sequence 2), no manifest entry.
    let first_stamp = first["backups/parts.db/".len()..].split_at("yyyymmdd_HHMMSS".len()).0.to_owned();
    let stamp = casman_tests::wait_for("the clock to pass the first version's second", DEADLINE, || {
        let now = jiff::Timestamp::now().strftime("%Y%m%d_%H%M%S").to_string();
        (now > first_stamp).then_some(now)
    });
    let leftover = first.replace(&format!("{first_stamp}_lab_1_"), &format!("{stamp}_lab_2_"));
    assert_ne!(leftover, first);
    std::fs::copy(root.join(&first), root.join(&leftover)).unwrap();
    let mut side: Value =
        serde_json::from_slice(&std::fs::read(root.join(format!("{first}.meta.json"))).unwrap()).unwrap();
    side["version"]["key"] = Value::from(leftover.as_str());
    side["version"]["seq"] = Value::from(2);
    side["version"]["created_at"] = Value::from(created(&leftover));
    std::fs::write(root.join(format!("{leftover}.meta.json")), serde_json::to_vec(&side).unwrap()).unwrap();

    // The daemon goes on: sequence 2 again (or 3 in the leftover's second,
    // its key being taken), and retention (2 versions) moves past it.
    for _ in 0..4 {
        add_and_back_up(&d, 1);
    }
    let kept = listed(&d);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|(k, seq)| *seq > 2 && *k != leftover), "{kept:?}");
    assert!(!root.join(&first).exists(), "retention deleted the first version");
    let m: Value = serde_json::from_slice(&std::fs::read(root.join(MANIFEST)).unwrap()).unwrap();
    let oldest = m["versions"].as_array().unwrap().iter().map(|v| v["created_at"].as_str().unwrap()).min();
    assert!(oldest.unwrap() >= created(&leftover).as_str(), "older than every listed version: {m}");
    assert_eq!(m["history_since"].as_str(), Some(created(&first).as_str()), "{m}");
    assert!(created(&leftover) > created(&first), "stamped after the history began");
    assert!(m["retired"].to_string().contains(&first), "{m}");
    assert!(root.join(&leftover).exists() && root.join(format!("{leftover}.meta.json")).exists());

    age_everything(&root);
    let r = d.ctl_json_allow_fail(&["sync", "maintain"]);
    assert_eq!(r["errors"], Value::Array(vec![]), "{r}");
    let mut deleted: Vec<String> =
        r["orphans_deleted"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    deleted.sort();
    assert_eq!(deleted, [leftover.clone(), format!("{leftover}.meta.json")], "{r}");
    assert!(!root.join(&leftover).exists() && !root.join(format!("{leftover}.meta.json")).exists());
    assert_eq!(listed(&d), kept, "the listed versions are untouched");
    for (key, _) in &kept {
        assert!(root.join(key).exists() && root.join(format!("{key}.meta.json")).exists(), "{key}");
    }
    let verified = d.ctl_json(&["sync", "verify", "--all", "--db", "parts.db"]);
    let results = verified["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{verified}");
    assert!(results.iter().all(|r| r["ok"] == true), "{verified}");
    let again = d.ctl_json(&["sync", "maintain"]);
    assert_eq!(again["errors"], Value::Array(vec![]), "{again}");
    assert_eq!(again["orphans_deleted"], Value::Array(vec![]), "{again}");
    assert_eq!(again["orphans"], Value::Array(vec![]), "{again}");
}

#[test]
fn a_truncated_manifest_is_reported_in_words_then_repaired() {
    let d = Daemon::start_with(opts());
    let root = d.data_dir.join("backups");
    let a = add_and_back_up(&d, 3)["key"].as_str().unwrap().to_owned();
    let b = add_and_back_up(&d, 2)["key"].as_str().unwrap().to_owned();
    let path = root.join(MANIFEST);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..40]).unwrap();

    let err = d.ctl_err(&["sync", "list", "--db", "parts.db"], 1);
    assert!(
        err.contains("backups/parts.db/MANIFEST.json in the store is not valid JSON (truncated at byte 40?)")
            && err.contains("casmanctl sync repair"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let err = d.ctl_err(&["sync", "backup", "--parts"], 1);
    assert!(err.contains("not valid JSON"), "a backup does not start a new history: {err}");
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..40], "nothing overwrote it");

    // The standalone script rebuilds a version from the sidecars meanwhile.
    if let Some(python) = std::env::var_os("CASMAN_PYTHON").filter(|p| !p.is_empty()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/casman-rebuild.py");
        let out_db = d.dir.path().join("from-sidecars.db");
        let out = Command::new(python).arg(script).arg(&root).arg(&b).arg(&out_db).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(casman_tests::sqlite(&out_db, "SELECT COUNT(*) FROM parts").trim(), "5");
    }
    let text = d.ctl_ok(&["sync", "repair", "--parts"]);
    assert!(text.contains("repaired") && text.contains("truncated"), "{text}");
    assert_eq!(listed(&d), [(a.clone(), 1), (b.clone(), 2)]);
    restore_each(&d, &[(a, 3), (b, 5)]);
    let v = add_and_back_up(&d, 1);
    assert_eq!(v["seq"], 5, "after two versions and two restore records: {v}");
}

#[test]
fn on_s3_a_deleted_manifest_is_rebuilt_by_the_next_list() {
    const BUCKET: &str = "index-loss";
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let d = Daemon::start_with(
        m.daemon_opts(BUCKET, "lab")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    );
    let mut stored = Vec::new();
    for (n, total) in [(3, 3), (2, 5)] {
        let v = add_and_back_up(&d, n);
        let key = v["key"].as_str().unwrap().to_owned();
        // On S3 the entry travels as the object's metadata: no sidecar
        // object, no request of its own.
        assert!(m.get_object(BUCKET, &format!("{key}.meta.json")).is_none(), "no sidecar object for {key}");
        stored.push((key, total));
    }
    assert!(m.delete_object(BUCKET, MANIFEST));
    assert!(m.get_object(BUCKET, MANIFEST).is_none());
    let keys: Vec<String> = listed(&d).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, stored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    let rebuilt: Value = serde_json::from_slice(&m.get_object(BUCKET, MANIFEST).expect("rebuilt")).unwrap();
    assert!(rebuilt["rebuilt_at"].is_string(), "{rebuilt}");
    // Read back from the metadata, not derived from the content (which
    // would say `scheduled` and have no record counts).
    for v in rebuilt["versions"].as_array().unwrap() {
        assert_eq!(v["reason"], "manual", "{v}");
        assert!(v["record_counts"]["parts"].as_i64().is_some_and(|n| n > 0), "{v}");
    }
    let verified = d.ctl_json(&["sync", "verify", "--all", "--db", "parts.db"]);
    assert!(verified["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{verified}");
    restore_each(&d, &stored);
    assert_eq!(add_and_back_up(&d, 1)["seq"], 5, "after two versions and two restore records");
}

/// A uid and gid no account on the machine uses.
const OTHER_UID: u32 = 47123;
const OTHER_GID: u32 = 47124;

#[test]
fn sync_repair_needs_root_or_the_admin_group() {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = ["--reuid", &OTHER_UID.to_string(), "--regid", &OTHER_GID.to_string(), "--clear-groups"]
        .map(str::to_owned);
    let can = nix::unistd::geteuid().is_root()
        && Command::new("setpriv").args(&setpriv).arg("true").output().is_ok_and(|o| o.status.success());
    if !can {
        casman_tests::skip("needs root and util-linux setpriv to act as a second uid");
        return;
    }
    let d = Daemon::start_with(opts().config("socket_mode = \"0666\"\n"));
    for dir in [d.dir.path().to_owned(), d.dir.path().join("run")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ctl = d.dir.path().join("casmanctl");
    std::fs::copy(casman_tests::bin("casmanctl"), &ctl).unwrap();
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    add_and_back_up(&d, 1);
    std::fs::remove_file(d.data_dir.join("backups").join(MANIFEST)).unwrap();
    let mut cmd = Command::new("setpriv");
    casman_tests::scrub_env(&mut cmd);
    let out = cmd
        .args(&setpriv)
        .arg(&ctl)
        .arg("--socket")
        .arg(&d.socket)
        .args(["sync", "repair", "--parts"])
        .env("HOME", "/")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("admin group") && stderr.contains("repairing"), "{stderr}");
    assert!(!d.data_dir.join("backups").join(MANIFEST).exists(), "the refused repair wrote nothing");
    let rep = d.ctl_json(&["sync", "repair", "--parts"]);
    assert_eq!(rep["results"][0]["repaired"], true, "{rep}");
}

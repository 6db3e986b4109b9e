//! `casmanctl sync sync --force` ("force download even if up-to-date")
//! replaces the local file with the store's newest version in every state
//! (up to date, local ahead, diverged), after storing the local state as a
//! safety version; it needs root or the admin group and a confirmation
//! (`--yes` without a terminal). An in-place restore asks too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
};

use casman_tests::{Daemon, DaemonOpts, MotoServer, bin, scrub_env, sqlite};
use serde_json::Value;

const BUCKET: &str = "casman-force";

/// Automatic backups off, so the test decides what is stored.
fn quiet(opts: DaemonOpts) -> DaemonOpts {
    opts.whole_file_sync()
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
}

fn force(d: &Daemon, db: &str) -> Value {
    let out = d.ctl_json(&["sync", "sync", db, "--force", "--yes"]);
    out["results"][0].clone()
}

fn parts(d: &Daemon) -> String {
    sqlite(&d.data_dir.join("parts.db"), "SELECT part_number FROM parts ORDER BY id")
}

fn versions(d: &Daemon, db: &str) -> Vec<Value> {
    d.ctl_json(&["sync", "list", "--db", db])["backups"].as_array().unwrap().clone()
}

#[test]
fn forced_sync_when_up_to_date_and_when_local_is_ahead() {
    let d = Daemon::start_with(quiet(DaemonOpts::default()));
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    d.ctl_ok(&["sync", "backup", "--parts"]);
    let stored = parts(&d);

    // Up to date: downloaded and swapped in all the same; the stored head is
    // the safety (nothing new is uploaded).
    let r = force(&d, "--parts");
    assert_eq!(r["state"], "forced", "{r}");
    assert_eq!(r["local"]["key"], r["version"]["key"], "{r}");
    assert_eq!(versions(&d, "parts.db").len(), 1);
    assert_eq!(parts(&d), stored);

    // Local ahead: the local changes are stored as a pre-restore version,
    // then replaced by the head.
    d.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    let r = force(&d, "--parts");
    assert_eq!(r["state"], "forced", "{r}");
    assert_eq!(r["local"]["reason"], "pre-restore", "{r}");
    assert_eq!(r["local"]["record_counts"]["parts"], 5, "{r}");
    assert_eq!(parts(&d), stored, "the local file is the store's newest version again");
    assert!(r["message"].as_str().unwrap().contains(r["local"]["key"].as_str().unwrap()), "{r}");
    // The safety version is not the sync head: a plain sync keeps the forced state.
    let again = d.ctl_json(&["sync", "sync", "--parts"]);
    assert_eq!(again["results"][0]["state"], "up-to-date", "{again}");
    // ...and it can be restored (nothing was lost).
    let safety = r["local"]["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["sync", "restore", &safety, "--yes"]);
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 5);
}

#[test]
fn forced_sync_after_a_divergence_takes_the_other_site() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let a = Daemon::start_with(quiet(m.daemon_opts(BUCKET, "lab")));
    let b = Daemon::start_with(quiet(m.daemon_opts(BUCKET, "field")));
    let rows = "SELECT part_number, connected_to, connection_status FROM assembly ORDER BY id";
    for d in [&a, &b] {
        d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
        d.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    }
    a.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    a.ctl_ok(&["sync", "backup", "--assembled"]);
    b.ctl_ok(&["sync", "sync", "--assembled"]);
    // Both change the same base: the lab first, then the field (a branch).
    a.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    a.ctl_ok(&["sync", "backup", "--assembled"]);
    b.ctl_ok(&["scan", "disconnect", "ANT00001P1", "LNA00001P1"]);
    b.ctl_ok(&["sync", "backup", "--assembled"]);
    let lab = sqlite(&a.data_dir.join("assembled_casm.db"), rows);
    let plain = b.ctl_json_allow_fail(&["sync", "sync", "--assembled"]);
    assert_eq!(plain["results"][0]["state"], "diverged", "{plain}");

    let r = force(&b, "--assembled");
    assert_eq!(r["state"], "forced", "{r}");
    assert_eq!(r["version"]["site"], "lab", "{r}");
    assert_eq!(sqlite(&b.data_dir.join("assembled_casm.db"), rows), lab);
    // B's own scans are kept in the store.
    let mine = r["local"]["key"].as_str().unwrap();
    assert!(versions(&b, "assembled_casm.db").iter().any(|v| v["key"] == mine && v["site"] == "field"));
}

#[test]
fn destructive_sync_commands_need_a_confirmation() {
    let d = Daemon::start_with(quiet(DaemonOpts::default()));
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    let key = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    let err = d.ctl_err(&["sync", "sync", "--force"], 2);
    assert!(err.contains("--yes") && err.contains("nothing was changed"), "{err}");
    let err = d.ctl_err(&["sync", "restore", &key], 2);
    assert!(err.contains("--yes") && err.contains("replaces the live database"), "{err}");
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 2, "nothing was replaced");
    // --yes without --force makes no sense for sync sync.
    d.ctl_err(&["sync", "sync", "--yes"], 2);
    // A copy to --dest touches nothing live: no confirmation.
    let dest = d.dir.path().join("copy.db");
    d.ctl_ok(&["sync", "restore", &key, "--dest", dest.to_str().unwrap()]);
}

/// A uid and gid no account on the machine uses.
const UID: u32 = 47115;
const GID: u32 = 47116;

#[test]
fn a_forced_sync_needs_root_or_the_admin_group() {
    let can = nix::unistd::geteuid().is_root()
        && Command::new("setpriv")
            .args(["--reuid", &UID.to_string(), "--regid", &GID.to_string(), "--clear-groups", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !can {
        casman_tests::skip("needs root and util-linux setpriv");
        return;
    }
    let d = Daemon::start_with(quiet(DaemonOpts::default().config("socket_mode = \"0666\"\n")));
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    d.ctl_ok(&["sync", "backup", "--parts"]);
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    for p in [d.dir.path().to_path_buf(), d.dir.path().join("run")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ctl = d.dir.path().join("casmanctl");
    std::fs::copy(bin("casmanctl"), &ctl).unwrap();
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("setpriv");
    scrub_env(&mut cmd);
    let out = cmd
        .args(["--reuid", &UID.to_string(), "--regid", &GID.to_string(), "--clear-groups"])
        .arg(&ctl)
        .arg("--socket")
        .arg(&d.socket)
        .args(["sync", "sync", "--parts", "--force", "--yes"])
        .env("HOME", "/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("forced sync"), "{err}");
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 2, "nothing was replaced");
    // Root (the test's user) may.
    assert_eq!(force(&d, "--parts")["state"], "forced");
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 1);
}

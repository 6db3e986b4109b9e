//! Authorization by peer credentials, with a second uid: any user who can open
//! the socket may record data; destructive requests (database clear) need root,
//! the daemon's user or the configured admin group.
//!
//! Needs root (to run casmanctl as another uid with util-linux `setpriv`);
//! skipped with a note otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use casman_tests::{Daemon, DaemonOpts, bin, scrub_env};

/// A uid and gid no account on the machine uses.
const UID: u32 = 47113;
const GID: u32 = 47114;

fn can_setpriv() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("setpriv")
            .args(["--reuid", &UID.to_string(), "--regid", &GID.to_string(), "--clear-groups", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// A daemon whose socket any user may open, and a copy of casmanctl the
/// other user may execute (the build directory may be under a private home).
fn daemon(config: &str) -> (Daemon, PathBuf) {
    let d = Daemon::start_with(DaemonOpts::default().config(config));
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(d.dir.path().join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ctl = d.dir.path().join("casmanctl");
    std::fs::copy(bin("casmanctl"), &ctl).unwrap();
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    (d, ctl)
}

fn as_other_user(ctl: &Path, socket: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    scrub_env(&mut cmd);
    cmd.args(["--reuid", &UID.to_string(), "--regid", &GID.to_string(), "--clear-groups"])
        .arg(ctl)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env("HOME", "/")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn another_user_may_record_but_clears_only_as_admin() {
    if !can_setpriv() {
        eprintln!("SKIPPED: needs root and util-linux setpriv to act as a second uid");
        return;
    }
    let (d, ctl) = daemon("socket_mode = \"0666\"\n");
    let out = as_other_user(&ctl, &d.socket, &["parts", "add", "ANTENNA", "1", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = as_other_user(&ctl, &d.socket, &["database", "clear", "--parts", "--yes", "parts.db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("admin group") && stderr.contains(&format!("uid {UID}")), "{stderr}");
    assert!(d.ctl_ok(&["--json", "parts", "list"]).contains("ANT00001P1"), "nothing was cleared");
    // The refusal is in the daemon's log only as a refusal, the audit records the add.
    assert!(d.log_text().contains(&format!("peer_uid={UID}")), "{}", d.log_text());

    // Root may.
    d.ctl_ok(&["database", "clear", "--parts", "--yes", "parts.db"]);
}

#[test]
fn the_admin_group_may_clear() {
    if !can_setpriv() {
        eprintln!("SKIPPED: needs root and util-linux setpriv to act as a second uid");
        return;
    }
    let (d, ctl) = daemon(&format!("socket_mode = \"0666\"\nadmin_group = \"{GID}\"\n"));
    let out = as_other_user(&ctl, &d.socket, &["parts", "add", "ANTENNA", "1", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = as_other_user(&ctl, &d.socket, &["database", "clear", "--parts", "--yes", "parts.db"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!d.ctl_ok(&["--json", "parts", "list"]).contains("ANT00001P1"), "parts.db was cleared");
}

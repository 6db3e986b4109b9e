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
        casman_tests::skip("needs root and util-linux setpriv to act as a second uid");
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
        casman_tests::skip("needs root and util-linux setpriv to act as a second uid");
        return;
    }
    let (d, ctl) = daemon(&format!("socket_mode = \"0666\"\nadmin_group = \"{GID}\"\n"));
    let out = as_other_user(&ctl, &d.socket, &["parts", "add", "ANTENNA", "1", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = as_other_user(&ctl, &d.socket, &["database", "clear", "--parts", "--yes", "parts.db"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!d.ctl_ok(&["--json", "parts", "list"]).contains("ANT00001P1"), "parts.db was cleared");
}

/// A user and group created for one test and removed after it.
struct TempAccount {
    user: &'static str,
    group: &'static str,
}

impl Drop for TempAccount {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(self.user).status();
        let _ = Command::new("groupdel").arg(self.group).status();
    }
}

/// Membership recorded only in the user database (`usermod -aG`, as an
/// administrator adds operators) counts, although the process does not hold
/// the group and the daemon may not see its /proc entry (the unit's
/// `ProtectProc=invisible`): the client runs with its groups cleared, so
/// neither its gid nor /proc can grant it.
#[test]
fn admin_group_membership_in_the_user_database_counts_without_proc() {
    let have = |cmd: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !can_setpriv() || !have("useradd") || !have("groupadd") {
        casman_tests::skip("needs root, setpriv, useradd and groupadd");
        return;
    }
    const ADMIN_GID: u32 = 47_131;
    const OP_UID: u32 = 47_132;
    let account = TempAccount { user: "casmantop", group: "casmantadm" };
    drop(Command::new("userdel").arg(account.user).status());
    drop(Command::new("groupdel").arg(account.group).status());
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    assert!(ok(Command::new("groupadd").args(["-g", &ADMIN_GID.to_string(), account.group])));
    assert!(ok(Command::new("useradd").args([
        "--no-create-home",
        "--uid",
        &OP_UID.to_string(),
        "--user-group",
        "--groups",
        account.group,
        account.user
    ])));
    let (d, ctl) = daemon(&format!("socket_mode = \"0666\"\nadmin_group = \"{ADMIN_GID}\"\n"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    let primary =
        String::from_utf8(Command::new("id").args(["-g", account.user]).output().unwrap().stdout).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", &OP_UID.to_string(), "--regid", primary.trim(), "--clear-groups"])
        .arg(&ctl)
        .arg("--socket")
        .arg(&d.socket)
        .args(["database", "clear", "--parts", "--yes", "parts.db"])
        .env("HOME", "/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a member of the admin group was refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.ctl_ok(&["--json", "parts", "list"]).contains("ANT00001P1"), "parts.db was cleared");
}

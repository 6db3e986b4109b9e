//! Clients and daemons that misbehave: a daemon that stops answering must not
//! hang casmanctl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use casman_tests::{DEADLINE, Daemon, wait_for};
use nix::sys::signal::Signal;

#[test]
fn a_stopped_daemon_gives_a_one_line_error_instead_of_a_hang() {
    let d = Daemon::start();
    d.signal(Signal::SIGSTOP);
    let mut child = d
        .ctl_cmd()
        .args(["--timeout", "1s", "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for("casmanctl to give up on a stopped daemon", DEADLINE, || child.try_wait().unwrap());
    d.signal(Signal::SIGCONT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("answer"), "{stderr}");
    // Once it runs again, the same command answers.
    let out = d.ctl(&["--timeout", "5s", "status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

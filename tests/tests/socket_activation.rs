//! Socket activation: casmand serves on a listening socket passed by systemd
//! (`LISTEN_FDS`/`LISTEN_PID`, fd 3) and leaves that socket's file alone; with
//! variables meant for another process it binds its own socket as usual.
//!
//! systemd is faked without `unsafe`: the test binds the socket, clears
//! FD_CLOEXEC on it, and starts casmand through `sh`, which moves the socket to
//! fd 3 (`3<&N`) and sets `LISTEN_PID=$$` before `exec` (same pid).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::{
        fd::AsRawFd,
        unix::{fs::FileTypeExt, net::UnixListener},
    },
    process::{Command, Stdio},
};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, bin, scrub_env, wait_for};
use nix::{
    fcntl::{FcntlArg, FdFlag, fcntl},
    sys::signal::{Signal, kill},
    unistd::Pid,
};

fn ctl(socket: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin("casmanctl"));
    scrub_env(&mut cmd);
    cmd.arg("--socket").arg(socket).args(args).stdin(Stdio::null()).output().expect("casmanctl")
}

#[test]
fn serves_on_the_socket_systemd_passes_and_leaves_its_file() {
    let dir = tempfile::Builder::new().prefix("casman-activation-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("activation")).unwrap();
    let path = dir.path().join("activation/casmand.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let fd = listener.as_raw_fd();
    // Let the socket survive exec into sh (which moves it to fd 3).
    fcntl(&listener, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();

    // casmand's own --socket points elsewhere: it must not be bound.
    let inner = Daemon::command(dir.path(), &DaemonOpts::default());
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("export LISTEN_FDS=1 LISTEN_PID=$$; exec \"$0\" \"$@\" 3<&{fd}"))
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let log = std::fs::File::create(dir.path().join("casmand.log")).unwrap();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    // The test keeps no copy that could answer: only casmand accepts.
    fcntl(&listener, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    drop(listener);
    let log_text = || std::fs::read_to_string(dir.path().join("casmand.log")).unwrap_or_default();

    let status = wait_for("casmand to answer on the inherited socket", DEADLINE, || {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("casmand exited with {s}: {}", log_text());
        }
        let out = ctl(&path, &["--json", "status"]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(status.contains(&*path.to_string_lossy()), "status names the inherited socket: {status}");
    assert!(!dir.path().join("run/casmand.sock").exists(), "casmand bound its own socket too");
    assert!(log_text().contains("using the socket passed by systemd"), "{}", log_text());
    let out = ctl(&path, &["parts", "add", "ANTENNA", "1", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let exit = wait_for("casmand to exit", DEADLINE, || child.try_wait().unwrap());
    assert!(exit.success(), "{exit}: {}", log_text());
    let meta = std::fs::symlink_metadata(&path).expect("the socket systemd created is still there");
    assert!(meta.file_type().is_socket());
}

#[test]
fn binds_its_own_socket_when_the_variables_name_another_process() {
    let d = Daemon::start_with(DaemonOpts::default().env("LISTEN_FDS", "1").env("LISTEN_PID", "1"));
    assert!(d.ctl_ok(&["status"]).contains("casmand.sock"));
    assert!(d.socket.exists());
    let mut d = d;
    assert!(d.terminate().success());
    assert!(!d.socket.exists(), "a socket casmand bound itself is removed at exit");
}

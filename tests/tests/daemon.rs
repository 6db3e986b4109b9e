//! The skeleton: start-up, status, signals, socket handling, sd_notify and
//! configuration layering, against the real binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::unix::{fs::PermissionsExt, net::UnixDatagram},
    process::Stdio,
    time::{Duration, Instant},
};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, ctl_bare, wait_for};
use nix::sys::signal::Signal;

#[test]
fn status_answers_with_version_and_paths() {
    let d = Daemon::start();
    let s = d.ctl_json(&["status"]);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["protocol"], 1);
    assert!(s["uptime_seconds"].is_u64());
    assert_eq!(s["data_dir"], d.data_dir.to_str().unwrap());
    assert_eq!(s["socket"], d.socket.to_str().unwrap());
    assert_eq!(s["pid"], d.pid());
    assert_eq!(s["backend"]["kind"], "local");
    // Global flags work after the subcommand too.
    let human = d.ctl_ok(&["status", "--color", "never"]);
    assert!(human.contains("casmand "), "{human}");
}

#[test]
fn sigterm_exits_zero_and_removes_the_socket() {
    let mut d = Daemon::start();
    let start = Instant::now();
    let status = d.terminate();
    assert!(status.success(), "exit status {status}; log:\n{}", d.log_text());
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert!(!d.socket.exists(), "socket left behind");
}

#[test]
fn ctrl_c_stops_the_daemon_like_sigterm() {
    let mut d = Daemon::start();
    d.signal(Signal::SIGINT);
    let status = d.wait_exit(DEADLINE);
    assert!(status.success(), "exit status {status}; log:\n{}", d.log_text());
    assert!(!d.socket.exists(), "socket left behind");
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let d = Daemon::start();
    let out = Daemon::command(d.dir.path(), &DaemonOpts::default()).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already serving"), "{err}");
    // The first one is unharmed.
    d.ctl_ok(&["status"]);
}

#[test]
fn a_stale_socket_from_a_killed_daemon_is_replaced() {
    let mut d = Daemon::start();
    d.kill();
    assert!(d.socket.exists(), "SIGKILL leaves the socket file behind");
    d.restart();
    d.ctl_ok(&["status"]);
}

#[test]
fn socket_mode_follows_the_configuration() {
    let d = Daemon::start_with(DaemonOpts::default().config("socket_mode = \"0600\"\n"));
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let d = Daemon::start_with(DaemonOpts::default().arg("--socket-mode").arg("0640"));
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

/// Reads datagrams from the fake notify socket until one contains `needle`.
fn recv_until(sock: &UnixDatagram, needle: &str) -> String {
    let mut buf = [0u8; 4096];
    wait_for(needle, DEADLINE, || {
        let n = sock.recv(&mut buf).ok()?;
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        msg.contains(needle).then_some(msg)
    })
}

#[test]
fn sd_notify_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut d = Daemon::start_with(
        DaemonOpts::default().env("NOTIFY_SOCKET", &notify_path).env("WATCHDOG_USEC", "200000"),
    );
    let ready = recv_until(&sock, "READY=1");
    assert!(ready.contains("STATUS="), "{ready}");
    // READY=1 is sent only once the socket accepts connections.
    assert!(std::os::unix::net::UnixStream::connect(&d.socket).is_ok());
    // Half of WATCHDOG_USEC: several pings within a second.
    recv_until(&sock, "WATCHDOG=1");
    recv_until(&sock, "WATCHDOG=1");
    d.signal(Signal::SIGTERM);
    recv_until(&sock, "STOPPING=1");
    assert!(d.wait_exit(DEADLINE).success());
}

fn start_failure(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Daemon::command(dir.path(), &DaemonOpts::default().config(config))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "casmand started with config {config:?}");
    assert!(!dir.path().join("run/casmand.sock").exists());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_keys_and_bad_values_fail_start_up_naming_the_key() {
    let err = start_failure("site_id = \"a\"\nsocket_mood = \"0600\"\n");
    assert!(err.contains("socket_mood"), "{err}");
    assert!(err.contains("casmand.toml"), "names the file: {err}");
    let err = start_failure("[sync]\nbackup_on_hours = \"soon\"\n");
    assert!(err.contains("backup_on_hours"), "{err}");
    let err = start_failure("shutdown_timeout = \"10 parsecs\"\n");
    assert!(err.contains("shutdown_timeout"), "{err}");
    let err = start_failure("[sync]\nbackend = \"github\"\n");
    assert!(err.contains("backend"), "{err}");
}

#[test]
fn casmanctl_without_a_daemon_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.sock");
    let out = ctl_bare(&["--socket", missing.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(err.contains("casmand"), "{err}");
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let file = "site_id = \"from-file\"\n[sync]\nkeep_versions = 3\n";
    let d = Daemon::start_with(DaemonOpts::default().config(file));
    assert_eq!(d.ctl_json(&["status"])["site_id"], "from-file");

    let d = Daemon::start_with(
        DaemonOpts::default()
            .config(file)
            .env("CASMAN_SITE_ID", "from-env")
            .env("CASMAN_SYNC__KEEP_VERSIONS", "4"),
    );
    assert_eq!(d.ctl_json(&["status"])["site_id"], "from-env");
    let cfg = d.ctl_json(&["config"]);
    assert_eq!(cfg["config"]["sync"]["keep_versions"], 4);

    let d = Daemon::start_with(
        DaemonOpts::default()
            .config(file)
            .env("CASMAN_SITE_ID", "from-env")
            .arg("--site-id")
            .arg("from-flag"),
    );
    assert_eq!(d.ctl_json(&["status"])["site_id"], "from-flag");
}

#[test]
fn casman_environment_names_are_honoured_and_secrets_redacted() {
    let d = Daemon::start_with(
        DaemonOpts::default()
            .env("R2_BUCKET_NAME", "field-bucket")
            .env("R2_SECRET_ACCESS_KEY", "s3cr3t-value")
            .env("CASMAN_SYNC_ENABLED", "yes")
            .env("CASMAN_SYNC_BACKEND", "local"),
    );
    let text = d.ctl_ok(&["config"]);
    assert!(text.contains("field-bucket"), "{text}");
    assert!(!text.contains("s3cr3t-value"), "secret leaked: {text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!d.log_text().contains("s3cr3t-value"), "secret in the log");
}

#[test]
fn casman_database_dir_sets_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("field-db");
    let mut opts = DaemonOpts { no_paths: true, ..Default::default() };
    opts = opts.env("CASMAN_DATABASE_DIR", &data).env("CASMAN_SOCKET", dir.path().join("s/casmand.sock"));
    let mut cmd = Daemon::command(dir.path(), &opts);
    let mut child = cmd.stdin(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let sock = dir.path().join("s/casmand.sock");
    wait_for("socket", DEADLINE, || std::os::unix::net::UnixStream::connect(&sock).ok());
    let out = ctl_bare(&["--socket", sock.to_str().unwrap(), "--json", "status"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["data_dir"], data.to_str().unwrap());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn completions_and_man_page_are_generated() {
    let out = ctl_bare(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("casmanctl"));
    let out = ctl_bare(&["man"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH casmanctl"));
}

/// A stop while the history from before the upgrade is being entered into
/// the change exchange (minutes at 10× the field size) ends that work at its
/// next transaction instead of holding the stop up; the next start goes on
/// from there and enters every event once.
#[test]
fn a_stop_during_the_history_entry_is_prompt_and_the_entry_resumes() {
    let opts = DaemonOpts::default()
        .config("shutdown_timeout = \"3s\"\n")
        .env("CASMAN_SYNC__PULL_EVERY", "0s")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000");
    let mut d = Daemon::start_with(opts);
    d.terminate();
    // 80,000 events written by another program (16 transactions of the
    // entry): none has an identity yet.
    let log = d.data_dir.join("assembled_casm.db");
    casman_tests::sqlite(
        &log,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80000)
         INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                               connected_polarization, connection_status)
         SELECT printf('ANT%05dP1', i % 99999 + 1), 'ANTENNA', '1', printf('2025-11-21 18:%02d:%02d', i / 60 % 60, i % 60),
                printf('LNA%05dP1', i % 99999 + 1), 'LNA', '1', 'connected' FROM n;",
    );
    d.restart();
    // A version stored (the first backup enters nothing): the sync after it
    // publishes, and so enters the history first.
    d.ctl_ok(&["sync", "backup", "--assembled"]);
    let entered =
        || casman_tests::sqlite(&log, "SELECT count(*) FROM event_origin").trim().parse::<i64>().unwrap();
    assert_eq!(entered(), 0);
    // The entry, asked for by a sync, has begun.
    let sync =
        d.ctl_cmd().args(["sync", "sync", "--assembled"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let mut sync = sync.unwrap();
    wait_for("the history entry to begin", DEADLINE, || (entered() > 0).then_some(()));
    let stopping = Instant::now();
    let status = d.terminate();
    let took = stopping.elapsed();
    let _ = sync.wait();
    let log_text = d.log_text();
    assert!(status.success(), "exit status {status}; log:\n{log_text}");
    for waited in ["did not finish in time", "did not stop in time"] {
        assert!(!log_text.contains(waited), "the stop waited for the entry ({took:?}):\n{log_text}");
    }
    let partly = entered();
    assert!(
        partly < 80_000,
        "the entry ended before the stop ({partly} events): the test needs a longer log"
    );
    // The next start goes on: every event once.
    d.restart();
    d.ctl_json(&["sync", "sync", "--assembled"]);
    assert_eq!(entered(), 80_000);
    let distinct = casman_tests::sqlite(&log, "SELECT count(DISTINCT event_id) FROM event_origin");
    assert_eq!(distinct.trim(), "80000");
}

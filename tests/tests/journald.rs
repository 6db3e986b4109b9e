//! Logging to journald: when `JOURNAL_STREAM` names casmand's stderr (as
//! systemd sets it), events go to the journal's native socket with structured
//! `CASMAN_*` fields; otherwise plain text goes to stderr.
//!
//! tracing-journald always sends to `/run/systemd/journal/socket`, so the test
//! runs casmand in a private mount namespace (`unshare --mount`, root only)
//! where a directory of the test is bind-mounted on `/run`, and reads the
//! datagrams on a socket it bound at `<that dir>/systemd/journal/socket`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    os::unix::{fs::MetadataExt, net::UnixDatagram},
    process::{Command, Stdio},
    time::Duration,
};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, bin, scrub_env, wait_for};

/// Parses one journal native-protocol datagram (`KEY=value\n`, or
/// `KEY\n<u64 LE length><value>\n` for values with newlines).
fn parse(mut buf: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !buf.is_empty() {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else { break };
        let line = &buf[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            out.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            buf = &buf[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &buf[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.insert(key, String::from_utf8_lossy(&rest[8..8 + len]).into_owned());
            buf = &rest[8 + len + 1..];
        }
    }
    out
}

fn can_unshare() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["--mount", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn events_reach_the_journal_with_casman_fields() {
    if !can_unshare() {
        casman_tests::skip("needs root and `unshare --mount` to fake journald's socket");
        return;
    }
    let dir = tempfile::Builder::new().prefix("casman-journald-").tempdir().unwrap();
    let fake_run = dir.path().join("fake-run");
    std::fs::create_dir_all(fake_run.join("systemd/journal")).unwrap();
    let journal = UnixDatagram::bind(fake_run.join("systemd/journal/socket")).unwrap();
    journal.set_read_timeout(Some(Duration::from_millis(200))).unwrap();

    let log_path = dir.path().join("casmand.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    let inner = Daemon::command(
        dir.path(),
        &DaemonOpts::default().env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino())),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", "mount --bind \"$0\" /run && exec \"$@\""])
        .arg(&fake_run)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let socket = dir.path().join("run/casmand.sock");
    let ctl = |args: &[&str]| {
        let mut c = Command::new(bin("casmanctl"));
        scrub_env(&mut c);
        c.arg("--socket").arg(&socket).args(args).stdin(Stdio::null()).output().unwrap()
    };
    wait_for("casmand to answer", DEADLINE, || {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("casmand exited with {s}: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        ctl(&["status"]).status.success().then_some(())
    });
    let out = ctl(&["--operator", "ada", "parts", "add", "ANTENNA", "1", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut events = Vec::new();
    let applied = wait_for("the parts.add event in the journal", DEADLINE, || {
        let mut buf = vec![0u8; 65536];
        if let Ok(n) = journal.recv(&mut buf) {
            events.push(parse(&buf[..n]));
        }
        events.iter().find(|e| e.get("CASMAN_OPERATION").map(String::as_str) == Some("parts.add")).cloned()
    });
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(applied.get("SYSLOG_IDENTIFIER").map(String::as_str), Some("casmand"), "{applied:?}");
    assert_eq!(applied.get("MESSAGE").map(String::as_str), Some("request applied"), "{applied:?}");
    assert_eq!(applied.get("CASMAN_DATABASE").map(String::as_str), Some("parts.db"), "{applied:?}");
    assert_eq!(applied.get("CASMAN_PEER_UID").map(String::as_str), Some("0"), "{applied:?}");
    assert_eq!(applied.get("CASMAN_OPERATOR").map(String::as_str), Some("ada"), "{applied:?}");
    // tracing-journald maps INFO to priority 5 (notice).
    assert_eq!(applied.get("PRIORITY").map(String::as_str), Some("5"), "{applied:?}");
    let ready = events.iter().find(|e| e.get("MESSAGE").map(String::as_str) == Some("casmand ready"));
    assert!(ready.is_some_and(|e| e.contains_key("CASMAN_SOCKET")), "{events:?}");
    // Journald was chosen: nothing went to stderr as text.
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains("casmand ready"), "stderr got text although it is the journal: {text}");
}

#[test]
fn text_goes_to_stderr_when_journal_stream_names_another_file() {
    let d = Daemon::start_with(DaemonOpts::default().env("JOURNAL_STREAM", "1:1"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    let log = d.log_text();
    assert!(log.contains("casmand ready"), "{log}");
    wait_for("the audit line on stderr", DEADLINE, || {
        let log = d.log_text();
        (log.contains("request applied") && log.contains("operation=\"parts.add\"")).then_some(())
    });
}

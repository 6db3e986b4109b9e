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

#[test]
fn a_csv_with_hundreds_of_bad_rows_gets_a_short_clear_refusal() {
    let d = Daemon::start();
    let mut csv = String::from("chassis,slot,sn,mac,ip,feng_id,notes\n");
    for i in 0..500 {
        csv.push_str(&format!("9,Z,{i},not-a-mac,1.2.3.4,0,bad row\n"));
    }
    let path = d.dir.path().join("bad.csv");
    std::fs::write(&path, &csv).unwrap();
    let path = path.to_str().unwrap();
    let stderr = d.ctl_err(&["database", "load-snap-boards", "--csv", path], 2);
    assert!(stderr.contains("problems in the CSV file, nothing was loaded"), "{stderr}");
    assert!(stderr.contains("line 2,") && stderr.contains("more (the first 20 are shown)"), "{stderr}");
    assert!(stderr.len() < 8192, "{} bytes", stderr.len());
    let boards = d.ctl_json(&["snap", "list"]);
    assert_eq!(boards["boards"].as_array().unwrap().len(), 0, "nothing loaded: {boards}");

    // A file larger than one request may carry: refused before sending.
    let big = d.dir.path().join("big.csv");
    let row = "1,A,1,00:29:c4:e8:18:05,192.168.120.53,0,".to_owned() + &"x".repeat(200) + "\n";
    std::fs::write(&big, csv.lines().next().unwrap().to_owned() + "\n" + &row.repeat(25_000)).unwrap();
    let stderr = d.ctl_err(&["database", "load-snap-boards", "--csv", big.to_str().unwrap()], 2);
    assert!(stderr.contains("takes at most") && stderr.contains("split it"), "{stderr}");
}

/// `GET /` on the loopback web listener with `Host: host`; the status code.
fn get_with_host(port: u16, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn the_loopback_web_listener_answers_only_to_loopback_names() {
    let port = casman_tests::s3::free_port();
    let d = Daemon::start_with(
        casman_tests::DaemonOpts::default()
            .env("CASMAN_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("CASMAN_HTTP__ALLOW_WITHOUT_TOKEN", "true"),
    );
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        assert_eq!(get_with_host(port, &host), 200, "{host}");
    }
    // A page of another site whose name was rebound to 127.0.0.1.
    assert_eq!(get_with_host(port, &format!("evil.example:{port}")), 421);
    drop(d);
}

/// Starts casmand with `config` expecting it to refuse; its stderr.
fn refused_start(config: &str) -> String {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let opts = casman_tests::DaemonOpts::default().config(config);
    let mut child =
        Daemon::command(dir.path(), &opts).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let status = wait_for("casmand to refuse to start", DEADLINE, || child.try_wait().ok().flatten());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success(), "{err}");
    err
}

#[test]
fn the_loopback_web_listener_needs_a_token_of_16_characters_unless_told_otherwise() {
    let port = casman_tests::s3::free_port();
    let err = refused_start(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    assert!(err.contains("`http.token` is not set") && err.contains("allow_without_token = true"), "{err}");
    let err = refused_start(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"letmein\"\n"));
    assert!(err.contains("`http.token`: must be at least 16 characters (it has 7)"), "{err}");
    let err = refused_start(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n[[http.operators]]\nname = \"ann\"\ntoken = \"ann-token\"\n"
    ));
    assert!(err.contains("`http.operators[0].token`") && err.contains("at least 16 characters"), "{err}");

    // With a token, a local request without it is refused.
    let token = "a-long-enough-token";
    let d = Daemon::start_with(
        casman_tests::DaemonOpts::default()
            .config(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{token}\"\n")),
    );
    assert_eq!(get_with_host(port, &format!("127.0.0.1:{port}")), 401);
    drop(d);
}

#[test]
fn terminal_escapes_in_stored_text_are_shown_escaped() {
    let d = Daemon::start();
    let csv = "chassis,slot,sn,mac,ip,feng_id,notes\n\
               1,A,7,00:29:c4:e8:18:05,192.168.120.53,0,\x1b[31mred\x07 \x1b]0;owned\x07 \u{9b}2J\n";
    let path = d.dir.path().join("boards.csv");
    std::fs::write(&path, csv).unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", path.to_str().unwrap()]);
    for args in [&["--color", "never", "snap", "list"][..], &["--color", "never", "snap", "show", "SNAP1A"]] {
        let out = d.ctl(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{9b}'),
            "{args:?}: {text:?}"
        );
        assert!(text.contains(r"\x1b[31mred\x07"), "{args:?}: {text}");
        assert!(text.contains(r"\u{9b}2J"), "{args:?}: {text}");
    }
    // JSON is exact: the same text, escaped as JSON escapes it.
    let boards = d.ctl_json(&["snap", "list"]);
    assert_eq!(boards["boards"][0]["notes"], "\x1b[31mred\x07 \x1b]0;owned\x07 \u{9b}2J", "{boards}");
}

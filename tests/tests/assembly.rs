//! Assembly scans through casmanctl and the socket: every rule refuses with
//! nothing written, the current-state rule, races, the interactive scanner
//! (piped and on a pseudo-terminal), chain, history, and the golden ASCII view.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use casman_tests::{Daemon, DaemonOpts, bin, sqlite};

/// A daemon with parts for two complete chains of each polarization.
fn stocked() -> Daemon {
    let d = Daemon::start();
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, "3", "1"]);
        d.ctl_ok(&["parts", "add", t, "3", "2"]);
    }
    d
}

fn rows(d: &Daemon) -> i64 {
    sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT COUNT(*) FROM assembly").trim().parse().unwrap()
}

/// Builds the P1 chain number `n` down to `snap`.
fn chain(d: &Daemon, n: u32, pol: u32, snap: &str) {
    let p = |abbr: &str| format!("{abbr}{n:05}P{pol}");
    let links = [p("ANT"), p("LNA"), p("CXS"), p("CXL"), p("BAC"), snap.to_owned()];
    for w in links.windows(2) {
        d.ctl_ok(&["scan", "connect", &w[0], &w[1]]);
    }
}

/// Asserts that `args` is refused with exit 1, names `needle`, and writes nothing.
fn refused(d: &Daemon, args: &[&str], needle: &str) {
    let before = rows(d);
    let err = d.ctl_err(args, 1);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(rows(d), before, "{args:?} wrote a row");
}

#[test]
fn every_rule_refuses_and_writes_nothing() {
    let d = stocked();
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    // Successor type.
    refused(&d, &["scan", "connect", "ANT00002P1", "CXS00002P1"], "ANTENNA can only connect to LNA");
    refused(&d, &["scan", "connect", "LNA00002P1", "BAC00002P1"], "LNA can only connect to COAXSHORT");
    // ANTENNA never receives, SNAP never sends.
    refused(&d, &["scan", "connect", "LNA00002P1", "ANT00002P1"], "ANTENNA");
    refused(&d, &["scan", "connect", "SNAP1A05", "BAC00002P1"], "SNAP");
    // Polarization.
    refused(&d, &["scan", "connect", "ANT00002P1", "LNA00002P2"], "olarization");
    // Parts must exist; malformed ids are bad input (exit 2).
    refused(&d, &["scan", "connect", "ANT00009P1", "LNA00003P1"], "ANT00009P1");
    let before = rows(&d);
    d.ctl_err(&["scan", "connect", "ANT0001P1", "LNA00003P1"], 2);
    d.ctl_err(&["scan", "connect", "BAC00001P1", "SNAP5A00"], 2);
    assert_eq!(rows(&d), before);
    // One outgoing and one incoming edge per part; the existing connection is named.
    refused(&d, &["scan", "connect", "ANT00001P1", "LNA00002P1"], "LNA00001P1");
    refused(&d, &["scan", "connect", "ANT00002P1", "LNA00001P1"], "ANT00001P1");
    refused(&d, &["scan", "connect", "ANT00001P1", "LNA00001P1"], "already");
    // A SNAP port in use.
    d.ctl_ok(&["scan", "connect", "BAC00001P1", "SNAP1A05"]);
    refused(&d, &["scan", "connect", "BAC00002P1", "SNAP010105"], "SNAP1A05");
    // Disconnect needs a current connection; it works in either order.
    refused(&d, &["scan", "disconnect", "ANT00002P1", "LNA00002P1"], "not connected");
    d.ctl_ok(&["scan", "disconnect", "lna00001p1", "ANT00001P1"]);
    refused(&d, &["scan", "disconnect", "ANT00001P1", "LNA00001P1"], "not connected");
    // After a disconnect the parts are free again; SNAP ends are polarization-exempt.
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00002P1"]);
    d.ctl_ok(&["scan", "disconnect", "SNAP1A05", "BAC00001P1"]);
    d.ctl_ok(&["scan", "connect", "BAC00002P2", "SNAP1A05"]);
    // Every event is audited with the peer's uid and the operator.
    let out = d.ctl(&["--operator", "alice", "scan", "connect", "CXS00003P1", "CXL00003P1"]);
    assert!(out.status.success());
    let audit = sqlite(
        &d.data_dir.join("state.db"),
        "SELECT uid, operator FROM audit_log WHERE action = 'scan.connect' ORDER BY id DESC LIMIT 1",
    );
    let uid = nix::unistd::geteuid().as_raw();
    assert_eq!(audit.trim(), format!("{uid}|alice"));
}

/// An operator name is any text without control characters: a Unicode name
/// is audited as typed (it travels in `x-casman-operator-bin`); a control
/// character is refused before anything is sent, and a daemon refuses one
/// in the header too: never an acknowledged write with the name dropped.
#[test]
fn operator_names_are_unicode_and_never_dropped() {
    let d = stocked();
    let out = d.ctl(&["--operator", "José Ñúñez", "scan", "connect", "ANT00001P1", "LNA00001P1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let operator = |d: &Daemon| {
        sqlite(
            &d.data_dir.join("state.db"),
            "SELECT operator FROM audit_log WHERE action = 'scan.connect' ORDER BY id DESC LIMIT 1",
        )
    };
    assert_eq!(operator(&d).trim(), "José Ñúñez");
    let before = rows(&d);
    let e = d.ctl_err(&["--operator", "bad\u{7}name", "scan", "connect", "ANT00002P1", "LNA00002P1"], 2);
    assert!(e.contains("control character U+0007"), "{e}");
    assert_eq!(rows(&d), before);
}

#[test]
fn the_newest_event_per_pair_decides_and_chain_reports_the_snap_board() {
    let d = stocked();
    chain(&d, 1, 1, "SNAP2B05");
    d.ctl_ok(&["database", "load-snap-boards", "--csv", &write_boards(&d)]);
    let c = d.ctl_json(&["chain", "CXS00001P1"]);
    let parts: Vec<&str> = c["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(parts, ["ANT00001P1", "LNA00001P1", "CXS00001P1", "CXL00001P1", "BAC00001P1", "SNAP2B05"]);
    assert_eq!(c["snap"]["port"], "SNAP2B05");
    assert_eq!(c["snap"]["board_configured"], true);
    assert_eq!(c["snap"]["serial_number"], "SN13");
    assert_eq!(c["snap"]["feng_id"], 12);
    assert_eq!(c["snap"]["packet_index"], 12 * 12 + 5);
    // Disconnect recorded in reverse orientation cancels, a later reconnect wins.
    d.ctl_ok(&["scan", "disconnect", "CXL00001P1", "CXS00001P1"]);
    let c = d.ctl_json(&["chain", "ANT00001P1"]);
    assert_eq!(c["parts"].as_array().unwrap().len(), 3);
    assert!(c["snap"].is_null());
    d.ctl_ok(&["scan", "connect", "CXS00001P1", "CXL00001P1"]);
    assert_eq!(d.ctl_json(&["chain", "SNAP2B05"])["parts"][0], "ANT00001P1");
    let h = d.ctl_json(&["history", "CXS00001P1"]);
    let statuses: Vec<&str> =
        h["events"].as_array().unwrap().iter().map(|e| e["connection_status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["connected", "disconnected", "connected", "connected"], "newest first");
    d.ctl_err(&["chain", "ANT00042P1"], 1);
    let text = d.ctl_ok(&["chain", "LNA00001P1"]);
    assert!(text.contains("ANT00001P1 ---> LNA00001P1") && text.contains("packet index 149"), "{text}");
}

fn write_boards(d: &Daemon) -> String {
    let path = d.dir.path().join("boards.csv");
    let mut csv = String::from("chassis,slot,sn,mac,ip,feng_id,notes\n");
    for (n, (chassis, slot)) in (1..=4).flat_map(|c| ('A'..='K').map(move |s| (c, s))).enumerate() {
        let n = n + 1;
        csv.push_str(&format!(
            "{chassis},{slot},SN{n:02},00:11:22:33:{chassis:02x}:{:02x},192.168.1.{n},{},test\n",
            slot as u8 - b'A',
            n - 1
        ));
    }
    std::fs::write(&path, csv).unwrap();
    path.display().to_string()
}

#[test]
fn racing_scanners_exactly_one_wins() {
    let d = stocked();
    for round in 0..3 {
        let target = format!("LNA0000{}P1", round + 1);
        let children: Vec<_> = (1..=3)
            .map(|a| {
                d.ctl_cmd()
                    .args(["scan", "connect", &format!("ANT0000{a}P1"), &target])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let wins = children
            .into_iter()
            .filter_map(|c| c.wait_with_output().ok())
            .filter(|o| o.status.success())
            .count();
        if round == 0 {
            assert_eq!(wins, 1, "exactly one of three racing scanners connects {target}");
        }
    }
    // Whatever the interleaving, no part ever has two active edges.
    let v = d.ctl_json(&["visualize", "chains"]);
    assert!(!v["text"].as_str().unwrap().contains("DUPLICATE"), "{v}");
}

const SESSION: &str =
    "ANT00001P1\nLNA00001P1\nANT00002P1\nCXS00002P1\nNOT-A-PART\nANT00002P1\nLNA00002P1\nquit\nANT00003P1\n";

fn check_session(d: &Daemon, stdout: &str, stderr: &str) {
    assert!(stdout.contains("connected ANT00001P1 -> LNA00001P1"), "{stdout}");
    assert!(stdout.contains("connected ANT00002P1 -> LNA00002P1"), "{stdout}");
    assert!(stderr.contains("ANTENNA can only connect to LNA"), "{stderr}");
    assert!(stderr.contains("NOT-A-PART"), "{stderr}");
    // `quit` ended the session: the scan after it was not read.
    let asm = d.data_dir.join("assembled_casm.db");
    assert_eq!(sqlite(&asm, "SELECT COUNT(*) FROM assembly").trim(), "2");
}

#[test]
fn the_interactive_scanner_works_through_a_pipe() {
    let d = stocked();
    let mut child = d
        .ctl_cmd()
        .args(["scan", "connection"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(SESSION.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    check_session(&d, &String::from_utf8_lossy(&out.stdout), &String::from_utf8_lossy(&out.stderr));
    // Chain mode: each target becomes the next source; disconnection by pairs.
    let mut child = d
        .ctl_cmd()
        .args(["scan", "connection", "--chain"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ANT00003P1\nLNA00003P1\nCXS00003P1\nCXL00003P1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let mut child = d
        .ctl_cmd()
        .args(["scan", "disconnection"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"LNA00003P1\nANT00003P1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("disconnected ANT00003P1 -X-> LNA00003P1"));
}

#[test]
fn the_interactive_scanner_works_on_a_terminal() {
    let d = stocked();
    // `script` runs casmanctl on a pseudo-terminal; our pipe feeds the terminal.
    let cmd = format!("{} --socket {} scan connection", bin("casmanctl").display(), d.socket.display());
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    child.stdin.take().unwrap().write_all(SESSION.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    // On a terminal stdout and stderr share the screen.
    check_session(&d, &screen, &screen);
    assert!(screen.contains("first part>"), "prompts shown on the terminal: {screen}");
}

#[test]
fn remove_disconnects_every_edge_of_a_part() {
    let d = stocked();
    chain(&d, 2, 2, "SNAP3C11");
    d.ctl_err(&["scan", "remove", "CXS00002P2"], 2);
    let v = d.ctl_json(&["scan", "remove", "CXS00002P2", "--yes"]);
    assert_eq!(v["disconnected"].as_array().unwrap().len(), 2);
    assert_eq!(d.ctl_json(&["chain", "ANT00002P2"])["parts"].as_array().unwrap().len(), 2);
    assert_eq!(d.ctl_json(&["chain", "SNAP3C11"])["parts"].as_array().unwrap().len(), 3);
    let v = d.ctl_json(&["scan", "remove", "CXS00002P2", "--yes"]);
    assert_eq!(v["disconnected"].as_array().unwrap().len(), 0);
}

#[test]
fn the_ascii_view_shows_chains_and_is_empty_on_a_new_database() {
    let d = stocked();
    assert_eq!(d.ctl_ok(&["visualize", "chains"]), "No assembly connections found.\n");
    chain(&d, 1, 1, "SNAP1A00");
    let text = d.ctl_ok(&["visualize", "chains"]);
    assert!(text.starts_with("CASM Assembly Connections:\n"), "{text}");
    assert!(text.contains(
        "ANT00001P1 ---> LNA00001P1 ---> CXS00001P1 ---> CXL00001P1 ---> BAC00001P1 ---> SNAP1A00"
    ));
}

fn legacy(name: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/legacy").join(name);
    p.exists().then_some(p)
}

/// On the real 2026-01 scan history, adopted by casmand, the daemon's view
/// reproduces the Python tool's 75 edges and its ASCII output.
#[test]
fn the_golden_chains_are_reproduced_through_the_daemon() {
    let (Some(db), Some(ascii), Some(state)) = (
        legacy("assembled_casm-2026-01.db"),
        legacy("golden/assembled_casm-2026-01.ascii_chains.txt"),
        legacy("golden/assembled_casm-2026-01.current_state.txt"),
    ) else {
        casman_tests::skip("../shared/legacy is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(&db, dir.path().join("data/assembled_casm.db")).unwrap();
    let d = Daemon::start_in(dir, DaemonOpts::default());
    let v = d.ctl_json(&["visualize", "chains"]);
    assert_eq!(v["connections"], 75);
    assert_eq!(format!("{}\n", v["text"].as_str().unwrap()), std::fs::read_to_string(&ascii).unwrap());
    // Every golden edge's chain is traced the same way.
    let golden = std::fs::read_to_string(&state).unwrap();
    for line in golden.lines().filter(|l| l.trim_start().starts_with("('")) {
        let f: Vec<&str> = line.split('\'').collect();
        let (src, dst) = (f[1], f[3]);
        let c = d.ctl_json(&["chain", src]);
        let parts: Vec<&str> = c["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        let i = parts.iter().position(|p| *p == src).unwrap();
        assert_eq!(parts.get(i + 1), Some(&dst), "{src} -> {dst} in {parts:?}");
    }
}

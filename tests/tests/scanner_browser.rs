//! The field scanner in headless Chromium at phone size (390×844), driven
//! by playwright-core (`tests/scanner_browser.js`) as a technician with a
//! keyboard-wedge scanner drives it: sign-in, a connect done by typing
//! labels and Enter, chain mode, the SNAP port picker (an occupied port
//! greyed with its occupant, a free one recorded), refusals naming the rule,
//! NOT RECORDED with a Retry that records once, disconnect, remove, history
//! with operator and client, a position with eviction confirmation, the
//! part-number builder and the admin page's CSV errors. Screenshots of each
//! screen land in `$CASMAN_ARTIFACTS` (default `<target dir>/web-screenshots`);
//! the ones in docs/screenshots come from here.
//!
//! tests/run installs chromium and playwright-core; without them this test
//! says so and passes, except under `CI=true`, where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

use casman_tests::{Daemon, DaemonOpts, sqlite};

const TOKEN: &str = "alice-own-token-1";

fn playwright_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CASMAN_NODE_MODULES").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/casman-node/node_modules"))
    })?;
    dir.join("playwright-core").is_dir().then_some(dir)
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CASMAN_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.ancestors().nth(3).unwrap_or(Path::new(".")).join("web-screenshots")
    });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_technician_scans_a_day_of_work_on_a_phone() {
    let chromium = std::env::var("CASMAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let (Some(modules), true) = (playwright_dir(), Path::new(&chromium).exists()) else {
        casman_tests::skip(&format!("needs {chromium} and playwright-core (tests/run installs both)"));
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"site-token-01234\"\n\
         [[http.operators]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\nadmin = true\n"
    );
    let d = Daemon::start_with(DaemonOpts::default().config(&config));
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, "3", "1"]);
        d.ctl_ok(&["parts", "add", t, "3", "2"]);
    }
    // Chain 2 P1 recorded with casmanctl by carol, ending on SNAP1A05.
    let links = ["ANT00002P1", "LNA00002P1", "CXS00002P1", "CXL00002P1", "BAC00002P1", "SNAP1A05"];
    for w in links.windows(2) {
        d.ctl_ok(&["--operator", "carol", "scan", "connect", w[0], w[1]]);
    }
    d.ctl_ok(&["positions", "assign", "ANT00001", "CC000E01"]);

    let out = artifacts();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scanner_browser.js");
    let run = Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&out)
        .arg(TOKEN)
        .env("NODE_PATH", &modules)
        .env("CASMAN_CHROMIUM", &chromium)
        .output()
        .expect("node (installed with chromium's test tools by tests/run)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "scanner checks failed: {stdout}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        d.log_text()
    );

    // What the page recorded, as the databases hold it.
    let q = |sql: &str| sqlite(&d.data_dir.join("assembled_casm.db"), sql).trim().to_owned();
    let pair = |a: &str, b: &str, status: &str| {
        q(&format!(
            "SELECT count(*) FROM assembly WHERE part_number = '{a}' AND connected_to = '{b}' AND connection_status = '{status}'"
        ))
    };
    assert_eq!(pair("ANT00001P1", "LNA00001P1", "connected"), "1");
    assert_eq!(pair("BAC00001P1", "SNAP1A06", "connected"), "1");
    assert_eq!(pair("ANT00003P1", "LNA00003P1", "connected"), "1", "the retried connect is recorded once");
    assert_eq!(pair("CXS00001P1", "CXL00001P1", "disconnected"), "1");
    assert_eq!(pair("ANT00003P1", "CXS00003P1", "connected"), "0", "refusals write nothing");
    assert_eq!(pair("ANT00003P1", "LNA00003P2", "connected"), "0");
    let placed = sqlite(
        &d.data_dir.join("parts.db"),
        "SELECT antenna_number FROM antenna_positions WHERE grid_code = 'CC000E01'",
    );
    assert_eq!(placed.trim(), "ANT00003");
    for name in [
        "scanner-signin.png",
        "scanner-confirm.png",
        "scanner-recorded.png",
        "scanner-snap.png",
        "scanner-refused.png",
        "scanner-not-recorded.png",
        "scanner-disconnect.png",
        "scanner-remove.png",
        "scanner-history.png",
        "scanner-position.png",
        "scanner-evict.png",
        "scanner-builder.png",
        "admin.png",
        "admin-csv-error.png",
        "scanner-dark.png",
    ] {
        let len = std::fs::metadata(out.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{name} missing from {}", out.display());
    }
    println!("screenshots in {}", out.display());
}

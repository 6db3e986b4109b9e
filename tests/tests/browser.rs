//! The web views in headless Chromium (Debian's `chromium`), driven by
//! playwright-core (`tests/browser.js`): pages load without console errors,
//! the grid shows antennas in their cells, clicking a SNAP port opens its
//! details, a scan fills a port in live, nothing scrolls sideways on a phone.
//! Screenshots of every view land in `$CASMAN_ARTIFACTS` (default
//! `<target dir>/web-screenshots`).
//!
//! tests/run installs chromium (apt) and playwright-core (npm, into
//! `~/.cache/casman-node`); without them this test says so and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

use casman_tests::{Daemon, DaemonOpts, bin};

fn playwright_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CASMAN_NODE_MODULES").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/casman-node/node_modules"))
    })?;
    dir.join("playwright-core").is_dir().then_some(dir)
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CASMAN_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        // <target>/debug/deps/browser-… → <target>/web-screenshots
        let exe = std::env::current_exe().unwrap();
        exe.ancestors().nth(3).unwrap_or(Path::new(".")).join("web-screenshots")
    });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn views_work_in_headless_chromium() {
    let chromium = std::env::var("CASMAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let (Some(modules), true) = (playwright_dir(), Path::new(&chromium).exists()) else {
        casman_tests::skip(&format!("needs {chromium} and playwright-core (tests/run installs both)"));
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = Daemon::start_with(
        DaemonOpts::default()
            .config(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\nallow_without_token = true\n")),
    );
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, "3", "1"]);
        d.ctl_ok(&["parts", "add", t, "3", "2"]);
    }
    let chain = |n: u32, pol: u32, snap: Option<&str>| {
        let p = |abbr: &str| format!("{abbr}{n:05}P{pol}");
        let mut links = vec![p("ANT"), p("LNA"), p("CXS"), p("CXL"), p("BAC")];
        links.extend(snap.map(str::to_owned));
        for w in links.windows(2) {
            d.ctl_ok(&["scan", "connect", &w[0], &w[1]]);
        }
    };
    chain(1, 1, Some("SNAP1A05"));
    chain(1, 2, Some("SNAP1A06"));
    chain(2, 1, Some("SNAP1A07"));
    chain(3, 2, Some("SNAP1C11"));
    // Connected to SNAP1B07 by the browser script, to watch the port fill in.
    chain(2, 2, None);
    d.ctl_ok(&["positions", "assign", "ANT00001", "CC000E01"]);
    d.ctl_ok(&["positions", "assign", "ANT00002", "CN021E01"]);
    d.ctl_ok(&["positions", "assign", "ANT00003", "CS003E04"]);
    let csv = d.dir.path().join("boards.csv");
    std::fs::write(
        &csv,
        "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,101,00:29:c4:e8:01:0a,192.168.120.10,3,rack one\n\
         1,B,102,00:29:c4:e8:01:0b,192.168.120.11,4,\n1,C,103,00:29:c4:e8:01:0c,192.168.120.12,5,\n",
    )
    .unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", csv.to_str().unwrap()]);

    let out = artifacts();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser.js");
    let run = Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&out)
        .arg(bin("casmanctl"))
        .arg(&d.socket)
        .env("NODE_PATH", &modules)
        .env("CASMAN_CHROMIUM", &chromium)
        .output()
        .expect("node (installed with chromium's test tools by tests/run)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "browser checks failed: {stdout}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        d.log_text()
    );
    for name in ["chains.png", "grid.png", "snap-modal.png", "snap.png", "status.png", "grid-phone.png"] {
        let len = std::fs::metadata(out.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{name} missing from {}", out.display());
    }
    println!("screenshots in {}", out.display());
}

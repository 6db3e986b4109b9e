//! The web views served by casmand (`[http]`): pages over a fixture built
//! with casmanctl, search, escaping, the token rule off loopback, and live
//! updates by server-sent events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::Stdio,
    time::{Duration, Instant},
};

use casman_tests::{
    DEADLINE, Daemon, DaemonOpts,
    http::{free_port, get},
    sqlite, wait_for,
};

fn ok(port: u16, path: &str) -> String {
    let r = get(port, path, &[]);
    assert_eq!(r.status, 200, "GET {path}: {}\n{}", r.headers, r.body);
    r.body
}

/// The HTML of the SNAP port cell `port` on the /snap page.
fn port_cell<'a>(page: &'a str, port: &str) -> &'a str {
    let start = page.find(&format!("id=\"port-{port}\"")).unwrap_or_else(|| panic!("no cell {port}"));
    let start = page[..start].rfind("<a ").unwrap();
    let rest = &page[start..];
    &rest[..rest.find("</a>").unwrap()]
}

/// A daemon serving the web views on loopback, stocked through casmanctl:
/// complete chains of both polarizations, one chain with no antenna at its
/// head, positions, and two configured boards (one with markup in its notes).
pub fn stocked(extra_config: &str) -> (Daemon, u16) {
    let port = free_port();
    let config = format!("[http]\nlisten = \"127.0.0.1:{port}\"\nallow_without_token = true\n{extra_config}");
    let d = Daemon::start_with(DaemonOpts::default().config(&config));
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, "3", "1"]);
        d.ctl_ok(&["parts", "add", t, "3", "2"]);
    }
    let chain = |n: u32, pol: u32, snap: &str, from: usize| {
        let p = |abbr: &str| format!("{abbr}{n:05}P{pol}");
        let links = [p("ANT"), p("LNA"), p("CXS"), p("CXL"), p("BAC"), snap.to_owned()];
        for w in links[from..].windows(2) {
            d.ctl_ok(&["scan", "connect", &w[0], &w[1]]);
        }
    };
    chain(1, 1, "SNAP1A05", 0);
    chain(1, 2, "SNAP1A06", 0);
    chain(2, 1, "SNAP2C00", 0);
    // No antenna at the head: the port must not show an upstream part as its antenna.
    chain(3, 1, "SNAP1B03", 1);
    d.ctl_ok(&["positions", "assign", "ANT00001", "CC000E01"]);
    d.ctl_ok(&["positions", "assign", "ANT00002", "CN021E01"]);
    let csv = d.dir.path().join("boards.csv");
    std::fs::write(
        &csv,
        "chassis,slot,sn,mac,ip,feng_id,notes\n\
         1,A,101,00:29:C4:E8:01:0A,192.168.120.10,3,<script>alert(1)</script>\n\
         2,C,102,00:29:C4:E8:02:0C,192.168.120.11,5,rack two\n",
    )
    .unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", csv.to_str().unwrap()]);
    (d, port)
}

#[test]
fn pages_show_chains_grid_ports_and_status() {
    let (d, port) = stocked("");

    // Chains: every chain, times, board info with packet index feng*12+port.
    let chains = ok(port, "/chains");
    assert_eq!(ok(port, "/"), chains);
    for needle in ["ANT00001P1", "SNAP1A05", "ANT00001P2", "SNAP1A06", "SNAP2C00", "FRM", "NOW", "NXT"] {
        assert!(chains.contains(needle), "chains lack {needle}");
    }
    assert!(chains.contains("<b>PKT</b> 41"), "SNAP1A05 on feng 3: 3*12+5 = 41");
    assert!(chains.contains("<b>PKT</b> 60"), "SNAP2C00 on feng 5: 60");
    assert!(chains.to_ascii_lowercase().contains("00:29:c4:e8:01:0a") && chains.contains("192.168.120.10"));
    assert!(!chains.contains("Duplicate connections"));
    // Search by part: only the chains holding it.
    let one = ok(port, "/chains?part=ant00002p1");
    assert!(one.contains("class=\"pn\" href=\"/chains?part=SNAP2C00\""));
    assert!(!one.contains("class=\"pn\" href=\"/chains?part=SNAP1A05\""));
    assert!(ok(port, "/chains?part=ANT00099P1").contains("No chain contains ANT00099P1"));

    // Grid: antenna in its cell, kernel index per cell, searches, detail panel.
    let grid = ok(port, "/grid");
    assert!(grid.contains(
        "data-grid=\"CC000E01\"><a class=\"cell assigned\" href=\"/grid?grid=CC000E01\" \
         title=\"ANT00001 | CC000E01 | Kernel: 126\"><span class=\"ant\">ANT00001</span><span class=\"k\">126</span>"
    ));
    assert!(grid.contains("<span class=\"ant\">ANT00002</span><span class=\"k\">0</span>"));
    assert_eq!(grid.matches("<td data-grid=").count(), 43 * 6);
    let k = ok(port, "/grid?kernel=126");
    for needle in [
        "ANT00001",
        "SNAP1A05",
        "SNAP1A06",
        "Chassis 1, Slot A, Port 5",
        "<b>PKT</b> 41",
        "ANT00001P1</a> → ",
    ] {
        assert!(k.contains(needle), "kernel 126 detail lacks {needle}");
    }
    assert!(ok(port, "/grid?antenna=ANT00002P1").contains("<h2>CN021E01</h2>"));
    assert!(ok(port, "/grid?grid=cs021e06").contains("Not mapped"));
    assert!(ok(port, "/grid?antenna=ANT00003").contains("No antenna found"));
    assert!(ok(port, "/grid?kernel=999").contains("not 0-255"));

    // SNAP ports: the antenna at the head of the chain, grid code, kernel, polarization.
    let snap = ok(port, "/snap");
    let a05 = port_cell(&snap, "SNAP1A05");
    assert!(
        a05.contains("class=\"port p1\"") && a05.contains("ANT00001P1") && a05.contains("CC000E01 | 126"),
        "{a05}"
    );
    let a06 = port_cell(&snap, "SNAP1A06");
    assert!(a06.contains("class=\"port p2\"") && a06.contains("ANT00001P2"), "{a06}");
    let b03 = port_cell(&snap, "SNAP1B03");
    assert!(b03.contains("class=\"port partial\""), "{b03}");
    assert!(!b03.contains("BAC00003") && !b03.contains("CXL00003") && !b03.contains("ANT"), "{b03}");
    assert!(port_cell(&snap, "SNAP4K11").contains("class=\"port empty\""));
    assert_eq!(snap.matches("class=\"port ").count() - 4, 4 * 11 * 12, "legend has 4");
    let only = ok(port, "/snap?chassis=2&slot=C");
    assert!(only.contains("id=\"port-SNAP2C00\"") && !only.contains("id=\"port-SNAP1A05\""));
    // Port details: board configuration and packet index, values escaped.
    let detail = ok(port, "/snap/port/SNAP1A05");
    for needle in ["SNAP1A - Port 5", "101", "192.168.120.10", "41 <small>", "ANT00001P1", "CC000E01"] {
        assert!(detail.contains(needle), "port detail lacks {needle}: {detail}");
    }
    assert!(detail.to_ascii_lowercase().contains("00:29:c4:e8:01:0a"));
    assert!(detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !detail.contains("<script>alert"));
    assert!(ok(port, "/snap?port=SNAP1A05").contains("id=\"detail\""));
    assert!(ok(port, "/snap/port/SNAP3D01").contains("No board configuration found"));
    assert_eq!(get(port, "/snap/port/NOPE", &[]).status, 404);

    // Status: backups per database, pending work, quota.
    let status = ok(port, "/status");
    for needle in ["parts.db", "assembled_casm.db", "Pending work", "Quota", "Class A operations"] {
        assert!(status.contains(needle), "status lacks {needle}");
    }

    // Assets are embedded; unknown pages are 404; headers forbid outside resources.
    assert!(ok(port, "/assets/style.css").contains("--p1"));
    assert!(ok(port, "/assets/app.js").contains("EventSource"));
    let r = get(port, "/nope", &[]);
    assert_eq!(r.status, 404);
    let r = get(port, "/grid", &[]);
    assert!(r.headers.contains("content-security-policy: default-src 'self'"), "{}", r.headers);
    assert!(!r.body.contains("http://") && !r.body.contains("https://"), "no external resources");

    // A legacy duplicate (two active sources of one target, written by an
    // outside program) is highlighted.
    sqlite(
        &d.data_dir.join("assembled_casm.db"),
        "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
         connected_polarization, connected_scan_time, connection_status) VALUES ('LNA00002P2', 'LNA', 'P2',
         '2030-01-01T00:00:00Z', 'CXS00001P2', 'COAXSHORT', 'P2', '2030-01-01T00:00:00Z', 'connected')",
    );
    let chains = ok(port, "/chains");
    assert!(chains.contains("Duplicate connections detected"));
    assert!(chains.contains("<b>CXS00001P2</b> has 2 active sources"));
    assert!(chains.contains("class=\"part cxs pol-p2 duplicate\""));
}

#[test]
fn non_loopback_address_needs_a_token_and_every_request_carries_it() {
    // Without a token: casmand refuses to start, saying why.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let opts = DaemonOpts::default().config(&format!("[http]\nlisten = \"0.0.0.0:{port}\"\n"));
    let mut child =
        Daemon::command(dir.path(), &opts).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let status = wait_for("casmand to refuse", DEADLINE, || child.try_wait().ok().flatten());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("http.token") && err.contains("not a loopback address"), "{err}");

    // A busy address stops start-up too.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().port();
    let opts = DaemonOpts::default()
        .config(&format!("[http]\nlisten = \"127.0.0.1:{taken}\"\nallow_without_token = true\n"));
    let out = Daemon::command(dir.path(), &opts).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.listen") && err.contains("cannot listen"), "{err}");

    // With a token: 401 without it, 200 with it (header, query then cookie).
    let token = "s3cret-T0ken-0123";
    let port = free_port();
    let config = format!("[http]\nlisten = \"0.0.0.0:{port}\"\ntoken = \"{token}\"\n");
    let d = Daemon::start_with(DaemonOpts::default().config(&config));
    for path in ["/", "/grid", "/snap", "/status", "/events", "/assets/app.js", "/snap/port/SNAP1A00"] {
        let r = get(port, path, &[]);
        assert_eq!(r.status, 401, "{path} without a token");
        assert!(r.headers.contains("www-authenticate: bearer"));
        assert!(!r.body.contains(token));
    }
    assert_eq!(get(port, "/grid", &["Authorization: Bearer wrong"]).status, 401);
    assert_eq!(get(port, "/grid?token=wrong", &[]).status, 401);
    assert_eq!(get(port, "/grid", &[&format!("Authorization: Bearer {token}")]).status, 200);
    let r = get(port, &format!("/grid?kernel=3&token={token}"), &[]);
    assert_eq!(r.status, 303, "the token leaves the address bar: {}", r.headers);
    assert!(r.headers.contains("location: /grid?kernel=3"), "{}", r.headers);
    let cookie = r
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned();
    assert!(r.headers.contains("httponly") && !cookie.contains(token));
    assert_eq!(get(port, "/status", &[&format!("Cookie: {cookie}")]).status, 200);
    // The token is a secret: redacted in the effective configuration.
    let shown = d.ctl_ok(&["config"]);
    assert!(!shown.contains(token), "{shown}");
}

#[test]
fn events_announce_a_scan() {
    let (d, port) = stocked("");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!("GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut seen = String::new();
    let read_until = |r: &mut BufReader<TcpStream>, seen: &mut String, needle: &str| {
        let start = Instant::now();
        while !seen.contains(needle) {
            assert!(start.elapsed() < Duration::from_secs(20), "no {needle:?} in {seen}");
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                panic!("stream ended: {seen}");
            }
            seen.push_str(&line);
        }
    };
    read_until(&mut r, &mut seen, "event: hello");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");
    d.ctl_ok(&["scan", "connect", "ANT00002P2", "LNA00002P2"]);
    read_until(&mut r, &mut seen, "scan.connect");
    assert!(seen.contains("event: change"), "{seen}");
    assert!(seen.contains("assembled_casm.db"), "{seen}");
}

#[test]
fn a_stopping_daemon_ends_open_event_streams() {
    let port = free_port();
    let mut d = Daemon::start_with(
        DaemonOpts::default()
            .config(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\nallow_without_token = true\n")),
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 64];
    let _ = s.read(&mut first).unwrap();
    let started = Instant::now();
    assert!(d.terminate().success(), "{}", d.log_text());
    assert!(started.elapsed() < Duration::from_secs(8), "the open stream held up the shutdown");
    assert!(!d.log_text().contains("did not stop in time"), "{}", d.log_text());
}

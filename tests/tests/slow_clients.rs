//! Slow clients (issue 32, item 1): connections that send a request head, or
//! the HTTP/2 preface, and then one byte every so often must neither lock
//! out other clients nor hold their places for ever; casmanctl never dies
//! silently. `connections.rs` covers silent and idle floods.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::Ipv4Addr,
    os::unix::net::UnixStream,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, closed, http::connect_from, wait_for};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Sends one byte every 300 ms on each of `conns` until `stop`, or for at
/// most [`DEADLINE`]; the connections, handed back when it ends.
fn trickle<S: Write + Send + 'static>(
    conns: Vec<S>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<S>> {
    std::thread::spawn(move || {
        let mut conns = conns;
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < DEADLINE {
            for c in &mut conns {
                let _ = c.write_all(b"X");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        conns
    })
}

/// `GET /status` from `source`; the status line.
fn get_status(source: [u8; 4], port: u16) -> String {
    let mut s = connect_from(Ipv4Addr::from(source), port);
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).lines().next().unwrap_or("").to_owned()
}

#[test]
fn trickling_web_clients_lock_nobody_out_and_are_closed_after_the_header_deadline() {
    let port = casman_tests::s3::free_port();
    let d = Daemon::start_with(
        DaemonOpts::default()
            .config(
                "[server]\nmax_connections = 32\nmax_connections_per_peer = 8\nhandshake_timeout = \"1s\"\n\
                 header_timeout = \"2s\"\n",
            )
            .env("CASMAN_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("CASMAN_HTTP__ALLOW_WITHOUT_TOKEN", "true"),
    );
    // 40 connections from 127.0.0.2, more than the whole cap: each sends a
    // request line and a header, then a byte every 300 ms.
    let conns: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 2), port);
            write!(s, "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = trickle(conns.iter().map(|s| s.try_clone().unwrap()).collect(), stop.clone());
    // Meanwhile another address, and the trickling one itself, are served.
    for _ in 0..3 {
        assert!(get_status([127, 0, 0, 1], port).starts_with("HTTP/1.1 200"));
        assert!(get_status([127, 0, 0, 2], port).starts_with("HTTP/1.1 200"));
    }
    let mut conns = conns;
    for s in &conns {
        s.set_nonblocking(true).unwrap();
    }
    wait_for("every trickling connection to be closed", DEADLINE, || {
        conns.iter_mut().all(closed).then_some(())
    });
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "closed after {took:?}, before server.header_timeout");
    assert!(took < Duration::from_secs(15), "closed after {took:?}");
    stop.store(true, Ordering::SeqCst);
    trickler.join().unwrap();
    let log = d.log_text();
    assert!(
        log.contains("too many connections from 127.0.0.2 (server.max_connections_per_peer = 8)"),
        "{log}"
    );
    assert!(get_status([127, 0, 0, 1], port).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_slow_web_request_body_is_cut_at_the_body_deadline() {
    let port = casman_tests::s3::free_port();
    let d = Daemon::start_with(
        DaemonOpts::default()
            .config("[server]\nbody_timeout = \"1s\"\n")
            .env("CASMAN_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("CASMAN_HTTP__ALLOW_WITHOUT_TOKEN", "true"),
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "POST /scanner/api/signin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: 100000\r\n\r\n{{"
    )
    .unwrap();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = trickle(vec![s.try_clone().unwrap()], stop.clone());
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    stop.store(true, Ordering::SeqCst);
    trickler.join().unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(10), "{took:?}");
    drop(d);
}

#[test]
fn trickling_socket_clients_lock_nobody_out_and_are_closed_after_the_handshake_deadline() {
    let d = Daemon::start_with(DaemonOpts::default().config("[server]\nhandshake_timeout = \"1s\"\n"));
    // Each sends the HTTP/2 preface, then a byte every 300 ms.
    let conns: Vec<UnixStream> = (0..40)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            s.write_all(PREFACE).unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = trickle(conns.iter().map(|s| s.try_clone().unwrap()).collect(), stop.clone());
    for _ in 0..3 {
        let out = d.ctl(&["--timeout", "10s", "status"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut conns = conns;
    for s in &conns {
        s.set_nonblocking(true).unwrap();
    }
    wait_for("every trickling connection to be closed", DEADLINE, || {
        conns.iter_mut().all(closed).then_some(())
    });
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    stop.store(true, Ordering::SeqCst);
    trickler.join().unwrap();
}

#[test]
fn a_refused_casmanctl_says_why_in_one_line() {
    let d = Daemon::start_with(
        DaemonOpts::default().config("[server]\nmax_connections = 2\nhandshake_timeout = \"1h\"\n"),
    );
    // Two clients past their handshake, heard from recently: no place left.
    // (The readiness probe's connections may still hold a place until the
    // daemon sees them closed: a client refused meanwhile tries again.)
    let held: Vec<UnixStream> = (0..2)
        .map(|_| {
            wait_for("a place for a client to hold", DEADLINE, || {
                let mut s = UnixStream::connect(&d.socket).ok()?;
                s.write_all(PREFACE).ok()?;
                s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).ok()?;
                s.set_read_timeout(Some(DEADLINE)).ok()?;
                // The daemon's ACK of our SETTINGS: it has read (and counted) our handshake.
                casman_tests::settings_ack(&mut s).ok()?;
                Some(s)
            })
        })
        .collect();
    let out = d.ctl(&["--timeout", "5s", "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // The reason comes in the GOAWAY casmand sends before closing; a client
    // whose write of its own preface meets the close first (under load) can
    // only say that casmand closed it and which limit that may be.
    assert!(
        stderr.contains("casmand closed the connection")
            && (stderr.contains("too many connections (server.max_connections = 2)")
                || stderr.contains("it may be at its connection limits (server.max_connections")),
        "{stderr}"
    );
    drop(held);
    wait_for("a place to free up", DEADLINE, || d.ctl(&["status"]).status.success().then_some(()));
}

#[test]
fn casmanctl_writing_to_a_closed_pipe_ends_quietly() {
    let d = Daemon::start();
    for args in [&["commands"][..], &["status"], &["--json", "status"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out =
            d.ctl_cmd().args(args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// One user's connections cannot take every place on the socket: past
/// `server.max_connections_per_peer`, that uid's next connection is refused
/// with the reason, while root (and the admin group) still get in. The
/// connections are held by a second uid (setpriv), as a local user would.
#[test]
fn one_uid_cannot_take_every_place_on_the_socket() {
    use std::{
        os::unix::fs::PermissionsExt,
        process::{Command, Stdio},
    };
    const UID: &str = "47123";
    let setpriv = ["--reuid", UID, "--regid", "47124", "--clear-groups"];
    let can = nix::unistd::geteuid().is_root()
        && Command::new("setpriv")
            .args(setpriv)
            .args(["/usr/bin/python3", "-c", "pass"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !can {
        return casman_tests::skip(
            "needs root, util-linux setpriv and /usr/bin/python3 to act as a second uid",
        );
    }
    let d = Daemon::start_with(DaemonOpts::default().config(
        "socket_mode = \"0666\"\n[server]\nmax_connections_per_peer = 2\nhandshake_timeout = \"1h\"\n",
    ));
    for dir in [d.dir.path().to_owned(), d.dir.path().join("run")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ctl = d.dir.path().join("casmanctl");
    std::fs::copy(casman_tests::bin("casmanctl"), &ctl).unwrap();
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_uid = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        casman_tests::scrub_env(&mut cmd);
        cmd.args(setpriv).arg(&ctl).arg("--socket").arg(&d.socket).args(args).stdin(Stdio::null());
        cmd.output().unwrap()
    };
    assert!(as_uid(&["status"]).status.success(), "the second uid may use the socket");
    // Two connections of that uid past their handshake, held open until
    // stdin closes.
    let holder = "import socket, sys\n\
        conns = []\n\
        for _ in range(2):\n\
        \x20   s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n\
        \x20   s.sendall(b'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))\n\
        \x20   got = b''\n\
        \x20   while len(got) < 9: got += s.recv(9 - len(got))\n\
        \x20   conns.append(s)\n\
        print('ready', flush=True)\n\
        sys.stdin.read()\n";
    let mut cmd = Command::new("setpriv");
    casman_tests::scrub_env(&mut cmd);
    let mut held = cmd
        .args(setpriv)
        .args(["/usr/bin/python3", "-c", holder])
        .arg(&d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(held.stdout.take().unwrap()), &mut line)
        .unwrap();
    if line.trim() != "ready" {
        drop(held.stdin.take());
        panic!("the holder did not connect: {:?}", held.wait_with_output().unwrap());
    }
    let out = as_uid(&["--timeout", "5s", "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The reason comes in the GOAWAY sent before the close; a client whose
    // preface meets the close first (under load) can only say that casmand
    // closed it, at a limit (as in `a_refused_casmanctl_says_why_in_one_line`).
    assert!(
        (stderr.contains(&format!("too many connections from uid {UID}"))
            && stderr.contains("server.max_connections_per_peer = 2"))
            || (stderr.contains("casmand closed the connection")
                && stderr.contains("it may be at its connection limits")),
        "{stderr}"
    );
    // Root is not counted against that uid, and is not capped.
    d.ctl_ok(&["status"]);
    drop(held.stdin.take());
    held.wait().unwrap();
    wait_for("a place for the uid again", DEADLINE, || as_uid(&["status"]).status.success().then_some(()));
}

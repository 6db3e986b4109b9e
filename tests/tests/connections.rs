//! Hostile clients on the socket and the web listener (issue 19, defect 1):
//! a flood of silent connections, idle connections, garbage bytes, a client
//! that never reads its stream, an oversized message. The daemon keeps
//! answering everyone else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::{Duration, Instant},
};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, wait_for};
use casmand::uds_authority::hpack::{Decoder, Field, encode};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Sets this test process's soft descriptor limit (a daemon started after
/// inherits it).
fn set_fd_limit(soft: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).unwrap();
}

/// A daemon with the default limit of 1,024 descriptors (nextest raises its
/// own), then room in this process for the flood.
fn daemon_with_1024_descriptors(opts: DaemonOpts) -> Daemon {
    set_fd_limit(1024);
    let d = Daemon::start_with(opts);
    set_fd_limit(8192);
    d
}

/// Whether the daemon closed `s` (EOF or reset), without blocking.
fn closed(mut s: &UnixStream) -> bool {
    s.set_nonblocking(true).unwrap();
    casman_tests::closed(&mut s)
}

fn status_answers(d: &Daemon) -> Duration {
    let started = Instant::now();
    let out = d.ctl(&["--timeout", "10s", "status"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), d.log_text());
    started.elapsed()
}

#[test]
fn a_flood_of_silent_connections_does_not_stop_a_normal_call() {
    let d = daemon_with_1024_descriptors(DaemonOpts::default());
    let flood: Vec<UnixStream> = (0..1100).map(|_| UnixStream::connect(&d.socket).unwrap()).collect();
    let took = status_answers(&d);
    assert!(took < Duration::from_secs(5), "status took {took:?}");
    // Past the cap (256 by default), the oldest silent connections were closed.
    wait_for("the daemon to close connections past the cap", DEADLINE, || {
        let open = flood.iter().filter(|s| !closed(s)).count();
        (open <= 256).then_some(())
    });
    let log = d.log_text();
    assert_eq!(log.matches("too many connections (server.max_connections = 256)").count(), 1, "{log}");
    drop(flood);
    status_answers(&d);
}

fn with_timeouts() -> DaemonOpts {
    DaemonOpts::default().config("[server]\nhandshake_timeout = \"1s\"\nidle_timeout = \"2s\"\n")
}

#[test]
fn silent_and_idle_connections_are_closed_after_the_timeouts() {
    let d = Daemon::start_with(with_timeouts());
    let silent = UnixStream::connect(&d.socket).unwrap();
    // A client that sends the preface and its settings, then nothing, and
    // never answers the server's pings.
    let mut idle = UnixStream::connect(&d.socket).unwrap();
    idle.write_all(PREFACE).unwrap();
    idle.write_all(&frame(4, 0, 0, &[])).unwrap();
    let started = Instant::now();
    wait_for("the silent connection to be closed", DEADLINE, || closed(&silent).then_some(()));
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    wait_for("the idle connection to be closed", DEADLINE, || closed(&idle).then_some(()));
    assert!(started.elapsed() >= Duration::from_millis(1900), "{:?}", started.elapsed());
    status_answers(&d);
}

#[test]
fn garbage_bytes_close_the_connection_and_nothing_else() {
    let d = Daemon::start();
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..65_536)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    // The daemon may close before it has read everything.
    let _ = s.write_all(&garbage);
    wait_for("the daemon to close the garbage connection", DEADLINE, || closed(&s).then_some(()));
    status_answers(&d);
}

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn field(name: &str, value: &str) -> Field {
    Field { name: name.as_bytes().to_vec(), value: value.as_bytes().to_vec(), never_indexed: false }
}

/// Opens a connection and sends one gRPC request on stream 1: `settings`
/// (id, value pairs) in the client's SETTINGS, a message of `body` whose
/// length prefix says `declared` bytes.
fn grpc_request(d: &Daemon, settings: &[(u16, u32)], path: &str, declared: u32, body: &[u8]) -> UnixStream {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let mut payload = Vec::new();
    for (id, value) in settings {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    let headers = encode(&[
        field(":method", "POST"),
        field(":scheme", "http"),
        field(":path", path),
        field(":authority", "localhost"),
        field("content-type", "application/grpc"),
        field("te", "trailers"),
    ]);
    let mut message = vec![0];
    message.extend_from_slice(&declared.to_be_bytes());
    message.extend_from_slice(body);
    s.write_all(PREFACE).unwrap();
    s.write_all(&frame(4, 0, 0, &payload)).unwrap();
    s.write_all(&frame(1, 0x4, 1, &headers)).unwrap();
    s.write_all(&frame(0, 0x1, 1, &message)).unwrap();
    s
}

/// Reads frames until stream 1's trailers; the decoded header fields seen.
fn read_response_headers(s: &mut UnixStream) -> Vec<(String, String)> {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut decoder = Decoder::default();
    let mut fields = Vec::new();
    loop {
        let mut head = [0; 9];
        s.read_exact(&mut head).unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).unwrap();
        match head[3] {
            // SETTINGS (not an ack): acknowledge, as a client must.
            4 if head[4] & 1 == 0 => s.write_all(&frame(4, 1, 0, &[])).unwrap(),
            1 => {
                for f in decoder.decode(&payload).unwrap() {
                    fields.push((
                        String::from_utf8_lossy(&f.name).into(),
                        String::from_utf8_lossy(&f.value).into(),
                    ));
                }
                if head[4] & 0x1 != 0 {
                    return fields;
                }
            }
            _ => {}
        }
    }
}

#[test]
fn an_oversized_message_is_refused_with_the_limit_named() {
    let d = Daemon::start();
    // A request declaring 8 MiB: refused before its body is read.
    let mut s = grpc_request(&d, &[], "/casman.v1.Database/PrintDatabase", 8 << 20, &[0; 1024]);
    let fields = read_response_headers(&mut s);
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("grpc-status"), "11", "OUT_OF_RANGE: {fields:?}");
    let message = get("grpc-message");
    assert!(message.contains("8388608") && message.contains("4194304"), "{message}");
    status_answers(&d);
}

#[test]
fn a_client_that_never_reads_its_stream_does_not_block_others() {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "ANTENNA", "50", "1"]);
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: the daemon may send no data on the
    // stream until the client reads, which it never does.
    let s = grpc_request(&d, &[(4, 0)], "/casman.v1.Database/PrintDatabase", 0, &[]);
    for _ in 0..5 {
        let took = status_answers(&d);
        assert!(took < Duration::from_secs(5), "status took {took:?}");
    }
    let out = d.ctl_ok(&["parts", "show", "ANT00050P1"]);
    assert!(out.contains("ANT00050P1"), "{out}");
    drop(s);
}

/// A silent TCP connection to the web listener.
fn tcp_flood(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    (0..n).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect()
}

#[test]
fn the_web_listener_survives_a_flood_of_silent_connections() {
    let port = casman_tests::s3::free_port();
    let d = daemon_with_1024_descriptors(
        with_timeouts()
            .env("CASMAN_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("CASMAN_HTTP__ALLOW_WITHOUT_TOKEN", "true")
            .env("CASMAN_SERVER__MAX_CONNECTIONS", "64"),
    );
    let flood = tcp_flood(port, 1100);
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    drop(flood);
    drop(d);
}

#[test]
fn at_the_cap_a_client_stalled_after_its_handshake_gives_its_place_to_a_real_one() {
    let d = Daemon::start_with(
        DaemonOpts::default()
            .config("[server]\nmax_connections = 8\nhandshake_timeout = \"1s\"\nidle_timeout = \"1h\"\n"),
    );
    // Eight clients finish the HTTP/2 handshake, then never read nor send
    // (not even the answer to the server's pings).
    let stalled: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            s.write_all(PREFACE).unwrap();
            s.write_all(&frame(4, 0, 0, &[])).unwrap();
            // The daemon's ACK of our SETTINGS: it has read (and counted) our handshake.
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            casman_tests::await_settings_ack(&mut s);
            s
        })
        .collect();
    // A new connection is refused while each was heard from within
    // server.handshake_timeout (the unit tests time that window); past it,
    // the longest silent one gives way.
    wait_for("a status call to get a place", DEADLINE, || {
        d.ctl(&["--timeout", "10s", "status"]).status.success().then_some(())
    });
    let open = stalled.iter().filter(|s| !closed(s)).count();
    assert_eq!(open, 7, "exactly one stalled client was replaced");
    // The call that got in has left: its place is free again.
    status_answers(&d);
    assert_eq!(stalled.iter().filter(|s| !closed(s)).count(), 7);
}

//! Clients that send the socket path as HTTP/2 `:authority` (grpcio with no
//! options, grpc-java, Bazel) are served: casmand replaces the invalid
//! authority before its HTTP/2 server sees it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use casman_tests::{Daemon, grpcio_python, run_default_grpcio};

#[test]
fn grpcio_with_default_options_is_served() {
    let Some(python) = grpcio_python() else { return };
    let d = Daemon::start();
    run_default_grpcio(&python, &d.socket, &d.log_text());
    // The rewrite was what made it work: grpcio did send the path.
    let log = d.log_text();
    assert!(log.contains("sent an invalid :authority") && log.contains("%2F"), "{log}");
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0x00); // literal without indexing, new name
    block.push(name.len() as u8);
    block.extend_from_slice(name.as_bytes());
    block.push(value.len() as u8);
    block.extend_from_slice(value.as_bytes());
}

/// A hand-written HTTP/2 client sending the raw socket path as `:authority`
/// (as grpc-java does) gets a health answer, not RST_STREAM.
#[test]
fn a_raw_path_authority_is_served() {
    let d = Daemon::start();
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    req.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut block, ":path", "/grpc.health.v1.Health/Check");
    literal(&mut block, ":authority", &d.socket.display().to_string());
    literal(&mut block, "content-type", "application/grpc");
    literal(&mut block, "te", "trailers");
    req.extend(frame(0x1, 0x4, 1, &block)); // HEADERS, END_HEADERS
    req.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0])); // DATA: empty message, END_STREAM
    s.write_all(&req).unwrap();

    // Read frames until the stream ends or is reset.
    let mut data = Vec::new();
    let mut got_headers = false;
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).unwrap();
        if kind == 0x4 && flags & 0x1 == 0 {
            s.write_all(&frame(0x4, 0x1, 0, &[])).unwrap(); // SETTINGS ACK
        }
        if stream != 1 {
            continue;
        }
        assert_ne!(kind, 0x3, "stream reset (error code {:?}): the authority was refused", payload);
        match kind {
            0x1 => {
                got_headers = true;
                if flags & 0x1 != 0 {
                    break; // trailers
                }
            }
            0x0 => {
                data.extend_from_slice(&payload);
                if flags & 0x1 != 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(got_headers);
    // One gRPC message: not compressed, 2 bytes, HealthCheckResponse{status: SERVING}.
    assert_eq!(data, [0, 0, 0, 0, 2, 0x08, 0x01]);
    // casmanctl (a valid authority) still works beside it.
    d.ctl_ok(&["status"]);
}

//! Plain HTTP/1.1 requests to the daemon's web listener on 127.0.0.1, one
//! connection each, read to the end: what the web and scanner tests send.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{ErrorKind, Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A response: status, header block (lower-cased), body, and this end of
/// the connection it came over (the address the daemon saw).
#[derive(Debug)]
pub struct Reply {
    /// The status code (0 when none was read).
    pub status: u16,
    /// The header block, lower-cased.
    pub headers: String,
    /// The body.
    pub body: String,
    /// This end of the connection.
    pub local: SocketAddr,
}

impl Reply {
    /// The body as JSON; panics with the reply when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {} {}", self.status, self.headers, self.body))
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }

    /// The `name=value` of a Set-Cookie header.
    pub fn cookie(&self, name: &str) -> String {
        self.headers
            .lines()
            .filter_map(|l| l.strip_prefix("set-cookie: "))
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no cookie {name} in {}", self.headers))
    }
}

/// A connection to 127.0.0.1:`port` from `from`, any 127.x.x.x address
/// (Linux routes the whole block to the loopback, so one host has many
/// client addresses). Blocking, with a 30 s read timeout.
pub fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
        sock.connect(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// `method path` on 127.0.0.1:`port` from 127.0.0.1, with extra header
/// lines and a body.
pub fn request(port: u16, method: &str, path: &str, headers: &[&str], body: Option<&str>) -> Reply {
    request_from(Ipv4Addr::LOCALHOST, port, method, path, headers, body)
}

/// [`request`] from client address `from`. The request is written by
/// another thread and its errors ignored: the daemon may answer (a 413) and
/// close before reading all of a large body; what it answered is still read.
pub fn request_from(
    from: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> Reply {
    let s = connect_from(from, port);
    let local = s.local_addr().unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(req.as_bytes());
    });
    let mut raw = Vec::new();
    let mut r = &s;
    let mut buf = [0u8; 16 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset after the answer (the rest of the body was not read).
            Err(e) if !raw.is_empty() && e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply { status, headers: head.to_ascii_lowercase(), body: body.to_owned(), local }
}

/// `GET path` on 127.0.0.1:`port` with extra header lines.
pub fn get(port: u16, path: &str, headers: &[&str]) -> Reply {
    request(port, "GET", path, headers, None)
}

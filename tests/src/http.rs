//! Plain HTTP/1.1 requests to the daemon's web listener on 127.0.0.1, one
//! connection each, read to the end: what the web and scanner tests send.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
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
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
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

/// `method path` on 127.0.0.1:`port` with extra header lines and a body.
pub fn request(port: u16, method: &str, path: &str, headers: &[&str], body: Option<&str>) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = s.local_addr().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
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
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply { status, headers: head.to_ascii_lowercase(), body: body.to_owned(), local }
}

/// `GET path` on 127.0.0.1:`port` with extra header lines.
pub fn get(port: u16, path: &str, headers: &[&str]) -> Reply {
    request(port, "GET", path, headers, None)
}

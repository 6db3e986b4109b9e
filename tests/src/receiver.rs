//! A webhook receiver on 127.0.0.1 for the notification tests: accepts
//! HTTP/1.1 requests (one per connection, answered with `Connection:
//! close`), records each, and answers 200, or a chosen status to the first
//! few (to exercise retries).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
};

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`, `GET`, ...
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Header lines, `name: value`, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Received {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A running receiver; it stops accepting when dropped (its thread ends
/// with the process).
#[derive(Debug, Clone)]
pub struct Receiver {
    /// The port it listens on.
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    fail: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let r = Receiver { port, got: Arc::default(), fail: Arc::default() };
        let (got, fail) = (r.got.clone(), r.fail.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(req) = read_request(&mut stream) else { continue };
                let status = {
                    let mut f = fail.lock().unwrap_or_else(|p| p.into_inner());
                    if f.is_empty() { 200 } else { f.remove(0) }
                };
                got.lock().unwrap_or_else(|p| p.into_inner()).push(req);
                let _ =
                    write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
        });
        r
    }

    /// The next requests are answered with `statuses`, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.fail.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(statuses);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Received> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

//! A fault-injecting HTTP/1.1 proxy between casmand and a test S3 server, on
//! 127.0.0.1. It relays request by request, so a fault hits exactly the
//! requests a rule names (by method and a path substring): an error status
//! (500, 503 SlowDown), a connection reset in the middle of an upload or a
//! download, a body cut short behind a shortened Content-Length, or a stall.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::Duration,
};

const HOST: [u8; 4] = [127, 0, 0, 1];

/// What happens to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and S3 error code, without forwarding.
    Status(u16, &'static str),
    /// Forward half of the request body, then reset both connections.
    ResetMidRequest,
    /// Forward the request, then half of the response body, then reset.
    ResetMidResponse,
    /// Forward the request; answer with half of the body behind a
    /// Content-Length that says so (a well-formed but truncated object).
    ShortBody,
    /// Wait this long before forwarding.
    Stall(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    method: String,
    path: String,
    fault: Fault,
    times: u32,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    /// (method, path, fault) of every fault applied, in order.
    applied: Vec<(String, String, Fault)>,
    /// Every request seen: (method, path).
    seen: Vec<(String, String)>,
}

/// The running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    plan: Arc<Mutex<Plan>>,
}

impl FaultProxy {
    /// Starts a proxy relaying to 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind(SocketAddr::from((HOST, 0))).expect("bind proxy");
        let port = listener.local_addr().expect("local_addr").port();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let p = plan.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let plan = p.clone();
                std::thread::spawn(move || {
                    let _ = relay(client, upstream_port, &plan);
                });
            }
        });
        FaultProxy { endpoint: format!("http://127.0.0.1:{port}"), plan }
    }

    /// Applies `fault` to the next `times` requests whose method is `method`
    /// (or any, for `"*"`) and whose path contains `path`.
    pub fn inject(&self, method: &str, path: &str, fault: Fault, times: u32) {
        self.plan.lock().unwrap().rules.push(Rule { method: method.into(), path: path.into(), fault, times });
    }

    /// Faults applied so far: (method, path, fault).
    pub fn applied(&self) -> Vec<(String, String, Fault)> {
        self.plan.lock().unwrap().applied.clone()
    }

    /// Requests seen so far: (method, path).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.plan.lock().unwrap().seen.clone()
    }

    /// Removes every rule not yet used up.
    pub fn clear(&self) {
        self.plan.lock().unwrap().rules.clear();
    }

    /// Options for a casmand whose store is `bucket` behind this proxy.
    pub fn daemon_opts(&self, bucket: &str, site: &str) -> crate::DaemonOpts {
        crate::s3::s3_daemon_opts(&self.endpoint, bucket, site)
    }
}

/// A request or response head, and the body that follows it.
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn bytes_with_body(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.head {
            let lower = l.to_ascii_lowercase();
            if lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:") {
                continue;
            }
            if lower.starts_with("expect:") {
                continue;
            }
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let is_request = !self.head[0].starts_with("HTTP/");
        if !is_request || !body.is_empty() || self.header("content-length").is_some() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if head.is_empty() {
                continue;
            }
            return Ok(Some(head));
        }
        head.push(line);
    }
}

/// Reads a body by Content-Length or chunked coding (de-chunked).
fn read_body(r: &mut impl BufRead, m: &Message, has_body: bool) -> std::io::Result<Vec<u8>> {
    if !has_body {
        return Ok(Vec::new());
    }
    if m.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if n == 0 {
                // Trailers, then the blank line.
                while read_line_nonempty(r)? {}
                return Ok(body);
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    }
    let n: usize = m.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; n];
    r.read_exact(&mut body)?;
    Ok(body)
}

fn read_line_nonempty(r: &mut impl BufRead) -> std::io::Result<bool> {
    let mut l = String::new();
    Ok(r.read_line(&mut l)? > 0 && !l.trim().is_empty())
}

fn take_fault(plan: &Mutex<Plan>, method: &str, path: &str) -> Option<Fault> {
    let mut p = plan.lock().unwrap();
    p.seen.push((method.into(), path.into()));
    let i = p.rules.iter().position(|r| (r.method == "*" || r.method == method) && path.contains(&r.path))?;
    let fault = p.rules[i].fault;
    p.rules[i].times -= 1;
    if p.rules[i].times == 0 {
        p.rules.remove(i);
    }
    p.applied.push((method.into(), path.into(), fault));
    Some(fault)
}

fn relay(client: TcpStream, upstream_port: u16, plan: &Mutex<Plan>) -> std::io::Result<()> {
    let mut to_client = client.try_clone()?;
    let mut from_client = BufReader::new(client);
    let upstream = TcpStream::connect(SocketAddr::from((HOST, upstream_port)))?;
    let mut to_upstream = upstream.try_clone()?;
    let mut from_upstream = BufReader::new(upstream);
    let reset = |a: &TcpStream, b: &TcpStream| {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    };
    loop {
        let Some(head) = read_head(&mut from_client)? else { return Ok(()) };
        let mut req = Message { head, body: Vec::new() };
        let mut words = req.head[0].split_whitespace();
        let method = words.next().unwrap_or("").to_owned();
        let path = words.next().unwrap_or("").to_owned();
        if req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            to_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        req.body = read_body(&mut from_client, &req, true)?;
        let fault = take_fault(plan, &method, &path);
        match fault {
            Some(Fault::Status(code, s3_code)) => {
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{s3_code}</Code><Message>injected by the test proxy</Message></Error>"
                );
                let resp = format!(
                    "HTTP/1.1 {code} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                to_client.write_all(resp.as_bytes())?;
                continue;
            }
            Some(Fault::ResetMidRequest) => {
                let bytes = req.bytes_with_body(&req.body);
                let head_len = bytes.len() - req.body.len();
                to_upstream.write_all(&bytes[..head_len + req.body.len() / 2])?;
                reset(&to_client, &to_upstream);
                return Ok(());
            }
            Some(Fault::Stall(d)) => std::thread::sleep(d),
            _ => {}
        }
        to_upstream.write_all(&req.bytes_with_body(&req.body))?;
        let Some(head) = read_head(&mut from_upstream)? else {
            reset(&to_client, &to_upstream);
            return Ok(());
        };
        let mut resp = Message { head, body: Vec::new() };
        let status: u16 = resp.head[0].split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let has_body = method != "HEAD" && status != 204 && status != 304;
        resp.body = read_body(&mut from_upstream, &resp, has_body)?;
        match fault {
            Some(Fault::ResetMidResponse) => {
                let bytes = resp.bytes_with_body(&resp.body);
                let head_len = bytes.len() - resp.body.len();
                to_client.write_all(&bytes[..head_len + resp.body.len() / 2])?;
                reset(&to_client, &to_upstream);
                return Ok(());
            }
            Some(Fault::ShortBody) => {
                let half = &resp.body[..resp.body.len() / 2];
                to_client.write_all(&resp.bytes_with_body(half))?;
            }
            _ if !has_body => {
                // Keep the upstream's Content-Length (a HEAD answer has none
                // of its own bytes but names the object's size).
                let mut out = Vec::new();
                for l in &resp.head {
                    out.extend_from_slice(l.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
                to_client.write_all(&out)?;
            }
            _ => to_client.write_all(&resp.bytes_with_body(&resp.body))?,
        }
        if resp.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            reset(&to_client, &to_upstream);
            return Ok(());
        }
    }
}

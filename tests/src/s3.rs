//! Real S3 servers on 127.0.0.1 for tests (never any other address):
//!
//! * [`MotoServer`]: moto's standalone server (PyPI `moto[server]`, installed
//!   into a venv by `tests/run`), run by `tests/support/moto_atomic.py`,
//!   which makes its conditional writes atomic, as S3's are: storage
//!   classes, conditional writes and conditional GETs; keeps nothing across
//!   restarts; does not verify
//!   signatures or checksums.
//! * [`S3sFs`]: s3s-fs (crates.io) in-process on its own thread and runtime:
//!   verifies signatures and checksums, persists to a directory, rejects
//!   `STANDARD_IA` on upload.
//!
//! Both are usable from plain `#[test]` functions and from tokio tests; both
//! stop when dropped. Readiness is polled against a deadline.

use std::{
    fs,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

use crate::{DEADLINE, wait_for};

/// Loopback only.
const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port`; returns the status code.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    http_body(port, method, path, "").map(|(status, _)| status)
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port`; returns the status code
/// and the response body (the server closes the connection after it).
fn http_body(port: u16, method: &str, path: &str, headers: &str) -> Option<(u16, Vec<u8>)> {
    let addr = SocketAddr::from((HOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(Vec::new(), |at| buf[at + 4..].to_vec());
    Some((status, body))
}

/// The `moto_server` executable: `$CASMAN_MOTO_SERVER`, else the venv that
/// `tests/run` installs (`${CASMAN_VENV:-$HOME/.cache/casman-venv}`).
pub fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CASMAN_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("CASMAN_VENV")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/casman-venv")))
        .expect("HOME or CASMAN_VENV");
    venv.join("bin/moto_server")
}

/// Options for a casmand backing up to `bucket` at the S3 `endpoint` as
/// `site` (path-style addressing, test credentials).
pub fn s3_daemon_opts(endpoint: &str, bucket: &str, site: &str) -> crate::DaemonOpts {
    crate::DaemonOpts::default()
        .env("CASMAN_SYNC_BACKEND", "s3")
        .env("R2_ENDPOINT", endpoint)
        .env("R2_BUCKET_NAME", bucket)
        .env("R2_ACCESS_KEY_ID", "test")
        .env("R2_SECRET_ACCESS_KEY", "test")
        .env("CASMAN_STORE__PATH_STYLE", "true")
        .env("CASMAN_SITE_ID", site)
}

/// The Python that runs `moto_server`: its `#!` line (a pip-installed
/// script names its venv's interpreter), else `python3` beside it.
fn moto_python() -> PathBuf {
    let exe = moto_server_path();
    let first_line = fs::read_to_string(&exe).ok().and_then(|t| t.lines().next().map(str::to_owned));
    first_line
        .and_then(|l| l.strip_prefix("#!").map(|p| p.trim().to_owned()))
        .filter(|p| !p.is_empty() && !p.contains(' '))
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.with_file_name("python3"))
}

/// moto's standalone S3 server on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The port (kept across [`MotoServer::restart`]).
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl MotoServer {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> MotoServer {
        let exe = moto_server_path();
        assert!(
            exe.exists(),
            "{} not found: tests/run installs moto[server] into a venv (or set CASMAN_MOTO_SERVER)",
            exe.display()
        );
        let dir = tempfile::Builder::new().prefix("casman-moto-").tempdir().expect("tempdir");
        // The port was free when chosen; if another process takes it before
        // moto binds it, moto exits and another port is tried.
        let mut m = MotoServer { endpoint: String::new(), port: 0, child: None, dir };
        for _ in 0..5 {
            m.port = free_port();
            m.endpoint = format!("http://{HOST}:{}", m.port);
            m.spawn();
            if m.wait_ready_or_exit() {
                return m;
            }
            m.child = None;
        }
        panic!("moto_server did not start; log:\n{}", m.log_text());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    /// What moto printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("moto log");
        let err = log.try_clone().expect("moto log");
        // Through tests/support/moto_atomic.py, with the Python moto_server
        // runs on: moto's conditional writes are not atomic without it.
        let mut cmd = Command::new(moto_python());
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("support/moto_atomic.py"));
        crate::scrub_env(&mut cmd);
        // Its request log is read by tests and benchmarks while it runs:
        // written line by line, not in 8 KiB blocks.
        cmd.env("PYTHONUNBUFFERED", "1");
        let child = cmd
            .arg("-H")
            .arg(HOST.to_string())
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn moto_server");
        self.child = Some(child);
    }

    /// Waits until moto answers HTTP; false if it exited first.
    fn wait_ready_or_exit(&mut self) -> bool {
        let port = self.port;
        let child = self.child.as_mut().expect("moto running");
        wait_for("moto_server to answer", DEADLINE, || {
            if child.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            http(port, "GET", "/moto-api/data.json").map(|_| true)
        })
    }

    /// Kills the server (the store "goes down"); the port stays reserved
    /// for [`MotoServer::restart`] only by convention.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (empty: moto keeps nothing).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "moto still running");
        self.spawn();
        assert!(
            self.wait_ready_or_exit(),
            "moto_server did not restart on port {}; log:\n{}",
            self.port,
            self.log_text()
        );
    }

    /// Options for a casmand backing up to this server's `bucket` as `site`
    /// (path-style addressing, test credentials).
    pub fn daemon_opts(&self, bucket: &str, site: &str) -> crate::DaemonOpts {
        s3_daemon_opts(&self.endpoint, bucket, site)
    }

    /// Creates `bucket` (moto does not check signatures: a bare PUT will do).
    pub fn create_bucket(&self, bucket: &str) {
        let status = http(self.port, "PUT", &format!("/{bucket}")).expect("moto answers");
        assert!((200..300).contains(&status), "creating bucket {bucket}: HTTP {status}\n{}", self.log_text());
    }

    /// The object `key` of `bucket` as the store holds it (`None`: not
    /// there). moto checks no signature, but refuses a read without one.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let auth = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
                    SignedHeaders=host, Signature=00\r\n";
        let (status, body) =
            http_body(self.port, "GET", &format!("/{bucket}/{key}"), auth).expect("moto answers");
        (status == 200).then_some(body)
    }

    /// Deletes the object `key` of `bucket` (as a lifecycle rule or another
    /// tool would); true when moto answered 2xx.
    pub fn delete_object(&self, bucket: &str, key: &str) -> bool {
        let auth = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
                    SignedHeaders=host, Signature=00\r\n";
        let (status, _) =
            http_body(self.port, "DELETE", &format!("/{bucket}/{key}"), auth).expect("moto answers");
        (200..300).contains(&status)
    }

    /// Forgets every bucket and object.
    pub fn reset(&self) {
        let status = http(self.port, "POST", "/moto-api/reset").expect("moto answers");
        assert!((200..300).contains(&status), "moto reset: HTTP {status}");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// s3s-fs serving a directory on 127.0.0.1, in-process on its own thread and
/// tokio runtime; stopped on drop. Requests must be signed with
/// [`S3sFs::access_key`]/[`S3sFs::secret_key`].
#[derive(Debug)]
pub struct S3sFs {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The port.
    pub port: u16,
    /// Access key id the server accepts.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The directory holding buckets (one subdirectory each).
    pub root: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3sFs {
    /// Serves `dir` (created if missing). The socket listens before this
    /// returns, so the server is ready at once.
    pub fn start(dir: &Path) -> S3sFs {
        fs::create_dir_all(dir).expect("create s3s-fs root");
        let root = fs::canonicalize(dir).expect("canonicalize s3s-fs root");
        let (access_key, secret_key) = ("casman-test-key".to_owned(), "casman-test-secret".to_owned());
        let listener = TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        listener.set_nonblocking(true).expect("nonblocking");

        let service = {
            let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs root");
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(access_key.clone(), secret_key.clone()));
            b.build()
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("s3s-fs-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(serve(listener, service, rx));
                // Dropping the runtime cancels the connections still open.
            })
            .expect("spawn s3s-fs thread");
        S3sFs {
            endpoint: format!("http://{HOST}:{port}"),
            port,
            access_key,
            secret_key,
            root,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Creates `bucket` (a directory under the root).
    pub fn create_bucket(&self, bucket: &str) {
        fs::create_dir_all(self.root.join(bucket)).expect("create bucket directory");
    }
}

async fn serve(
    listener: TcpListener,
    service: s3s::service::S3Service,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo},
        server::conn::auto::Builder,
    };
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let http = Builder::new(TokioExecutor::new());
    loop {
        let (socket, _) = tokio::select! {
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(_) => continue,
            },
            _ = &mut stop => return,
        };
        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Fixtures for end-to-end tests: the real `casmand` and `casmanctl` binaries
//! on a temporary data directory and socket. Nothing sleeps to wait: readiness
//! and exits are polled against a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use tempfile::TempDir;

/// How long a daemon may take to come up or go down before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Path of a workspace binary (`casmand`, `casmanctl`), next to the test's
/// own `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (`cargo build --workspace --bins`, done by tests/run)",
        path.display()
    );
    path
}

/// Reports a test that cannot run here because `why` (a missing
/// prerequisite). Under `CI=true` that is a failure, never a pass: CI installs
/// everything the tests need (tests/run), so a missing piece is a broken
/// setup. On a developer's machine it prints, loudly, and the test returns.
pub fn skip(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI=true and this test cannot run: {why}");
    eprintln!("SKIPPED (not under CI): {why}");
}

/// A file of `../shared/legacy` (written by the Python CAsMan), or `None`
/// (a skip: a failure under CI) when it is absent.
pub fn legacy_file(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/legacy").join(name);
    if p.exists() {
        Some(p)
    } else {
        skip(&format!("{} is absent", p.display()));
        None
    }
}

/// A temporary directory whose `data/` holds the files the Python CAsMan
/// writes: assembled_casm.db with the `assembly` rows `events` (SQL value
/// tuples `(part_number, scan_time, connected_to, connection_status)`) and,
/// unless `parts` is empty, parts.db with the `parts` rows `parts`
/// (`(part_number, part_type, polarization, date_created, date_modified)`),
/// for a daemon started on it to adopt.
pub fn legacy_data_dir(events: &[String], parts: &[String]) -> TempDir {
    let dir = tempfile::Builder::new().prefix("casman-e2e-").tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("data")).expect("data dir");
    sqlite(
        &dir.path().join("data/assembled_casm.db"),
        &format!(
            "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, part_type TEXT, polarization TEXT,
               scan_time TEXT, connected_to TEXT, connected_to_type TEXT, connected_polarization TEXT,
               connected_scan_time TEXT, connection_status TEXT DEFAULT 'connected');
             INSERT INTO assembly (part_number, scan_time, connected_to, connection_status) VALUES {};",
            events.join(", ")
        ),
    );
    if !parts.is_empty() {
        sqlite(
            &dir.path().join("data/parts.db"),
            &format!(
                "CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE, part_type TEXT,
                   polarization TEXT, date_created TEXT, date_modified TEXT);
                 INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified) VALUES {};",
                parts.join(", ")
            ),
        );
    }
    dir
}

/// Whether the peer of `s` closed the connection (EOF or an error), read
/// without blocking: `s` must be non-blocking; anything it sent is read and
/// dropped.
pub fn closed<S: std::io::Read>(s: &mut S) -> bool {
    let mut buf = [0; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Environment variables that would leak the developer's setup into a test.
const SCRUBBED_PREFIXES: [&str; 4] = ["CASMAN_", "R2_", "AWS_", "NOTIFY_SOCKET"];
const SCRUBBED: [&str; 7] = [
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "RUNTIME_DIRECTORY",
    "STATE_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
    "JOURNAL_STREAM",
    "LISTEN_FDS",
];

/// Removes inherited variables that configure casman from `cmd`.
pub fn scrub_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) || SCRUBBED.contains(&k.as_str()) {
            cmd.env_remove(&k);
        }
    }
}

/// How to start a daemon.
#[derive(Debug, Default, Clone)]
pub struct DaemonOpts {
    /// Extra environment variables.
    pub env: BTreeMap<String, OsString>,
    /// Extra command-line arguments.
    pub args: Vec<OsString>,
    /// Contents of a config file passed with `--config`.
    pub config_toml: Option<String>,
    /// Don't pass `--socket`/`--data-dir` (to test the defaults).
    pub no_paths: bool,
}

impl DaemonOpts {
    /// Syncs as versions before the change exchange did (whole files: pull,
    /// diverge, merge; `sync.exchange = false`): for the tests of that flow,
    /// kept for stores shared with sites that still run such a version.
    pub fn whole_file_sync(self) -> Self {
        self.env("CASMAN_SYNC__EXCHANGE", "false")
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// A site `name` on the local store `store` (a directory several daemons
    /// share), backing up only when asked (`sync backup`).
    pub fn local_site(store: &Path, name: &str) -> Self {
        Self::default()
            .env("CASMAN_SITE_ID", name)
            .env("CASMAN_BACKUP_DIR", store)
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    }

    /// Sets the config file contents.
    pub fn config(mut self, toml: &str) -> Self {
        self.config_toml = Some(toml.into());
        self
    }
}

/// A running casmand on a temporary directory.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    /// Temp directory holding `data/`, `run/`, logs and config.
    pub dir: TempDir,
    /// The socket.
    pub socket: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The daemon's stderr log file.
    pub log: PathBuf,
    opts: DaemonOpts,
}

impl Daemon {
    /// Starts a daemon with default options and waits until it accepts connections.
    pub fn start() -> Daemon {
        Self::start_with(DaemonOpts::default())
    }

    /// Starts a daemon and waits until it accepts connections.
    pub fn start_with(opts: DaemonOpts) -> Daemon {
        let dir = tempfile::Builder::new().prefix("casman-e2e-").tempdir().expect("tempdir");
        Self::start_in(dir, opts)
    }

    /// Starts a daemon in `dir` (whose `data/` may hold databases already).
    pub fn start_in(dir: TempDir, opts: DaemonOpts) -> Daemon {
        let mut d = Daemon {
            child: None,
            socket: dir.path().join("run/casmand.sock"),
            data_dir: dir.path().join("data"),
            log: dir.path().join("casmand.log"),
            dir,
            opts,
        };
        d.spawn();
        d.wait_ready();
        d
    }

    /// Starts a daemon in `dir`'s layout, returning it without waiting (for
    /// tests that expect start-up to fail). The caller keeps `dir` alive.
    pub fn command(dir: &Path, opts: &DaemonOpts) -> Command {
        let mut cmd = Command::new(bin("casmand"));
        scrub_env(&mut cmd);
        cmd.env("CASMAN_LOG", "info,casmand=debug");
        if !opts.no_paths {
            cmd.arg("--socket").arg(dir.join("run/casmand.sock"));
            cmd.arg("--data-dir").arg(dir.join("data"));
        }
        if let Some(toml) = &opts.config_toml {
            let path = dir.join("casmand.toml");
            fs::write(&path, toml).expect("write config");
            cmd.arg("--config").arg(path);
        }
        cmd.args(&opts.args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Self::command(self.dir.path(), &self.opts)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn casmand");
        self.child = Some(child);
    }

    /// Waits until the socket accepts connections; panics with the log if the
    /// daemon exits first.
    pub fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        wait_for("casmand to accept connections", DEADLINE, || {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("casmand exited with {status} before it was ready; log:\n{}", self.log_text());
            }
            // The socket accepts connections before the databases are open
            // (it is bound first); ready means a request is answered.
            UnixStream::connect(&socket).ok()?;
            let mut ctl = Command::new(bin("casmanctl"));
            scrub_env(&mut ctl);
            let answered = ctl
                .arg("--socket")
                .arg(&socket)
                .arg("status")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()?
                .success();
            answered.then_some(())
        });
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("daemon running")
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).expect("kill");
    }

    /// Waits for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("daemon running");
        let status = wait_for("casmand to exit", deadline, || child.try_wait().ok().flatten());
        self.child = None;
        status
    }

    /// SIGTERM, then waits for exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(DEADLINE)
    }

    /// SIGKILL (a crash), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same directory (after `kill`/`terminate`).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "daemon still running");
        self.spawn();
        self.wait_ready();
    }

    /// A `casmanctl` command aimed at this daemon.
    pub fn ctl_cmd(&self) -> Command {
        let mut cmd = Command::new(bin("casmanctl"));
        scrub_env(&mut cmd);
        cmd.arg("--socket").arg(&self.socket).stdin(Stdio::null());
        cmd
    }

    /// Runs `casmanctl ARGS` against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_cmd().args(args).output().expect("run casmanctl")
    }

    /// Runs `casmanctl ARGS`, asserting success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "casmanctl {args:?} failed ({}): {}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `casmanctl --json ARGS`, asserting success; returns the parsed JSON.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("casmanctl {args:?}: bad JSON ({e}): {out}"))
    }

    /// Runs `casmanctl --json ARGS` and parses stdout whatever the exit code
    /// (commands that report results and then fail, like `sync verify`).
    pub fn ctl_json_allow_fail(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("casmanctl {args:?}: bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
        })
    }

    /// Runs `casmanctl ARGS`, asserting failure with `code`; returns stderr.
    pub fn ctl_err(&self, args: &[&str], code: i32) -> String {
        let out = self.ctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "casmanctl {args:?}: expected exit {code}, got {} (stdout: {}, stderr: {stderr})",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `casmanctl` without a daemon (completions, missing socket, ...).
pub fn ctl_bare(args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("casmanctl"));
    scrub_env(&mut cmd);
    cmd.args(args).stdin(Stdio::null()).output().expect("run casmanctl")
}

/// Runs `sql` with the sqlite3 shell on `db` (as an outside program would),
/// asserting success; returns its output (`|`-separated columns).
pub fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(db)
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .expect("sqlite3 shell (installed by tests/run)");
    assert!(out.status.success(), "sqlite3 {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Python with grpcio for tests of lab-script clients: `$CASMAN_PYTHON`
/// (set by tests/run, which installs grpcio into the project's venv), else
/// that venv (`${CASMAN_VENV:-~/.cache/casman-venv}`). `None` (the test
/// skips, saying so) only outside CI and when `CASMAN_PYTHON` is unset.
pub fn grpcio_python() -> Option<PathBuf> {
    python_with("grpc")
}

/// The project's Python (as [`grpcio_python`] finds it) if it can import
/// `modules` (a Python import list, e.g. `"grpc, grpc_tools.protoc"`).
/// `None` (the test skips, saying so) only outside CI and when
/// `CASMAN_PYTHON` is unset; otherwise a missing module fails the test.
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let explicit = std::env::var_os("CASMAN_PYTHON").map(PathBuf::from);
    let python = explicit.clone().unwrap_or_else(|| {
        let venv = std::env::var_os("CASMAN_VENV").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/casman-venv")
        });
        venv.join("bin/python")
    });
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        explicit.is_none() && std::env::var_os("CI").is_none(),
        "{}: cannot import {modules} (tests/run installs them)",
        python.display()
    );
    eprintln!("SKIPPED: no Python that imports {modules} at {} (run tests/run)", python.display());
    None
}

/// A Python snippet using grpcio with no channel options (its default
/// `:authority` for a Unix target is the percent-encoded socket path): three
/// health checks on one connection and a GetStatus; prints `ok N`. The
/// socket is its first argument.
pub const DEFAULT_GRPCIO_CLIENT: &str = r#"
import sys, grpc
channel = grpc.insecure_channel("unix://" + sys.argv[1])
check = channel.unary_unary("/grpc.health.v1.Health/Check")
for _ in range(3):  # several requests on one connection (HPACK dynamic table)
    reply = check(b"", timeout=10)
    assert reply == b"\x08\x01", reply  # status: SERVING
status = channel.unary_unary("/casman.v1.Daemon/GetStatus")(b"", timeout=10)
print("ok", len(status))
"#;

/// Runs [`DEFAULT_GRPCIO_CLIENT`] with `python` against `socket`, asserting
/// it succeeds.
pub fn run_default_grpcio(python: &Path, socket: &Path, log: &str) {
    let out = Command::new(python)
        .args(["-c", DEFAULT_GRPCIO_CLIENT])
        .arg(socket)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("ok "),
        "grpcio with default options failed: {}\n{}\n--- daemon log ---\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Reads HTTP/2 frames from `s` until the server's SETTINGS ACK: the server
/// has then read the client's preface and first SETTINGS frame (its own
/// SETTINGS, sent first, proves nothing: a server sends it on accepting).
pub fn await_settings_ack<S: std::io::Read>(s: &mut S) {
    settings_ack(s).expect("HTTP/2 frames from casmand up to its SETTINGS ACK");
}

/// [`await_settings_ack`], or the error that ended the read (the server
/// closed the connection: e.g. refused it at its connection limit).
pub fn settings_ack<S: std::io::Read>(s: &mut S) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head)?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload)?;
        if head[3] == 4 && head[4] & 1 == 1 {
            return Ok(());
        }
    }
}

pub mod fault_proxy;
pub mod http;
pub mod receiver;
pub mod s3;
pub use fault_proxy::{Fault, FaultProxy};
pub use s3::{MotoServer, S3sFs};

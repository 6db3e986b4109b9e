//! The Python lab-script examples (`examples/python/`) against a real
//! casmand: stubs generated from `proto/` with grpcio-tools into a temp
//! directory; `casman_client.py` lists parts, records a connection, traces
//! the chain and waits for a backup; `input_map.py` reads the correlator
//! input map; `follow_changes.py` follows the change feed and resumes.
//!
//! Python comes from `$CASMAN_PYTHON` (set by tests/run, which installs grpcio
//! and grpcio-tools into the project's venv), else the venv at
//! `${CASMAN_VENV:-~/.cache/casman-venv}`. Without grpcio the test fails
//! under `CI=true` or when `CASMAN_PYTHON` was set; elsewhere it says it
//! skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use casman_tests::Daemon;

fn python() -> Option<PathBuf> {
    casman_tests::python_with("grpc, grpc_tools.protoc")
}

/// Python stubs of every proto file, generated into a temporary directory.
fn stubs(python: &Path, repo: &Path) -> tempfile::TempDir {
    let stubs = tempfile::Builder::new().prefix("casman-pystubs-").tempdir().unwrap();
    let protos: Vec<PathBuf> = std::fs::read_dir(repo.join("proto/casman/v1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .map(|p| Path::new("casman/v1").join(p.file_name().unwrap()))
        .collect();
    let out = Command::new(python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(repo.join("proto"))
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .args(&protos)
        .output()
        .unwrap();
    assert!(out.status.success(), "protoc: {}", String::from_utf8_lossy(&out.stderr));
    stubs
}

#[test]
fn the_python_example_talks_to_casmand() {
    let Some(python) = python() else { return };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stubs = stubs(&python, &repo);

    let d = Daemon::start();
    let out = Command::new(&python)
        .arg(repo.join("examples/python/casman_client.py"))
        .arg("--socket")
        .arg(&d.socket)
        .env("PYTHONPATH", stubs.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example failed: {stdout}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    for want in [
        "parts_before: 0",
        "added: ANT00001P1 LNA00001P1",
        "parts_after: 2",
        "connected: ANT00001P1 -> LNA00001P1",
        "chain: ANT00001P1 -> LNA00001P1",
        "refused: ",
        "backup_done: parts.db ",
        "backup_done: assembled_casm.db ",
    ] {
        assert!(stdout.contains(want), "output lacks {want:?}:\n{stdout}");
    }
    // What the script did is what casmanctl sees.
    let chain = d.ctl_ok(&["chain", "ANT00001P1"]);
    assert!(chain.contains("LNA00001P1"), "{chain}");
    let backups = d.ctl_json(&["sync", "list"]).to_string();
    assert!(backups.contains("parts.db"), "{backups}");
}

/// A daemon holding ANT00001P1 and LNA00001P1, and the Python with the
/// stubs to run an example against it.
struct Example {
    python: PathBuf,
    repo: PathBuf,
    stubs: tempfile::TempDir,
    d: Daemon,
}

impl Example {
    fn start() -> Option<Example> {
        let python = python()?;
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let stubs = stubs(&python, &repo);
        let d = Daemon::start();
        d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        Some(Example { python, repo, stubs, d })
    }

    /// `examples/python/<script> --socket SOCKET`, stdin closed.
    fn command(&self, script: &str) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(self.repo.join("examples/python").join(script)).arg("--socket").arg(&self.d.socket);
        c.env("PYTHONPATH", self.stubs.path()).stdin(Stdio::null());
        c
    }
}

/// The input-map example (`examples/python/input_map.py`): an antenna whose
/// chain stops at its LNA is listed with the reason; a time casmand cannot
/// read is INVALID_ARGUMENT.
#[test]
fn the_python_input_map_example_reads_the_map() {
    let Some(ex) = Example::start() else { return };
    ex.d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    let run = |at: &str| ex.command("input_map.py").args(["--at", at]).output().unwrap();
    let out = run("");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for want in
        ["incomplete: ANT00001P1 no grid position; chain ends at LNA00001P1, not a SNAP port", "complete: 0"]
    {
        assert!(stdout.contains(want), "output lacks {want:?}:\n{stdout}");
    }
    let out = run("2020-01-01");
    assert!(String::from_utf8_lossy(&out.stdout).contains("incomplete_rows: 0"));
    let out = run("someday");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INVALID_ARGUMENT") && stderr.contains("someday"), "{stderr}");
}

/// `examples/python/follow_changes.py`: follows the feed from the start,
/// then, run again, resumes after the last change it processed.
#[test]
fn the_python_feed_example_follows_and_resumes() {
    let Some(ex) = Example::start() else { return };
    let d = &ex.d;
    let state = d.dir.path().join("last-change.id");
    let follow = |count: &str| {
        ex.command("follow_changes.py")
            .args(["--from-start", "--count", count, "--state"])
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Two changes are there; the third commits while it follows.
    let first = follow("3");
    d.ctl_ok(&["--operator", "ana", "scan", "connect", "ANT00001P1", "LNA00001P1"]);
    let out = first.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("change: part_created ANT00001P1 ANTENNA site="), "{text}");
    assert!(
        lines[2].starts_with("change: connected ANT00001P1 LNA00001P1 site=")
            && lines[2].contains("operator=ana"),
        "{text}"
    );
    // Run again: resumes after the connect, and gets the disconnect alone.
    let second = follow("1");
    d.ctl_ok(&["scan", "disconnect", "ANT00001P1", "LNA00001P1"]);
    let out = second.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim().starts_with("change: disconnected "), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

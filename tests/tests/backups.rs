//! Backups end to end: the real casmand, casmanctl and real S3 servers on
//! 127.0.0.1 (moto; s3s-fs, which verifies signatures and checksums), plus the
//! local-directory backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use casman_tests::{Daemon, DaemonOpts, MotoServer, S3sFs, sqlite};
use serde_json::Value;

const BUCKET: &str = "casman-test";

/// A backend for a test: local directory, moto, or s3s-fs.
enum Backend {
    Local,
    Moto(MotoServer),
    /// The server and the directory it serves (kept alive with it).
    S3s(S3sFs, #[allow(dead_code)] tempfile::TempDir),
}

impl Backend {
    fn moto() -> Backend {
        let m = MotoServer::start();
        m.create_bucket(BUCKET);
        Backend::Moto(m)
    }

    fn s3s() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let s = S3sFs::start(dir.path());
        s.create_bucket(BUCKET);
        Backend::S3s(s, dir)
    }

    fn opts(&self) -> DaemonOpts {
        let s3 = |endpoint: &str, key: &str, secret: &str| {
            DaemonOpts::default()
                .env("CASMAN_SYNC_BACKEND", "s3")
                .env("R2_ENDPOINT", endpoint)
                .env("R2_BUCKET_NAME", BUCKET)
                .env("R2_ACCESS_KEY_ID", key)
                .env("R2_SECRET_ACCESS_KEY", secret)
                .env("CASMAN_STORE__PATH_STYLE", "true")
                .env("CASMAN_SITE_ID", "lab")
        };
        match self {
            Backend::Local => DaemonOpts::default().env("CASMAN_SITE_ID", "lab"),
            Backend::Moto(m) => s3(&m.endpoint, "test", "test"),
            Backend::S3s(s, _) => s3(&s.endpoint, &s.access_key, &s.secret_key),
        }
        // These tests decide when backups happen (the scheduler has its own tests).
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Moto(_) => "moto",
            Backend::S3s(..) => "s3s-fs",
        }
    }
}

fn parts_rows(d: &Daemon) -> String {
    sqlite(&d.data_dir.join("parts.db"), "SELECT * FROM parts ORDER BY id")
}

fn backup(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["sync", "backup"];
    all.extend_from_slice(args);
    d.ctl_json(&all)["backups"].as_array().unwrap().clone()
}

fn versions(d: &Daemon, db: &str) -> Vec<Value> {
    d.ctl_json(&["sync", "list", "--db", db])["backups"].as_array().unwrap().clone()
}

#[test]
fn backup_then_restore_gives_identical_content_on_every_backend() {
    for backend in [Backend::Local, Backend::moto(), Backend::s3s()] {
        let d = Daemon::start_with(backend.opts());
        d.ctl_ok(&["parts", "add", "ANTENNA", "4", "1"]);
        d.ctl_ok(&["parts", "add", "LNA", "4", "1"]);
        d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
        let before = parts_rows(&d);
        let done = backup(&d, &[]);
        assert_eq!(done.len(), 2, "{}: {done:?}", backend.name());
        let parts = done.iter().find(|b| b["database"] == "parts.db").unwrap();
        assert!(parts["key"].as_str().unwrap().ends_with("_lab_1_parts.db.zst"), "{parts}");
        assert_eq!(parts["sha256"].as_str().unwrap().len(), 64);
        assert!(parts["stored_bytes"].as_u64().unwrap() < parts["raw_bytes"].as_u64().unwrap());
        let key = parts["key"].as_str().unwrap().to_owned();

        d.ctl_ok(&["parts", "add", "COAXLONG", "3", "2"]);
        assert_ne!(parts_rows(&d), before);
        let out = d.ctl_json(&["sync", "restore", &key, "--yes"]);
        assert_eq!(out["restored"]["key"], key.as_str());
        assert!(out["safety_backup"]["key"].as_str().unwrap().contains("_lab_2_"), "{out}");
        assert_eq!(parts_rows(&d), before, "{}: restored content differs", backend.name());
        // The daemon keeps working on the restored file.
        assert_eq!(d.ctl_json(&["parts", "add", "LNA", "1", "1"])["parts"][0], "LNA00005P1");
        // --dest writes a verified copy and leaves the live database alone.
        let dest = d.dir.path().join("copy.db");
        d.ctl_ok(&["sync", "restore", &key, "--dest", dest.to_str().unwrap()]);
        assert_eq!(sqlite(&dest, "SELECT * FROM parts ORDER BY id"), before);
        assert_ne!(parts_rows(&d), before);
        let ok = d.ctl_json(&["sync", "verify", "--all"]);
        assert!(ok["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{ok}");
    }
}

#[test]
fn an_unchanged_database_is_not_uploaded_again() {
    let backend = Backend::moto();
    let d = Daemon::start_with(backend.opts());
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    let first = backup(&d, &["--parts"]);
    let again = backup(&d, &["--parts"]);
    assert_eq!(first[0]["uploaded"], true);
    assert_eq!(again[0]["uploaded"], false);
    assert_eq!(again[0]["key"], first[0]["key"]);
    assert_eq!(versions(&d, "parts.db").len(), 1);
}

#[test]
fn two_backups_in_the_same_second_both_survive() {
    let d = Daemon::start_with(Backend::Local.opts());
    let mut keys = Vec::new();
    let start = Instant::now();
    for n in 0..3 {
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        keys.push(backup(&d, &["--parts"])[0]["key"].as_str().unwrap().to_owned());
        assert!(n > 0 || start.elapsed() < Duration::from_secs(5));
    }
    let listed: Vec<String> =
        versions(&d, "parts.db").iter().map(|v| v["key"].as_str().unwrap().to_owned()).collect();
    for k in &keys {
        assert!(listed.contains(k), "{k} missing from {listed:?}");
    }
    let unique: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), 3);
    // Concurrent backups from two clients are serialised, both succeed.
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let kids: Vec<_> = (0..2)
        .map(|_| d.ctl_cmd().args(["sync", "backup", "--parts"]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
}

#[test]
fn backups_taken_while_a_writer_commits_are_each_consistent() {
    let backend = Backend::moto();
    let d = Arc::new(Daemon::start_with(backend.opts()));
    d.ctl_ok(&["parts", "add", "ANTENNA", "50", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "50", "1"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (d, stop) = (Arc::clone(&d), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let i = n % 50 + 1;
                let (a, l) = (format!("ANT{i:05}P1"), format!("LNA{i:05}P1"));
                d.ctl_ok(&["scan", "connect", &a, &l]);
                d.ctl_ok(&["scan", "disconnect", &a, &l]);
                n += 1;
            }
            n
        })
    };
    let mut seen = Vec::new();
    for _ in 0..4 {
        d.ctl_ok(&["parts", "add", "BAC", "5", "1"]);
        for b in backup(&d, &[]) {
            seen.push(b["key"].as_str().unwrap().to_owned());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let cycles = writer.join().unwrap();
    assert!(cycles > 0);
    let report = d.ctl_json(&["sync", "verify", "--all"]);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), seen.len());
    assert!(results.iter().all(|r| r["ok"] == true), "{report}");
    // Each assembly snapshot holds whole events: an even number of rows per pair
    // or one more (a connect without its disconnect yet), never a torn row.
    for v in versions(&d, "assembled_casm.db") {
        let dest = d.dir.path().join("check.db");
        d.ctl_ok(&["sync", "restore", v["key"].as_str().unwrap(), "--dest", dest.to_str().unwrap()]);
        assert_eq!(sqlite(&dest, "PRAGMA integrity_check").trim(), "ok");
        let bad =
            sqlite(&dest, "SELECT COUNT(*) FROM assembly WHERE part_number IS NULL OR scan_time IS NULL");
        assert_eq!(bad.trim(), "0");
    }
}

/// The object files of the local backend.
fn local_objects(d: &Daemon, db: &str) -> PathBuf {
    d.data_dir.join("backups/backups").join(db)
}

fn flip_a_bit(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// Flips a bit of an object in moto through the S3 API (moto keeps no files).
fn moto_flip(endpoint: &str, key: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test"))
            .force_path_style(true)
            .build();
        let c = aws_sdk_s3::Client::from_conf(conf);
        let obj = c.get_object().bucket(BUCKET).key(key).send().await.unwrap();
        let mut bytes = obj.body.collect().await.unwrap().into_bytes().to_vec();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x10;
        c.put_object().bucket(BUCKET).key(key).body(bytes.into()).send().await.unwrap();
    });
}

#[test]
fn a_flipped_bit_is_refused_and_the_database_is_untouched() {
    // Local directory and moto serve the damaged bytes, so casmand's own
    // SHA-256 check must catch them; s3s-fs verifies what it serves and fails
    // the download itself. Either way: refused, nothing changed.
    for backend in [Backend::Local, Backend::moto(), Backend::s3s()] {
        let d = Daemon::start_with(backend.opts());
        d.ctl_ok(&["parts", "add", "ANTENNA", "20", "2"]);
        let key = backup(&d, &["--parts"])[0]["key"].as_str().unwrap().to_owned();
        d.ctl_ok(&["parts", "add", "ANTENNA", "1", "2"]);
        let before = parts_rows(&d);
        match &backend {
            Backend::Local => flip_a_bit(&d.data_dir.join("backups").join(&key)),
            Backend::Moto(m) => moto_flip(&m.endpoint, &key),
            Backend::S3s(s, _) => flip_a_bit(&s.root.join(BUCKET).join(&key)),
        }
        let err = d.ctl_err(&["sync", "restore", &key, "--yes"], 1);
        match backend {
            Backend::S3s(..) => assert!(err.contains(&key), "{err}"),
            _ => {
                assert!(err.contains("SHA-256") || err.contains("zstd"), "{}: {err}", backend.name());
                assert!(err.contains("nothing was changed"), "{err}");
            }
        }
        assert_eq!(parts_rows(&d), before, "{}: database changed", backend.name());
        let report = d.ctl_json_allow_fail(&["sync", "verify", "--key", &key]);
        assert_eq!(report["results"][0]["ok"], false);
    }
}

/// Writes a version in the Python tool's layout into the local backend.
fn legacy_version(d: &Daemon, stamp: &str, content: &[u8]) -> String {
    use sha2_free::hex_sha256;
    let dir = local_objects(d, "parts.db");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("{stamp}_parts.db");
    std::fs::write(dir.join(&name), content).unwrap();
    let meta = serde_json::json!({
        "filename": "parts.db", "timestamp": "2024-12-08T14:30:22.123456+00:00",
        "checksum": hex_sha256(content), "size_bytes": content.len(), "db_name": "parts.db",
        "record_count": 2, "operation": "Manual CLI backup",
    });
    std::fs::write(dir.join(format!("{name}.metadata.json")), serde_json::to_vec_pretty(&meta).unwrap())
        .unwrap();
    format!("backups/parts.db/{name}")
}

/// SHA-256 through the sha256sum tool (the tests crate carries no hash crate).
mod sha2_free {
    pub fn hex_sha256(bytes: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
    }
}

#[test]
fn python_layout_versions_are_listed_and_restored_and_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let py = dir.path().join("py-parts.db");
    sqlite(
        &py,
        "CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE, part_type TEXT, polarization TEXT,
           date_created TEXT, date_modified TEXT);
         INSERT INTO parts VALUES (1,'ANT00001P1','ANTENNA','1','2024-12-08 14:00:00','2024-12-08 14:00:00');
         INSERT INTO parts VALUES (2,'ANT00002P1','ANTENNA','1','2024-12-08 14:00:00','2024-12-08 14:00:00');",
    );
    let d = Daemon::start_with(Backend::Local.opts());
    let good = legacy_version(&d, "20241208_143022", &std::fs::read(&py).unwrap());
    let bad = legacy_version(&d, "20241209_080000", b"this is not a database, just bytes with a checksum");
    let listed = versions(&d, "parts.db");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|v| v["reason"] == "legacy" && v["codec"] == "none"));
    let err = d.ctl_err(&["sync", "restore", &bad, "--yes"], 1);
    assert!(err.contains("not an SQLite database"), "{err}");
    let out = d.ctl_json(&["sync", "restore", &good, "--no-backup", "--yes"]);
    assert_eq!(out["checksum_checked"], true);
    // A CAsMan file is adopted before it goes live: 1 -> P1, every row kept.
    assert_eq!(
        sqlite(&d.data_dir.join("parts.db"), "SELECT part_number, polarization FROM parts ORDER BY id"),
        "ANT00001P1|P1\nANT00002P1|P1\n"
    );
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 2);
}

#[test]
fn restoring_the_oldest_kept_version_works_with_retention_at_capacity() {
    // Full versions only: a kept delta keeps its chain (tests/tests/deltas.rs).
    let d = Daemon::start_with(
        Backend::Local.opts().env("CASMAN_SYNC__KEEP_VERSIONS", "3").env("CASMAN_SYNC__DELTA_CHAIN_MAX", "0"),
    );
    let mut keys = Vec::new();
    for _ in 0..4 {
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        keys.push(backup(&d, &["--parts"])[0]["key"].as_str().unwrap().to_owned());
    }
    let listed: Vec<String> =
        versions(&d, "parts.db").iter().map(|v| v["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(!listed.contains(&keys[0]));
    let oldest = &keys[1];
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    d.ctl_ok(&["sync", "restore", oldest, "--yes"]);
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 2);
    // The restored version is the base: later backups keep it.
    for _ in 0..4 {
        d.ctl_ok(&["parts", "add", "CXS", "1", "1"]);
        backup(&d, &["--parts"]);
    }
    let listed: Vec<String> =
        versions(&d, "parts.db").iter().map(|v| v["key"].as_str().unwrap().to_owned()).collect();
    assert!(!listed.contains(oldest) || listed.len() <= 5, "{listed:?}");
    assert!(
        d.ctl_json(&["sync", "verify", "--all"])["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == true)
    );
}

#[test]
fn a_daemon_killed_during_restore_leaves_the_old_or_the_new_database() {
    let mut d = Daemon::start_with(Backend::Local.opts());
    d.ctl_ok(&["parts", "add", "ANTENNA", "3000", "1"]);
    let key = backup(&d, &["--parts"])[0]["key"].as_str().unwrap().to_owned();
    d.ctl_ok(&["parts", "add", "LNA", "2000", "1"]);
    let (old_n, new_n) = ("5000", "3000");
    for delay_us in [0u64, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000] {
        let mut restore = d
            .ctl_cmd()
            .args(["sync", "restore", &key, "--no-backup", "--yes"])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Not a wait for a condition: the kill point moves through the restore.
        std::thread::sleep(Duration::from_micros(delay_us));
        d.kill();
        let _ = restore.wait();
        let db = d.data_dir.join("parts.db");
        assert_eq!(sqlite(&db, "PRAGMA integrity_check").trim(), "ok", "killed after {delay_us} µs");
        let n = sqlite(&db, "SELECT COUNT(*) FROM parts").trim().to_owned();
        assert!(n == old_n || n == new_n, "killed after {delay_us} µs: {n} parts");
        d.restart();
        assert_eq!(d.ctl_json(&["parts", "count"])["total"].to_string(), n);
        if n == new_n {
            // Back to the newer state for the next round.
            d.ctl_ok(&["parts", "add", "LNA", "2000", "1"]);
        }
    }
}

#[test]
fn bad_credentials_and_an_unreachable_store_give_clear_errors_and_the_daemon_keeps_serving() {
    let backend = Backend::s3s();
    let Backend::S3s(s, _) = &backend else { unreachable!() };
    let d = Daemon::start_with(backend.opts().env("R2_SECRET_ACCESS_KEY", "wrong-secret"));
    // Part numbers are leased from the store: without one, none is issued,
    // and the refusal says why (never the secret).
    let err = d.ctl_err(&["parts", "add", "ANTENNA", "1", "1"], 1);
    assert!(err.contains("credentials") && err.contains("cannot be leased"), "{err}");
    assert!(!err.contains("wrong-secret"), "secret leaked");
    let err = d.ctl_err(&["sync", "backup", "--parts"], 1);
    assert!(err.contains("credentials"), "{err}");
    assert!(!err.contains("wrong-secret") && !d.log_text().contains("wrong-secret"), "secret leaked");
    let _ = &s.endpoint;
    d.ctl_ok(&["parts", "count"]);

    let closed = casman_tests::s3::free_port();
    let d = Daemon::start_with(
        Backend::Local
            .opts()
            .env("CASMAN_SYNC_BACKEND", "s3")
            .env("R2_ENDPOINT", format!("http://127.0.0.1:{closed}"))
            .env("R2_ACCESS_KEY_ID", "k")
            .env("R2_SECRET_ACCESS_KEY", "s")
            .env("CASMAN_STORE__PATH_STYLE", "true"),
    );
    let t = Instant::now();
    let err = d.ctl_err(&["sync", "backup", "--parts"], 1);
    assert!(err.contains("unreachable"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(30), "took {:?}", t.elapsed());
    let err = d.ctl_err(&["parts", "add", "LNA", "1", "1"], 1);
    assert!(err.contains("unreachable") && err.contains("reconnect"), "{err}");
    d.ctl_ok(&["parts", "count"]);
}

//! What the backup benchmarks share: the fixture copied into a data
//! directory, timing statistics, moto's request counts by R2 class, and the
//! plain SDK client of the floor.

use std::{path::Path, time::Duration};

use casman_tests::MotoServer;

/// The bucket every backup benchmark uses.
pub const BUCKET: &str = "casman-bench";

/// A new data directory (inside a kept temporary directory) holding copies of
/// the fixture's two databases, for casmand to adopt.
pub fn data_dir_with(fixture: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("casman-bench-").tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["parts.db", "assembled_casm.db"] {
        std::fs::copy(fixture.join(f), data.join(f)).unwrap();
    }
    dir
}

/// Median, min and max, in milliseconds.
pub fn stats(xs: &[Duration]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = xs.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Requests moto logged since `from` (a byte offset in its log), by class:
/// Class A (PUT, POST, LIST) and Class B (GET, HEAD); DELETE is free.
pub fn requests_since(moto: &MotoServer, from: usize) -> (u32, u32) {
    let log = moto.log_text();
    let (mut a, mut b) = (0, 0);
    for line in log[from.min(log.len())..].lines() {
        let Some(req) = line.split('"').nth(1) else { continue };
        let mut parts = req.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else { continue };
        if !path.starts_with(&format!("/{BUCKET}")) {
            continue;
        }
        match method {
            "PUT" | "POST" => a += 1,
            "GET" if path.contains("list-type") || path.contains("prefix=") => a += 1,
            "GET" | "HEAD" => b += 1,
            _ => {}
        }
    }
    (a, b)
}

/// A plain aws-sdk-s3 client of `moto`: the floor's requests.
pub fn sdk_client(moto: &MotoServer) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "bench"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// `casmanctl sync backup --assembled`, checking whether it uploaded;
/// returns the version's key and stored bytes.
pub fn backup_assembled(d: &casman_tests::Daemon, expect_upload: bool) -> (String, u64) {
    let out = d.ctl_json(&["sync", "backup", "--assembled"]);
    let b = out["backups"][0].clone();
    assert_eq!(b["uploaded"], expect_upload, "{out}");
    (b["key"].as_str().unwrap().to_owned(), b["stored_bytes"].as_u64().unwrap_or(0))
}

/// One connect event written into the live log at `live` by another program
/// (the sqlite3 shell): casmand must notice it (data_version). `tag` makes
/// the pair new each time.
pub fn scan_outside(live: &Path, tag: &str) {
    casman_tests::sqlite(
        live,
        &format!(
            "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to,
             connected_to_type, connected_polarization, connected_scan_time, connection_status)
             VALUES ('{tag}', 'LNA', 'P1', '2027-01-01T00:00:00Z', 'X{tag}', 'COAXSHORT', 'P1',
             '2027-01-01T00:00:00Z', 'connected')"
        ),
    );
}

/// What every backup benchmark starts from: the fixture (in `scratch`), moto
/// with the bench bucket, a data directory holding copies of the fixture,
/// and daemon options for that store (count trigger off, 100 versions kept).
pub fn bench_setup(
    scratch: &Path,
) -> (std::path::PathBuf, MotoServer, tempfile::TempDir, casman_tests::DaemonOpts) {
    let fixture = super::fixture::fixture(scratch);
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let dir = data_dir_with(&fixture);
    let opts = moto
        .daemon_opts(BUCKET, "bench")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000")
        .env("CASMAN_SYNC__KEEP_VERSIONS", "100");
    (fixture, moto, dir, opts)
}

//! Backup benchmarks on the ~10 MB assembly database the documents quote
//! (about 100k assembly rows), against moto on 127.0.0.1: wall time of
//! `casmanctl sync backup --assembled` and of `casmanctl sync restore`
//! (medians), each as a ratio to a plain upload/download of the same file by
//! the same SDK in the same run; bytes stored per version; casmand's memory
//! peak (VmHWM) during backups.
//!
//! Run: `cargo build --release --bins && cargo bench -p casman-tests --bench backup`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use casman_tests::{Daemon, DaemonOpts, MotoServer, sqlite};

const BUCKET: &str = "casman-bench";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    // Build the database before the daemon adopts it: 100k events, 20k chains.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("assembled_casm.db");
    let mut sql = String::from(
        "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, part_type TEXT, polarization TEXT,
         scan_time TEXT, connected_to TEXT, connected_to_type TEXT, connected_polarization TEXT,
         connected_scan_time TEXT, connection_status TEXT DEFAULT 'connected');
         CREATE TABLE casman_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
             connected_polarization, connected_scan_time, connection_status)
         SELECT printf('LNA%05dP1', i % 99999 + 1), 'LNA', 'P1',
             strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + i, 'unixepoch'),
             printf('CXS%05dP1', i % 99999 + 1), 'COAXSHORT', 'P1',
             strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + i, 'unixepoch'),
             CASE WHEN i % 3 = 0 THEN 'disconnected' ELSE 'connected' END FROM n;",
    );
    sql.push_str("PRAGMA journal_mode=DELETE;");
    sqlite(&db, &sql);
    let raw_bytes = std::fs::metadata(&db).unwrap().len();

    let opts = DaemonOpts::default()
        .env("CASMAN_SYNC_BACKEND", "s3")
        .env("R2_ENDPOINT", &moto.endpoint)
        .env("R2_BUCKET_NAME", BUCKET)
        .env("R2_ACCESS_KEY_ID", "test")
        .env("R2_SECRET_ACCESS_KEY", "test")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000")
        .env("CASMAN_SYNC__KEEP_VERSIONS", "50")
        .env("CASMAN_LOG", "warn");
    let d = Daemon::start_in(dir, opts);
    let hwm_idle = vm_hwm_kib(d.pid());

    // Each backup must upload: a tiny change first (a disconnect row via casmand).
    let runs = 7;
    let mut backups = Vec::new();
    let mut stored = Vec::new();
    let mut keys = Vec::new();
    for i in 0..runs {
        sqlite(
            &d.data_dir.join("assembled_casm.db"),
            &format!(
                "INSERT INTO assembly (part_number, connected_to, scan_time, connection_status) VALUES ('BENCH{i}', 'X', '2027-01-01T00:00:00Z', 'connected')"
            ),
        );
        let t = Instant::now();
        let out = d.ctl_json(&["sync", "backup", "--assembled"]);
        backups.push(t.elapsed());
        let b = &out["backups"][0];
        assert_eq!(b["uploaded"], true, "{out}");
        stored.push(b["stored_bytes"].as_u64().unwrap());
        keys.push(b["key"].as_str().unwrap().to_owned());
    }
    let hwm_backup = vm_hwm_kib(d.pid());
    let mut restores = Vec::new();
    for key in keys.iter().take(5) {
        let t = Instant::now();
        d.ctl_ok(&["sync", "restore", key, "--no-backup", "--yes"]);
        restores.push(t.elapsed());
    }

    // Baseline: the same SDK uploading and downloading the raw file.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (up, down) = rt.block_on(async {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&moto.endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "bench"))
            .force_path_style(true)
            .build();
        let c = aws_sdk_s3::Client::from_conf(conf);
        let bytes = std::fs::read(&db).unwrap_or_default();
        let bytes = if bytes.is_empty() { vec![0u8; raw_bytes as usize] } else { bytes };
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let key = format!("baseline/{i}");
            let t = Instant::now();
            c.put_object().bucket(BUCKET).key(&key).body(bytes.clone().into()).send().await.unwrap();
            up.push(t.elapsed());
            let t = Instant::now();
            let o = c.get_object().bucket(BUCKET).key(&key).send().await.unwrap();
            let got = o.body.collect().await.unwrap().into_bytes();
            std::fs::write(std::env::temp_dir().join("casman-bench-download"), &got).unwrap();
            down.push(t.elapsed());
        }
        (up, down)
    });
    let (b, r, u, dn) = (median(backups), median(restores), median(up), median(down));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("database: {:.1} MB raw, {} assembly rows", raw_bytes as f64 / 1e6, 100_000 + runs);
    println!(
        "casmanctl sync backup --assembled   median {:>8.1} ms | plain SDK upload   {:>8.1} ms | ratio {:.2}",
        ms(b),
        ms(u),
        ms(b) / ms(u)
    );
    println!(
        "casmanctl sync restore --no-backup  median {:>8.1} ms | plain SDK download {:>8.1} ms | ratio {:.2}",
        ms(r),
        ms(dn),
        ms(r) / ms(dn)
    );
    println!(
        "bytes stored per version: median {} ({:.1}% of the raw {})",
        median(stored.iter().map(|s| Duration::from_nanos(*s)).collect()).as_nanos(),
        100.0 * stored[0] as f64 / raw_bytes as f64,
        raw_bytes
    );
    println!(
        "casmand memory peak (VmHWM): {hwm_idle} KiB after start, {hwm_backup} KiB after {runs} backups"
    );
}

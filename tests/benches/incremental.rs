//! Incremental versions on the field-size fixture (issue 15), against moto on
//! 127.0.0.1, printed in one run beside the floor measured in it (plain
//! aws-sdk-s3 PUT/GET of the same objects, in process):
//!
//! * bytes stored for a version after one scan (a delta), against the full
//!   snapshot;
//! * Class A / B requests per delta version (moto's request log);
//! * a field day of 1,000 scans, extrapolated (not run for 8 hours): each
//!   scan's version costs what the measured versions cost;
//! * restore at the end of a 50-delta chain against a restore of the full
//!   snapshot (both `--dest`, whole casmanctl processes).
//!
//! Run (release binaries, built once):
//! `cargo build --release --bins && cargo bench -p casman-tests --bench incremental`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/store.rs"]
mod store;

use std::time::Instant;

use casman_tests::{Daemon, MotoServer};
use store::{BUCKET, requests_since, stats};

const CHAIN: usize = 50;

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let fixture = fixture::fixture(scratch.path());
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    let dir = store::data_dir_with(&fixture);
    let opts = moto
        .daemon_opts(BUCKET, "bench")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000")
        .env("CASMAN_SYNC__KEEP_VERSIONS", "100")
        // The whole chain of 50 deltas, whatever their share.
        .env("CASMAN_SYNC__DELTA_MAX_SHARE", "1")
        .env("CASMAN_LOG", "warn");
    let d = Daemon::start_in(dir, opts);
    let live = d.data_dir.join("assembled_casm.db");
    let backup = || store::backup_assembled(&d, true);
    let mut n = 0;
    let mut scan = || {
        n += 1;
        store::scan_outside(&live, &format!("INCR{n}"));
    };
    // The first version after a start is full; then one scan per version.
    scan();
    let (full_key, full_bytes) = backup();
    assert!(!full_key.ends_with(".delta.zst"), "{full_key}");
    let mark = moto.log_text().len();
    let (mut keys, mut sizes, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CHAIN {
        scan();
        let t = Instant::now();
        let (key, bytes) = backup();
        times.push(t.elapsed());
        assert!(key.ends_with(".delta.zst"), "{key}");
        keys.push(key);
        sizes.push(bytes);
    }
    let (class_a, class_b) = requests_since(&moto, mark);
    let restore = |key: &str| {
        let dest = d.dir.path().join("restored.db");
        let _ = std::fs::remove_file(&dest);
        let t = Instant::now();
        d.ctl_ok(&["sync", "restore", key, "--dest", dest.to_str().unwrap()]);
        t.elapsed()
    };
    let (mut full_restores, mut chain_restores) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        full_restores.push(restore(&full_key));
        chain_restores.push(restore(keys.last().unwrap()));
    }

    // The floor: the same SDK in process, the same moto, the same objects.
    let raw = std::fs::read(&live).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (put_delta, get_full) = rt.block_on(async {
        let c = store::sdk_client(&moto);
        let delta = c.get_object().bucket(BUCKET).key(&keys[0]).send().await.unwrap();
        let delta = delta.body.collect().await.unwrap().into_bytes();
        let (mut put, mut get) = (Vec::new(), Vec::new());
        for i in 0..7 {
            let t = Instant::now();
            c.put_object()
                .bucket(BUCKET)
                .key(format!("floor/{i}"))
                .body(delta.clone().into())
                .send()
                .await
                .unwrap();
            put.push(t.elapsed());
            let t = Instant::now();
            let o = c.get_object().bucket(BUCKET).key(&full_key).send().await.unwrap();
            o.body.collect().await.unwrap();
            get.push(t.elapsed());
        }
        (put, get)
    });
    let (put_ms, _, _) = stats(&put_delta);
    let (get_ms, _, _) = stats(&get_full);

    let mut sorted = sizes.clone();
    sorted.sort();
    let (med, lo, hi) = (sorted[sorted.len() / 2], sorted[0], sorted[sorted.len() - 1]);
    println!(
        "fixture assembled_casm.db {:.1} MB; full snapshot stored {} bytes",
        raw.len() as f64 / 1e6,
        full_bytes
    );
    println!(
        "bytes stored per version after one scan (delta): median {med} (min {lo}, max {hi}); {:.2}% of the full \
         snapshot; goal <= 65536",
        100.0 * med as f64 / full_bytes as f64
    );
    let (m, lo, hi) = stats(&times);
    println!(
        "backup of one scan (casmanctl sync backup): median {m:.1} ms (min {lo:.1}, max {hi:.1}); {:.2}x the SDK \
         PUT of the delta ({put_ms:.1} ms)",
        m / put_ms
    );
    let per_a = class_a as f64 / CHAIN as f64;
    let per_b = class_b as f64 / CHAIN as f64;
    println!("requests per delta version: Class A {per_a:.2}, Class B {per_b:.2}");
    // A field day: 1,000 scans over 8 hours; with a 10 s window at most 2,880
    // windows, so at most 1,000 versions (one per scan, the worst case: no
    // two scans share a window). A full snapshot every 50 deltas.
    let versions = 1000.0;
    let fulls = versions / (CHAIN as f64 + 1.0);
    let day_a = versions * per_a;
    let day_bytes = (versions - fulls) * med as f64 + fulls * full_bytes as f64;
    println!(
        "field day, 1,000 scans, one version each (extrapolated from the versions above, full snapshot every {CHAIN}): \
         Class A {day_a:.0}, stored {:.1} MB written; 10 sites x 22 days: Class A {:.0} ({:.1}% of 1,000,000)",
        day_bytes / 1e6,
        day_a * 220.0,
        day_a * 220.0 / 1e4
    );
    let (fm, flo, fhi) = stats(&full_restores);
    let (cm, clo, chi) = stats(&chain_restores);
    println!(
        "restore --dest: full {fm:.1} ms (min {flo:.1}, max {fhi:.1}), end of a {CHAIN}-delta chain {cm:.1} ms \
         (min {clo:.1}, max {chi:.1}): {:.2}x (goal <= 2x); SDK GET of the full object {get_ms:.1} ms: full {:.2}x, \
         chain {:.2}x",
        cm / fm,
        fm / get_ms,
        cm / get_ms
    );
}

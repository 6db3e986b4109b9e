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
//!   snapshot (both `--dest`, whole casmanctl processes);
//! * with `replicate_within = 10s`, the time from an acknowledged scan to its
//!   version in the store, p50 and p99 over 200 scans at random gaps
//!   (against the window plus the median backup of one scan);
//! * a simulated month (10 sites x 22 days x 1,000 scans over 8 h, then
//!   twice as busy) through the scheduler's replication-window policy, with
//!   the Class A requests and bytes measured above: Class A against R2's
//!   1,000,000, bytes against 1 GB, and whether every scan was stored.
//!
//! Run (release binaries, built once):
//! `cargo build --release --bins && cargo bench -p casman-tests --bench incremental`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/durability.rs"]
mod durability;
#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/month.rs"]
mod month;
#[path = "common/store.rs"]
mod store;

use std::time::{Duration, Instant};

use casman_tests::Daemon;
use store::{BUCKET, requests_since, stats};

const CHAIN: usize = 50;
/// Continuous protection's window in the durability run and the month.
const WINDOW: Duration = Duration::from_secs(10);
/// Scans of the durability run, and their mean gap (exponential).
const SCANS: usize = 200;
const MEAN_GAP: Duration = Duration::from_millis(800);

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let (fixture, moto, dir, opts) = store::bench_setup(scratch.path());
    let opts = opts
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
    drop(d);
    let dur = durability::measure(&moto, &fixture, WINDOW, SCANS, MEAN_GAP, 15);

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
    let backup_ms = m;
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
    print_durability(&dur, backup_ms);
    print_months(&dur, per_a, full_bytes, med);
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

fn print_durability(dur: &durability::Durability, backup_ms: f64) {
    let p50 = durability::percentile(&dur.latencies, 50.0);
    let p99 = durability::percentile(&dur.latencies, 99.0);
    let (lo, hi) =
        (durability::percentile(&dur.latencies, 0.0), durability::percentile(&dur.latencies, 100.0));
    let floor = WINDOW.as_secs_f64() + backup_ms / 1e3;
    let goal = WINDOW.as_secs_f64() + 1.0;
    let scans = dur.latencies.len();
    let versions = dur.versions_stored;
    println!(
        "replicate_within = {}s, {} scans (casmanctl scan connect, exponential gaps of mean {} ms): acknowledged to \
         durable in the store p50 {p50:.2} s, p99 {p99:.2} s (min {lo:.2}, max {hi:.2}); p99 {:.3}x the window + \
         the median backup ({floor:.2} s); goal p99 <= {goal:.0} s: {}; {} versions, {:.1} scans each",
        WINDOW.as_secs(),
        dur.latencies.len(),
        MEAN_GAP.as_millis(),
        p99 / floor,
        if p99 <= goal { "met" } else { "NOT met" },
        versions,
        scans as f64 / versions.max(1) as f64
    );
}

/// Bytes per further scan in a delta, from the durability run's versions
/// (each covering several scans) against the one-scan delta `first`.
fn per_extra_scan(dur: &durability::Durability, first: u64) -> u64 {
    let mut v: Vec<u64> =
        dur.versions.iter().filter(|(k, _)| *k > 1).map(|(k, b)| b.saturating_sub(first) / (k - 1)).collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(first)
}

fn print_months(dur: &durability::Durability, per_a: f64, full_bytes: u64, delta: u64) {
    let costs = month::Costs {
        class_a_per_version: per_a,
        full_bytes,
        delta_first: delta,
        delta_per_extra: per_extra_scan(dur, delta),
    };
    let sync = casmand::config::SyncConfig { replicate_within: WINDOW, ..Default::default() };
    let allowance = casmand::config::QuotaConfig::default().class_a_operations as f64;
    let warn = casmand::config::QuotaConfig::default().warn_threshold;
    let gb = 1024.0 * 1024.0 * 1024.0;
    let line = |what: &str, scans_per_day: usize, m: &month::Month| {
        println!(
            "simulated month, {what} (10 sites x 22 days x {scans_per_day} scans over 8 h, window {}s; {} versions, \
             {:.2} scans each): Class A {:.0} ({:.1}% of 1,000,000); uploaded {:.2} GB; held at most {:.1} MB \
             ({:.2}% of 1 GB); widest window {:.0} s, scan to version p99 {:.1} s, max {:.1} s; every scan stored: {}",
            WINDOW.as_secs(),
            m.versions,
            m.scans as f64 / m.versions.max(1) as f64,
            m.class_a,
            100.0 * m.class_a / allowance,
            m.uploaded as f64 / gb,
            m.held_max as f64 / 1e6,
            100.0 * m.held_max as f64 / gb,
            m.widest.as_secs_f64(),
            m.exposure_p99.as_secs_f64(),
            m.exposure_max.as_secs_f64(),
            if m.uncovered == 0 { "yes".to_owned() } else { format!("NO, {} not", m.uncovered) }
        )
    };
    let work = |scans_per_day| month::Work { sites: 10, days: 22, scans_per_day, hours: 8.0 };
    let normal = month::simulate(&work(1000), &sync, &costs, true, 1);
    line("field work", 1000, &normal);
    let busy = month::simulate(&work(2000), &sync, &costs, true, 2);
    line("twice as busy", 2000, &busy);
    let fixed = month::simulate(&work(2000), &sync, &costs, false, 2);
    let below = busy.class_a < warn * allowance;
    println!(
        "twice as busy with the window fixed at {}s: Class A {:.0} ({:.1}%); with the widening window {:.1}%: {} the \
         {:.0}% warning{}",
        WINDOW.as_secs(),
        fixed.class_a,
        100.0 * fixed.class_a / allowance,
        100.0 * busy.class_a / allowance,
        if below { "below" } else { "NOT below" },
        warn * 100.0,
        if below && fixed.class_a >= warn * allowance { " because the window widened" } else { "" }
    );
}

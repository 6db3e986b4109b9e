//! Time from an acknowledged scan to its version being durable in the store,
//! with continuous protection (`sync.replicate_within`): scans through
//! `casmanctl scan connect` at random (seeded) gaps, while a plain SDK
//! client polls the manifest every 50 ms; a scan is durable once a listed
//! version's assembly record count covers it (each connect adds one row).

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use casman_tests::{Daemon, MotoServer};
use casmand::backup::{
    chain::span,
    layout,
    manifest::{Kind, Manifest},
};

use super::store;

const BUCKET: &str = "casman-bench-window";
const DB: &str = "assembled_casm.db";
const POLL: Duration = Duration::from_millis(50);

/// What the run measured.
pub struct Durability {
    /// Per scan: from the scan call's return to its version in the manifest.
    pub latencies: Vec<Duration>,
    /// Per delta stored during the run that holds its own changes only
    /// (not at a multiple of 8): (scans it covers, stored bytes).
    pub versions: Vec<(u64, u64)>,
    /// Versions stored during the run.
    pub versions_stored: usize,
}

/// The largest assembly record count among the manifest's versions (`None`:
/// no manifest yet).
async fn covered(c: &aws_sdk_s3::Client) -> Option<i64> {
    let o = c.get_object().bucket(BUCKET).key(layout::manifest_key(DB)).send().await.ok()?;
    let bytes = o.body.collect().await.ok()?.into_bytes();
    let m = Manifest::parse(&bytes).ok()?;
    m.versions.iter().filter_map(|v| v.record_counts.get("assembly").copied()).max()
}

/// `scans` scans with exponential gaps of mean `mean_gap` (seed `seed`)
/// against a daemon on a copy of `fixture` with `replicate_within = window`
/// (and no count trigger).
pub fn measure(
    moto: &MotoServer,
    fixture: &Path,
    window: Duration,
    scans: usize,
    mean_gap: Duration,
    seed: u64,
) -> Durability {
    moto.create_bucket(BUCKET);
    // Continuous protection by versions (the whole-file flow): with the
    // change exchange a window closes with a change segment instead, which
    // `cargo bench --bench exchange` measures.
    let opts = moto
        .daemon_opts(BUCKET, "window")
        .whole_file_sync()
        .env("CASMAN_SYNC__REPLICATE_WITHIN", casman_proto::duration::format(window))
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        // Every version of the run stays listed, to be counted.
        .env("CASMAN_SYNC__KEEP_VERSIONS", "100000")
        .env("CASMAN_LOG", "warn");
    let d = Daemon::start_in(store::data_dir_with(fixture), opts);
    let numbers = |kind: &str| -> Vec<String> {
        let out = d.ctl_json(&["parts", "add", kind, &scans.to_string(), "1"]);
        out["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect()
    };
    let (ants, lnas) = (numbers("ANTENNA"), numbers("LNA"));
    assert_eq!((ants.len(), lnas.len()), (scans, scans));
    // The first version after a start is a full snapshot: stored before the run.
    d.ctl_ok(&["sync", "backup"]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = store::sdk_client(moto);
    let base = rt.block_on(covered(&client)).expect("the warm-up version is listed");
    let seen: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            rt.block_on(async move {
                let mut tick = tokio::time::interval(POLL);
                let mut last = base;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Some(n) = covered(&client).await.filter(|n| *n > last) {
                        seen.lock().unwrap().push((Instant::now(), n));
                        last = n;
                    }
                }
            })
        })
    };

    let mut rng = fastrand::Rng::with_seed(seed);
    let mut acked = Vec::with_capacity(scans);
    for (ant, lna) in ants.iter().zip(&lnas) {
        let gap = mean_gap.mul_f64(-(1.0 - rng.f64()).ln());
        std::thread::sleep(gap);
        d.ctl_ok(&["scan", "connect", ant, lna]);
        acked.push(Instant::now());
    }
    let want = base + scans as i64;
    casman_tests::wait_for(
        "the last scan's version in the store",
        window * 3 + Duration::from_secs(30),
        || seen.lock().unwrap().last().is_some_and(|(_, n)| *n >= want).then_some(()),
    );
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();

    let seen = seen.lock().unwrap().clone();
    let latencies = acked
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let (t, _) = seen.iter().find(|(_, n)| *n > base + i as i64).unwrap();
            t.saturating_duration_since(*at)
        })
        .collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let m = rt.block_on(async {
        let c = store::sdk_client(moto);
        let o = c.get_object().bucket(BUCKET).key(layout::manifest_key(DB)).send().await.unwrap();
        Manifest::parse(&o.body.collect().await.unwrap().into_bytes()).unwrap()
    });
    let mut ours: Vec<_> = m.versions.iter().filter(|v| v.site == "window").collect();
    ours.sort_by_key(|v| v.seq);
    let versions_stored =
        ours.iter().filter(|v| v.record_counts.get("assembly").is_some_and(|n| *n > base)).count();
    let versions = ours
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0].record_counts.get("assembly")?, w[1].record_counts.get("assembly")?);
            // A delta at a multiple of 8 holds the changes of several versions.
            let own = w[1].kind == Kind::Delta && span(w[1].chain_depth) == 1;
            (own && *a >= base && b > a).then(|| ((b - a) as u64, w[1].stored_bytes))
        })
        .collect();
    Durability { latencies, versions, versions_stored }
}

/// The `p`-th percentile (0 to 100) of `xs`, in seconds.
pub fn percentile(xs: &[Duration], p: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

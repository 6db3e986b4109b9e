//! A simulated month of field work with continuous protection: a month
//! cannot be run in real time, so time is simulated, but the window every
//! version waits for is decided by the function the scheduler calls
//! (`casmand::backup::quota::replication_window`), fed the fleet's Class A
//! count as it grows. The scheduler's triggers are modelled as casmand has
//! them: the window from the oldest unsaved write, `backup_on_scan_count`
//! writes, `backup_on_hours` after the last backup. Versions cost the Class
//! A requests and the stored bytes measured in the same run; a full
//! snapshot starts every chain (`delta_chain_max`, `delta_max_share`), and
//! a delta holds the changes of the versions since its base (casmand's
//! `backup::chain::span`: one version, or 8, 64, ... at multiples of 8).
//! Every site knows the fleet's count at once (in casmand a site learns the
//! others' counts from the manifests they write, i.e. at their next version).

use std::{collections::BTreeMap, time::Duration};

use casmand::{
    backup::{
        chain::span,
        quota::{QuotaReport, Usage, replication_window},
    },
    config::{QuotaConfig, SyncConfig},
};

/// What a version costs, as measured.
pub struct Costs {
    /// Class A requests per version.
    pub class_a_per_version: f64,
    /// Stored bytes of a full snapshot.
    pub full_bytes: u64,
    /// Stored bytes of a delta holding one scan...
    pub delta_first: u64,
    /// ...and of each further scan it holds.
    pub delta_per_extra: u64,
}

/// The work of a month.
pub struct Work {
    /// Sites scanning.
    pub sites: usize,
    /// Working days (the month's first weekdays).
    pub days: usize,
    /// Scans per site and working day.
    pub scans_per_day: usize,
    /// Over this many hours from 08:00 UTC (sites a few minutes apart),
    /// gaps jittered ±25 % around the mean.
    pub hours: f64,
}

/// What the month came to.
pub struct Month {
    /// Scans made.
    pub scans: u64,
    /// Scans no version covers at the end of the month.
    pub uncovered: u64,
    /// Versions stored.
    pub versions: u64,
    /// Class A requests.
    pub class_a: f64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// The most the store held at once if every site's current and previous
    /// chain were kept (retention keeps fewer: an upper bound).
    pub held_max: u64,
    /// From a scan to the version that covers it: 99th percentile and max.
    pub exposure_p99: Duration,
    /// The longest.
    pub exposure_max: Duration,
    /// The widest window any version waited for.
    pub widest: Duration,
}

/// The simulated month: March 2027 (31 days, starting on a Monday).
const MONTH: &str = "2027-03-01T00:00:00Z";
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

struct Site {
    scans: Vec<i64>,
    next: usize,
    pending: Vec<i64>,
    deadline: Option<i64>,
    last_backup: Option<i64>,
    depth: u32,
    /// Scans each version of the current chain covers, by depth (0: full).
    chain_scans: Vec<u64>,
    chain_bytes: u64,
    prev_chain_bytes: u64,
}

/// The scan times (ms from the month's start) of `site`.
fn scan_times(work: &Work, site: usize, rng: &mut fastrand::Rng) -> Vec<i64> {
    let start: jiff::Timestamp = MONTH.parse().unwrap();
    let first = start.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mean = work.hours * HOUR_MS as f64 / work.scans_per_day as f64;
    let mut out = Vec::with_capacity(work.days * work.scans_per_day);
    let mut day = 0i64;
    let mut worked = 0;
    while worked < work.days {
        let date = first.checked_add(jiff::Span::new().days(day)).unwrap();
        day += 1;
        if matches!(date.weekday(), jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday) {
            continue;
        }
        worked += 1;
        let mut t = (day - 1) * DAY_MS + 8 * HOUR_MS + site as i64 * 5 * 60_000;
        for _ in 0..work.scans_per_day {
            t += (mean * (0.75 + 0.5 * rng.f64())) as i64;
            out.push(t);
        }
    }
    out
}

/// Simulates `work` with `sync`'s settings and `costs`; `enforced` as for
/// an r2 or s3 store (false: the window never widens, as with `local`).
pub fn simulate(work: &Work, sync: &SyncConfig, costs: &Costs, enforced: bool, seed: u64) -> Month {
    let start: jiff::Timestamp = MONTH.parse().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut sites: Vec<Site> = (0..work.sites)
        .map(|s| Site {
            scans: scan_times(work, s, &mut rng),
            next: 0,
            pending: Vec::new(),
            deadline: None,
            last_backup: None,
            depth: sync.delta_chain_max,
            chain_scans: Vec::new(),
            chain_bytes: 0,
            prev_chain_bytes: 0,
        })
        .collect();
    let mut report = QuotaReport {
        enforced,
        limits: QuotaConfig::default(),
        site: Usage::default(),
        fleet: Usage { month: "2027-03".into(), ..Usage::default() },
        other_sites: BTreeMap::new(),
        backups: 0,
        restores: 0,
    };
    let mut m = Month {
        scans: 0,
        uncovered: 0,
        versions: 0,
        class_a: 0.0,
        uploaded: 0,
        held_max: 0,
        exposure_p99: Duration::ZERO,
        exposure_max: Duration::ZERO,
        widest: Duration::ZERO,
    };
    let mut exposures: Vec<i64> = Vec::new();
    let hours = sync.backup_on_hours.as_millis() as i64;
    // The window in effect at `t` with the fleet's count so far.
    let window = |report: &mut QuotaReport, class_a: f64, t: i64| -> i64 {
        report.fleet.class_a = class_a as u64;
        let now = start.checked_add(jiff::SignedDuration::from_millis(t)).unwrap();
        replication_window(sync, report, now).effective.as_millis() as i64
    };
    loop {
        // The next event: a scan or a site's wake-up, earliest first.
        let mut next: Option<(i64, usize, bool)> = None;
        for (i, s) in sites.iter().enumerate() {
            for (t, is_scan) in [(s.scans.get(s.next).copied(), true), (s.deadline, false)] {
                if let Some(t) = t.filter(|t| next.is_none_or(|(n, _, _)| *t < n)) {
                    next = Some((t, i, is_scan));
                }
            }
        }
        let Some((t, i, is_scan)) = next else { break };
        let w = window(&mut report, m.class_a, t);
        let s = &mut sites[i];
        if is_scan {
            s.pending.push(t);
            s.next += 1;
            m.scans += 1;
        }
        let first = s.pending[0];
        let due = (first + w).min(s.last_backup.unwrap_or(first) + hours);
        let by_count = s.pending.len() >= sync.backup_on_scan_count as usize;
        if due > t && !by_count {
            s.deadline = Some(due);
            continue;
        }
        // A version covering every pending scan.
        let k = s.pending.len() as u64;
        let depth = s.depth + 1;
        let from = (depth - span(depth)) as usize + 1;
        let held: u64 = s.chain_scans.get(from..).map_or(0, |v| v.iter().sum::<u64>()) + k;
        let delta = costs.delta_first + costs.delta_per_extra * (held - 1);
        let full = s.depth >= sync.delta_chain_max
            || (s.chain_bytes - costs.full_bytes.min(s.chain_bytes) + delta) as f64
                > sync.delta_max_share * costs.full_bytes as f64;
        let bytes = if full {
            s.prev_chain_bytes = s.chain_bytes;
            s.chain_bytes = costs.full_bytes;
            s.depth = 0;
            s.chain_scans = vec![k];
            costs.full_bytes
        } else {
            s.chain_bytes += delta;
            s.depth = depth;
            s.chain_scans.push(k);
            delta
        };
        m.versions += 1;
        m.class_a += costs.class_a_per_version;
        m.uploaded += bytes;
        m.widest = m.widest.max(Duration::from_millis(w as u64));
        exposures.extend(s.pending.drain(..).map(|at| t - at));
        s.deadline = None;
        s.last_backup = Some(t);
        let held = sites.iter().map(|s| s.chain_bytes + s.prev_chain_bytes).sum();
        m.held_max = m.held_max.max(held);
    }
    m.uncovered = sites.iter().map(|s| s.pending.len() as u64).sum();
    exposures.sort_unstable();
    if let Some(&max) = exposures.last() {
        m.exposure_max = Duration::from_millis(max as u64);
        let i = ((exposures.len() - 1) as f64 * 0.99).round() as usize;
        m.exposure_p99 = Duration::from_millis(exposures[i] as u64);
    }
    m
}

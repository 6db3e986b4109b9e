//! Continuous protection within the free tier, pure: the replication window
//! in effect. While the fleet's Class A use this month is on pace to stay
//! below the warning level, the configured `sync.replicate_within` holds;
//! as the use gets ahead of that pace the window widens (smoothly, up to
//! `backup_on_hours`), so writes are batched into fewer versions instead of
//! backups being refused later in the month. The scheduler and
//! `sync status` both call [`replication_window`]. No I/O.

use std::time::Duration;

use super::QuotaReport;
use crate::config::SyncConfig;

/// The shortest stretch of the month the pace is judged on (one day of a
/// 30-day month): a few scans in the first minutes of a month are not a pace.
pub const PACE_FLOOR: f64 = 1.0 / 30.0;

/// The replication window in effect, given `configured` (zero: off, stays
/// off), `class_a_used` requests of the month's `allowance`, the warning at
/// `warn_fraction` of it, `month_elapsed` (0 to 1) of the month gone, and
/// the widest window `max`.
///
/// The pressure is the month's spending rate so far against the rate the
/// rest of the month can afford before the warning level:
/// `q = (used / elapsed) / ((warn - used) / (1 - elapsed))`, the elapsed
/// share taken as at least [`PACE_FLOOR`]. Up to `q = 1` (on pace to end
/// the month below the warning) the window is `configured`; above, it is
/// `configured * q²`, at most `max`; from the warning level on it is `max`.
/// Squared, because a wider window saves fewer versions than it widens by
/// when scans come further apart than the window.
pub fn effective_window(
    configured: Duration,
    class_a_used: u64,
    allowance: u64,
    warn_fraction: f64,
    month_elapsed: f64,
    max: Duration,
) -> Duration {
    let max = max.max(configured);
    let warn = warn_fraction * allowance as f64;
    if configured.is_zero() || warn.is_nan() || warn <= 0.0 {
        return configured;
    }
    let used = class_a_used as f64;
    if used >= warn {
        return max;
    }
    let elapsed = month_elapsed.clamp(PACE_FLOOR, 1.0);
    let q = (used / elapsed) / ((warn - used) / (1.0 - elapsed).max(f64::MIN_POSITIVE));
    if q.is_nan() || q <= 1.0 {
        return configured;
    }
    let wide = configured.as_secs_f64() * q * q;
    if wide >= max.as_secs_f64() { max } else { Duration::from_secs_f64(wide) }
}

/// The share of the UTC calendar month of `now` that has gone by (0 to 1).
pub fn month_elapsed(now: jiff::Timestamp) -> f64 {
    let z = now.to_zoned(jiff::tz::TimeZone::UTC);
    let start = z.date().first_of_month();
    let (Ok(start), Ok(end)) = (
        start.to_zoned(jiff::tz::TimeZone::UTC),
        start.checked_add(jiff::Span::new().months(1)).and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC)),
    ) else {
        return 0.0;
    };
    let (s, e) = (start.timestamp().as_second() as f64, end.timestamp().as_second() as f64);
    ((now.as_second() as f64 - s) / (e - s)).clamp(0.0, 1.0)
}

/// The replication window configured and in effect, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicationWindow {
    /// `sync.replicate_within` (zero: continuous protection is off).
    pub configured: Duration,
    /// The window the scheduler uses.
    pub effective: Duration,
    /// The fleet's Class A use this month, as a share of the allowance.
    pub class_a_fraction: f64,
    /// The warning level, as a share of the allowance.
    pub warn_threshold: f64,
}

impl ReplicationWindow {
    /// True when the window is wider than configured.
    pub fn widened(&self) -> bool {
        self.effective > self.configured
    }

    /// Why it is what it is, in an operator's words.
    pub fn reason(&self) -> String {
        if self.configured.is_zero() {
            return "continuous protection is off".into();
        }
        let at = format!(
            "Class A at {:.0}% of the month's allowance, warning at {:.0}%",
            self.class_a_fraction * 100.0,
            self.warn_threshold * 100.0
        );
        if self.widened() { at } else { format!("{at}: on pace") }
    }
}

/// The window of `sync` given the quota `report` at `now`: the fleet's
/// Class A use against the allowance. Where the limits are not enforced
/// (the `local` and `none` backends) the configured window always holds.
pub fn replication_window(
    sync: &SyncConfig,
    report: &QuotaReport,
    now: jiff::Timestamp,
) -> ReplicationWindow {
    let limits = &report.limits;
    let allowance = limits.class_a_operations;
    let used = report.fleet.class_a;
    let effective = if report.enforced {
        effective_window(
            sync.replicate_within,
            used,
            allowance,
            limits.warn_threshold,
            month_elapsed(now),
            sync.backup_on_hours,
        )
    } else {
        sync.replicate_within
    };
    ReplicationWindow {
        configured: sync.replicate_within,
        effective,
        class_a_fraction: if allowance > 0 { used as f64 / allowance as f64 } else { 0.0 },
        warn_threshold: limits.warn_threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S10: Duration = Duration::from_secs(10);
    const DAY: Duration = Duration::from_secs(86_400);

    fn w(used: u64, elapsed: f64) -> Duration {
        effective_window(S10, used, 1_000_000, 0.8, elapsed, DAY)
    }

    #[test]
    fn on_pace_the_configured_window_holds() {
        // 44 % of the allowance by the end of the month's 22nd working day.
        assert_eq!(w(440_000, 22.0 / 30.0), S10);
        assert_eq!(w(0, 0.5), S10);
        // Half the warning level at mid-month: exactly on pace.
        assert_eq!(w(400_000, 0.5), S10);
        // Off stays off, whatever the use.
        assert_eq!(effective_window(Duration::ZERO, 900_000, 1_000_000, 0.8, 0.1, DAY), Duration::ZERO);
    }

    #[test]
    fn ahead_of_pace_it_widens_smoothly_and_monotonically() {
        let mut last = S10;
        for used in (400_000..800_000).step_by(10_000) {
            let now = w(used, 0.5);
            assert!(now >= last, "{used}: {now:?} < {last:?}");
            last = now;
        }
        // Just past pace: barely wider.
        assert!(w(410_000, 0.5) < Duration::from_secs(12), "{:?}", w(410_000, 0.5));
        // Twice the affordable rate: four times the window.
        let twice = w(533_334, 0.5).as_secs_f64();
        assert!((twice - 40.0).abs() < 0.1, "{twice}");
    }

    #[test]
    fn near_and_past_the_warning_it_is_the_widest() {
        assert_eq!(w(799_999, 0.5), DAY);
        assert_eq!(w(800_000, 0.99), DAY);
        assert_eq!(w(850_000, 0.01), DAY);
        assert_eq!(effective_window(S10, 850_000, 1_000_000, 0.8, 0.5, Duration::from_secs(5)), S10);
    }

    #[test]
    fn the_first_hours_of_a_month_are_not_a_pace() {
        // 100 scans at 00:10 on the 1st.
        assert_eq!(w(200, 0.0002), S10);
        // A busy first day (twice 1,000 scans at 10 sites) does widen.
        assert!(w(40_000, 1.0 / 30.0) > S10);
    }

    #[test]
    fn the_month_elapsed_is_utc() {
        let at = |s: &str| month_elapsed(s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(at("2026-03-01T00:00:00Z"), 0.0);
        assert!((at("2026-03-16T12:00:00Z") - 0.5).abs() < 1e-9);
        assert!((at("2026-02-15T00:00:00Z") - 0.5).abs() < 1e-9);
        assert!(at("2026-03-31T23:59:59Z") < 1.0);
    }

    #[test]
    fn the_reason_names_the_use_and_the_warning() {
        let r = ReplicationWindow {
            configured: S10,
            effective: Duration::from_secs(160),
            class_a_fraction: 0.71,
            warn_threshold: 0.8,
        };
        assert!(r.widened());
        assert_eq!(r.reason(), "Class A at 71% of the month's allowance, warning at 80%");
        let held = ReplicationWindow { effective: S10, ..r };
        assert!(held.reason().ends_with(": on pace"));
    }
}

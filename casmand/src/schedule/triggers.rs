//! When a database is due for a backup: too many unsaved writes, unsaved
//! writes too old, or a failed backup whose retry time has come. Read from
//! state.db, so decisions survive restarts.

use std::time::Duration;

use crate::{backup::manifest::Reason, context::Context, db::sync_state, error::Result};

/// Why a backup is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// `backup_on_scan_count` writes (or more) are unsaved.
    Count(i64),
    /// Unsaved writes and `backup_on_hours` since the last backup.
    Time,
    /// The oldest unsaved write is `replicate_within` old.
    Window,
    /// Sites exchange changes and the oldest unpublished change is
    /// `replicate_within` old: publishing it (one small segment) protects
    /// it; no version is needed.
    Publish,
    /// A failed backup's retry time has come.
    Retry(String),
}

impl Due {
    /// The reason recorded with the version.
    pub fn reason(&self) -> Reason {
        match self {
            Due::Count(_) | Due::Time | Due::Window | Due::Publish => Reason::Scheduled,
            Due::Retry(r) if r == Reason::PartsGenerated.as_str() => Reason::PartsGenerated,
            Due::Retry(r) if r == Reason::Manual.as_str() => Reason::Manual,
            Due::Retry(_) => Reason::Scheduled,
        }
    }
}

/// The wait before retry number `attempts + 1`: `initial` doubling per failed
/// attempt, capped at `max`, scaled by a jitter factor in [0.8, 1.2)
/// (`jitter01` in [0, 1)) so sites that went offline together do not retry
/// in lockstep.
pub fn backoff(attempts: u32, initial: Duration, max: Duration, jitter01: f64) -> Duration {
    let base = initial.saturating_mul(2u32.saturating_pow(attempts.min(30))).min(max);
    base.mul_f64(0.8 + 0.4 * jitter01.clamp(0.0, 1.0)).min(max)
}

fn parse(ts: &str) -> Option<jiff::Timestamp> {
    ts.parse().ok()
}

/// How long from now until `ts` (zero if past).
fn until(ts: jiff::Timestamp) -> Duration {
    let d = ts.duration_since(jiff::Timestamp::now());
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// Whether `db` is due for a backup now, and why, with the replication
/// window in effect `window` (see [`crate::backup::quota::window`]).
pub async fn due(ctx: &Context, db: &str, window: Duration) -> Result<Option<Due>> {
    let state = &ctx.dbs().state;
    let pending = sync_state::pending(state).await?.into_iter().find(|p| p.database == db);
    if let Some(p) = pending {
        let ready = p.next_attempt_at.as_deref().and_then(parse).is_none_or(|t| until(t).is_zero());
        return Ok(ready.then_some(Due::Retry(p.reason)));
    }
    let a = sync_state::activity(state, db).await?;
    let sync = &ctx.config().sync;
    if a.writes_since_backup <= 0 {
        return Ok(None);
    }
    if a.writes_since_backup >= i64::from(sync.backup_on_scan_count) {
        return Ok(Some(Due::Count(a.writes_since_backup)));
    }
    if ctx.config().sync.exchange {
        if publish_due_at(ctx, db, window).await?.is_some_and(|t| until(t).is_zero()) {
            return Ok(Some(Due::Publish));
        }
    } else if window_due_at(&a, window).is_some_and(|t| until(t).is_zero()) {
        return Ok(Some(Due::Window));
    }
    Ok(time_due_at(&a, sync.backup_on_hours).filter(|t| until(*t).is_zero()).map(|_| Due::Time))
}

/// With continuous protection on (`window` > 0): when the oldest unsaved
/// write of `a` must be in the store.
fn window_due_at(a: &sync_state::Activity, window: Duration) -> Option<jiff::Timestamp> {
    if window.is_zero() {
        return None;
    }
    let since = a.first_unsaved_write_at.as_deref().and_then(parse)?;
    since.checked_add(jiff::SignedDuration::try_from(window).ok()?).ok()
}

/// With continuous protection on and sites exchanging changes: when this
/// site's oldest unpublished change of `db` must be in the store.
async fn publish_due_at(ctx: &Context, db: &str, window: Duration) -> Result<Option<jiff::Timestamp>> {
    if window.is_zero() {
        return Ok(None);
    }
    let Some(live) = ctx.dbs().by_name(db) else { return Ok(None) };
    let (_, published) = sync_state::published(&ctx.dbs().state, db).await?;
    let Some(hlc) = crate::db::changes::oldest_after(live, ctx.backups().site(), published).await? else {
        return Ok(None);
    };
    let made = jiff::Timestamp::from_millisecond(hlc >> 16).unwrap_or_else(|_| jiff::Timestamp::now());
    Ok(made.checked_add(jiff::SignedDuration::try_from(window).unwrap_or_default()).ok())
}

/// When the time trigger of `a` fires: `hours` after the last backup (or
/// after the first unsaved write, if there never was one).
fn time_due_at(a: &sync_state::Activity, hours: Duration) -> Option<jiff::Timestamp> {
    let since = a.last_backup_at.as_deref().or(a.first_unsaved_write_at.as_deref()).and_then(parse)?;
    since.checked_add(jiff::SignedDuration::try_from(hours).ok()?).ok()
}

/// The earliest moment something becomes due (a retry, a time trigger or
/// the replication window in effect, `window`).
pub async fn next_due(ctx: &Context, window: Duration) -> Result<Option<tokio::time::Instant>> {
    let state = &ctx.dbs().state;
    let mut times: Vec<jiff::Timestamp> = Vec::new();
    for p in sync_state::pending(state).await? {
        times.extend(p.next_attempt_at.as_deref().and_then(parse));
    }
    for db in super::DATABASES {
        let a = sync_state::activity(state, db).await?;
        if a.writes_since_backup > 0 {
            times.extend(time_due_at(&a, ctx.config().sync.backup_on_hours));
            if !ctx.config().sync.exchange {
                times.extend(window_due_at(&a, window));
            }
        }
        if ctx.config().sync.exchange {
            times.extend(publish_due_at(ctx, db, window).await?);
        }
    }
    Ok(times.into_iter().min().map(|t| tokio::time::Instant::now() + until(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let (i, m) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(0, i, m, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(1, i, m, 0.5), Duration::from_secs(60));
        assert_eq!(backoff(3, i, m, 0.5), Duration::from_secs(240));
        assert_eq!(backoff(20, i, m, 0.5), m);
        assert_eq!(backoff(1, i, m, 0.0), Duration::from_secs(48));
        assert!(backoff(1, i, m, 0.999) < Duration::from_secs(72));
        assert!(backoff(40, i, m, 1.0) <= m);
    }

    #[test]
    fn the_time_trigger_counts_from_the_last_backup() {
        let a = sync_state::Activity {
            writes_since_backup: 1,
            first_unsaved_write_at: Some("2026-01-02T00:00:00Z".into()),
            last_backup_at: Some("2026-01-01T00:00:00Z".into()),
            last_backup_key: None,
        };
        let at = time_due_at(&a, Duration::from_secs(24 * 3600)).map(|t| t.to_string());
        assert_eq!(at.as_deref(), Some("2026-01-02T00:00:00Z"));
        let never = sync_state::Activity { last_backup_at: None, ..a };
        let at = time_due_at(&never, Duration::from_secs(3600)).map(|t| t.to_string());
        assert_eq!(at.as_deref(), Some("2026-01-02T01:00:00Z"));
    }

    #[test]
    fn the_window_counts_from_the_oldest_unsaved_write_and_is_off_at_zero() {
        let a = sync_state::Activity {
            writes_since_backup: 3,
            first_unsaved_write_at: Some("2026-01-02T00:00:00Z".into()),
            last_backup_at: Some("2026-01-01T00:00:00Z".into()),
            last_backup_key: None,
        };
        let at = window_due_at(&a, Duration::from_secs(10)).map(|t| t.to_string());
        assert_eq!(at.as_deref(), Some("2026-01-02T00:00:10Z"));
        assert_eq!(window_due_at(&a, Duration::ZERO), None);
        assert_eq!(Due::Window.reason(), Reason::Scheduled);
    }

    #[test]
    fn retries_keep_their_reason() {
        assert_eq!(Due::Retry("parts-generated".into()).reason(), Reason::PartsGenerated);
        assert_eq!(Due::Count(10).reason(), Reason::Scheduled);
    }
}

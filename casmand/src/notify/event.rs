//! What is notified, as data: one [`Event`] per thing an operator must
//! hear about, written as a stable JSON object (documented in the README,
//! "Monitoring and alerts"):
//!
//! ```json
//! {"event": "backup_failing", "database": "parts.db", "site": "field-1",
//!  "time": "2026-03-01T12:00:00Z", "message": "parts.db: backups failing for 31m ...",
//!  "details": {"attempts": 4, "failing_since": "2026-03-01T11:29:00Z", "error": "..."}}
//! ```
//!
//! `database` is `null` for events about the whole store or the daemon
//! (quota, `daemon_failed`). Fields
//! are only ever added, never renamed; `details` differs per event.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The kinds of event, by their `event` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Backups of a database have failed beyond `notify.after` (or
    /// `notify.after_attempts`).
    BackupFailing,
    /// A backup landed again after a notified failure.
    BackupRecovered,
    /// The fleet's use of a free-tier resource passed `quota.warn_threshold`.
    QuotaWarning,
    /// ...passed `quota.block_threshold`: operations using it are refused.
    QuotaBlocked,
    /// A stored version failed its download check (maintenance).
    VerifyFailed,
    /// A database's manifest (the store's index) is missing or unreadable.
    IndexLost,
    /// It was rebuilt from the version objects.
    IndexRepaired,
    /// The disk holding the data directory is full.
    DiskFull,
    /// casmand itself failed (told by `casmand --notify-failed UNIT`, run
    /// by systemd's `OnFailure=`).
    DaemonFailed,
    /// Changes made at different sites broke a rule once combined (the
    /// change exchange): told once per conflict.
    Conflict,
}

impl Kind {
    /// The `event` name (`backup_failing`, ...), also `CASMAN_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BackupFailing => "backup_failing",
            Kind::BackupRecovered => "backup_recovered",
            Kind::QuotaWarning => "quota_warning",
            Kind::QuotaBlocked => "quota_blocked",
            Kind::VerifyFailed => "verify_failed",
            Kind::IndexLost => "index_lost",
            Kind::IndexRepaired => "index_repaired",
            Kind::DiskFull => "disk_full",
            Kind::DaemonFailed => "daemon_failed",
            Kind::Conflict => "conflict",
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// The database concerned, if one.
    pub database: Option<String>,
    /// When it was noticed.
    pub time: jiff::Timestamp,
    /// One line for people.
    pub message: String,
    /// Figures particular to the kind.
    pub details: Map<String, Value>,
    /// Events with the same key are notified once (see `gate`); `None`:
    /// every time.
    pub once: Option<String>,
}

fn details(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn human(d: std::time::Duration) -> String {
    casman_proto::duration::format(std::time::Duration::from_secs(d.as_secs()))
}

impl Event {
    fn new(kind: Kind, database: Option<&str>, time: jiff::Timestamp, message: String, d: Value) -> Event {
        let once = Some(match database {
            Some(db) => format!("{}/{db}", kind.as_str()),
            None => kind.as_str().to_owned(),
        });
        Event { kind, database: database.map(str::to_owned), time, message, details: details(d), once }
    }

    /// Backups of `db` failing since `since` (`attempts` in a row, the last
    /// with `error`), seen at `now`.
    pub fn backup_failing(
        db: &str,
        since: jiff::Timestamp,
        attempts: u32,
        error: &str,
        now: jiff::Timestamp,
    ) -> Event {
        let age = std::time::Duration::from_secs(crate::metrics::age(since, now));
        let message = format!(
            "{db}: backups failing for {} ({attempts} failed attempt(s), retrying): {error}",
            human(age)
        );
        let d = json!({
            "failing_since": crate::timestamp::format(since),
            "failing_seconds": age.as_secs(),
            "attempts": attempts,
            "error": error,
        });
        Event::new(Kind::BackupFailing, Some(db), now, message, d)
    }

    /// A backup of `db` stored as `key` after failing since `since`.
    pub fn backup_recovered(db: &str, since: jiff::Timestamp, key: &str, now: jiff::Timestamp) -> Event {
        let age = std::time::Duration::from_secs(crate::metrics::age(since, now));
        let message = format!("{db}: backups work again ({key} stored after {} of failures)", human(age));
        let d = json!({
            "failing_since": crate::timestamp::format(since),
            "failing_seconds": age.as_secs(),
            "key": key,
        });
        Event::new(Kind::BackupRecovered, Some(db), now, message, d)
    }

    /// The fleet's use of `resource` (`class_a`, `class_b`, `storage`) in
    /// `month` is `fraction` of the free tier, at or past `threshold`;
    /// `blocked` when that is the block threshold. Notified once per
    /// resource, level and month.
    pub fn quota(
        resource: &str,
        month: &str,
        fraction: f64,
        threshold: f64,
        blocked: bool,
        now: jiff::Timestamp,
    ) -> Event {
        let (kind, what) = if blocked {
            (Kind::QuotaBlocked, "operations using it are refused until the month ends")
        } else {
            (Kind::QuotaWarning, "nearing the block threshold")
        };
        let message = format!(
            "the object store's free tier: {resource} at {:.1}% in {month} (threshold {:.0}%): {what}",
            fraction * 100.0,
            threshold * 100.0
        );
        let d = json!({"resource": resource, "month": month, "used_ratio": fraction, "threshold": threshold});
        let mut e = Event::new(kind, None, now, message, d);
        e.once = Some(format!("{}/{resource}/{month}", kind.as_str()));
        e
    }

    /// The stored version `key` of `db` failed its check with `problem`.
    /// Notified once per version.
    pub fn verify_failed(db: &str, key: &str, problem: &str, now: jiff::Timestamp) -> Event {
        let message = format!("{db}: stored version {key} failed verification: {problem}");
        let mut e =
            Event::new(Kind::VerifyFailed, Some(db), now, message, json!({"key": key, "problem": problem}));
        e.once = Some(format!("verify_failed/{key}"));
        e
    }

    /// The manifest of `db` is missing or unreadable (`problem`), with
    /// `objects` version objects in the store.
    /// `objects` is `None` when they were not counted.
    pub fn index_lost(db: &str, problem: &str, objects: Option<usize>, now: jiff::Timestamp) -> Event {
        let remain = objects.map_or_else(String::new, |n| format!("; {n} version object(s) remain"));
        let message = format!("{db}: the store's index (manifest) is lost: {problem}{remain}");
        Event::new(Kind::IndexLost, Some(db), now, message, json!({"problem": problem, "objects": objects}))
    }

    /// The manifest of `db` was rebuilt from the objects, listing `versions`.
    pub fn index_repaired(db: &str, versions: usize, now: jiff::Timestamp) -> Event {
        let message = format!("{db}: the store's index was rebuilt from the objects ({versions} versions)");
        let mut e = Event::new(Kind::IndexRepaired, Some(db), now, message, json!({"versions": versions}));
        // Told every time it happens.
        e.once = None;
        e
    }

    /// A conflict `c` of the change exchange stands in `db`. Told once per
    /// conflict (its kind, part and the other ends).
    pub fn conflict(db: &str, c: &crate::db::changes::Conflict, now: jiff::Timestamp) -> Event {
        let mut e = Event::new(
            Kind::Conflict,
            Some(db),
            now,
            format!("{db}: conflict ({}): {}", c.kind, c.detail),
            json!({"kind": c.kind, "subject": c.subject, "with": c.with}),
        );
        e.once = Some(format!("conflict/{db}/{}/{}/{}", c.kind, c.subject, c.with.join(",")));
        e
    }

    /// The disk is full: `what` failed for `db` with `error`.
    pub fn disk_full(db: Option<&str>, error: &str, now: jiff::Timestamp) -> Event {
        let message = match db {
            Some(db) => format!("{db}: the disk is full: {error}"),
            None => format!("the disk is full: {error}"),
        };
        let mut e = Event::new(Kind::DiskFull, db, now, message, json!({"error": error}));
        e.once = Some("disk_full".into());
        e
    }

    /// The systemd unit `unit` failed; `monitor` holds what systemd tells an
    /// `OnFailure=` unit (`MONITOR_SERVICE_RESULT`, `MONITOR_EXIT_CODE`,
    /// `MONITOR_EXIT_STATUS`), by name in lower case without the prefix.
    pub fn daemon_failed(unit: &str, monitor: &[(String, String)], now: jiff::Timestamp) -> Event {
        let get = |k: &str| monitor.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let why = match (get("service_result"), get("exit_code"), get("exit_status")) {
            (Some(r), Some(c), Some(s)) => format!(" ({r}: {c} {s})"),
            (Some(r), _, _) => format!(" ({r})"),
            _ => String::new(),
        };
        let message = format!("{unit} failed{why}: casmand is not running; nothing is backed up until it is");
        let mut d = Map::new();
        d.insert("unit".into(), Value::from(unit));
        for (k, v) in monitor {
            d.insert(k.clone(), Value::from(v.as_str()));
        }
        Event { kind: Kind::DaemonFailed, database: None, time: now, message, details: d, once: None }
    }

    /// The JSON object notified for this event at `site`.
    pub fn to_json(&self, site: &str) -> Value {
        json!({
            "event": self.kind.as_str(),
            "database": self.database,
            "site": site,
            "time": crate::timestamp::format(self.time),
            "message": self.message,
            "details": self.details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn the_json_shape_is_stable() {
        let e = Event::backup_failing(
            "parts.db",
            t("2026-03-01T11:29:00Z"),
            4,
            "the store is unreachable",
            t("2026-03-01T12:00:00Z"),
        );
        let v = e.to_json("field-1");
        let keys: Vec<&str> =
            v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, ["database", "details", "event", "message", "site", "time"]);
        assert_eq!(v["event"], "backup_failing");
        assert_eq!(v["database"], "parts.db");
        assert_eq!(v["site"], "field-1");
        assert_eq!(v["time"], "2026-03-01T12:00:00Z");
        assert_eq!(v["details"]["attempts"], 4);
        assert_eq!(v["details"]["failing_seconds"], 1860);
        assert_eq!(v["details"]["failing_since"], "2026-03-01T11:29:00Z");
        assert_eq!(
            v["message"],
            "parts.db: backups failing for 31m (4 failed attempt(s), retrying): the store is unreachable"
        );
        let q = Event::quota("class_a", "2026-03", 0.81, 0.8, false, t("2026-03-01T12:00:00Z")).to_json("s");
        assert_eq!(q["event"], "quota_warning");
        assert!(q["database"].is_null());
        assert_eq!(q["details"]["resource"], "class_a");
    }

    #[test]
    fn dedupe_keys_follow_what_is_told_once() {
        let now = t("2026-03-01T12:00:00Z");
        let a = Event::quota("storage", "2026-03", 0.96, 0.95, true, now);
        let b = Event::quota("storage", "2026-04", 0.96, 0.95, true, now);
        assert_ne!(a.once, b.once, "a new month is told again");
        assert_eq!(
            Event::verify_failed("parts.db", "k1", "sha", now).once.as_deref(),
            Some("verify_failed/k1")
        );
        assert_eq!(Event::index_repaired("parts.db", 3, now).once, None);
        assert_eq!(
            Event::index_lost("parts.db", "missing", Some(3), now).once.as_deref(),
            Some("index_lost/parts.db")
        );
    }
}

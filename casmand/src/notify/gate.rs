//! Deciding what is told, and when (pure; time is an argument): a failing
//! backup once it has failed for `notify.after` (or `after_attempts` times),
//! once, however many retries follow; its recovery only when its failure
//! was told; every other event once per its key ([`Event::once`]); the
//! success ping at most once per `success_ping_every`.
//!
//! The gate lives in memory: after a restart, a failure still going on is
//! told again once (state.db keeps when it began, so `after` still counts
//! from then), and one that ends at the first attempt is told as recovered
//! if it had lasted past `after`.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use super::event::{Event, Kind};

/// Free space under which the data directory's disk counts as full: SQLite
/// cannot commit much, a snapshot cannot be taken.
pub const DISK_FULL_BELOW: u64 = 1024 * 1024;

/// A backup failing now.
#[derive(Debug, Clone)]
struct Failing {
    since: jiff::Timestamp,
    attempts: u32,
    error: String,
    told: bool,
}

/// What has been told, and the failures being watched.
#[derive(Debug, Default)]
pub struct Gate {
    after: Duration,
    after_attempts: u32,
    ping_every: Duration,
    told: HashSet<String>,
    failing: HashMap<String, Failing>,
    last_ping: Option<jiff::Timestamp>,
}

fn plus(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
}

impl Gate {
    /// A gate telling failures after `after` or `after_attempts` (0: by time
    /// only), pinging at most once per `ping_every`.
    pub fn new(after: Duration, after_attempts: u32, ping_every: Duration) -> Gate {
        Gate { after, after_attempts, ping_every, ..Gate::default() }
    }

    /// A backup of `db` failed: `attempts` in a row since `since`, the last
    /// with `error`. Returns the event when the failure is to be told now.
    /// The `since` of the first report of a failure is kept (the caller
    /// gives the precise time of a first attempt, state.db's record of an
    /// older one).
    pub fn failed(
        &mut self,
        db: &str,
        since: jiff::Timestamp,
        attempts: u32,
        error: &str,
        now: jiff::Timestamp,
    ) -> Option<Event> {
        let f = self.failing.entry(db.to_owned()).or_insert_with(|| Failing {
            since,
            attempts,
            error: error.to_owned(),
            told: false,
        });
        f.attempts = attempts;
        error.clone_into(&mut f.error);
        self.tell_failing(db, now)
    }

    fn tell_failing(&mut self, db: &str, now: jiff::Timestamp) -> Option<Event> {
        let f = self.failing.get_mut(db)?;
        let by_attempts = self.after_attempts > 0 && f.attempts >= self.after_attempts;
        if f.told || !(by_attempts || plus(f.since, self.after) <= now) {
            return None;
        }
        f.told = true;
        Some(Event::backup_failing(db, f.since, f.attempts, &f.error, now))
    }

    /// When the next failure becomes due to be told by time, if any.
    pub fn next_due(&self) -> Option<jiff::Timestamp> {
        self.failing.values().filter(|f| !f.told).map(|f| plus(f.since, self.after)).min()
    }

    /// The failures due to be told at `now`.
    pub fn due(&mut self, now: jiff::Timestamp) -> Vec<Event> {
        let mut dbs: Vec<String> = self.failing.keys().cloned().collect();
        dbs.sort();
        dbs.iter().filter_map(|db| self.tell_failing(db, now)).collect()
    }

    /// A backup of `db` was stored as `key`, ending the failure
    /// `was_failing` (since when, failed attempts) that state.db kept: its
    /// recovery, when its failure was told, or, when this process never saw
    /// it (a restart), when it had lasted past `after` or `after_attempts`
    /// (it was told before the restart, or would have been). A full disk or
    /// a lost index of `db` told before may be told again should it recur.
    pub fn stored(
        &mut self,
        db: &str,
        key: &str,
        was_failing: Option<(jiff::Timestamp, u32)>,
        now: jiff::Timestamp,
    ) -> Option<Event> {
        self.told.remove(Kind::DiskFull.as_str());
        self.told.remove(&format!("{}/{db}", Kind::IndexLost.as_str()));
        match self.failing.remove(db) {
            Some(f) => f.told.then(|| Event::backup_recovered(db, f.since, key, now)),
            None => {
                let (since, attempts) = was_failing?;
                let long = (self.after_attempts > 0 && attempts >= self.after_attempts)
                    || plus(since, self.after) <= now;
                long.then(|| Event::backup_recovered(db, since, key, now))
            }
        }
    }

    /// The file system holding the data directory has `free` bytes left:
    /// `disk_full` once it drops under [`DISK_FULL_BELOW`], told again only
    /// after it got back to twice that.
    pub fn disk_space(&mut self, free: u64, path: &str, now: jiff::Timestamp) -> Option<Event> {
        if free >= 2 * DISK_FULL_BELOW {
            self.told.remove(Kind::DiskFull.as_str());
            return None;
        }
        if free >= DISK_FULL_BELOW {
            return None;
        }
        let error = format!("{free} bytes left on the file system holding {path}");
        self.pass(Event::disk_full(None, &error, now))
    }

    /// `e` unless an event with its key was told already.
    pub fn pass(&mut self, e: Event) -> Option<Event> {
        if e.kind == Kind::IndexRepaired
            && let Some(db) = &e.database
        {
            self.told.remove(&format!("{}/{db}", Kind::IndexLost.as_str()));
        }
        match &e.once {
            Some(key) if !self.told.insert(key.clone()) => None,
            _ => Some(e),
        }
    }

    /// Whether the success ping is to be sent at `now` (and, if so, it
    /// counts as sent). A clock set back allows one.
    pub fn ping(&mut self, now: jiff::Timestamp) -> bool {
        let due = match self.last_ping {
            None => true,
            Some(last) => now < last || plus(last, self.ping_every) <= now,
        };
        if due {
            self.last_ping = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_772_000_000 + secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_failure_is_told_once_after_the_delay_and_its_recovery_once() {
        let mut g = Gate::new(Duration::from_secs(600), 0, Duration::from_secs(3600));
        // Retries within the delay: nothing yet.
        assert!(g.failed("parts.db", t(0), 1, "unreachable", t(0)).is_none());
        assert!(g.failed("parts.db", t(0), 2, "unreachable", t(60)).is_none());
        assert_eq!(g.next_due(), Some(t(600)));
        assert!(g.due(t(599)).is_empty());
        // Due by time, between two retries.
        let told = g.due(t(600));
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].kind, Kind::BackupFailing);
        assert_eq!(told[0].details["attempts"], 2);
        // More retries: not told again.
        for i in 3..10 {
            assert!(g.failed("parts.db", t(0), i, "unreachable", t(600 + i64::from(i))).is_none());
        }
        assert!(g.due(t(10_000)).is_empty());
        assert_eq!(g.next_due(), None);
        let back = g.stored("parts.db", "k", Some((t(0), 12)), t(1200));
        assert_eq!(back.map(|e| e.kind), Some(Kind::BackupRecovered));
        // A second recovery without a failure: nothing.
        assert!(g.stored("parts.db", "k2", None, t(1300)).is_none());
    }

    #[test]
    fn a_short_failure_is_not_told_at_all() {
        let mut g = Gate::new(Duration::from_secs(600), 0, Duration::from_secs(3600));
        assert!(g.failed("parts.db", t(0), 1, "x", t(0)).is_none());
        assert!(g.stored("parts.db", "k", Some((t(0), 1)), t(30)).is_none());
        assert!(g.due(t(10_000)).is_empty());
    }

    #[test]
    fn after_a_restart_a_long_failure_ending_is_told() {
        // This process never saw the failure; state.db says it began long ago.
        let mut g = Gate::new(Duration::from_secs(600), 0, Duration::from_secs(3600));
        let back = g.stored("parts.db", "k", Some((t(0), 40)), t(5000));
        assert_eq!(back.as_ref().map(|e| e.kind), Some(Kind::BackupRecovered));
        assert_eq!(back.map(|e| e.details["failing_seconds"].clone()), Some(5000.into()));
        // A short one, or none at all: nothing.
        assert!(g.stored("parts.db", "k", Some((t(4900), 1)), t(5000)).is_none());
        assert!(g.stored("parts.db", "k", None, t(5000)).is_none());
    }

    #[test]
    fn attempts_can_tell_before_the_delay() {
        let mut g = Gate::new(Duration::from_secs(3600), 3, Duration::from_secs(3600));
        assert!(g.failed("a.db", t(0), 2, "x", t(10)).is_none());
        assert!(g.failed("a.db", t(0), 3, "x", t(20)).is_some());
        assert!(g.failed("a.db", t(0), 4, "x", t(30)).is_none());
    }

    #[test]
    fn other_events_are_told_once_per_key() {
        let mut g = Gate::default();
        let full = || Event::disk_full(None, "no space", t(0));
        assert!(g.pass(full()).is_some());
        assert!(g.pass(full()).is_none());
        // Once a backup lands the disk had room: a new full disk is told.
        g.stored("parts.db", "k", None, t(5));
        assert!(g.pass(full()).is_some());
        let lost = || Event::index_lost("parts.db", "missing", Some(2), t(0));
        assert!(g.pass(lost()).is_some());
        assert!(g.pass(lost()).is_none());
        assert!(g.pass(Event::index_repaired("parts.db", 2, t(1))).is_some());
        assert!(g.pass(Event::index_repaired("parts.db", 2, t(2))).is_some(), "each repair is told");
        assert!(g.pass(lost()).is_some(), "lost again after a repair");
    }

    #[test]
    fn a_full_disk_is_told_once_until_space_returns() {
        let mut g = Gate::default();
        assert!(g.disk_space(10 * DISK_FULL_BELOW, "/d", t(0)).is_none());
        let full = g.disk_space(4096, "/d", t(1));
        assert_eq!(full.as_ref().map(|e| e.kind), Some(Kind::DiskFull));
        assert!(full.is_some_and(|e| e.message.contains("4096 bytes left") && e.message.contains("/d")));
        assert!(g.disk_space(0, "/d", t(2)).is_none(), "still full: not told again");
        // A little freed: not yet back.
        assert!(g.disk_space(DISK_FULL_BELOW + 1, "/d", t(3)).is_none());
        assert!(g.disk_space(0, "/d", t(4)).is_none());
        // Room again, then full again: told again.
        assert!(g.disk_space(3 * DISK_FULL_BELOW, "/d", t(5)).is_none());
        assert!(g.disk_space(0, "/d", t(6)).is_some());
    }

    #[test]
    fn the_success_ping_is_rate_limited() {
        let mut g = Gate::new(Duration::from_secs(600), 0, Duration::from_secs(3600));
        assert!(g.ping(t(0)));
        assert!(!g.ping(t(1)));
        assert!(!g.ping(t(3599)));
        assert!(g.ping(t(3600)));
        assert!(!g.ping(t(3700)));
        // The clock set back: one ping, then the interval again.
        assert!(g.ping(t(100)));
        assert!(!g.ping(t(200)));
    }
}

//! Wrong tokens, counted per client address: after [`MAX_FAILURES`] wrong
//! tokens (bearer, `?token=`, cookie, sign-in) within [`WINDOW`], requests
//! from that address that carry a token are answered 429 Too Many Requests
//! (with `Retry-After`) without the token being checked, until the window
//! ends. A right token does not reset the count (a client holding the site
//! token could otherwise interleave right and wrong ones to keep guessing
//! operator tokens), and one address's count never touches another's.
//!
//! The map is in memory, bounded by [`MAX_TRACKED`] addresses: expired
//! entries go first, then the oldest. Clients behind one proxy or NAT share
//! one address, hence one count.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Wrong tokens an address may send within [`WINDOW`] before it is throttled.
/// A technician mistyping a token a few times stays well below it; a guesser
/// gets 10 tries a minute instead of thousands a second.
pub const MAX_FAILURES: u32 = 10;

/// How long failures count: the window opens at an address's first failure
/// and the count starts again after it.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Addresses tracked at most (about 50 bytes each), so a flood from many
/// addresses cannot grow the map without bound.
pub const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the window opened (the first failure in it).
    since: Instant,
    failures: u32,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= WINDOW
    }
}

/// Failures per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    map: Mutex<HashMap<IpAddr, Entry>>,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // The map holds counters only: a panic elsewhere leaves it usable.
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `ip` must wait before its tokens are checked again, if it is
    /// throttled (at least one second, as `Retry-After` counts in seconds).
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.lock();
        let e = map.get(&ip)?;
        if e.failures < MAX_FAILURES || e.expired(now) {
            return None;
        }
        let left = WINDOW.saturating_sub(now.saturating_duration_since(e.since));
        Some(left.max(Duration::from_secs(1)))
    }

    /// Counts a wrong token from `ip`; returns the failures in its window.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> u32 {
        let mut map = self.lock();
        if !map.contains_key(&ip) && map.len() >= MAX_TRACKED {
            map.retain(|_, e| !e.expired(now));
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.since).map(|(ip, _)| *ip)
            {
                map.remove(&oldest);
            }
        }
        let e = map.entry(ip).or_insert(Entry { since: now, failures: 0 });
        if e.expired(now) {
            *e = Entry { since: now, failures: 0 };
        }
        e.failures = e.failures.saturating_add(1);
        e.failures
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// Whole seconds to announce in `Retry-After` (rounded up).
pub fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn throttled_after_the_limit_until_the_window_ends() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for i in 1..MAX_FAILURES {
            assert_eq!(t.failed(ip(1), t0), i);
            assert_eq!(t.blocked(ip(1), t0), None, "after {i} failures");
        }
        t.failed(ip(1), t0 + Duration::from_secs(10));
        assert_eq!(t.blocked(ip(1), t0 + Duration::from_secs(10)), Some(WINDOW - Duration::from_secs(10)));
        // Another address is not affected.
        assert_eq!(t.blocked(ip(2), t0), None);
        assert_eq!(t.failed(ip(2), t0), 1);
        // Near the end: at least one second; after it, checked again and counted afresh.
        assert_eq!(t.blocked(ip(1), t0 + WINDOW - Duration::from_millis(1)), Some(Duration::from_secs(1)));
        assert_eq!(t.blocked(ip(1), t0 + WINDOW), None);
        assert_eq!(t.failed(ip(1), t0 + WINDOW), 1);
        assert_eq!(t.blocked(ip(1), t0 + WINDOW), None);
    }

    #[test]
    fn memory_is_bounded_and_expired_entries_go_first() {
        let t = Throttle::default();
        let t0 = Instant::now();
        let n = u32::try_from(MAX_TRACKED).unwrap_or(u32::MAX);
        for i in 0..n {
            t.failed(ip(i), t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // Full, nothing expired: the oldest goes.
        t.failed(ip(n), t0 + Duration::from_secs(1));
        assert_eq!(t.tracked(), MAX_TRACKED);
        assert_eq!(t.failed(ip(0), t0 + Duration::from_secs(1)), 1, "ip 0 was evicted and starts over");
        // Much later everything expired: one sweep empties the map.
        t.failed(ip(n + 1), t0 + WINDOW * 3);
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(3)), 3);
    }
}

//! The one accounting point every object-store request passes through:
//! requests counted by class as Cloudflare R2 bills them (Class A: writes and
//! listings; Class B: reads and HEADs; deletes are free). The quota ledger
//! ([`crate::backup::quota`]) builds on these counts: every request recorded here is
//! also counted there and persisted in state.db.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

pub use super::quota::RequestClass;

/// The kinds of request the store makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// PutObject.
    Put,
    /// CopyObject (storage-class change).
    Copy,
    /// ListObjectsV2.
    List,
    /// GetObject (including a conditional GET answered 304).
    Get,
    /// HeadObject.
    Head,
    /// DeleteObject.
    Delete,
}

impl Request {
    /// Its billing class.
    pub fn class(self) -> RequestClass {
        match self {
            Request::Put | Request::Copy | Request::List => RequestClass::A,
            Request::Get | Request::Head => RequestClass::B,
            Request::Delete => RequestClass::Free,
        }
    }
}

/// Counts of requests since the daemon started (the persistent monthly
/// ledger lives in state.db).
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    class_a: AtomicU64,
    class_b: AtomicU64,
    free: AtomicU64,
    quota: std::sync::OnceLock<crate::backup::quota::Quota>,
}

impl Accounting {
    /// Counts one request.
    pub fn record(&self, r: Request) {
        let c = match r.class() {
            RequestClass::A => &self.inner.class_a,
            RequestClass::B => &self.inner.class_b,
            RequestClass::Free => &self.inner.free,
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.quota().record(r.class());
    }

    /// Sets the quota policy from the configuration (done once, by
    /// [`super::store::Store::from_config`]); later calls have no effect.
    pub fn configure(&self, cfg: &crate::config::Config) {
        let _ = self
            .inner
            .quota
            .set(crate::backup::quota::Quota::new(crate::backup::quota::Settings::from_config(cfg)));
    }

    /// The quota ledger these counts feed (default settings if never configured).
    pub fn quota(&self) -> &crate::backup::quota::Quota {
        self.inner
            .quota
            .get_or_init(|| crate::backup::quota::Quota::new(crate::backup::quota::Settings::default()))
    }

    /// (Class A, Class B, free) requests so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.inner.class_a.load(Ordering::Relaxed),
            self.inner.class_b.load(Ordering::Relaxed),
            self.inner.free.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_r2_billing() {
        let a = Accounting::default();
        for r in [Request::Put, Request::List, Request::Copy, Request::Get, Request::Head, Request::Delete] {
            a.record(r);
        }
        assert_eq!(a.totals(), (3, 2, 1));
    }
}

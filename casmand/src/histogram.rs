//! A Prometheus histogram kept in memory: fixed bucket bounds, cumulative
//! counts, the sum and the count of observations, read as a [`Figures`]
//! snapshot for `/metrics` (see `crate::metrics::render`).

use std::sync::Mutex;

/// Bucket bounds of request durations, seconds (gRPC requests: a scan is
/// a few milliseconds, a backup or restore up to minutes).
pub const SECONDS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Bucket bounds of group-commit batch sizes, requests (up to `server.write_batch`).
pub const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// Upper bounds and the observations at or under each (cumulative);
    /// `+Inf` is [`Figures::count`].
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// A histogram with fixed bucket bounds. Observing takes a short lock.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<Figures>,
}

impl Histogram {
    /// An empty histogram with `bounds` (increasing).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        let buckets = bounds.iter().map(|b| (*b, 0)).collect();
        Histogram { bounds, inner: Mutex::new(Figures { buckets, sum: 0.0, count: 0 }) }
    }

    /// Counts `v`.
    pub fn observe(&self, v: f64) {
        let mut f = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (bound, n) in f.buckets.iter_mut() {
            if v <= *bound {
                *n += 1;
            }
        }
        f.sum += v;
        f.count += 1;
    }

    /// A snapshot.
    pub fn figures(&self) -> Figures {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The bucket bounds.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::new(BATCH);
        for v in [1.0, 3.0, 3.0, 300.0] {
            h.observe(v);
        }
        let f = h.figures();
        assert_eq!(f.count, 4);
        assert_eq!(f.sum, 307.0);
        assert_eq!(f.buckets[0], (1.0, 1));
        assert_eq!(f.buckets[1], (2.0, 1));
        assert_eq!(f.buckets[2], (4.0, 3));
        assert_eq!(f.buckets.last(), Some(&(256.0, 3)), "300 is only in +Inf");
    }
}

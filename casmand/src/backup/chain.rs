//! Which stored object a new delta is computed against. Version `d` of a
//! chain (the `d`-th stored since its full snapshot) is a delta against
//! version `d − 8^k`, where `8^k` is the place of the lowest non-zero digit
//! of `d` in base 8: versions 1–7 each against the one before, 8 against the
//! full snapshot, 9–15 against 8, 16 against 8, 64 against the full
//! snapshot. Rebuilding version `d` then takes the full snapshot and as many
//! deltas as the digits of `d` add up to (50 = 0o62: 8 deltas; at most 12
//! in the default chain of 50) instead of `d`, and a delta carries the
//! pages of at most 8 versions' changes (one when `d` is not a multiple of 8).
//!
//! Deltas are still written one per version, in order, and each names its
//! base in its header and in the manifest (`delta_base`): readers follow
//! the links and never need this rule.

use std::sync::Arc;

use super::delta::PageHash;

/// The fan-out: a delta covers the changes of 1, 8, 64, ... versions.
pub const FANOUT: u32 = 8;

/// The place value `8^k` of the lowest non-zero base-8 digit of `depth` (≥ 1).
pub fn span(depth: u32) -> u32 {
    let mut span = 1;
    while depth.is_multiple_of(span * FANOUT) && span * FANOUT <= depth {
        span *= FANOUT;
    }
    span
}

/// How many deltas rebuilding version `depth` applies (its base-8 digit sum).
pub fn links(mut depth: u32) -> u32 {
    let mut n = 0;
    while depth > 0 {
        n += depth % FANOUT;
        depth /= FANOUT;
    }
    n
}

/// The page hashes of a stored object and where it stands in its chain.
#[derive(Debug, Clone)]
pub struct PageRecord {
    /// Its key.
    pub key: String,
    /// Its content SHA-256.
    pub content_sha: String,
    /// Page size of the file.
    pub page_size: u32,
    /// SHA-256 of every page.
    pub hashes: Arc<Vec<PageHash>>,
    /// Versions stored since the chain's full snapshot (0: the full snapshot).
    pub depth: u32,
    /// Stored bytes of the chain's deltas up to this one.
    pub delta_bytes: u64,
    /// Stored bytes of the chain's full snapshot.
    pub full_bytes: u64,
}

/// Per database, the objects later deltas may be computed against: for
/// each `k`, the newest stored version whose depth is a multiple of `8^k`
/// (the full snapshot for every `k` right after it is stored).
#[derive(Debug, Clone)]
pub struct Bases {
    levels: Vec<PageRecord>,
}

impl Bases {
    /// Right after `full` (depth 0) was stored.
    pub fn full(full: PageRecord) -> Bases {
        Bases { levels: vec![full] }
    }

    /// The newest stored version: the content a next delta starts from.
    pub fn newest(&self) -> &PageRecord {
        &self.levels[0]
    }

    /// The depth of the next version and the record its delta is computed
    /// against.
    pub fn next(&self) -> (u32, &PageRecord) {
        let depth = self.newest().depth + 1;
        let level = span(depth).ilog(FANOUT) as usize;
        // Levels above those recorded are the full snapshot, the last entry.
        let base = self.levels.get(level).unwrap_or(&self.levels[self.levels.len() - 1]);
        (depth, base)
    }

    /// Records `stored`, the version of depth `self.next().0` just stored.
    pub fn push(&mut self, stored: PageRecord) {
        let level = span(stored.depth).ilog(FANOUT) as usize;
        let full = self.levels[self.levels.len() - 1].clone();
        while self.levels.len() <= level + 1 {
            self.levels.push(full.clone());
        }
        for slot in &mut self.levels[..=level] {
            *slot = stored.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(depth: u32) -> PageRecord {
        PageRecord {
            key: format!("v{depth}"),
            content_sha: format!("s{depth}"),
            page_size: 4096,
            hashes: Arc::default(),
            depth,
            delta_bytes: 0,
            full_bytes: 0,
        }
    }

    #[test]
    fn each_version_is_a_delta_against_the_one_its_lowest_digit_points_to() {
        assert_eq!([1, 7, 8, 9, 16, 24, 48, 50, 64].map(span), [1, 1, 8, 1, 8, 8, 8, 1, 64]);
        assert_eq!([1, 7, 8, 15, 47, 50, 63].map(links), [1, 7, 1, 8, 12, 8, 14]);
        let mut bases = Bases::full(record(0));
        let mut base_of = vec![None];
        for _ in 1..=70 {
            let (depth, base) = bases.next();
            base_of.push(Some(base.depth));
            bases.push(record(depth));
        }
        for (d, want) in
            [(1, 0), (7, 6), (8, 0), (9, 8), (15, 14), (16, 8), (17, 16), (50, 49), (56, 48), (64, 0)]
        {
            assert_eq!(base_of[d], Some(want), "base of version {d}");
        }
        // Following the bases back from any version takes `links` steps.
        for d in 1..=70u32 {
            let (mut at, mut steps) = (d, 0);
            while at > 0 {
                at = base_of[at as usize].unwrap_or(0);
                steps += 1;
            }
            assert_eq!(steps, links(d), "version {d}");
        }
    }
}

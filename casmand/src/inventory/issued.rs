//! The part numbers known to have been issued, per (type, polarization), as
//! disjoint runs of numbers. Generation continues one above the highest known
//! number inside a site's range, so a number once known is never issued again,
//! whatever database file is later restored, pulled, merged or cleared.
//! Runs (not a single high-water mark) keep other sites' numbers, which lie
//! outside this site's range, from hiding this site's own mark.

use std::collections::BTreeMap;

use super::{PartNumber, PartType, Polarization};

/// Known issued numbers: for each (type, polarization), sorted disjoint runs
/// `(first, last)`, adjacent runs joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issued {
    runs: BTreeMap<(PartType, Polarization), Vec<(u32, u32)>>,
}

impl Issued {
    /// An empty set.
    pub fn new() -> Issued {
        Issued::default()
    }

    /// Adds the numbers `first..=last` of (`part_type`, `pol`); an empty
    /// range (`first > last`) or a zero adds nothing below 1.
    pub fn add_run(&mut self, part_type: PartType, pol: Polarization, first: u32, last: u32) {
        let first = first.max(1);
        if first > last {
            return;
        }
        insert(self.runs.entry((part_type, pol)).or_default(), first, last);
    }

    /// Adds one part number.
    pub fn add(&mut self, number: PartNumber) {
        self.add_run(number.part_type(), number.polarization(), number.number(), number.number());
    }

    /// Adds a stored part id if it is a part number (any spelling);
    /// historic formats, SNAP ports and anything else are ignored.
    pub fn add_id(&mut self, id: &str) {
        if let Some(n) = PartNumber::parse_stored(id) {
            self.add(n);
        }
    }

    /// Adds everything `other` holds.
    pub fn extend(&mut self, other: &Issued) {
        for (&(t, p), runs) in &other.runs {
            for &(a, b) in runs {
                self.add_run(t, p, a, b);
            }
        }
    }

    /// The runs of (`part_type`, `pol`).
    pub fn runs(&self, part_type: PartType, pol: Polarization) -> &[(u32, u32)] {
        self.runs.get(&(part_type, pol)).map_or(&[], Vec::as_slice)
    }

    /// Every (type, polarization) with its runs.
    pub fn iter(&self) -> impl Iterator<Item = (PartType, Polarization, &[(u32, u32)])> {
        self.runs.iter().map(|(&(t, p), r)| (t, p, r.as_slice()))
    }

    /// Whether `number` is known as issued.
    pub fn contains(&self, number: PartNumber) -> bool {
        let n = number.number();
        self.runs(number.part_type(), number.polarization()).iter().any(|&(a, b)| a <= n && n <= b)
    }

    /// The highest known number of (`part_type`, `pol`) within `lo..=hi`.
    pub fn highest_in(&self, part_type: PartType, pol: Polarization, lo: u32, hi: u32) -> Option<u32> {
        self.runs(part_type, pol).iter().filter(|&&(a, b)| b >= lo && a <= hi).map(|&(_, b)| b.min(hi)).max()
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.runs.values().all(Vec::is_empty)
    }

    /// Whether every number `other` knows is known here.
    pub fn covers(&self, other: &Issued) -> bool {
        let mut joined = self.clone();
        joined.extend(other);
        joined == *self
    }
}

/// Inserts `first..=last` into sorted disjoint runs, joining it with the
/// runs it overlaps or touches (a binary search, no re-sort).
fn insert(runs: &mut Vec<(u32, u32)>, first: u32, last: u32) {
    // Runs ending before `first - 1` stay left of the new one.
    let start = runs.partition_point(|&(_, b)| b.saturating_add(1) < first);
    // Runs starting after `last + 1` stay right of it.
    let end = runs.partition_point(|&(a, _)| a <= last.saturating_add(1));
    if start == end {
        runs.insert(start, (first, last));
        return;
    }
    let joined = (first.min(runs[start].0), last.max(runs[end - 1].1));
    runs.splice(start..end, [joined]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANT: PartType = PartType::Antenna;
    const P1: Polarization = Polarization::P1;

    #[test]
    fn runs_join_when_they_touch_or_overlap() {
        let mut s = Issued::new();
        s.add_run(ANT, P1, 1, 3);
        s.add_run(ANT, P1, 4, 5);
        s.add_run(ANT, P1, 10, 12);
        s.add_run(ANT, P1, 11, 20);
        s.add_run(ANT, P1, 7, 7);
        assert_eq!(s.runs(ANT, P1), &[(1, 5), (7, 7), (10, 20)]);
        s.add_run(ANT, P1, 6, 9);
        assert_eq!(s.runs(ANT, P1), &[(1, 20)]);
        assert!(s.runs(ANT, Polarization::P2).is_empty());
    }

    #[test]
    fn the_highest_in_a_range_ignores_numbers_outside_it() {
        let mut s = Issued::new();
        s.add_run(ANT, P1, 1, 10);
        s.add_run(ANT, P1, 50_000, 50_004);
        assert_eq!(s.highest_in(ANT, P1, 1, 49_999), Some(10));
        assert_eq!(s.highest_in(ANT, P1, 50_000, 99_999), Some(50_004));
        assert_eq!(s.highest_in(ANT, P1, 1, 99_999), Some(50_004));
        // A run crossing the top of the range counts up to the top.
        assert_eq!(s.highest_in(ANT, P1, 1, 5), Some(5));
        assert_eq!(s.highest_in(ANT, P1, 20, 40_000), None);
        assert_eq!(s.highest_in(PartType::Lna, P1, 1, 99_999), None);
    }

    #[test]
    fn ids_that_are_not_part_numbers_are_ignored() {
        let mut s = Issued::new();
        for id in ["ANT00003P1", "ant00004p1", "ANTP1-00009", "SNAP1A05", "garbage", "LNA00002P2"] {
            s.add_id(id);
        }
        assert_eq!(s.runs(ANT, P1), &[(3, 4)]);
        assert_eq!(s.runs(PartType::Lna, Polarization::P2), &[(2, 2)]);
        assert_eq!(s.iter().count(), 2);
        assert!(s.contains(PartNumber::parse("ANT00004P1").unwrap_or_else(|e| panic!("{e}"))));
        assert!(!s.contains(PartNumber::parse("ANT00005P1").unwrap_or_else(|e| panic!("{e}"))));
    }

    #[test]
    fn scattered_numbers_insert_in_order() {
        let mut s = Issued::new();
        for n in [50, 10, 30, 11, 49, 31, 12, 90, 1, 29] {
            s.add_run(ANT, P1, n, n);
        }
        assert_eq!(s.runs(ANT, P1), &[(1, 1), (10, 12), (29, 31), (49, 50), (90, 90)]);
        s.add_run(ANT, P1, 2, 95);
        assert_eq!(s.runs(ANT, P1), &[(1, 95)]);
        let mut t = Issued::new();
        t.add_id("ANT00007P3");
        t.add_id("ANT00000P1");
        t.add_id("XYZ00001P1");
        assert!(t.is_empty());
    }

    #[test]
    fn extend_and_covers() {
        let mut a = Issued::new();
        a.add_run(ANT, P1, 1, 5);
        let mut b = Issued::new();
        b.add_run(ANT, P1, 3, 8);
        assert!(!a.covers(&b));
        a.extend(&b);
        assert!(a.covers(&b));
        assert_eq!(a.runs(ANT, P1), &[(1, 8)]);
        assert!(Issued::new().is_empty());
        assert!(!a.is_empty());
    }
}

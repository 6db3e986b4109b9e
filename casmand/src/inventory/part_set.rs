//! A set of part numbers as one bit per possible number: 6 types × 2
//! polarizations × 99,999 numbers fit in 150 KB, every insert and lookup is
//! a shift and a mask (no hashing), and a union or a difference is a pass
//! over words. Reading the 200,000 ends of a field-size assembly log into
//! it costs a fraction of a hash set.

use super::{Issued, MAX_PART_NUMBER, PartNumber, PartType, Polarization};

/// Numbers per (type, polarization): 0 is unused, so the index is the number.
const SPAN: usize = MAX_PART_NUMBER as usize + 1;
/// Words per (type, polarization), rounded up.
const WORDS: usize = SPAN.div_ceil(64);
/// (type, polarization) segments, in [`PartType::ALL`] × [`Polarization::ALL`] order.
const SEGMENTS: usize = PartType::ALL.len() * Polarization::ALL.len();

/// A set of part numbers (see the module documentation).
#[derive(Clone, PartialEq, Eq)]
pub struct PartSet {
    words: Vec<u64>,
}

impl Default for PartSet {
    fn default() -> PartSet {
        PartSet::new()
    }
}

impl std::fmt::Debug for PartSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PartSet({} parts)", self.len())
    }
}

fn segment(t: PartType, p: Polarization) -> usize {
    let ti = PartType::ALL.iter().position(|&x| x == t).unwrap_or(0);
    let pi = Polarization::ALL.iter().position(|&x| x == p).unwrap_or(0);
    ti * Polarization::ALL.len() + pi
}

impl PartSet {
    /// An empty set.
    pub fn new() -> PartSet {
        PartSet { words: vec![0; SEGMENTS * WORDS] }
    }

    fn bit(n: PartNumber) -> (usize, u64) {
        let at = segment(n.part_type(), n.polarization()) * WORDS * 64 + n.number() as usize;
        (at / 64, 1u64 << (at % 64))
    }

    /// Adds `n`.
    pub fn insert(&mut self, n: PartNumber) {
        let (w, m) = Self::bit(n);
        self.words[w] |= m;
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: PartNumber) -> bool {
        let (w, m) = Self::bit(n);
        self.words[w] & m != 0
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Adds every number of `other`.
    pub fn union_with(&mut self, other: &PartSet) {
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a |= b);
    }

    /// The numbers of this set that `other` lacks, SNAP boards' numbers
    /// left out when `without_snap`; in (type, polarization, number) order.
    pub fn missing_from(&self, other: &PartSet, without_snap: bool) -> Vec<PartNumber> {
        let mut out = Vec::new();
        for t in PartType::ALL.into_iter().filter(|&t| !(without_snap && t == PartType::Snap)) {
            for p in Polarization::ALL {
                let base = segment(t, p) * WORDS;
                for i in base..base + WORDS {
                    let mut w = self.words[i] & !other.words[i];
                    while w != 0 {
                        let number = ((i - base) * 64 + w.trailing_zeros() as usize) as u32;
                        w &= w - 1;
                        if let Ok(n) = PartNumber::new(t, number, p) {
                            out.push(n);
                        }
                    }
                }
            }
        }
        out
    }

    /// Adds the set's numbers to `issued`, as runs.
    pub fn add_to(&self, issued: &mut Issued) {
        for t in PartType::ALL {
            for p in Polarization::ALL {
                let seg = &self.words[segment(t, p) * WORDS..][..WORDS];
                let mut run: Option<(u32, u32)> = None;
                for (i, &word) in seg.iter().enumerate() {
                    if word == 0 {
                        continue;
                    }
                    let mut w = word;
                    while w != 0 {
                        let n = (i * 64 + w.trailing_zeros() as usize) as u32;
                        w &= w - 1;
                        run = match run {
                            Some((a, b)) if b + 1 == n => Some((a, n)),
                            Some((a, b)) => {
                                issued.add_run(t, p, a, b);
                                Some((n, n))
                            }
                            None => Some((n, n)),
                        };
                    }
                }
                if let Some((a, b)) = run {
                    issued.add_run(t, p, a, b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pn(s: &str) -> PartNumber {
        PartNumber::parse(s).unwrap()
    }

    #[test]
    fn insert_contains_and_difference() {
        let mut a = PartSet::new();
        assert!(a.is_empty());
        for s in ["ANT00001P1", "ANT00002P1", "ANT99999P2", "SNP00007P1", "LNA00064P1", "LNA00063P1"] {
            a.insert(pn(s));
        }
        assert_eq!(a.len(), 6);
        assert!(a.contains(pn("ANT99999P2")) && !a.contains(pn("ANT99999P1")));
        let mut b = PartSet::new();
        b.insert(pn("ANT00002P1"));
        let missing: Vec<String> = a.missing_from(&b, true).iter().map(|n| n.to_string()).collect();
        assert_eq!(missing, ["ANT00001P1", "ANT99999P2", "LNA00063P1", "LNA00064P1"]);
        assert_eq!(a.missing_from(&b, false).len(), 5, "SNP00007P1 counted");
        b.union_with(&a);
        assert_eq!(b, a);
    }

    #[test]
    fn runs_match_adding_one_by_one() {
        let mut set = PartSet::new();
        let mut one_by_one = Issued::new();
        // Runs across word boundaries (63, 64, 65), single numbers, both ends.
        for n in [1, 2, 3, 62, 63, 64, 65, 200, 99_998, 99_999] {
            let p = PartNumber::new(PartType::CoaxLong, n, Polarization::P2).unwrap();
            set.insert(p);
            one_by_one.add(p);
        }
        let mut runs = Issued::new();
        set.add_to(&mut runs);
        assert_eq!(runs, one_by_one);
        assert_eq!(
            runs.runs(PartType::CoaxLong, Polarization::P2),
            [(1, 3), (62, 65), (200, 200), (99_998, 99_999)]
        );
    }
}

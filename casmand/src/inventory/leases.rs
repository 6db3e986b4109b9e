//! Blocks of part numbers leased by sites (pure rules; the store object is
//! `backup::leases`, this site's blocks are in state.db, `db::leases`).
//!
//! Every site that generates parts takes its numbers from blocks it leased
//! from the store: a block names a part type, a polarization, a first and a
//! last number, and the site. A new block starts after every block any site
//! leased for that type and polarization (and after every number known as
//! issued), within the leasing site's configured `part_number_range`; so
//! blocks never overlap, numbers stay dense (a block is [`BLOCK`] numbers, or
//! the size of the request when larger), and a site issues from its blocks
//! offline too.

use serde::{Deserialize, Serialize};

use super::{PartType, Polarization};

/// Numbers in a block unless a request needs more.
pub const BLOCK: u32 = 100;

/// One leased block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Part type name (`LNA`).
    pub part_type: String,
    /// `P1`, `P2`, ...
    pub polarization: String,
    /// First number of the block.
    pub first: u32,
    /// Last number of the block.
    pub last: u32,
    /// The site that leased it.
    pub site: String,
    /// When, RFC 3339 UTC.
    pub leased_at: String,
}

/// The store's record of every block leased (`leases/part_numbers.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// Format of this file.
    pub format: u32,
    /// Every block, oldest first.
    pub blocks: Vec<Block>,
}

/// Why no block could be leased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The site's range has fewer free numbers than asked for.
    #[error(
        "{want} more {part_type} {pol} numbers do not fit this site's part_number_range {lo}-{hi} \
         (numbers up to {after} are issued or leased to sites); configure a wider part_number_range"
    )]
    RangeFull {
        /// Part type name.
        part_type: String,
        /// Polarization.
        pol: String,
        /// Numbers asked for.
        want: u32,
        /// The range.
        lo: u32,
        /// The range.
        hi: u32,
        /// The highest number taken in the range.
        after: u32,
    },
}

/// What a site asks a block for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// Part type.
    pub part_type: PartType,
    /// Polarization.
    pub pol: Polarization,
    /// Numbers needed at least.
    pub want: u32,
    /// The site's `part_number_range`, (lo, hi).
    pub range: (u32, u32),
    /// The highest number known as issued in the range.
    pub issued: Option<u32>,
}

impl Leases {
    /// The next block for `site` of `ask.want` numbers at least, within the
    /// asked range, after every block leased for the type and polarization
    /// in that range and after the highest number known as issued there.
    pub fn next_block(&self, site: &str, ask: &Ask, at: &str) -> Result<Block, LeaseError> {
        let Ask { part_type: t, pol, want, range: (lo, hi), issued } = *ask;
        let leased = self
            .blocks
            .iter()
            .filter(|b| b.part_type == t.name() && b.polarization == pol.as_str())
            .filter(|b| b.last >= lo && b.first <= hi)
            .map(|b| b.last.min(hi))
            .max();
        let after = leased.max(issued.filter(|n| (lo..=hi).contains(n))).unwrap_or(lo - 1);
        let first = after + 1;
        let size = want.max(BLOCK);
        let last = first.saturating_add(size - 1).min(hi);
        if first > hi || last - first + 1 < want {
            return Err(LeaseError::RangeFull {
                part_type: t.name().to_owned(),
                pol: pol.as_str().to_owned(),
                want,
                lo,
                hi,
                after,
            });
        }
        Ok(Block {
            part_type: t.name().to_owned(),
            polarization: pol.as_str().to_owned(),
            first,
            last,
            site: site.to_owned(),
            leased_at: at.to_owned(),
        })
    }
}

/// The highest number of `issued` (runs) within `lo..=hi` that no block of
/// `blocks` (first, last) holds: a number issued outside the lease system
/// (another program, an adopted file, a site before leases). A block may
/// issue only above it, so numbers are never issued below one already out.
pub fn highest_outside(issued: &[(u32, u32)], blocks: &[(u32, u32)], lo: u32, hi: u32) -> Option<u32> {
    let mut best: Option<u32> = None;
    for &(a, b) in issued {
        let (a, mut x) = (a.max(lo), b.min(hi));
        if a > x {
            continue;
        }
        loop {
            match blocks.iter().find(|&&(f, l)| f <= x && x <= l) {
                Some(&(f, _)) if f <= a => break,
                Some(&(f, _)) => x = f - 1,
                None => {
                    best = best.max(Some(x));
                    break;
                }
            }
        }
    }
    best
}

/// What [`usable_block`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The block to issue from, as first..=last.
    pub block: Option<std::ops::RangeInclusive<u32>>,
    /// This site's blocks, (first, last), lowest first.
    pub own: Vec<(u32, u32)>,
    /// The highest number issued outside every known block, if any.
    pub outside: Option<u32>,
}

/// The first block of `site` among `blocks` (first, last, site) with room
/// for `count` numbers after the highest of `issued` (runs) in it, and above
/// every number issued outside all known blocks within `range`: a number
/// once out is never issued again, nor one below it.
pub fn usable_block(
    blocks: &[(u32, u32, String)],
    site: &str,
    issued: &[(u32, u32)],
    count: u32,
    (lo, hi): (u32, u32),
) -> Choice {
    let spans: Vec<(u32, u32)> = blocks.iter().map(|(a, b, _)| (*a, *b)).collect();
    let outside = highest_outside(issued, &spans, lo, hi);
    let own: Vec<(u32, u32)> =
        blocks.iter().filter(|(_, _, s)| s == site).map(|(a, b, _)| (*a, *b)).collect();
    let block = own.iter().find_map(|&(first, last)| {
        let highest =
            issued.iter().filter(|&&(a, b)| b >= first && a <= last).map(|&(_, b)| b.min(last)).max();
        let next = highest.map_or(first, |h| h + 1);
        let clear = outside.is_none_or(|o| o < next);
        (clear && next <= last && last - next + 1 >= count).then_some(first..=last)
    });
    Choice { block, own, outside }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ask(pol: Polarization, want: u32, range: (u32, u32), issued: Option<u32>) -> Ask {
        Ask { part_type: PartType::Lna, pol, want, range, issued }
    }

    fn lease(
        l: &mut Leases,
        site: &str,
        want: u32,
        range: (u32, u32),
        issued: Option<u32>,
    ) -> Result<Block, LeaseError> {
        let b = l.next_block(site, &ask(Polarization::P1, want, range, issued), "t")?;
        l.blocks.push(b.clone());
        Ok(b)
    }

    #[test]
    fn blocks_follow_each_other_densely_and_never_overlap() {
        let mut l = Leases::default();
        let a = lease(&mut l, "a", 5, (1, 99_999), None).unwrap();
        let b = lease(&mut l, "b", 5, (1, 99_999), None).unwrap();
        assert_eq!((a.first, a.last, b.first, b.last), (1, 100, 101, 200));
        // A large request gets a block of its size.
        let c = lease(&mut l, "a", 250, (1, 99_999), None).unwrap();
        assert_eq!((c.first, c.last), (201, 450));
        // Other types and polarizations are independent.
        let d = l.next_block("b", &ask(Polarization::P2, 1, (1, 99_999), None), "t").unwrap();
        assert_eq!(d.first, 1);
        // Numbers known as issued (adopted files, the time before leases) are skipped.
        let e = lease(&mut l, "b", 1, (1, 99_999), Some(460)).unwrap();
        assert_eq!(e.first, 461);
    }

    #[test]
    fn numbers_issued_outside_blocks_are_found() {
        let blocks = [(1, 100), (101, 200)];
        assert_eq!(highest_outside(&[(1, 150)], &blocks, 1, 99_999), None);
        assert_eq!(highest_outside(&[(1, 5), (99_998, 99_998)], &blocks, 1, 99_999), Some(99_998));
        assert_eq!(highest_outside(&[(90, 210)], &blocks, 1, 99_999), Some(210));
        assert_eq!(highest_outside(&[(150, 250)], &blocks, 1, 220), Some(220));
        assert_eq!(highest_outside(&[(300, 400)], &blocks, 1, 250), None);
    }

    #[test]
    fn a_block_is_used_while_it_has_room_above_every_number_out() {
        let blocks = vec![(1, 100, "lab".to_owned()), (101, 200, "array".to_owned())];
        // The array's numbers lie in its known block: the lab's block serves.
        let c = usable_block(&blocks, "lab", &[(1, 5), (101, 105)], 5, (1, 99_999));
        assert_eq!(c.block, Some(1..=100));
        // Not known as the array's block: 105 counts as out, above the lab's room.
        let c = usable_block(&blocks[..1], "lab", &[(1, 5), (101, 105)], 5, (1, 99_999));
        assert_eq!((c.block, c.outside), (None, Some(105)));
        // Too few left.
        let c = usable_block(&blocks, "lab", &[(1, 98)], 5, (1, 99_999));
        assert_eq!((c.block, c.own), (None, vec![(1, 100)]));
    }

    #[test]
    fn configured_ranges_keep_working() {
        let mut l = Leases::default();
        let lab = lease(&mut l, "lab", 10, (1, 49_999), None).unwrap();
        let array = lease(&mut l, "array", 10, (50_000, 99_999), None).unwrap();
        assert_eq!((lab.first, array.first), (1, 50_000));
        let lab2 = lease(&mut l, "lab", 10, (1, 49_999), None).unwrap();
        assert_eq!(lab2.first, 101);
        // The end of a range: a short block if it still fits, else refused.
        let mut l = Leases::default();
        let tail = lease(&mut l, "a", 3, (99_990, 99_999), None).unwrap();
        assert_eq!((tail.first, tail.last), (99_990, 99_999));
        let e = lease(&mut l, "a", 1, (99_990, 99_999), None).unwrap_err();
        assert!(e.to_string().contains("part_number_range 99990-99999"), "{e}");
    }
}

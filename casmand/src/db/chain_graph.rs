//! Every chain of the current connections as data, in little memory: the
//! connections are read once (oldest first) into 16 bytes each, a part as a
//! 4-byte id (a canonical part number as its code, any other id numbered as
//! first met) and a type or polarization as a 2-byte id; the chains are then
//! walked and handed on one by one, their text made again from the ids.
//! 600,000 connections take ~17 MB while they are walked, where the
//! connections as strings took hundreds.

use std::collections::{HashMap, HashSet};

use crate::inventory::{PartNumber, PartType, Polarization};

/// One part of a chain as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPart {
    /// The part id.
    pub part: String,
    /// Its type as recorded.
    pub part_type: Option<String>,
    /// Its polarization as recorded.
    pub polarization: Option<String>,
}

/// A chain of current connections as data, head first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainData {
    /// The parts in signal order.
    pub parts: Vec<ChainPart>,
    /// Whether the walk met a part twice (legacy data only).
    pub cyclic: bool,
}

/// Ids at and above this one number ids that are not canonical part numbers.
const OTHER: u32 = 1 << 31;
/// Polarizations by their number, as codes carry them.
const POLS: [Polarization; 2] = [Polarization::P1, Polarization::P2];

/// The code of a canonical part number: its type's place × 1,000,000 +
/// number × 10 + polarization (below 7,000,000).
fn code(p: PartNumber) -> u32 {
    let t = PartType::ALL.iter().position(|t| *t == p.part_type()).unwrap_or(0) as u32;
    t * 1_000_000 + p.number() * 10 + u32::from(p.polarization().number())
}

/// The canonical part number of `code` (made by [`code`]).
fn decode(code: u32) -> Option<PartNumber> {
    let part_type = *PartType::ALL.get((code / 1_000_000) as usize)?;
    let pol = *POLS.get((code % 10).checked_sub(1)? as usize)?;
    PartNumber::new(part_type, (code % 1_000_000) / 10, pol).ok()
}

/// Texts numbered in order of first sight.
#[derive(Debug, Default)]
struct Interned<I> {
    ids: HashMap<Box<str>, I>,
    texts: Vec<Box<str>>,
}

impl<I: Copy + TryFrom<usize>> Interned<I> {
    /// The number of `text` (`base` + its place), numbering it if new; None
    /// past the id type's range.
    fn id(&mut self, text: &str, base: usize) -> Option<I> {
        if let Some(&id) = self.ids.get(text) {
            return Some(id);
        }
        let id = I::try_from(base + self.texts.len()).ok()?;
        self.ids.insert(text.into(), id);
        self.texts.push(text.into());
        Some(id)
    }
}

/// One current connection in 16 bytes (text ids 0 = NULL).
#[derive(Debug, Clone, Copy)]
struct Link {
    source: u32,
    target: u32,
    source_type: u16,
    source_pol: u16,
    target_type: u16,
    target_pol: u16,
}

/// More distinct ids than the compact form holds (2^31 part ids, 65,535
/// types and polarizations).
#[derive(Debug, thiserror::Error)]
#[error("more distinct part ids, types or polarizations than a chain listing can hold")]
pub struct TooMany;

/// The current connections, compact, in the order they were added.
#[derive(Debug, Default)]
pub struct ChainGraph {
    links: Vec<Link>,
    parts: Interned<u32>,
    texts: Interned<u16>,
}

impl ChainGraph {
    /// An empty graph.
    pub fn new() -> ChainGraph {
        ChainGraph::default()
    }

    fn part(&mut self, id: &str) -> Result<u32, TooMany> {
        match PartNumber::parse_canonical(id) {
            Some(p) => Ok(code(p)),
            None => self.parts.id(id, OTHER as usize).ok_or(TooMany),
        }
    }

    fn text(&mut self, t: Option<&str>) -> Result<u16, TooMany> {
        t.map_or(Ok(0), |t| self.texts.id(t, 1).ok_or(TooMany))
    }

    /// Adds the next current connection (in the order of
    /// [`super::assembly::current_all`]: oldest first): its ends with the type
    /// and polarization recorded for each.
    pub fn push(
        &mut self,
        (source, source_type, source_pol): (&str, Option<&str>, Option<&str>),
        (target, target_type, target_pol): (&str, Option<&str>, Option<&str>),
    ) -> Result<(), TooMany> {
        let link = Link {
            source: self.part(source)?,
            target: self.part(target)?,
            source_type: self.text(source_type)?,
            source_pol: self.text(source_pol)?,
            target_type: self.text(target_type)?,
            target_pol: self.text(target_pol)?,
        };
        self.links.push(link);
        Ok(())
    }

    fn text_of(&self, id: u16) -> Option<&str> {
        id.checked_sub(1).and_then(|i| self.texts.texts.get(usize::from(i))).map(|t| &**t)
    }

    /// Walks every chain and hands each to `f`, until it returns false: one
    /// per head (a part no connection leads to), in the order of its first
    /// connection, walked downstream along the oldest connection out of each
    /// part; then, for legacy data, a chain from every connection no walk
    /// took (a second branch out of a part, a loop), in order. Linear in the
    /// number of connections (and a sort).
    pub fn walk(self, mut f: impl FnMut(&Walked<'_>) -> bool) {
        let n = self.links.len();
        // The oldest connection out of each part, and every part one leads to.
        let mut first_out: Vec<(u32, u32)> =
            self.links.iter().enumerate().map(|(i, l)| (l.source, i as u32)).collect();
        first_out.sort_unstable();
        first_out.dedup_by_key(|(source, _)| *source);
        let mut targets: Vec<u32> = self.links.iter().map(|l| l.target).collect();
        targets.sort_unstable();
        targets.dedup();
        let next_of = |part: u32| {
            first_out.binary_search_by_key(&part, |(s, _)| *s).ok().map(|k| first_out[k].1 as usize)
        };
        let mut used = vec![false; n];
        let mut seen: HashSet<u32> = HashSet::new();
        let mut steps: Vec<Step> = Vec::new();
        let mut walk = |start: usize, used: &mut [bool]| {
            let first = self.links[start];
            steps.clear();
            steps.push(Step { part: first.source, part_type: first.source_type, pol: first.source_pol });
            seen.clear();
            seen.insert(first.source);
            let mut cyclic = false;
            let mut next = Some(start);
            while let Some(i) = next {
                let l = self.links[i];
                used[i] = true;
                if !seen.insert(l.target) {
                    cyclic = true;
                    break;
                }
                steps.push(Step { part: l.target, part_type: l.target_type, pol: l.target_pol });
                next = next_of(l.target);
            }
            f(&Walked { graph: &self, steps: &steps, cyclic })
        };
        for i in 0..n {
            let s = self.links[i].source;
            if targets.binary_search(&s).is_err() && next_of(s) == Some(i) && !walk(i, &mut used) {
                return;
            }
        }
        for i in 0..n {
            if !used[i] && !walk(i, &mut used) {
                return;
            }
        }
    }
}

/// One part of a walked chain, as ids.
#[derive(Debug, Clone, Copy)]
struct Step {
    part: u32,
    part_type: u16,
    pol: u16,
}

/// A chain as [`ChainGraph::walk`] found it: its parts as ids, their text
/// written on demand (no allocation of its own).
#[derive(Debug)]
pub struct Walked<'g> {
    graph: &'g ChainGraph,
    steps: &'g [Step],
    cyclic: bool,
}

impl<'g> Walked<'g> {
    /// Whether the walk met a part twice (legacy data only).
    pub fn cyclic(&self) -> bool {
        self.cyclic
    }

    /// The parts in signal order: each its id (to display), its type and
    /// its polarization as recorded.
    pub fn parts(&self) -> impl Iterator<Item = (PartName<'g>, Option<&'g str>, Option<&'g str>)> + '_ {
        let g = self.graph;
        self.steps
            .iter()
            .map(move |s| (PartName { graph: g, id: s.part }, g.text_of(s.part_type), g.text_of(s.pol)))
    }

    /// The chain as owned data.
    pub fn to_data(&self) -> ChainData {
        ChainData {
            parts: self
                .parts()
                .map(|(p, t, pol)| ChainPart {
                    part: p.to_string(),
                    part_type: t.map(str::to_owned),
                    polarization: pol.map(str::to_owned),
                })
                .collect(),
            cyclic: self.cyclic,
        }
    }
}

/// A part id of a [`ChainGraph`], displayed as it was recorded.
#[derive(Debug, Clone, Copy)]
pub struct PartName<'g> {
    graph: &'g ChainGraph,
    id: u32,
}

impl std::fmt::Display for PartName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.id >= OTHER {
            let text = self.graph.parts.texts.get((self.id - OTHER) as usize);
            return f.write_str(text.map_or("", |t| &**t));
        }
        match decode(self.id) {
            Some(p) => write!(f, "{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    type Conn = ((String, Option<String>, Option<String>), (String, Option<String>, Option<String>));

    /// The walk as it was over whole strings (before the compact form): the
    /// oracle of the compact one.
    fn by_strings(current: &[Conn]) -> Vec<ChainData> {
        let mut out: HashMap<&str, usize> = HashMap::new();
        let mut targets: HashSet<&str> = HashSet::new();
        for (i, (s, t)) in current.iter().enumerate() {
            out.entry(s.0.as_str()).or_insert(i);
            targets.insert(t.0.as_str());
        }
        let mut used = vec![false; current.len()];
        let mut result = Vec::new();
        let part = |(p, t, pol): &(String, Option<String>, Option<String>)| ChainPart {
            part: p.clone(),
            part_type: t.clone(),
            polarization: pol.clone(),
        };
        let walk = |start: usize, used: &mut Vec<bool>| {
            let mut parts = vec![part(&current[start].0)];
            let mut seen: HashSet<&str> = HashSet::from([current[start].0.0.as_str()]);
            let mut cyclic = false;
            let mut next = Some(start);
            while let Some(i) = next {
                let (_, t) = &current[i];
                used[i] = true;
                if !seen.insert(t.0.as_str()) {
                    cyclic = true;
                    break;
                }
                parts.push(part(t));
                next = out.get(t.0.as_str()).copied();
            }
            ChainData { parts, cyclic }
        };
        let mut heads_done: HashSet<&str> = HashSet::new();
        for (i, (s, _)) in current.iter().enumerate() {
            let s = s.0.as_str();
            if !targets.contains(s) && out.get(s) == Some(&i) && heads_done.insert(s) {
                result.push(walk(i, &mut used));
            }
        }
        for i in 0..current.len() {
            if !used[i] {
                result.push(walk(i, &mut used));
            }
        }
        result
    }

    fn compact(current: &[Conn]) -> Vec<ChainData> {
        let mut g = ChainGraph::new();
        for (s, t) in current {
            g.push((&s.0, s.1.as_deref(), s.2.as_deref()), (&t.0, t.1.as_deref(), t.2.as_deref())).unwrap();
        }
        let mut got = Vec::new();
        g.walk(|c| {
            got.push(c.to_data());
            true
        });
        got
    }

    /// Part ids of every kind: canonical numbers, ids in other spellings
    /// (which must not meet the canonical one), SNAP ports.
    fn part_id() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..6usize, 1..4u32, 1..3u8)
                .prop_map(|(t, n, p)| format!("{}{n:05}P{p}", PartType::ALL[t].abbreviation())),
            (1..4u32).prop_map(|n| format!("ant{n:05}p1")),
            (1..3u32).prop_map(|n| format!("SNAP1A{n:02}")),
            Just("ANT00000P1".to_owned()),
        ]
    }

    fn text() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("ANTENNA".to_owned())),
            Just(Some("P1".to_owned())),
            Just(Some(String::new()))
        ]
    }

    proptest! {
        /// Chains, heads, branches and loops come out as the walk over
        /// strings made them, in the same order.
        #[test]
        fn the_compact_walk_is_the_walk_over_strings(
            current in prop::collection::vec(((part_id(), text(), text()), (part_id(), text(), text())), 0..40)
        ) {
            prop_assert_eq!(compact(&current), by_strings(&current));
        }
    }

    #[test]
    fn codes_name_the_part_number_they_code() {
        for id in ["ANT00001P1", "SNP99999P2", "BAC00042P1", "CXL12345P2"] {
            let p = PartNumber::parse_canonical(id).unwrap();
            assert!(code(p) < 7_000_000);
            assert_eq!(decode(code(p)).unwrap().to_string(), id);
        }
        assert!(PartNumber::parse_canonical("ant00001p1").is_none());
    }

    #[test]
    fn the_walk_stops_when_told() {
        let mut g = ChainGraph::new();
        for (s, t) in [("ANT00001P1", "LNA00001P1"), ("ANT00002P1", "LNA00002P1")] {
            g.push((s, None, None), (t, None, None)).unwrap();
        }
        let mut n = 0;
        g.walk(|_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
    }
}

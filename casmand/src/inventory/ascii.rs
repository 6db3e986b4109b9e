//! The ASCII chains view (`visualize chains`, spec section 10.7).
//!
//! ```text
//! CASM Assembly Connections:
//! ---------------------------------------- (88 dashes)
//! ANT00001P1 ---> LNA00002P1 ---> … ---> SNAP1I09
//! ----------------------------------------
//! ```
//!
//! One line per chain: starting from each part that is a source but never a
//! target (sorted ascending), paths are followed breadth-first and a line is
//! printed when a path reaches a part with no outgoing edge. This reproduces
//! the Python output byte for byte on well-formed data. Where legacy data
//! branches, casman differs from Python only to lose nothing: a path that
//! reaches a part already printed is printed too, ending at that part (Python
//! dropped it), and parts left unprinted because they sit on a loop are
//! started from afterwards in sorted order (Python only did that when there
//! was no start at all). Every edge therefore shows up in some line, and loops
//! terminate (`A ---> B ---> A`).
//!
//! Sources with more than one current outgoing edge are listed after the
//! chains under `DUPLICATE CONNECTIONS DETECTED:`, each with its edges oldest
//! first. The Python tool printed each edge's `scan_time` as FRM and its
//! `connected_scan_time` as NXT; casman records both as the one event time,
//! so both show the edge's `scan_time`.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use super::Edge;

/// The text when there is no current connection.
pub const NO_CONNECTIONS: &str = "No assembly connections found.";

const HEADER: &str = "CASM Assembly Connections:";
const DUPLICATES_HEADER: &str = "DUPLICATE CONNECTIONS DETECTED:";
const SEPARATOR: &str = " ---> ";

fn dashes() -> String {
    "-".repeat(88)
}

/// Renders the current `edges` as the ASCII chains view. The text has no
/// trailing newline (as the Python function returned it); the CLI prints it
/// followed by one newline, which is what the golden files hold.
pub fn ascii_chains(edges: &[Edge]) -> String {
    if edges.is_empty() {
        return NO_CONNECTIONS.to_owned();
    }
    let mut sorted: Vec<&Edge> = edges.iter().collect();
    sorted.sort_by(|x, y| (&x.scan_time, x.event_id).cmp(&(&y.scan_time, y.event_id)));

    // Successors of each source, oldest edge first.
    let mut next: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
    for e in &sorted {
        next.entry(e.source.as_str()).or_default().push(e);
    }
    let targets: HashSet<&str> = sorted.iter().map(|e| e.target.as_str()).collect();
    let starts = next.keys().copied().filter(|p| !targets.contains(p));
    // Afterwards, sources never reached from a start (loops).
    let all_sources = next.keys().copied();

    let mut lines = vec![HEADER.to_owned(), dashes()];
    let mut printed: HashSet<&str> = HashSet::new();
    for start in starts.chain(all_sources) {
        if printed.contains(start) {
            continue;
        }
        let mut queue: VecDeque<Vec<&str>> = VecDeque::from([vec![start]]);
        while let Some(path) = queue.pop_front() {
            let Some(&cur) = path.last() else { continue };
            if !printed.insert(cur) {
                // Reached a part already shown: show the link into it.
                if path.len() > 1 {
                    lines.push(path.join(SEPARATOR));
                }
                continue;
            }
            match next.get(cur) {
                Some(succ) if !succ.is_empty() => {
                    for e in succ {
                        let mut longer = path.clone();
                        longer.push(e.target.as_str());
                        queue.push_back(longer);
                    }
                }
                _ => lines.push(path.join(SEPARATOR)),
            }
        }
    }
    lines.push(dashes());

    let mut duplicates: Vec<&Vec<&Edge>> = next.values().filter(|v| v.len() > 1).collect();
    if !duplicates.is_empty() {
        duplicates.sort_by(|x, y| {
            let key = |v: &Vec<&Edge>| v.first().map(|e| (e.scan_time.clone(), e.event_id));
            key(x).cmp(&key(y))
        });
        lines.push(String::new());
        lines.push(DUPLICATES_HEADER.to_owned());
        lines.push(dashes());
        for entries in duplicates {
            let part = entries.first().map_or("", |e| e.source.as_str());
            lines.push(format!("Part {part} has {} database entries:", entries.len()));
            for (i, e) in entries.iter().enumerate() {
                lines.push(format!(
                    "  {}. FRM: {}, NXT: {}, connects to: {}",
                    i + 1,
                    e.scan_time,
                    e.scan_time,
                    e.target
                ));
            }
        }
        lines.push(dashes());
    }
    lines.join("\n")
}

/// The distinct parts of `edges`, sorted (for "all parts" pickers).
pub fn parts_of(edges: &[Edge]) -> BTreeSet<&str> {
    edges.iter().flat_map(|e| [e.source.as_str(), e.target.as_str()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{current_edges, events::tests::ev};

    fn view(links: &[(&str, &str)]) -> String {
        let events: Vec<_> = links
            .iter()
            .enumerate()
            .map(|(i, (a, b))| ev(i as i64 + 1, a, b, &format!("2025-12-16 19:{:02}:00", i), true))
            .collect();
        ascii_chains(&current_edges(&events))
    }

    fn body(text: &str) -> Vec<&str> {
        text.lines().skip(2).take_while(|l| !l.starts_with("---")).collect()
    }

    #[test]
    fn empty() {
        assert_eq!(ascii_chains(&[]), "No assembly connections found.");
    }

    #[test]
    fn single_connection_and_layout() {
        let out = view(&[("ANT00001P1", "LNA00001P1")]);
        let d = "-".repeat(88);
        assert_eq!(out, format!("CASM Assembly Connections:\n{d}\nANT00001P1 ---> LNA00001P1\n{d}"));
    }

    #[test]
    fn starts_sorted_and_chains_followed() {
        let out = view(&[
            ("LNA00003P1", "CXS00130P1"),
            ("CXS00001P2", "CXL00001P2"),
            ("ANT00001P1", "LNA00002P1"),
            ("LNA00002P1", "CXS00132P1"),
            ("CXS00130P1", "CXL00130P1"),
        ]);
        assert_eq!(
            body(&out),
            [
                "ANT00001P1 ---> LNA00002P1 ---> CXS00132P1",
                "CXS00001P2 ---> CXL00001P2",
                "LNA00003P1 ---> CXS00130P1 ---> CXL00130P1"
            ]
        );
        assert!(!out.contains("DUPLICATE"));
    }

    #[test]
    fn duplicates_and_branches() {
        let out =
            view(&[("ANT00001P1", "LNA00001P1"), ("LNA00001P1", "CXS00001P1"), ("LNA00001P1", "CXS00002P1")]);
        let d = "-".repeat(88);
        let expected = format!(
            "CASM Assembly Connections:\n{d}\n\
             ANT00001P1 ---> LNA00001P1 ---> CXS00001P1\n\
             ANT00001P1 ---> LNA00001P1 ---> CXS00002P1\n{d}\n\
             \n\
             DUPLICATE CONNECTIONS DETECTED:\n{d}\n\
             Part LNA00001P1 has 2 database entries:\n  \
             1. FRM: 2025-12-16 19:01:00, NXT: 2025-12-16 19:01:00, connects to: CXS00001P1\n  \
             2. FRM: 2025-12-16 19:02:00, NXT: 2025-12-16 19:02:00, connects to: CXS00002P1\n{d}"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn merges_show_every_edge() {
        // Two sources into one target (legacy data only).
        let out = view(&[("A", "C"), ("B", "C"), ("C", "D")]);
        assert_eq!(body(&out), ["A ---> C ---> D", "B ---> C"]);
    }

    #[test]
    fn cycles_terminate() {
        let out = view(&[("A", "B"), ("B", "C"), ("C", "A")]);
        assert_eq!(body(&out), ["A ---> B ---> C ---> A"]);
        // A loop beside a normal chain is still shown.
        let out = view(&[("X", "Y"), ("A", "B"), ("B", "C"), ("C", "A")]);
        assert_eq!(body(&out), ["X ---> Y", "A ---> B ---> C ---> A"]);
    }

    #[test]
    fn parts_listing() {
        let edges = current_edges(&[ev(1, "B", "A", "t", true), ev(2, "B", "C", "t", true)]);
        assert_eq!(parts_of(&edges).into_iter().collect::<Vec<_>>(), ["A", "B", "C"]);
    }
}

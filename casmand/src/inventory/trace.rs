//! Tracing the chain through one part over the current edges.

use std::collections::HashSet;

use super::{Edge, SnapPort};

/// The chain through a part: from its head (a part with no incoming edge)
/// to its end (no outgoing edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The parts in signal order, head first.
    pub parts: Vec<String>,
    /// The index in `parts` of the part the trace started from.
    pub start: usize,
    /// The SNAP port the chain ends at, if it ends at one (and has an edge).
    pub snap_port: Option<SnapPort>,
    /// Whether the walk met a part twice (a loop, only possible in legacy
    /// data); the walk stops there.
    pub cyclic: bool,
}

impl Chain {
    /// The head of the chain (an antenna in a complete chain).
    pub fn head(&self) -> &str {
        self.parts.first().map_or("", String::as_str)
    }

    /// The part the trace started from and everything downstream of it.
    pub fn downstream(&self) -> &[String] {
        self.parts.get(self.start..).unwrap_or(&[])
    }

    /// Whether the part has any current connection.
    pub fn is_connected(&self) -> bool {
        self.parts.len() > 1
    }
}

/// Traces the chain through `part` (matched exactly as stored): upstream to
/// the head and downstream to the end. Where legacy data gives a part more
/// than one incoming or outgoing edge, the oldest is followed (as the
/// Python chain view did). Never loops.
pub fn trace_chain(part: &str, edges: &[Edge]) -> Chain {
    let mut sorted: Vec<&Edge> = edges.iter().collect();
    sorted.sort_by(|x, y| (&x.scan_time, x.event_id).cmp(&(&y.scan_time, y.event_id)));
    let mut seen: HashSet<&str> = HashSet::from([part]);
    let mut cyclic = false;

    let mut upstream: Vec<String> = Vec::new();
    let mut cur = part;
    while let Some(e) = sorted.iter().find(|e| e.target == cur) {
        if !seen.insert(e.source.as_str()) {
            cyclic = true;
            break;
        }
        upstream.push(e.source.clone());
        cur = &e.source;
    }
    upstream.reverse();
    let start = upstream.len();
    let mut parts = upstream;
    parts.push(part.to_owned());

    let mut cur = part;
    while let Some(e) = sorted.iter().find(|e| e.source == cur) {
        if !seen.insert(e.target.as_str()) {
            cyclic = true;
            break;
        }
        parts.push(e.target.clone());
        cur = &e.target;
    }

    let snap_port = if parts.len() > 1 { parts.last().and_then(|p| SnapPort::parse(p).ok()) } else { None };
    Chain { parts, start, snap_port, cyclic }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{current_edges, events::tests::ev};

    const T: &str = "2025-01-01 10:00:00";

    /// Acceptance case 13's fixture: two full chains, one incomplete, one
    /// whose first hop was disconnected, all at one shared timestamp.
    fn fixture() -> Vec<Edge> {
        let links = [
            ("ANT00001P1", "LNA00001P1"),
            ("LNA00001P1", "CXS00001P1"),
            ("CXS00001P1", "CXL00001P1"),
            ("CXL00001P1", "BAC00001P1"),
            ("BAC00001P1", "SNAP1A05"),
            ("ANT00002P2", "LNA00002P2"),
            ("LNA00002P2", "CXS00002P2"),
            ("CXS00002P2", "CXL00002P2"),
            ("CXL00002P2", "BAC00002P2"),
            ("BAC00002P2", "SNAP2B11"),
            ("ANT00003P1", "LNA00003P1"),
            ("LNA00003P1", "CXS00003P1"),
            ("CXS00003P1", "CXL00003P1"),
            ("ANT00004P1", "LNA00004P1"),
            ("LNA00004P1", "CXS00004P1"),
            ("CXS00004P1", "CXL00004P1"),
            ("CXL00004P1", "BAC00004P1"),
            ("BAC00004P1", "SNAP3C01"),
        ];
        let mut events: Vec<_> =
            links.iter().enumerate().map(|(i, (a, b))| ev(i as i64 + 1, a, b, T, true)).collect();
        events.push(ev(19, "ANT00004P1", "LNA00004P1", T, false));
        current_edges(&events)
    }

    #[test]
    fn traces_to_snap_port() {
        let edges = fixture();
        let c = trace_chain("ANT00001P1", &edges);
        let port = c.snap_port.unwrap();
        assert_eq!((port.chassis(), port.slot(), port.port()), (1, 'A', 5));
        assert_eq!(c.parts.len(), 6);
        assert_eq!(c.head(), "ANT00001P1");
        assert!(!c.cyclic && c.is_connected());
        assert_eq!(trace_chain("ANT00002P2", &edges).snap_port.unwrap().to_string(), "SNAP2B11");
        // Incomplete chain ends at a CXL.
        let c = trace_chain("ANT00003P1", &edges);
        assert_eq!((c.snap_port, c.parts.last().unwrap().as_str()), (None, "CXL00003P1"));
        // Disconnected first hop: the antenna is alone.
        let c = trace_chain("ANT00004P1", &edges);
        assert_eq!((c.parts.len(), c.snap_port), (1, None));
        assert!(!c.is_connected());
        // Unknown part, empty log.
        assert_eq!(trace_chain("ANT00999P1", &edges).parts, ["ANT00999P1"]);
        assert_eq!(trace_chain("ANT00001P1", &[]).snap_port, None);
    }

    #[test]
    fn traces_from_the_middle() {
        let edges = fixture();
        let c = trace_chain("LNA00001P1", &edges);
        assert_eq!(c.start, 1);
        assert_eq!(c.head(), "ANT00001P1");
        assert_eq!(c.downstream()[0], "LNA00001P1");
        assert_eq!(c.downstream().len(), 5);
        assert_eq!(c.snap_port.unwrap().to_string(), "SNAP1A05");
        let c = trace_chain("SNAP1A05", &edges);
        assert_eq!((c.start, c.parts.len()), (5, 6));
        assert_eq!(c.snap_port.unwrap().to_string(), "SNAP1A05");
        assert_eq!(trace_chain("SNAP1A05", &[]).snap_port, None);
    }

    #[test]
    fn cycles_terminate_and_oldest_branch_is_followed() {
        let edges =
            current_edges(&[ev(1, "A", "B", T, true), ev(2, "B", "C", T, true), ev(3, "C", "A", T, true)]);
        let c = trace_chain("A", &edges);
        assert!(c.cyclic);
        assert_eq!(c.parts, ["B", "C", "A"]);
        let edges = current_edges(&[
            ev(1, "A", "B", "t2", true),
            ev(2, "A", "C", "t1", true),
            ev(3, "D", "B", "t0", true),
        ]);
        assert_eq!(trace_chain("A", &edges).parts, ["A", "C"]);
        assert_eq!(trace_chain("B", &edges).parts, ["D", "B"]);
    }
}

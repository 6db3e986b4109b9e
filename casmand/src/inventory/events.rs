//! The assembly event log and the current connections it implies.
//!
//! The `assembly` table is append-only: each row connects or disconnects a
//! pair. The current state is decided per *unordered* pair by the newest
//! event, ordered by `(scan_time, clock, id)`: a later disconnect recorded in
//! either orientation cancels a connect, and when two events of a pair share
//! a `scan_time` the one later in the sites' total order (its hybrid logical
//! clock; 0 for events from before the change exchange) wins, then the
//! higher id (the later write). Every site orders a pair's events the same
//! way, whatever order they reached it in. (The Python tool let a
//! same-second tie favour "connected"; casman does not.)

use std::collections::HashMap;

/// One row of the assembly log, transport- and storage-free.
///
/// Rows whose `part_number` or `connected_to` is NULL form no pair; the
/// caller leaves them out (the Python tool ignored them too). A NULL
/// `scan_time` may be given as the empty string (it sorts first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The row id; breaks ties between events of the same `scan_time` and clock.
    pub id: i64,
    /// The event's hybrid logical clock value (`event_origin.hlc`), 0 when
    /// it has none; breaks ties between events of the same `scan_time`.
    pub clock: i64,
    /// The first end as recorded (upstream for connects).
    pub part_number: String,
    /// Its type as recorded (`ANTENNA`, …), if any.
    pub part_type: Option<String>,
    /// The other end as recorded.
    pub connected_to: String,
    /// Its type as recorded, if any.
    pub connected_to_type: Option<String>,
    /// When the event happened; compared as a string, so all rows must use
    /// one format (casman stores UTC ISO 8601 with `Z`).
    pub scan_time: String,
    /// `true` for `connected`, `false` for `disconnected`.
    pub connected: bool,
}

/// A current connection, oriented as its newest (connecting) event recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edge {
    /// The upstream end.
    pub source: String,
    /// Its recorded type, if any.
    pub source_type: Option<String>,
    /// The downstream end.
    pub target: String,
    /// Its recorded type, if any.
    pub target_type: Option<String>,
    /// When the connection was made.
    pub scan_time: String,
    /// The id of the event that made it (for anything else the caller needs
    /// from that row, e.g. the recorded polarization).
    pub event_id: i64,
}

impl Edge {
    /// Whether this edge joins `a` and `b`, in either orientation.
    pub fn joins(&self, a: &str, b: &str) -> bool {
        (self.source == a && self.target == b) || (self.source == b && self.target == a)
    }

    /// Whether `part` is either end.
    pub fn touches(&self, part: &str) -> bool {
        self.source == part || self.target == part
    }

    /// `SOURCE -> TARGET`, for messages.
    pub fn describe(&self) -> String {
        format!("{} -> {} (since {})", self.source, self.target, self.scan_time)
    }
}

impl From<&Event> for Edge {
    fn from(e: &Event) -> Edge {
        Edge {
            source: e.part_number.clone(),
            source_type: e.part_type.clone(),
            target: e.connected_to.clone(),
            target_type: e.connected_to_type.clone(),
            scan_time: e.scan_time.clone(),
            event_id: e.id,
        }
    }
}

/// The current connections of an event log: for each unordered pair the
/// newest event by `(scan_time, clock, id)`; the pair is connected iff that event is
/// a connect, and the edge takes that event's orientation. Returned oldest
/// first, by `(scan_time, event_id)`. Events may be given in any order.
pub fn current_edges(events: &[Event]) -> Vec<Edge> {
    let mut newest: HashMap<(&str, &str), &Event> = HashMap::new();
    for e in events {
        let (a, b) = (e.part_number.as_str(), e.connected_to.as_str());
        let key = if a <= b { (a, b) } else { (b, a) };
        newest
            .entry(key)
            .and_modify(|cur| {
                if (&e.scan_time, e.clock, e.id) > (&cur.scan_time, cur.clock, cur.id) {
                    *cur = e;
                }
            })
            .or_insert(e);
    }
    let mut edges: Vec<Edge> = newest.into_values().filter(|e| e.connected).map(Edge::from).collect();
    sort_edges(&mut edges);
    edges
}

/// Sorts edges oldest first by `(scan_time, event_id)`, the order
/// [`current_edges`] returns.
pub fn sort_edges(edges: &mut [Edge]) {
    edges.sort_by(|x, y| (&x.scan_time, x.event_id).cmp(&(&y.scan_time, y.event_id)));
}

/// The current edges leaving `part`, oldest first (more than one only in
/// legacy data).
pub fn outgoing<'e>(edges: &'e [Edge], part: &str) -> Vec<&'e Edge> {
    edges.iter().filter(|e| e.source == part).collect()
}

/// The current edges arriving at `part`, oldest first (more than one only in
/// legacy data).
pub fn incoming<'e>(edges: &'e [Edge], part: &str) -> Vec<&'e Edge> {
    edges.iter().filter(|e| e.target == part).collect()
}

/// The current edges with `part` at either end, oldest first.
pub fn edges_of<'e>(edges: &'e [Edge], part: &str) -> Vec<&'e Edge> {
    edges.iter().filter(|e| e.touches(part)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A connect (`true`) or disconnect event.
    pub(crate) fn ev(id: i64, from: &str, to: &str, time: &str, connected: bool) -> Event {
        Event {
            id,
            clock: 0,
            part_number: from.into(),
            part_type: None,
            connected_to: to.into(),
            connected_to_type: None,
            scan_time: time.into(),
            connected,
        }
    }

    fn pairs(edges: &[Edge]) -> Vec<(&str, &str)> {
        edges.iter().map(|e| (e.source.as_str(), e.target.as_str())).collect()
    }

    #[test]
    fn newest_event_per_unordered_pair_decides() {
        // Shaped like the real log: reconnects, reverse-orientation
        // disconnects, a part moved to another partner.
        let events = [
            ev(1, "ANT00001P1", "LNA00001P1", "2025-12-15 20:00:00", true),
            ev(2, "LNA00001P1", "CXS00001P1", "2025-12-15 20:01:00", true),
            ev(3, "CXS00001P1", "LNA00001P1", "2025-12-15 20:02:00", false), // reverse disconnect
            ev(4, "LNA00001P1", "CXS00002P1", "2025-12-15 20:03:00", true),
            ev(5, "ANT00002P1", "LNA00002P1", "2025-12-15 20:04:00", true),
            ev(6, "ANT00002P1", "LNA00002P1", "2025-12-15 20:05:00", false),
            ev(7, "ANT00002P1", "LNA00002P1", "2025-12-15 20:06:00", true), // reconnected
            ev(8, "BAC00001P1", "SNAP1A04", "2025-12-15 20:07:00", true),
            ev(9, "SNAP1A04", "BAC00001P1", "2025-12-15 20:08:00", false), // SNAP-side disconnect
            ev(10, "BAC00001P1", "SNAP1A11", "2025-12-15 20:09:00", true),
        ];
        let edges = current_edges(&events);
        assert_eq!(
            pairs(&edges),
            [
                ("ANT00001P1", "LNA00001P1"),
                ("LNA00001P1", "CXS00002P1"),
                ("ANT00002P1", "LNA00002P1"),
                ("BAC00001P1", "SNAP1A11")
            ]
        );
        assert_eq!(edges[2].event_id, 7);
        assert_eq!(edges[2].scan_time, "2025-12-15 20:06:00");
        // Input order does not matter.
        let mut reversed = events.to_vec();
        reversed.reverse();
        assert_eq!(current_edges(&reversed), edges);
    }

    #[test]
    fn orientation_is_that_of_the_newest_connect() {
        let events = [
            ev(1, "A", "B", "2025-01-01 00:00:00", true),
            ev(2, "A", "B", "2025-01-01 00:00:01", false),
            ev(3, "B", "A", "2025-01-01 00:00:02", true),
        ];
        assert_eq!(pairs(&current_edges(&events)), [("B", "A")]);
    }

    #[test]
    fn same_time_tie_goes_to_the_higher_id() {
        // The legacy test_db case: connect and disconnect in the same second.
        // Python reported it connected; casman lets the later row win.
        let t = "2024-01-01 10:00:00";
        let events = [ev(1, "TEST001P1", "TEST002P1", t, true), ev(2, "TEST001P1", "TEST002P1", t, false)];
        assert!(current_edges(&events).is_empty());
        let events = [ev(1, "TEST001P1", "TEST002P1", t, false), ev(2, "TEST002P1", "TEST001P1", t, true)];
        assert_eq!(pairs(&current_edges(&events)), [("TEST002P1", "TEST001P1")]);
        // Time beats id.
        let events = [ev(5, "A", "B", "2024-01-01 10:00:01", true), ev(9, "A", "B", t, false)];
        assert_eq!(current_edges(&events).len(), 1);
    }

    #[test]
    fn empty_and_helpers() {
        assert!(current_edges(&[]).is_empty());
        let edges = current_edges(&[
            ev(1, "A", "B", "t1", true),
            ev(2, "B", "C", "t2", true),
            ev(3, "A", "D", "t3", true),
        ]);
        assert_eq!(outgoing(&edges, "A").len(), 2);
        assert_eq!(incoming(&edges, "B").len(), 1);
        assert_eq!(incoming(&edges, "A").len(), 0);
        assert_eq!(edges_of(&edges, "B").len(), 2);
        assert!(edges[0].joins("B", "A") && edges[0].touches("A") && !edges[0].touches("C"));
        assert_eq!(edges[0].describe(), "A -> B (since t1)");
    }
}

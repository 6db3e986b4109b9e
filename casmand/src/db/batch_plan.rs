//! Deciding a whole batch of scan requests in memory, from one read of the
//! kept state: the fast path of group commit ([`super::batch`]).
//!
//! The writer reads the kept connections of every part the batch names (one
//! query), then applies the rules request by request, in arrival order, to
//! that state in memory: each request sees what the ones before it did,
//! exactly as if each had run in its own savepoint. A refused request plans
//! no event at all, so nothing of it can be written; the accepted requests'
//! events are then appended by one statement.
//!
//! This equals what the `assembly_keep_*` triggers make of the appended
//! events as long as every new event is the newest of its pair, which the
//! writer checks in the same read (no event of a named part is later than
//! the batch's first timestamp); otherwise it takes the savepoint path.

use super::{
    assembly::Current,
    scans::{Applied, ScanOp},
};
use crate::{
    error::{Error, Result},
    inventory::{Edge, Polarization, check_connection, check_disconnection},
};

/// An event to append, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// First end (upstream for a connect).
    pub source: String,
    /// Its type.
    pub source_type: Option<String>,
    /// Its polarization.
    pub source_pol: Option<String>,
    /// Other end.
    pub target: String,
    /// Its type.
    pub target_type: Option<String>,
    /// Its polarization.
    pub target_pol: Option<String>,
    /// `scan_time` and `connected_scan_time`.
    pub at: String,
    /// `connected` or `disconnected`.
    pub connected: bool,
}

/// A batch decided in memory: the events to append, in order, and one answer
/// per request. An edge made inside the batch carries a placeholder event id
/// until [`Plan::settle`] gives it the id its event got.
#[derive(Debug, Default)]
pub struct Plan {
    /// Events to append, in order.
    pub events: Vec<PlannedEvent>,
    /// One answer per request, in order.
    pub results: Vec<Result<Applied>>,
}

/// The placeholder id of the `k`-th planned event (negative: no stored event
/// has it).
fn placeholder(k: usize) -> i64 {
    -(k as i64) - 1
}

/// The names `op` looks up in the kept state.
pub fn parts_of(op: &ScanOp) -> Vec<&str> {
    match op {
        ScanOp::Connect { source, target } => vec![&source.id, &target.id],
        ScanOp::Disconnect { a, b } => vec![a, b],
        ScanOp::Remove { part } => vec![part],
    }
}

/// Decides `ops` (with their timestamps `at`) against `kept`: the kept
/// connections touching every part they name, oldest first by
/// `(since, event_id)` as [`super::assembly::current_touching`] returns them.
pub fn plan(mut kept: Vec<Current>, ops: &[&ScanOp], at: &[String]) -> Plan {
    let mut plan = Plan::default();
    for (op, at) in ops.iter().zip(at) {
        let edges: Vec<Edge> = {
            let parts = parts_of(op);
            kept.iter().filter(|c| parts.iter().any(|p| c.edge.touches(p))).map(|c| c.edge.clone()).collect()
        };
        let result = match op {
            ScanOp::Connect { source, target } => {
                check_connection(&source.terminal(), &target.terminal(), &edges).map(|()| {
                    let source_pol = source.polarization.map(|p| Polarization::as_str(p).to_owned());
                    let target_pol = target.polarization.map(|p| Polarization::as_str(p).to_owned());
                    let edge = Edge {
                        source: source.id.clone(),
                        source_type: Some(source.part_type.name().to_owned()),
                        target: target.id.clone(),
                        target_type: Some(target.part_type.name().to_owned()),
                        scan_time: at.clone(),
                        event_id: placeholder(plan.events.len()),
                    };
                    plan.events.push(PlannedEvent {
                        source: edge.source.clone(),
                        source_type: edge.source_type.clone(),
                        source_pol: source_pol.clone(),
                        target: edge.target.clone(),
                        target_type: edge.target_type.clone(),
                        target_pol: target_pol.clone(),
                        at: at.clone(),
                        connected: true,
                    });
                    // Newest of all: it sorts last, as a stored edge would.
                    kept.push(Current {
                        edge: edge.clone(),
                        source_polarization: source_pol,
                        target_polarization: target_pol,
                    });
                    Applied::Connected(edge)
                })
            }
            ScanOp::Disconnect { a, b } => {
                check_disconnection(a, b, &edges).map(|e| e.event_id).and_then(|id| {
                    let ended = end(&mut kept, &mut plan.events, id, at)
                        .ok_or_else(|| Error::internal("disconnect", "edge vanished"))?;
                    Ok(Applied::Disconnected(ended))
                })
            }
            ScanOp::Remove { .. } => {
                let ids: Vec<i64> = edges.iter().map(|e| e.event_id).collect();
                let ended =
                    ids.into_iter().filter_map(|id| end(&mut kept, &mut plan.events, id, at)).collect();
                Ok(Applied::Removed(ended))
            }
        };
        plan.results.push(result);
    }
    plan
}

/// Plans the disconnect of the kept edge made by event `id` (in its recorded
/// orientation, with the types and polarizations of that event) and drops it
/// from `kept`; returns the edge.
fn end(kept: &mut Vec<Current>, events: &mut Vec<PlannedEvent>, id: i64, at: &str) -> Option<Edge> {
    let i = kept.iter().position(|c| c.edge.event_id == id)?;
    let c = kept.remove(i);
    events.push(PlannedEvent {
        source: c.edge.source.clone(),
        source_type: c.edge.source_type.clone(),
        source_pol: c.source_polarization,
        target: c.edge.target.clone(),
        target_type: c.edge.target_type.clone(),
        target_pol: c.target_polarization,
        at: at.to_owned(),
        connected: false,
    });
    Some(c.edge)
}

impl Plan {
    /// Replaces the placeholder ids by `ids`, the ids the planned events got
    /// (in order). `false` if `ids` does not have one id per event.
    pub fn settle(&mut self, ids: &[i64]) -> bool {
        if ids.len() != self.events.len() {
            return false;
        }
        let real = |e: &mut Edge| {
            if e.event_id < 0 {
                e.event_id = ids[(-e.event_id - 1) as usize];
            }
        };
        for r in self.results.iter_mut().flatten() {
            match r {
                Applied::Connected(e) | Applied::Disconnected(e) => real(e),
                Applied::Removed(edges) => edges.iter_mut().for_each(real),
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{db::scans::Resolved, inventory::PartType};

    fn part(id: &str, t: PartType) -> Resolved {
        Resolved { id: id.into(), part_type: t, polarization: Some(Polarization::P1) }
    }

    fn connect(a: &str, b: &str) -> ScanOp {
        ScanOp::Connect { source: part(a, PartType::Antenna), target: part(b, PartType::Lna) }
    }

    fn kept(id: i64, a: &str, b: &str) -> Current {
        Current {
            edge: Edge {
                source: a.into(),
                source_type: Some("ANTENNA".into()),
                target: b.into(),
                target_type: Some("LNA".into()),
                scan_time: "2026-01-01T00:00:00Z".into(),
                event_id: id,
            },
            source_polarization: Some("P1".into()),
            target_polarization: Some("P1".into()),
        }
    }

    #[test]
    fn each_request_sees_the_ones_before_it_and_refusals_plan_nothing() {
        let ops = [
            connect("ANT00001P1", "LNA00001P1"),
            connect("ANT00002P1", "LNA00001P1"),
            ScanOp::Disconnect { a: "LNA00001P1".into(), b: "ANT00001P1".into() },
            ScanOp::Remove { part: "LNA00009P1".into() },
            connect("ANT00002P1", "LNA00001P1"),
            ScanOp::Disconnect { a: "ANT00003P1".into(), b: "LNA00003P1".into() },
        ];
        let refs: Vec<&ScanOp> = ops.iter().collect();
        let at: Vec<String> = (0..ops.len()).map(|_| "2026-02-01T00:00:00Z".to_owned()).collect();
        let mut p = plan(vec![kept(7, "ANT00009P1", "LNA00009P1")], &refs, &at);
        let e = p.results[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("LNA00001P1 already receives from ANT00001P1"), "{e}");
        let e = p.results[5].as_ref().unwrap_err().to_string();
        assert!(e.contains("not connected"), "{e}");
        // connect, its disconnect, the removal's disconnect, the reconnect.
        assert_eq!(p.events.len(), 4);
        assert_eq!(
            p.events.iter().map(|e| (e.source.as_str(), e.connected)).collect::<Vec<_>>(),
            [("ANT00001P1", true), ("ANT00001P1", false), ("ANT00009P1", false), ("ANT00002P1", true)]
        );
        assert!(p.settle(&[100, 101, 102, 103]));
        assert!(matches!(&p.results[0], Ok(Applied::Connected(e)) if e.event_id == 100));
        // The disconnect names the edge made inside the batch, by its real id.
        assert!(matches!(&p.results[2], Ok(Applied::Disconnected(e)) if e.event_id == 100));
        assert!(matches!(&p.results[3], Ok(Applied::Removed(v)) if v.len() == 1 && v[0].event_id == 7));
        assert!(matches!(&p.results[4], Ok(Applied::Connected(e)) if e.event_id == 103));
        assert!(!p.settle(&[1]));
    }
}

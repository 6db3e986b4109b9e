//! The connection rules casmand enforces (inside the write transaction, on
//! the current edges): chain order, polarization, one outgoing and one
//! incoming edge per part, a free SNAP port; and that a disconnect names a
//! current connection.

use super::{Edge, PartType, Polarization, events};
use crate::error::{Error, Result};

/// One end of a proposed connection, as resolved by the caller (from the
/// parts table, or from a SNAP port id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal<'a> {
    /// The part id as stored (`ANT00001P1`, `SNAP1A05`).
    pub id: &'a str,
    /// Its type.
    pub part_type: PartType,
    /// Its polarization; `None` for SNAP ports (and unknown for legacy parts).
    pub polarization: Option<Polarization>,
}

fn pol_text(p: Option<Polarization>) -> &'static str {
    p.map_or("has no polarization", |p| if p == Polarization::P1 { "is P1" } else { "is P2" })
}

/// Checks that `source -> target` may be connected given the current `edges`.
/// Refusals are [`Error::FailedPrecondition`] naming the parts and the rule;
/// connecting a part to itself is [`Error::InvalidArgument`].
pub fn check_connection(source: &Terminal<'_>, target: &Terminal<'_>, edges: &[Edge]) -> Result<()> {
    let (s, t) = (source, target);
    if s.id == t.id {
        return Err(Error::invalid(format!("cannot connect {} to itself", s.id)));
    }
    if s.part_type == PartType::Snap {
        return Err(Error::refused(format!(
            "{} is a SNAP port: SNAP only has incoming connections (from BACBOARD), so it cannot connect to {}",
            s.id, t.id
        )));
    }
    if t.part_type == PartType::Antenna {
        return Err(Error::refused(format!(
            "{} is an ANTENNA: ANTENNA only has outgoing connections (to LNA), so it cannot receive from {}",
            t.id, s.id
        )));
    }
    if s.part_type.successor() != Some(t.part_type) {
        let next = s.part_type.successor().map_or("none", PartType::name);
        return Err(Error::refused(format!(
            "{} can only connect to {next}, not {} ({} -> {})",
            s.part_type, t.part_type, s.id, t.id
        )));
    }
    let snap = s.part_type == PartType::Snap || t.part_type == PartType::Snap;
    if !snap && (s.polarization.is_none() || s.polarization != t.polarization) {
        return Err(Error::refused(format!(
            "Polarization mismatch: {} {} but {} {}; both ends must have the same polarization",
            s.id,
            pol_text(s.polarization),
            t.id,
            pol_text(t.polarization)
        )));
    }
    if let Some(e) = edges.iter().find(|e| e.joins(s.id, t.id)) {
        return Err(Error::refused(format!(
            "{} and {} are already connected ({})",
            s.id,
            t.id,
            e.describe()
        )));
    }
    if let Some(e) = events::outgoing(edges, s.id).first() {
        return Err(Error::refused(format!(
            "{} already connects to {} ({}); a part has one outgoing connection, disconnect it first",
            s.id,
            e.target,
            e.describe()
        )));
    }
    if let Some(e) = events::incoming(edges, t.id).first() {
        if t.part_type == PartType::Snap {
            return Err(Error::refused(format!(
                "SNAP port {} is in use by {} ({}); disconnect it first",
                t.id,
                e.source,
                e.describe()
            )));
        }
        return Err(Error::refused(format!(
            "{} already receives from {} ({}); a part has one incoming connection, disconnect it first",
            t.id,
            e.source,
            e.describe()
        )));
    }
    Ok(())
}

/// Checks that `a` and `b` are currently connected (in either order) and
/// returns that edge, in its recorded orientation.
pub fn check_disconnection<'e>(a: &str, b: &str, edges: &'e [Edge]) -> Result<&'e Edge> {
    edges.iter().find(|e| e.joins(a, b)).ok_or_else(|| {
        Error::refused(format!("{a} and {b} are not connected, so there is nothing to disconnect"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{current_edges, events::tests::ev};

    fn term(id: &str) -> Terminal<'_> {
        if crate::inventory::SnapPort::parse(id).is_ok() {
            return Terminal { id, part_type: PartType::Snap, polarization: None };
        }
        let pn = crate::inventory::PartNumber::parse(id).unwrap();
        Terminal { id, part_type: pn.part_type(), polarization: Some(pn.polarization()) }
    }

    fn check(from: &str, to: &str, edges: &[Edge]) -> Result<()> {
        check_connection(&term(from), &term(to), edges)
    }

    fn refusal(from: &str, to: &str, edges: &[Edge]) -> String {
        let e = check(from, to, edges).unwrap_err();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{e:?}");
        e.to_string()
    }

    #[test]
    fn successor_rule() {
        // Acceptance case 9.
        check("ANT00001P1", "LNA00001P1", &[]).unwrap();
        check("LNA00001P1", "CXS00001P1", &[]).unwrap();
        check("CXS00001P2", "CXL00001P2", &[]).unwrap();
        check("CXL00001P2", "BAC00001P2", &[]).unwrap();
        check("BAC00001P1", "SNAP1A05", &[]).unwrap();
        check("BAC00001P2", "SNAP4K11", &[]).unwrap();
        let m = refusal("ANT00001P1", "SNAP1A05", &[]);
        assert_eq!(m, "ANTENNA can only connect to LNA, not SNAP (ANT00001P1 -> SNAP1A05)");
        let m = refusal("LNA00001P1", "BAC00001P1", &[]);
        assert!(m.contains("LNA can only connect to COAXSHORT, not BACBOARD"), "{m}");
        let m = refusal("CXL00001P1", "CXS00001P1", &[]);
        assert!(m.contains("COAXLONG can only connect to BACBOARD, not COAXSHORT"), "{m}");
    }

    #[test]
    fn direction_rule() {
        // Acceptance case 10.
        let m = refusal("LNA00001P1", "ANT00001P1", &[]);
        assert!(m.contains("ANTENNA") && m.contains("outgoing"), "{m}");
        let m = refusal("SNAP1A05", "BAC00001P1", &[]);
        assert!(m.contains("SNAP") && m.contains("incoming"), "{m}");
        let e = check("ANT00001P1", "ANT00001P1", &[]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("itself"));
    }

    #[test]
    fn polarization_rule() {
        let m = refusal("ANT00001P1", "LNA00001P2", &[]);
        assert!(m.starts_with("Polarization mismatch: ANT00001P1 is P1 but LNA00001P2 is P2"), "{m}");
        let unknown = Terminal { id: "LNA00009P1", part_type: PartType::Lna, polarization: None };
        let m = check_connection(&term("ANT00001P1"), &unknown, &[]).unwrap_err().to_string();
        assert!(m.contains("LNA00009P1 has no polarization"), "{m}");
        // SNAP is exempt.
        check("BAC00001P2", "SNAP1A00", &[]).unwrap();
    }

    #[test]
    fn one_out_one_in_and_pairs() {
        let edges = current_edges(&[
            ev(1, "ANT00001P1", "LNA00001P1", "2026-01-01T00:00:01Z", true),
            ev(2, "BAC00001P1", "SNAP1A05", "2026-01-01T00:00:02Z", true),
        ]);
        let m = refusal("ANT00001P1", "LNA00001P1", &edges);
        assert!(m.contains("already connected") && m.contains("ANT00001P1 -> LNA00001P1"), "{m}");
        let m = refusal("ANT00001P1", "LNA00002P1", &edges);
        assert!(m.contains("ANT00001P1 already connects to LNA00001P1") && m.contains("one outgoing"), "{m}");
        let m = refusal("ANT00002P1", "LNA00001P1", &edges);
        assert!(
            m.contains("LNA00001P1 already receives from ANT00001P1") && m.contains("one incoming"),
            "{m}"
        );
        let m = refusal("BAC00002P1", "SNAP1A05", &edges);
        assert!(m.starts_with("SNAP port SNAP1A05 is in use by BAC00001P1"), "{m}");
        let m = refusal("BAC00001P1", "SNAP1A06", &edges);
        assert!(m.contains("BAC00001P1 already connects to SNAP1A05"), "{m}");
        check("ANT00002P1", "LNA00002P1", &edges).unwrap();
        check("LNA00001P1", "CXS00001P1", &edges).unwrap();
        check("BAC00002P1", "SNAP1A06", &edges).unwrap();
        // After a disconnect the slot is free again.
        let edges = current_edges(&[
            ev(1, "ANT00001P1", "LNA00001P1", "2026-01-01T00:00:01Z", true),
            ev(2, "LNA00001P1", "ANT00001P1", "2026-01-01T00:00:02Z", false),
        ]);
        check("ANT00001P1", "LNA00002P1", &edges).unwrap();
    }

    #[test]
    fn disconnection() {
        let edges = current_edges(&[ev(1, "ANT00001P1", "LNA00001P1", "t1", true)]);
        assert_eq!(check_disconnection("ANT00001P1", "LNA00001P1", &edges).unwrap().event_id, 1);
        let e = check_disconnection("LNA00001P1", "ANT00001P1", &edges).unwrap();
        assert_eq!((e.source.as_str(), e.target.as_str()), ("ANT00001P1", "LNA00001P1"));
        let e = check_disconnection("ANT00001P1", "LNA00002P1", &edges).unwrap_err();
        assert!(matches!(e, Error::FailedPrecondition(_)));
        assert!(e.to_string().contains("ANT00001P1 and LNA00002P1 are not connected"));
    }
}

//! SNAP boards (`SNAP1A`) and their input ports (`SNAP1A05`).
//!
//! A board sits in chassis 1-4, slot A-K (44 boards); each has 12 ADC input
//! ports 00-11 (528 ports). The canonical port id is `SNAP<chassis><slot><port:02>`;
//! the documented numeric form `SNAP<chassis:02><slot:02><port:02>` (slot 01 = A,
//! e.g. `SNAP010105` = `SNAP1A05`) is accepted and normalised.

use std::{fmt, ops::RangeInclusive, str::FromStr};

use crate::error::{Error, Result};

/// Chassis numbers.
pub const CHASSIS: RangeInclusive<u8> = 1..=4;
/// Slot letters.
pub const SLOTS: RangeInclusive<char> = 'A'..='K';
/// Port (ADC input) numbers on a board.
pub const PORTS: RangeInclusive<u8> = 0..=11;
/// F-engine ids (one per board).
pub const FENG_IDS: RangeInclusive<u8> = 0..=43;
/// Ports per board, the factor of the packet index.
pub const PORTS_PER_BOARD: u16 = 12;

const PORT_FORMS: &str = "expected SNAP<chassis 1-4><slot A-K><port 00-11>, e.g. SNAP1A05, \
                          or SNAP<chassis 01-04><slot 01-11><port 00-11>, e.g. SNAP010105";
const BOARD_FORMS: &str = "expected SNAP<chassis 1-4><slot A-K>, e.g. SNAP1A, \
                           or SNAP<chassis 01-04><slot 01-11>, e.g. SNAP0101";

/// The 0-based index of a slot letter (A = 0 … K = 10); case-insensitive.
pub fn slot_index(slot: char) -> Option<u8> {
    let s = slot.to_ascii_uppercase();
    SLOTS.contains(&s).then(|| s as u8 - b'A')
}

/// The slot letter of a 0-based index (0 = A … 10 = K).
pub fn slot_letter(index: u8) -> Option<char> {
    (index <= 10).then(|| char::from(b'A' + index))
}

/// The packet index of a port: `feng_id × 12 + port` (0-527).
pub fn packet_index(feng_id: u8, port: u8) -> Result<u16> {
    if !FENG_IDS.contains(&feng_id) {
        return Err(Error::invalid(format!("feng_id {feng_id}: must be 0-43")));
    }
    if !PORTS.contains(&port) {
        return Err(Error::invalid(format!("port {port}: must be 0-11")));
    }
    Ok(u16::from(feng_id) * PORTS_PER_BOARD + u16::from(port))
}

fn check_chassis(what: &str, input: &str, chassis: u8) -> Result<()> {
    if CHASSIS.contains(&chassis) {
        Ok(())
    } else {
        Err(Error::invalid(format!("{what} {input:?}: chassis {chassis} is out of range 1-4")))
    }
}

/// A SNAP board position: chassis and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapBoardId {
    chassis: u8,
    slot: char,
}

impl SnapBoardId {
    /// The board in `chassis` (1-4), `slot` (A-K, either case).
    pub fn new(chassis: u8, slot: char) -> Result<SnapBoardId> {
        let input = format!("SNAP{chassis}{slot}");
        check_chassis("SNAP board", &input, chassis)?;
        if slot_index(slot).is_none() {
            return Err(Error::invalid(format!("SNAP board {input:?}: slot {slot:?} is out of range A-K")));
        }
        Ok(SnapBoardId { chassis, slot: slot.to_ascii_uppercase() })
    }

    /// Parses `SNAP1A` or `SNAP0101` (trimmed, case-insensitive).
    pub fn parse(input: &str) -> Result<SnapBoardId> {
        let s = input.trim().to_ascii_uppercase();
        let bad = || Error::invalid(format!("SNAP board {input:?}: {BOARD_FORMS}"));
        let rest = s.strip_prefix("SNAP").ok_or_else(bad)?.as_bytes();
        match rest {
            [c @ b'0'..=b'9', sl] if sl.is_ascii_alphabetic() => {
                let chassis = c - b'0';
                check_chassis("SNAP board", input, chassis)?;
                SnapBoardId::new(chassis, char::from(*sl)).map_err(|_| {
                    Error::invalid(format!(
                        "SNAP board {input:?}: slot {} is out of range A-K",
                        char::from(*sl)
                    ))
                })
            }
            [c1, c2, s1, s2] if rest.iter().all(u8::is_ascii_digit) => {
                let chassis = (c1 - b'0') * 10 + (c2 - b'0');
                check_chassis("SNAP board", input, chassis)?;
                let slot = (s1 - b'0') * 10 + (s2 - b'0');
                let letter = slot.checked_sub(1).and_then(slot_letter).ok_or_else(|| {
                    Error::invalid(format!("SNAP board {input:?}: slot {slot:02} is out of range 01-11"))
                })?;
                Ok(SnapBoardId { chassis, slot: letter })
            }
            _ => Err(bad()),
        }
    }

    /// All 44 boards, chassis by chassis, slots A-K.
    pub fn all() -> impl Iterator<Item = SnapBoardId> {
        CHASSIS.flat_map(|chassis| SLOTS.map(move |slot| SnapBoardId { chassis, slot }))
    }

    /// The chassis, 1-4.
    pub fn chassis(self) -> u8 {
        self.chassis
    }

    /// The slot letter, `A`-`K`.
    pub fn slot(self) -> char {
        self.slot
    }

    /// The 0-based slot index (A = 0).
    pub fn slot_index(self) -> u8 {
        self.slot as u8 - b'A'
    }

    /// The board's port `port` (0-11).
    pub fn port(self, port: u8) -> Result<SnapPort> {
        SnapPort::new(self.chassis, self.slot, port)
    }

    /// The board's 12 ports in order.
    pub fn ports(self) -> impl Iterator<Item = SnapPort> {
        PORTS.map(move |port| SnapPort { board: self, port })
    }
}

impl fmt::Display for SnapBoardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SNAP{}{}", self.chassis, self.slot)
    }
}

impl FromStr for SnapBoardId {
    type Err = Error;

    fn from_str(s: &str) -> Result<SnapBoardId> {
        SnapBoardId::parse(s)
    }
}

/// One SNAP input port, e.g. `SNAP1A05`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapPort {
    board: SnapBoardId,
    port: u8,
}

impl SnapPort {
    /// The port `port` (0-11) of the board in `chassis` (1-4), `slot` (A-K).
    pub fn new(chassis: u8, slot: char, port: u8) -> Result<SnapPort> {
        let board = SnapBoardId::new(chassis, slot)?;
        if !PORTS.contains(&port) {
            return Err(Error::invalid(format!(
                "SNAP port \"{board}{port:02}\": port {port} is out of range 00-11"
            )));
        }
        Ok(SnapPort { board, port })
    }

    /// Parses `SNAP1A05` or the numeric form `SNAP010105` (trimmed,
    /// case-insensitive); the result displays canonically.
    pub fn parse(input: &str) -> Result<SnapPort> {
        let s = input.trim().to_ascii_uppercase();
        let bad = || Error::invalid(format!("SNAP port {input:?}: {PORT_FORMS}"));
        let rest = s.strip_prefix("SNAP").filter(|r| r.is_ascii()).ok_or_else(bad)?;
        let (board, port) = match rest.len() {
            4 => (&rest[..2], &rest[2..]),
            6 if rest.bytes().all(|b| b.is_ascii_digit()) => (&rest[..4], &rest[4..]),
            _ => return Err(bad()),
        };
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let board = SnapBoardId::parse(&format!("SNAP{board}")).map_err(|e| {
            // Re-word the board error so it names the port the user typed.
            let detail = e.to_string();
            let rule = detail.split_once(": ").map_or(detail.as_str(), |(_, r)| r);
            if rule.starts_with("expected") {
                bad()
            } else {
                Error::invalid(format!("SNAP port {input:?}: {rule}"))
            }
        })?;
        let port: u8 = port.parse().map_err(|_| bad())?;
        if !PORTS.contains(&port) {
            return Err(Error::invalid(format!("SNAP port {input:?}: port {port:02} is out of range 00-11")));
        }
        Ok(SnapPort { board, port })
    }

    /// The board the port belongs to.
    pub fn board(self) -> SnapBoardId {
        self.board
    }

    /// The chassis, 1-4.
    pub fn chassis(self) -> u8 {
        self.board.chassis
    }

    /// The slot letter, `A`-`K`.
    pub fn slot(self) -> char {
        self.board.slot
    }

    /// The port (ADC input), 0-11.
    pub fn port(self) -> u8 {
        self.port
    }

    /// The packet index of this port on a board with F-engine id `feng_id`.
    pub fn packet_index(self, feng_id: u8) -> Result<u16> {
        packet_index(feng_id, self.port)
    }

    /// The documented numeric form, `SNAP010105` for `SNAP1A05`.
    pub fn numeric_id(self) -> String {
        format!("SNAP{:02}{:02}{:02}", self.board.chassis, self.board.slot_index() + 1, self.port)
    }
}

impl fmt::Display for SnapPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:02}", self.board, self.port)
    }
}

impl FromStr for SnapPort {
    type Err = Error;

    fn from_str(s: &str) -> Result<SnapPort> {
        SnapPort::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_canonical() {
        // Acceptance case 11 and real examples.
        for s in ["SNAP1A00", "SNAP4K11", "SNAP2E05", "SNAP3B10", "SNAP4H11", "SNAP1I03", "SNAP2B05"] {
            assert_eq!(SnapPort::parse(s).unwrap().to_string(), s);
        }
        let p = SnapPort::parse("SNAP1A05").unwrap();
        assert_eq!((p.chassis(), p.slot(), p.port()), (1, 'A', 5));
        assert_eq!(p.board().to_string(), "SNAP1A");
        // casman accepts any case and surrounding blanks.
        assert_eq!(SnapPort::parse(" snap1a00 ").unwrap().to_string(), "SNAP1A00");
    }

    #[test]
    fn parse_numeric_form() {
        let p = SnapPort::parse("SNAP010105").unwrap();
        assert_eq!(p.to_string(), "SNAP1A05");
        assert_eq!(p.numeric_id(), "SNAP010105");
        assert_eq!(SnapPort::parse("SNAP010203").unwrap().to_string(), "SNAP1B03");
        assert_eq!(SnapPort::parse("snap041111").unwrap().to_string(), "SNAP4K11");
        for p in SnapBoardId::all().flat_map(SnapBoardId::ports) {
            assert_eq!(SnapPort::parse(&p.numeric_id()).unwrap(), p);
            assert_eq!(SnapPort::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn parse_rejects_invalid() {
        for (bad, needle) in [
            ("SNAP_1A00", "expected SNAP<chassis 1-4>"),
            ("SNAP1A12", "port 12 is out of range 00-11"),
            ("SNAP0A00", "chassis 0 is out of range 1-4"),
            ("SNAP5A00", "chassis 5 is out of range 1-4"),
            ("SNAP1L00", "slot L is out of range A-K"),
            ("SNAP1Z00", "slot Z is out of range A-K"),
            ("SNAP1A99", "port 99 is out of range"),
            ("SNAP1A00_ADC0", "expected"),
            ("SNAP4K100", "expected"),
            ("SNAP9Z99", "chassis 9"),
            ("SNAP999Z99", "expected"),
            ("SNAP050101", "chassis 5"),
            ("SNAP011201", "slot 12 is out of range 01-11"),
            ("SNAP010001", "slot 00 is out of range 01-11"),
            ("SNAP010112", "port 12"),
            ("SNAP1A0X", "expected"),
            ("SNP1A05", "expected"),
            ("", "expected"),
        ] {
            let e = SnapPort::parse(bad).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, Error::InvalidArgument(_)));
            assert!(msg.contains(&format!("{bad:?}")) && msg.contains(needle), "{bad}: {msg}");
        }
    }

    #[test]
    fn new_and_count() {
        assert_eq!(SnapPort::new(1, 'a', 0).unwrap().to_string(), "SNAP1A00");
        assert_eq!(SnapPort::new(4, 'K', 11).unwrap().to_string(), "SNAP4K11");
        assert_eq!(SnapPort::new(2, 'E', 5).unwrap().to_string(), "SNAP2E05");
        assert!(SnapPort::new(1, 'A', 12).unwrap_err().to_string().contains("port 12"));
        assert!(SnapPort::new(5, 'A', 0).is_err());
        assert!(SnapPort::new(1, 'L', 0).is_err());
        assert_eq!(SnapBoardId::all().count(), 44);
        assert_eq!(SnapBoardId::all().flat_map(SnapBoardId::ports).count(), 528);
    }

    #[test]
    fn boards() {
        let b = SnapBoardId::parse("snap2c").unwrap();
        assert_eq!((b.chassis(), b.slot(), b.slot_index()), (2, 'C', 2));
        assert_eq!(b.to_string(), "SNAP2C");
        assert_eq!(SnapBoardId::parse("SNAP0411").unwrap().to_string(), "SNAP4K");
        assert_eq!(b.port(7).unwrap().to_string(), "SNAP2C07");
        for bad in ["SNAP1", "SNAP5A", "SNAP1L", "SNAP1A05", "BOARD1A", "SNAP0112"] {
            assert!(SnapBoardId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SnapBoardId::all().next().unwrap().to_string(), "SNAP1A");
        assert_eq!(SnapBoardId::all().last().unwrap().to_string(), "SNAP4K");
    }

    #[test]
    fn slots_and_packet_index() {
        assert_eq!(slot_index('A'), Some(0));
        assert_eq!(slot_index('k'), Some(10));
        assert_eq!(slot_index('L'), None);
        assert_eq!(slot_letter(10), Some('K'));
        assert_eq!(slot_letter(11), None);
        // The documented examples.
        assert_eq!(packet_index(0, 5).unwrap(), 5);
        assert_eq!(packet_index(0, 11).unwrap(), 11);
        assert_eq!(packet_index(11, 0).unwrap(), 132);
        assert_eq!(packet_index(11, 5).unwrap(), 137);
        assert_eq!(packet_index(43, 11).unwrap(), 527);
        assert!(packet_index(44, 0).unwrap_err().to_string().contains("feng_id 44"));
        assert!(packet_index(0, 12).unwrap_err().to_string().contains("port 12"));
        assert_eq!(SnapPort::parse("SNAP2A05").unwrap().packet_index(11).unwrap(), 137);
    }
}

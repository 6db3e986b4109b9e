//! Part numbers `<ABBR><5 digits>P<1|2>` (e.g. `ANT00001P1`), their
//! generation ranges, and the classification of ids met in legacy databases.

use std::{fmt, ops::RangeInclusive, str::FromStr};

use super::{PartType, Polarization, SnapPort};
use crate::error::{Error, Result};

/// The highest part number; numbers never grow a sixth digit.
pub const MAX_PART_NUMBER: u32 = 99_999;

const FORMAT: &str = "expected <ABBR><5 digits>P<1|2>, e.g. ANT00001P1";

/// A regular part number: type (by its prefix), number 1-99999, polarization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartNumber {
    part_type: PartType,
    number: u32,
    polarization: Polarization,
}

impl PartNumber {
    /// The part number of `part_type`, `number` (1-99999) and `polarization`.
    pub fn new(part_type: PartType, number: u32, polarization: Polarization) -> Result<PartNumber> {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(Error::invalid(format!(
                "part number {}{number:05}{polarization}: number {number} is out of range 1-{MAX_PART_NUMBER}",
                part_type.abbreviation()
            )));
        }
        Ok(PartNumber { part_type, number, polarization })
    }

    /// Parses an id already in the canonical spelling (`ANT00001P1`: ten
    /// bytes, upper case, no spaces) without allocating; None for anything
    /// else, which [`PartNumber::parse`] may still accept. For code that
    /// reads every id of a database.
    pub fn parse_canonical(id: &str) -> Option<PartNumber> {
        let b = id.as_bytes();
        if b.len() != 10 || !b[3..8].iter().all(u8::is_ascii_digit) || b[8] != b'P' {
            return None;
        }
        let part_type = PartType::from_abbreviation(id.get(..3)?)?;
        let polarization = match b[9] {
            b'1' => Polarization::P1,
            b'2' => Polarization::P2,
            _ => return None,
        };
        let number = id.get(3..8)?.parse().ok().filter(|&n| n >= 1)?;
        Some(PartNumber { part_type, number, polarization })
    }

    /// Parses a stored id in any spelling [`PartNumber::parse`] accepts,
    /// without allocating when it is already canonical.
    pub fn parse_stored(id: &str) -> Option<PartNumber> {
        PartNumber::parse_canonical(id).or_else(|| PartNumber::parse(id).ok())
    }

    /// Parses `ANT00001P1` (trimmed, case-insensitive); displays upper-case.
    /// The prefix must be one of `ANT`, `LNA`, `CXS`, `CXL`, `BAC`, `SNP`.
    pub fn parse(input: &str) -> Result<PartNumber> {
        let s = input.trim().to_ascii_uppercase();
        let bad = |why: &str| Error::invalid(format!("part number {input:?}: {why}{FORMAT}"));
        let digits_at = s.find(|c: char| c.is_ascii_digit()).ok_or_else(|| bad(""))?;
        let (prefix, rest) = s.split_at(digits_at);
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad(""));
        }
        let part_type = PartType::from_abbreviation(prefix).ok_or_else(|| {
            bad(&format!("unknown prefix {prefix} (known: ANT, LNA, CXS, CXL, BAC, SNP); "))
        })?;
        let (digits, pol) = rest.split_once('P').ok_or_else(|| bad(""))?;
        if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("the number must have exactly 5 digits, not {:?}; ", digits)));
        }
        let polarization = match pol {
            "1" => Polarization::P1,
            "2" => Polarization::P2,
            _ => return Err(bad(&format!("polarization P{pol} is not P1 or P2; "))),
        };
        let number: u32 = digits.parse().map_err(|_| bad(""))?;
        if number == 0 {
            return Err(bad("number 00000 is out of range 00001-99999; "));
        }
        Ok(PartNumber { part_type, number, polarization })
    }

    /// The type given by the prefix.
    pub fn part_type(self) -> PartType {
        self.part_type
    }

    /// The number, 1-99999.
    pub fn number(self) -> u32 {
        self.number
    }

    /// The polarization given by the suffix.
    pub fn polarization(self) -> Polarization {
        self.polarization
    }

    /// The same part with the other polarization (`ANT00001P1` ⇄ `ANT00001P2`).
    pub fn with_polarization(self, polarization: Polarization) -> PartNumber {
        PartNumber { polarization, ..self }
    }
}

impl fmt::Display for PartNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:05}{}", self.part_type.abbreviation(), self.number, self.polarization)
    }
}

impl FromStr for PartNumber {
    type Err = Error;

    fn from_str(s: &str) -> Result<PartNumber> {
        PartNumber::parse(s)
    }
}

/// The numbers `parts add` gives `count` new parts of one (type, polarization)
/// whose highest existing number is `highest_existing` (`None`: no parts yet):
/// `highest+1 ..= highest+count`. A number is never reused and never exceeds
/// 99999.
pub fn next_numbers(highest_existing: Option<u32>, count: u32) -> Result<RangeInclusive<u32>> {
    if count == 0 || count > MAX_PART_NUMBER {
        return Err(Error::invalid(format!("count {count}: must be 1-{MAX_PART_NUMBER}")));
    }
    let highest = highest_existing.unwrap_or(0);
    let first = highest.saturating_add(1);
    match first.checked_add(count - 1) {
        Some(last) if last <= MAX_PART_NUMBER => Ok(first..=last),
        _ => Err(Error::refused(format!(
            "cannot add {count} parts: the highest existing number is {highest:05} and part numbers \
             stop at {MAX_PART_NUMBER} ({} left)",
            MAX_PART_NUMBER.saturating_sub(highest)
        ))),
    }
}

/// The shape of a historic part id that casman keeps as it is (never renamed)
/// and flags when adopting a legacy database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoricFormat {
    /// `ANTP1-00001`: polarization before a dashed number (Aug 2025 dev scripts).
    PolarizationFirst,
    /// `ANT-P1-00001`, `CX1-P1-00001`: dashed prefix, polarization, number.
    Dashed,
    /// Letters, digits, `P`, polarization, but not a current number: test
    /// fixtures like `TEST001P1`, wrong digit counts, polarizations like `P3`.
    OtherNumbering,
}

/// What a part id found in a database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartId {
    /// A current part number in canonical form.
    Current(PartNumber),
    /// A SNAP port in canonical form (`SNAP1A05`).
    Snap(SnapPort),
    /// A current part number or SNAP port in another spelling (lower case,
    /// blanks, numeric SNAP form); `canonical` is how casman writes it.
    NonCanonical {
        /// The id as stored.
        id: String,
        /// Its canonical spelling.
        canonical: String,
    },
    /// A historic format, kept as it is.
    Historic {
        /// The id as stored.
        id: String,
        /// Which historic format.
        format: HistoricFormat,
    },
    /// Anything else.
    Unrecognised(String),
}

/// Classifies a stored part id exactly as stored (see [`PartId`]).
pub fn classify_part_id(id: &str) -> PartId {
    if let Ok(pn) = PartNumber::parse(id) {
        let canonical = pn.to_string();
        return if canonical == id {
            PartId::Current(pn)
        } else {
            PartId::NonCanonical { id: id.to_owned(), canonical }
        };
    }
    if let Ok(port) = SnapPort::parse(id) {
        let canonical = port.to_string();
        return if canonical == id {
            PartId::Snap(port)
        } else {
            PartId::NonCanonical { id: id.to_owned(), canonical }
        };
    }
    let upper = id.to_ascii_uppercase();
    let format = if is_polarization_first(&upper) {
        Some(HistoricFormat::PolarizationFirst)
    } else if is_dashed(&upper) {
        Some(HistoricFormat::Dashed)
    } else if is_other_numbering(&upper) {
        Some(HistoricFormat::OtherNumbering)
    } else {
        None
    };
    match format {
        Some(format) => PartId::Historic { id: id.to_owned(), format },
        None => PartId::Unrecognised(id.to_owned()),
    }
}

fn all(s: &str, pred: fn(&u8) -> bool) -> bool {
    !s.is_empty() && s.as_bytes().iter().all(pred)
}

/// `^[A-Z]+P[0-9]+-[0-9]+$`
fn is_polarization_first(s: &str) -> bool {
    let Some((head, number)) = s.split_once('-') else { return false };
    let Some((letters, pol)) = head.rsplit_once('P') else { return false };
    all(letters, u8::is_ascii_uppercase) && all(pol, u8::is_ascii_digit) && all(number, u8::is_ascii_digit)
}

/// `^[A-Z0-9]+-P[0-9]+-[0-9]+$`
fn is_dashed(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(prefix), Some(pol), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    all(prefix, u8::is_ascii_alphanumeric)
        && pol.strip_prefix('P').is_some_and(|p| all(p, u8::is_ascii_digit))
        && all(number, u8::is_ascii_digit)
}

/// `^[A-Z]+[0-9]+P[A-Z0-9]+$`
fn is_other_numbering(s: &str) -> bool {
    let Some(digits_at) = s.find(|c: char| c.is_ascii_digit()) else { return false };
    let (letters, rest) = s.split_at(digits_at);
    let Some((digits, pol)) = rest.split_once('P') else { return false };
    all(letters, u8::is_ascii_uppercase)
        && all(digits, u8::is_ascii_digit)
        && all(pol, u8::is_ascii_alphanumeric)
}

/// The base antenna number of an antenna id (section 5.2): `ANT00001P1`,
/// `ant00001p2` and `ANT00001` give `ANT00001` (upper-cased); anything not
/// matching `^ANT\d{5}(P[12])?$` case-insensitively is returned unchanged
/// (e.g. `ANTP100001`).
pub fn base_antenna(id: &str) -> String {
    let upper = id.to_ascii_uppercase();
    let base = upper.strip_suffix("P1").or_else(|| upper.strip_suffix("P2")).unwrap_or(&upper);
    let is_base =
        base.len() == 8 && base.starts_with("ANT") && base.as_bytes()[3..].iter().all(u8::is_ascii_digit);
    if is_base { base.to_owned() } else { id.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_canonical_agrees_with_parse() {
        for id in ["ANT00001P1", "LNA99999P2", "SNP00042P1", "CXS00100P2", "BAC12345P1"] {
            assert_eq!(PartNumber::parse_canonical(id), PartNumber::parse(id).ok(), "{id}");
            assert_eq!(PartNumber::parse_stored(id).map(|n| n.to_string()).as_deref(), Some(id));
        }
        for id in
            ["ant00001p1", " ANT00001P1", "ANT00000P1", "ANT00001P3", "XYZ00001P1", "ANT0001P1", "ANTé0001P1"]
        {
            assert_eq!(PartNumber::parse_canonical(id), None, "{id}");
            assert_eq!(PartNumber::parse_stored(id), PartNumber::parse(id).ok(), "{id}");
        }
    }

    #[test]
    fn valid_numbers() {
        // Acceptance cases 1 and 4.
        for s in
            ["ANT00001P1", "LNA00123P2", "CXS00001P1", "BAC00001P1", "LNA00042P2", "SNP00001P1", "CXL00258P2"]
        {
            let pn = PartNumber::parse(s).unwrap();
            assert_eq!(pn.to_string(), s, "normalising a valid number gives it back");
        }
        let pn = PartNumber::parse("ANT00001P1").unwrap();
        assert_eq!(
            (pn.part_type(), pn.number(), pn.polarization()),
            (PartType::Antenna, 1, Polarization::P1)
        );
        let pn: PartNumber = "LNA00042P2".parse().unwrap();
        assert_eq!((pn.part_type(), pn.number(), pn.polarization()), (PartType::Lna, 42, Polarization::P2));
        assert_eq!(PartNumber::parse("CXS00001P1").unwrap().part_type(), PartType::CoaxShort);
        assert_eq!(PartNumber::parse("SNP00001P1").unwrap().part_type(), PartType::Snap);
        // casman: case-insensitive, trimmed, canonical upper-case.
        assert_eq!(PartNumber::parse(" ant00001p2 ").unwrap().to_string(), "ANT00001P2");
        assert_eq!(PartNumber::parse("ANT99999P1").unwrap().number(), 99_999);
    }

    #[test]
    fn invalid_numbers() {
        for (bad, needle) in [
            ("A00001P1", "unknown prefix A"),
            ("TOOLONG00001P1", "unknown prefix TOOLONG"),
            ("ANT0001P1", "exactly 5 digits"),
            ("ANT000001P1", "exactly 5 digits"),
            ("ANT00001X1", "expected <ABBR>"),
            ("", "expected <ABBR>"),
            ("AAAAA", "expected <ABBR>"),
            ("INVALID", "expected <ABBR>"),
            ("ANT00001P3", "P3 is not P1 or P2"),
            ("ANT00001PV", "PV is not P1 or P2"),
            ("ANT00001P", "P is not P1 or P2"),
            ("ANT00000P1", "number 00000"),
            ("ANTP1-00001", "unknown prefix ANTP"),
            ("ANT-P1-00001", "expected <ABBR>"),
            ("SNAP1A05", "unknown prefix SNAP"),
            ("ANT00001P1X", "not P1 or P2"),
            ("1ANT00001P1", "expected <ABBR>"),
            ("ÄNT00001P1", "expected <ABBR>"),
        ] {
            let e = PartNumber::parse(bad).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, Error::InvalidArgument(_)));
            assert!(msg.starts_with(&format!("part number {bad:?}: ")), "{msg}");
            assert!(msg.contains(needle) && msg.contains("e.g. ANT00001P1"), "{bad}: {msg}");
        }
    }

    #[test]
    fn new_checks_range() {
        let pn = PartNumber::new(PartType::Bacboard, 7, Polarization::P2).unwrap();
        assert_eq!(pn.to_string(), "BAC00007P2");
        assert_eq!(pn.with_polarization(Polarization::P1).to_string(), "BAC00007P1");
        assert!(PartNumber::new(PartType::Lna, 0, Polarization::P1).is_err());
        let e = PartNumber::new(PartType::Lna, 100_000, Polarization::P1).unwrap_err();
        assert!(e.to_string().contains("100000 is out of range"), "{e}");
    }

    #[test]
    fn next_number_ranges() {
        // Acceptance case 6: empty DB, count 3 -> 1..=3.
        assert_eq!(next_numbers(None, 3).unwrap(), 1..=3);
        assert_eq!(next_numbers(Some(6), 2).unwrap(), 7..=8);
        assert_eq!(next_numbers(Some(99_998), 1).unwrap(), 99_999..=99_999);
        assert_eq!(next_numbers(None, 99_999).unwrap(), 1..=99_999);
        let e = next_numbers(Some(99_998), 5).unwrap_err();
        assert!(matches!(e, Error::FailedPrecondition(_)));
        let msg = e.to_string();
        assert!(
            msg.contains("cannot add 5 parts") && msg.contains("99998") && msg.contains("1 left"),
            "{msg}"
        );
        assert!(next_numbers(Some(99_999), 1).is_err());
        assert!(next_numbers(Some(u32::MAX), 1).unwrap_err().to_string().contains("0 left"));
        let e = next_numbers(None, 0).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("count 0"));
        assert!(next_numbers(None, 100_000).is_err());
    }

    #[test]
    fn classify_ids() {
        let pn = PartNumber::parse("ANT00001P1").unwrap();
        assert_eq!(classify_part_id("ANT00001P1"), PartId::Current(pn));
        assert_eq!(classify_part_id("SNAP4H11"), PartId::Snap(SnapPort::parse("SNAP4H11").unwrap()));
        assert_eq!(
            classify_part_id("ant00001p1"),
            PartId::NonCanonical { id: "ant00001p1".into(), canonical: "ANT00001P1".into() }
        );
        assert_eq!(
            classify_part_id("SNAP010105"),
            PartId::NonCanonical { id: "SNAP010105".into(), canonical: "SNAP1A05".into() }
        );
        let historic = |id: &str, format| PartId::Historic { id: id.into(), format };
        assert_eq!(
            classify_part_id("ANTP1-00001"),
            historic("ANTP1-00001", HistoricFormat::PolarizationFirst)
        );
        assert_eq!(
            classify_part_id("BACP2-00258"),
            historic("BACP2-00258", HistoricFormat::PolarizationFirst)
        );
        assert_eq!(classify_part_id("ANT-P1-00001"), historic("ANT-P1-00001", HistoricFormat::Dashed));
        assert_eq!(classify_part_id("CX1-P1-00001"), historic("CX1-P1-00001", HistoricFormat::Dashed));
        assert_eq!(classify_part_id("TEST001P1"), historic("TEST001P1", HistoricFormat::OtherNumbering));
        assert_eq!(classify_part_id("LNA00001P3"), historic("LNA00001P3", HistoricFormat::OtherNumbering));
        for junk in ["", "FOO", "SNAP4K100", "ANT-00001", "-P1-1", "ANTP1-", "P1-00001"] {
            assert_eq!(classify_part_id(junk), PartId::Unrecognised(junk.into()), "{junk:?}");
        }
    }

    #[test]
    fn base_antenna_strip_rule() {
        assert_eq!(base_antenna("ANT00001P1"), "ANT00001");
        assert_eq!(base_antenna("ANT00001P2"), "ANT00001");
        assert_eq!(base_antenna("ant00001p1"), "ANT00001");
        assert_eq!(base_antenna("ANT00001"), "ANT00001");
        assert_eq!(base_antenna("ant00042"), "ANT00042");
        for same in ["ANTP100001", "ANT00001P3", "ANT0001P1", "LNA00001P1", "", "ANT00001P1 ", "ANTABCDEP1"] {
            assert_eq!(base_antenna(same), same);
        }
    }
}

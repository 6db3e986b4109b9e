//! Polarizations (`P1`/`P2`) and the normalisation of the values the Python
//! tool stored (`1`, `2`, `N/A`, `X`).

use std::{fmt, str::FromStr};

use crate::error::{Error, Result};

/// One of the two feed polarizations. Stored as `P1`/`P2`; SNAP ports have none
/// (NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Polarization {
    /// Polarization 1.
    P1,
    /// Polarization 2.
    P2,
}

impl Polarization {
    /// Both polarizations.
    pub const ALL: [Polarization; 2] = [Polarization::P1, Polarization::P2];

    /// Parses user input: `1`, `2`, `P1`, `P2` in any case, surrounding
    /// whitespace ignored.
    pub fn parse(input: &str) -> Result<Polarization> {
        match input.trim().to_ascii_uppercase().as_str() {
            "1" | "P1" => Ok(Polarization::P1),
            "2" | "P2" => Ok(Polarization::P2),
            _ => Err(Error::invalid(format!("polarization {input:?}: expected 1, 2, P1 or P2"))),
        }
    }

    /// The stored form: `P1` or `P2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Polarization::P1 => "P1",
            Polarization::P2 => "P2",
        }
    }

    /// The digit: 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            Polarization::P1 => 1,
            Polarization::P2 => 2,
        }
    }
}

impl fmt::Display for Polarization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Polarization {
    type Err = Error;

    fn from_str(s: &str) -> Result<Polarization> {
        Polarization::parse(s)
    }
}

/// What adoption does with one stored polarization value (`parts.polarization`,
/// `assembly.polarization`, `assembly.connected_polarization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyPol {
    /// Already in casman's form (`P1`, `P2` or NULL): leave it.
    Same,
    /// Replace it with this value (`None` = NULL); the caller records the
    /// original in `legacy_values`.
    Changed(Option<Polarization>),
    /// Not a polarization casman knows (e.g. `3`, which the Python CLI let
    /// through, or `PV`): keep it as it is and flag it in the adoption report.
    Unrecognised,
}

/// Decides how a stored legacy polarization is normalised on adoption:
///
/// | stored | result |
/// |---|---|
/// | NULL, `P1`, `P2` | [`LegacyPol::Same`] |
/// | `1`, `2`, `p1`, ` 1 ` … | `Changed(Some(P1/P2))` |
/// | `N/A` (SNAP ends), `X` (written by "remove part" on disconnect rows: unknown), empty | `Changed(None)` |
/// | anything else | [`LegacyPol::Unrecognised`] |
///
/// `X` becomes NULL rather than being guessed from the part number: it
/// recorded "unknown", the original is kept by the caller, and disconnect rows
/// need no polarization.
pub fn normalize_legacy_polarization(stored: Option<&str>) -> LegacyPol {
    let Some(value) = stored else {
        return LegacyPol::Same;
    };
    if value == "P1" || value == "P2" {
        return LegacyPol::Same;
    }
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("N/A") || trimmed.eq_ignore_ascii_case("X") {
        return LegacyPol::Changed(None);
    }
    match Polarization::parse(trimmed) {
        Ok(p) => LegacyPol::Changed(Some(p)),
        Err(_) => LegacyPol::Unrecognised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_numbers_and_names() {
        for (s, p) in [
            ("1", Polarization::P1),
            ("2", Polarization::P2),
            ("P1", Polarization::P1),
            ("p2", Polarization::P2),
            (" P2 ", Polarization::P2),
            ("\tp1\n", Polarization::P1),
        ] {
            assert_eq!(Polarization::parse(s).unwrap(), p, "{s:?}");
            assert_eq!(s.parse::<Polarization>().unwrap(), p);
        }
    }

    #[test]
    fn parse_rejects_others() {
        for bad in ["", "3", "P", "V", "PV", "PH", "P3", "P12", "N/A", "X", "0"] {
            let e = Polarization::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)));
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn display_and_number() {
        assert_eq!(Polarization::P1.to_string(), "P1");
        assert_eq!(Polarization::P2.as_str(), "P2");
        assert_eq!(Polarization::P2.number(), 2);
    }

    #[test]
    fn legacy_values() {
        use LegacyPol::*;
        assert_eq!(normalize_legacy_polarization(None), Same);
        assert_eq!(normalize_legacy_polarization(Some("P1")), Same);
        assert_eq!(normalize_legacy_polarization(Some("P2")), Same);
        assert_eq!(normalize_legacy_polarization(Some("1")), Changed(Some(Polarization::P1)));
        assert_eq!(normalize_legacy_polarization(Some("2")), Changed(Some(Polarization::P2)));
        assert_eq!(normalize_legacy_polarization(Some("p1")), Changed(Some(Polarization::P1)));
        assert_eq!(normalize_legacy_polarization(Some(" P2")), Changed(Some(Polarization::P2)));
        assert_eq!(normalize_legacy_polarization(Some("N/A")), Changed(None));
        assert_eq!(normalize_legacy_polarization(Some("X")), Changed(None));
        assert_eq!(normalize_legacy_polarization(Some("")), Changed(None));
        assert_eq!(normalize_legacy_polarization(Some("3")), Unrecognised);
        assert_eq!(normalize_legacy_polarization(Some("PV")), Unrecognised);
    }
}

//! The six part types of a CASM signal chain, in chain order.

use std::{fmt, str::FromStr};

use crate::error::{Error, Result};

/// A kind of part. The declaration order is the chain order: an edge always
/// goes from a type to its [`successor`](PartType::successor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartType {
    /// The antenna feed; the head of every chain.
    Antenna,
    /// Low-noise amplifier.
    Lna,
    /// Short coaxial cable.
    CoaxShort,
    /// Long coaxial cable.
    CoaxLong,
    /// Back-end (BAC) board.
    Bacboard,
    /// A SNAP board input port; the end of every chain.
    Snap,
}

/// What [`PartType::parse`] accepts, for error messages.
/// The same list as the README's "Part types" and `casmanctl parts add --help`.
const ACCEPTED: &str = "one of ANTENNA (ANT, 1), LNA (2), COAXSHORT (CXS, 3), COAXLONG (CXL, 4), \
                        BACBOARD (BAC, 5), SNAP (SNP, 6), in any case";

impl PartType {
    /// All types in chain order.
    pub const ALL: [PartType; 6] = [
        PartType::Antenna,
        PartType::Lna,
        PartType::CoaxShort,
        PartType::CoaxLong,
        PartType::Bacboard,
        PartType::Snap,
    ];

    /// The stored type name: `ANTENNA`, `LNA`, `COAXSHORT`, `COAXLONG`, `BACBOARD`, `SNAP`.
    pub fn name(self) -> &'static str {
        match self {
            PartType::Antenna => "ANTENNA",
            PartType::Lna => "LNA",
            PartType::CoaxShort => "COAXSHORT",
            PartType::CoaxLong => "COAXLONG",
            PartType::Bacboard => "BACBOARD",
            PartType::Snap => "SNAP",
        }
    }

    /// The part-number prefix: `ANT`, `LNA`, `CXS`, `CXL`, `BAC`; `SNP` for SNAP
    /// (only the historic generated `SNP#####P#` numbers use it; SNAP ports are
    /// named `SNAP1A05`, see [`SnapPort`](super::SnapPort)).
    pub fn abbreviation(self) -> &'static str {
        match self {
            PartType::Antenna => "ANT",
            PartType::Lna => "LNA",
            PartType::CoaxShort => "CXS",
            PartType::CoaxLong => "CXL",
            PartType::Bacboard => "BAC",
            PartType::Snap => "SNP",
        }
    }

    /// The key of the type in CAsMan's `PART_TYPES` configuration (1 = ANTENNA … 6 = SNAP).
    pub fn config_number(self) -> u8 {
        match self {
            PartType::Antenna => 1,
            PartType::Lna => 2,
            PartType::CoaxShort => 3,
            PartType::CoaxLong => 4,
            PartType::Bacboard => 5,
            PartType::Snap => 6,
        }
    }

    /// The type whose part-number prefix is exactly `abbr` (upper-case), if any.
    pub fn from_abbreviation(abbr: &str) -> Option<PartType> {
        PartType::ALL.into_iter().find(|t| t.abbreviation() == abbr)
    }

    /// Parses a type given by name (`COAXSHORT`), abbreviation (`CXS`) or
    /// configuration number (`3`); trimmed and case-insensitive. `SNAP` and
    /// `SNP` both name the SNAP type.
    pub fn parse(input: &str) -> Result<PartType> {
        let s = input.trim().to_ascii_uppercase();
        let found = PartType::ALL.into_iter().find(|t| {
            t.name() == s || t.abbreviation() == s || s.parse::<u8>().ok() == Some(t.config_number())
        });
        found.ok_or_else(|| Error::invalid(format!("unknown part type {input:?}: expected {ACCEPTED}")))
    }

    /// The type an edge from this type must go to; `None` for SNAP (it never sends).
    pub fn successor(self) -> Option<PartType> {
        match self {
            PartType::Antenna => Some(PartType::Lna),
            PartType::Lna => Some(PartType::CoaxShort),
            PartType::CoaxShort => Some(PartType::CoaxLong),
            PartType::CoaxLong => Some(PartType::Bacboard),
            PartType::Bacboard => Some(PartType::Snap),
            PartType::Snap => None,
        }
    }

    /// The type an edge into this type must come from; `None` for ANTENNA (it never receives).
    pub fn predecessor(self) -> Option<PartType> {
        PartType::ALL.into_iter().find(|t| t.successor() == Some(self))
    }

    /// Whether `parts add` generates numbered parts of this type. SNAP is not
    /// generated: its parts are ports of configured boards, registered by
    /// port id (`SNAP1A05`), never numbered.
    pub fn generatable(self) -> bool {
        self != PartType::Snap
    }

    /// The types `parts add` can generate, in chain order (all but SNAP).
    pub fn generatable_types() -> impl Iterator<Item = PartType> {
        PartType::ALL.into_iter().filter(|t| t.generatable())
    }
}

impl fmt::Display for PartType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PartType {
    type Err = Error;

    fn from_str(s: &str) -> Result<PartType> {
        PartType::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_abbreviations() {
        let names: Vec<_> = PartType::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD", "SNAP"]);
        let abbrs: Vec<_> = PartType::ALL.iter().map(|t| t.abbreviation()).collect();
        assert_eq!(abbrs, ["ANT", "LNA", "CXS", "CXL", "BAC", "SNP"]);
        assert_eq!(PartType::CoaxLong.to_string(), "COAXLONG");
        assert_eq!(PartType::from_abbreviation("CXS"), Some(PartType::CoaxShort));
        assert_eq!(PartType::from_abbreviation("cxs"), None);
    }

    #[test]
    fn parse_accepts_names_abbreviations_numbers() {
        // Acceptance case 2: the six configured names.
        for t in PartType::ALL {
            assert_eq!(PartType::parse(t.name()).unwrap(), t);
            assert_eq!(PartType::parse(&t.name().to_lowercase()).unwrap(), t);
            assert_eq!(PartType::parse(t.abbreviation()).unwrap(), t);
            assert_eq!(PartType::parse(&t.config_number().to_string()).unwrap(), t);
        }
        assert_eq!(" coaxShort ".parse::<PartType>().unwrap(), PartType::CoaxShort);
        assert_eq!(PartType::parse("snap").unwrap(), PartType::Snap);
        assert_eq!(PartType::parse("Bac").unwrap(), PartType::Bacboard);
    }

    #[test]
    fn parse_rejects_unknown() {
        for bad in ["INVALID_TYPE", "", "0", "7", "COAX1", "FENGINE", "ANTENNAS"] {
            let e = PartType::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("{bad:?}")) && msg.contains(ACCEPTED), "{msg}");
        }
    }

    #[test]
    fn the_readme_lists_what_parse_accepts() {
        // Every type with its abbreviation (when it differs) and number, in
        // the message and, word for word, in the README.
        for t in PartType::ALL {
            let entry = if t.abbreviation() == t.name() {
                format!("{} ({})", t.name(), t.config_number())
            } else {
                format!("{} ({}, {})", t.name(), t.abbreviation(), t.config_number())
            };
            assert!(ACCEPTED.contains(&entry), "{entry} not in {ACCEPTED}");
        }
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let list = ACCEPTED.trim_start_matches("one of ").split_whitespace().collect::<Vec<_>>().join(" ");
        let text = readme.split_whitespace().collect::<Vec<_>>().join(" ").replace('`', "");
        assert!(text.contains(&list), "README.md lacks the part-type list {list:?}");
    }

    #[test]
    fn chain_order() {
        assert_eq!(PartType::Antenna.successor(), Some(PartType::Lna));
        assert_eq!(PartType::Bacboard.successor(), Some(PartType::Snap));
        assert_eq!(PartType::Snap.successor(), None);
        assert_eq!(PartType::Antenna.predecessor(), None);
        assert_eq!(PartType::Snap.predecessor(), Some(PartType::Bacboard));
        for t in PartType::ALL {
            if let Some(n) = t.successor() {
                assert_eq!(n.predecessor(), Some(t));
                assert!(n > t);
            }
        }
    }

    #[test]
    fn generatable_excludes_snap() {
        let g: Vec<_> = PartType::generatable_types().collect();
        assert_eq!(g.len(), 5);
        assert!(!g.contains(&PartType::Snap));
        assert!(PartType::Antenna.generatable());
    }
}

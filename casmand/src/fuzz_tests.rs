//! Property tests of every parser of outside input: part numbers, part types,
//! polarizations, SNAP boards and ports, grid codes, MAC addresses, CSV files,
//! backup keys and manifests. Whatever the input: no panic, and a refusal
//! names the value it refused (as Rust's `{:?}` writes it, so control
//! characters are escaped) or, for CSV files, the line and the rule.
//! An accepted value prints in a form that parses back to itself.

use proptest::prelude::*;

use crate::{
    backup::{layout, manifest::Manifest},
    inventory::{
        GridCode, PartNumber, PartType, Polarization, SnapBoardId, SnapPort, parse_grid_positions, parse_mac,
        parse_snap_boards,
    },
};

/// Arbitrary text, and text shaped like the real thing (so the parsers'
/// deeper branches are reached, not only the first check).
fn text(shaped: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), proptest::string::string_regex(shaped).expect("valid regex")]
}

fn names_the_value(msg: &str, input: &str) -> bool {
    msg.contains(&format!("{input:?}")) || msg.contains(input.trim())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn part_numbers(s in text("[ a-zA-Z]{0,4}[0-9]{0,7}[pP]?[0-9]{0,2} ?")) {
        match PartNumber::parse(&s) {
            Ok(p) => prop_assert_eq!(PartNumber::parse(&p.to_string()).ok(), Some(p)),
            Err(e) => prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}"),
        }
    }

    #[test]
    fn part_types_and_polarizations(s in text("[a-zA-Z0-9 ]{0,10}")) {
        if let Err(e) = PartType::parse(&s) {
            prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}");
        }
        if let Err(e) = Polarization::parse(&s) {
            prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}");
        }
    }

    #[test]
    fn snap_boards_and_ports(s in text("[sS][nN][aA][pP][0-9]{0,2}[a-zA-Z0-9]{0,5}")) {
        match SnapBoardId::parse(&s) {
            Ok(b) => prop_assert_eq!(SnapBoardId::parse(&b.to_string()).ok(), Some(b)),
            Err(e) => prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}"),
        }
        match SnapPort::parse(&s) {
            Ok(p) => prop_assert_eq!(SnapPort::parse(&p.to_string()).ok(), Some(p)),
            Err(e) => prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}"),
        }
    }

    #[test]
    fn grid_codes(s in text("[cCnNsS]{2}[0-9]{3}[eE][0-9]{2}")) {
        match GridCode::parse(&s) {
            Ok(g) => prop_assert_eq!(GridCode::parse(&g.to_string()).ok(), Some(g)),
            Err(e) => prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}"),
        }
    }

    #[test]
    fn mac_addresses(s in text("([0-9a-fA-F]{1,3}[:-]){0,6}")) {
        if let Err(e) = parse_mac(&s) {
            prop_assert!(!e.is_empty());
        }
    }

    #[test]
    fn csv_files(
        rows in proptest::collection::vec(
            text("[0-9]{0,2},[A-Za-z]{0,2},[0-9]{0,4},[0-9a-f:]{0,17},[0-9.]{0,15},[0-9]{0,3},[a-z ]{0,8}"),
            0..6,
        ),
        header in prop_oneof![Just("chassis,slot,sn,mac,ip,feng_id,notes".to_owned()), any::<String>()],
    ) {
        let text = std::iter::once(header).chain(rows).collect::<Vec<_>>().join("\n");
        let lines = text.lines().count().max(1) as u64;
        if let Err(errs) = parse_snap_boards(&text) {
            prop_assert!(!errs.0.is_empty());
            for e in &errs.0 {
                prop_assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}: {e}", e.line);
                prop_assert!(!e.rule.is_empty(), "{e}");
            }
        }
        if let Err(errs) = parse_grid_positions(&text) {
            prop_assert!(!errs.0.is_empty());
            for e in &errs.0 {
                prop_assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}: {e}", e.line);
            }
        }
    }

    #[test]
    fn backup_keys(s in text("(backups/)?(parts\\.db|assembled_casm\\.db|[a-z.]{0,6})?/?[0-9_a-z.]{0,30}/?")) {
        if let Err(e) = layout::database_of(&s) {
            prop_assert!(names_the_value(&e.to_string(), &s), "{e} does not name {s:?}");
        }
    }

    #[test]
    fn manifests(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        text("\\{\"versions\": ?\\[(\\{\"key\": ?\"[a-z/_.0-9]{0,20}\"\\})?\\]\\}").prop_map(String::into_bytes),
    ]) {
        if let Err(e) = Manifest::parse(&bytes) {
            prop_assert!(e.contains("manifest"), "{e}");
        }
    }
}

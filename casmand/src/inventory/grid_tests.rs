//! Tests of `grid.rs`: acceptance cases 16-19 of the behaviour spec.

use super::*;

fn code(s: &str) -> GridCode {
    GridCode::parse(s).unwrap()
}

#[test]
fn parse_valid_codes() {
    // Acceptance case 16.
    let c = code("CC000E01");
    assert_eq!((c.array_id(), c.direction(), c.row_offset(), c.east_col()), ('C', 'C', 0, 1));
    let c = code("CN002E03");
    assert_eq!((c.direction(), c.row_offset(), c.east_col()), ('N', 2, 3));
    let c = code("CS021E05");
    assert_eq!((c.direction(), c.row_offset(), c.east_col()), ('S', -21, 5));
    let c = code("AN010E02");
    assert_eq!((c.array_id(), c.row_offset(), c.east_col()), ('A', 10, 2));
    assert_eq!(code("ON005E02").to_string(), "ON005E02");
    assert_eq!(code("cn021e01").to_string(), "CN021E01");
    assert_eq!(code("  cs001e06 ").to_string(), "CS001E06");
    assert_eq!(code("CN999E99").row_offset(), 999);
    assert_eq!(code("CN099E05").to_string(), "CN099E05");
    assert_eq!("CC000E06".parse::<GridCode>().unwrap().row_label(), "C000");
}

#[test]
fn parse_rejects_with_rule() {
    for (bad, needle) in [
        ("INVALID", "does not match pattern"),
        ("", "does not match pattern"),
        ("CN02E03", "does not match pattern"),
        ("CN0020E03", "does not match pattern"),
        ("CN002X03", "does not match pattern"),
        ("1N002E03", "does not match pattern"),
        ("CN002E3", "does not match pattern"),
        ("CC001E01", "Center row must use offset 000"),
        ("CN000E01", "N and S rows must use offset 001-999"),
        ("CS000E01", "N and S rows must use offset 001-999"),
        ("CX002E03", "direction must be N, C or S"),
        ("CC000E00", "column must be 01-99"),
        ("CS021E00", "column must be 01-99"),
    ] {
        let e = GridCode::parse(bad).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::InvalidArgument(_)));
        assert!(msg.starts_with(&format!("grid code {bad:?}: ")) && msg.contains(needle), "{bad}: {msg}");
    }
}

#[test]
fn format_and_convert() {
    // Acceptance case 17.
    assert_eq!(GridCode::from_direction('C', 'N', 2, 3).unwrap().to_string(), "CN002E03");
    assert_eq!(GridCode::from_direction('C', 'S', 21, 5).unwrap().to_string(), "CS021E05");
    assert_eq!(GridCode::from_direction('C', 'C', 0, 1).unwrap().to_string(), "CC000E01");
    assert_eq!(GridCode::from_direction('c', 'n', 1, 1).unwrap().to_string(), "CN001E01");
    assert_eq!(GridCode::new('C', 0, 1).unwrap().to_string(), "CC000E01");
    assert_eq!(GridCode::new('C', 5, 3).unwrap().to_string(), "CN005E03");
    assert_eq!(GridCode::new('C', -10, 2).unwrap().to_string(), "CS010E02");
    let e = GridCode::from_direction('C', 'X', 1, 1).unwrap_err().to_string();
    assert!(e.contains("direction must be N, C or S"), "{e}");
    assert!(GridCode::from_direction('C', 'C', 3, 1).unwrap_err().to_string().contains("Center row"));
    assert!(GridCode::from_direction('C', 'N', 1000, 1).is_err());
    assert!(GridCode::from_direction('C', 'N', u32::MAX, 1).is_err());
    assert!(GridCode::new('C', 1000, 1).unwrap_err().to_string().contains("-999..999"));
    assert!(GridCode::new('C', 0, 0).unwrap_err().to_string().contains("1-based"));
    assert!(GridCode::new('C', 0, 100).is_err());
    assert!(GridCode::new('1', 0, 1).unwrap_err().to_string().contains("one letter"));
    // Round trip over the whole core and some expansion codes.
    for c in GridLayout::core().positions().chain([code("CN999E99"), code("ZS500E42")]) {
        assert_eq!(code(&c.to_string()), c);
        assert_eq!(GridCode::new(c.array_id(), c.row_offset(), c.east_col()).unwrap(), c);
    }
}

#[test]
fn kernel_mapping() {
    // Acceptance case 18.
    for (s, k) in [("CN021E01", 0), ("CN021E06", 5), ("CC000E01", 126), ("CC000E06", 131), ("CS021E01", 252)]
    {
        assert_eq!(kernel_index(code(s)), Some(k), "{s}");
    }
    assert_eq!(kernel_index(code("CS021E04")), Some(255));
    assert_eq!(kernel_index(code("CS021E05")), None);
    assert_eq!(kernel_index(code("CS021E06")), None);
    assert_eq!(kernel_index(code("CN022E01")), None);
    assert_eq!(kernel_index(code("CN001E07")), None);
    assert_eq!(kernel_index(code("AN001E01")), None);
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..=255 {
        let c = grid_for_kernel(k).unwrap();
        assert_eq!(kernel_index(c), Some(u16::try_from(k).unwrap()));
        seen.insert(c);
    }
    assert_eq!(seen.len(), 256);
    assert_eq!(grid_for_kernel(256), None);
    assert_eq!(grid_for_kernel(-1), None);
    assert_eq!(grid_for_kernel(126).unwrap().to_string(), "CC000E01");
    let core = GridLayout::core();
    let unmapped: Vec<_> = core.positions().filter(|c| core.kernel_index(*c).is_none()).collect();
    assert_eq!(unmapped, [code("CS021E05"), code("CS021E06")]);
}

#[test]
fn layouts() {
    // Acceptance case 19.
    let core = GridLayout::core();
    assert_eq!((core.array_id, core.north_rows, core.south_rows, core.east_columns), ('C', 21, 21, 6));
    assert!(core.allow_expansion);
    let layouts = [core.clone()];
    assert_eq!(GridLayout::by_name(&layouts, "core").unwrap().array_id, 'C');
    let e = GridLayout::by_name(&layouts, "outrigger").unwrap_err();
    assert!(matches!(e, Error::NotFound(_)) && e.to_string().contains("not found in configuration"));
    assert_eq!(GridLayout::by_array_id(&layouts, 'c').unwrap().name, "core");
    assert!(GridLayout::by_array_id(&layouts, 'Z').is_none());

    assert!(core.validate(GridCode::new('C', 10, 3).unwrap()).is_ok());
    assert!(core.validate(GridCode::new('C', 50, 10).unwrap()).is_ok(), "expansion allowed");
    assert!(GridLayout::validate_in(&layouts, GridCode::new('X', 100, 50).unwrap()).is_ok(), "unknown array");
    assert!(core.validate(code("AN001E01")).unwrap_err().to_string().contains("is not array C"));

    let strict = GridLayout { allow_expansion: false, ..GridLayout::core() };
    assert!(strict.validate(code("CN021E06")).is_ok());
    assert!(strict.validate(code("CS021E06")).is_ok());
    let e = strict.validate(code("CN050E10")).unwrap_err().to_string();
    assert!(e.contains("CN050E10") && e.contains("S021..N021") && e.contains("E01..E06"), "{e}");
    assert!(strict.validate(code("CS022E01")).is_err());
    assert!(strict.validate(code("CC000E07")).is_err());
    assert!(GridLayout::validate_in(&[strict], code("CN022E01")).is_err());
}

#[test]
fn core_positions_in_display_order() {
    let core = GridLayout::core();
    let all: Vec<String> = core.positions().map(|c| c.to_string()).collect();
    assert_eq!(all.len(), 258);
    assert_eq!(all[0], "CN021E01");
    assert_eq!(all[5], "CN021E06");
    assert_eq!(all[6], "CN020E01");
    assert_eq!(all[126], "CC000E01");
    assert_eq!(all[257], "CS021E06");
    let rows: Vec<String> = core.rows().map(|r| GridCode::new('C', r, 1).unwrap().row_label()).collect();
    assert_eq!(rows.len(), 43);
    assert_eq!((rows[0].as_str(), rows[20].as_str(), rows[21].as_str()), ("N021", "N001", "C000"));
    assert_eq!((rows[22].as_str(), rows[42].as_str()), ("S001", "S021"));
    // Display order index equals the kernel index where mapped.
    for (i, c) in core.positions().enumerate().take(256) {
        assert_eq!(kernel_index(c), Some(u16::try_from(i).unwrap()));
    }
}

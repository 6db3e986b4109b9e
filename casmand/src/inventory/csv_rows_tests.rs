//! Tests of `csv_rows.rs`: inline fixtures and the real legacy files.

use super::*;
use crate::inventory::legacy_file;

fn errors<T: std::fmt::Debug>(r: Result<CsvFile<T>, CsvErrors>) -> Vec<CsvError> {
    r.unwrap_err().0
}

fn has(errs: &[CsvError], line: u64, field: &str, value: &str, rule: &str) -> bool {
    errs.iter().any(|e| e.line == line && e.field == field && e.value == value && e.rule.contains(rule))
}

#[test]
fn grid_rows_parse() {
    let text = "grid_code,latitude,longitude,height,coordinate_system,notes\r\n\
                CS021E01,37.234191511,-118.283416000,1183.81,WGS84,Generated\r\n\
                cs021e06, 37.234330957 ,-118.283468134,1183.81,,  manually edited  \r\n\
                \r\n\
                \x20  ,  , ,\r\n\
                CN001E01,1,2,3";
    let f = parse_grid_positions(text).unwrap();
    assert_eq!(f.rows.len(), 3);
    assert_eq!(f.skipped_lines, [5]);
    let r = &f.rows[1];
    assert_eq!(r.line, 3);
    assert_eq!(r.row.grid_code.to_string(), "CS021E06");
    assert_eq!(r.row.latitude, 37.234330957);
    assert_eq!((r.row.coordinate_system.as_deref(), r.row.notes.as_deref()), (None, Some("manually edited")));
    assert_eq!(f.rows[0].row.coordinate_system.as_deref(), Some("WGS84"));
    assert_eq!((f.rows[2].line, f.rows[2].row.height), (6, 3.0));
}

#[test]
fn grid_rows_report_every_problem() {
    let text = "grid_code,latitude,longitude,height,coordinate_system,notes\n\
                CC001E01,1,2,3,,\n\
                CN001E01,abc,,inf,,\n\
                CN001E02,91,-181,0,,\n\
                cn001e01,1,2,3,,\n\
                CN001E03,1,2,3,,a,b\n\
                ,1,2,3,,\n";
    let errs = errors(parse_grid_positions(text));
    assert!(has(&errs, 2, "grid_code", "CC001E01", "Center row must use offset 000"), "{errs:#?}");
    assert!(has(&errs, 3, "latitude", "abc", "must be a number"));
    assert!(has(&errs, 3, "longitude", "", "required"));
    assert!(has(&errs, 3, "height", "inf", "finite"));
    assert!(has(&errs, 4, "latitude", "91", "-90..90"));
    assert!(has(&errs, 4, "longitude", "-181", "-180..180"));
    assert!(has(&errs, 5, "grid_code", "CN001E01", "unique, but line 3"));
    assert!(has(&errs, 6, "row", "b", "as in the header, found 7"));
    assert!(has(&errs, 7, "grid_code", "", "required"));
    assert_eq!(errs.len(), 9);
    let msg = Error::from(CsvErrors(errs)).to_string();
    assert!(
        msg.starts_with("9 problems in the CSV file, nothing was loaded; line 2, grid_code \"CC001E01\": ")
    );
}

#[test]
fn headers() {
    let e = errors(parse_grid_positions(""));
    assert!(has(&e, 1, "header", "", "the file is empty"));
    let e = errors(parse_grid_positions("grid_code,lat,longitude,height\n"));
    assert!(has(&e, 1, "header", "grid_code,lat,longitude,height", "missing column latitude"), "{e:#?}");
    let e = errors(parse_snap_boards("chassis,slot,sn,mac,ip,ip,feng_id\n"));
    assert!(has(&e, 1, "header", "ip", "column named twice"));
    // Order, case, blanks and extra columns in the header do not matter; a BOM is dropped.
    let f = parse_grid_positions("\u{feff} Height ,GRID_CODE,longitude,latitude,extra\n1,CC000E01 ,2,3,x")
        .unwrap();
    let r = &f.rows[0].row;
    assert_eq!((r.height, r.longitude, r.latitude, r.notes.as_deref()), (1.0, 2.0, 3.0, None));
}

const SNAP_OK: &str = "chassis,slot,sn,mac,ip,feng_id,notes\n\
                       1,A,152,00:29:C4:E8:18:05,192.168.120.53,0,real\n\
                       1, b ,099,00-00-00-00-00-34,fe80::1,6,\n\
                       4,K,SN44,00:11:22:33:04:0A,192.168.1.44,43,Generated on 2025-12-17";

#[test]
fn snap_rows_parse() {
    let f = parse_snap_boards(SNAP_OK).unwrap();
    assert_eq!(f.rows.len(), 3);
    let b = &f.rows[1].row;
    assert_eq!(b.board.to_string(), "SNAP1B");
    assert_eq!(b.serial_number, "099");
    assert_eq!(b.mac_address, "00:00:00:00:00:34");
    assert_eq!(b.ip_address.to_string(), "fe80::1");
    assert_eq!((b.feng_id, b.notes.as_deref()), (6, None));
    assert_eq!(f.rows[0].row.mac_address, "00:29:c4:e8:18:05");
    assert_eq!(f.rows[2].row.notes.as_deref(), Some("Generated on 2025-12-17"));
    assert_eq!(f.rows[2].line, 4);
}

#[test]
fn snap_rows_report_every_problem() {
    let text = "chassis,slot,sn,mac,ip,feng_id,notes\n\
                5,L,,00:29:c4:e8:18,300.1.1.1,44,\n\
                x,AB,1,zz:29:c4:e8:18:05,192.168.0.1,-1,\n\
                1,A,7,00:00:00:00:00:01,192.168.0.2,1,\n\
                1,a,7,00:00:00:00:00:01,192.168.0.2,1,\n\
                2,A,8,00:00:00:00:00:02,192.168.0.3,,\n";
    let errs = errors(parse_snap_boards(text));
    assert!(has(&errs, 2, "chassis", "5", "1-4"), "{errs:#?}");
    assert!(has(&errs, 2, "slot", "L", "one letter A-K"));
    assert!(has(&errs, 2, "sn", "", "required"));
    assert!(has(&errs, 2, "mac", "00:29:c4:e8:18", "six 2-digit hex groups"));
    assert!(has(&errs, 2, "ip", "300.1.1.1", "IPv4 or IPv6"));
    assert!(has(&errs, 2, "feng_id", "44", "0-43"));
    assert!(has(&errs, 3, "chassis", "x", "whole number 1-4"));
    assert!(has(&errs, 3, "slot", "AB", "one letter"));
    assert!(has(&errs, 3, "mac", "zz:29:c4:e8:18:05", "hex"));
    assert!(has(&errs, 3, "feng_id", "-1", "0-43"));
    for (field, value) in [
        ("chassis,slot", "1,A"),
        ("sn", "7"),
        ("mac", "00:00:00:00:00:01"),
        ("ip", "192.168.0.2"),
        ("feng_id", "1"),
    ] {
        assert!(has(&errs, 5, field, value, "unique, but line 4"), "{field}");
    }
    assert!(has(&errs, 6, "feng_id", "", "required"));
    assert_eq!(errs.len(), 16);
}

#[test]
fn mac_forms() {
    assert_eq!(parse_mac("00:11:22:33:04:0A").unwrap(), "00:11:22:33:04:0a");
    assert_eq!(parse_mac(" AA-BB-CC-DD-EE-FF ").unwrap(), "aa:bb:cc:dd:ee:ff");
    for bad in [
        "",
        "00:11:22:33:44",
        "00:11:22:33:44:55:66",
        "00:11-22:33:44:55",
        "0:11:22:33:44:55",
        "g0:11:22:33:44:55",
    ] {
        assert!(parse_mac(bad).is_err(), "{bad}");
    }
}

#[test]
fn real_grid_positions_file() {
    let Some(path) = legacy_file("grid_positions.csv") else { return };
    let f = parse_grid_positions(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(f.rows.len(), 258);
    assert!(f.skipped_lines.is_empty());
    let edited = f.rows.iter().find(|r| r.row.grid_code.to_string() == "CS021E06").unwrap();
    assert_eq!((edited.line, edited.row.latitude, edited.row.longitude), (7, 37.234330957, -118.283468134));
    assert_eq!(edited.row.notes.as_deref(), Some("manually edited outrigger on 2026-02-04"));
    let codes: std::collections::BTreeSet<_> = f.rows.iter().map(|r| r.row.grid_code).collect();
    let core: std::collections::BTreeSet<_> = crate::inventory::GridLayout::core().positions().collect();
    assert_eq!(codes, core);
}

#[test]
fn real_snap_boards_file() {
    let Some(path) = legacy_file("snap_boards.csv") else { return };
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.ends_with('\n'));
    let f = parse_snap_boards(&text).unwrap();
    assert_eq!(f.rows.len(), 39);
    let last = &f.rows[38].row;
    assert_eq!(
        (last.board.to_string().as_str(), last.serial_number.as_str(), last.feng_id),
        ("SNAP4F", "084", 5)
    );
    let spare = f.rows.iter().find(|r| r.row.board.to_string() == "SNAP4A").unwrap();
    assert_eq!(spare.row.serial_number, "099");
    assert_eq!(spare.row.notes.as_deref(), Some("SN not found in DB DSA110 spare"));
    assert_eq!(f.rows.iter().find(|r| r.row.board.to_string() == "SNAP1B").unwrap().row.feng_id, 6);
}

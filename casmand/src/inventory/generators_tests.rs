//! Tests of `generators.rs`.

use super::*;
use crate::inventory::{csv_rows::parse_grid_positions, kernel_index, legacy_file, parse_snap_boards};

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

#[test]
fn grid_generator_defaults_and_order() {
    let rows = generate_grid_positions(&CoordinateParams::new(date("2026-02-06")));
    assert_eq!(rows.len(), 258);
    assert_eq!(rows[0].grid_code.to_string(), "CS021E01");
    assert_eq!(rows[5].grid_code.to_string(), "CS021E06");
    assert_eq!(rows[6].grid_code.to_string(), "CS020E01");
    assert_eq!(rows[257].grid_code.to_string(), "CN021E06");
    let reference = &rows[126];
    assert_eq!(reference.grid_code.to_string(), "CC000E01");
    assert_eq!(
        (reference.latitude, reference.longitude, reference.height),
        (37.234286, -118.283416, 1183.81)
    );
    assert_eq!(reference.coordinate_system.as_deref(), Some("WGS84"));
    assert_eq!(reference.notes.as_deref(), Some("Generated from CC000E01 reference on 2026-02-06"));
    // North is positive latitude, east positive longitude; steps alternate 0.38/0.445 m.
    assert!(rows[132].latitude > reference.latitude && rows[120].latitude < reference.latitude);
    let lon: Vec<f64> = rows[126..132].iter().map(|r| r.longitude).collect();
    let steps: Vec<f64> = lon.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.iter().all(|s| *s > 0.0));
    assert!(steps[1] > steps[0] && steps[2] < steps[1] && (steps[0] - steps[2]).abs() < 1e-9);
    assert_eq!(kernel_index(rows[257 - 5].grid_code), Some(0));
}

#[test]
fn grid_generator_writes_and_reads_back() {
    let rows = generate_grid_positions(&CoordinateParams::new(date("2026-02-06")));
    let text = grid_positions_csv(&rows).unwrap();
    assert!(text.starts_with("grid_code,latitude,longitude,height,coordinate_system,notes\r\n"));
    assert!(text.contains(
        "\r\nCC000E01,37.234286000,-118.283416000,1183.81,WGS84,Generated from CC000E01 reference on 2026-02-06\r\n"
    ));
    let parsed = parse_grid_positions(&text).unwrap();
    let back: Vec<GridPosition> = parsed.rows.into_iter().map(|n| n.row).collect();
    assert_eq!(back, rows);
}

#[test]
fn grid_generator_reproduces_the_real_file() {
    let Some(path) = legacy_file("grid_positions.csv") else { return };
    let real = std::fs::read_to_string(path).unwrap();
    let generated =
        grid_positions_csv(&generate_grid_positions(&CoordinateParams::new(date("2026-02-06")))).unwrap();
    let (real_lines, gen_lines): (Vec<_>, Vec<_>) =
        (real.split("\r\n").collect(), generated.split("\r\n").collect());
    assert_eq!(real_lines.len(), gen_lines.len());
    let mut differing = Vec::new();
    for (r, g) in real_lines.iter().zip(&gen_lines) {
        if r != g {
            differing.push(r.split(',').next().unwrap_or_default());
        }
    }
    assert_eq!(differing, ["CS021E06"], "only the hand-edited outrigger differs");
}

#[test]
fn other_parameters() {
    let mut p = CoordinateParams::new(date("2025-01-01"));
    p.layout = GridLayout {
        name: "n".into(),
        array_id: 'N',
        north_rows: 1,
        south_rows: 0,
        east_columns: 3,
        ..p.layout
    };
    p.coordinate_system = "local".into();
    let rows = generate_grid_positions(&p);
    let codes: Vec<String> = rows.iter().map(|r| r.grid_code.to_string()).collect();
    assert_eq!(codes, ["NC000E01", "NC000E02", "NC000E03", "NN001E01", "NN001E02", "NN001E03"]);
    assert_eq!(rows[0].notes.as_deref(), Some("Generated from NC000E01 reference on 2025-01-01"));
    assert_eq!(rows[0].coordinate_system.as_deref(), Some("local"));
}

#[test]
fn snap_board_generator() {
    let boards = generate_snap_boards(date("2025-12-17"));
    assert_eq!(boards.len(), 44);
    let first = &boards[0];
    assert_eq!(
        (first.board.to_string().as_str(), first.serial_number.as_str(), first.mac_address.as_str()),
        ("SNAP1A", "SN01", "00:11:22:33:01:00")
    );
    assert_eq!((first.ip_address.to_string().as_str(), first.feng_id), ("192.168.1.1", 0));
    assert_eq!(first.notes.as_deref(), Some("Generated on 2025-12-17"));
    let b = &boards[11];
    assert_eq!((b.board.to_string().as_str(), b.serial_number.as_str(), b.feng_id), ("SNAP2A", "SN12", 11));
    let last = &boards[43];
    assert_eq!(
        (last.board.to_string().as_str(), last.mac_address.as_str(), last.ip_address.to_string().as_str()),
        ("SNAP4K", "00:11:22:33:04:0a", "192.168.1.44")
    );
    assert_eq!(last.feng_id, 43);
    let text = snap_boards_csv(&boards).unwrap();
    assert!(
        text.starts_with("chassis,slot,sn,mac,ip,feng_id,notes\r\n1,A,SN01,00:11:22:33:01:00,192.168.1.1,0,")
    );
    let back: Vec<SnapBoard> = parse_snap_boards(&text).unwrap().rows.into_iter().map(|n| n.row).collect();
    assert_eq!(back, boards);
}

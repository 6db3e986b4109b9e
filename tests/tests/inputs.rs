//! The correlator input map (issue 33): `casmanctl export inputs` on a known
//! small array, checked row by row in CSV and JSON, now and as of a moment
//! before the array was finished.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use casman_tests::{Daemon, DaemonOpts, legacy_data_dir};

/// A chain of connect events at minute `m` of 2025-03-01, 10:00 (one a
/// second).
fn chain(parts: &[&str], m: u32) -> Vec<String> {
    parts
        .windows(2)
        .enumerate()
        .map(|(i, w)| format!("('{}', '2025-03-01T10:{m:02}:{i:02}Z', '{}', 'connected')", w[0], w[1]))
        .collect()
}

fn array() -> Daemon {
    let mut events =
        chain(&["ANT00001P1", "LNA00001P1", "CXS00001P1", "CXL00001P1", "BAC00001P1", "SNAP1A05"], 0);
    events.extend(chain(
        &["ANT00001P2", "LNA00001P2", "CXS00001P2", "CXL00001P2", "BAC00001P2", "SNAP1B03"],
        1,
    ));
    events.extend(chain(&["ANT00002P1", "LNA00003P1"], 2));
    events.extend(chain(
        &["ANT00003P1", "LNA00004P1", "CXS00004P1", "CXL00004P1", "BAC00004P1", "SNAP1A06"],
        3,
    ));
    // The first chain's last hop is remade at 11:00: before then its BACBOARD
    // fed SNAP1A04.
    events[4] = "('BAC00001P1', '2025-03-01T10:00:04Z', 'SNAP1A04', 'connected')".into();
    events.push("('BAC00001P1', '2025-03-01T11:00:00Z', 'SNAP1A04', 'disconnected')".into());
    events.push("('BAC00001P1', '2025-03-01T11:00:01Z', 'SNAP1A05', 'connected')".into());
    let parts: Vec<String> = ["ANT00001P1", "ANT00001P2", "ANT00002P1", "ANT00002P2", "ANT00003P1"]
        .iter()
        .map(|p| format!("('{p}', 'ANTENNA', '{}', '2025-01-01 00:00:00', '2025-01-01 00:00:00')", &p[9..]))
        .collect();
    let store = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(legacy_data_dir(&events, &parts), DaemonOpts::local_site(store.path(), "lab"));
    let dir = d.dir.path().to_owned();
    let coords = dir.join("grid_positions.csv");
    d.ctl_ok(&["grid", "coordinates", "-o", coords.to_str().unwrap()]);
    d.ctl_ok(&["database", "load-coordinates", "--csv", coords.to_str().unwrap()]);
    d.ctl_ok(&["positions", "assign", "ANT00001", "CN001E01"]);
    d.ctl_ok(&["positions", "assign", "ANT00002", "CN001E02"]);
    let boards = dir.join("snap_boards.csv");
    std::fs::write(&boards, "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,SN7,02:00:00:00:00:07,10.0.0.7,7,\n")
        .unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", boards.to_str().unwrap()]);
    std::mem::forget(store);
    d
}

/// The CSV's rows as column → value.
fn csv(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    r.records()
        .map(|rec| header.iter().cloned().zip(rec.unwrap().iter().map(str::to_owned)).collect())
        .collect()
}

#[test]
fn the_input_map_of_a_small_array_row_by_row() {
    let d = array();
    let rows = csv(&d.ctl_ok(&["export", "inputs", "--csv"]));
    let col = |r: usize, c: &str| rows[r][c].clone();
    let antennas: Vec<String> = (0..rows.len()).map(|r| col(r, "antenna")).collect();
    assert_eq!(antennas, ["ANT00001P1", "ANT00001P2", "ANT00002P1", "ANT00003P1", "ANT00002P2"]);
    // Complete: the board at SNAP1A (feng 7) is configured.
    assert_eq!(col(0, "chain"), "ANT00001P1>LNA00001P1>CXS00001P1>CXL00001P1>BAC00001P1>SNAP1A05");
    for (c, v) in [
        ("antenna_number", "ANT00001"),
        ("polarization", "P1"),
        ("grid_code", "CN001E01"),
        ("snap_port", "SNAP1A05"),
        ("chassis", "1"),
        ("slot", "A"),
        ("adc_port", "5"),
        ("input_index", "5"),
        ("board_serial", "SN7"),
        ("feng_id", "7"),
        ("packet_index", "89"),
        ("mac_address", "02:00:00:00:00:07"),
        ("ip_address", "10.0.0.7"),
        ("complete", "true"),
        ("conflict", "false"),
        ("problems", ""),
        ("coordinate_system", "WGS84"),
    ] {
        assert_eq!(col(0, c), v, "row 0 column {c}");
    }
    // One row north of the reference CC000E01 (0.50088 m), first column.
    let f = |r: usize, c: &str| col(r, c).parse::<f64>().unwrap_or_else(|_| panic!("{c}: {:?}", col(r, c)));
    assert!(f(0, "east_m").abs() < 0.01 && (f(0, "north_m") - 0.50088).abs() < 0.02, "{:?}", rows[0]);
    assert!(f(0, "up_m").abs() < 0.01 && (f(0, "latitude") - 37.234286).abs() < 1e-4);
    // P2 reaches SNAP1B, which has no board: the input is known, the packet not.
    assert_eq!((col(1, "input_index"), col(1, "packet_index")), ("15".to_owned(), String::new()));
    assert_eq!(
        (col(1, "complete"), col(1, "problems")),
        ("false".into(), "board SNAP1B not configured".into())
    );
    // The second antenna's P1 stops at its LNA; it is placed one column east.
    assert_eq!(col(2, "problems"), "chain ends at LNA00003P1, not a SNAP port");
    assert!((f(2, "east_m") - 0.38).abs() < 0.02, "{:?}", rows[2]);
    // A complete chain whose antenna has no grid position.
    assert_eq!((col(3, "complete"), col(3, "problems")), ("true".into(), "no grid position".into()));
    assert_eq!(col(3, "east_m"), "");
    // A placed antenna's polarization that heads no chain.
    assert_eq!((col(4, "chain"), col(4, "problems")), ("".into(), "no chain".into()));
    assert_eq!(col(4, "grid_code"), "CN001E02");

    // JSON: the same rows, the proto's field names.
    let json = d.ctl_json(&["export", "inputs"]);
    let inputs = json["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 5);
    assert_eq!(inputs[0]["packet_index"], 89);
    assert_eq!(inputs[0]["chain"].as_array().unwrap().len(), 6);
    assert_eq!(inputs[4]["problems"][0], "no chain");

    // Before the first chain's last hop was remade, it fed SNAP1A04; before
    // the positions and the board existed, neither is known.
    let then = csv(&d.ctl_ok(&["export", "inputs", "--csv", "--at", "2025-03-01T10:30:00Z"]));
    assert_eq!(then[0]["snap_port"], "SNAP1A04");
    assert_eq!(then[0]["input_index"], "4");
    assert_eq!(then[0]["grid_code"], "");
    assert!(
        then[0]["problems"].contains("no grid position")
            && then[0]["problems"].contains("board SNAP1A not configured")
    );
    assert_eq!(then.len(), 4, "no placed antenna then: no row for a chainless polarization");
    let table = d.ctl_ok(&["export", "inputs"]);
    assert!(
        table.contains("ANT00001P1")
            && table.contains("complete")
            && table.contains("5 antenna polarizations"),
        "{table}"
    );
}

//! SNAP boards: loading snap_boards.csv (all or nothing, upsert by chassis
//! and slot, swaps), the generated default file, boards and ports with what
//! is connected to them (spec section 6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use casman_tests::Daemon;
use serde_json::Value;

const HEADER: &str = "chassis,slot,sn,mac,ip,feng_id,notes";

fn legacy(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/legacy").join(name);
    if p.exists() {
        Some(p)
    } else {
        println!("skipped: {} is absent", p.display());
        None
    }
}

/// The rows of snap_boards as `database print` shows them.
fn boards_table(d: &Daemon) -> Value {
    let dump = d.ctl_json(&["database", "print", "--parts"]);
    dump["tables"].as_array().unwrap().iter().find(|t| t["table"] == "snap_boards").unwrap()["rows"].clone()
}

fn write(d: &Daemon, name: &str, rows: &[&str]) -> String {
    let path = d.dir.path().join(name);
    let mut text = format!("{HEADER}\n");
    text.push_str(&rows.join("\n"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn load(d: &Daemon, path: &str) -> Value {
    d.ctl_json(&["database", "load-snap-boards", "--csv", path])
}

fn counts(r: &Value) -> (u64, u64, u64) {
    (r["loaded"].as_u64().unwrap(), r["updated"].as_u64().unwrap(), r["unchanged"].as_u64().unwrap())
}

/// A 39-board file like CAsMan's: real serials with leading zeros, mixed-case
/// MACs, feng_ids not in slot order, no trailing newline.
fn fixture_39(d: &Daemon) -> String {
    let mut rows = Vec::new();
    let mut n = 0u32;
    for chassis in 1..=4 {
        for slot in 'A'..='K' {
            if chassis == 4 && slot > 'F' {
                continue;
            }
            let feng = (n * 7) % 39;
            rows.push(format!(
                "{chassis},{slot},{:03},00:29:C4:e8:{chassis:02x}:{n:02x},192.168.120.{},{feng},note {n}",
                90 + n,
                n + 10
            ));
            n += 1;
        }
    }
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    write(d, "fixture39.csv", &refs)
}

#[test]
fn real_file_loads_reloads_and_default_file_upserts_over_it() {
    let d = Daemon::start();
    let path = match legacy("snap_boards.csv") {
        Some(p) => p.to_str().unwrap().to_owned(),
        None => fixture_39(&d),
    };
    assert_eq!(counts(&load(&d, &path)), (39, 0, 0));
    let before = boards_table(&d);
    assert_eq!(counts(&load(&d, &path)), (0, 0, 39));
    assert_eq!(boards_table(&d), before, "an identical reload changes nothing");

    let list = d.ctl_json(&["snap", "list"]);
    let boards = list["boards"].as_array().unwrap();
    assert_eq!(boards.len(), 39);
    assert_eq!((boards[0]["board"].as_str(), boards[38]["board"].as_str()), (Some("SNAP1A"), Some("SNAP4F")));
    // Serials stay text: leading zeros kept.
    assert!(boards.iter().all(|b| b["serial_number"].is_string()));
    let added_1a = boards[0]["date_added"].clone();
    let id_1a = boards[0]["id"].clone();

    // The generated default file over it: 5 new boards, 39 changed (feng_ids
    // and IPs move between boards inside one load).
    let gen_path = d.dir.path().join("snap_boards.csv");
    let r = d.ctl_json(&["snap", "generate-csv", "-o", gen_path.to_str().unwrap(), "--date", "2025-12-17"]);
    assert_eq!(r["boards"], 44);
    let r = load(&d, gen_path.to_str().unwrap());
    assert_eq!(counts(&r), (5, 39, 0));
    assert_eq!(r["loaded_boards"], serde_json::json!(["SNAP4G", "SNAP4H", "SNAP4I", "SNAP4J", "SNAP4K"]));
    let b = d.ctl_json(&["snap", "show", "SNAP1A"])["board"].clone();
    assert_eq!((b["serial_number"].as_str(), b["feng_id"].as_u64()), (Some("SN01"), Some(0)));
    assert_eq!(b["date_added"], added_1a, "date_added survives an update");
    assert_eq!(b["id"], id_1a, "the row keeps its id");
    assert!(b["date_modified"].is_string());
    let k = d.ctl_json(&["snap", "show", "SNAP4K"])["board"].clone();
    assert_eq!((k["feng_id"].as_u64(), k["date_modified"].as_str()), (Some(43), Some("")));
    assert_eq!(boards_table(&d).as_array().unwrap().len(), 44);
}

#[test]
fn boards_may_swap_feng_ids_ips_serials_and_macs() {
    let d = Daemon::start();
    let a = write(
        &d,
        "a.csv",
        &[
            "1,A,100,00:00:00:00:00:01,10.0.0.1,0,",
            "1,B,101,00:00:00:00:00:02,10.0.0.2,1,",
            "2,C,7,aa:bb:cc:dd:ee:ff,10.0.0.3,5,kept",
        ],
    );
    assert_eq!(counts(&load(&d, &a)), (3, 0, 0));
    let swapped = write(
        &d,
        "b.csv",
        &["1,A,101,00:00:00:00:00:02,10.0.0.2,1,swapped", "1,B,100,00:00:00:00:00:01,10.0.0.1,0,swapped"],
    );
    let r = load(&d, &swapped);
    assert_eq!(counts(&r), (0, 2, 0));
    let a1 = d.ctl_json(&["snap", "show", "SNAP1A"])["board"].clone();
    assert_eq!(
        (a1["feng_id"].as_u64(), a1["ip_address"].as_str(), a1["serial_number"].as_str()),
        (Some(1), Some("10.0.0.2"), Some("101"))
    );
    let b1 = d.ctl_json(&["snap", "show", "SNAP1B"])["board"].clone();
    assert_eq!((b1["feng_id"].as_u64(), b1["mac_address"].as_str()), (Some(0), Some("00:00:00:00:00:01")));
    // The board not in the file is kept as it was.
    assert_eq!(d.ctl_json(&["snap", "show", "SNAP2C"])["board"]["notes"], "kept");
}

#[test]
fn a_bad_row_names_its_line_and_changes_nothing() {
    let d = Daemon::start();
    let a =
        write(&d, "a.csv", &["1,A,S1,00:00:00:00:00:01,10.0.0.1,0,", "1,B,S2,00:00:00:00:00:02,10.0.0.2,1,"]);
    load(&d, &a);
    let before = boards_table(&d);
    // Malformed rows: feng_id out of range, bad MAC, duplicate IP in the file.
    let bad = write(
        &d,
        "bad.csv",
        &[
            "1,A,S1,00:00:00:00:00:01,10.0.0.9,3,changed",
            "1,C,S3,00:00:00:00:00:03,10.0.0.3,44,",
            "1,D,S4,00:00:00:00:00,10.0.0.4,4,",
            "1,E,S5,00:00:00:00:00:05,10.0.0.9,5,",
            "5,L,S6,00:00:00:00:00:06,10.0.0.6,6,",
        ],
    );
    let e = d.ctl_err(&["database", "load-snap-boards", "--csv", &bad], 2);
    for needle in [
        "line 3, feng_id \"44\"",
        "line 4, mac",
        "line 5, ip \"10.0.0.9\"",
        "line 2 has it too",
        "line 6, chassis",
        "line 6, slot",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
    assert_eq!(boards_table(&d), before);
    // Clashes with a board kept in the table (not in the file): SNAP1B keeps feng_id 1 and S2.
    let clash = write(
        &d,
        "clash.csv",
        &["1,A,S1,00:00:00:00:00:01,10.0.0.1,0,", "2,A,S2,00:00:00:00:00:0A,10.0.0.20,1,"],
    );
    let e = d.ctl_err(&["database", "load-snap-boards", "--csv", &clash], 2);
    assert!(
        e.contains("line 3, sn \"S2\"") && e.contains("line 3, feng_id \"1\"") && e.contains("SNAP1B"),
        "{e}"
    );
    assert_eq!(boards_table(&d), before);
    let e = d.ctl_err(
        &["database", "load-snap-boards", "--csv", d.dir.path().join("none.csv").to_str().unwrap()],
        1,
    );
    assert!(e.contains("CSV file not found"), "{e}");
}

#[test]
fn generate_csv_writes_the_44_default_boards() {
    let d = Daemon::start();
    let text = d.ctl_ok(&["snap", "generate-csv", "--date", "2025-12-17"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 45);
    assert_eq!(lines[0], HEADER);
    assert_eq!(lines[1], "1,A,SN01,00:11:22:33:01:00,192.168.1.1,0,Generated on 2025-12-17");
    assert_eq!(lines[44], "4,K,SN44,00:11:22:33:04:0a,192.168.1.44,43,Generated on 2025-12-17");
    let human = d.ctl_ok(&["snap", "list"]);
    assert!(human.contains("No SNAP boards configured"), "{human}");
}

#[test]
fn ports_show_packet_index_and_the_antenna_at_the_head_of_the_chain() {
    let d = Daemon::start();
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, "1", "1"]);
    }
    let chain = ["ANT00001P1", "LNA00001P1", "CXS00001P1", "CXL00001P1", "BAC00001P1", "SNAP1B05"];
    for pair in chain.windows(2) {
        d.ctl_ok(&["scan", "connect", pair[0], pair[1]]);
    }
    d.ctl_ok(&["positions", "assign", "ANT00001", "CC000E01"]);
    let boards = write(
        &d,
        "b.csv",
        &["1,A,S1,00:00:00:00:00:01,10.0.0.1,0,", "1,B,S2,00:00:00:00:00:02,10.0.0.2,11,"],
    );
    load(&d, &boards);

    // The numeric form is accepted.
    let r = d.ctl_json(&["snap", "port", "SNAP010205"]);
    let p = &r["port"];
    assert_eq!((p["port_id"].as_str(), p["numeric_id"].as_str()), (Some("SNAP1B05"), Some("SNAP010205")));
    assert_eq!(p["packet_index"], 11 * 12 + 5);
    assert_eq!((p["antenna"].as_str(), p["polarization"].as_str()), (Some("ANT00001P1"), Some("P1")));
    assert_eq!(p["chain"], serde_json::json!(chain));
    assert_eq!((p["grid_code"].as_str(), p["kernel_index"].as_u64()), (Some("CC000E01"), Some(126)));
    assert_eq!(r["board"]["feng_id"], 11);
    let human = d.ctl_ok(&["snap", "port", "snap1b05"]);
    assert!(human.contains("ANT00001P1") && human.contains("137") && human.contains("CC000E01"), "{human}");

    let s = d.ctl_json(&["snap", "show", "SNAP1B"]);
    let ports = s["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 12);
    let idx: Vec<u64> = ports.iter().map(|p| p["packet_index"].as_u64().unwrap()).collect();
    assert_eq!(idx, (132..144).collect::<Vec<u64>>());
    assert_eq!(ports[5]["antenna"], "ANT00001P1");
    assert_eq!(
        (ports[4]["antenna"].clone(), ports[4]["chain"].clone()),
        (serde_json::json!(""), serde_json::json!([]))
    );

    // A board that is not configured: ports without packet indices, not an error.
    let s = d.ctl_json(&["snap", "show", "SNAP4G"]);
    assert_eq!((s["board"].clone(), s["ports"][0]["packet_index"].clone()), (Value::Null, Value::Null));
    let e = d.ctl_err(&["snap", "port", "SNAP1A12"], 2);
    assert!(e.contains("port 12"), "{e}");
    let e = d.ctl_err(&["snap", "show", "SNAP5A"], 2);
    assert!(e.contains("chassis 5"), "{e}");
}

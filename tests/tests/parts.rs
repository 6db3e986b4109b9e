//! Parts through casmanctl and the socket: generation, validation (nothing
//! written on bad input), concurrency, listing, database print/clear, and the
//! seed document's Common Queries on a database built with casmanctl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, process::Stdio};

use casman_tests::{Daemon, sqlite};

fn numbers(v: &serde_json::Value) -> Vec<String> {
    v["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect()
}

fn part_count(d: &Daemon) -> i64 {
    sqlite(&d.data_dir.join("parts.db"), "SELECT COUNT(*) FROM parts").trim().parse().unwrap()
}

#[test]
fn add_in_both_forms_continues_numbering_per_type_and_polarization() {
    let d = Daemon::start();
    let out = d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    assert_eq!(out, "ANT00001P1\nANT00002P1\nANT00003P1\n");
    let v = d.ctl_json(&["parts", "add", "--part-type", "antenna", "--count", "2", "--polarization", "P1"]);
    assert_eq!(numbers(&v), ["ANT00004P1", "ANT00005P1"]);
    // P2 and other types number independently; aliases and lower case work.
    let v = d.ctl_json(&["parts", "add", "ant", "1", "2"]);
    assert_eq!(numbers(&v), ["ANT00001P2"]);
    let v = d.ctl_json(&["parts", "add", "CXS", "2", "p2"]);
    assert_eq!(numbers(&v), ["CXS00001P2", "CXS00002P2"]);
    // Stored as documented: type name, P1/P2, UTC ISO timestamps.
    let row = sqlite(
        &d.data_dir.join("parts.db"),
        "SELECT part_type, polarization, date_created FROM parts WHERE part_number = 'ANT00001P1'",
    );
    let f: Vec<&str> = row.trim().split('|').collect();
    assert_eq!(f[..2], ["ANTENNA", "P1"]);
    assert!(f[2].ends_with('Z') && f[2].contains('T'), "{row}");
}

#[test]
fn bad_input_is_refused_with_exit_2_and_writes_nothing() {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    for (args, needle) in [
        (vec!["parts", "add", "WIDGET", "1", "1"], "WIDGET"),
        (vec!["parts", "add", "LNA", "0", "1"], "count 0"),
        (vec!["parts", "add", "LNA", "100000", "1"], "100000"),
        (vec!["parts", "add", "LNA", "1", "3"], "3"),
        (vec!["parts", "add", "LNA", "1", "PX"], "PX"),
        (vec!["parts", "add", "SNAP", "1", "1"], "SNAP"),
    ] {
        let err = d.ctl_err(&args, 2);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    // clap rejects a negative count before anything is sent.
    d.ctl_err(&["parts", "add", "LNA", "--count", "-1", "--part-type", "LNA", "--polarization", "1"], 2);
    // Missing arguments without a terminal: a usage error.
    d.ctl_err(&["parts", "add", "LNA"], 2);
    assert_eq!(part_count(&d), 1);
}

#[test]
fn numbers_past_99999_are_refused_and_never_reused() {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "BAC", "1", "1"]);
    // Another program writes the high number (the daemon counts it too).
    sqlite(
        &d.data_dir.join("parts.db"),
        "INSERT INTO parts (part_number, part_type, polarization) VALUES ('BAC99998P1', 'BACBOARD', 'P1')",
    );
    let err = d.ctl_err(&["parts", "add", "BAC", "5", "1"], 1);
    assert!(err.contains("99999") && err.contains('5'), "{err}");
    assert_eq!(part_count(&d), 2, "nothing written");
    assert_eq!(numbers(&d.ctl_json(&["parts", "add", "BAC", "1", "1"])), ["BAC99999P1"]);
    // Clearing the parts does not make numbers reusable.
    d.ctl_ok(&["database", "clear", "--parts", "--yes", "parts.db"]);
    d.ctl_err(&["parts", "add", "BAC", "1", "1"], 1);
    assert_eq!(numbers(&d.ctl_json(&["parts", "add", "BAC", "1", "2"])), ["BAC00001P2"]);
}

#[test]
fn two_clients_generating_at_once_get_disjoint_numbers() {
    let d = Daemon::start();
    let children: Vec<_> = (0..4)
        .map(|_| {
            d.ctl_cmd()
                .args(["--json", "parts", "add", "LNA", "25", "1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = numbers(&v);
        assert_eq!(got.len(), 25);
        for n in got {
            assert!(all.insert(n.clone()), "{n} issued twice");
        }
    }
    let expected: BTreeSet<String> = (1..=100).map(|n| format!("LNA{n:05}P1")).collect();
    assert_eq!(all, expected);
}

#[test]
fn list_show_count_and_search() {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "2"]);
    d.ctl_ok(&["parts", "add", "COAXLONG", "4", "1"]);
    let all = d.ctl_json(&["parts", "list"]);
    assert_eq!(all["parts"].as_array().unwrap().len(), 9);
    let ants = d.ctl_json(&["parts", "list", "--type", "ANT", "--polarization", "2"]);
    let got: Vec<&str> =
        ants["parts"].as_array().unwrap().iter().map(|p| p["part_number"].as_str().unwrap()).collect();
    assert_eq!(got, ["ANT00002P2", "ANT00001P2"], "newest first");
    assert_eq!(d.ctl_json(&["parts", "list", "--limit", "2"])["parts"].as_array().unwrap().len(), 2);
    assert_eq!(d.ctl_json(&["parts", "list", "--since", "7d"])["parts"].as_array().unwrap().len(), 9);
    d.ctl_err(&["parts", "list", "--since", "last tuesday"], 2);

    let show = d.ctl_json(&["parts", "show", "cxl00002p1"]);
    assert_eq!(show["part_number"], "CXL00002P1");
    assert_eq!(show["part_type"], "COAXLONG");
    assert_eq!(show["polarization"], "P1");
    let err = d.ctl_err(&["parts", "show", "CXL00099P1"], 1);
    assert!(err.contains("CXL00099P1"), "{err}");

    let count = d.ctl_json(&["parts", "count"]);
    assert_eq!(count["total"], 9);
    let counts = count["counts"].as_array().unwrap();
    assert!(
        counts.iter().any(|c| c["part_type"] == "COAXLONG" && c["polarization"] == "P1" && c["count"] == 4)
    );

    let found = d.ctl_json(&["parts", "search", "ANT0000?P1"]);
    assert_eq!(found["parts"].as_array().unwrap().len(), 3);
    let found = d.ctl_json(&["parts", "search", "00004"]);
    assert_eq!(found["parts"].as_array().unwrap()[0]["part_number"], "CXL00004P1");
    let human = d.ctl_ok(&["parts", "list"]);
    assert!(human.contains("9 part(s)"), "{human}");
}

#[test]
fn database_print_and_clear_with_confirmation_and_a_safety_copy() {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    let dump = d.ctl_json(&["database", "print", "--parts"]);
    let parts = dump["tables"].as_array().unwrap().iter().find(|t| t["table"] == "parts").unwrap();
    assert_eq!(parts["rows"].as_array().unwrap().len(), 2);
    let text = d.ctl_ok(&["database", "print"]);
    assert!(text.contains("LNA00002P1") && text.contains("(No entries in this table)"), "{text}");

    // Without a terminal and without --yes: refused, nothing cleared.
    d.ctl_err(&["database", "clear", "--parts"], 2);
    // --yes must name the database.
    d.ctl_err(&["database", "clear", "--parts", "--yes", "assembled_casm.db"], 2);
    assert_eq!(part_count(&d), 2);

    let v = d.ctl_json(&["database", "clear", "--parts", "--yes", "parts.db"]);
    let cleared = &v["cleared"][0];
    assert_eq!(cleared["rows_deleted"], 2);
    let copy = std::path::PathBuf::from(cleared["safety_copy"].as_str().unwrap());
    assert_eq!(sqlite(&copy, "SELECT COUNT(*) FROM parts").trim(), "2", "safety copy holds the rows");
    assert_eq!(part_count(&d), 0);
    let audit = sqlite(&d.data_dir.join("state.db"), "SELECT action FROM audit_log ORDER BY id");
    assert_eq!(audit.lines().collect::<Vec<_>>(), ["parts.add", "database.clear"]);
}

#[test]
fn database_print_streams_a_table_larger_than_one_message() {
    // 2 x 40,000 parts: about 6 MB of rows, more than one gRPC message may
    // carry (4 MB): the dump must arrive in pages, complete and in order.
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "ANTENNA", "40000", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "40000", "2"]);
    let dump = d.ctl_json(&["database", "print", "--parts"]);
    let parts = dump["tables"].as_array().unwrap().iter().find(|t| t["table"] == "parts").unwrap();
    let rows = parts["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 80_000);
    let col = parts["columns"].as_array().unwrap().iter().position(|c| c == "part_number").unwrap();
    assert_eq!(rows[0][col], "ANT00001P1");
    assert_eq!(rows[79_999][col], "LNA40000P2");
    let text = d.ctl_ok(&["database", "print", "--parts", "--limit", "2500"]);
    assert!(text.contains("== parts.db : parts (2500 rows)"), "{}", &text[..text.len().min(2000)]);
    assert!(text.contains("ANT02500P1") && !text.contains("ANT02501P1"));
}

/// The "Common Queries" of seeds/database-guide.md, run unchanged with the
/// sqlite3 shell on a database built with casmanctl.
#[test]
fn the_documented_common_queries_run_unchanged() {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "2"]);
    d.ctl_ok(&["parts", "add", "LNA", "42", "1"]);
    let db = d.data_dir.join("parts.db");
    let q = |sql: &str| sqlite(&db, sql);
    assert_eq!(q("SELECT * FROM parts WHERE part_type = 'ANTENNA';").lines().count(), 3);
    assert_eq!(q("SELECT * FROM parts WHERE polarization = 'P1';").lines().count(), 44);
    let one = q("SELECT * FROM parts WHERE part_number = 'ANT00001P1';");
    assert!(one.starts_with("1|ANT00001P1|ANTENNA|P1|"), "{one}");
    assert_eq!(
        q("SELECT part_type, COUNT(*) as count FROM parts GROUP BY part_type;"),
        "ANTENNA|3\nLNA|42\n"
    );
    assert_eq!(
        q("SELECT * FROM parts \nWHERE date_created >= datetime('now', '-7 days')\nORDER BY date_created DESC;")
            .lines()
            .count(),
        45
    );
    // The other tables' documented queries run (their rows come with positions and boards).
    for sql in [
        "SELECT * FROM antenna_positions WHERE antenna_number = 'ANT00001';",
        "SELECT * FROM antenna_positions WHERE grid_code = 'CN002E03';",
        "SELECT * FROM antenna_positions \nWHERE latitude IS NOT NULL AND longitude IS NOT NULL;",
        "SELECT * FROM antenna_positions WHERE row_offset = 2;",
        "SELECT * FROM antenna_positions WHERE array_id = 'C';",
        "SELECT * FROM snap_boards WHERE chassis = 1 AND slot = 'A';",
        "SELECT * FROM snap_boards WHERE serial_number = 'SN01';",
        "SELECT * FROM snap_boards WHERE feng_id = 11;",
        "SELECT \n    chassis, slot, feng_id,\n    (feng_id * 12 + 5) as packet_index_port5,\n    (feng_id * 12 + 0) as packet_index_port0,\n    (feng_id * 12 + 11) as packet_index_port11\nFROM snap_boards;",
        "SELECT * FROM snap_boards WHERE chassis = 2 ORDER BY slot;",
        "SELECT chassis, slot, serial_number, ip_address, feng_id \nFROM snap_boards \nORDER BY chassis, slot;",
    ] {
        q(sql);
    }
    let asm = d.data_dir.join("assembled_casm.db");
    for sql in [
        "SELECT * FROM assembly WHERE part_number = 'ANT00001P1';",
        "SELECT connected_to, connected_to_type \nFROM assembly \nWHERE part_number = 'ANT00001P1' AND connection_status = 'connected';",
        "WITH RECURSIVE chain AS (\n    SELECT * FROM assembly WHERE part_number = 'ANT00001P1'\n    UNION ALL\n    SELECT a.* FROM assembly a\n    INNER JOIN chain c ON a.part_number = c.connected_to\n    WHERE a.connection_status = 'connected'\n)\nSELECT * FROM chain;",
    ] {
        sqlite(&asm, sql);
    }
}

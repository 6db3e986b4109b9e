//! Adoption of databases written by the Python CAsMan: small fixtures in the
//! legacy shapes (run anywhere), the real files of ../shared/legacy when that
//! folder exists, and files casmand must refuse without touching.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
};

use casman_tests::{Daemon, DaemonOpts, sqlite};

/// Legacy shape of parts.db (Nov 2025): polarization 1/2, local timestamps,
/// 0-based grid columns, no snap_boards/grid_positions.
const PARTS_2025_11: &str = "
CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE, part_type TEXT, polarization TEXT,
                    date_created TEXT, date_modified TEXT);
CREATE TABLE antenna_positions (id INTEGER PRIMARY KEY AUTOINCREMENT, antenna_number TEXT UNIQUE NOT NULL,
  array_id TEXT NOT NULL, row_offset INTEGER NOT NULL, east_col INTEGER NOT NULL, grid_code TEXT UNIQUE NOT NULL,
  assigned_at TEXT NOT NULL, notes TEXT, latitude REAL, longitude REAL, height REAL, coordinate_system TEXT,
  CHECK(row_offset >= -999 AND row_offset <= 999), CHECK(east_col >= 0 AND east_col <= 99),
  UNIQUE(array_id, row_offset, east_col));
INSERT INTO parts VALUES (1,'ANT00001P1','ANTENNA','1','2025-11-21 17:52:47','2025-11-21 17:52:47');
INSERT INTO parts VALUES (2,'ANT00001P2','ANTENNA','2','2025-11-21 17:52:47','2025-11-21 17:52:47');
INSERT INTO parts VALUES (3,'LNA00003P1','LNA','1','2025-11-25 15:25:00','2025-11-25 15:25:00');
INSERT INTO antenna_positions VALUES (2,'ANT00004','C',0,1,'CC000E01','2025-11-25T20:05:32.489557Z',NULL,37.871912,-122.258321,10.6,'WGS84');
INSERT INTO antenna_positions VALUES (3,'ANT00001','C',0,0,'CC000E00','2025-11-25T20:05:40.000000Z',NULL,NULL,NULL,NULL,NULL);
";

/// Oldest shapes: parts without polarization and with created_at/modified_at;
/// assembly without connection_status.
const PARTS_2025_08: &str = "
CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE, part_type TEXT, created_at TEXT, modified_at TEXT);
INSERT INTO parts VALUES (1,'ANTP1-00001','ANTENNA','2025-08-04 12:29:45','2025-08-04 12:29:45');
INSERT INTO parts VALUES (2,'LNAP2-00001','LNA','2025-08-04 12:30:10','2025-08-04 14:02:40');
";
const ASSEMBLED_2025_08: &str = "
CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, part_type TEXT, polarization TEXT, scan_time TEXT,
  connected_to TEXT, connected_to_type TEXT, connected_polarization TEXT, connected_scan_time TEXT);
INSERT INTO assembly VALUES (1,'ANTP1-00001','ANTENNA','1','2025-08-04 13:00:00','LNAP1-00001','LNA','1','2025-08-04 13:00:06');
INSERT INTO assembly VALUES (2,'BAC00300P1','BACBOARD','1','2025-12-08 19:52:54','SNAP4H11','SNAP','N/A','2025-12-08 19:52:54');
";

fn make_db(path: &Path, sql: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    sqlite(path, sql);
}

fn adopt(files: &[(&str, &Path)]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (name, src) in files {
        std::fs::copy(src, data.join(name)).unwrap();
    }
    // A fixed zone, so the conversions are the same on every machine.
    let opts = DaemonOpts::default().config("legacy_timezone = \"America/Los_Angeles\"\n");
    Daemon::start_in(dir, opts)
}

fn count(db: &Path, table: &str) -> i64 {
    sqlite(db, &format!("SELECT COUNT(*) FROM {table}")).trim().parse().unwrap()
}

/// Every value of `original` either is unchanged in `adopted` or was recorded
/// in `legacy_values` with exactly the original as old value and the current
/// one as new value.
fn assert_lossless(original: &Path, adopted: &Path, table: &str, columns: &[&str]) {
    let select = format!(
        "SELECT id, {} FROM {table} ORDER BY id",
        columns.iter().map(|c| format!("quote({c})")).collect::<Vec<_>>().join(", ")
    );
    let before = sqlite(original, &select);
    let after = sqlite(adopted, &select);
    assert_eq!(before.lines().count(), after.lines().count(), "{table}: row count");
    let recorded: BTreeMap<(String, String), (String, String)> = sqlite(
        adopted,
        &format!("SELECT row_id, column_name, quote(old_value), quote(new_value) FROM legacy_values WHERE table_name = '{table}'"),
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.splitn(4, '|').collect();
        ((f[0].to_owned(), f[1].to_owned()), (f[2].to_owned(), f[3].to_owned()))
    })
    .collect();
    for (b, a) in before.lines().zip(after.lines()) {
        let (bf, af): (Vec<&str>, Vec<&str>) = (b.split('|').collect(), a.split('|').collect());
        assert_eq!(bf[0], af[0], "{table}: same ids in the same order");
        for (i, col) in columns.iter().enumerate() {
            let (old, new) = (bf[i + 1], af[i + 1]);
            if old == new {
                continue;
            }
            let Some((rec_old, rec_new)) = recorded.get(&(bf[0].to_owned(), (*col).to_owned())) else {
                panic!("{table} row {} column {col}: {old} -> {new} not recorded in legacy_values", bf[0]);
            };
            // quote() of a REAL/INTEGER is unquoted; legacy_values stores text.
            let norm = |s: &str| s.trim_matches('\'').to_owned();
            assert_eq!(norm(rec_old), norm(old), "{table} row {} {col}: recorded old value", bf[0]);
            assert_eq!(norm(rec_new), norm(new), "{table} row {} {col}: recorded new value", bf[0]);
        }
    }
}

#[test]
fn a_2025_11_parts_file_adopts_losslessly() {
    let src = tempfile::tempdir().unwrap();
    let original = src.path().join("parts.db");
    make_db(&original, PARTS_2025_11);
    let d = adopt(&[("parts.db", &original)]);
    let adopted = d.data_dir.join("parts.db");
    assert_eq!(count(&adopted, "parts"), 3);
    assert_eq!(count(&adopted, "antenna_positions"), 2);
    assert_eq!(sqlite(&adopted, "SELECT polarization FROM parts ORDER BY id"), "P1\nP2\nP1\n");
    // 17:52:47 in Los Angeles (PST) is 01:52:47 UTC the next day.
    assert_eq!(
        sqlite(&adopted, "SELECT date_created FROM parts WHERE id = 1").trim(),
        "2025-11-22T01:52:47Z"
    );
    // 0-based columns shifted to 1-based.
    assert_eq!(
        sqlite(&adopted, "SELECT antenna_number, east_col, grid_code FROM antenna_positions ORDER BY id"),
        "ANT00004|2|CC000E02\nANT00001|1|CC000E01\n"
    );
    assert_lossless(
        &original,
        &adopted,
        "parts",
        &["part_number", "part_type", "polarization", "date_created", "date_modified"],
    );
    assert_lossless(
        &original,
        &adopted,
        "antenna_positions",
        &["antenna_number", "east_col", "grid_code", "assigned_at", "latitude"],
    );
    // The original is kept byte for byte, and the report says what happened.
    let report = d.ctl_json(&["database", "adoption"]);
    let parts = &report["reports"][0];
    assert_eq!(parts["database"], "parts.db");
    assert_eq!(parts["adopted"], true);
    let copy = PathBuf::from(parts["original_copy"].as_str().unwrap());
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&original).unwrap());
    assert!(parts["added_tables"].as_array().unwrap().iter().any(|t| t == "snap_boards"));
    assert_eq!(report["reports"][1]["adopted"], false, "assembled_casm.db was created, not adopted");
    // Adopted data is usable: numbering continues after the highest number.
    assert_eq!(d.ctl_json(&["parts", "add", "LNA", "1", "1"])["parts"][0], "LNA00004P1");
}

#[test]
fn the_oldest_shapes_adopt_and_historic_ids_are_kept() {
    let src = tempfile::tempdir().unwrap();
    let parts = src.path().join("parts.db");
    let asm = src.path().join("assembled_casm.db");
    make_db(&parts, PARTS_2025_08);
    make_db(&asm, ASSEMBLED_2025_08);
    let d = adopt(&[("parts.db", &parts), ("assembled_casm.db", &asm)]);
    let p = d.data_dir.join("parts.db");
    let a = d.data_dir.join("assembled_casm.db");
    assert_eq!(
        sqlite(&p, "SELECT part_number, polarization, created_at, date_created FROM parts ORDER BY id"),
        "ANTP1-00001|P1|2025-08-04 12:29:45|2025-08-04T19:29:45Z\nLNAP2-00001|P2|2025-08-04 12:30:10|2025-08-04T19:30:10Z\n"
    );
    assert_eq!(
        sqlite(
            &a,
            "SELECT connection_status, polarization, quote(connected_polarization) FROM assembly ORDER BY id"
        ),
        "connected|P1|'P1'\nconnected|P1|NULL\n"
    );
    assert_lossless(
        &asm,
        &a,
        "assembly",
        &[
            "part_number",
            "polarization",
            "scan_time",
            "connected_to",
            "connected_polarization",
            "connected_scan_time",
        ],
    );
    let show = d.ctl_json(&["parts", "show", "ANTP1-00001"]);
    assert_eq!(show["historic"], true);
    let report = d.ctl_json(&["database", "adoption"]);
    let ids = report["reports"][0]["historic_ids"].as_array().unwrap();
    assert!(ids.iter().any(|i| i == "ANTP1-00001"), "{ids:?}");
}

#[test]
fn adoption_happens_once() {
    let src = tempfile::tempdir().unwrap();
    let original = src.path().join("parts.db");
    make_db(&original, PARTS_2025_11);
    let mut d = adopt(&[("parts.db", &original)]);
    let p = d.data_dir.join("parts.db");
    let recorded = count(&p, "legacy_values");
    d.terminate();
    d.restart();
    assert_eq!(count(&p, "legacy_values"), recorded, "a restart does not adopt again");
    assert_eq!(
        sqlite(&p, "SELECT east_col FROM antenna_positions ORDER BY id"),
        "2\n1\n",
        "not shifted twice"
    );
}

fn refuses(name: &str, contents: &[u8], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join(name);
    std::fs::write(&file, contents).unwrap();
    let out = Daemon::command(dir.path(), &DaemonOpts::default()).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file.display().to_string()) && err.contains(needle), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), contents, "the file was modified");
    assert!(!dir.path().join("run/casmand.sock").exists());
    assert!(!data.join("parts.db-wal").exists() && !data.join("assembled_casm.db-wal").exists());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_untouched() {
    refuses(
        "assembled_casm.db",
        b"part_number,connected_to\nANT00001P1,LNA00001P1\n",
        "not an SQLite database",
    );
}

#[test]
fn a_file_failing_integrity_check_is_refused_and_untouched() {
    let src = tempfile::tempdir().unwrap();
    let good = src.path().join("parts.db");
    let mut sql = String::from(
        "PRAGMA page_size=1024; CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE);",
    );
    for i in 0..400 {
        sql.push_str(&format!("INSERT INTO parts (part_number) VALUES ('ANT{i:05}P1');"));
    }
    make_db(&good, &sql);
    let mut bytes = std::fs::read(&good).unwrap();
    // Scribble over the middle of the file (index and table pages), not the header.
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 3000] {
        *b = 0x5A;
    }
    refuses("parts.db", &bytes, "integrity");
}

/// A start after a clean stop skips the full check of a file nothing
/// touched since (it leaves a mark beside it); a file damaged after the stop
/// is checked in full all the same, and refused.
#[test]
fn a_file_damaged_after_a_clean_stop_is_refused_at_the_next_start() {
    let src = tempfile::tempdir().unwrap();
    let good = src.path().join("parts.db");
    let mut sql = String::from(
        "PRAGMA page_size=1024; CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE,
         part_type TEXT, polarization TEXT, date_created TEXT, date_modified TEXT);",
    );
    for i in 1..=400 {
        sql.push_str(&format!(
            "INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified)
             VALUES ('ANT{i:05}P1', 'ANTENNA', 'P1', '2025-11-21T17:52:47Z', '2025-11-21T17:52:47Z');"
        ));
    }
    make_db(&good, &sql);
    let mut d = adopt(&[("parts.db", &good)]);
    let file = d.data_dir.join("parts.db");
    d.terminate();
    assert!(d.data_dir.join("parts.db.checked").exists(), "no mark after a clean stop");
    d.restart();
    assert!(!d.data_dir.join("parts.db.checked").exists(), "the mark is used up by the start");
    d.terminate();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 3000] {
        *b = 0x5A;
    }
    std::fs::write(&file, &bytes).unwrap();
    let out = Daemon::command(d.dir.path(), &DaemonOpts::default()).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("integrity"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the file was modified");
}

/// The real files written by the Python tool adopt with every row kept and
/// every changed value recorded.
#[test]
fn the_real_legacy_files_adopt_without_losing_a_row() {
    let sets = [
        ("parts-2025-11.db", "assembled_casm-2026-01.db"),
        ("parts-2025-08-dev.db", "assembled_casm-2025-08-dev.db"),
    ];
    for (p, a) in sets {
        let (Some(p), Some(a)) = (casman_tests::legacy_file(p), casman_tests::legacy_file(a)) else { return };
        let d = adopt(&[("parts.db", &p), ("assembled_casm.db", &a)]);
        let pd = d.data_dir.join("parts.db");
        let ad = d.data_dir.join("assembled_casm.db");
        assert_eq!(count(&pd, "parts"), count(&p, "parts"));
        assert_eq!(count(&ad, "assembly"), count(&a, "assembly"));
        assert_lossless(&p, &pd, "parts", &["part_number", "part_type"]);
        assert_lossless(
            &a,
            &ad,
            "assembly",
            &[
                "part_number",
                "part_type",
                "polarization",
                "scan_time",
                "connected_to",
                "connected_to_type",
                "connected_polarization",
                "connected_scan_time",
            ],
        );
        if sqlite(&p, "SELECT name FROM sqlite_master WHERE name = 'antenna_positions'").trim()
            == "antenna_positions"
        {
            assert_eq!(count(&pd, "antenna_positions"), count(&p, "antenna_positions"));
            assert_lossless(
                &p,
                &pd,
                "antenna_positions",
                &[
                    "antenna_number",
                    "east_col",
                    "grid_code",
                    "assigned_at",
                    "latitude",
                    "longitude",
                    "height",
                ],
            );
        }
        let report = d.ctl_json(&["database", "adoption"]);
        for r in report["reports"].as_array().unwrap() {
            assert_eq!(r["adopted"], true);
            for t in r["tables"].as_array().unwrap() {
                assert_eq!(t["rows_before"], t["rows_after"], "{t}");
            }
        }
    }
}

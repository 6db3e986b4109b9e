//! A part number, once issued, is never issued again: not after a restore of
//! an older parts.db, a pull of another site's version, a merge, a `database
//! clear`, a restart, or the adoption of CAsMan files. Two sites (their own
//! data directories and ranges) share one local-directory store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, path::Path};

use casman_tests::{Daemon, DaemonOpts, sqlite};
use serde_json::Value;

/// A site with its own range; backups only when the test asks.
fn site(store: &Path, name: &str, range: &str) -> Daemon {
    Daemon::start_with(
        DaemonOpts::default()
            .whole_file_sync()
            .config(&format!("part_number_range = \"{range}\"\n"))
            .env("CASMAN_SITE_ID", name)
            .env("CASMAN_SYNC_BACKEND", "local")
            .env("CASMAN_BACKUP_DIR", store)
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    )
}

/// Every number handed out so far, by any site: a second issue fails the test.
#[derive(Default)]
struct Ledger(BTreeSet<String>);

impl Ledger {
    fn add(&mut self, d: &Daemon, part_type: &str, count: u32) -> Vec<String> {
        let out = d.ctl_json(&["parts", "add", part_type, &count.to_string(), "1"]);
        let numbers: Vec<String> =
            out["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
        assert_eq!(numbers.len(), count as usize, "{out}");
        for n in &numbers {
            assert!(self.0.insert(n.clone()), "{n} was issued twice (issued so far: {:?})", self.0);
        }
        numbers
    }
}

fn backup_parts(d: &Daemon) -> String {
    d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned()
}

fn sync_parts(d: &Daemon, args: &[&str]) -> Value {
    let mut all = vec!["sync", "sync", "--parts"];
    all.extend_from_slice(args);
    d.ctl_json_allow_fail(&all)["results"][0].clone()
}

fn part_count(d: &Daemon) -> i64 {
    d.ctl_json(&["parts", "count"])["total"].as_i64().unwrap()
}

#[test]
fn no_number_is_issued_twice_across_restore_pull_merge_clear_and_restart() {
    let store = tempfile::tempdir().unwrap();
    let lab = site(store.path(), "lab", "1-49999");
    let mut issued = Ledger::default();

    // A first batch, backed up: the version a restore will go back to.
    assert_eq!(
        issued.add(&lab, "ANTENNA", 5),
        ["ANT00001P1", "ANT00002P1", "ANT00003P1", "ANT00004P1", "ANT00005P1"]
    );
    let old = backup_parts(&lab);
    // More parts, connected in the assembly log, then the older file restored.
    issued.add(&lab, "ANTENNA", 3);
    issued.add(&lab, "LNA", 2);
    lab.ctl_ok(&["scan", "connect", "ANT00008P1", "LNA00002P1"]);
    let restored = lab.ctl_json(&["sync", "restore", &old, "--yes"]);
    assert_eq!(part_count(&lab), 5);
    // The restore names the parts the assembly log still references.
    assert_eq!(restored["missing_parts"], serde_json::json!(["ANT00008P1", "LNA00002P1"]), "{restored}");
    assert_eq!(restored["missing_parts_total"], 2, "{restored}");
    assert!(restored["missing_parts_file"].is_null(), "a list of two is not written to a file: {restored}");
    let human = lab.ctl_ok(&["sync", "restore", &old, "--no-backup", "--yes"]);
    assert!(human.contains("no longer holds") && human.contains("ANT00008P1"), "{human}");
    // Generation continues above every number ever issued.
    assert_eq!(issued.add(&lab, "ANTENNA", 2), ["ANT00009P1", "ANT00010P1"]);
    assert_eq!(issued.add(&lab, "LNA", 1), ["LNA00003P1"]);

    // A restart keeps it (state.db).
    let mut lab = lab;
    lab.terminate();
    lab.restart();
    issued.add(&lab, "ANTENNA", 1);
    backup_parts(&lab);

    // Another site pulls lab's parts and generates in its own range.
    let field = site(store.path(), "field", "50000-99999");
    assert_eq!(sync_parts(&field, &[])["state"], "pulled");
    assert_eq!(issued.add(&field, "ANTENNA", 2), ["ANT50000P1", "ANT50001P1"]);
    backup_parts(&field);

    // Field restores the oldest version (5 parts) and lab pulls it: lab's
    // file now lacks most of its numbers, its record does not.
    field.ctl_ok(&["sync", "restore", &old, "--yes"]);
    assert_eq!(issued.add(&field, "ANTENNA", 1), ["ANT50002P1"]);
    backup_parts(&field);
    assert_eq!(sync_parts(&lab, &[])["state"], "pulled");
    assert_eq!(part_count(&lab), 6, "ANT00001-5 and ANT50002");
    assert_eq!(issued.add(&lab, "ANTENNA", 1), ["ANT00012P1"]);

    // Both change parts.db, lab's version is stored as it syncs, and field
    // merges lab's changes in.
    backup_parts(&lab);
    issued.add(&field, "ANTENNA", 1);
    issued.add(&field, "LNA", 1);
    let diverged = sync_parts(&field, &[]);
    assert_eq!(diverged["state"], "diverged", "{diverged}");
    let merged = field.ctl_json_allow_fail(&["sync", "merge", "--parts"]);
    assert_eq!(merged["results"][0]["applied"], true, "{merged}");
    issued.add(&field, "ANTENNA", 1);
    // The lab follows the merge and keeps issuing above its highest number.
    assert_eq!(sync_parts(&lab, &[])["state"], "pulled");
    issued.add(&lab, "ANTENNA", 2);
    issued.add(&lab, "LNA", 1);

    // Clearing parts.db forgets the rows, not the numbers.
    lab.ctl_ok(&["database", "clear", "--parts", "--yes", "parts.db"]);
    assert_eq!(part_count(&lab), 0);
    assert_eq!(issued.add(&lab, "ANTENNA", 1), ["ANT00015P1"]);
    assert_eq!(issued.add(&lab, "LNA", 1), ["LNA00005P1"]);
    field.ctl_ok(&["database", "clear", "--parts", "--yes", "parts.db"]);
    assert_eq!(issued.add(&field, "ANTENNA", 1), ["ANT50005P1"]);

    // Restoring the first version once more, after all that: still nothing reused.
    lab.ctl_ok(&["sync", "restore", &old, "--yes"]);
    issued.add(&lab, "ANTENNA", 3);
    issued.add(&lab, "LNA", 3);
    assert!(issued.0.len() > 30, "{:?}", issued.0);
}

/// A number only the replaced file held (another program's row) is read
/// after the swap, from the local copy: a kill -9 right after the restore
/// answers loses no number, whether or not the reading had finished.
#[test]
fn a_number_only_the_replaced_file_held_stays_issued_through_a_kill() {
    let store = tempfile::tempdir().unwrap();
    let mut lab = site(store.path(), "lab", "1-49999");
    let mut issued = Ledger::default();
    issued.add(&lab, "ANTENNA", 2);
    let old = backup_parts(&lab);
    sqlite(
        &lab.data_dir.join("parts.db"),
        "INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified)
         SELECT 'ANT00020P1', part_type, polarization, date_created, date_modified FROM parts LIMIT 1;",
    );
    let restored = lab.ctl_json(&["sync", "restore", &old, "--no-backup", "--yes"]);
    assert_eq!(restored["missing_parts_total"], 0, "{restored}");
    lab.kill();
    lab.restart();
    assert_eq!(part_count(&lab), 2);
    assert_eq!(issued.add(&lab, "ANTENNA", 1), ["ANT00021P1"]);
}

#[test]
fn adopted_numbers_and_the_assembly_log_stay_issued_after_a_clear() {
    // A CAsMan data directory: parts up to ANT00007P1, and an assembly log
    // naming LNA00009P1, which parts.db never held.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    sqlite(
        &data.join("parts.db"),
        "CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE, part_type TEXT, polarization TEXT,
           date_created TEXT, date_modified TEXT);
         INSERT INTO parts VALUES (1, 'ANT00003P1', 'ANTENNA', '1', '2025-11-21 17:52:47', '2025-11-21 17:52:47');
         INSERT INTO parts VALUES (2, 'ANT00007P1', 'ANTENNA', '1', '2025-11-21 17:52:48', '2025-11-21 17:52:48');",
    );
    sqlite(
        &data.join("assembled_casm.db"),
        "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, part_type TEXT, polarization TEXT,
           scan_time TEXT, connected_to TEXT, connected_to_type TEXT, connected_polarization TEXT,
           connected_scan_time TEXT, connection_status TEXT);
         INSERT INTO assembly VALUES (1, 'ANT00007P1', 'ANTENNA', '1', '2025-11-21 18:00:00', 'LNA00009P1', 'LNA', '1',
           '2025-11-21 18:00:00', 'connected');",
    );
    let d = Daemon::start_in(dir, DaemonOpts::default().config("legacy_timezone = \"UTC\"\n"));
    d.ctl_ok(&["database", "clear", "--parts", "--yes", "parts.db"]);
    let mut issued = Ledger::default();
    assert_eq!(issued.add(&d, "ANTENNA", 1), ["ANT00008P1"]);
    assert_eq!(issued.add(&d, "LNA", 1), ["LNA00010P1"]);
}

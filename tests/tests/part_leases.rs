//! Part numbers are unique across sites by construction, with the shipped
//! defaults: each site issues from blocks it leased from the store
//! (`leases/part_numbers.json`, compare-and-swap), also offline; a site that
//! needs a new block while the store is down is refused with why and what to
//! do. Real casmand processes on one local store, and on moto behind the
//! fault proxy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use casman_tests::{Daemon, DaemonOpts, Fault, FaultProxy, MotoServer};
use serde_json::Value;

fn site(store: &Path, name: &str) -> Daemon {
    Daemon::start_with(DaemonOpts::local_site(store, name))
}

/// The numbers `parts add` printed, from its JSON.
fn add(d: &Daemon, part_type: &str, count: &str) -> Vec<u32> {
    let out = d.ctl_json(&["parts", "add", part_type, count, "1"]);
    out["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .map(|p| p.as_str().unwrap()[3..8].parse().unwrap())
        .collect()
}

fn leases(store: &Path) -> Value {
    let text = std::fs::read_to_string(store.join("leases/part_numbers.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn two_sites_never_issue_the_same_number_and_stay_dense() {
    let store = tempfile::tempdir().unwrap();
    let a = site(store.path(), "lab");
    let b = site(store.path(), "array");
    assert_eq!(add(&a, "LNA", "5"), (1..=5).collect::<Vec<_>>());
    assert_eq!(add(&b, "LNA", "5"), (101..=105).collect::<Vec<_>>());
    // Each goes on in its own block.
    assert_eq!(add(&a, "LNA", "5"), (6..=10).collect::<Vec<_>>());
    assert_eq!(add(&b, "LNA", "3"), (106..=108).collect::<Vec<_>>());
    // A request larger than what is left in the block gets a block of its size.
    assert_eq!(add(&a, "LNA", "150"), (201..=350).collect::<Vec<_>>());
    // Another type starts at 1.
    assert_eq!(add(&b, "ANTENNA", "2"), vec![1, 2]);
    let l = leases(store.path());
    let blocks: Vec<(String, String, u64, u64)> = l["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["site"].as_str().unwrap().to_owned(),
                b["part_type"].as_str().unwrap().to_owned(),
                b["first"].as_u64().unwrap(),
                b["last"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        vec![
            ("lab".into(), "LNA".into(), 1, 100),
            ("array".into(), "LNA".into(), 101, 200),
            ("lab".into(), "LNA".into(), 201, 350),
            ("array".into(), "ANTENNA".into(), 1, 100),
        ]
    );
}

#[test]
fn the_part_number_range_variable_is_honoured() {
    let store = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        DaemonOpts::default()
            .env("CASMAN_SITE_ID", "array")
            .env("CASMAN_BACKUP_DIR", store.path())
            .env("CASMAN_PART_NUMBER_RANGE", "50000-59999"),
    );
    assert_eq!(add(&d, "LNA", "2"), vec![50_000, 50_001]);
    let out = d.ctl_json(&["config"]);
    assert!(out.to_string().contains("50000-59999"), "{out}");
}

#[test]
fn offline_a_site_issues_from_its_block_and_is_told_when_it_needs_another() {
    let moto = MotoServer::start();
    moto.create_bucket("casman-leases");
    let proxy = FaultProxy::start(moto.port);
    let d = Daemon::start_with(
        proxy
            .daemon_opts("casman-leases", "field")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    );
    assert_eq!(add(&d, "LNA", "5"), (1..=5).collect::<Vec<_>>());
    proxy.inject("*", "", Fault::Status(503, "ServiceUnavailable"), u32::MAX);
    // Offline: the block leased earlier still serves.
    assert_eq!(add(&d, "LNA", "90"), (6..=95).collect::<Vec<_>>());
    // Not enough left, and no new block can be leased: refused, nothing written.
    let e = d.ctl_err(&["parts", "add", "LNA", "10", "1"], 1);
    assert!(e.contains("cannot issue 10 LNA P1") && e.contains("1-100") && e.contains("reconnect"), "{e}");
    let e = d.ctl_err(&["parts", "add", "ANTENNA", "1", "1"], 1);
    assert!(e.contains("holds no block"), "{e}");
    assert_eq!(add(&d, "LNA", "5"), (96..=100).collect::<Vec<_>>());
    proxy.clear();
    assert_eq!(add(&d, "LNA", "10"), (101..=110).collect::<Vec<_>>());
    let record: Value =
        serde_json::from_slice(&moto.get_object("casman-leases", "leases/part_numbers.json").unwrap())
            .unwrap();
    assert_eq!(record["blocks"].as_array().unwrap().len(), 2, "{record}");
}

/// Numbers another site issued, learned at a sync, lie in that site's block:
/// they do not stop this site from issuing from its own block offline.
#[test]
fn numbers_learned_from_another_site_leave_this_sites_block_usable_offline() {
    let moto = MotoServer::start();
    moto.create_bucket("casman-leases2");
    let proxy = FaultProxy::start(moto.port);
    let quiet = |o: casman_tests::DaemonOpts| {
        o.env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    };
    let lab = Daemon::start_with(quiet(proxy.daemon_opts("casman-leases2", "lab")));
    let array = Daemon::start_with(quiet(moto.daemon_opts("casman-leases2", "array")));
    assert_eq!(add(&lab, "LNA", "5"), (1..=5).collect::<Vec<_>>());
    lab.ctl_ok(&["sync", "backup", "--parts"]);
    assert_eq!(add(&array, "LNA", "5"), (101..=105).collect::<Vec<_>>());
    array.ctl_ok(&["sync", "backup", "--parts"]);
    // The lab learns the array's numbers (the sync itself may report a divergence).
    let _ = lab.ctl(&["sync", "sync", "--parts"]);
    let learned = casman_tests::sqlite(
        &lab.data_dir.join("state.db"),
        "SELECT count(*) FROM issued_numbers WHERE part_type = 'LNA' AND first <= 101 AND last >= 105",
    );
    assert_eq!(learned.trim(), "1", "the lab knows the array's numbers as issued");
    proxy.inject("*", "", Fault::Status(503, "ServiceUnavailable"), u32::MAX);
    assert_eq!(add(&lab, "LNA", "5"), (6..=10).collect::<Vec<_>>());
}

/// A damaged lease record is refused in words, and no number is issued.
#[test]
fn a_damaged_lease_record_issues_nothing() {
    let store = tempfile::tempdir().unwrap();
    let d = site(store.path(), "lab");
    std::fs::create_dir_all(store.path().join("leases")).unwrap();
    std::fs::write(store.path().join("leases/part_numbers.json"), b"{\"format\": 1, \"blocks\": [").unwrap();
    let e = d.ctl_err(&["parts", "add", "LNA", "5", "1"], 1);
    assert!(e.contains("leases/part_numbers.json") && e.contains("not a valid lease record"), "{e}");
    assert_eq!(d.ctl_json(&["parts", "count"])["total"], 0);
}

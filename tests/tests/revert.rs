//! `casmanctl sync revert KEY` (issue 30): every site back to a stored
//! version's state by compensating changes, previewed, confirmed, audited
//! and exchanged like any change, with several real casmand processes on
//! one store (a local directory, and moto) and a SIGKILL right after the
//! revert was acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use casman_tests::{Daemon, DaemonOpts, s3::MotoServer, sqlite};
use serde_json::Value;

fn connections(d: &Daemon) -> Vec<String> {
    let out = sqlite(
        &d.data_dir.join("assembled_casm.db"),
        "SELECT source || '>' || target FROM active_connections ORDER BY 1",
    );
    out.lines().map(str::to_owned).collect()
}

fn positions(d: &Daemon) -> Vec<String> {
    let out = sqlite(
        &d.data_dir.join("parts.db"),
        "SELECT antenna_number || '@' || grid_code FROM antenna_positions ORDER BY 1",
    );
    out.lines().map(str::to_owned).collect()
}

fn parts(d: &Daemon) -> usize {
    sqlite(&d.data_dir.join("parts.db"), "SELECT count(*) FROM parts").trim().parse().unwrap()
}

/// The key of the version `sync backup` just stored of `db`.
fn backup(d: &Daemon, db: &str) -> String {
    let flag = if db == "parts.db" { "--parts" } else { "--assembled" };
    d.ctl_json(&["sync", "backup", flag])["backups"][0]["key"].as_str().unwrap().to_owned()
}

/// A proto3 JSON number (64-bit ones are strings; zero is left out).
fn number(v: &Value) -> i64 {
    match v {
        Value::Null => 0,
        Value::String(s) => s.parse().unwrap(),
        other => other.as_i64().unwrap(),
    }
}

fn steps(v: &Value) -> Vec<(String, String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (f("table"), f("key"), f("action"))
        })
        .collect()
}

/// Two sites work past a version; one site reverts both databases to it
/// (and is killed right after); every site ends in the version's state,
/// the later work stays in the log, and the revert is audited.
fn reverts_reach_every_site(lab: &Daemon, mut field: Daemon) {
    lab.ctl_ok(&["parts", "add", "ANTENNA", "4", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "4", "1"]);
    lab.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    lab.ctl_ok(&["positions", "assign", "ANT00001", "CN001E01"]);
    let (parts_key, log_key) = (backup(lab, "parts.db"), backup(lab, "assembled_casm.db"));
    lab.ctl_json(&["sync", "sync"]);
    field.ctl_json(&["sync", "sync"]);
    assert_eq!(connections(&field), ["ANT00001P1>LNA00001P1"]);
    // Work after the version, at both sites.
    lab.ctl_ok(&["scan", "disconnect", "ANT00001P1", "LNA00001P1"]);
    lab.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    lab.ctl_ok(&["positions", "assign", "ANT00002", "CN001E02"]);
    field.ctl_ok(&["scan", "connect", "ANT00003P1", "LNA00003P1"]);
    field.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    field.ctl_ok(&["positions", "assign", "ANT00001", "CN001E03", "--force"]);
    lab.ctl_json(&["sync", "sync"]);
    // The preview takes the lab's work first, then shows the diff; nothing written.
    let events_before = sqlite(&field.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly");
    let preview = field.ctl_json(&["sync", "revert", &log_key, "--preview"]);
    assert_eq!(preview["applied"], false, "{preview}");
    assert_eq!(
        steps(&preview),
        [
            ("connections".into(), "ANT00002P1 -> LNA00002P1".into(), "disconnect".into()),
            ("connections".into(), "ANT00003P1 -> LNA00003P1".into(), "disconnect".into()),
            ("connections".into(), "ANT00001P1 -> LNA00001P1".into(), "connect".into()),
        ],
        "{preview}"
    );
    assert_eq!(
        sqlite(&field.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly"),
        format!("{}", events_before.trim().parse::<i64>().unwrap() + 2) + "\n",
        "the lab's two scans arrived with the preview; no event was written"
    );
    let text = field.ctl_ok(&["sync", "revert", &parts_key, "--preview"]);
    assert!(text.contains("grid_code: CN001E03 -> CN001E01"), "{text}");
    assert!(
        text.lines().any(|l| l.contains(" parts ") && l.contains(" remove ")),
        "the field's new LNA: {text}"
    );
    // Without a terminal and without --yes: refused, nothing written.
    field.ctl_err(&["sync", "revert", &log_key], 2);
    // Revert both; the site is killed right after the second is acknowledged.
    let done = field.ctl_json(&["sync", "revert", &log_key, "--yes"]);
    assert_eq!(done["applied"], true, "{done}");
    assert_eq!(number(&done["total"]), 3, "{done}");
    let done = field.ctl_json(&["sync", "revert", &parts_key, "--yes"]);
    assert_eq!(done["applied"], true, "{done}");
    field.kill();
    field.restart();
    for d in [&field, lab, &field] {
        d.ctl_json(&["sync", "sync"]);
    }
    for d in [lab, &field] {
        assert_eq!(connections(d), ["ANT00001P1>LNA00001P1"], "{}", d.data_dir.display());
        assert_eq!(positions(d), ["ANT00001@CN001E01"], "{}", d.data_dir.display());
        assert_eq!(parts(d), 8, "the part added after the version is gone");
        // The log keeps the work after the version, and the revert's events.
        let events = sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly");
        assert_eq!(events.trim(), "7", "{}", d.data_dir.display());
        let check = d.ctl(&["database", "check"]);
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
        // Reverting again: nothing to do.
        let again = d.ctl_json(&["sync", "revert", &log_key, "--preview"]);
        assert_eq!(number(&again["total"]), 0, "{again}");
    }
    let audit = sqlite(
        &field.data_dir.join("state.db"),
        "SELECT action || ' ' || database FROM audit_log WHERE action = 'sync.revert' ORDER BY id",
    );
    assert_eq!(audit, "sync.revert assembled_casm.db\nsync.revert parts.db\n");
}

fn local(store: &Path, name: &str) -> Daemon {
    Daemon::start_with(DaemonOpts::local_site(store, name).env("CASMAN_SYNC__PULL_EVERY", "0s"))
}

#[test]
fn a_revert_reaches_every_site_on_a_local_store() {
    let store = tempfile::tempdir().unwrap();
    let lab = local(store.path(), "lab");
    let field = local(store.path(), "field");
    reverts_reach_every_site(&lab, field);
}

#[test]
fn a_revert_reaches_every_site_on_s3() {
    let m = MotoServer::start();
    m.create_bucket("casman-revert");
    let opts = |name: &str| {
        m.daemon_opts("casman-revert", name)
            .env("CASMAN_SYNC__PULL_EVERY", "0s")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    };
    let lab = Daemon::start_with(opts("lab"));
    let field = Daemon::start_with(opts("field"));
    reverts_reach_every_site(&lab, field);
}

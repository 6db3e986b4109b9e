//! The free-tier quota end to end: the real casmand and casmanctl against moto
//! on 127.0.0.1. The ledger lives in state.db (`quota_ledger`, one row per UTC
//! month); tests pre-fill it with the sqlite3 shell while the daemon is
//! stopped, or configure tiny limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use casman_tests::{DEADLINE, Daemon, DaemonOpts, MotoServer, sqlite, wait_for};
use serde_json::Value;

const BUCKET: &str = "casman-test";

fn moto() -> MotoServer {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    m
}

fn s3_opts(m: &MotoServer, site: &str) -> DaemonOpts {
    m.daemon_opts(BUCKET, site)
}

fn month(offset_months: i32) -> String {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let d = now.date().first_of_month().checked_add(jiff::Span::new().months(offset_months)).unwrap();
    d.strftime("%Y-%m").to_string()
}

/// Sets this month's (or another month's) Class A count with the daemon stopped.
fn set_ledger(d: &mut Daemon, month: &str, class_a: u64) {
    d.terminate();
    sqlite(
        &d.data_dir.join("state.db"),
        &format!(
            "INSERT INTO quota_ledger (month, class_a) VALUES ('{month}', {class_a})
             ON CONFLICT (month) DO UPDATE SET class_a = excluded.class_a"
        ),
    );
    d.restart();
}

fn status(d: &Daemon) -> Value {
    d.ctl_json(&["sync", "status"])
}

fn backup_parts(d: &Daemon) -> std::process::Output {
    d.ctl(&["sync", "backup", "--parts"])
}

#[test]
fn tiny_limit_blocks_backups_at_95_percent_with_the_documents_message() {
    let m = moto();
    let d = Daemon::start_with(s3_opts(&m, "lab").env("CASMAN_QUOTA__CLASS_A_OPERATIONS", "20"));
    let mut n = 0;
    let err = wait_for("a backup to be refused by the quota", DEADLINE, || {
        n += 1;
        assert!(n < 30, "never blocked");
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        let out = backup_parts(&d);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    assert!(err.contains("R2 quota limit reached: "), "{err}");
    assert!(err.contains("% of Class A operations used."), "{err}");
    assert!(err.contains("Operation 'backup' blocked to prevent exceeding free tier limits."), "{err}");
    assert!(err.contains("Storage: 0.00/10 GB, Class A: "), "{err}");
    assert!(err.contains("/20, Class B: "), "{err}");
    assert!(err.contains("/10,000,000"), "{err}");
    // Reads are Class B: listing is Class A and refused too, status still answers.
    let s = status(&d);
    assert_eq!(s["quota"]["site"]["class_a"]["level"], "block", "{s}");
    assert_eq!(s["quota"]["site"]["class_a"]["mark"], "✗");
    assert!(d.ctl_ok(&["sync", "status"]).contains("Class A Ops (writes): ✗"));
    let list = d.ctl_err(&["sync", "list"], 1);
    assert!(list.contains("Operation 'list' blocked"), "{list}");
    // The counts survive a restart (persisted in state.db).
    let mut d = d;
    let before = s["quota"]["site"]["class_a"]["used"].as_u64().unwrap();
    d.terminate();
    d.restart();
    let after = status(&d)["quota"]["site"]["class_a"]["used"].as_u64().unwrap();
    assert!(after >= before, "{after} < {before}");
}

#[test]
fn warn_at_80_percent_block_at_95_and_last_month_does_not_count() {
    let m = moto();
    let mut d = Daemon::start_with(s3_opts(&m, "lab"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);

    // Last month at 99 %: this month starts from zero.
    set_ledger(&mut d, &month(-1), 990_000);
    let s = status(&d);
    assert_eq!(s["quota"]["enforced"], true);
    assert_eq!(s["quota"]["month"], month(0));
    assert_eq!(s["quota"]["site"]["class_a"]["level"], "ok", "{s}");
    assert!(s["quota"]["site"]["class_a"]["used"].as_u64().unwrap() < 100);
    assert!(backup_parts(&d).status.success());

    // 85 % this month: a warning (⚠), backups go on.
    set_ledger(&mut d, &month(0), 850_000);
    let s = status(&d);
    assert_eq!(s["quota"]["site"]["class_a"]["level"], "warn", "{s}");
    assert_eq!(s["quota"]["site"]["class_a"]["mark"], "⚠");
    assert_eq!(s["quota"]["fleet"]["class_a"]["level"], "warn");
    let text = d.ctl_ok(&["sync", "status"]);
    assert!(text.contains("Class A Ops (writes): ⚠ 850,"), "{text}");
    assert!(text.contains("Storage:              ✓"), "{text}");
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    assert!(backup_parts(&d).status.success());
    assert!(d.log_text().contains("free tier is nearly used up"));

    // 96 %: refused with the documents' message; restores (Class B) still work.
    set_ledger(&mut d, &month(0), 960_000);
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    let err = d.ctl_err(&["sync", "backup", "--parts"], 1);
    assert!(
        err.contains("R2 quota limit reached: 96.0% of Class A operations used. Operation 'backup' blocked"),
        "{err}"
    );
    assert!(err.contains("Class A: 960,"), "{err}");
    assert!(err.contains("/1,000,000, Class B: "), "{err}");
    let key = s["databases"][0]["last_backup_key"].as_str().unwrap().to_owned();
    let dest = d.dir.path().join("copy.db");
    d.ctl_ok(&["sync", "restore", &key, "--dest", dest.to_str().unwrap()]);
    assert_eq!(status(&d)["quota"]["restores_this_month"], 1);
}

#[test]
fn the_local_backend_counts_but_never_blocks() {
    let mut d = Daemon::start_with(DaemonOpts::default().env("CASMAN_SITE_ID", "lab"));
    set_ledger(&mut d, &month(0), 999_000);
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    assert!(backup_parts(&d).status.success());
    let s = status(&d);
    assert_eq!(s["quota"]["enforced"], false);
    assert_eq!(s["quota"]["site"]["class_a"]["level"], "block");
    assert_eq!(s["config"]["backend"], "local");
    assert!(d.ctl_ok(&["sync", "status"]).contains("limits are not enforced"));
}

#[test]
fn status_reports_settings_databases_fleet_and_newer_versions() {
    let mut m = moto();
    let lab = Daemon::start_with(s3_opts(&m, "lab"));
    let field = Daemon::start_with(s3_opts(&m, "field"));
    lab.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    let out = lab.ctl_json(&["sync", "backup", "--parts"]);
    let lab_key = out["backups"][0]["key"].as_str().unwrap().to_owned();
    // field continues from lab's version: its next version is the new head.
    field.ctl_ok(&["sync", "restore", &lab_key, "--no-backup", "--yes"]);
    field.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    let field_key =
        field.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned();

    let s = status(&lab);
    assert_eq!(s["site"], "lab");
    assert_eq!(s["config"]["backend"], "s3");
    assert!(s["config"]["location"].as_str().unwrap().contains(BUCKET), "{s}");
    assert_eq!(s["config"]["keep_versions"], 10);
    assert_eq!(s["config"]["backup_on_scan_count"], 10);
    assert_eq!(s["config"]["backup_on_seconds"], 86400);
    assert_eq!(s["store"], serde_json::json!({"enabled": true, "reachable": true, "error": ""}));
    let parts = s["databases"].as_array().unwrap().iter().find(|d| d["db"] == "parts.db").unwrap().clone();
    assert_eq!(parts["last_backup_key"], lab_key.as_str());
    assert!(!parts["last_backup_at"].as_str().unwrap().is_empty());
    assert!(parts["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(parts["pending"], Value::Null);
    assert_eq!(parts["newer"]["site"], "field", "{parts}");
    assert_eq!(parts["newer"]["key"], field_key.as_str());
    assert!(parts["versions"].as_i64().unwrap() >= 2, "{}", lab.ctl_ok(&["sync", "list"]));
    let q = &s["quota"];
    assert_eq!(q["backups_this_month"], 1);
    assert!(q["site"]["class_a"]["used"].as_u64().unwrap() >= 2, "{q}");
    assert!(q["site"]["storage"]["used"].as_u64().unwrap() > 0);
    assert_eq!(q["site"]["storage"]["used"], q["fleet"]["storage"]["used"]);
    // The fleet adds the ledger field published with its version.
    assert_eq!(q["other_sites"][0]["site"], "field", "{q}");
    let field_a = q["other_sites"][0]["class_a"].as_u64().unwrap();
    assert!(field_a > 0);
    assert_eq!(
        q["fleet"]["class_a"]["used"].as_u64().unwrap(),
        q["site"]["class_a"]["used"].as_u64().unwrap() + field_a
    );
    assert_eq!(s["maintenance"]["due"], true);
    assert_eq!(s["maintenance"]["last_at"], "");
    let text = lab.ctl_ok(&["sync", "status"]);
    for want in [
        "R2 Free Tier Quota Usage",
        "Storage:",
        "Backups this month:   1",
        "Newer version at site field",
        "Next:                 due",
        "✓ reachable",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }

    // The store goes down: status says so and still answers.
    m.stop();
    let s = status(&lab);
    assert_eq!(s["store"]["reachable"], false, "{s}");
    assert!(s["store"]["error"].as_str().unwrap().contains("unreachable"), "{s}");
}

/// Continuous protection within the free tier: with this month's Class A
/// use past the warning level the replication window widens to the time
/// trigger's (sync status and the log say so), and scans are still stored,
/// not refused.
#[test]
fn near_the_warning_level_the_replication_window_widens_and_scans_are_still_stored() {
    let m = moto();
    let mut d = Daemon::start_with(
        s3_opts(&m, "lab")
            .env("CASMAN_SYNC__REPLICATE_WITHIN", "1s")
            .env("CASMAN_SYNC__BACKUP_ON_HOURS", "2h")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "3"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "3", "1"]);

    // A fresh month: the configured window holds.
    let r = status(&d)["replication"].clone();
    assert_eq!(r["configured_ms"], 1000, "{r}");
    assert_eq!(r["effective_ms"], 1000, "{r}");
    assert_eq!(r["widened"], false, "{r}");
    assert!(d.ctl_ok(&["sync", "status"]).contains("Replication window:   1s\n"));

    // 85 % of the month's Class A allowance (the warning is at 80 %).
    set_ledger(&mut d, &month(0), 850_000);
    let s = status(&d);
    let r = &s["replication"];
    assert_eq!(r["widened"], true, "{r}");
    assert_eq!(r["effective_ms"], 2 * 3600 * 1000, "{r}");
    assert_eq!(r["warn_threshold"], 0.8);
    assert!(r["class_a_fraction"].as_f64().unwrap() >= 0.85, "{r}");
    let text = d.ctl_ok(&["sync", "status"]);
    assert!(
        text.contains(
            "Replication window:   1s (widened to 2h: Class A at 85% of the month's allowance, warning at 80%)"
        ),
        "{text}"
    );

    // Scans go on and are stored (the count trigger: 3 writes), not refused.
    let before = s["databases"].as_array().unwrap().iter().find(|x| x["db"] == "assembled_casm.db").unwrap()
        ["last_backup_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (ant, lna) in
        [("ANT00001P1", "LNA00001P1"), ("ANT00002P1", "LNA00002P1"), ("ANT00003P1", "LNA00003P1")]
    {
        d.ctl_ok(&["scan", "connect", ant, lna]);
    }
    let key = wait_for("the scans' version in the store", DEADLINE, || {
        let s = status(&d);
        let a =
            s["databases"].as_array().unwrap().iter().find(|x| x["db"] == "assembled_casm.db").cloned()?;
        let key = a["last_backup_key"].as_str().unwrap_or_default().to_owned();
        (a["writes_since_backup"] == 0 && !key.is_empty() && key != before).then_some(key)
    });
    let listed = d.ctl_json(&["sync", "list", "--db", "assembled_casm.db"]);
    let v = listed["backups"].as_array().unwrap().iter().find(|v| v["key"] == key.as_str()).cloned();
    let v = v.unwrap_or_else(|| panic!("{key} not listed: {listed}"));
    assert_eq!(v["record_counts"]["assembly"], 3, "{v}");
    let log = d.log_text();
    assert!(log.contains("replication window widened"), "{log}");
    assert!(!log.contains("blocked to prevent exceeding"), "{log}");
}

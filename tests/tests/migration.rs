//! A complete Python-era CAsMan site moved to casman as the README's
//! "Moving a CAsMan site to casman" says: the real legacy databases, the
//! site's config.yaml (non-default sync values, found beside the
//! databases), both tracker files and the variables the Python tool read.
//! casmand must take the configuration, the counters and this month's quota,
//! back the adopted databases up promptly, keep every row, and serve a
//! grpcio client with default options.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use casman_tests::{DEADLINE, Daemon, DaemonOpts, grpcio_python, run_default_grpcio, sqlite, wait_for};

/// The real files of ../shared/legacy, beside the clone (CI) or beside the
/// work tree (a developer's checkout under `wt/`).
fn legacy(name: &str) -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = ["../../shared/legacy", "../../../shared/legacy"]
        .iter()
        .map(|d| here.join(d).join(name))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "shared/legacy/{name} is absent");
        eprintln!("SKIPPED: shared/legacy/{name} is absent");
    }
    found
}

/// The shipped R2-era config.yaml with this site's non-default values.
const CONFIG_YAML: &str = "\
PART_TYPES:
  1: [ANTENNA, ANT]
  2: [LNA, LNA]
  3: [COAXSHORT, CXS]
  4: [COAXLONG, CXL]
  5: [BACBOARD, BAC]
  6: [SNAP, SNP]
CASMAN_ASSEMBLED_DB: database/assembled_casm.db
CASMAN_PARTS_DB: database/parts.db
grid:
  core: {array_id: C, north_rows: 21, south_rows: 21, east_columns: 6, allow_expansion: true}
web_app: {dev: {port: 5555, host: 0.0.0.0}}
database:
  sync:
    enabled: true
    backend: github
    auto_sync_on_import: false
    backup_on_scan_count: 30
    backup_on_hours: 1.0
    keep_versions: 4
    quota_limits: {storage_gb: 5.0, class_a_operations: 900000}
r2:
  bucket_name: casman-databases
  region: auto
";

#[test]
fn a_python_era_site_moves_to_casman_losing_nothing() {
    let (Some(parts), Some(assembled)) = (legacy("parts-2025-11.db"), legacy("assembled_casm-2026-01.db"))
    else {
        return;
    };
    let dir = tempfile::Builder::new().prefix("casman-site-").tempdir().unwrap();
    let site = dir.path().join("CAsMan");
    let db_dir = site.join("database");
    std::fs::create_dir_all(&db_dir).unwrap();
    std::fs::copy(&parts, db_dir.join("parts.db")).unwrap();
    std::fs::copy(&assembled, db_dir.join("assembled_casm.db")).unwrap();
    std::fs::write(site.join("config.yaml"), CONFIG_YAML).unwrap();
    let last_backup = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(20);
    std::fs::write(
        db_dir.join(".scan_tracker.json"),
        format!(
            "{{\n  \"last_backup_time\": \"{}\",\n  \"scans_since_backup\": 7\n}}",
            last_backup.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        ),
    )
    .unwrap();
    let month_start = jiff::Timestamp::now().strftime("%Y-%m-01T00:00:00.000000+00:00").to_string();
    std::fs::write(
        db_dir.join(".r2_quota_tracker.json"),
        format!(
            "{{\n  \"total_storage_bytes\": 123456,\n  \"class_a_ops_month\": 1234,\n  \"class_b_ops_month\": 5678,\n  \
             \"last_reset\": \"{month_start}\",\n  \"backups_this_month\": 3,\n  \"restores_this_month\": 1\n}}"
        ),
    )
    .unwrap();
    let before_parts = sqlite(&db_dir.join("parts.db"), "SELECT COUNT(*) FROM parts").trim().to_owned();
    let before_positions =
        sqlite(&db_dir.join("parts.db"), "SELECT COUNT(*) FROM antenna_positions").trim().to_owned();
    let before_scans =
        sqlite(&db_dir.join("assembled_casm.db"), "SELECT COUNT(*) FROM assembly").trim().to_owned();

    // The variables the Python tool read; casmand is given no --data-dir.
    let run = dir.path().join("run/casmand.sock");
    let opts = DaemonOpts { no_paths: true, ..DaemonOpts::default() }
        .arg("--socket")
        .arg(&run)
        .config("legacy_timezone = \"America/Los_Angeles\"\n")
        .env("CASMAN_PARTS_DB", db_dir.join("parts.db"))
        .env("CASMAN_ASSEMBLED_DB", db_dir.join("assembled_casm.db"))
        .env("CASMAN_BARCODE_DIR", site.join("barcodes"))
        .env("CASMAN_SYNC_ENABLED", "true");
    let d = Daemon::start_in(dir, opts);
    assert_eq!(d.socket, run);

    // The effective configuration, and where each value came from.
    let c = d.ctl_json(&["config"]);
    let cfg = &c["config"];
    assert_eq!(cfg["data_dir"], db_dir.display().to_string(), "{c}");
    assert_eq!(cfg["sync"]["keep_versions"], 4, "{c}");
    assert_eq!(cfg["sync"]["backup_on_scan_count"], 30, "{c}");
    assert_eq!(cfg["sync"]["backup_on_hours"], "1h", "{c}");
    assert_eq!(cfg["quota"]["storage_gb"], 5.0, "{c}");
    assert_eq!(cfg["quota"]["class_a_operations"], 900_000, "{c}");
    let sources = c["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    let yaml =
        sources.iter().find(|s| s.starts_with("config.yaml ")).unwrap_or_else(|| panic!("{sources:?}"));
    for want in [
        "sync.keep_versions <- database.sync.keep_versions",
        "sync.backup_on_hours <- database.sync.backup_on_hours",
        "quota.storage_gb <- database.sync.quota_limits.storage_gb",
        "store.bucket_name <- r2.bucket_name",
        "ignored: ",
        "PART_TYPES",
        "web_app",
        "database.sync.backend = \"github\"",
    ] {
        assert!(yaml.contains(want), "config.yaml layer lacks {want:?}: {yaml}");
    }
    assert!(sources.iter().any(|s| s.contains("CASMAN_PARTS_DB")), "{sources:?}");
    let log = d.log_text();
    assert!(log.contains("config.yaml found beside the databases"), "{log}");
    assert!(log.contains("keys without a casman meaning are ignored") && log.contains("PART_TYPES"), "{log}");

    // The trackers were imported, as the adoption report says.
    let adoption = d.ctl_json(&["database", "adoption"]).to_string();
    assert!(adoption.contains(".scan_tracker.json imported: 7 write(s) since the last backup"), "{adoption}");
    assert!(
        adoption.contains(&format!(
            ".r2_quota_tracker.json imported into {} (this month): class A 1234, class B 5678, 3 backup(s), 1 restore(s), 123456 bytes stored",
            jiff::Timestamp::now().strftime("%Y-%m")
        )),
        "{adoption}"
    );

    // Promptly backed up: both adopted databases, without waiting for 30 writes or an hour.
    wait_for("the first backup of both adopted databases", DEADLINE, || {
        let s = d.ctl_json(&["sync", "status"]);
        let dbs = s["databases"].as_array()?.clone();
        dbs.iter().all(|db| db["last_backup_key"].is_string() && db["pending"].is_null()).then_some(())
    });
    let s = d.ctl_json(&["sync", "status"]);
    let q = &s["quota"];
    assert!(q["site"]["class_a"]["used"].as_u64().unwrap_or(0) >= 1234, "{q}");
    assert!(q["site"]["class_b"]["used"].as_u64().unwrap_or(0) >= 5678, "{q}");
    assert!(q["backups_this_month"].as_u64().unwrap_or(0) >= 3 + 2, "{q}");
    assert!(q["restores_this_month"].as_u64().unwrap_or(0) >= 1, "{q}");
    assert!(q["site"]["storage"]["used"].as_u64().unwrap_or(0) >= 123_456, "{q}");
    let listed = d.ctl_json(&["sync", "list"]).to_string();
    assert!(listed.contains("parts.db") && listed.contains("assembled_casm.db"), "{listed}");

    // Every row is there, in the files the variables named.
    assert_eq!(sqlite(&db_dir.join("parts.db"), "SELECT COUNT(*) FROM parts").trim(), before_parts);
    assert_eq!(
        sqlite(&db_dir.join("parts.db"), "SELECT COUNT(*) FROM antenna_positions").trim(),
        before_positions
    );
    assert_eq!(
        sqlite(&db_dir.join("assembled_casm.db"), "SELECT COUNT(*) FROM assembly").trim(),
        before_scans
    );
    assert_eq!(d.ctl_json(&["parts", "count"])["total"].to_string(), before_parts);
    assert!(!d.dir.path().join("database").exists());

    // A lab script's grpcio channel with no options.
    if let Some(python) = grpcio_python() {
        run_default_grpcio(&python, &d.socket, &d.log_text());
    }

    // A restart imports nothing twice.
    let mut d = d;
    d.terminate();
    d.restart();
    let again = d.ctl_json(&["database", "adoption"]).to_string();
    assert_eq!(again.matches(".scan_tracker.json imported").count(), 1, "{again}");
}

#[test]
fn database_variables_pointing_elsewhere_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DaemonOpts { no_paths: true, ..DaemonOpts::default() }
        .arg("--socket")
        .arg(dir.path().join("run/casmand.sock"))
        .env("CASMAN_PARTS_DB", "/srv/a/parts.db")
        .env("CASMAN_ASSEMBLED_DB", "/srv/b/assembled_casm.db");
    let out = Daemon::command(dir.path(), &opts).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different directories") && err.contains("CASMAN_DATABASE_DIR"), "{err}");
    assert!(!dir.path().join("database").exists(), "an empty ./database was created");
}

/// Only an assembly database to adopt (parts.db is new), no backups
/// configured: the tracker's count is each database's unsaved writes, its
/// time their last backup, and the import is in the assembly report.
#[test]
fn trackers_are_imported_when_only_the_assembly_file_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    sqlite(
        &data.join("assembled_casm.db"),
        "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, part_type TEXT, polarization TEXT,
           scan_time TEXT, connected_to TEXT, connected_to_type TEXT, connected_polarization TEXT,
           connected_scan_time TEXT, connection_status TEXT);
         INSERT INTO assembly VALUES (1,'ANT00001P1','ANTENNA','1','2025-12-08 19:52:54','LNA00001P1','LNA','1',
           '2025-12-08 19:52:54','connected');",
    );
    std::fs::write(
        data.join(".scan_tracker.json"),
        "{\"last_backup_time\": \"2026-11-30T08:15:00.123456+00:00\", \"scans_since_backup\": 12}",
    )
    .unwrap();
    let d = Daemon::start_in(
        dir,
        DaemonOpts::default().config("legacy_timezone = \"UTC\"\n").env("CASMAN_SYNC_BACKEND", "none"),
    );
    let s = d.ctl_json(&["sync", "status"]);
    for db in s["databases"].as_array().unwrap() {
        assert_eq!(db["writes_since_backup"], 12, "{s}");
        assert_eq!(db["last_backup_at"], "2026-11-30T08:15:00Z", "{s}");
    }
    let adoption = d.ctl_json(&["database", "adoption"]).to_string();
    assert!(adoption.contains(".scan_tracker.json imported: 12 write(s)"), "{adoption}");
    assert!(adoption.contains("assembled_casm.db: first casman backup queued"), "{adoption}");
    assert_eq!(sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT COUNT(*) FROM assembly").trim(), "1");
}

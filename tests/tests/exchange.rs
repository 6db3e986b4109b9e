//! Sites exchange changes, never files (issue 30): real casmand processes on
//! one store (a local directory, and moto), scans acknowledged while their
//! site syncs, a site killed (SIGKILL) in between, and every site ending
//! with the same answers; offline scans that break a rule once combined are
//! kept, listed as a conflict, and resolved by an ordinary scan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Stdio};

use casman_tests::{Daemon, DaemonOpts, s3::MotoServer, sqlite};
use serde_json::Value;

fn local_site(store: &Path, name: &str) -> Daemon {
    Daemon::start_with(DaemonOpts::local_site(store, name).env("CASMAN_SYNC__PULL_EVERY", "0s"))
}

/// The current connections as `source>target`, sorted.
fn connections(d: &Daemon) -> Vec<String> {
    let out = sqlite(
        &d.data_dir.join("assembled_casm.db"),
        "SELECT source || '>' || target FROM active_connections ORDER BY 1",
    );
    out.lines().map(str::to_owned).collect()
}

fn events(d: &Daemon) -> usize {
    sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly").trim().parse().unwrap()
}

fn sync(d: &Daemon) -> Value {
    d.ctl_json(&["sync", "sync"])
}

/// Three sites scan while they sync, one is killed and restarted; after a
/// round of syncs all hold every acknowledged scan, once, and agree.
#[test]
fn scans_made_while_sites_sync_reach_every_site_and_all_agree() {
    let store = tempfile::tempdir().unwrap();
    let lab = local_site(store.path(), "lab");
    lab.ctl_ok(&["parts", "add", "ANTENNA", "80", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "80", "1"]);
    lab.ctl_ok(&["sync", "backup"]);
    sync(&lab);
    let field = local_site(store.path(), "field");
    let mut hut = local_site(store.path(), "hut");
    for d in [&field, &hut] {
        let first = sync(d);
        assert!(first.to_string().contains("pulled"), "a new site starts from the newest version: {first}");
    }
    let sites = [&lab, &field];
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..5u32 {
        for (i, d) in sites.iter().chain([&&hut]).enumerate() {
            // Another site syncs while this one's technician scans.
            let other = sites[(i + 1) % 2];
            let pulling = other
                .ctl_cmd()
                .args(["--json", "sync", "sync"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let own = d.ctl_cmd().args(["--json", "sync", "sync"]).stdout(Stdio::piped()).spawn().unwrap();
            for k in 0..2u32 {
                let n = 1 + round * 12 + i as u32 * 4 + k;
                let (a, l) = (format!("ANT{n:05}P1"), format!("LNA{n:05}P1"));
                if d.ctl(&["scan", "connect", &a, &l]).status.success() {
                    acknowledged.push(format!("{a}>{l}"));
                }
            }
            for p in [pulling, own] {
                let out = p.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
                assert!(String::from_utf8_lossy(&out.stdout).contains("exchanged"));
            }
        }
        // A crash right after an acknowledged scan, before any sync.
        let n = 70 + round;
        hut.ctl_ok(&["scan", "connect", &format!("ANT{n:05}P1"), &format!("LNA{n:05}P1")]);
        acknowledged.push(format!("ANT{n:05}P1>LNA{n:05}P1"));
        hut.kill();
        hut.restart();
    }
    // Two rounds of syncs: every site publishes, then takes the others'.
    for _ in 0..2 {
        for d in [&lab, &field, &hut] {
            sync(d);
        }
    }
    let expected = {
        let mut v = acknowledged.clone();
        v.sort();
        v
    };
    for d in [&lab, &field, &hut] {
        assert_eq!(connections(d), expected, "{}", d.data_dir.display());
        assert_eq!(events(d), acknowledged.len(), "every scan once");
        let check = d.ctl(&["database", "check"]);
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    }
}

/// Two sites connect into one LNA offline: both connections stay, every
/// site lists the conflict, and a disconnect at one site resolves it at all.
#[test]
fn an_offline_double_connection_is_kept_listed_and_resolved_by_a_scan() {
    let m = MotoServer::start();
    m.create_bucket("casman-exchange");
    let opts = |name: &str| {
        m.daemon_opts("casman-exchange", name)
            .env("CASMAN_SYNC__PULL_EVERY", "0s")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    };
    let a = Daemon::start_with(opts("lab"));
    let web_port = casman_tests::http::free_port();
    a.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    a.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    a.ctl_ok(&["sync", "backup"]);
    let b = Daemon::start_with(
        opts("field")
            .config(&format!("[http]\nlisten = \"127.0.0.1:{web_port}\"\nallow_without_token = true\n")),
    );
    sync(&b);
    // Offline from each other: each connects an antenna into LNA00001P1.
    a.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    b.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00001P1"]);
    sync(&a);
    let at_b = sync(&b);
    sync(&a);
    for (d, said) in [(&a, sync(&a)), (&b, at_b)] {
        let conflicts = said["results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["conflicts"].as_array().cloned().unwrap_or_default())
            .collect::<Vec<_>>();
        assert_eq!(conflicts.len(), 1, "{said}");
        assert_eq!(conflicts[0]["kind"], "two incoming");
        assert_eq!(conflicts[0]["subject"], "LNA00001P1");
        assert_eq!(connections(d), vec!["ANT00001P1>LNA00001P1", "ANT00002P1>LNA00001P1"]);
        let status = d.ctl_json(&["sync", "status"]);
        assert!(
            status.to_string().contains("LNA00001P1 is connected from ANT00001P1 and ANT00002P1"),
            "{status}"
        );
    }
    // The web status page lists it too.
    let page = casman_tests::http::get(web_port, "/status", &[]);
    assert!(page.body.contains("LNA00001P1 is connected from ANT00001P1 and ANT00002P1"), "{}", page.body);
    // So do the views of a part concerned: chain, history, the scanner card.
    let chain = b.ctl_json(&["chain", "ANT00002P1"]);
    assert_eq!(chain["conflicts"][0]["subject"], "LNA00001P1", "{chain}");
    let status = b.ctl_ok(&["status"]);
    assert!(status.contains("conflicts: 1 standing"), "{status}");
    assert!(status.contains("CONFLICT (two incoming): LNA00001P1 is connected from"), "{status}");
    let history = b.ctl_ok(&["history", "LNA00001P1"]);
    assert!(history.contains("CONFLICT (two incoming): LNA00001P1 is connected from"), "{history}");
    assert!(!b.ctl_ok(&["history", "ANT00003P1"]).contains("CONFLICT"));
    let card = casman_tests::http::get(web_port, "/scanner/api/part?id=ANT00001P1&role=source", &[]);
    assert!(card.body.contains("LNA00001P1 is connected from ANT00001P1 and ANT00002P1"), "{}", card.body);
    // The technician at the field site disconnects the wrong one.
    b.ctl_ok(&["scan", "disconnect", "ANT00002P1", "LNA00001P1"]);
    sync(&b);
    for d in [&a, &b] {
        let said = sync(d);
        assert!(!said.to_string().contains("two incoming"), "{said}");
        assert_eq!(connections(d), vec!["ANT00001P1>LNA00001P1"]);
    }
    assert!(!b.ctl_ok(&["history", "LNA00001P1"]).contains("CONFLICT"));
    assert!(!b.ctl_ok(&["status"]).contains("CONFLICT"));
    let card = casman_tests::http::get(web_port, "/scanner/api/part?id=ANT00001P1&role=source", &[]);
    assert!(card.body.contains("\"conflicts\":[]"), "{}", card.body);
    let page = casman_tests::http::get(web_port, "/status", &[]);
    assert!(
        page.body.contains("None: the sites&#39; changes combine")
            || page.body.contains("None: the sites' changes combine"),
        "{}",
        page.body
    );
    // Class B only for a sync with nothing new: no LIST.
    let mark = m.log_text().len();
    sync(&a);
    let log = m.log_text();
    assert!(
        !log[mark..].contains("list-type") && !log[mark..].contains("GET /casman-exchange?"),
        "{}",
        &log[mark..]
    );
}

/// Sites sync by themselves: a scan reaches the store within
/// `sync.replicate_within` as a change segment (no version is stored for
/// it) and the other site applies it within `sync.pull_every`.
#[test]
fn a_scan_reaches_the_other_site_by_itself() {
    let store = tempfile::tempdir().unwrap();
    let by_itself = |name: &str| {
        Daemon::start_with(
            DaemonOpts::local_site(store.path(), name)
                .env("CASMAN_SYNC__REPLICATE_WITHIN", "1s")
                .env("CASMAN_SYNC__PULL_EVERY", "1s"),
        )
    };
    let lab = by_itself("lab");
    lab.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    lab.ctl_ok(&["sync", "backup"]);
    // The field site is new: its own pull starts it from the newest version.
    let field = by_itself("field");
    casman_tests::wait_for(
        "the field site started from the lab's version",
        std::time::Duration::from_secs(60),
        || {
            let n = sqlite(&field.data_dir.join("parts.db"), "SELECT count(*) FROM parts");
            (n.trim() == "4").then_some(())
        },
    );
    let versions = |db: &str| {
        std::fs::read_dir(store.path().join("backups").join(db))
            .map(|d| {
                d.filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".zst")))
                    .count()
            })
            .unwrap_or(0)
    };
    let before = versions("assembled_casm.db");
    lab.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    casman_tests::wait_for("the scan at the field site", std::time::Duration::from_secs(60), || {
        (connections(&field) == ["ANT00001P1>LNA00001P1"]).then_some(())
    });
    assert!(store.path().join("changes/assembled_casm.db/lab/0000000001.json.zst").exists());
    assert_eq!(
        versions("assembled_casm.db"),
        before,
        "continuous protection stored a version, not a segment"
    );
}

/// `sync restore` brings this site's file back to a version; the next sync
/// applies again the changes the site published after it (and nothing is
/// applied twice).
#[test]
fn a_restored_site_gets_its_published_scans_back_at_the_next_sync() {
    let store = tempfile::tempdir().unwrap();
    let lab = local_site(store.path(), "lab");
    lab.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "3", "1"]);
    lab.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    let v =
        lab.ctl_json(&["sync", "backup", "--assembled"])["backups"][0]["key"].as_str().unwrap().to_owned();
    lab.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    sync(&lab);
    lab.ctl_ok(&["sync", "restore", &v, "--yes"]);
    assert_eq!(connections(&lab), vec!["ANT00001P1>LNA00001P1"], "the restore brought the version back");
    let said = sync(&lab);
    assert_eq!(connections(&lab), vec!["ANT00001P1>LNA00001P1", "ANT00002P1>LNA00002P1"], "{said}");
    assert_eq!(events(&lab), 2, "nothing applied twice");
    let check = lab.ctl(&["database", "check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

fn count(d: &Daemon, db: &str, table: &str) -> usize {
    sqlite(&d.data_dir.join(db), &format!("SELECT count(*) FROM {table}")).trim().parse().unwrap()
}

/// Sites upgraded one after another (no flag day): both hold the same files
/// written by CAsMan, one with offline work made before it was upgraded.
/// The history from before the upgrade enters the exchange: each site ends
/// with every event and part once (the shared history is not doubled) and
/// the same answers, whichever site upgraded first.
#[test]
fn sites_upgraded_one_after_another_exchange_their_older_history() {
    let store = tempfile::tempdir().unwrap();
    upgraded_one_after_another(|name| DaemonOpts::local_site(store.path(), name));
}

/// The same on S3 (moto).
#[test]
fn sites_upgraded_one_after_another_exchange_their_older_history_on_s3() {
    let m = MotoServer::start();
    m.create_bucket("casman-upgrade");
    upgraded_one_after_another(|name| {
        m.daemon_opts("casman-upgrade", name)
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    });
}

fn upgraded_one_after_another(site: impl Fn(&str) -> DaemonOpts) {
    let (Some(parts), Some(log)) = (
        casman_tests::legacy_file("parts-2025-11.db"),
        casman_tests::legacy_file("assembled_casm-2026-01.db"),
    ) else {
        return;
    };
    let start = |name: &str, offline: &[(&str, &str)]| {
        let dir = tempfile::Builder::new().prefix("casman-e2e-").tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(&parts, data.join("parts.db")).unwrap();
        std::fs::copy(&log, data.join("assembled_casm.db")).unwrap();
        for (db, sql) in offline {
            sqlite(&data.join(db), sql);
        }
        let opts = site(name)
            .env("CASMAN_SYNC__PULL_EVERY", "0s")
            .config("legacy_timezone = \"America/Los_Angeles\"\n");
        Daemon::start_in(dir, opts)
    };
    let (events0, parts0) = (165, 60);
    let lab = start("lab", &[]);
    assert_eq!((events(&lab), count(&lab, "parts.db", "parts")), (events0, parts0), "the legacy files' rows");
    // The lab is upgraded first and works on.
    lab.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    let newest = |t: &str| {
        sqlite(
            &lab.data_dir.join("parts.db"),
            &format!("SELECT max(part_number) FROM parts WHERE part_type = '{t}'"),
        )
        .trim()
        .to_owned()
    };
    let (ant, lna) = (newest("ANTENNA"), newest("LNA"));
    lab.ctl_ok(&["scan", "connect", &ant, &lna]);
    sync(&lab);
    // The field site still runs CAsMan, offline: a scan and a part of its own.
    let field = start(
        "field",
        &[
            (
                "assembled_casm.db",
                "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to,
                   connected_to_type, connected_polarization, connected_scan_time, connection_status)
                 VALUES ('ANT00060P1', 'ANTENNA', '1', '2026-01-20 10:00:00', 'LNA00060P1', 'LNA', '1',
                         '2026-01-20 10:00:00', 'connected')",
            ),
            (
                "parts.db",
                "INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified)
                 VALUES ('LNA00060P1', 'LNA', '1', '2026-01-20 09:00:00', '2026-01-20 09:00:00')",
            ),
        ],
    );
    // Upgraded later: it syncs, then the lab does.
    let first = sync(&field);
    assert!(first.to_string().contains("exchanged"), "a site with data exchanges: {first}");
    sync(&lab);
    sync(&field);
    for d in [&lab, &field] {
        assert_eq!(events(d), events0 + 2, "every event once: {}", d.data_dir.display());
        assert_eq!(count(d, "parts.db", "parts"), parts0 + 3, "every part once: {}", d.data_dir.display());
        let check = d.ctl(&["database", "check"]);
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    }
    assert_eq!(connections(&lab), connections(&field));
    assert!(connections(&lab).contains(&format!("{ant}>{lna}")));
    assert!(connections(&lab).iter().any(|c| c.starts_with("ANT00060P1")), "{:?}", connections(&lab));
    // Nothing more to publish: the history entered once.
    let again = sync(&lab);
    assert_eq!(published(&again), 0, "{again}");
}

/// The changes a `sync sync` published, summed over its results.
fn published(v: &Value) -> i64 {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match (k.as_str(), v) {
                ("published_changes" | "publishedChanges", Value::String(s)) => s.parse().unwrap(),
                ("published_changes" | "publishedChanges", Value::Number(n)) => n.as_i64().unwrap(),
                _ => published(v),
            })
            .sum(),
        Value::Array(a) => a.iter().map(published).sum(),
        _ => 0,
    }
}

/// The store fails in the middle of exchanges (connections reset during a
/// segment upload and download, an upload that reached the store but whose
/// answer was lost, a segment cut short, 503s), and a site is killed after
/// one: a failed sync says so, the next one resumes, and every acknowledged
/// scan ends at both sites once.
#[test]
fn store_failures_during_exchanges_lose_nothing_and_apply_nothing_twice() {
    use casman_tests::{Fault, FaultProxy};
    let m = MotoServer::start();
    m.create_bucket("casman-faults");
    let proxy = FaultProxy::start(m.port);
    let opts = |name: &str| {
        proxy
            .daemon_opts("casman-faults", name)
            .env("CASMAN_SYNC__PULL_EVERY", "0s")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
    };
    let lab = Daemon::start_with(opts("lab"));
    lab.ctl_ok(&["parts", "add", "ANTENNA", "40", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "40", "1"]);
    lab.ctl_ok(&["sync", "backup"]);
    let mut field = Daemon::start_with(opts("field"));
    sync(&field);
    let faults = [
        ("PUT", "/changes/assembled_casm.db/lab/", Fault::ResetMidRequest),
        ("PUT", "/changes/assembled_casm.db/field/", Fault::ResetMidResponse),
        ("GET", "/changes/assembled_casm.db/lab/", Fault::ResetMidResponse),
        ("GET", "/changes/assembled_casm.db/field/", Fault::ShortBody),
        ("GET", "/changes/sites.json", Fault::Status(503, "SlowDown")),
        ("PUT", "/changes/assembled_casm.db/lab/", Fault::Status(500, "InternalError")),
    ];
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for (round, (method, path, fault)) in faults.into_iter().enumerate() {
        for (i, d) in [&lab, &field].into_iter().enumerate() {
            let n = 1 + round * 4 + i * 2;
            for k in n..n + 2 {
                let (a, l) = (format!("ANT{k:05}P1"), format!("LNA{k:05}P1"));
                d.ctl_ok(&["scan", "connect", &a, &l]);
                acknowledged.push(format!("{a}>{l}"));
            }
        }
        proxy.inject(method, path, fault, 1);
        for d in [&lab, &field] {
            let out = d.ctl(&["--json", "sync", "sync", "--assembled"]);
            if !out.status.success() {
                failed += 1;
            }
        }
        // A crash after a failed exchange, in one round.
        if round == 2 {
            field.kill();
            field.restart();
        }
    }
    proxy.clear();
    assert_eq!(proxy.applied().len(), 6, "every fault hit: {:?}", proxy.applied());
    // (The SDK retries some of them by itself; the others fail the sync.)
    assert!(failed >= 1, "a sync that met a fault failed and said so");
    for _ in 0..2 {
        for d in [&lab, &field] {
            sync(d);
        }
    }
    acknowledged.sort();
    for d in [&lab, &field] {
        assert_eq!(connections(d), acknowledged, "{}", d.data_dir.display());
        assert_eq!(events(d), acknowledged.len(), "every scan once");
    }
}

//! Sites on one local store (real casmand processes): a scan acknowledged
//! while its site pulls another site's version is never lost (the pull
//! replaces the live file only if nothing was written since it decided to
//! pull; otherwise the file stays, with the scan, as local changes to back
//! up); plain `sync merge` merges the database that diverged and says
//! "nothing to merge" for the other, exiting 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Stdio};

use casman_tests::{Daemon, DaemonOpts, sqlite};

fn site(store: &Path, name: &str) -> Daemon {
    Daemon::start_with(DaemonOpts::local_site(store, name).whole_file_sync())
}

fn has_event(d: &Daemon, a: &str, b: &str) -> bool {
    let n = sqlite(
        &d.data_dir.join("assembled_casm.db"),
        &format!(
            "SELECT count(*) FROM assembly WHERE part_number = '{a}' AND connected_to = '{b}' \
             AND connection_status = 'connected'"
        ),
    );
    n.trim() != "0"
}

#[test]
fn scans_acknowledged_during_a_pull_survive_it() {
    let store = tempfile::tempdir().unwrap();
    let lab = site(store.path(), "lab");
    lab.ctl_ok(&["parts", "add", "ANTENNA", "60", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "60", "1"]);
    lab.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    lab.ctl_ok(&["sync", "backup"]);
    let field = site(store.path(), "field");
    field.ctl_ok(&["sync", "sync"]);
    let mut acknowledged = Vec::new();
    for round in 0..6u32 {
        // The lab stores a newer assembled_casm.db...
        let n = 2 + round;
        lab.ctl_ok(&["scan", "connect", &format!("ANT{n:05}P1"), &format!("LNA{n:05}P1")]);
        lab.ctl_ok(&["sync", "backup", "--assembled"]);
        // ...which the field site pulls while its technician scans.
        let pull = field
            .ctl_cmd()
            .args(["--json", "sync", "sync", "--assembled"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        for k in 0..3u32 {
            let m = 20 + round * 3 + k;
            let (a, l) = (format!("ANT{m:05}P1"), format!("LNA{m:05}P1"));
            let out = field.ctl(&["scan", "connect", &a, &l]);
            if out.status.success() {
                acknowledged.push((a, l));
            }
        }
        let out = pull.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("pulled") || text.contains("local-ahead") || text.contains("diverged"),
            "round {round}: {text}"
        );
        for (a, l) in &acknowledged {
            assert!(
                has_event(&field, a, l),
                "round {round}: acknowledged scan {a} -> {l} lost; pull said {text}"
            );
        }
        // Back in step for the next round: whatever the field scanned is
        // backed up and merged, as an operator would.
        field.ctl(&["sync", "backup", "--assembled"]);
        field.ctl(&["sync", "merge", "--assembled"]);
        lab.ctl(&["sync", "sync", "--assembled"]);
    }
    assert!(!acknowledged.is_empty());
}

#[test]
fn plain_sync_merge_merges_what_diverged_and_says_so_for_the_rest() {
    let store = tempfile::tempdir().unwrap();
    let lab = site(store.path(), "lab");
    lab.ctl_ok(&["parts", "add", "ANTENNA", "4", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "4", "1"]);
    lab.ctl_ok(&["sync", "backup"]);
    let field = site(store.path(), "field");
    field.ctl_ok(&["sync", "sync"]);
    // Both scan: only assembled_casm.db diverges.
    lab.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    lab.ctl_ok(&["sync", "backup", "--assembled"]);
    field.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    let out = field.ctl(&["sync", "sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("diverged"));
    // The command the divergence message suggests.
    let merged = field.ctl_ok(&["sync", "merge"]);
    assert!(merged.contains("parts.db: already contains") && merged.contains("nothing to merge"), "{merged}");
    assert!(merged.contains("assembled_casm.db: merged"), "{merged}");
    assert!(has_event(&field, "ANT00001P1", "LNA00001P1") && has_event(&field, "ANT00002P1", "LNA00002P1"));
    let json = field.ctl_json(&["sync", "merge"]);
    let results = json["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["up_to_date"] == true), "{json}");
}

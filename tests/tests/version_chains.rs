//! Property test of incremental versions (issue 15): seeded, deterministic
//! random sequences of writes, backups, restores, syncs and retention runs
//! at two sites (two casmand processes) sharing one local-directory store,
//! with short delta chains and few kept versions, so chains roll over,
//! retention deletes around them and restores and pulls start new ones.
//! The content of every version is recorded when it is made (`casmanctl
//! database print`, by its SHA-256). After every sequence, every version
//! the manifest keeps rebuilds to its recorded SHA-256 (`restore --dest`,
//! hashed here), and restoring it in place gives exactly the content
//! printed when it was stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use casman_tests::{Daemon, DaemonOpts};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Each seed is one sequence; the same seed always makes the same one.
const SEEDS: [u64; 4] = [15, 1015, 2015, 3015];
/// Operations per sequence.
const OPS: usize = 45;
const DB: &str = "parts.db";

fn site(store: &std::path::Path, name: &str) -> Daemon {
    Daemon::start_with(
        DaemonOpts::default()
            .whole_file_sync()
            .env("CASMAN_SITE_ID", name)
            .env("CASMAN_SYNC_BACKEND", "local")
            .env("CASMAN_BACKUP_DIR", store)
            .env("CASMAN_SYNC__KEEP_VERSIONS", "3")
            .env("CASMAN_SYNC__DELTA_CHAIN_MAX", "3")
            .env("CASMAN_SYNC__DELTA_MAX_SHARE", "1")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false"),
    )
}

/// The shared store's manifest of parts.db (empty before the first backup).
fn manifest(store: &std::path::Path) -> Vec<Value> {
    let path = store.join("backups").join(DB).join("MANIFEST.json");
    std::fs::read(&path)
        .ok()
        .map(|b| serde_json::from_slice::<Value>(&b).unwrap()["versions"].as_array().unwrap().clone())
        .unwrap_or_default()
}

/// The SHA-256 of the content a version's object holds (a restore record
/// points at another version's content).
fn content_sha(v: &Value) -> String {
    v["content_sha256"].as_str().or(v["sha256"].as_str()).unwrap().to_owned()
}

fn print(d: &Daemon) -> String {
    d.ctl_ok(&["database", "print", "--parts"])
}

/// What the test knows: the printed content of every version made, by its
/// content SHA-256.
#[derive(Default)]
struct Made {
    prints: BTreeMap<String, String>,
}

impl Made {
    fn backup(&mut self, d: &Daemon, store: &std::path::Path) {
        let out = d.ctl_json(&["sync", "backup", "--parts"]);
        let key = out["backups"][0]["key"].as_str().unwrap().to_owned();
        let v = manifest(store).into_iter().find(|v| v["key"] == key.as_str()).unwrap();
        let content = print(d);
        if let Some(before) = self.prints.insert(content_sha(&v), content.clone()) {
            assert_eq!(before, content, "two contents with one SHA-256 ({key})");
        }
    }

    /// Restores `v` in place at `d`; its content must be what was printed
    /// when it was made.
    fn restore(&self, d: &Daemon, v: &Value) {
        let key = v["key"].as_str().unwrap();
        d.ctl_ok(&["sync", "restore", key, "--no-backup", "--yes"]);
        let want = self.prints.get(&content_sha(v)).unwrap_or_else(|| panic!("{key}: content never made"));
        assert_eq!(&print(d), want, "restoring {key} did not give its content");
    }
}

/// What the sequences went through, so that a change that stops them from
/// exercising chains, retention or pulls fails instead of passing quietly.
#[derive(Default, Debug)]
struct Seen {
    deltas_kept: usize,
    full_kept: usize,
    deleted: usize,
    pulled: usize,
    diverged: usize,
    restored: usize,
}

fn verify_all(d: &Daemon, seed: u64, log: &[String]) {
    let verified = d.ctl_json(&["sync", "verify", "--all"]);
    let results = verified["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["ok"] == true), "seed {seed}: {verified}\n{}", log.join("\n"));
}

/// One seeded sequence.
fn sequence(seed: u64, seen: &mut Seen) {
    let store = tempfile::tempdir().unwrap();
    let sites = [site(store.path(), "lab"), site(store.path(), "field")];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut made = Made::default();
    let mut log = Vec::new();
    let mut keys = std::collections::BTreeSet::new();
    for op in 0..OPS {
        keys.extend(manifest(store.path()).iter().map(|v| v["key"].as_str().unwrap().to_owned()));
        if op % 10 == 9 {
            verify_all(&sites[op % 2], seed, &log);
        }
        let at = rng.usize(..sites.len());
        let d = &sites[at];
        let kept = manifest(store.path());
        match rng.u32(..100) {
            0..36 => {
                let kind = ["ANTENNA", "LNA", "COAXSHORT"][rng.usize(..3)];
                let n = rng.u32(1..=3).to_string();
                log.push(format!("{at}: add {n} {kind}"));
                d.ctl_ok(&["parts", "add", kind, &n, "1"]);
            }
            36..68 => {
                log.push(format!("{at}: backup"));
                made.backup(d, store.path());
            }
            68..78 if !kept.is_empty() => {
                // One entry per object (a restore record shares its object).
                let mut objects: Vec<&Value> = Vec::new();
                for v in &kept {
                    if !objects.iter().any(|o| o["key"] == v["key"]) {
                        objects.push(v);
                    }
                }
                let v = objects[rng.usize(..objects.len())];
                log.push(format!("{at}: restore {}", v["key"]));
                made.restore(d, v);
                seen.restored += 1;
            }
            78..94 => {
                log.push(format!("{at}: sync"));
                let out = d.ctl_json_allow_fail(&["sync", "sync", "--parts"]);
                let r = &out["results"][0];
                // A diverged (or forced) sync stores the local state first.
                if let Some(sha) = r["local"]["sha256"].as_str().filter(|s| !s.is_empty()) {
                    let v = manifest(store.path()).into_iter().find(|v| v["sha256"] == sha);
                    if let Some(v) = v.filter(|v| v["site"] == r["local"]["site"]) {
                        made.prints.entry(content_sha(&v)).or_insert_with(|| print(d));
                    }
                }
                seen.diverged += usize::from(r["state"] == "diverged");
                if r["state"] == "pulled" {
                    seen.pulled += 1;
                    let sha = r["version"]["sha256"].as_str().unwrap();
                    let v = manifest(store.path()).into_iter().find(|v| v["sha256"] == sha).unwrap();
                    let want = made.prints.get(&content_sha(&v)).unwrap();
                    assert_eq!(
                        &print(d),
                        want,
                        "seed {seed}: the pulled content differs\n{}",
                        log.join("\n")
                    );
                }
            }
            _ => {
                log.push(format!("{at}: maintain"));
                d.ctl_ok(&["sync", "maintain"]);
            }
        }
    }
    // Every kept version rebuilds to its SHA-256, from either site, and
    // restoring it gives its content.
    let kept = manifest(store.path());
    assert!(!kept.is_empty(), "seed {seed}: nothing stored\n{}", log.join("\n"));
    keys.extend(kept.iter().map(|v| v["key"].as_str().unwrap().to_owned()));
    let kept_keys: std::collections::BTreeSet<&str> =
        kept.iter().map(|v| v["key"].as_str().unwrap()).collect();
    seen.deleted += keys.len() - kept_keys.len();
    seen.deltas_kept += kept.iter().filter(|v| v["kind"] == "delta").count();
    seen.full_kept += kept.iter().filter(|v| v["kind"] != "delta").count();
    let dest = store.path().join("rebuilt.db");
    for (i, v) in kept.iter().enumerate() {
        let key = v["key"].as_str().unwrap();
        let d = &sites[i % sites.len()];
        let _ = std::fs::remove_file(&dest);
        d.ctl_ok(&["sync", "restore", key, "--dest", dest.to_str().unwrap()]);
        let sha = hex::encode(Sha256::digest(std::fs::read(&dest).unwrap()));
        assert_eq!(sha, content_sha(v), "seed {seed}: {key} rebuilt to another SHA-256\n{}", log.join("\n"));
        assert!(made.prints.contains_key(&sha), "seed {seed}: {key} holds content never made");
        made.restore(d, v);
    }
    verify_all(&sites[0], seed, &log);
    eprintln!(
        "seed {seed}: {} versions kept of {} contents made; {}",
        kept.len(),
        made.prints.len(),
        log.join("; ")
    );
}

#[test]
fn every_kept_version_rebuilds_to_its_sha256_and_restores_its_content() {
    let mut seen = Seen::default();
    for seed in SEEDS {
        sequence(seed, &mut seen);
    }
    eprintln!("{seen:?}");
    assert!(seen.deltas_kept >= 3 && seen.full_kept >= 3, "{seen:?}");
    assert!(seen.deleted >= 3, "retention never deleted: {seen:?}");
    assert!(seen.pulled >= 1 && seen.diverged >= 1 && seen.restored >= 3, "{seen:?}");
}

//! Backup and restore costs on the field-size fixture (issue 14), against moto
//! on 127.0.0.1, printed in one run next to the floor measured beside them
//! (plain aws-sdk-s3 requests of the same bytes to the same moto, in process):
//!
//! * unchanged backup, changed backup, restore, restore with a safety copy:
//!   whole `casmanctl` processes, median (min, max), ratio to the floor;
//! * requests per operation by R2 class (counted in moto's request log);
//! * bytes stored per version; the adopted file against the original;
//! * casmand memory: RSS after adopting, peak (VmHWM, reset before) during
//!   the changed backups and the restores.
//!
//! The fixture: `../shared/bench/make_fixture_dbs.py` (100,000 events), or
//! `CASMAN_BENCH_FIXTURE=DIR`. Run (release binaries, built once):
//! `cargo build --release --bins && cargo bench -p casman-tests --bench backup`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "common/process.rs"]
mod process;
#[path = "common/store.rs"]
mod store;

use std::time::{Duration, Instant};

use casman_tests::Daemon;
use process::{reset_peak, status_kib};
use store::{BUCKET, requests_since, stats};

struct Row {
    what: &'static str,
    times: Vec<Duration>,
    floor: Duration,
    floor_what: &'static str,
    goal: &'static str,
    requests: (u32, u32),
}

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let (fixture, moto, dir, opts) = store::bench_setup(scratch.path());
    let original = std::fs::metadata(fixture.join("assembled_casm.db")).unwrap().len();
    let opts = opts.env("CASMAN_LOG", "warn");
    let started = Instant::now();
    let d = Daemon::start_in(dir, opts);
    let adopt_secs = started.elapsed().as_secs_f64();
    let pid = d.pid();
    let live = d.data_dir.join("assembled_casm.db");
    let on_disk = |p: &std::path::Path| {
        let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        len(p) + len(&std::path::PathBuf::from(format!("{}-wal", p.display())))
    };
    let adopted = on_disk(&live);
    let rss_adopted = status_kib(pid, "VmRSS:");
    let (anon_adopted, file_adopted) = (status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:"));
    let hwm_adopting = status_kib(pid, "VmHWM:");

    let backup = |expect_upload: bool| store::backup_assembled(&d, expect_upload);
    let (first, _) = backup(true);

    // `casmanctl parts list --all` (a table, into a pipe) against the sqlite3
    // shell running its SELECT on the same file. Peak memory: the largest
    // waited-for child so far (getrusage), taken before the sqlite3 runs, so
    // it bounds casmanctl's own peak from above.
    let mut list_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = d
            .ctl_cmd()
            .args(["parts", "list", "--all"])
            .stderr(std::process::Stdio::null())
            .output()
            .unwrap();
        list_times.push(t.elapsed());
        assert!(
            out.status.success() && out.stdout.len() > 1_000_000,
            "parts list printed {} bytes",
            out.stdout.len()
        );
    }
    let ctl_peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);
    let mut sqlite_times = Vec::new();
    let parts_db = d.data_dir.join("parts.db");
    for _ in 0..5 {
        let t = Instant::now();
        let out = std::process::Command::new("sqlite3")
            .arg(&parts_db)
            .arg("SELECT id, part_number, part_type, polarization, date_created, date_modified FROM parts ORDER BY date_created DESC, id DESC")
            .output()
            .unwrap();
        sqlite_times.push(t.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let mut change = 0;
    let mut scan_outside = || {
        change += 1;
        store::scan_outside(&live, &format!("BENCH{change}"));
    };
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };

    // Unchanged.
    let mut unchanged = Vec::new();
    let mark = moto.log_text().len();
    for _ in 0..9 {
        unchanged.push(timed(&mut || {
            backup(false);
        }));
    }
    let unchanged_req = requests_since(&moto, mark);

    // Changed, one outside write before each.
    let peak_reset = reset_peak(pid);
    let mut changed = Vec::new();
    let mut stored = Vec::new();
    let mut keys = vec![first];
    let mark = moto.log_text().len();
    for _ in 0..7 {
        scan_outside();
        let mut got = (String::new(), 0);
        changed.push(timed(&mut || got = backup(true)));
        keys.push(got.0);
        stored.push(got.1);
    }
    let changed_req = requests_since(&moto, mark);
    let hwm_backups = status_kib(pid, "VmHWM:");

    // Restores of stored versions, no safety copy: the full snapshot, then
    // the deltas after it (each rebuilt from the full snapshot and its chain).
    let restore = |keys: &[String]| {
        let mark = moto.log_text().len();
        let times: Vec<Duration> = keys
            .iter()
            .map(|key| {
                timed(&mut || {
                    d.ctl_ok(&["sync", "restore", key, "--no-backup", "--yes"]);
                })
            })
            .collect();
        (times, requests_since(&moto, mark))
    };
    let (restores, restore_req) = restore(&vec![keys[0].clone(); 7]);
    let (delta_restores, delta_restore_req) = restore(&keys[1..]);

    // Restores with the safety copy first, of a state not yet stored.
    let mut safe_restores = Vec::new();
    let mark = moto.log_text().len();
    for key in keys.iter().take(5) {
        scan_outside();
        safe_restores.push(timed(&mut || {
            d.ctl_ok(&["sync", "restore", key, "--yes"]);
        }));
    }
    let safe_req = requests_since(&moto, mark);
    let hwm_all = status_kib(pid, "VmHWM:");
    let rss_end = status_kib(pid, "VmRSS:");
    let last_restore = Instant::now();

    // The floor: the same SDK, in process, the same bytes, the same moto.
    let raw = std::fs::read(&live).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (put, get, get_stored) = rt.block_on(async {
        let c = store::sdk_client(&moto);
        let (mut put, mut get, mut get_stored) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..7 {
            let key = format!("floor/{i}");
            let t = Instant::now();
            c.put_object().bucket(BUCKET).key(&key).body(raw.clone().into()).send().await.unwrap();
            put.push(t.elapsed());
            let t = Instant::now();
            let o = c.get_object().bucket(BUCKET).key(&key).send().await.unwrap();
            o.body.collect().await.unwrap();
            get.push(t.elapsed());
            let t = Instant::now();
            let o = c.get_object().bucket(BUCKET).key(&keys[0]).send().await.unwrap();
            o.body.collect().await.unwrap();
            get_stored.push(t.elapsed());
        }
        (put, get, get_stored)
    });
    // casmand idle 3 s after the last restore (the floor's requests took
    // part of that): what it keeps once it has given back the memory of the
    // connections a swap closed (casmand trims again 2 s after a swap).
    std::thread::sleep(Duration::from_secs(3).saturating_sub(last_restore.elapsed()));
    let (rss_idle, idle_secs) = (status_kib(pid, "VmRSS:"), last_restore.elapsed().as_secs_f64());
    let med = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let rows = [
        Row {
            what: "backup, nothing changed",
            times: unchanged,
            floor: med(&put),
            floor_what: "PUT raw",
            goal: "<= 20 ms, <= 1 GET",
            requests: (unchanged_req.0 / 9, unchanged_req.1 / 9),
        },
        Row {
            what: "backup after one outside write",
            times: changed,
            floor: med(&put),
            floor_what: "PUT raw",
            goal: "<= 2x PUT raw",
            requests: (changed_req.0 / 7, changed_req.1 / 7),
        },
        Row {
            what: "restore --no-backup (full)",
            times: restores,
            floor: med(&get_stored),
            floor_what: "GET stored",
            goal: "<= 250 ms, Class B <= 2",
            requests: (restore_req.0 / 7, restore_req.1 / 7),
        },
        Row {
            what: "restore --no-backup (delta 1-7)",
            times: delta_restores,
            floor: med(&get_stored),
            floor_what: "GET stored",
            goal: "(chain: full + 1-7 deltas)",
            requests: (delta_restore_req.0 / 7, delta_restore_req.1 / 7),
        },
        Row {
            what: "restore (safety backup first)",
            times: safe_restores,
            floor: med(&get_stored),
            floor_what: "GET stored",
            goal: "",
            requests: (safe_req.0 / 5, safe_req.1 / 5),
        },
    ];
    println!(
        "fixture: assembled_casm.db {:.1} MB, adopted {:.1} MB ({:.2}x; goal <= 1.3x), adopted in {adopt_secs:.1} s",
        original as f64 / 1e6,
        adopted as f64 / 1e6,
        adopted as f64 / original as f64
    );
    println!(
        "floor (in process, same moto): PUT raw {:.1} ms, GET raw {:.1} ms, GET stored (full snapshot) {:.1} ms",
        med(&put).as_secs_f64() * 1e3,
        med(&get).as_secs_f64() * 1e3,
        med(&get_stored).as_secs_f64() * 1e3
    );
    println!(
        "{:<32} {:>9} {:>9} {:>9}  {:>8} {:>12}  {:>7}  goal",
        "whole casmanctl process", "median ms", "min", "max", "ratio", "to", "A / B"
    );
    for r in &rows {
        let (m, lo, hi) = stats(&r.times);
        println!(
            "{:<32} {m:>9.1} {lo:>9.1} {hi:>9.1}  {:>7.2}x {:>12}  {:>3} / {:<3}  {}",
            r.what,
            m / (r.floor.as_secs_f64() * 1e3),
            r.floor_what,
            r.requests.0,
            r.requests.1,
            r.goal
        );
    }
    let ((lm, llo, lhi), (sm, slo, shi)) = (stats(&list_times), stats(&sqlite_times));
    println!(
        "casmanctl parts list --all (100,010 parts, table into a pipe): median {lm:.0} ms (min {llo:.0}, max {lhi:.0}), \
         {:.2}x the sqlite3 shell's same SELECT {sm:.0} ms (min {slo:.0}, max {shi:.0}) (goal <= 2x); \
         casmanctl peak RSS <= {ctl_peak_kib} KiB (goal <= 30 MB)",
        lm / sm
    );
    stored.sort();
    println!(
        "bytes stored per changed version: median {} ({:.1}% of the raw {})",
        stored[stored.len() / 2],
        100.0 * stored[stored.len() / 2] as f64 / raw.len() as f64,
        raw.len()
    );
    println!(
        "casmand memory: RSS {rss_adopted} KiB after adopting ({anon_adopted} KiB anonymous, {file_adopted} KiB file-backed: \
         mostly casmand's own code; peak {hwm_adopting} KiB while adopting; goal idle <= 30 MB), \
         peak {} KiB during the changed backups (goal <= 64 MB), peak {hwm_all} KiB with the restores, RSS {rss_end} KiB right after them, {rss_idle} KiB idle {idle_secs:.1} s later",
        if peak_reset { hwm_backups.to_string() } else { format!("(peak not resettable) {hwm_backups}") }
    );
}

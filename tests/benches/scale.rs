//! Ten times the field size (issue 34): the listings, adoption and start on
//! the field-size fixture and, with `CASMAN_BENCH_FIXTURE_10X=DIR`, on the 10×
//! one (`make_fixture_dbs.py DIR 1000000`), in one run, release binaries,
//! moto on 127.0.0.1, every figure beside its floor measured beside it:
//!
//! * each listing (`connections`, `chains`, `parts list`, `database print`,
//!   table and `--json`, into /dev/null): time and peak RSS of casmanctl
//!   (its own, from `wait4`) and casmand's peak (VmHWM, reset before each),
//!   against the sqlite3 shell running the SELECT of the same rows on the
//!   same file (goals: casmanctl ≤ 30 MB, casmand ≤ 64 MB, time ≤ 2× the
//!   floor);
//! * adoption on first start (time to the first answer, casmand's peak:
//!   goal ≤ 64 MB) and a start on the adopted files (goal: flat with size);
//! * a backup after one scan against a plain PUT of the bytes it stored,
//!   and a restore `--no-backup` of the full version against three floors: a
//!   plain GET of the stored object written to a file and synced (the
//!   issue's), and the same GET decompressed, hashed and written as the
//!   database file (what any verified restore of a compressed object
//!   writes: 5× the bytes at 10×), and a GET of the database's own bytes
//!   (stored uncompressed for the floor, as the issue's table measured "GET
//!   of the raw file") written and synced. Each restore is timed to its answer;
//!   the next starts once the replaced file's numbers, read after the
//!   answer, are recorded;
//! * continuous protection as it is taken with the change exchange: the
//!   segment published after one scan, against a plain PUT of it.
//!
//! Run: `cargo build --release --bins && CASMAN_BENCH_FIXTURE_10X=DIR cargo bench -p casman-tests --bench scale`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "common/store.rs"]
mod store;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use casman_tests::{Daemon, MotoServer};
use process::{reset_peak, run, status_kib};
use store::stats;

/// Runs of each measure.
const REPEATS: usize = 5;
/// Adoptions at each size (each of a fresh copy).
const ADOPTIONS: usize = 3;

/// The SELECT behind `connections` and `chains`: the kept state, oldest first.
const CONNECTIONS_SQL: &str = "SELECT source, source_type, source_polarization, target, target_type, \
                               target_polarization, since, event_id FROM active_connections \
                               ORDER BY COALESCE(since, ''), event_id";
/// The SELECT behind `parts list`: newest first.
const PARTS_SQL: &str = "SELECT id, part_number, part_type, polarization, date_created, date_modified \
                         FROM parts ORDER BY date_created DESC, id DESC";

/// One measured command: times, its own peaks and casmand's, in KiB.
#[derive(Default, Clone)]
struct Runs {
    times: Vec<Duration>,
    peaks: Vec<u64>,
    daemon_peaks: Vec<u64>,
}

impl Runs {
    fn line(&self, what: &str, floor: &Runs, goal: &str) -> String {
        let (m, lo, hi) = stats(&self.times);
        let (fm, flo, fhi) = stats(&floor.times);
        let kib = |v: &[u64]| v.iter().copied().max().unwrap_or(0) / 1024;
        format!(
            "{what:<24} {m:>8.0} ms ({lo:.0}–{hi:.0}) ctl {:>3} MB casmand {:>3} MB | floor {fm:>6.0} ms ({flo:.0}–{fhi:.0}) {:>2} MB | {:>5.2}x {goal}",
            kib(&self.peaks),
            kib(&self.daemon_peaks),
            kib(&floor.peaks),
            m / fm.max(0.001)
        )
    }
}

fn daemon_opts(moto: &MotoServer, label: &str) -> casman_tests::DaemonOpts {
    moto.daemon_opts(&bucket(label), label)
        .env("CASMAN_LOG", "warn")
        .env("CASMAN_SYNC__PULL_EVERY", "0s")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000000")
        .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
        .env("CASMAN_SYNC__KEEP_VERSIONS", "100")
}

fn bucket(label: &str) -> String {
    format!("casman-scale-{label}")
}

/// Adopts fresh copies of `fixture`; returns the last daemon (kept running)
/// and the adoptions' times and peaks.
fn adopt(moto: &MotoServer, fixture: &Path, label: &str) -> (Daemon, Runs) {
    let mut runs = Runs::default();
    let mut last = None;
    for _ in 0..ADOPTIONS {
        drop(last.take());
        let dir = store::data_dir_with(fixture);
        let t = Instant::now();
        let d = Daemon::start_in(dir, daemon_opts(moto, label));
        runs.times.push(t.elapsed());
        runs.daemon_peaks.push(status_kib(d.pid(), "VmHWM:"));
        last = Some(d);
    }
    (last.unwrap(), runs)
}

/// Restarts `d` on its adopted files, `REPEATS` times.
fn restarts(d: &mut Daemon) -> Runs {
    let mut runs = Runs::default();
    for _ in 0..REPEATS {
        d.terminate();
        let t = Instant::now();
        d.restart();
        runs.times.push(t.elapsed());
        runs.daemon_peaks.push(status_kib(d.pid(), "VmHWM:"));
    }
    runs
}

/// Set in the environment of this program run as a launcher (see [`launched`]).
const LAUNCH: &str = "CASMAN_SCALE_LAUNCH";

/// Runs `cmd` through this program started afresh as a launcher, which
/// spawns it and prints its time and peak RSS: a child's peak counts the
/// memory of the process it was spawned from (vfork), and the launcher
/// holds a few MB where this process holds the fixture's figures.
fn launched(cmd: &Command) -> (Duration, u64) {
    let mut l = Command::new(std::env::current_exe().unwrap());
    l.env(LAUNCH, "1").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => l.env(k, v),
            None => l.env_remove(k),
        };
    }
    let out = l.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{cmd:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    (Duration::from_nanos(it.next().unwrap()), it.next().unwrap())
}

/// The launcher: runs its arguments as a command, prints its wall time (ns)
/// and peak RSS (KiB).
fn launch() {
    let mut args = std::env::args_os().skip(1);
    let mut cmd = Command::new(args.next().unwrap());
    cmd.args(args).env_remove(LAUNCH);
    let (took, kib) = run(&mut cmd);
    println!("{} {kib}", took.as_nanos());
}

/// `casmanctl ARGS` into /dev/null, `REPEATS` times.
fn listing(d: &Daemon, args: &[&str]) -> Runs {
    let mut runs = Runs::default();
    for _ in 0..REPEATS {
        reset_peak(d.pid());
        let (t, peak) = launched(d.ctl_cmd().args(args));
        runs.times.push(t);
        runs.peaks.push(peak);
        runs.daemon_peaks.push(status_kib(d.pid(), "VmHWM:"));
    }
    runs
}

/// The sqlite3 shell running `sql` on `db` into /dev/null, `REPEATS` times.
fn floor(db: &Path, sql: &str) -> Runs {
    let mut runs = Runs::default();
    for _ in 0..REPEATS {
        let (t, peak) = launched(Command::new("sqlite3").arg(db).arg(sql));
        runs.times.push(t);
        runs.peaks.push(peak);
    }
    runs
}

/// `SELECT *` of every table `database print` prints, both files in one
/// sqlite3 process.
fn dump_sql(data: &Path) -> String {
    let tables = |db: &str| {
        casman_tests::sqlite(
            &data.join(db),
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND wr = 0
               AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let mut sql = format!("ATTACH '{}' AS a;", data.join("assembled_casm.db").display());
    for t in tables("parts.db") {
        sql.push_str(&format!("SELECT * FROM main.\"{t}\";"));
    }
    for t in tables("assembled_casm.db") {
        sql.push_str(&format!("SELECT * FROM a.\"{t}\";"));
    }
    sql
}

/// A backup after one scan (an outside write), against a PUT of the bytes
/// it stored; a restore `--no-backup` of the full version, against a GET of
/// the stored object written to a file and synced, the same decompressed
/// and hashed on the way, and a GET of the database's own bytes (stored
/// uncompressed beside it for the floor) written and synced.
fn backup_and_restore(d: &Daemon, moto: &MotoServer, label: &str) -> [(Runs, Runs); 4] {
    // The newest version, stored whole (adoption queued it, a restart
    // stores a full snapshot again): what the restores below restore.
    let out = d.ctl_json(&["sync", "backup", "--assembled"]);
    let full = out["backups"][0]["key"].as_str().unwrap().to_owned();
    assert!(!full.ends_with(".delta.zst"), "{out}");
    let live = d.data_dir.join("assembled_casm.db");
    let (mut backups, mut puts) = (Runs::default(), Runs::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = store::sdk_client(moto);
    for i in 0..REPEATS {
        store::scan_outside(&live, &format!("SCALE{label}{i}"));
        let t = Instant::now();
        let (key, _) = store::backup_assembled(d, true);
        backups.times.push(t.elapsed());
        let bytes = moto.get_object(&bucket(label), &key).unwrap();
        puts.times.push(rt.block_on(async {
            let t = Instant::now();
            let put =
                c.put_object().bucket(bucket(label)).key(format!("floor/{label}/{i}")).body(bytes.into());
            put.send().await.unwrap();
            t.elapsed()
        }));
    }
    let (mut restores, mut gets, mut decoded, mut raw) =
        (Runs::default(), Runs::default(), Runs::default(), Runs::default());
    let scratch = tempfile::tempdir().unwrap();
    // The database's bytes, as the restore writes them, stored whole.
    let raw_key = format!("floor/{label}/raw");
    rt.block_on(async {
        use std::io::Write;
        let stored = moto.get_object(&bucket(label), &full).unwrap();
        let path = scratch.path().join("raw");
        let mut u = casmand::backup::codec::Unpacker::create(&path).unwrap();
        u.write_all(&stored).unwrap();
        u.finish().unwrap();
        let body = std::fs::read(&path).unwrap();
        c.put_object().bucket(bucket(label)).key(&raw_key).body(body.into()).send().await.unwrap();
    });
    let state = d.data_dir.join("state.db");
    for i in 0..REPEATS {
        let t = Instant::now();
        d.ctl_ok(&["sync", "restore", &full, "--no-backup", "--yes"]);
        restores.times.push(t.elapsed());
        // The replaced file's part numbers are read after the answer: each
        // repetition starts once that is done, alone on the machine.
        casman_tests::wait_for("the replaced file's numbers to be read", Duration::from_secs(120), || {
            (casman_tests::sqlite(&state, "SELECT count(*) FROM issued_pending").trim() == "0").then_some(())
        });
        let get = |unpack: bool, key: &str| {
            rt.block_on(async {
                use std::io::Write;
                let t = Instant::now();
                let o = c.get_object().bucket(bucket(label)).key(key).send().await.unwrap();
                let bytes = o.body.collect().await.unwrap().into_bytes();
                let path = scratch.path().join(format!("{i}.{unpack}.{}", key.len()));
                if unpack {
                    let mut u = casmand::backup::codec::Unpacker::create(&path).unwrap();
                    u.write_all(&bytes).unwrap();
                    u.finish().unwrap();
                } else {
                    std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
                }
                std::fs::File::open(&path).unwrap().sync_all().unwrap();
                t.elapsed()
            })
        };
        gets.times.push(get(false, &full));
        decoded.times.push(get(true, &full));
        raw.times.push(get(false, &raw_key));
    }
    [(backups, puts), (restores.clone(), gets), (restores.clone(), decoded), (restores, raw)]
}

/// The first sync after adoption enters the pre-upgrade history into the
/// change exchange (a one-time cost, measured by the exchange bench; minutes
/// at 10×). The scheduler starts it after adoption: done first, and waited
/// for, so that nothing measured shares the machine with it, and the
/// versions restored below hold it (a restored file without it would be
/// entered again behind the next restore). A restart then begins a new
/// chain: the next version is stored whole.
fn enter_history(d: &mut Daemon, label: &str) {
    let entered = Instant::now();
    d.ctl_json(&["sync", "sync"]);
    println!("[{label}] (first sync: the history entered in {:.0} s)", entered.elapsed().as_secs_f64());
    d.terminate();
    d.restart();
}

/// Continuous protection as sites that exchange changes take it (the
/// default): after one scan through casmand, the scheduler publishes the
/// change as one small segment instead of storing a version. Measured as
/// `sync sync --assembled` (publish, then look for other sites' changes)
/// after one scan, against a plain PUT of the segment it stored. (The
/// first sync after adoption, which enters the pre-upgrade history, ran
/// before anything was measured: see [`enter_history`].)
fn protection(d: &Daemon, moto: &MotoServer, label: &str) -> (Runs, Runs) {
    let db = d.data_dir.join("assembled_casm.db");
    let pair = casman_tests::sqlite(&db, "SELECT source, target FROM active_connections LIMIT 1");
    let (a, b) = pair.trim().split_once('|').unwrap();
    let (mut syncs, mut puts) = (Runs::default(), Runs::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = store::sdk_client(moto);
    for i in 0..REPEATS {
        let op = if i % 2 == 0 { "disconnect" } else { "connect" };
        d.ctl_ok(&["scan", op, a, b]);
        let t = Instant::now();
        let out = d.ctl_json(&["sync", "sync", "--assembled"]);
        syncs.times.push(t.elapsed());
        assert_eq!(out["results"][0]["published_changes"], 1, "{out}");
        let segment = rt.block_on(async {
            let listed =
                c.list_objects_v2().bucket(bucket(label)).prefix("changes/assembled_casm.db/").send().await;
            let objects = listed.unwrap().contents.unwrap_or_default();
            let newest = objects.iter().max_by_key(|o| o.last_modified).unwrap();
            newest.key.clone().unwrap()
        });
        let bytes = moto.get_object(&bucket(label), &segment).unwrap();
        puts.times.push(rt.block_on(async {
            let t = Instant::now();
            let put = c
                .put_object()
                .bucket(bucket(label))
                .key(format!("floor/segment/{label}/{i}"))
                .body(bytes.into());
            put.send().await.unwrap();
            t.elapsed()
        }));
    }
    (syncs, puts)
}

fn measure(moto: &MotoServer, fixture: &Path, label: &str) -> Vec<String> {
    moto.create_bucket(&bucket(label));
    let started = Instant::now();
    let (mut d, adoptions) = adopt(moto, fixture, label);
    let starts = restarts(&mut d);
    enter_history(&mut d, label);
    let data = d.data_dir.clone();
    let (assembled, parts) = (data.join("assembled_casm.db"), data.join("parts.db"));
    let connections = floor(&assembled, CONNECTIONS_SQL);
    let parts_floor = floor(&parts, PARTS_SQL);
    let dump = floor(&parts, &dump_sql(&data));
    let mut lines = Vec::new();
    for (what, args, floor, goal) in [
        ("connections", &["connections"][..], &connections, "goal ≤ 2x"),
        ("--json connections", &["--json", "connections"], &connections, "goal ≤ 2x"),
        ("chains", &["chains"], &connections, "goal ≤ 2x"),
        ("--json chains", &["--json", "chains"], &connections, "goal ≤ 2x"),
        ("parts list", &["parts", "list", "--all"], &parts_floor, "goal ≤ 2x"),
        ("--json parts list", &["--json", "parts", "list", "--all"], &parts_floor, "goal ≤ 2x"),
        ("database print", &["database", "print"], &dump, "goal ≤ 2x"),
        ("--json database print", &["--json", "database", "print"], &dump, "goal ≤ 2x"),
    ] {
        lines.push(format!("[{label}] {}", listing(&d, args).line(what, floor, goal)));
    }
    let [(backups, puts), (restores, gets), (_, decoded), (_, raw)] = backup_and_restore(&d, moto, label);
    lines.push(format!(
        "[{label}] {}",
        backups.line("backup after one scan", &puts, "(floor: PUT of the stored bytes)")
    ));
    lines.push(format!(
        "[{label}] {}",
        restores.line("restore --no-backup", &gets, "(floor: GET stored + write + fsync; goal ≤ 1.5x)")
    ));
    lines.push(format!(
        "[{label}] {}",
        restores.line(
            "restore --no-backup",
            &decoded,
            "(floor: GET stored + zstd decode + SHA-256 + write + fsync of the database)"
        )
    ));
    lines.push(format!(
        "[{label}] {}",
        restores.line("restore --no-backup", &raw, "(floor: GET of the database's bytes + write + fsync)")
    ));
    let (syncs, segment_puts) = protection(&d, moto, label);
    lines.push(format!(
        "[{label}] {}",
        syncs.line(
            "publish after one scan",
            &segment_puts,
            "(floor: PUT of the segment; the protection path)"
        )
    ));
    let (am, alo, ahi) = stats(&adoptions.times);
    let (sm, slo, shi) = stats(&starts.times);
    let mb = |r: &Runs| r.daemon_peaks.iter().copied().max().unwrap_or(0) / 1024;
    lines.push(format!(
        "[{label}] adoption (first start) {am:.0} ms ({alo:.0}–{ahi:.0}), casmand peak {} MB (goal ≤ 64 MB); \
         start on adopted files {sm:.0} ms ({slo:.0}–{shi:.0}), peak {} MB",
        mb(&adoptions),
        mb(&starts)
    ));
    lines.push(format!("[{label}] measured in {:.0} s", started.elapsed().as_secs_f64()));
    for l in &lines {
        println!("{l}");
    }
    lines
}

fn main() {
    if std::env::var_os(LAUNCH).is_some() {
        return launch();
    }
    let scratch = tempfile::tempdir().unwrap();
    let moto = MotoServer::start();
    let one = fixture::fixture(scratch.path());
    let mut all = measure(&moto, &one, "1x");
    match std::env::var("CASMAN_BENCH_FIXTURE_10X") {
        Ok(ten) => all.extend(measure(&moto, Path::new(&ten), "10x")),
        Err(_) => println!("(set CASMAN_BENCH_FIXTURE_10X=DIR to measure the 10x fixture too)"),
    }
    println!("\nmedian (min–max); MB: the largest peak RSS of the runs");
    for l in all {
        println!("{l}");
    }
}

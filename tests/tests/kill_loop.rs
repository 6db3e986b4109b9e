//! The kill loop: casmand under concurrent writers (parts generation, scans,
//! position changes, SNAP board CSV loads) and backups, verifications and
//! restores, killed with SIGKILL at random moments. After every restart:
//!
//! * every acknowledged write is there, and every refused one is not;
//! * no part number was ever issued twice;
//! * every database passes `PRAGMA integrity_check`;
//! * an in-place restore killed at any moment left the old file or the new
//!   one, never a torn one;
//! * temporary files do not accumulate, and the stored versions verify.
//!
//! The schedule is random but replayable: the seed is printed, and
//! `CASMAN_KILL_SEED=N` replays it. `CASMAN_KILL_TRIALS` sets the number of
//! trials (default 20; `tests/run --soak N` sets it to N).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use casman_proto::v1::{
    AddPartsRequest, AssignPositionRequest, BackupRequest, ConnectRequest, DisconnectRequest,
    ListBackupsRequest, LoadSnapBoardsRequest, RestoreRequest, VerifyRequest,
    assembly_client::AssemblyClient, backup_event, backups_client::BackupsClient, parts_client::PartsClient,
    positions_client::PositionsClient, restore_event, snap_boards_client::SnapBoardsClient, verify_event,
};
use casman_tests::{Daemon, sqlite};
use tonic::{Code, transport::Channel};

/// How a request ended, as a client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Answered with success: the write must survive.
    Acked,
    /// Refused by a rule: nothing may be written.
    Refused,
    /// No answer (the daemon died under it): either is allowed.
    Unknown,
}

fn outcome<T>(r: &Result<T, tonic::Status>) -> Outcome {
    match r {
        Ok(_) => Outcome::Acked,
        Err(s)
            if matches!(s.code(), Code::FailedPrecondition | Code::InvalidArgument | Code::AlreadyExists) =>
        {
            Outcome::Refused
        }
        Err(_) => Outcome::Unknown,
    }
}

/// Pairs ANTn/LNAn stocked before the first trial, for the scan writers.
const PAIRS: u32 = 120;
/// Antennas stocked for the position writer (ANT 501..), one grid code each.
const PLACED_FROM: u32 = 501;

/// What the clients were told, across all trials.
#[derive(Debug, Default)]
struct Ledger {
    /// Part numbers acknowledged as generated and still expected in parts.db.
    parts: BTreeSet<String>,
    /// Every part number ever handed out: none may be handed out twice.
    issued: BTreeSet<String>,
    /// Per pair: acknowledged connects and disconnects, and unknown ones.
    scans: BTreeMap<u32, PairLedger>,
    /// Pairs whose state is no longer known (a request without an answer).
    retired: BTreeSet<u32>,
    /// Refused requests: (source, target) that must never be in the log.
    refused_edges: BTreeSet<(String, String)>,
    /// Antenna -> grid code, acknowledged.
    placed: BTreeMap<String, String>,
    /// Antennas whose placement went unanswered (may or may not be placed).
    placed_unknown: BTreeMap<String, String>,
    /// How many antennas were tried so far (each antenna is placed once).
    placements_tried: u32,
    /// SNAP board notes: the last acknowledged load and later unanswered ones.
    snap_notes_acked: Option<String>,
    snap_notes_unknown: Vec<String>,
    /// Counts for the summary.
    acked: u64,
    refused: u64,
    unknown: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct PairLedger {
    connected: bool,
    connects: u32,
    disconnects: u32,
    unknown_connects: u32,
    unknown_disconnects: u32,
}

impl Ledger {
    fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Acked => self.acked += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }
}

type Shared = Arc<Mutex<Ledger>>;

fn seed() -> u64 {
    std::env::var("CASMAN_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    })
}

fn trials() -> u32 {
    std::env::var("CASMAN_KILL_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(20)
}

/// Grid codes, one per placed antenna: CC000, CN001..CN021, CS001..CS021 × E01..E06.
fn grid_codes() -> Vec<String> {
    let mut rows = vec!["CC000".to_owned()];
    for r in 1..=21 {
        rows.push(format!("CN{r:03}"));
        rows.push(format!("CS{r:03}"));
    }
    let mut codes = Vec::new();
    for row in rows {
        for col in 1..=6 {
            codes.push(format!("{row}E{col:02}"));
        }
    }
    codes
}

async fn channel(d: &Daemon) -> Channel {
    casman_proto::client::connect(&d.socket).await.expect("connect to casmand")
}

/// Generates parts until told to stop; records every acknowledged number.
async fn parts_writer(ch: Channel, ledger: Shared, stop: Arc<AtomicBool>, mut rng: fastrand::Rng) {
    let mut client = PartsClient::new(ch);
    while !stop.load(Ordering::Relaxed) {
        let (ty, n) = if rng.bool() { ("LNA", rng.u32(1..4)) } else { ("COAXSHORT", rng.u32(1..4)) };
        let r = client
            .add_parts(AddPartsRequest { part_type: ty.into(), count: n, polarization: "P2".into() })
            .await;
        let o = outcome(&r);
        let mut l = ledger.lock().unwrap();
        l.count(o);
        if let Ok(resp) = r {
            for p in resp.into_inner().parts {
                assert!(l.issued.insert(p.part_number.clone()), "part number {} issued twice", p.part_number);
                l.parts.insert(p.part_number);
            }
        }
        if o == Outcome::Unknown {
            return;
        }
    }
}

/// Connects and disconnects pairs in `pairs`, now and then trying a refused
/// connection (LNA -> ANT, the wrong way round).
async fn scan_writer(
    ch: Channel,
    ledger: Shared,
    stop: Arc<AtomicBool>,
    pairs: Vec<u32>,
    mut rng: fastrand::Rng,
) {
    let mut client = AssemblyClient::new(ch);
    while !stop.load(Ordering::Relaxed) {
        let live: Vec<u32> = {
            let l = ledger.lock().unwrap();
            pairs.iter().copied().filter(|p| !l.retired.contains(p)).collect()
        };
        if live.is_empty() {
            return;
        }
        let i = live[rng.usize(..live.len())];
        let (ant, lna) = (format!("ANT{i:05}P1"), format!("LNA{i:05}P1"));
        if rng.u8(..10) == 0 {
            let r = client.connect(ConnectRequest { source: lna.clone(), target: ant.clone() }).await;
            let o = outcome(&r);
            let mut l = ledger.lock().unwrap();
            l.count(o);
            match o {
                Outcome::Refused => {
                    l.refused_edges.insert((lna, ant));
                }
                Outcome::Acked => panic!("{lna} -> {ant} (the wrong way round) was accepted"),
                Outcome::Unknown => return,
            }
            continue;
        }
        let connected = ledger.lock().unwrap().scans.entry(i).or_default().connected;
        let r = if connected {
            client.disconnect(DisconnectRequest { a: ant, b: lna }).await.map(|_| ())
        } else {
            client.connect(ConnectRequest { source: ant, target: lna }).await.map(|_| ())
        };
        let o = outcome(&r);
        let mut l = ledger.lock().unwrap();
        l.count(o);
        let e = l.scans.entry(i).or_default();
        match (o, connected) {
            (Outcome::Acked, false) => {
                e.connects += 1;
                e.connected = true;
            }
            (Outcome::Acked, true) => {
                e.disconnects += 1;
                e.connected = false;
            }
            (Outcome::Unknown, false) => e.unknown_connects += 1,
            (Outcome::Unknown, true) => e.unknown_disconnects += 1,
            (Outcome::Refused, _) => panic!("a valid scan of pair {i} was refused: {r:?}"),
        }
        if o == Outcome::Unknown {
            l.retired.insert(i);
            return;
        }
    }
}

/// Places antennas, one fresh grid code each.
async fn position_writer(ch: Channel, ledger: Shared, stop: Arc<AtomicBool>, codes: Arc<Mutex<Vec<String>>>) {
    let mut client = PositionsClient::new(ch);
    while !stop.load(Ordering::Relaxed) {
        let Some(code) = codes.lock().unwrap().pop() else { return };
        let n = {
            let mut l = ledger.lock().unwrap();
            l.placements_tried += 1;
            PLACED_FROM + l.placements_tried - 1
        };
        let antenna = format!("ANT{n:05}");
        let r = client
            .assign_position(AssignPositionRequest {
                antenna: antenna.clone(),
                grid_code: code.clone(),
                notes: String::new(),
                force: false,
            })
            .await;
        let o = outcome(&r);
        let mut l = ledger.lock().unwrap();
        l.count(o);
        match o {
            Outcome::Acked => {
                l.placed.insert(antenna, code);
            }
            Outcome::Unknown => {
                l.placed_unknown.insert(antenna, code);
                return;
            }
            Outcome::Refused => panic!("placing {antenna} at {code} was refused: {r:?}"),
        }
    }
}

/// Loads the SNAP board CSV again and again with new notes on board 1A.
async fn snap_writer(ch: Channel, ledger: Shared, stop: Arc<AtomicBool>, trial: u32) {
    let mut client = SnapBoardsClient::new(ch);
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let note = format!("trial {trial} load {k}");
        let csv = format!(
            "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,152,00:29:c4:e8:18:05,192.168.120.53,0,{note}\n"
        );
        let r = client.load_snap_boards(LoadSnapBoardsRequest { csv, source: "kill-loop.csv".into() }).await;
        let o = outcome(&r);
        let mut l = ledger.lock().unwrap();
        l.count(o);
        match o {
            Outcome::Acked => {
                l.snap_notes_acked = Some(note);
                l.snap_notes_unknown.clear();
            }
            Outcome::Unknown => {
                l.snap_notes_unknown.push(note);
                return;
            }
            Outcome::Refused => panic!("a valid SNAP board CSV was refused: {r:?}"),
        }
    }
}

/// Backs up, verifies and downloads (restore to the client) now and then.
async fn backup_writer(ch: Channel, stop: Arc<AtomicBool>, mut rng: fastrand::Rng) {
    let mut client = BackupsClient::new(ch);
    while !stop.load(Ordering::Relaxed) {
        match rng.u8(..3) {
            0 => {
                let Ok(s) = client.backup(BackupRequest { databases: vec![] }).await else { return };
                let mut s = s.into_inner();
                while let Ok(Some(ev)) = s.message().await {
                    if let Some(backup_event::Event::Done(_)) = ev.event {}
                }
            }
            1 => {
                let Ok(s) = client
                    .verify(VerifyRequest { database: String::new(), all: false, key: String::new() })
                    .await
                else {
                    return;
                };
                let mut s = s.into_inner();
                while let Ok(Some(ev)) = s.message().await {
                    if let Some(verify_event::Event::Result(r)) = ev.event {
                        assert!(r.ok, "stored version {} does not verify: {}", r.key, r.problem);
                    }
                }
            }
            _ => {
                let Ok(list) = client.list_backups(ListBackupsRequest { database: String::new() }).await
                else {
                    return;
                };
                let Some(v) = list.into_inner().versions.into_iter().next() else { continue };
                let Ok(s) =
                    client.restore(RestoreRequest { key: v.key, no_backup: true, to_client: true }).await
                else {
                    return;
                };
                let mut s = s.into_inner();
                let mut bytes = 0usize;
                while let Ok(Some(ev)) = s.message().await {
                    if let Some(restore_event::Event::Chunk(c)) = ev.event {
                        bytes += c.len();
                    }
                }
                let _ = bytes;
            }
        }
    }
}

fn integrity(d: &Daemon) {
    for db in ["parts.db", "assembled_casm.db", "state.db"] {
        let path = d.data_dir.join(db);
        let ok = sqlite(&path, "PRAGMA integrity_check").trim().to_owned();
        assert_eq!(ok, "ok", "{db} failed integrity_check");
    }
}

fn rows(db: &Path, sql: &str) -> Vec<String> {
    sqlite(db, sql).lines().map(str::to_owned).collect()
}

/// Checks everything the clients were told against the files.
fn check(d: &Daemon, l: &Ledger) -> u64 {
    integrity(d);
    let parts_db = d.data_dir.join("parts.db");
    let asm_db = d.data_dir.join("assembled_casm.db");
    let mut checked = 0u64;

    let stored: Vec<String> = rows(&parts_db, "SELECT part_number FROM parts");
    let set: BTreeSet<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(set.len(), stored.len(), "a part number is stored twice");
    for p in &l.parts {
        assert!(set.contains(p.as_str()), "acknowledged part {p} is missing");
        checked += 1;
    }

    // Scan events per pair, by status, from the log.
    let mut log: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for r in rows(
        &asm_db,
        "SELECT part_number, connected_to, connection_status, count(*) FROM assembly GROUP BY 1, 2, 3",
    ) {
        let f: Vec<&str> = r.split('|').collect();
        log.insert((f[0].into(), f[1].into(), f[2].into()), f[3].parse().unwrap());
    }
    let n = |a: &str, b: &str, s: &str| -> u32 {
        log.get(&(a.to_owned(), b.to_owned(), s.to_owned())).copied().unwrap_or(0)
            + log.get(&(b.to_owned(), a.to_owned(), s.to_owned())).copied().unwrap_or(0)
    };
    for (i, e) in &l.scans {
        let (ant, lna) = (format!("ANT{i:05}P1"), format!("LNA{i:05}P1"));
        let c = n(&ant, &lna, "connected");
        let x = n(&ant, &lna, "disconnected");
        assert!(
            c >= e.connects && c <= e.connects + e.unknown_connects,
            "pair {i}: {c} connects in the log, {} acknowledged (+{} unanswered)",
            e.connects,
            e.unknown_connects
        );
        assert!(
            x >= e.disconnects && x <= e.disconnects + e.unknown_disconnects,
            "pair {i}: {x} disconnects in the log, {} acknowledged (+{} unanswered)",
            e.disconnects,
            e.unknown_disconnects
        );
        checked += u64::from(e.connects + e.disconnects);
    }
    for (a, b) in &l.refused_edges {
        let bad = log.keys().filter(|(s, t, _)| s == a && t == b).count();
        assert_eq!(bad, 0, "refused {a} -> {b} is in the log");
        checked += 1;
    }

    let placed: BTreeMap<String, String> =
        rows(&parts_db, "SELECT antenna_number, grid_code FROM antenna_positions")
            .into_iter()
            .filter_map(|r| r.split_once('|').map(|(a, g)| (a.to_owned(), g.to_owned())))
            .collect();
    for (a, g) in &l.placed {
        assert_eq!(placed.get(a), Some(g), "acknowledged position {a} at {g} is missing");
        checked += 1;
    }
    for (a, g) in &placed {
        let known = l.placed.get(a) == Some(g) || l.placed_unknown.get(a) == Some(g);
        assert!(known, "{a} at {g} was never acknowledged nor in flight");
    }

    if let Some(acked) = &l.snap_notes_acked {
        let notes = sqlite(&parts_db, "SELECT notes FROM snap_boards WHERE chassis = 1 AND slot = 'A'");
        let notes = notes.trim();
        assert!(
            notes == acked || l.snap_notes_unknown.iter().any(|u| u == notes),
            "SNAP 1A notes are {notes:?}; the last acknowledged load set {acked:?}"
        );
        checked += 1;
    }
    checked
}

fn temp_files(d: &Daemon) -> usize {
    let tmp = d.data_dir.join("tmp");
    std::fs::read_dir(tmp).map(|r| r.count()).unwrap_or(0)
}

/// One chaos trial: all writers at once, a kill at a random moment.
async fn chaos_trial(
    d: &mut Daemon,
    ledger: &Shared,
    codes: &Arc<Mutex<Vec<String>>>,
    rng: &mut fastrand::Rng,
    t: u32,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let ch = channel(d).await;
    let (a, b): (Vec<u32>, Vec<u32>) = (1..=PAIRS).partition(|i| i % 2 == 0);
    tasks.push(tokio::spawn(parts_writer(
        ch.clone(),
        ledger.clone(),
        stop.clone(),
        fastrand::Rng::with_seed(rng.u64(..)),
    )));
    tasks.push(tokio::spawn(scan_writer(
        ch.clone(),
        ledger.clone(),
        stop.clone(),
        a,
        fastrand::Rng::with_seed(rng.u64(..)),
    )));
    tasks.push(tokio::spawn(scan_writer(
        ch.clone(),
        ledger.clone(),
        stop.clone(),
        b,
        fastrand::Rng::with_seed(rng.u64(..)),
    )));
    tasks.push(tokio::spawn(position_writer(ch.clone(), ledger.clone(), stop.clone(), codes.clone())));
    tasks.push(tokio::spawn(snap_writer(ch.clone(), ledger.clone(), stop.clone(), t)));
    tasks.push(tokio::spawn(backup_writer(ch, stop.clone(), fastrand::Rng::with_seed(rng.u64(..)))));
    // The kill comes at a random moment of the trial: this sleep is the
    // schedule, not a wait for a condition.
    tokio::time::sleep(Duration::from_millis(rng.u64(80..900))).await;
    d.kill();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer task panicked");
    }
}

/// One restore trial: a backup, a few parts, then an in-place restore of the
/// earlier version killed at a random moment. The file afterwards is the old
/// one or the restored one, whole.
async fn restore_trial(d: &mut Daemon, ledger: &Shared, rng: &mut fastrand::Rng) {
    let ch = channel(d).await;
    let mut backups = BackupsClient::new(ch.clone());
    let mut parts = PartsClient::new(ch);
    let mut s =
        backups.backup(BackupRequest { databases: vec!["parts.db".into()] }).await.unwrap().into_inner();
    let mut key = None;
    while let Some(ev) = s.message().await.unwrap() {
        if let Some(backup_event::Event::Done(done)) = ev.event {
            key = done.version.map(|v| v.key);
        }
    }
    let key = match key {
        Some(k) if !k.is_empty() => k,
        _ => {
            let list =
                backups.list_backups(ListBackupsRequest { database: "parts.db".into() }).await.unwrap();
            list.into_inner().versions[0].key.clone()
        }
    };
    let before: BTreeSet<String> =
        rows(&d.data_dir.join("parts.db"), "SELECT part_number FROM parts").into_iter().collect();
    let added = parts
        .add_parts(AddPartsRequest { part_type: "COAXLONG".into(), count: 2, polarization: "P1".into() })
        .await
        .unwrap()
        .into_inner()
        .parts;
    {
        // A restore may roll these back on purpose (they are checked below,
        // not against the whole-run ledger), but their numbers stay issued.
        let mut l = ledger.lock().unwrap();
        l.acked += 1;
        for p in &added {
            assert!(l.issued.insert(p.part_number.clone()), "part number {} issued twice", p.part_number);
        }
    }
    let after: BTreeSet<String> =
        before.iter().cloned().chain(added.iter().map(|p| p.part_number.clone())).collect();
    let restore = tokio::spawn(async move {
        let Ok(s) = backups.restore(RestoreRequest { key, no_backup: false, to_client: false }).await else {
            return;
        };
        let mut s = s.into_inner();
        while let Ok(Some(_)) = s.message().await {}
    });
    tokio::time::sleep(Duration::from_millis(rng.u64(0..400))).await;
    d.kill();
    let _ = restore.await;
    d.restart();
    integrity(d);
    let now: BTreeSet<String> =
        rows(&d.data_dir.join("parts.db"), "SELECT part_number FROM parts").into_iter().collect();
    assert!(
        now == before || now == after,
        "parts.db after a killed restore is neither the old nor the restored file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let seed = seed();
    let trials = trials();
    eprintln!("kill loop: seed {seed} ({trials} trials); replay with CASMAN_KILL_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut d = Daemon::start();
    // Stock the pairs and the antennas to place before any kill.
    d.ctl_ok(&["parts", "add", "ANTENNA", &(PLACED_FROM + 300).to_string(), "1"]);
    d.ctl_ok(&["parts", "add", "LNA", &PAIRS.to_string(), "1"]);
    let ledger: Shared = Arc::default();
    let codes = Arc::new(Mutex::new(grid_codes()));
    let start = Instant::now();
    let mut checked = 0;
    let mut restores = 0;
    let mut max_tmp = 0;
    for t in 1..=trials {
        if t % 5 == 0 {
            restore_trial(&mut d, &ledger, &mut rng).await;
            restores += 1;
            // The restored parts.db may lack parts generated since the
            // version; the numbers stay issued (never handed out again).
            let mut l = ledger.lock().unwrap();
            let stored: BTreeSet<String> =
                rows(&d.data_dir.join("parts.db"), "SELECT part_number FROM parts").into_iter().collect();
            l.parts.retain(|p| stored.contains(p));
            let placed: BTreeSet<String> =
                rows(&d.data_dir.join("parts.db"), "SELECT antenna_number FROM antenna_positions")
                    .into_iter()
                    .collect();
            let gone: Vec<String> = l.placed.keys().filter(|a| !placed.contains(*a)).cloned().collect();
            for a in gone {
                l.placed.remove(&a);
            }
            l.placed_unknown.retain(|a, _| placed.contains(a));
            l.snap_notes_acked = None;
            l.snap_notes_unknown.clear();
            continue;
        }
        chaos_trial(&mut d, &ledger, &codes, &mut rng, t).await;
        d.restart();
        checked = check(&d, &ledger.lock().unwrap());
        max_tmp = max_tmp.max(temp_files(&d));
        // <data>/tmp is emptied at start; what is there now belongs to the
        // backups the restarted daemon began at once: at most, for each of
        // the two databases, a snapshot, its rollback journal and the
        // compressed upload. More means files left behind pile up.
        assert!(temp_files(&d) <= 6, "temporary files accumulate in {}", d.data_dir.join("tmp").display());
    }
    let out = d.ctl(&["sync", "verify", "--all"]);
    assert!(out.status.success(), "stored versions do not verify: {}", String::from_utf8_lossy(&out.stdout));
    let l = ledger.lock().unwrap();
    eprintln!(
        "kill loop: {trials} trials ({restores} killed restores) in {:.1?}, {} acknowledged, {} refused, {} unanswered; {checked} acknowledged writes checked after the last kill; at most {max_tmp} temp files",
        start.elapsed(),
        l.acked,
        l.refused,
        l.unknown
    );
}

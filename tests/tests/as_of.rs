//! The array at any moment (issue 33): `--at TIME` answers, checked against a
//! brute-force fold of the logs written separately in a few lines of Python
//! over sqlite3, at random times over random histories of two sites that
//! exchange changes (histories from before the upgrade with chosen scan
//! times, scans made live at both, positions assigned, moved and removed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    path::Path,
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use casman_tests::{
    Daemon, DaemonOpts,
    http::{free_port, get},
    legacy_data_dir, wait_for,
};
use serde_json::Value;

/// The brute-force fold: for every time given, the event ids of the
/// connections held then (per unordered pair, the newest event by (scan
/// time, clock, id) with a scan time at or before T, unless a disconnect),
/// and the positions then (per antenna, the newest change to it made by T:
/// by its clock, or for a change from before the upgrade by its
/// assigned_at; a removal or a later clear hides it; an antenna with no
/// change at all counts from its assigned_at).
const FOLD: &str = r#"
import json, sqlite3, sys, calendar, time
asm, parts, times = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
a = sqlite3.connect("file:" + asm + "?mode=ro", uri=True)
events = a.execute("""SELECT e.id, e.part_number, e.connected_to, COALESCE(e.scan_time, ''),
    COALESCE(o.hlc, 0), COALESCE(e.connection_status, 'connected')
    FROM assembly e LEFT JOIN event_origin o ON o.event_id = e.id
    WHERE e.part_number IS NOT NULL AND e.connected_to IS NOT NULL""").fetchall()
p = sqlite3.connect("file:" + parts + "?mode=ro", uri=True)
log = p.execute("SELECT site, seq, hlc, op, row FROM change_log WHERE tbl = 'antenna_positions'").fetchall()
live = p.execute("SELECT antenna_number, grid_code, assigned_at FROM antenna_positions").fetchall()
clocked = {k for (k,) in p.execute("SELECT key FROM row_clock WHERE tbl = 'antenna_positions'")}
out = {}
for t in times:
    best = {}
    for (i, x, y, st, h, status) in events:
        if st > t:
            continue
        k = (min(x, y), max(x, y))
        if k not in best or (st, h, i) > best[k][0]:
            best[k] = ((st, h, i), i, status)
    conns = sorted(i for (_, i, s) in best.values() if s != "disconnected")
    hb = (calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) + 1) * 1000 * 65536 - 1
    newest, clear = {}, -1
    for (site, seq, h, op, row) in log:
        r = json.loads(row) if row else {}
        if op == "clear":
            if h <= hb:
                clear = max(clear, h)
            continue
        if (h > 0 and h <= hb) or (h == 0 and (r.get("assigned_at") or "") <= t):
            k = r["antenna_number"]
            if k not in newest or (h, site, seq) > newest[k][0]:
                newest[k] = ((h, site, seq), op, r)
    pos = [r["antenna_number"] + "@" + r["grid_code"] for (key, op, r) in newest.values()
           if op != "delete" and key[0] > clear]
    pos += sorted(k + "@" + g for (k, g, at) in live if k not in clocked and at <= t and clear < 0)
    out[t] = {"connections": conns, "positions": sorted(pos)}
print(json.dumps(out))
"#;

/// `python3` runs the fold over a site's files for `times`.
fn fold(d: &Daemon, times: &[String]) -> Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(FOLD)
        .arg(d.data_dir.join("assembled_casm.db"))
        .arg(d.data_dir.join("parts.db"))
        .arg(serde_json::to_string(times).unwrap())
        .output()
        .expect("python3 (installed by tests/run)");
    assert!(out.status.success(), "fold: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// casmand's answers at `t`, in the fold's shape.
fn answers(d: &Daemon, t: &str) -> Value {
    let c = d.ctl_json(&["connections", "--at", t]);
    let mut conns: Vec<i64> =
        c["connections"].as_array().unwrap().iter().map(|x| x["event_id"].as_i64().unwrap()).collect();
    conns.sort_unstable();
    let p = d.ctl_json(&["positions", "list", "--at", t]);
    let mut pos: Vec<String> = p["positions"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| {
                    format!("{}@{}", x["antenna_number"].as_str().unwrap(), x["grid_code"].as_str().unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    pos.sort();
    serde_json::json!({"connections": conns, "positions": pos})
}

/// A random pre-upgrade history: `n` events among a few pairs (so pairs are
/// made and broken many times), at a few instants (ties of scan time), some
/// with no scan time; `shared` are written first, as whole-file sync copied
/// them to every site.
fn history(rng: &mut fastrand::Rng, n: usize, shared: &[String]) -> Vec<String> {
    let mut rows: Vec<String> = shared.to_vec();
    for _ in 0..n {
        let (a, b) = (rng.u32(1..=4), rng.u32(1..=4));
        let (x, y) = if rng.bool() {
            (format!("ANT{a:05}P1"), format!("LNA{b:05}P1"))
        } else {
            (format!("LNA{a:05}P1"), format!("CXS{b:05}P1"))
        };
        let (x, y) = if rng.u8(0..5) == 0 { (y, x) } else { (x, y) };
        let t = match rng.u8(0..12) {
            0 => "NULL".to_owned(),
            d => format!("'2025-01-{:02}T{:02}:00:00Z'", 1 + d % 6, 8 + rng.u8(0..3)),
        };
        let status = if rng.u8(0..3) == 0 { "disconnected" } else { "connected" };
        rows.push(format!("('{x}', {t}, '{y}', '{status}')"));
    }
    rows
}

fn start(dir: tempfile::TempDir, store: &Path, name: &str) -> Daemon {
    Daemon::start_in(dir, DaemonOpts::local_site(store, name).env("CASMAN_SYNC__PULL_EVERY", "0s"))
}

/// Now in the stored form, and the instant's second.
fn now() -> (String, u64) {
    let s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let ts = jiff::Timestamp::from_second(i64::try_from(s).unwrap()).unwrap();
    (ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), s)
}

/// Waits (polling the clock) until the wall clock's second has passed
/// `second`, so that changes made after it are at a later second.
fn next_second(second: u64) -> String {
    wait_for("the next second", Duration::from_secs(5), || {
        let (t, s) = now();
        (s > second).then_some(t)
    })
}

/// Two sites with random pre-upgrade histories (part of them shared)
/// exchange changes, scan live, assign, move and remove positions, and sync;
/// at each, at every interesting moment and at random ones, `connections
/// --at` and `positions list --at` answer exactly what the fold of its
/// files says, and both sites answer alike once they hold the same changes.
#[test]
fn as_of_answers_match_a_brute_force_fold_of_the_logs_at_two_sites() {
    let mut rng = fastrand::Rng::with_seed(33);
    let shared = history(&mut rng, 12, &[]);
    let store = tempfile::tempdir().unwrap();
    let parts: Vec<String> = (1..=4)
        .flat_map(|n| [("ANT", "ANTENNA"), ("LNA", "LNA"), ("CXS", "COAXSHORT")].map(|(p, t)| (p, t, n)))
        .map(|(p, t, n)| format!("('{p}{n:05}P1', '{t}', '1', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"))
        .collect();
    let lab_dir = legacy_data_dir(&history(&mut rng, 40, &shared), &parts);
    let lab = start(lab_dir, store.path(), "lab");
    let field = start(legacy_data_dir(&history(&mut rng, 40, &shared), &[]), store.path(), "field");
    for d in [&lab, &field, &lab] {
        d.ctl_json(&["sync", "sync"]);
    }
    let mut moments: BTreeSet<String> = BTreeSet::new();
    for day in 1..=7 {
        for h in 7..=11 {
            moments.insert(format!("2025-01-{day:02}T{h:02}:00:00Z"));
            moments.insert(format!("2025-01-{day:02}T{h:02}:00:01Z"));
        }
    }
    moments.insert("2024-12-31T23:59:59Z".into());
    // Live work at both sites, a second apart, syncing in between.
    let (mut t, mut second) = now();
    moments.insert(t.clone());
    let steps: [(&Daemon, &[&str]); 8] = [
        (&lab, &["positions", "assign", "ANT00001", "CN001E01"]),
        (&field, &["scan", "connect", "ANT00003P1", "LNA00004P1"]),
        (&lab, &["positions", "assign", "ANT00001", "CN001E02", "--force"]),
        (&field, &["positions", "assign", "ANT00002", "CN001E01"]),
        (&lab, &["scan", "disconnect", "ANT00003P1", "LNA00004P1"]),
        (&field, &["positions", "remove", "ANT00001"]),
        (&lab, &["positions", "assign", "ANT00004", "CN002E01"]),
        (&field, &["scan", "connect", "ANT00001P1", "LNA00002P1"]),
    ];
    for (i, (d, args)) in steps.iter().enumerate() {
        t = next_second(second);
        second += 1;
        moments.insert(t.clone());
        let out = d.ctl(args);
        // A scan the rules refuse (a part already connected) is part of the
        // history too: nothing written.
        assert!(out.status.success() || args[0] == "scan", "step {i} {args:?}: {out:?}");
        for d in [&lab, &field] {
            d.ctl_json(&["sync", "sync"]);
        }
    }
    lab.ctl_json(&["sync", "sync"]);
    let (end, _) = now();
    moments.insert(end);
    for _ in 0..10 {
        moments.insert(format!("2025-01-{:02}T{:02}:{:02}:00Z", rng.u8(1..8), rng.u8(0..24), rng.u8(0..60)));
    }
    let times: Vec<String> = moments.into_iter().collect();
    let mut by_site = Vec::new();
    for d in [&lab, &field] {
        let expected = fold(d, &times);
        let mut got = serde_json::Map::new();
        for t in &times {
            let a = answers(d, t);
            assert_eq!(a, expected[t], "at {t}: casmand (left) and the fold (right) differ");
            got.insert(t.clone(), a);
        }
        by_site.push(got);
    }
    // Both sites hold the same changes: the same answers, the same event ids aside.
    let shape = |m: &serde_json::Map<String, Value>| -> Vec<(String, usize, Value)> {
        m.iter()
            .map(|(t, v)| (t.clone(), v["connections"].as_array().unwrap().len(), v["positions"].clone()))
            .collect()
    };
    assert_eq!(shape(&by_site[0]), shape(&by_site[1]));
    // The histories were not trivial: connections and positions came and went.
    let counts: BTreeSet<usize> = shape(&by_site[0]).iter().map(|x| x.1).collect();
    assert!(counts.len() > 3, "{counts:?}");
    let placed: BTreeSet<String> = by_site[0].values().map(|v| v["positions"].to_string()).collect();
    assert!(placed.len() >= 5, "{placed:?}");
}

/// A chain as it was: its parts, its SNAP port and the board there, before
/// and after a part was swapped; a bad time is refused, naming it.
#[test]
fn a_chain_and_its_board_as_they_were() {
    let rows = [
        "('ANT00001P1', '2025-03-01T10:00:00Z', 'LNA00001P1', 'connected')",
        "('LNA00001P1', '2025-03-01T10:00:05Z', 'CXS00001P1', 'connected')",
        "('CXS00001P1', '2025-03-01T10:00:10Z', 'CXL00001P1', 'connected')",
        "('CXL00001P1', '2025-03-01T10:00:15Z', 'BAC00001P1', 'connected')",
        "('BAC00001P1', '2025-03-01T10:00:20Z', 'SNAP1A05', 'connected')",
        "('ANT00001P1', '2025-03-02T09:00:00Z', 'LNA00001P1', 'disconnected')",
        "('ANT00002P1', '2025-03-02T09:30:00Z', 'LNA00001P1', 'connected')",
    ]
    .map(str::to_owned);
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let web = format!("[http]\nlisten = \"127.0.0.1:{port}\"\nallow_without_token = true\n");
    let d = Daemon::start_in(
        legacy_data_dir(&rows, &[]),
        DaemonOpts::local_site(store.path(), "lab").config(&web),
    );
    let chain = |part: &str, at: &str| d.ctl_json(&["chain", part, "--at", at]);
    assert_eq!(chain("SNAP1A05", "2025-03-01 10:00:19")["parts"].as_array().unwrap().len(), 1);
    let then = chain("SNAP1A05", "2025-03-01 12:00");
    let parts: Vec<&str> = then["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(parts, ["ANT00001P1", "LNA00001P1", "CXS00001P1", "CXL00001P1", "BAC00001P1", "SNAP1A05"]);
    let now = chain("SNAP1A05", "2099-01-01");
    assert_eq!(now["parts"][0], "ANT00002P1");
    assert_eq!(now, d.ctl_json(&["chain", "SNAP1A05"]), "a future moment answers the present");
    // Between the disconnect and the new antenna: the chain starts at the LNA.
    assert_eq!(chain("ANT00001P1", "2025-03-02T09:15:00+00:00")["parts"].as_array().unwrap().len(), 1);
    assert_eq!(chain("LNA00001P1", "2025-03-02T11:15:00+02:00")["parts"][0], "LNA00001P1");
    // Chains and connections at the moment the chain was complete.
    let chains = d.ctl_json(&["chains", "--complete", "--at", "2025-03-01T11:00:00Z"]);
    assert_eq!(chains["chains"].as_array().unwrap().len(), 1);
    assert_eq!(chains["chains"][0]["parts"][0]["part"], "ANT00001P1");
    assert!(
        d.ctl_json(&["chains", "--complete", "--at", "2025-03-01"])["chains"].as_array().unwrap().is_empty()
    );
    // A board loaded now did not exist then.
    let csv = d.dir.path().join("boards.csv");
    std::fs::write(&csv, "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,SN7,02:00:00:00:00:07,10.0.0.7,7,\n")
        .unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", csv.to_str().unwrap()]);
    assert_eq!(d.ctl_json(&["chain", "SNAP1A05"])["snap"]["packet_index"], 7 * 12 + 5);
    let old = chain("SNAP1A05", "2025-03-01 12:00");
    assert_eq!(old["snap"]["board_configured"], Value::Bool(false), "{old}");
    let then = d.ctl_json(&["snap", "list", "--at", "2025-03-01"]);
    assert!(then["boards"].as_array().is_none_or(Vec::is_empty), "{then}");
    assert_eq!(d.ctl_json(&["snap", "list"])["boards"].as_array().unwrap().len(), 1);
    // The web views take ?at= (the form's date and time picker sends
    // YYYY-MM-DDTHH:MM[:SS], UTC).
    let page = |path: &str| {
        let r = get(port, path, &[]);
        (r.status, r.body)
    };
    let (status, then) = page("/chains?at=2025-03-01T12:00");
    assert_eq!(status, 200, "{then}");
    assert!(then.contains("ANT00001P1") && !then.contains("ANT00002P1"), "{then}");
    assert!(then.contains("as-of-banner") && then.contains("2025-03-01T12:00:00Z"), "{then}");
    assert!(then.contains("value=\"2025-03-01T12:00:00\""), "the picker shows the moment: {then}");
    let (_, now) = page("/chains");
    assert!(now.contains("ANT00002P1") && !now.contains("as-of-banner"), "{now}");
    assert!(page("/chains?at=2025-03-01T09:00").1.contains("No records found"));
    let (_, snap_then) = page("/snap?at=2025-03-01%2012:00");
    assert!(snap_then.contains("ANT00001P1") && !snap_then.contains("SN7"), "{snap_then}");
    let (_, snap_now) = page("/snap");
    assert!(snap_now.contains("ANT00002P1") && snap_now.contains("SN7"), "{snap_now}");
    let (status, bad) = page("/chains?at=yesterday");
    assert_eq!(status, 400, "{bad}");
    assert!(bad.contains("yesterday"), "{bad}");
    let err = d.ctl_err(&["connections", "--at", "last tuesday"], 2);
    assert!(err.contains("last tuesday") && err.contains("RFC 3339"), "{err}");
}

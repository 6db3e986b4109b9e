//! The kept current state and group commit, end to end: refusals inside a
//! batch, racing scanners with and without batching, kill -9 during batched
//! writes, drift reported by `database check`, writes by other programs, the
//! streaming listings, and the README's `current_connections` queries on the
//! legacy databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use casman_proto::v1::{
    ConnectRequest, DisconnectRequest, ListChainsRequest, ListConnectionsRequest,
    assembly_client::AssemblyClient,
};
use casman_tests::{Daemon, DaemonOpts, sqlite};
use tonic::transport::Channel;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A daemon (with `opts`) stocked with `n` parts of every type in both polarizations.
fn stocked(opts: DaemonOpts, n: u32) -> Daemon {
    let d = Daemon::start_with(opts);
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, &n.to_string(), "1"]);
        d.ctl_ok(&["parts", "add", t, &n.to_string(), "2"]);
    }
    d
}

fn count(db: &Path, sql: &str) -> i64 {
    sqlite(db, sql).trim().parse().unwrap()
}

fn asm(d: &Daemon) -> PathBuf {
    d.data_dir.join("assembled_casm.db")
}

async fn client(d: &Daemon) -> AssemblyClient<Channel> {
    AssemblyClient::new(casman_proto::client::connect(&d.socket).await.unwrap())
}

fn assert_clean(d: &Daemon) {
    let v = d.ctl_json(&["database", "check"]);
    assert_eq!(v["clean"], true, "{v}");
}

/// Batches that happened, from the daemon's debug log.
fn batches_seen(d: &Daemon) -> usize {
    d.log_text().lines().filter(|l| l.contains("group commit")).count()
}

#[test]
fn refused_requests_in_a_batch_write_nothing_and_get_their_own_errors() {
    let d = stocked(DaemonOpts::default(), 16);
    let rt = runtime();
    let c = rt.block_on(client(&d));
    for round in 0..20 {
        // 16 connects that commit, 16 that break a rule, all at once.
        let mut tasks = Vec::new();
        for k in 1..=16u32 {
            let mut c1 = c.clone();
            let (ant, lna) = (format!("ANT{k:05}P1"), format!("LNA{k:05}P1"));
            tasks.push(rt.spawn(async move {
                let r = c1.connect(ConnectRequest { source: ant.clone(), target: lna.clone() }).await;
                (
                    ant,
                    lna,
                    r.map(|r| r.into_inner().connection.unwrap().event_id)
                        .map_err(|s| s.message().to_owned()),
                )
            }));
            let mut c2 = c.clone();
            // Wrong polarization (P2 LNA), or an already-taken LNA (the previous pair's).
            let (ant2, bad) = if k % 2 == 0 {
                (format!("ANT{k:05}P2"), format!("LNA{k:05}P1"))
            } else {
                (format!("ANT{k:05}P2"), format!("CXS{k:05}P2"))
            };
            tasks.push(rt.spawn(async move {
                let r = c2.connect(ConnectRequest { source: ant2.clone(), target: bad.clone() }).await;
                (
                    ant2,
                    bad,
                    r.map(|r| r.into_inner().connection.unwrap().event_id)
                        .map_err(|s| s.message().to_owned()),
                )
            }));
        }
        let results: Vec<_> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
        for (src, dst, r) in &results {
            if src.ends_with("P1") {
                assert!(r.is_ok(), "{src} -> {dst}: {r:?}");
            } else {
                // Its own error, naming its own parts.
                let e = r.as_ref().unwrap_err();
                assert!(e.contains(src.as_str()) || e.contains(dst.as_str()), "{src} -> {dst}: {e}");
            }
        }
        assert_eq!(count(&asm(&d), "SELECT COUNT(*) FROM assembly WHERE part_number LIKE '%P2'"), 0);
        assert_eq!(count(&asm(&d), "SELECT COUNT(*) FROM active_connections"), 16);
        // Undo for the next round, also concurrently.
        let mut tasks = Vec::new();
        for k in 1..=16u32 {
            let mut c1 = c.clone();
            tasks.push(rt.spawn(async move {
                c1.disconnect(DisconnectRequest { a: format!("LNA{k:05}P1"), b: format!("ANT{k:05}P1") })
                    .await
            }));
        }
        for t in tasks {
            rt.block_on(t).unwrap().unwrap();
        }
        assert_eq!(count(&asm(&d), "SELECT COUNT(*) FROM active_connections"), 0);
        if round >= 2 && batches_seen(&d) > 0 {
            break;
        }
    }
    assert!(batches_seen(&d) > 0, "no request shared a transaction:\n{}", d.log_text());
    assert_clean(&d);
    // Exactly the committed requests are audited.
    let committed = count(&asm(&d), "SELECT COUNT(*) FROM assembly");
    let audited = count(
        &d.data_dir.join("state.db"),
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('scan.connect', 'scan.disconnect')",
    );
    assert_eq!(audited, committed);
}

fn race(d: &Daemon, rounds: u32) {
    let rt = runtime();
    let c = rt.block_on(client(d));
    for round in 1..=rounds {
        // Eight scanners want the same LNA; eight BACBOARDs the same SNAP port.
        let lna = format!("LNA{round:05}P1");
        let port = format!("SNAP{}A{:02}", 1 + round % 4, round % 12);
        let mut tasks = Vec::new();
        for a in 1..=8u32 {
            let ant = format!("ANT{:05}P1", (round - 1) * 8 + a);
            let bac = format!("BAC{:05}P1", (round - 1) * 8 + a);
            for (src, dst) in [(ant, lna.clone()), (bac, port.clone())] {
                let mut c = c.clone();
                tasks.push(rt.spawn(async move {
                    (dst.clone(), c.connect(ConnectRequest { source: src, target: dst }).await.is_ok())
                }));
            }
        }
        let mut wins: HashMap<String, u32> = HashMap::new();
        for t in tasks {
            let (dst, ok) = rt.block_on(t).unwrap();
            *wins.entry(dst).or_default() += u32::from(ok);
        }
        assert_eq!(wins[&lna], 1, "exactly one scanner connects {lna}");
        assert_eq!(wins[&port], 1, "exactly one BACBOARD gets {port}");
    }
    let v = d.ctl_json(&["visualize", "chains"]);
    assert!(!v["text"].as_str().unwrap().contains("DUPLICATE"), "{v}");
    assert_clean(d);
}

#[test]
fn racing_scanners_exactly_one_wins_with_and_without_batching() {
    let d = stocked(DaemonOpts::default(), 40);
    race(&d, 4);
    let unbatched = stocked(DaemonOpts::default().env("CASMAN_WRITE_BATCH", "1"), 40);
    race(&unbatched, 4);
    assert_eq!(batches_seen(&unbatched), 0, "CASMAN_WRITE_BATCH=1 batches nothing");
}

#[test]
fn kill_9_during_batched_writes_loses_nothing_acknowledged() {
    let mut d = stocked(DaemonOpts::default(), 16);
    let rt = runtime();
    let c = rt.block_on(client(&d));
    // Per pair: the number of acknowledged connects and disconnects.
    let acked: Arc<Mutex<HashMap<u32, (u32, u32)>>> = Arc::default();
    let connect_ids: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(60);
    for k in 1..=16u32 {
        let (mut c, acked, ids) = (c.clone(), acked.clone(), connect_ids.clone());
        rt.spawn(async move {
            let (ant, lna) = (format!("ANT{k:05}P1"), format!("LNA{k:05}P1"));
            while Instant::now() < stop_at {
                let Ok(r) = c.connect(ConnectRequest { source: ant.clone(), target: lna.clone() }).await
                else {
                    break;
                };
                ids.lock().unwrap().push(r.into_inner().connection.unwrap().event_id);
                acked.lock().unwrap().entry(k).or_default().0 += 1;
                // Always refused (wrong successor): must never be written.
                let _ =
                    c.connect(ConnectRequest { source: ant.clone(), target: format!("CXS{k:05}P1") }).await;
                if c.disconnect(DisconnectRequest { a: ant.clone(), b: lna.clone() }).await.is_err() {
                    break;
                }
                acked.lock().unwrap().entry(k).or_default().1 += 1;
            }
        });
    }
    // Let the load build up, then crash the daemon in the middle of it.
    casman_tests::wait_for("300 acknowledged events", Duration::from_secs(60), || {
        let n: u32 = acked.lock().unwrap().values().map(|(a, b)| a + b).sum();
        (n >= 300).then_some(())
    });
    d.kill();
    std::thread::sleep(Duration::from_millis(200));
    let acked = acked.lock().unwrap().clone();
    let ids = connect_ids.lock().unwrap().clone();
    drop(rt);
    let db = asm(&d);
    assert_eq!(sqlite(&db, "PRAGMA integrity_check").trim(), "ok");
    for (k, (connects, disconnects)) in &acked {
        let pair = format!(
            "part_number = 'ANT{k:05}P1' AND connected_to = 'LNA{k:05}P1' AND connection_status = '{{}}'"
        );
        let c =
            count(&db, &format!("SELECT COUNT(*) FROM assembly WHERE {}", pair.replace("{}", "connected")));
        let x = count(
            &db,
            &format!("SELECT COUNT(*) FROM assembly WHERE {}", pair.replace("{}", "disconnected")),
        );
        // Every acknowledged event is there (one more may have committed unanswered).
        assert!(
            c >= i64::from(*connects) && c <= i64::from(*connects) + 1,
            "pair {k}: {c} connects, {connects} acked"
        );
        assert!(
            x >= i64::from(*disconnects) && x <= i64::from(*disconnects) + 1,
            "pair {k}: {x} disconnects, {disconnects} acked"
        );
    }
    let present: BTreeSet<i64> =
        sqlite(&db, "SELECT id FROM assembly").lines().map(|l| l.trim().parse().unwrap()).collect();
    assert!(ids.iter().all(|id| present.contains(id)), "an acknowledged connect is missing");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM assembly WHERE connected_to LIKE 'CXS%'"),
        0,
        "a refusal was written"
    );
    // The kept state is exact: a pair is kept connected iff its newest event is a connect.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM assembly a WHERE a.id = (SELECT MAX(id) FROM assembly b
               WHERE b.part_number = a.part_number AND b.connected_to = a.connected_to)
             AND a.connection_status = 'connected'"
        ),
        count(&db, "SELECT COUNT(*) FROM active_connections")
    );
    // Acknowledged connects are audited.
    let audited =
        count(&d.data_dir.join("state.db"), "SELECT COUNT(*) FROM audit_log WHERE action = 'scan.connect'");
    assert!(audited >= ids.len() as i64, "{audited} audited, {} acknowledged", ids.len());
    d.restart();
    assert_clean(&d);
}

#[test]
fn drift_is_reported_and_repaired_and_other_programs_keep_the_state() {
    let d = stocked(DaemonOpts::default(), 3);
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    d.ctl_ok(&["scan", "connect", "LNA00001P1", "CXS00001P1"]);
    assert_clean(&d);
    // The sqlite3 shell appends events (as an old script would): the triggers keep the state.
    sqlite(
        &asm(&d),
        "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
             connected_polarization, connected_scan_time, connection_status)
         VALUES ('CXS00001P1', 'COAXSHORT', 'P1', '2099-01-01T00:00:00Z', 'LNA00001P1', 'LNA', 'P1',
                 '2099-01-01T00:00:00Z', 'disconnected'),
                ('ANT00002P1', 'ANTENNA', 'P1', '2000-01-01T00:00:00Z', 'LNA00002P1', 'LNA', 'P1',
                 '2000-01-01T00:00:00Z', 'connected')",
    );
    let v = d.ctl_json(&["connections"]);
    let pairs: Vec<(String, String)> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["source"].as_str().unwrap().to_owned(), c["target"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        pairs,
        [("ANT00002P1".into(), "LNA00002P1".into()), ("ANT00001P1".into(), "LNA00001P1".into())],
        "oldest first; the reverse-orientation disconnect ended LNA -> CXS"
    );
    assert_clean(&d);
    // Break the kept state behind casmand's back (keyed by part codes:
    // ANT00001P1 is 1000011, LNA00001P1 2000011, CXS00001P1 3000011).
    sqlite(
        &asm(&d),
        "DELETE FROM pair_state WHERE lo = 1000011;
         UPDATE pair_state SET active = 1, event_id = (SELECT MIN(id) FROM assembly WHERE part_number = 'LNA00001P1')
          WHERE lo = 2000011 AND hi = 3000011;",
    );
    let out = d.ctl(&["--json", "database", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["missing"][0]["source"], "ANT00001P1", "{v}");
    assert_eq!(v["extra"][0]["source"], "LNA00001P1", "{v}");
    // Events 1 and 3 filed nowhere; event 2 filed twice (once in 3's place).
    assert_eq!(v["misfiled"], 3, "{v}");
    let text = d.ctl_err(&["database", "check"], 1);
    assert!(text.contains("--repair"), "{text}");
    let v = d.ctl_json(&["database", "check", "--repair"]);
    assert_eq!(v["repaired"], true);
    assert_clean(&d);
    // A restart (no adoption, state already built) keeps it as it is.
    let mut d = d;
    d.terminate();
    d.restart();
    assert_clean(&d);
}

#[test]
fn chains_and_connections_stream_as_data() {
    let d = stocked(DaemonOpts::default(), 2);
    let links = ["ANT00001P1", "LNA00001P1", "CXS00001P1", "CXL00001P1", "BAC00001P1", "SNAP2B05"];
    for w in links.windows(2) {
        d.ctl_ok(&["scan", "connect", w[0], w[1]]);
    }
    d.ctl_ok(&["scan", "connect", "ANT00002P2", "LNA00002P2"]);
    let csv = d.dir.path().join("boards.csv");
    std::fs::write(
        &csv,
        "chassis,slot,sn,mac,ip,feng_id,notes\n2,B,SN13,00:11:22:33:02:01,192.168.1.13,12,x\n",
    )
    .unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", csv.to_str().unwrap()]);
    let v = d.ctl_json(&["chains"]);
    let chains = v["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2, "{v}");
    let full = &chains[0];
    let parts: Vec<&str> =
        full["parts"].as_array().unwrap().iter().map(|p| p["part"].as_str().unwrap()).collect();
    assert_eq!(parts, links);
    assert_eq!(full["parts"][0]["part_type"], "ANTENNA");
    assert_eq!(full["parts"][0]["polarization"], "P1");
    assert_eq!(full["parts"][5]["part_type"], "SNAP");
    assert_eq!(full["snap"]["port"], "SNAP2B05");
    assert_eq!(full["snap"]["packet_index"], 12 * 12 + 5);
    assert_eq!(chains[1]["snap"], serde_json::Value::Null);
    assert_eq!(d.ctl_json(&["chains", "--complete"])["chains"].as_array().unwrap().len(), 1);
    let v = d.ctl_json(&["connections", "--type", "SNAP"]);
    assert_eq!(v["connections"].as_array().unwrap().len(), 1);
    assert_eq!(v["connections"][0]["source_polarization"], "P1");
    assert_eq!(d.ctl_json(&["connections"])["connections"].as_array().unwrap().len(), 6);
    assert_eq!(
        d.ctl_json(&["connections", "--part", "lna00001p1"])["connections"].as_array().unwrap().len(),
        2
    );
    // The same through gRPC streams.
    let rt = runtime();
    let (n_conn, n_chains) = rt.block_on(async {
        let mut c = client(&d).await;
        let mut s = c.list_connections(ListConnectionsRequest::default()).await.unwrap().into_inner();
        let mut n = 0;
        while s.message().await.unwrap().is_some() {
            n += 1;
        }
        let mut s = c.list_chains(ListChainsRequest::default()).await.unwrap().into_inner();
        let mut m = 0;
        while s.message().await.unwrap().is_some() {
            m += 1;
        }
        (n, m)
    });
    assert_eq!((n_conn, n_chains), (6, 2));
    let text = d.ctl_ok(&["chains"]);
    assert!(text.contains("ANT00001P1 ---> LNA00001P1") && text.contains("packet index 149"), "{text}");
}

/// A file of `shared/legacy/` (beside the checkout, or under `$CASMAN_SHARED_DIR`).
fn legacy(name: &str) -> Option<PathBuf> {
    let shared = std::env::var_os("CASMAN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let p = shared.join("legacy").join(name);
    p.exists().then_some(p)
}

/// The README's queries on `current_connections`, each with its comment.
fn readme_queries() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let block = readme.split("<!-- current-connections-queries -->").nth(1).expect("marker in README");
    let sql = block.split("```sql").nth(1).unwrap().split("```").next().unwrap();
    sql.split("\n\n")
        .filter(|q| !q.trim().is_empty())
        .map(|q| {
            let (comment, body) = q.trim().split_once('\n').unwrap();
            (comment.trim_start_matches("--").trim().to_owned(), body.trim().to_owned())
        })
        .collect()
}

fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    sqlite(db, sql).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

/// Runs every README query on an adopted legacy database and checks it
/// against casmand's own answers, for every part with events.
fn check_queries_on(file: &str, golden_edges: Option<usize>, has_disconnects: bool) {
    let Some(src) = legacy(file) else {
        casman_tests::skip("../shared/legacy is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(&src, dir.path().join("data/assembled_casm.db")).unwrap();
    let d = Daemon::start_in(dir, DaemonOpts::default());
    assert_clean(&d);
    let db = asm(&d);
    let queries = readme_queries();
    assert_eq!(queries.len(), 5, "{queries:?}");
    let current = d.ctl_json(&["connections"]);
    let edges: Vec<(String, String)> = current["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["source"].as_str().unwrap().to_owned(), c["target"].as_str().unwrap().to_owned()))
        .collect();
    if let Some(n) = golden_edges {
        assert_eq!(edges.len(), n);
    }
    let parts: BTreeSet<String> =
        sqlite(&db, "SELECT part_number FROM assembly WHERE part_number IS NOT NULL UNION SELECT connected_to FROM assembly WHERE connected_to IS NOT NULL")
            .lines()
            .map(str::to_owned)
            .collect();
    let mut old_query_wrong = 0;
    for part in &parts {
        let q = |i: usize| queries[i].1.replace("ANT00001P1", &part.replace('\'', "''"));
        // Every event of a part = casmand's history.
        let h = d.ctl_json(&["history", part]);
        assert_eq!(rows(&db, &q(0)).len(), h["events"].as_array().unwrap().len(), "{}: {part}", queries[0].0);
        // Current connections of a part, either end.
        let mine: BTreeSet<(String, String)> =
            edges.iter().filter(|(s, t)| s == part || t == part).cloned().collect();
        let got: BTreeSet<(String, String)> =
            rows(&db, &q(1)).into_iter().map(|r| (r[1].clone(), r[5].clone())).collect();
        assert_eq!(got, mine, "{}: {part}", queries[1].0);
        // What a part is connected to (downstream).
        let down: BTreeSet<String> =
            edges.iter().filter(|(s, _)| s == part).map(|(_, t)| t.clone()).collect();
        let got: BTreeSet<String> = rows(&db, &q(2)).into_iter().map(|r| r[0].clone()).collect();
        assert_eq!(got, down, "{}: {part}", queries[2].0);
        // The guide's original query answers from the log, disconnected edges included.
        let old: BTreeSet<String> = sqlite(
            &db,
            &format!(
                "SELECT connected_to FROM assembly WHERE part_number = '{}' AND connection_status = 'connected'",
                part.replace('\'', "''")
            ),
        )
        .lines()
        .map(str::to_owned)
        .collect();
        old_query_wrong += usize::from(old != down);
        // The chain: every edge reachable downstream over current connections.
        let mut reach: BTreeSet<(String, String)> = BTreeSet::new();
        let mut frontier = vec![part.clone()];
        while let Some(p) = frontier.pop() {
            for e in edges.iter().filter(|(s, _)| *s == p) {
                if reach.insert(e.clone()) {
                    frontier.push(e.1.clone());
                }
            }
        }
        let got: BTreeSet<(String, String)> =
            rows(&db, &q(3)).into_iter().map(|r| (r[1].clone(), r[5].clone())).collect();
        assert_eq!(got, reach, "{}: {part}", queries[3].0);
    }
    if has_disconnects {
        assert!(old_query_wrong > 0, "the legacy log shows why the view is needed");
    }
    assert_eq!(count(&db, &queries[4].1), edges.len() as i64, "{}", queries[4].0);
}

#[test]
fn the_readme_queries_answer_correctly_on_the_legacy_databases() {
    check_queries_on("assembled_casm-2026-01.db", Some(75), true);
    check_queries_on("assembled_casm-2025-08-dev.db", None, false);
}

/// The golden 75 edges come out of the kept state (`connections`) and the
/// log (`database check` recomputes it) alike.
#[test]
fn the_golden_edges_come_out_of_the_kept_state_and_the_log() {
    let (Some(db), Some(state), Some(ascii)) = (
        legacy("assembled_casm-2026-01.db"),
        legacy("golden/assembled_casm-2026-01.current_state.txt"),
        legacy("golden/assembled_casm-2026-01.ascii_chains.txt"),
    ) else {
        casman_tests::skip("../shared/legacy is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(&db, dir.path().join("data/assembled_casm.db")).unwrap();
    let d = Daemon::start_in(dir, DaemonOpts::default());
    let golden: BTreeSet<(String, String)> = std::fs::read_to_string(&state)
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("('"))
        .map(|l| {
            let f: Vec<&str> = l.split('\'').collect();
            (f[1].to_owned(), f[3].to_owned())
        })
        .collect();
    assert_eq!(golden.len(), 75);
    let kept: BTreeSet<(String, String)> = d.ctl_json(&["connections"])["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["source"].as_str().unwrap().to_owned(), c["target"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(kept, golden);
    let check = d.ctl_json(&["database", "check"]);
    assert_eq!(
        (check["by_log"].as_u64(), check["kept"].as_u64(), check["clean"].as_bool()),
        (Some(75), Some(75), Some(true))
    );
    let view: BTreeSet<(String, String)> =
        rows(&asm(&d), "SELECT part_number, connected_to FROM current_connections")
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    assert_eq!(view, golden);
    // The ASCII view (drawn from the kept state) is the Python tool's.
    let v = d.ctl_json(&["visualize", "chains"]);
    assert_eq!(format!("{}\n", v["text"].as_str().unwrap()), std::fs::read_to_string(&ascii).unwrap());
}

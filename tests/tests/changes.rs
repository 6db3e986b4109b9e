//! What changed and the live change feed (issue 33), through the real
//! binaries: `casmanctl changes --since` on a known history, entry by entry
//! and with every filter and format; the feed under reconnects while a
//! writer scans at full speed (every change once, in commit order); changes
//! applied from another site by a sync reach the feed; watchers that never
//! read block no writer and cost the daemon a bounded amount of memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use casman_proto::v1::{
    ChangeEvent, ConnectRequest, DisconnectRequest, ListChangesRequest, WatchChangesRequest,
    assembly_client::AssemblyClient, changes_client::ChangesClient,
};
use casman_tests::{Daemon, DaemonOpts};
use tonic::transport::Channel;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn channel(d: &Daemon) -> Channel {
    casman_proto::client::connect(&d.socket).await.unwrap()
}

fn changes_of(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["changes"].as_array().cloned().unwrap_or_default()
}

fn triple(c: &serde_json::Value) -> (String, String, String) {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    (s("kind"), s("subject"), s("other"))
}

/// A known history, listed entry by entry: kinds, subjects, sites,
/// operators and times; `--part`, `--site`, `--until`, `--csv`, text.
#[test]
fn changes_since_lists_a_known_history_entry_by_entry() {
    let store = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(DaemonOpts::local_site(store.path(), "lab"));
    let start = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    d.ctl_ok(&["--operator", "ana", "scan", "connect", "ANT00001P1", "LNA00001P1"]);
    d.ctl_ok(&["--operator", "bo", "scan", "disconnect", "ANT00001P1", "LNA00001P1"]);
    d.ctl_ok(&["--operator", "ana", "positions", "assign", "ANT00001", "CN002E03"]);
    d.ctl_ok(&["--operator", "ana", "positions", "assign", "ANT00001", "CN003E03", "--force"]);
    d.ctl_ok(&["--operator", "ana", "positions", "remove", "ANT00001"]);
    let all_boards = d.dir.path().join("all.csv");
    d.ctl_ok(&["snap", "generate-csv", "-o", all_boards.to_str().unwrap()]);
    let text = std::fs::read_to_string(&all_boards).unwrap();
    let one: Vec<&str> = text.lines().take(2).collect();
    let board = d.dir.path().join("one.csv");
    std::fs::write(&board, one.join("\n") + "\n").unwrap();
    d.ctl_ok(&["database", "load-snap-boards", "--csv", board.to_str().unwrap()]);

    let listed = changes_of(&d.ctl_json(&["changes", "--since", &start]));
    let got: Vec<(String, String, String)> = listed.iter().map(triple).collect();
    let t = |k: &str, s: &str, o: &str| (k.to_owned(), s.to_owned(), o.to_owned());
    let disconnected = got.iter().find(|g| g.0 == "disconnected").cloned().expect("a disconnect");
    assert!(
        [("ANT00001P1", "LNA00001P1"), ("LNA00001P1", "ANT00001P1")]
            .contains(&(disconnected.1.as_str(), disconnected.2.as_str())),
        "{disconnected:?}"
    );
    assert_eq!(
        got,
        vec![
            t("part_created", "ANT00001P1", "ANTENNA"),
            t("part_created", "ANT00002P1", "ANTENNA"),
            t("part_created", "LNA00001P1", "LNA"),
            t("part_created", "LNA00002P1", "LNA"),
            t("connected", "ANT00001P1", "LNA00001P1"),
            disconnected.clone(),
            t("position_assigned", "ANT00001", "CN002E03"),
            t("position_moved", "ANT00001", "CN003E03, CN002E03"),
            t("position_removed", "ANT00001", "CN003E03"),
            t("board_added", "SN01", "SNAP1A"),
        ],
        "{listed:#?}"
    );
    for c in &listed {
        assert_eq!(c["site"], "lab", "{c}");
        let time = c["time"].as_str().unwrap();
        let at = time.parse::<jiff::Timestamp>().unwrap();
        assert!(at >= start.parse::<jiff::Timestamp>().unwrap(), "{c}");
        assert!(c["hlc"].as_str().unwrap().parse::<i64>().unwrap() > 0, "{c}");
        assert_eq!(c["id"], "", "listings carry no resume id");
    }
    let operators: Vec<&str> = listed.iter().map(|c| c["operator"].as_str().unwrap()).collect();
    assert_eq!(&operators[4..9], ["ana", "bo", "ana", "ana", "ana"], "{listed:#?}");
    assert!(
        operators[..4].iter().all(|o| o.starts_with("uid ")),
        "no --operator: the socket's user: {operators:?}"
    );

    // --part: one antenna (its part and its position rows), either spelling.
    for part in ["ANT00001P1", "ant00001p1", "ANT00001"] {
        let mine: Vec<(String, String, String)> =
            changes_of(&d.ctl_json(&["changes", "--since", &start, "--part", part]))
                .iter()
                .map(triple)
                .collect();
        let kinds: Vec<&str> = mine.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "part_created",
                "connected",
                "disconnected",
                "position_assigned",
                "position_moved",
                "position_removed"
            ],
            "--part {part}: {mine:?}"
        );
    }
    // --site: this site's, another's (none).
    assert_eq!(changes_of(&d.ctl_json(&["changes", "--since", &start, "--site", "lab"])).len(), 10);
    assert!(changes_of(&d.ctl_json(&["changes", "--since", &start, "--site", "field"])).is_empty());
    // --until the first change's second: a prefix, that whole second and nothing later.
    let first_second = &listed[0]["time"].as_str().unwrap()[..19];
    let until = changes_of(&d.ctl_json(&["changes", "--since", &start, "--until", first_second]));
    let expected: Vec<&serde_json::Value> =
        listed.iter().filter(|c| &c["time"].as_str().unwrap()[..19] <= first_second).collect();
    assert_eq!(until.iter().collect::<Vec<_>>(), expected);
    // A span that ends before it starts, and a time not understood, are refused.
    let err = d.ctl_err(&["changes", "--since", "2030-01-01", "--until", "2029-01-01"], 2);
    assert!(err.contains("before since"), "{err}");
    let err = d.ctl_err(&["changes", "--since", "yesterday"], 2);
    assert!(err.contains("\"yesterday\"") && err.contains("RFC 3339"), "{err}");
    // Nothing in the future.
    assert!(changes_of(&d.ctl_json(&["changes", "--since", "2099-01-01"])).is_empty());

    // --csv: a header and one line per change, in the same order.
    let csv = d.ctl_ok(&["changes", "--since", &start, "--csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,kind,site,operator,database,subject,other,detail,count,hlc,seq,id");
    assert_eq!(lines.len(), 11, "{csv}");
    assert!(
        lines[8].contains(",position_moved,lab,ana,parts.db,ANT00001,\"CN003E03, CN002E03\","),
        "{}",
        lines[8]
    );
    // For people: a table, and the count.
    let text = d.ctl_ok(&["changes", "--since", &start]);
    assert!(
        text.contains("ANT00001 moved from CN002E03 to CN003E03") && text.contains("10 changes"),
        "{text}"
    );
}

/// Reads up to `n` changes of a watch started at `after` (or from the
/// start), then hangs up: what it got.
async fn watch_some(ch: Channel, after: Option<String>, n: usize) -> Vec<ChangeEvent> {
    let req = WatchChangesRequest { from_start: after.is_none(), after: after.unwrap_or_default() };
    let mut stream = ChangesClient::new(ch).watch_changes(req).await.unwrap().into_inner();
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
            Ok(m) => got.push(m.unwrap().expect("the feed does not end")),
            Err(_) => break,
        }
    }
    got
}

/// (database, seq) of each change, per database, in the order given.
/// Every change `ListChanges` lists, in its order.
async fn list_all(d: &Daemon) -> Vec<ChangeEvent> {
    let req = ListChangesRequest::default();
    let mut s = ChangesClient::new(channel(d).await).list_changes(req).await.unwrap().into_inner();
    let mut all = Vec::new();
    while let Some(c) = s.message().await.unwrap() {
        all.push(c);
    }
    all
}

fn by_database(changes: &[ChangeEvent]) -> BTreeMap<String, Vec<(String, i64)>> {
    let mut out: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for c in changes {
        out.entry(c.database.clone()).or_default().push((c.kind.clone(), c.seq));
    }
    out
}

/// Connects and disconnects pairs 1..=pairs `rounds` times, as fast as
/// the daemon answers.
async fn scan_hard(ch: Channel, pairs: u32, rounds: u32) {
    let mut client = AssemblyClient::new(ch);
    for _ in 0..rounds {
        for i in 1..=pairs {
            let (a, l) = (format!("ANT{i:05}P1"), format!("LNA{i:05}P1"));
            client.connect(ConnectRequest { source: a.clone(), target: l.clone() }).await.unwrap();
            client.disconnect(DisconnectRequest { a, b: l }).await.unwrap();
        }
    }
}

/// A watcher that hangs up after a few changes and resumes from the last
/// id it got, again and again while a writer scans at full speed, gets
/// every change exactly once, each database's in commit order: the same as
/// a listing of the whole history afterwards.
#[test]
fn the_feed_under_reconnects_gives_every_change_once_in_commit_order() {
    let d = Daemon::start_with(DaemonOpts::default().env("CASMAN_SITE_ID", "lab"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "40", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "40", "1"]);
    let rt = runtime();
    let got = rt.block_on(async {
        let writer = tokio::spawn(scan_hard(channel(&d).await, 40, 5));
        let mut got: Vec<ChangeEvent> = Vec::new();
        let mut after = None;
        let mut rng = fastrand::Rng::with_seed(33);
        let deadline = Instant::now() + Duration::from_secs(120);
        // 80 parts, then 2 events a scan pair and round.
        let total = 80 + 40 * 2 * 5;
        let mut reconnects = 0;
        while got.len() < total {
            assert!(Instant::now() < deadline, "{} of {total} changes after 120 s", got.len());
            let some = watch_some(channel(&d).await, after.clone(), rng.usize(1..40)).await;
            if let Some(last) = some.last() {
                after = Some(last.id.clone());
            }
            got.extend(some);
            reconnects += 1;
        }
        writer.await.unwrap();
        // Nothing more comes.
        assert!(watch_some(channel(&d).await, after, 1).await.is_empty());
        assert!(reconnects > 10, "{reconnects} reconnects");
        got
    });
    let listed = rt.block_on(list_all(&d));
    let ids: std::collections::HashSet<&str> = got.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "every id is distinct");
    let (fed, all) = (by_database(&got), by_database(&listed));
    assert_eq!(fed, all, "the feed and the listing differ");
    for (db, changes) in &fed {
        assert!(changes.windows(2).all(|w| w[0].1 < w[1].1), "{db}: not in commit order");
    }
    assert_eq!(fed["assembled_casm.db"].len(), 400);
}

/// Changes another site made reach this site's feed when a sync applies
/// them, told as that site's.
#[test]
fn changes_applied_by_a_sync_reach_the_feed() {
    let store = tempfile::tempdir().unwrap();
    let lab = Daemon::start_with(DaemonOpts::local_site(store.path(), "lab"));
    let field = Daemon::start_with(DaemonOpts::local_site(store.path(), "field"));
    lab.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    lab.ctl_ok(&["--operator", "ana", "scan", "connect", "ANT00001P1", "LNA00001P1"]);
    lab.ctl_ok(&["sync", "backup"]);
    let rt = runtime();
    rt.block_on(async {
        let req = WatchChangesRequest::default();
        let mut stream =
            ChangesClient::new(channel(&field).await).watch_changes(req).await.unwrap().into_inner();
        field.ctl_ok(&["sync", "sync"]);
        let mut got = Vec::new();
        while got.len() < 5 {
            let m = tokio::time::timeout(Duration::from_secs(30), stream.message()).await;
            let m = m.expect("the applied changes within 30 s").unwrap().unwrap();
            if m.kind != "replaced" {
                got.push(m);
            }
        }
        let told: Vec<(&str, &str, &str, &str)> = got
            .iter()
            .map(|c| (c.kind.as_str(), c.subject.as_str(), c.site.as_str(), c.operator.as_str()))
            .collect();
        let mut parts: Vec<_> = told.iter().filter(|t| t.0 == "part_created").map(|t| t.1).collect();
        parts.sort();
        assert_eq!(parts, ["ANT00001P1", "ANT00002P1", "LNA00001P1", "LNA00002P1"], "{told:?}");
        assert!(told.contains(&("connected", "ANT00001P1", "lab", "unknown")), "{told:?}");
        assert!(told.iter().all(|t| t.2 == "lab" && t.3 == "unknown"), "another site's: {told:?}");
        // The field's own scan follows, as the field's.
        field.ctl_ok(&["--operator", "cy", "scan", "connect", "ANT00002P1", "LNA00002P1"]);
        // (A file taken whole by the first sync is announced as `replaced`,
        // once per database, in the order the two files were written: one
        // may come after the other's changes.)
        let m = loop {
            let m = tokio::time::timeout(Duration::from_secs(30), stream.message()).await;
            let m = m.expect("the field's scan within 30 s").unwrap().unwrap();
            if m.kind != "replaced" {
                break m;
            }
        };
        assert_eq!((m.kind.as_str(), m.site.as_str(), m.operator.as_str()), ("connected", "field", "cy"));
    });
    // The listing at the field tells the same.
    let listed = changes_of(&field.ctl_json(&["changes", "--since", "2000-01-01", "--site", "lab"]));
    assert_eq!(listed.len(), 5, "{listed:#?}");
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Watchers that never read do not hold writers back, and the daemon keeps
/// a bounded amount for each (far less than the changes they miss); once
/// one reads again it gets every change, none dropped.
#[test]
fn watchers_that_never_read_block_no_writer_and_hold_bounded_memory() {
    let d = Daemon::start_with(DaemonOpts::default().env("CASMAN_SITE_ID", "lab"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "500", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "500", "1"]);
    let rt = runtime();
    rt.block_on(async {
        // Warm up: the daemon's caches and the writer path.
        let warm = Instant::now();
        scan_hard(channel(&d).await, 500, 1).await;
        eprintln!("1,000 events in {:?} with no watcher", warm.elapsed());
        let before = rss_kib(d.pid());
        let mut stalled = Vec::new();
        for _ in 0..16 {
            // Each on a connection of its own, never read.
            let req = WatchChangesRequest::default();
            let s = ChangesClient::new(channel(&d).await).watch_changes(req).await.unwrap().into_inner();
            stalled.push(s);
        }
        let started = Instant::now();
        scan_hard(channel(&d).await, 500, 4).await;
        let writing = started.elapsed();
        let after = rss_kib(d.pid());
        // 4,000 events, each a message of ~300 bytes, for 16 watchers: 19 MB
        // if the daemon kept them; a few pages each (~0.5 MB) if it does not.
        let grown = after.saturating_sub(before);
        assert!(grown < 14 * 1024, "the daemon grew by {grown} KiB for 16 stalled watchers");
        eprintln!("4,000 events in {writing:?} with 16 stalled watchers; daemon grew by {grown} KiB");
        // A stalled watcher that reads now gets every event, in order.
        let mut first = stalled.swap_remove(0);
        let mut events = 0;
        while events < 4000 {
            let m = tokio::time::timeout(Duration::from_secs(30), first.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(m.database, "assembled_casm.db");
            events += 1;
        }
        drop(stalled);
    });
}

/// The feed across a SIGKILL, with another site on the same store (moto):
/// while the lab scans at full speed and the field both scans and syncs,
/// the field is killed mid-sync and restarted; a watcher of the field that
/// resumes from the last id it got, round after round, ends with every
/// change the field holds exactly once, in the order the field lists them,
/// and both sites hold the same events.
#[test]
fn the_feed_resumes_across_a_sigkill_while_the_sites_sync_on_moto() {
    let moto = casman_tests::s3::MotoServer::start();
    moto.create_bucket("feed-kill");
    let opts = |site: &str| moto.daemon_opts("feed-kill", site).env("CASMAN_SYNC__PULL_EVERY", "0s");
    let lab = Daemon::start_with(opts("lab"));
    let mut field = Daemon::start_with(opts("field"));
    lab.ctl_ok(&["parts", "add", "ANTENNA", "30", "1"]);
    lab.ctl_ok(&["parts", "add", "LNA", "30", "1"]);
    lab.ctl_ok(&["sync", "backup"]);
    lab.ctl_json(&["sync", "sync"]);
    field.ctl_json(&["sync", "sync"]);
    let rt = runtime();
    let mut got: Vec<ChangeEvent> = Vec::new();
    let mut after: Option<String> = None;
    let mut acknowledged = 0;
    for round in 0..3u32 {
        let lab_scans = rt.spawn({
            let ch = rt.block_on(channel(&lab));
            async move { scan_hard(ch, 10, 2).await }
        });
        let sync = field
            .ctl_cmd()
            .args(["--json", "sync", "sync"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for i in 0..3 {
            let n = 11 + round * 3 + i;
            let (a, l) = (format!("ANT{n:05}P1"), format!("LNA{n:05}P1"));
            if field.ctl(&["scan", "connect", &a, &l]).status.success() {
                acknowledged += 1;
            }
        }
        let some = rt.block_on(watch_some(rt.block_on(channel(&field)), after.clone(), 25));
        if let Some(last) = some.last() {
            after = Some(last.id.clone());
        }
        got.extend(some);
        if round == 1 {
            field.kill();
            field.restart();
        }
        let _ = sync.wait_with_output();
        rt.block_on(lab_scans).unwrap();
    }
    assert_eq!(acknowledged, 9, "the field's own scans");
    for d in [&lab, &field, &lab, &field] {
        d.ctl_json(&["sync", "sync"]);
    }
    // The rest of the feed, then nothing more.
    loop {
        let some = rt.block_on(watch_some(rt.block_on(channel(&field)), after.clone(), 200));
        let Some(last) = some.last() else { break };
        after = Some(last.id.clone());
        got.extend(some);
    }
    got.retain(|c| c.kind != "replaced");
    let listed = rt.block_on(list_all(&field));
    let ids: std::collections::HashSet<&str> = got.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "every id is distinct");
    // The same changes as the field's listing (which is ordered by the
    // changes' times; the feed by the field's commits: its own scans come
    // before the lab's older ones a later sync applied)...
    let sorted = |c: &[ChangeEvent]| {
        let mut v: Vec<(String, String, i64, String)> =
            c.iter().map(|c| (c.database.clone(), c.site.clone(), c.seq, c.kind.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&got), sorted(&listed), "the feed and the field's listing differ");
    // ... and each site's changes in that site's order.
    let mut last: BTreeMap<(String, String), i64> = BTreeMap::new();
    for c in &got {
        let prev = last.insert((c.database.clone(), c.site.clone()), c.seq);
        assert!(prev.is_none_or(|p| p < c.seq), "{} of {}: seq {} after {prev:?}", c.database, c.site, c.seq);
    }
    let events = |d: &Daemon| {
        casman_tests::sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly")
    };
    assert_eq!(events(&lab), events(&field), "both sites hold the same events");
    // Lab: 3 rounds of 10 pairs connected and disconnected twice; field: 9.
    assert_eq!(by_database(&got)["assembled_casm.db"].len(), 3 * 10 * 2 * 2 + 9);
}

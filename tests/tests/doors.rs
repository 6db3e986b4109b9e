//! One write, two doors: every write that casmanctl (gRPC over the socket)
//! and the web front end (`/scanner/api/*`, `/admin/api/*`) can both make
//! writes the same rows, the same audit entry and the same write count for
//! the backup scheduler (README, "the same rules, ... the same audit entry
//! and the same write count for backups").
//!
//! Each test starts two daemons set up alike (the same parts, added with
//! casmanctl on both), makes each write on daemon A with
//! `casmanctl --operator NAME` and on daemon B through the web as the same
//! operator, and compares: the tables the writes touch (volatile columns
//! such as ids and timestamps left out), every audit entry the write added
//! (action, operator, database and detail; event ids, backup keys and the
//! CSV's source name set aside and checked on their own), and the state.db
//! `activity` rows (`writes_since_backup` per database). The only field
//! allowed to differ is where the request came from: `uid`/`gid`/`pid` of
//! the socket peer and `client` = NULL for casmanctl; no peer and
//! `client` = `http <address>` of the HTTP connection for the web.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, os::unix::fs::MetadataExt, path::Path};

use casman_tests::{
    Daemon, DaemonOpts,
    http::{Reply, free_port, request},
    sqlite,
};
use serde_json::{Value, json};

/// A signed-in device: a port and its sign-in cookie.
struct Phone {
    port: u16,
    cookie: Option<String>,
}

impl Phone {
    fn post(&self, path: &str, body: &Value) -> Reply {
        let origin = format!("Origin: http://127.0.0.1:{}", self.port);
        let mut h = vec!["Content-Type: application/json".to_owned(), origin];
        if let Some(c) = &self.cookie {
            h.push(format!("Cookie: {c}"));
        }
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        request(self.port, "POST", path, &h, Some(&body.to_string()))
    }

    fn sign_in(port: u16, name: &str, token: &str) -> Phone {
        let p = Phone { port, cookie: None };
        let r = p.post("/scanner/api/signin", &json!({"name": name, "token": token}));
        assert_eq!(r.status, 200, "sign-in as {name}: {}", r.body);
        Phone { port, cookie: Some(r.cookie("casman_operator")) }
    }
}

// ---- Two daemons ----------------------------------------------------------------

const SITE: &str = "site-token-01234";
const ALICE: &str = "alice-own-token-1";

/// The `client` the audit log records for a web request that came over the
/// connection from `addr` (the socket records none).
fn web_client(addr: SocketAddr) -> String {
    addr.ip().to_string()
}

/// Daemon A (written with casmanctl) and daemon B (written through the web),
/// configured alike; `bob` signs in with the site token (a scanner
/// operator), `alice` with her own token (an admin).
struct Pair {
    a: Daemon,
    b: Daemon,
    bob: Phone,
    alice: Phone,
}

fn config(port: u16) -> String {
    // No backup runs by itself during a test (a scheduled backup would reset
    // writes_since_backup on one daemon only): only the backups asked for.
    format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{SITE}\"\n\
         [[http.operators]]\nname = \"alice\"\ntoken = \"{ALICE}\"\nadmin = true\n\
         [sync]\nbackup_on_scan_count = 100000\nbackup_on_hours = \"100000h\"\n\
         backup_after_parts_generation = false\n"
    )
}

impl Pair {
    /// Two daemons, each with 3 parts of every chain type in both
    /// polarizations (added with casmanctl by operator `setup` on both).
    fn start() -> Pair {
        let (port_a, port_b) = (free_port(), free_port());
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| Daemon::start_with(DaemonOpts::default().config(&config(port_a))));
            let b = s.spawn(|| Daemon::start_with(DaemonOpts::default().config(&config(port_b))));
            (a.join().unwrap(), b.join().unwrap())
        });
        for d in [&a, &b] {
            for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
                for pol in ["1", "2"] {
                    d.ctl_ok(&["--operator", "setup", "parts", "add", t, "3", pol]);
                }
            }
        }
        let bob = Phone::sign_in(port_b, "bob", SITE);
        let alice = Phone::sign_in(port_b, "", ALICE);
        Pair { a, b, bob, alice }
    }

    /// The same casmanctl command on both daemons (set-up, not under test).
    fn both_ctl(&self, args: &[&str]) {
        self.a.ctl_ok(args);
        self.b.ctl_ok(args);
    }
}

// ---- What a write leaves behind ---------------------------------------------------

/// The rows a write may touch, by database file and query: every table the
/// two doors write, without ids and timestamps (whether a timestamp is set
/// is kept).
const TABLES: [(&str, &str); 10] = [
    ("parts.db", "SELECT part_number, part_type, polarization FROM parts ORDER BY part_number"),
    ("parts.db", "SELECT part_type, polarization, highest FROM part_sequences ORDER BY 1, 2"),
    (
        "parts.db",
        "SELECT antenna_number, array_id, row_offset, east_col, grid_code, assigned_at IS NOT NULL, notes, \
         latitude, longitude, height, coordinate_system FROM antenna_positions ORDER BY antenna_number",
    ),
    (
        "parts.db",
        "SELECT chassis, slot, serial_number, mac_address, ip_address, feng_id, notes, date_added IS NOT NULL, \
         date_modified IS NOT NULL FROM snap_boards ORDER BY chassis, slot",
    ),
    (
        "parts.db",
        "SELECT grid_code, latitude, longitude, height, coordinate_system, notes FROM grid_positions \
         ORDER BY grid_code",
    ),
    (
        "assembled_casm.db",
        "SELECT part_number, part_type, polarization, scan_time IS NOT NULL, connected_to, connected_to_type, \
         connected_polarization, connected_scan_time IS NOT NULL, connection_status FROM assembly ORDER BY id",
    ),
    (
        "assembled_casm.db",
        "SELECT source, source_type, source_polarization, target, target_type, target_polarization \
         FROM active_connections ORDER BY source, target",
    ),
    ("state.db", "SELECT part_type, polarization, first, last FROM issued_numbers ORDER BY 1, 2, 3"),
    // The backup scheduler's count per database.
    (
        "state.db",
        "SELECT database, writes_since_backup, last_write_at IS NOT NULL, first_unsaved_write_at IS NOT NULL, \
         last_backup_at IS NOT NULL, last_backup_key IS NOT NULL FROM activity ORDER BY database",
    ),
    ("state.db", "SELECT database, reason FROM sync_base ORDER BY database"),
];

fn tables(d: &Daemon) -> Vec<String> {
    TABLES.iter().map(|(db, sql)| sqlite(&d.data_dir.join(db), sql)).collect()
}

fn writes_since_backup(d: &Daemon) -> String {
    sqlite(&d.data_dir.join("state.db"), "SELECT database, writes_since_backup FROM activity ORDER BY 1")
}

fn last_audit_id(d: &Daemon) -> i64 {
    sqlite(&d.data_dir.join("state.db"), "SELECT coalesce(max(id), 0) FROM audit_log").trim().parse().unwrap()
}

/// Every audit entry after `after`, oldest first, as JSON (detail parsed).
fn audit_since(d: &Daemon, after: i64) -> Vec<Value> {
    let out = sqlite(
        &d.data_dir.join("state.db"),
        &format!(
            "SELECT json_object('uid', uid, 'gid', gid, 'pid', pid, 'operator', operator, 'client', client, \
             'action', action, 'database', database, 'detail', json(detail)) \
             FROM audit_log WHERE id > {after} ORDER BY id"
        ),
    );
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit row ({e}): {l}"))).collect()
}

/// The door a write came through, as its audit entry must show it.
enum Door<'a> {
    /// casmanctl over the socket, run by `uid`; the CSV it sent was `source`.
    Socket { uid: u32, source: Option<&'a str> },
    /// The web, over the connection from `client`; the CSV's source name is `source`.
    Web { client: SocketAddr, source: Option<&'a str> },
}

/// Splits an audit entry into what must be the same whichever door a write
/// came through and who sent it (`uid`, `gid`, `pid`, `client`), which is
/// not. The detail's values that legitimately differ (the event id, the
/// backup key, a CSV's source name) are checked against `door` and set aside.
fn door_free(mut e: Value, door: &Door<'_>) -> (Value, Value) {
    let obj = e.as_object_mut().unwrap();
    let who: serde_json::Map<String, Value> =
        ["uid", "gid", "pid", "client"].iter().map(|k| (k.to_string(), obj.remove(*k).unwrap())).collect();
    let source = match door {
        Door::Socket { source, .. } | Door::Web { source, .. } => *source,
    };
    let action = e["action"].as_str().unwrap_or_default().to_owned();
    let database = e["database"].as_str().unwrap_or_default().to_owned();
    let detail = &mut e["detail"];
    let mut set_aside = |key: &str, check: &dyn Fn(&Value) -> bool| {
        if let Some(v) = detail.get_mut(key) {
            assert!(check(v), "{action}: detail.{key} = {v}");
            *v = json!("(differs by door)");
        }
    };
    match action.as_str() {
        "scan.connect" => set_aside("event_id", &|v| v.is_i64()),
        "database.load_snap_boards" | "database.load_coordinates" => {
            set_aside("source", &|v| v.as_str() == source);
        }
        "sync.backup" => {
            set_aside("key", &|v| v.as_str().is_some_and(|k| k.starts_with(&format!("backups/{database}/"))))
        }
        _ => {}
    }
    (e, Value::Object(who))
}

/// Asserts who sent a write, as its audit entry `e` records it: the socket
/// peer and no client for casmanctl; no peer and `http <address>` for the web.
fn assert_who(who: &Value, door: &Door<'_>, e: &Value) {
    match door {
        Door::Socket { uid, .. } => {
            assert_eq!(who["uid"], json!(uid), "socket entry: the peer's uid: {who} {e}");
            assert!(
                who["gid"].is_u64() && who["pid"].is_u64(),
                "socket entry: the peer's gid and pid: {who} {e}"
            );
            assert_eq!(who["client"], Value::Null, "socket entry: client is NULL: {who} {e}");
        }
        Door::Web { client, .. } => {
            let peer = [&who["uid"], &who["gid"], &who["pid"]];
            assert_eq!(peer, [&Value::Null; 3], "web entry: no socket peer: {who} {e}");
            assert_eq!(
                who["client"],
                json!(web_client(*client)),
                "web entry: client is `http <address>`: {e}"
            );
        }
    }
}

/// A CSV file's source name as the web records it.
fn web_source(file_name: &str) -> String {
    format!("web upload {file_name}")
}

/// A write under test.
struct Op<'a> {
    /// What it is, for messages.
    what: &'a str,
    /// The operator making it through both doors.
    operator: &'a str,
    /// The actions of the audit entries it adds.
    actions: &'a [&'a str],
    /// For CSV loads: the source name casmanctl and the web record.
    sources: (Option<&'a str>, Option<&'a str>),
}

impl<'a> Op<'a> {
    fn new(what: &'a str, operator: &'a str, actions: &'a [&'a str]) -> Self {
        Op { what, operator, actions, sources: (None, None) }
    }

    fn sources(self, socket: &'a str, web: &'a str) -> Self {
        Op { sources: (Some(socket), Some(web)), ..self }
    }
}

/// One write through both doors: `socket` on daemon A (casmanctl), `web` on
/// daemon B (a POST whose reply must be `ok`). Asserts that both daemons
/// were alike before, wrote the same rows and write counts, and added the
/// same audit entries, with the write's actions and operator.
fn same_write(p: &Pair, w: Op<'_>, socket: impl FnOnce(&Daemon), web: impl FnOnce() -> Reply) {
    let Op { what, operator, actions, sources } = w;
    let before = (tables(&p.a), tables(&p.b));
    for (i, (a, b)) in before.0.iter().zip(&before.1).enumerate() {
        assert_eq!(a, b, "{what}: the daemons differ before the write in {}", TABLES[i].1);
    }
    let marks = (last_audit_id(&p.a), last_audit_id(&p.b));

    socket(&p.a);
    let reply = web();
    assert_eq!(reply.status, 200, "{what} through the web: {}", reply.body);
    assert_eq!(reply.json()["ok"], true, "{what} through the web: {}", reply.body);

    let after = (tables(&p.a), tables(&p.b));
    assert_ne!(after.0, before.0, "{what}: casmanctl wrote nothing");
    for (i, (a, b)) in after.0.iter().zip(&after.1).enumerate() {
        assert_eq!(
            a, b,
            "{what}: casmanctl (left) and the web (right) wrote different rows: {}",
            TABLES[i].1
        );
    }
    assert_eq!(
        writes_since_backup(&p.a),
        writes_since_backup(&p.b),
        "{what}: write counts for the backup scheduler, casmanctl (left) and the web (right)"
    );

    let uid = std::fs::metadata(p.a.dir.path()).unwrap().uid();
    let socket_door = Door::Socket { uid, source: sources.0 };
    let web_door = Door::Web { client: reply.local, source: sources.1 };
    let split = |d: &Daemon, mark, door: &Door<'_>| -> (Vec<Value>, Vec<Value>) {
        audit_since(d, mark).into_iter().map(|e| door_free(e, door)).unzip()
    };
    let (by_socket, socket_who) = split(&p.a, marks.0, &socket_door);
    let (by_web, web_who) = split(&p.b, marks.1, &web_door);
    assert_eq!(
        by_socket, by_web,
        "{what}: audit entries, casmanctl (left) and the web (right), apart from peer, client, event id, key, source"
    );
    let got: Vec<&str> = by_socket.iter().map(|e| e["action"].as_str().unwrap_or_default()).collect();
    assert_eq!(got, actions, "{what}: audit entries {by_socket:?}");
    for e in &by_socket {
        assert_eq!(e["operator"], operator, "{what}: {e}");
    }
    for (who, e) in socket_who.iter().zip(&by_socket) {
        assert_who(who, &socket_door, e);
    }
    for (who, e) in web_who.iter().zip(&by_web) {
        assert_who(who, &web_door, e);
    }
}

fn write_csv(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

// ---- The writes ----------------------------------------------------------------------

#[test]
fn scans_write_the_same_through_both_doors() {
    let p = Pair::start();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("doors-scan-{n:04}")
    };
    let connect = |src: &'static str, dst: &'static str, rid: String| {
        same_write(
            &p,
            Op::new(&format!("scan connect {src} {dst}"), "bob", &["scan.connect"]),
            |a| {
                a.ctl_ok(&["--operator", "bob", "scan", "connect", src, dst]);
            },
            || p.bob.post("/scanner/api/connect", &json!({"request_id": rid, "source": src, "target": dst})),
        );
    };
    connect("ANT00001P1", "LNA00001P1", id());
    // As scanned: lower case, as a keyboard-wedge scanner may send it.
    connect("lna00001p1", "cxs00001p1", id());

    let rid = id();
    same_write(
        &p,
        Op::new("scan disconnect", "bob", &["scan.disconnect"]),
        |a| {
            a.ctl_ok(&["--operator", "bob", "scan", "disconnect", "CXS00001P1", "LNA00001P1"]);
        },
        || {
            p.bob.post(
                "/scanner/api/disconnect",
                &json!({"request_id": rid, "part": "CXS00001P1", "other": "LNA00001P1"}),
            )
        },
    );

    connect("LNA00001P1", "CXS00001P1", id());
    connect("CXS00001P1", "CXL00001P1", id());
    // A part with two connections (one upstream, one downstream): both end.
    let rid = id();
    same_write(
        &p,
        Op::new("scan remove", "bob", &["scan.remove"]),
        |a| {
            a.ctl_ok(&["--operator", "bob", "scan", "remove", "CXS00001P1", "--yes"]);
        },
        || {
            p.bob.post(
                "/scanner/api/remove",
                &json!({"request_id": rid, "part": "CXS00001P1", "confirm": true}),
            )
        },
    );
    assert_eq!(
        sqlite(
            &p.b.data_dir.join("assembled_casm.db"),
            "SELECT source || '>' || target FROM active_connections"
        )
        .trim(),
        "ANT00001P1>LNA00001P1"
    );
}

#[test]
fn positions_write_the_same_through_both_doors() {
    let p = Pair::start();
    let assign = |what: &str, antenna: &str, code: &str, forced: &[&str], body: Value| {
        same_write(
            &p,
            Op::new(what, "bob", &["positions.assign"]),
            |a| {
                let mut args = vec!["--operator", "bob", "positions", "assign", antenna, code];
                args.extend_from_slice(&["--notes", "placed by the doors test"]);
                args.extend_from_slice(forced);
                a.ctl_ok(&args);
            },
            || {
                let mut body = body;
                body["antenna"] = json!(antenna);
                body["grid_code"] = json!(code);
                body["notes"] = json!("placed by the doors test");
                p.bob.post("/scanner/api/assign", &body)
            },
        );
    };
    assign("positions assign", "ANT00001P1", "CN002E03", &[], json!({"request_id": "doors-pos-0001"}));
    // Onto an occupied position: ANT00001 is evicted.
    assign(
        "positions assign evicting",
        "ANT00002",
        "CN002E03",
        &["--force"],
        json!({"request_id": "doors-pos-0002", "confirm_evict": "ANT00001"}),
    );
    // A placed antenna moves.
    assign(
        "positions assign moving",
        "ANT00002",
        "CC000E01",
        &["--force"],
        json!({"request_id": "doors-pos-0003", "confirm_move": "CN002E03"}),
    );
    assign("positions assign again", "ANT00003", "CN002E03", &[], json!({"request_id": "doors-pos-0004"}));
    // Both at once: moves from CC000E01 and evicts ANT00003.
    assign(
        "positions assign moving and evicting",
        "ANT00002P2",
        "CN002E03",
        &["--force"],
        json!({"request_id": "doors-pos-0005", "confirm_evict": "ANT00003", "confirm_move": "CC000E01"}),
    );
    assert_eq!(
        sqlite(
            &p.b.data_dir.join("parts.db"),
            "SELECT antenna_number || '@' || grid_code FROM antenna_positions"
        )
        .trim(),
        "ANT00002@CN002E03"
    );
}

#[test]
fn admin_parts_and_csv_loads_write_the_same_through_both_doors() {
    let p = Pair::start();
    let dir = tempfile::tempdir().unwrap();
    same_write(
        &p,
        Op::new("admin parts add", "alice", &["parts.add"]),
        |a| {
            a.ctl_ok(&["--operator", "alice", "parts", "add", "LNA", "2", "1"]);
        },
        || {
            p.alice.post(
                "/admin/api/add-parts",
                &json!({"request_id": "doors-add-0001", "part_type": "LNA", "polarization": "1", "count": 2}),
            )
        },
    );

    let boards = "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,101,00:29:c4:e8:01:0a,192.168.120.10,3,\n\
                  1,B,102,00:29:c4:e8:01:0b,192.168.120.11,4,rack 1\n";
    let path = write_csv(dir.path(), "boards.csv", boards);
    let web_name = web_source("boards.csv");
    same_write(
        &p,
        Op::new("admin load SNAP boards", "alice", &["database.load_snap_boards"]).sources(&path, &web_name),
        |a| {
            a.ctl_ok(&["--operator", "alice", "database", "load-snap-boards", "--csv", &path]);
        },
        || {
            p.alice.post(
                "/admin/api/load-snap-boards",
                &json!({"request_id": "doors-boards-0001", "csv": boards, "file_name": "boards.csv"}),
            )
        },
    );
    // Again: one board updated, one unchanged, one new (with a blank line).
    let boards = "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,101,00:29:c4:e8:01:0a,192.168.120.20,3,moved\n\
                  1,B,102,00:29:c4:e8:01:0b,192.168.120.11,4,rack 1\n , , , , , ,\n\
                  2,A,201,00:29:c4:e8:02:0a,192.168.120.30,5,\n";
    let path = write_csv(dir.path(), "boards-2.csv", boards);
    let web_name = web_source("boards-2.csv");
    same_write(
        &p,
        Op::new("admin load SNAP boards again", "alice", &["database.load_snap_boards"])
            .sources(&path, &web_name),
        |a| {
            a.ctl_ok(&["--operator", "alice", "database", "load-snap-boards", "--csv", &path]);
        },
        || {
            p.alice.post(
                "/admin/api/load-snap-boards",
                &json!({"request_id": "doors-boards-0002", "csv": boards, "file_name": "boards-2.csv"}),
            )
        },
    );

    // Coordinates: one position has an antenna (its coordinates are copied
    // onto it), a blank line is skipped.
    p.both_ctl(&["--operator", "setup", "positions", "assign", "ANT00001", "CN002E03"]);
    let coords = "grid_code,latitude,longitude,height,coordinate_system,notes\n\
                  CN002E03,37.2341,-118.2834,1183.81,WGS84,surveyed\n  ,  , , , ,\n\
                  CC000E01,37.2331,-118.2834,1183.75,,\n";
    let path = write_csv(dir.path(), "grid_positions.csv", coords);
    let web_name = web_source("grid_positions.csv");
    same_write(
        &p,
        Op::new("admin load coordinates", "alice", &["database.load_coordinates"]).sources(&path, &web_name),
        |a| {
            a.ctl_ok(&["--operator", "alice", "database", "load-coordinates", "--csv", &path]);
        },
        || {
            p.alice.post(
                "/admin/api/load-coordinates",
                &json!({"request_id": "doors-coords-0001", "csv": coords, "file_name": "grid_positions.csv"}),
            )
        },
    );
    let placed = sqlite(&p.b.data_dir.join("parts.db"), "SELECT latitude FROM antenna_positions");
    assert_eq!(placed.trim(), "37.2341", "the coordinates were copied onto the placed antenna");
}

#[test]
fn backup_now_stores_the_same_through_both_doors() {
    let p = Pair::start();
    p.both_ctl(&["--operator", "setup", "scan", "connect", "ANT00001P1", "LNA00001P1"]);
    p.both_ctl(&["--operator", "setup", "positions", "assign", "ANT00001", "CN002E03"]);
    same_write(
        &p,
        Op::new("admin backup now", "alice", &["sync.backup", "sync.backup"]),
        |a| {
            a.ctl_ok(&["--operator", "alice", "sync", "backup"]);
        },
        || p.alice.post("/admin/api/backup", &json!({"request_id": "doors-backup-0001"})),
    );
    // A version of each database was stored, the one the audit names.
    for db in ["parts.db", "assembled_casm.db"] {
        let version = |d: &Daemon| {
            let list = d.ctl_json(&["sync", "list", "--db", db]);
            let versions = list["backups"].as_array().unwrap().clone();
            assert_eq!(versions.len(), 1, "{db}: one version stored: {list}");
            let v = &versions[0];
            let audited = sqlite(
                &d.data_dir.join("state.db"),
                &format!(
                    "SELECT detail ->> 'key' FROM audit_log WHERE action = 'sync.backup' AND database = '{db}'"
                ),
            );
            assert_eq!(v["key"].as_str(), Some(audited.trim()), "{db}: the audit names the stored version");
            [
                "database",
                "reason",
                "site",
                "seq",
                "record_counts",
                "schema_version",
                "branch",
                "parent",
                "codec",
            ]
            .map(|k| (k, v[k].clone()))
        };
        assert_eq!(version(&p.a), version(&p.b), "{db}: the stored versions, casmanctl (left), web (right)");
    }
    assert_eq!(
        writes_since_backup(&p.a),
        "assembled_casm.db|0\nparts.db|0\n",
        "a backup resets the write counts: {}",
        writes_since_backup(&p.b)
    );
}

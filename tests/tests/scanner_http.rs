//! The field scanner's HTTP API (`/scanner/api/*`, `/admin/api/*`) against
//! the real daemon: sign-in, writes refused without it or cross-origin, the
//! chain rules' refusals (nothing written), request ids that record once,
//! the audit with operator and client address shown in the history,
//! positions with eviction confirmation, admin CSV loads all-or-nothing, and
//! HTTPS with `http.tls_cert`/`http.tls_key`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use casman_tests::{
    DEADLINE, Daemon, DaemonOpts,
    http::{Reply, free_port, request},
    sqlite, wait_for,
};
use serde_json::{Value, json};

/// A device: a port and the cookies it holds.
struct Phone {
    port: u16,
    cookie: Option<String>,
}

impl Phone {
    fn headers(&self, extra: &[&str]) -> Vec<String> {
        let mut h: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(c) = &self.cookie {
            h.push(format!("Cookie: {c}"));
        }
        h
    }

    fn get(&self, path: &str) -> Reply {
        let h = self.headers(&[]);
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        request(self.port, "GET", path, &h, None)
    }

    fn post_with(&self, path: &str, body: &Value, extra: &[&str]) -> Reply {
        let origin = format!("Origin: http://127.0.0.1:{}", self.port);
        let mut all = vec!["Content-Type: application/json", origin.as_str()];
        all.extend_from_slice(extra);
        let h = self.headers(&all);
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        request(self.port, "POST", path, &h, Some(&body.to_string()))
    }

    fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, &body, &[])
    }

    fn sign_in(port: u16, name: &str, token: &str) -> Phone {
        let p = Phone { port, cookie: None };
        let r = p.post("/scanner/api/signin", json!({"name": name, "token": token}));
        assert_eq!(r.status, 200, "sign-in as {name}: {}", r.body);
        Phone { port, cookie: Some(r.cookie("casman_operator")) }
    }
}

const SITE: &str = "site-token-01234";
const ALICE: &str = "alice-own-token-1";

fn daemon(port: u16) -> Daemon {
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{SITE}\"\n\
         [[http.operators]]\nname = \"alice\"\ntoken = \"{ALICE}\"\nadmin = true\n"
    );
    let d = Daemon::start_with(DaemonOpts::default().config(&config));
    for t in ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"] {
        d.ctl_ok(&["parts", "add", t, "3", "1"]);
        d.ctl_ok(&["parts", "add", t, "3", "2"]);
    }
    d
}

fn assembly_rows(d: &Daemon) -> String {
    sqlite(&d.data_dir.join("assembled_casm.db"), "SELECT count(*) FROM assembly").trim().to_owned()
}

#[test]
fn scanner_writes_need_sign_in_and_same_origin_and_record_once() {
    let port = free_port();
    let d = daemon(port);
    let anon = Phone { port, cookie: None };
    let connect = json!({"request_id": "req-0000001", "source": "ANT00001P1", "target": "LNA00001P1"});

    // The sign-in page is open; the rest needs a token or a sign-in.
    assert_eq!(anon.get("/scanner").status, 200);
    assert_eq!(anon.get("/chains").status, 401);
    assert_eq!(anon.post("/scanner/api/connect", connect.clone()).status, 401);
    // The site token lets one read, not write: writes need a signed-in operator.
    let bearer = format!("Authorization: Bearer {SITE}");
    let r = anon.post_with("/scanner/api/connect", &connect, &[&bearer]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("not signed in"), "{}", r.body);
    assert_eq!(assembly_rows(&d), "0");

    // A wrong token is refused; the site token signs in under any name.
    let r = anon.post("/scanner/api/signin", json!({"name": "bob", "token": "nope-nope"}));
    assert_eq!(r.status, 403, "{}", r.body);
    let bob = Phone::sign_in(port, "Bob", SITE);
    assert!(bob.get("/scanner/api/me").body.contains("\"operator\":\"Bob\""));
    assert_eq!(bob.get("/chains").status, 200, "a signed-in operator reads the views");

    // Cross-origin: another Origin, a cross-site fetch, or a form body.
    let evil = bob.headers(&["Content-Type: application/json", "Origin: http://evil.example"]);
    let evil: Vec<&str> = evil.iter().map(String::as_str).collect();
    let r = request(port, "POST", "/scanner/api/connect", &evil, Some(&connect.to_string()));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("cross-origin"), "{}", r.body);
    let r = bob.post_with("/scanner/api/connect", &connect, &["Sec-Fetch-Site: cross-site"]);
    assert_eq!(r.status, 403);
    let form = bob.headers(&["Content-Type: text/plain"]);
    let form: Vec<&str> = form.iter().map(String::as_str).collect();
    let r = request(port, "POST", "/scanner/api/connect", &form, Some(&connect.to_string()));
    assert!(r.status == 403 || r.status == 415, "{} {}", r.status, r.body);
    assert_eq!(assembly_rows(&d), "0");

    // Recorded once, however often the request id comes back.
    let r = bob.post("/scanner/api/connect", connect.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["message"], "Connected ANT00001P1 → LNA00001P1");
    for _ in 0..2 {
        let again = bob.post("/scanner/api/connect", connect.clone());
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.json()["replayed"], true);
    }
    assert_eq!(assembly_rows(&d), "1");
    // Two taps at once: still one row.
    let twice = json!({"request_id": "req-0000002", "source": "LNA00001P1", "target": "CXS00001P1"});
    std::thread::scope(|s| {
        let a = s.spawn(|| bob.post("/scanner/api/connect", twice.clone()));
        let b = s.spawn(|| bob.post("/scanner/api/connect", twice.clone()));
        assert_eq!(a.join().unwrap().status, 200);
        assert_eq!(b.join().unwrap().status, 200);
    });
    assert_eq!(assembly_rows(&d), "2");
    // The id is Bob's: another operator cannot reuse it.
    let alice = Phone::sign_in(port, "", ALICE);
    assert_eq!(alice.post("/scanner/api/connect", connect.clone()).status, 409);

    // The chain rules refuse, naming the rule and the connection in the way; nothing is written.
    let refusals = [
        ("ANT00002P1", "CXS00002P1", "can only connect to LNA"),
        ("LNA00002P1", "CXS00002P2", "Polarization mismatch"),
        ("ANT00002P1", "LNA00001P1", "already receives from ANT00001P1"),
        ("ANT00001P1", "LNA00003P1", "already connects to LNA00001P1"),
    ];
    for (i, (s, t, rule)) in refusals.iter().enumerate() {
        let check = bob.get(&format!("/scanner/api/check?source={s}&target={t}"));
        assert_eq!(check.status, 200, "{}", check.body);
        assert!(
            check.json()["problem"].as_str().unwrap_or("").contains(rule),
            "check {s} -> {t}: {}",
            check.body
        );
        let r = bob.post(
            "/scanner/api/connect",
            json!({"request_id": format!("refused-{i:04}"), "source": s, "target": t}),
        );
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains(rule), "{s} -> {t}: {}", r.body);
    }
    assert_eq!(assembly_rows(&d), "2");
    // As scanned: a source that already has its outgoing connection.
    let part = bob.get("/scanner/api/part?id=ant00001p1&role=source").json();
    assert!(part["problem"].as_str().unwrap().contains("one outgoing connection"), "{part}");
    assert_eq!(part["connections"][0]["target"], "LNA00001P1");

    // The audit names the operator and the client address; the history shows them.
    let audit = sqlite(
        &d.data_dir.join("state.db"),
        "SELECT operator, client FROM audit_log WHERE action = 'scan.connect' ORDER BY id",
    );
    assert_eq!(audit.lines().next(), Some("Bob|127.0.0.1"), "{audit}");
    d.ctl_ok(&["--operator", "carol", "scan", "connect", "ANT00002P1", "LNA00002P1"]);
    let h = bob.get("/scanner/api/history?part=LNA00001P1").json();
    let ev = &h["events"];
    assert_eq!(ev.as_array().unwrap().len(), 2, "{h}");
    assert_eq!(ev[1]["operator"], "Bob");
    assert_eq!(ev[1]["client"], "127.0.0.1");
    let h2 = bob.get("/scanner/api/history?part=ANT00002P1").json();
    assert_eq!(h2["events"][0]["operator"], "carol");
    assert_eq!(h2["events"][0]["client"], Value::Null);

    // Disconnect one connection, then remove everything of a part.
    let r = bob.post(
        "/scanner/api/disconnect",
        json!({"request_id": "disc-0000001", "part": "LNA00001P1", "other": "CXS00001P1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = bob.post("/scanner/api/remove", json!({"request_id": "remove-00001", "part": "LNA00001P1"}));
    assert_eq!(r.status, 400, "remove needs its confirmation: {}", r.body);
    let r = bob.post(
        "/scanner/api/remove",
        json!({"request_id": "remove-00001", "part": "LNA00001P1", "confirm": true}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ended"].as_array().unwrap().len(), 1);
    let now = bob.get("/scanner/api/part?id=LNA00001P1").json();
    assert_eq!(now["connections"].as_array().map_or(9, Vec::len), 0, "{now}");
    let h = bob.get("/scanner/api/history?part=LNA00001P1").json();
    assert_eq!(h["events"][0]["status"], "disconnected");
    assert_eq!(h["events"][0]["operator"], "Bob");
}

#[test]
fn positions_need_a_second_confirmation_to_evict_or_move() {
    let port = free_port();
    let d = daemon(port);
    let bob = Phone::sign_in(port, "bob", SITE);
    let preview = bob.get("/scanner/api/grid?array=C&direction=N&row=2&col=3&antenna=ANT00001").json();
    assert_eq!(preview["grid_code"], "CN002E03");
    assert_eq!(preview["occupant"], Value::Null);
    let bad = bob.get("/scanner/api/grid?array=C&direction=C&row=4&col=3");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Center row"), "{}", bad.body);

    let r = bob.post(
        "/scanner/api/assign",
        json!({"request_id": "assign-00001", "antenna": "ANT00001P1", "grid_code": "CN002E03"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // ANT00002 onto the same position: refused until the eviction is confirmed.
    let ask = json!({"request_id": "assign-00002", "antenna": "ANT00002", "grid_code": "CN002E03"});
    let r = bob.post("/scanner/api/assign", ask.clone());
    let j = r.json();
    assert_eq!(j["needs_confirmation"], true, "{j}");
    assert_eq!(j["evicts"], "ANT00001");
    assert!(j["error"].as_str().unwrap().contains("occupied by ANT00001"), "{j}");
    let at = |code: &str| {
        sqlite(
            &d.data_dir.join("parts.db"),
            &format!("SELECT antenna_number FROM antenna_positions WHERE grid_code = '{code}'"),
        )
        .trim()
        .to_owned()
    };
    assert_eq!(at("CN002E03"), "ANT00001", "nothing changed yet");
    // Confirming someone else is not confirming the occupant.
    let mut wrong = ask.clone();
    wrong["confirm_evict"] = json!("ANT00003");
    assert_eq!(bob.post("/scanner/api/assign", wrong).json()["needs_confirmation"], true);
    let mut yes = ask.clone();
    yes["confirm_evict"] = json!("ANT00001");
    let r = bob.post("/scanner/api/assign", yes);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("evicted ANT00001"), "{}", r.body);
    // Moving a placed antenna needs its own confirmation.
    let mv = json!({"request_id": "assign-00003", "antenna": "ANT00002", "grid_code": "CC000E01"});
    let j = bob.post("/scanner/api/assign", mv.clone()).json();
    assert_eq!(j["moves_from"], "CN002E03", "{j}");
    let mut yes = mv;
    yes["confirm_move"] = json!("CN002E03");
    assert_eq!(bob.post("/scanner/api/assign", yes).status, 200);
    assert_eq!(at("CC000E01"), "ANT00002");
    assert_eq!(at("CN002E03"), "");
    let audit = sqlite(
        &d.data_dir.join("state.db"),
        "SELECT count(*) FROM audit_log WHERE action = 'positions.assign' AND operator = 'bob' AND client = '127.0.0.1'",
    );
    assert_eq!(audit.trim(), "3");
}

#[test]
fn admin_loads_csv_all_or_nothing_and_is_for_admins() {
    let port = free_port();
    let d = daemon(port);
    let bob = Phone::sign_in(port, "bob", SITE);
    let add = json!({"request_id": "parts-000001", "part_type": "LNA", "polarization": "1", "count": 2});
    let r = bob.post("/admin/api/add-parts", add.clone());
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("not an admin"), "{}", r.body);
    let alice = Phone::sign_in(port, "alice", ALICE);
    assert!(alice.get("/scanner/api/me").body.contains("\"admin\":true"));
    let r = alice.post("/admin/api/add-parts", add.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["parts"], json!(["LNA00004P1", "LNA00005P1"]));
    // The batch's label sheet, for admins only.
    let url = r.json()["labels_url"].as_str().unwrap().to_owned();
    assert_eq!(url, "/admin/labels.pdf?parts=LNA00004P1,LNA00005P1");
    let sheet = alice.get(&url);
    assert_eq!(sheet.status, 200, "{}", sheet.body);
    assert!(sheet.headers.contains("content-type: application/pdf"), "{}", sheet.headers);
    assert!(sheet.headers.contains("labels_lna00004p1_lna00005p1.pdf"), "{}", sheet.headers);
    assert!(sheet.body.starts_with("%PDF-"), "a PDF");
    assert_eq!(bob.get(&url).status, 403);
    assert_eq!(alice.get("/admin/labels.pdf?parts=").status, 400);
    assert_eq!(alice.post("/admin/api/add-parts", add).json()["replayed"], true);
    let lnas = sqlite(
        &d.data_dir.join("parts.db"),
        "SELECT count(*) FROM parts WHERE part_type = 'LNA' AND polarization = 'P1'",
    );
    assert_eq!(lnas.trim(), "5");

    // A bad line: nothing loaded, the line named.
    let csv = "chassis,slot,sn,mac,ip,feng_id,notes\n1,A,101,00:29:c4:e8:01:0a,192.168.120.10,3,\n\
               1,Q,102,00:29:c4:e8:01:0b,192.168.120.11,4,\n";
    let r = alice.post(
        "/admin/api/load-snap-boards",
        json!({"request_id": "boards-00001", "csv": csv, "file_name": "b.csv"}),
    );
    let j = r.json();
    assert_eq!(j["ok"], false, "{j}");
    assert_eq!(j["problems"][0]["line"], 3, "{j}");
    assert_eq!(j["problems"][0]["field"], "slot", "{j}");
    assert_eq!(sqlite(&d.data_dir.join("parts.db"), "SELECT count(*) FROM snap_boards").trim(), "0");
    let good = csv.replace(",Q,", ",B,");
    let r = alice.post(
        "/admin/api/load-snap-boards",
        json!({"request_id": "boards-00002", "csv": good, "file_name": "b.csv"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sqlite(&d.data_dir.join("parts.db"), "SELECT count(*) FROM snap_boards").trim(), "2");

    let coords = "grid_code,latitude,longitude,height,coordinate_system,notes\nCC000E01,37.2,-118.2,1183.8,WGS84,\n\
                  CC000E02,north,-118.2,1183.8,WGS84,\n";
    let j = alice
        .post("/admin/api/load-coordinates", json!({"request_id": "coords-00001", "csv": coords}))
        .json();
    assert_eq!(j["problems"][0]["line"], 3, "{j}");
    assert_eq!(sqlite(&d.data_dir.join("parts.db"), "SELECT count(*) FROM grid_positions").trim(), "0");

    // Backup now (local store by default) and the sync status.
    let r = alice.post("/admin/api/backup", json!({"request_id": "backup-00001"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let s = alice.get("/admin/api/sync-status").json();
    let dbs = s["databases"].as_array().unwrap();
    assert!(dbs.iter().any(|x| x["database"] == "parts.db" && x["last_backup_at"].is_string()), "{s}");
    assert_eq!(bob.get("/admin/api/sync-status").status, 403);
}

#[test]
fn the_listener_speaks_https_with_a_certificate() {
    let (Ok(_), Ok(_)) =
        (Command::new("openssl").arg("version").output(), Command::new("curl").arg("--version").output())
    else {
        casman_tests::skip("needs openssl and curl");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = free_port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\nallow_without_token = true\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let _d = Daemon::start_with(DaemonOpts::default().config(&config));
    let url = format!("https://127.0.0.1:{port}/scanner/api/signin");
    let out = wait_for("the HTTPS listener", DEADLINE, || {
        let o = Command::new("curl")
            .args(["-sS", "-i", "--cacert"])
            .arg(&cert)
            .args(["-H", "Content-Type: application/json", "--data", r#"{"name":"ann","token":""}"#, &url])
            .output()
            .unwrap();
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let cookie = out.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie")).unwrap_or("");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Plain HTTP gets no page.
    let plain = Command::new("curl")
        .args(["-sS", "-m", "5", &format!("http://127.0.0.1:{port}/scanner")])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("<html"), "plain HTTP must not be served");
}

#[test]
fn a_bad_certificate_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("missing.pem");
    let port = free_port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\nallow_without_token = true\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        cert.display()
    );
    let opts = DaemonOpts::default().config(&config);
    let out = Daemon::command(dir.path(), &opts).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.tls_cert"), "{err}");
}

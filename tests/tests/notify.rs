//! Notifications (issue 31, `[notify]`), against the real binary: the
//! notify command (a shell script writing its stdin to a file) and a
//! webhook receiver on 127.0.0.1 each receive `backup_failing` exactly once
//! when the store stops answering for longer than `notify.after` (however
//! many retries), and `backup_recovered` exactly once when it answers
//! again; the success ping is called at most once per
//! `success_ping_every`; the URLs' secrets reach neither the log nor
//! `casmanctl config`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{os::unix::fs::PermissionsExt, path::Path};

use casman_tests::{DEADLINE, Daemon, Fault, FaultProxy, MotoServer, receiver::Receiver, wait_for};

const BUCKET: &str = "casman-notify";

/// A notify command appending each event (its stdin) and its
/// `CASMAN_EVENT` to `out`.
fn script(dir: &Path, out: &Path) -> std::path::PathBuf {
    let path = dir.join("notify.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{{ cat; echo \"env $CASMAN_EVENT $CASMAN_DATABASE $CASMAN_SITE\"; }} >> '{}'\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The events the command wrote to `out`, as JSON.
fn command_events(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(events: &[serde_json::Value], name: &str) -> usize {
    events.iter().filter(|e| e["event"] == name).count()
}

fn count_db(events: &[serde_json::Value], name: &str, db: &str) -> usize {
    events.iter().filter(|e| e["event"] == name && e["database"] == db).count()
}

fn webhook_events(r: &Receiver) -> Vec<serde_json::Value> {
    r.received().into_iter().filter(|q| q.target.starts_with("/hook/")).map(|q| q.json()).collect()
}

fn pings(r: &Receiver) -> usize {
    r.received().iter().filter(|q| q.target.starts_with("/ping/")).count()
}

fn failed_attempts(d: &Daemon) -> i64 {
    let st = d.ctl_json(&["status"]);
    st["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "assembled_casm.db")
        .and_then(|b| b["failed_attempts"].as_i64())
        .unwrap_or(0)
}

fn unsaved(d: &Daemon, db: &str) -> i64 {
    let st = d.ctl_json(&["status"]);
    st["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == db)
        .and_then(|b| b["unsaved_writes"].as_i64())
        .unwrap_or(-1)
}

#[test]
fn a_failing_store_is_told_once_and_its_recovery_once() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let p = FaultProxy::start(m.port);
    let hook = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("events.jsonl");
    let cmd = script(tmp.path(), &out);
    // Secrets in every part of the URLs: userinfo, path, query.
    let webhook =
        format!("http://ann:s3cr3t-pw@127.0.0.1:{}/hook/abc-path-secret?token=xyz-query-secret", hook.port);
    let ping = hook.url("/ping/0d9c1e5a-uuid-secret");
    let config = format!(
        "[notify]\ncommand = \"{}\"\nwebhook = \"{webhook}\"\nafter = \"2s\"\nsuccess_ping = \"{ping}\"\n\
         success_ping_every = \"1h\"\ntimeout = \"10s\"\n",
        cmd.display()
    );
    let d = Daemon::start_with(
        p.daemon_opts(BUCKET, "lab")
            .config(&config)
            .env("CASMAN_SYNC__RETRY_INITIAL", "200ms")
            .env("CASMAN_SYNC__RETRY_MAX", "500ms")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "20", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "20", "1"]);
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    // The scheduler's backup lands: the first success ping.
    wait_for("the first success ping", DEADLINE, || (pings(&hook) == 1).then_some(()));
    wait_for("both databases backed up", DEADLINE, || {
        (unsaved(&d, "assembled_casm.db") == 0 && unsaved(&d, "parts.db") == 0).then_some(())
    });

    // The store stops answering; the scheduler retries every half second.
    // (A parts.db backup still uploading when it stops fails and is told
    // too: the counts below are of assembled_casm.db's events.)
    p.inject("*", "", Fault::Status(500, "InternalError"), 1_000_000);
    let failed_at = std::time::Instant::now();
    d.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    let told = wait_for("backup_failing at the webhook", DEADLINE, || {
        let e = webhook_events(&hook);
        (count_db(&e, "backup_failing", "assembled_casm.db") == 1).then_some(e)
    });
    assert!(failed_at.elapsed().as_secs_f64() >= 1.9, "told before notify.after: {:?}", failed_at.elapsed());
    let e =
        told.iter().find(|e| e["event"] == "backup_failing" && e["database"] == "assembled_casm.db").unwrap();
    assert_eq!(e["database"], "assembled_casm.db", "{e}");
    assert_eq!(e["site"], "lab", "{e}");
    assert!(e["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("assembled_casm.db: backups failing for"), "{e}");
    assert!(e["details"]["attempts"].as_u64().unwrap() >= 1, "{e}");
    assert!(e["details"]["failing_seconds"].as_u64().unwrap() >= 1, "{e}");
    assert!(e["details"]["error"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
    wait_for("backup_failing from the command", DEADLINE, || {
        (count_db(&command_events(&out), "backup_failing", "assembled_casm.db") == 1).then_some(())
    });
    // The userinfo went as Basic authentication, the query as sent.
    let q = hook.received().into_iter().find(|q| q.target.starts_with("/hook/")).unwrap();
    assert_eq!(q.method, "POST");
    assert_eq!(q.target, "/hook/abc-path-secret?token=xyz-query-secret");
    assert_eq!(q.header("authorization"), Some("Basic YW5uOnMzY3IzdC1wdw=="));
    assert_eq!(q.header("content-type"), Some("application/json"));

    // Many more retries: still told once.
    let attempts = failed_attempts(&d);
    wait_for("four more failed attempts", DEADLINE, || (failed_attempts(&d) >= attempts + 4).then_some(()));
    assert_eq!(count_db(&webhook_events(&hook), "backup_failing", "assembled_casm.db"), 1);
    assert_eq!(count_db(&command_events(&out), "backup_failing", "assembled_casm.db"), 1);

    // The store answers again: the retry lands, recovery told once.
    p.clear();
    wait_for("backup_recovered at the webhook", DEADLINE, || {
        (count_db(&webhook_events(&hook), "backup_recovered", "assembled_casm.db") == 1).then_some(())
    });
    wait_for("backup_recovered from the command", DEADLINE, || {
        (count_db(&command_events(&out), "backup_recovered", "assembled_casm.db") == 1).then_some(())
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("env backup_failing assembled_casm.db lab"), "{text}");
    assert!(text.contains("env backup_recovered assembled_casm.db lab"), "{text}");

    // Another backup: no new event, and no second ping within the hour.
    d.ctl_ok(&["scan", "connect", "ANT00003P1", "LNA00003P1"]);
    wait_for("the third write backed up", DEADLINE, || (unsaved(&d, "assembled_casm.db") == 0).then_some(()));
    let e = webhook_events(&hook);
    assert_eq!(
        (
            count_db(&e, "backup_failing", "assembled_casm.db"),
            count_db(&e, "backup_recovered", "assembled_casm.db")
        ),
        (1, 1),
        "{e:?}"
    );
    assert_eq!(
        command_events(&out).iter().filter(|e| e["database"] == "assembled_casm.db").count(),
        2,
        "{text}"
    );
    assert_eq!(pings(&hook), 1, "at most one ping per success_ping_every");
    let ping_req = hook.received().into_iter().find(|q| q.target.starts_with("/ping/")).unwrap();
    assert_eq!(ping_req.method, "GET");

    // The URLs' secrets are in neither the log nor casmanctl config.
    let shown = format!("{}\n{}", d.log_text(), d.ctl_ok(&["config"]));
    for secret in ["s3cr3t-pw", "abc-path-secret", "xyz-query-secret", "uuid-secret"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(d.log_text().contains("notify: webhook delivered"), "{}", d.log_text());
}

#[test]
fn a_webhook_that_fails_is_retried_until_it_takes_the_event() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let p = FaultProxy::start(m.port);
    let hook = Receiver::start();
    // The first two deliveries fail (503, then 429): retried with backoff.
    hook.fail_next(&[503, 429]);
    let config =
        format!("[notify]\nwebhook = \"{}\"\nafter = \"1h\"\nafter_attempts = 2\n", hook.url("/hook/x"));
    let d = Daemon::start_with(
        p.daemon_opts(BUCKET, "lab")
            .config(&config)
            .env("CASMAN_SYNC__RETRY_INITIAL", "200ms")
            .env("CASMAN_SYNC__RETRY_MAX", "500ms")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "20", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "20", "1"]);
    p.inject("*", "", Fault::Status(500, "InternalError"), 1_000_000);
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    // after_attempts = 2: told at the second failure, long before `after`
    // (for both databases: the parts were backed up too).
    let got = wait_for("the first event taken at its third delivery", DEADLINE, || {
        let r = hook.received();
        (r.len() >= 3).then_some(r)
    });
    assert!(got.iter().all(|q| q.json()["event"] == "backup_failing"), "{got:?}");
    assert_eq!(got[0].body, got[1].body, "the same event, retried");
    assert_eq!(got[0].body, got[2].body, "the same event, retried");
    // Delivered: the first event is not sent again, and each database's
    // failure is one event, however many retries follow.
    wait_for("two more failed attempts", DEADLINE, || (failed_attempts(&d) >= 4).then_some(()));
    let all = hook.received();
    for db in ["assembled_casm.db", "parts.db"] {
        let mut bodies: Vec<&str> =
            all.iter().filter(|q| q.json()["database"] == db).map(|q| q.body.as_str()).collect();
        bodies.dedup();
        assert!(bodies.len() <= 1, "{db}: {bodies:?}");
    }
    let first = all.iter().filter(|q| q.body == got[0].body).count();
    assert_eq!(first, 3, "{all:?}");
    assert!(d.log_text().contains("notify: webhook delivered"), "{}", d.log_text());
}

#[test]
fn on_failure_unit_tells_the_daemon_failed() {
    // What systemd/casman-notify-failure@.service runs when casmand fails.
    let hook = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("events.jsonl");
    let cmd = script(tmp.path(), &out);
    let opts = casman_tests::DaemonOpts::default().config(&format!(
        "site_id = \"field-2\"\n[notify]\ncommand = \"{}\"\nwebhook = \"{}\"\n",
        cmd.display(),
        hook.url("/hook/t?token=abc")
    ));
    let status = Daemon::command(tmp.path(), &opts)
        .arg("--notify-failed")
        .arg("casmand.service")
        .env("MONITOR_SERVICE_RESULT", "watchdog")
        .env("MONITOR_EXIT_CODE", "killed")
        .env("MONITOR_EXIT_STATUS", "ABRT")
        .status()
        .unwrap();
    assert!(status.success());
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let e = got[0].json();
    assert_eq!(e["event"], "daemon_failed", "{e}");
    assert_eq!(e["site"], "field-2", "{e}");
    assert!(e["database"].is_null(), "{e}");
    assert_eq!(e["details"]["unit"], "casmand.service", "{e}");
    assert_eq!(e["details"]["service_result"], "watchdog", "{e}");
    assert!(
        e["message"].as_str().unwrap().starts_with("casmand.service failed (watchdog: killed ABRT)"),
        "{e}"
    );
    assert_eq!(command_events(&out), vec![e]);
    // Nothing configured to tell: a failure, said plainly.
    let bare = Daemon::command(tmp.path(), &casman_tests::DaemonOpts::default())
        .arg("--notify-failed")
        .arg("casmand.service")
        .output()
        .unwrap();
    assert!(!bare.status.success());
    assert!(String::from_utf8_lossy(&bare.stderr).contains("nothing to tell"), "{bare:?}");
}

#[test]
fn a_lost_and_a_truncated_manifest_are_told_and_so_are_their_repairs() {
    let hook = Receiver::start();
    let d = Daemon::start_with(
        casman_tests::DaemonOpts::default()
            .env("CASMAN_SITE_ID", "lab")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
            .config(&format!("[notify]\nwebhook = \"{}\"\n", hook.url("/hook/i"))),
    );
    for n in ["3", "2"] {
        d.ctl_ok(&["parts", "add", "ANTENNA", n, "1"]);
        d.ctl_ok(&["sync", "backup", "--parts"]);
    }
    let manifest = d.data_dir.join("backups/backups/parts.db/MANIFEST.json");
    let events = || -> Vec<serde_json::Value> { hook.received().iter().map(|q| q.json()).collect() };

    // Deleted: found missing at the next read, rebuilt from the objects.
    std::fs::remove_file(&manifest).unwrap();
    assert_eq!(d.ctl_json(&["sync", "list", "--db", "parts.db"])["backups"].as_array().unwrap().len(), 2);
    let got = wait_for("index_lost and index_repaired", DEADLINE, || {
        let e = events();
        (e.len() >= 2).then_some(e)
    });
    assert_eq!(got[0]["event"], "index_lost", "{got:?}");
    assert_eq!(got[0]["database"], "parts.db", "{got:?}");
    assert_eq!(got[0]["details"]["objects"], 2, "{got:?}");
    assert!(got[0]["message"].as_str().unwrap().contains("MANIFEST.json is missing"), "{got:?}");
    assert_eq!(got[1]["event"], "index_repaired", "{got:?}");
    assert_eq!(got[1]["details"]["versions"], 2, "{got:?}");

    // Truncated: every read refuses (told once), `sync repair` rebuilds it.
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() / 2]).unwrap();
    for _ in 0..3 {
        assert!(!d.ctl(&["sync", "list", "--db", "parts.db"]).status.success());
    }
    d.ctl_ok(&["sync", "repair", "--parts"]);
    let got = wait_for("a second index_lost and index_repaired", DEADLINE, || {
        let e = events();
        (e.len() >= 4).then_some(e)
    });
    assert_eq!(got[2]["event"], "index_lost", "{got:?}");
    assert!(got[2]["details"]["problem"].as_str().unwrap().contains("not valid JSON"), "{got:?}");
    assert_eq!(got[3]["event"], "index_repaired", "{got:?}");
    assert_eq!(events().len(), 4, "each told once: {:?}", events());
}

#[test]
fn a_full_data_disk_is_told_once() {
    let dir = tempfile::Builder::new().prefix("casman-e2e-").tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&data)
        .output()
        .map(|o| o.status.success());
    if mounted.as_ref().ok() != Some(&true) {
        return casman_tests::skip(&format!(
            "cannot mount a tmpfs at {} (needs root): {mounted:?}",
            data.display()
        ));
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(data.clone());
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().join("events.jsonl");
    let cmd = script(outside.path(), &out);
    let d = Daemon::start_in(
        dir,
        casman_tests::DaemonOpts::default()
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
            .config(&format!("[notify]\ncommand = \"{}\"\n", cmd.display())),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "5", "1"]);
    // Fill the file system to the last block.
    let mut f = std::fs::File::create(data.join("filler")).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).and_then(|()| f.sync_all()).is_ok() {}
    let got = wait_for("disk_full from the command", DEADLINE, || {
        let e = command_events(&out);
        (count(&e, "disk_full") >= 1).then_some(e)
    });
    let e = got.iter().find(|e| e["event"] == "disk_full").unwrap();
    assert!(e["message"].as_str().unwrap().contains(data.to_str().unwrap()), "{e}");
    assert!(e["database"].is_null(), "{e}");
    // A refused write meanwhile adds no event (later checks while it stays
    // full are the gate's unit test: a_full_disk_is_told_once_until_space_returns).
    let _ = d.ctl(&["parts", "add", "COAXLONG", "40000", "1"]);
    d.ctl_ok(&["status"]);
    assert_eq!(count(&command_events(&out), "disk_full"), 1);
}

#[test]
fn a_stored_version_failing_verification_is_told_once() {
    let hook = Receiver::start();
    let d = Daemon::start_with(
        casman_tests::DaemonOpts::default()
            .env("CASMAN_SITE_ID", "lab")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
            .config(&format!("[notify]\nwebhook = \"{}\"\n", hook.url("/hook/v"))),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let v = d.ctl_json(&["sync", "backup", "--parts"])["backups"][0].clone();
    let key = v["key"].as_str().unwrap().to_owned();
    // The stored object damaged in its middle, same size. (A single flipped
    // bit can land where the decoder ignores it, and then nothing fails:
    // 64 complemented bytes cannot.)
    let path = d.data_dir.join("backups").join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let (mid, len) = (bytes.len() / 2, bytes.len());
    for b in &mut bytes[mid.saturating_sub(32)..(mid + 32).min(len)] {
        *b ^= 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    for _ in 0..2 {
        let _ = d.ctl(&["sync", "maintain"]);
    }
    let got = wait_for("verify_failed at the webhook", DEADLINE, || {
        let e: Vec<serde_json::Value> = hook.received().iter().map(|q| q.json()).collect();
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(got[0]["event"], "verify_failed", "{got:?}");
    assert_eq!(got[0]["database"], "parts.db", "{got:?}");
    assert_eq!(got[0]["details"]["key"], key.as_str(), "{got:?}");
    assert!(got[0]["details"]["problem"].as_str().is_some_and(|p| !p.is_empty()), "{got:?}");
    // Checked again by the second run (a failed version is re-checked): told once.
    let st = d.ctl_json(&["status"]);
    let parts = st["backups"].as_array().unwrap().iter().find(|b| b["name"] == "parts.db").unwrap().clone();
    assert_eq!(parts["failed_verifications"], 1, "{st}");
    assert_eq!(hook.received().len(), 1, "{:?}", hook.received());
}

#[test]
fn the_quota_warning_and_block_are_told_once_each() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let hook = Receiver::start();
    let d = Daemon::start_with(
        m.daemon_opts(BUCKET, "lab")
            .env("CASMAN_QUOTA__CLASS_A_OPERATIONS", "100")
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000")
            .config(&format!("[notify]\nwebhook = \"{}\"\n", hook.url("/hook/q"))),
    );
    let mut n = 0;
    wait_for("a backup refused by the quota", DEADLINE, || {
        n += 1;
        assert!(n < 100, "never blocked");
        d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
        (!d.ctl(&["sync", "backup", "--parts"]).status.success()).then_some(())
    });
    // Refused again: not told again.
    for _ in 0..3 {
        assert!(!d.ctl(&["sync", "backup", "--parts"]).status.success());
    }
    let events = || -> Vec<serde_json::Value> { hook.received().iter().map(|q| q.json()).collect() };
    let got = wait_for("quota_blocked at the webhook", DEADLINE, || {
        let e = events();
        (count(&e, "quota_blocked") >= 1).then_some(e)
    });
    let month = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m").to_string();
    let blocked = got.iter().find(|e| e["event"] == "quota_blocked").unwrap();
    assert!(blocked["database"].is_null(), "{blocked}");
    assert_eq!(blocked["details"]["resource"], "class_a", "{blocked}");
    assert_eq!(blocked["details"]["month"], month.as_str(), "{blocked}");
    assert!(blocked["details"]["used_ratio"].as_f64().unwrap() >= 0.95, "{blocked}");
    assert_eq!(blocked["details"]["threshold"], 0.95, "{blocked}");
    let e = events();
    assert_eq!(count(&e, "quota_blocked"), 1, "{e:?}");
    // Passed on the way up (unless one backup jumped over the 80-95 % band).
    assert!(count(&e, "quota_warning") <= 1, "{e:?}");
    if let Some(w) = e.iter().find(|e| e["event"] == "quota_warning") {
        assert_eq!(w["details"]["resource"], "class_a", "{w}");
    }
}

#[test]
fn the_success_ping_goes_over_https_with_the_system_roots() {
    // A self-signed certificate for 127.0.0.1, made the daemon's only root
    // (rustls-native-certs reads SSL_CERT_FILE), served by `openssl s_server`.
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        // A leaf, not a CA (webpki refuses a CA certificate as the server's).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        return casman_tests::skip(&format!("cannot make a certificate with openssl: {made:?}"));
    }
    let port = casman_tests::http::free_port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("openssl s_server listening", DEADLINE, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let d = Daemon::start_with(
        casman_tests::DaemonOpts::default()
            .env("SSL_CERT_FILE", &cert)
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1")
            .config(&format!("[notify]\nsuccess_ping = \"https://127.0.0.1:{port}/ping/uuid-secret\"\n")),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "1", "1"]);
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    let log = wait_for("the success ping sent", DEADLINE, || {
        let log = d.log_text();
        (log.contains("notify: success ping sent") || log.contains("success ping failed")).then_some(log)
    });
    let _ = server.kill();
    let _ = server.wait();
    assert!(log.contains("notify: success ping sent"), "{log}");
    assert!(log.contains(&format!("https://127.0.0.1:{port}/<redacted>")), "{log}");
    assert!(!log.contains("uuid-secret"), "{log}");
}

#[test]
fn a_failure_told_before_a_restart_is_told_recovered_after_it() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let p = FaultProxy::start(m.port);
    let hook = Receiver::start();
    let mut d = Daemon::start_with(
        p.daemon_opts(BUCKET, "lab")
            .config(&format!("[notify]\nwebhook = \"{}\"\nafter = \"1s\"\n", hook.url("/hook/r")))
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__RETRY_INITIAL", "200ms")
            .env("CASMAN_SYNC__RETRY_MAX", "500ms")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "2", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    wait_for("parts.db backed up", DEADLINE, || (unsaved(&d, "parts.db") == 0).then_some(()));
    p.inject("*", "", Fault::Status(500, "InternalError"), 1_000_000);
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    let ours = || -> Vec<serde_json::Value> {
        hook.received().iter().map(|q| q.json()).filter(|e| e["database"] == "assembled_casm.db").collect()
    };
    wait_for("backup_failing", DEADLINE, || (count(&ours(), "backup_failing") == 1).then_some(()));
    // Stopped while failing; the store comes back while casmand is down.
    d.terminate();
    p.clear();
    d.restart();
    // The first attempt lands: this process never told the failure, state.db
    // says it lasted past `after`.
    wait_for("backup_recovered after the restart", DEADLINE, || {
        (count(&ours(), "backup_recovered") == 1).then_some(())
    });
    let e = ours();
    assert_eq!(count(&e, "backup_failing"), 1, "{e:?}");
    let back = e.iter().find(|e| e["event"] == "backup_recovered").unwrap();
    assert!(back["details"]["failing_seconds"].as_u64().unwrap() >= 1, "{back}");
}

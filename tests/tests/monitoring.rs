//! Monitoring (issue 31): `/metrics` on the web listener (token rules of the
//! views, the Prometheus text format checked strictly, and by `promtool`
//! when installed), its figures against the state and in `casmanctl status
//! --json`; the health of `casman.v1.Backups` in `grpc.health.v1`,
//! `casmanctl status --check` and `/status` turning when the store stops
//! answering (through the fault proxy) and back once a backup lands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    process::{Command, Stdio},
};

use casman_tests::{
    DEADLINE, Daemon, Fault, FaultProxy, MotoServer,
    http::{free_port, get},
    wait_for,
};

const BUCKET: &str = "casman-monitoring";
const TOKEN: &str = "monitoring-token-0123456789";

fn web_config(port: u16) -> String {
    format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n")
}

fn setup(extra_env: &[(&str, &str)]) -> (MotoServer, FaultProxy, Daemon, u16) {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let p = FaultProxy::start(m.port);
    let port = free_port();
    let mut opts = p
        .daemon_opts(BUCKET, "lab")
        .config(&web_config(port))
        .env("CASMAN_SYNC__RETRY_INITIAL", "200ms")
        .env("CASMAN_SYNC__RETRY_MAX", "1s")
        .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1000");
    for (k, v) in extra_env {
        opts = opts.env(k, *v);
    }
    let d = Daemon::start_with(opts);
    d.ctl_ok(&["parts", "add", "ANTENNA", "20", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "20", "1"]);
    (m, p, d, port)
}

fn connect(d: &Daemon, i: u32) {
    d.ctl_ok(&["scan", "connect", &format!("ANT{i:05}P1"), &format!("LNA{i:05}P1")]);
}

/// `/metrics` with the token, checked strictly; (series, value) pairs.
fn metrics(port: u16) -> (String, Vec<(String, f64)>) {
    let r = get(port, "/metrics", &[&format!("Authorization: Bearer {TOKEN}")]);
    assert_eq!(r.status, 200, "{}\n{}", r.headers, r.body);
    assert!(
        r.headers.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    let samples = casmand::metrics::parse_strict(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body));
    (r.body, samples)
}

fn sample(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

fn now_secs() -> f64 {
    jiff::Timestamp::now().as_second() as f64
}

/// `promtool check metrics` on `text`, when Debian's `prometheus` is
/// installed (tests/run installs it).
fn promtool(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return casman_tests::skip("promtool check metrics: no promtool (tests/run installs prometheus)");
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `grpc.health.v1.Health/Check` of `service` through grpcio: the status
/// number (1 SERVING, 2 NOT_SERVING), `None` without a Python with grpcio.
fn grpc_health(d: &Daemon, service: &str) -> Option<u8> {
    let python = casman_tests::grpcio_python()?;
    let script = r#"
import sys, grpc
channel = grpc.insecure_channel("unix://" + sys.argv[1])
name = sys.argv[2].encode()
reply = channel.unary_unary("/grpc.health.v1.Health/Check")(b"\x0a" + bytes([len(name)]) + name, timeout=10)
print(reply[1] if len(reply) == 2 else 0)
"#;
    let out = Command::new(python).args(["-c", script]).arg(&d.socket).arg(service).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

/// The first answer of `grpc.health.v1.Health/Watch` of `service` (the
/// current status), `None` without a Python with grpcio.
fn grpc_watch_first(d: &Daemon, service: &str) -> Option<u8> {
    let python = casman_tests::grpcio_python()?;
    let script = r#"
import sys, grpc
channel = grpc.insecure_channel("unix://" + sys.argv[1])
name = sys.argv[2].encode()
stream = channel.unary_stream("/grpc.health.v1.Health/Watch")(b"\x0a" + bytes([len(name)]) + name, timeout=10)
reply = next(iter(stream))
print(reply[1] if len(reply) == 2 else 0)
stream.cancel()
"#;
    let out = Command::new(python).args(["-c", script]).arg(&d.socket).arg(service).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

/// `casmanctl status --check`: (exit code, stdout).
fn check(d: &Daemon) -> (i32, String) {
    let out = d.ctl(&["status", "--check"]);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn metrics_follow_the_state_under_the_views_token_rules() {
    let (_m, _p, d, port) = setup(&[]);
    // Without the token: refused like every view.
    let r = get(port, "/metrics", &[]);
    assert!(r.status == 401 || r.status == 403, "{}: {}", r.status, r.body);
    assert!(!r.body.contains("casman_up"));

    for i in 1..=3 {
        connect(&d, i);
    }
    const UNSAVED: &str = "casman_unsaved_writes{database=\"assembled_casm.db\"}";
    let (text, s) = wait_for("3 unsaved writes in /metrics", DEADLINE, || {
        let (text, s) = metrics(port);
        (sample(&s, UNSAVED) == Some(3.0)).then_some((text, s))
    });
    promtool(&text);
    assert_eq!(sample(&s, "casman_up"), Some(1.0));
    assert!(text.contains("# TYPE casman_unsaved_writes gauge"), "{text}");
    let age = sample(&s, "casman_oldest_unsaved_write_age_seconds{database=\"assembled_casm.db\"}").unwrap();
    assert!((0.0..600.0).contains(&age), "{age}");
    assert_eq!(sample(&s, "casman_backup_failed_attempts{database=\"assembled_casm.db\"}"), Some(0.0));
    assert_eq!(sample(&s, "casman_spooled_versions{database=\"assembled_casm.db\"}"), Some(0.0));
    assert_eq!(sample(&s, "casman_health_backup_serving"), Some(1.0));
    for resource in ["class_a", "class_b", "storage"] {
        let v = sample(&s, &format!("casman_quota_used_ratio{{resource=\"{resource}\"}}")).unwrap();
        assert!((0.0..1.0).contains(&v), "{resource}: {v}");
    }
    assert!(text.contains("casman_build_info{version=\""), "{text}");
    // Never backed up: no made-up time.
    assert_eq!(
        sample(&s, "casman_backup_last_success_timestamp_seconds{database=\"assembled_casm.db\"}"),
        None
    );

    // The same figures in `casmanctl status --json`.
    let st = d.ctl_json(&["status"]);
    let asm = st["backups"].as_array().unwrap().iter().find(|b| b["name"] == "assembled_casm.db").unwrap();
    assert_eq!(asm["unsaved_writes"], 3, "{st}");
    assert_eq!(asm["last_backup_at"], "", "{st}");
    assert_eq!(st["health"]["serving"], true, "{st}");
    assert_eq!(st["health"]["backup_stale_after_seconds"], 6 * 3600, "{st}");
    assert!(st["quota"]["class_a_fraction"].as_f64().is_some(), "{st}");
    let (code, out) = check(&d);
    assert_eq!((code, out.trim()), (0, "ok: backups are healthy"));

    // A backup: nothing unsaved, a recent last success.
    d.ctl_ok(&["sync", "backup"]);
    let (text, s) = metrics(port);
    promtool(&text);
    assert_eq!(sample(&s, UNSAVED), Some(0.0), "{text}");
    assert_eq!(
        sample(&s, "casman_oldest_unsaved_write_age_seconds{database=\"assembled_casm.db\"}"),
        Some(0.0)
    );
    let last =
        sample(&s, "casman_backup_last_success_timestamp_seconds{database=\"assembled_casm.db\"}").unwrap();
    assert!((now_secs() - last).abs() < 300.0, "{last}");
    let age = sample(&s, "casman_backup_last_success_age_seconds{database=\"assembled_casm.db\"}").unwrap();
    assert!(age < 300.0, "{age}");
    let st = d.ctl_json(&["status"]);
    let asm = st["backups"].as_array().unwrap().iter().find(|b| b["name"] == "assembled_casm.db").unwrap();
    assert_eq!(asm["unsaved_writes"], 0, "{st}");
    assert_ne!(asm["last_backup_at"], "", "{st}");

    // Maintenance checks the stored versions: the last check and no failure.
    d.ctl_ok(&["sync", "maintain"]);
    let (text, s) = metrics(port);
    promtool(&text);
    let verified = sample(&s, "casman_verify_last_age_seconds{database=\"assembled_casm.db\"}");
    assert!(verified.is_some_and(|a| a < 300.0), "{text}");
    assert_eq!(sample(&s, "casman_verify_failed_versions{database=\"assembled_casm.db\"}"), Some(0.0));

    // The example alert rules parse and name only metrics casmand exports.
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus/casman-alerts.yml");
    let yaml = std::fs::read_to_string(&rules).unwrap();
    let mut named: Vec<&str> = yaml
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("casman_"))
        .collect();
    named.sort_unstable();
    named.dedup();
    assert!(named.len() >= 8, "{named:?}");
    for name in named {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} is not exported:\n{text}");
    }
    promtool_rules(&rules);
}

/// `promtool check rules` on `path`, when promtool is installed.
fn promtool_rules(path: &std::path::Path) {
    let Ok(out) = Command::new("promtool").args(["check", "rules"]).arg(path).output() else {
        return casman_tests::skip("promtool check rules: no promtool (tests/run installs prometheus)");
    };
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn backup_health_turns_when_the_store_fails_and_back_when_a_backup_lands() {
    // Every write is backed up at once by the scheduler.
    let (_m, p, d, port) = setup(&[("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "1")]);
    d.ctl_ok(&["sync", "backup"]);
    assert_eq!(check(&d).0, 0);
    if let Some(s) = grpc_health(&d, "casman.v1.Backups") {
        assert_eq!(s, 1, "SERVING");
    }

    // The store stops answering; a backup fails and waits for a retry.
    p.inject("*", "", Fault::Status(500, "InternalError"), 1_000_000);
    connect(&d, 1);
    let (code, out) = wait_for("status --check to report the failing backup", DEADLINE, || {
        let (code, out) = check(&d);
        (code != 0).then_some((code, out))
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|l| l.starts_with("PROBLEM: assembled_casm.db: backups failing")), "{out}");
    assert!(!out.contains("ok:"), "{out}");
    if let Some(s) = grpc_health(&d, "casman.v1.Backups") {
        assert_eq!(s, 2, "NOT_SERVING");
    }
    // The server as a whole and the other services keep serving.
    if let Some(s) = grpc_health(&d, "") {
        assert_eq!(s, 1);
    }
    if let Some(s) = grpc_health(&d, "casman.v1.Parts") {
        assert_eq!(s, 1);
    }
    let (_, s) = metrics(port);
    assert_eq!(sample(&s, "casman_health_backup_serving"), Some(0.0));
    assert!(sample(&s, "casman_backup_failed_attempts{database=\"assembled_casm.db\"}").unwrap() >= 1.0);
    assert_eq!(sample(&s, "casman_backup_pending_retry{database=\"assembled_casm.db\"}"), Some(1.0));
    let page = get(port, "/status", &[&format!("Authorization: Bearer {TOKEN}")]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("assembled_casm.db: backups failing"), "{}", page.body);

    // The store answers again: the retry lands and health returns.
    p.clear();
    wait_for("status --check ok again", DEADLINE, || (check(&d).0 == 0).then_some(()));
    if let Some(s) = grpc_health(&d, "casman.v1.Backups") {
        assert_eq!(s, 1, "SERVING again");
    }
    let (_, s) = metrics(port);
    assert_eq!(sample(&s, "casman_health_backup_serving"), Some(1.0));
    let page = get(port, "/status", &[&format!("Authorization: Bearer {TOKEN}")]);
    assert!(page.body.contains("ok: backups are healthy"), "{}", page.body);
}

#[test]
fn unsaved_writes_older_than_backup_stale_after_are_a_problem() {
    let (_m, _p, d, port) = setup(&[("CASMAN_HEALTH__BACKUP_STALE_AFTER", "1s")]);
    d.ctl_ok(&["sync", "backup"]);
    connect(&d, 1);
    // No backup is due (1000 writes, 24 h): the write goes stale.
    let (code, out) = wait_for("the write reported stale", DEADLINE, || {
        let (code, out) = check(&d);
        (code != 0).then_some((code, out))
    });
    assert_eq!(code, 1);
    assert!(
        out.contains("PROBLEM: assembled_casm.db: 1 write(s) not backed up")
            && out.contains("health.backup_stale_after 1s"),
        "{out}"
    );
    if let Some(s) = grpc_health(&d, "casman.v1.Backups") {
        assert_eq!(s, 2);
    }
    if let Some(s) = grpc_watch_first(&d, "casman.v1.Backups") {
        assert_eq!(s, 2, "Watch starts with the current status");
    }
    let st = d.ctl_json(&["status"]);
    assert_eq!(st["health"]["serving"], false, "{st}");
    d.ctl_ok(&["sync", "backup"]);
    assert_eq!(check(&d).0, 0);
    let (_, s) = metrics(port);
    assert_eq!(sample(&s, "casman_health_backup_serving"), Some(1.0));
    if let Some(s) = grpc_watch_first(&d, "casman.v1.Backups") {
        assert_eq!(s, 1);
    }
}

#[test]
fn rpc_counts_latencies_and_group_commit_batches_grow_with_requests() {
    let (_m, _p, d, port) = setup(&[]);
    const LIST_OK: &str = "casman_rpc_requests_total{method=\"casman.v1.Parts/ListParts\",code=\"OK\"}";
    const LIST_COUNT: &str = "casman_rpc_duration_seconds_count{method=\"casman.v1.Parts/ListParts\"}";
    const CONNECT_BAD: &str =
        "casman_rpc_requests_total{method=\"casman.v1.Assembly/Connect\",code=\"INVALID_ARGUMENT\"}";
    let (_, before) = metrics(port);
    let list_before = sample(&before, LIST_OK).unwrap_or(0.0);
    let batches_before = sample(&before, "casman_group_commit_batch_size_count").unwrap_or(0.0);
    d.ctl_ok(&["parts", "list"]);
    d.ctl_ok(&["parts", "list"]);
    connect(&d, 1);
    // A malformed part number: refused with INVALID_ARGUMENT, counted as such.
    let out = d.ctl(&["scan", "connect", "NOTAPART", "LNA00002P1"]);
    assert!(!out.status.success());
    let (text, after) = metrics(port);
    promtool(&text);
    assert!(text.contains("# TYPE casman_rpc_requests_total counter"), "{text}");
    assert!(text.contains("# TYPE casman_rpc_duration_seconds histogram"), "{text}");
    assert!(text.contains("# TYPE casman_group_commit_batch_size histogram"), "{text}");
    assert_eq!(sample(&after, LIST_OK), Some(list_before + 2.0), "{text}");
    assert!(sample(&after, LIST_COUNT).unwrap() >= list_before + 2.0, "{text}");
    let inf = sample(
        &after,
        "casman_rpc_duration_seconds_bucket{method=\"casman.v1.Parts/ListParts\",le=\"+Inf\"}",
    );
    assert_eq!(inf, sample(&after, LIST_COUNT), "+Inf holds every request");
    assert!(sample(&after, CONNECT_BAD).is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        sample(&after, "casman_rpc_requests_total{method=\"casman.v1.Assembly/Connect\",code=\"OK\"}")
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // The scan went through the group commit: one more batch of one.
    assert!(
        sample(&after, "casman_group_commit_batch_size_count").unwrap() >= batches_before + 1.0,
        "{text}"
    );
    assert!(sample(&after, "casman_group_commit_batch_size_bucket{le=\"1\"}").unwrap() >= 1.0, "{text}");
}

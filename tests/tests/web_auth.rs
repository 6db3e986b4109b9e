//! Hostile web clients (issue 32) against the real daemon: the site token
//! cannot sign in under a configured operator's name (item 2); wrong tokens
//! are throttled per client address with a JSON 429 and Retry-After, and
//! logged without the value tried (item 4); CSV uploads above the framework's
//! old 2 MiB default reach the handler's own JSON size check, and a body over
//! the hard limit is refused in JSON, not plain text (item 7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::Ipv4Addr, time::Duration};

use casman_tests::{
    DEADLINE, Daemon, DaemonOpts,
    http::{Reply, free_port, request_from},
    wait_for,
};
use serde_json::{Value, json};

const SITE: &str = "site-token-01234";
const ALICE: &str = "alice-own-token-1";
const JOSE: &str = "jose-own-token-01";

fn daemon(port: u16) -> Daemon {
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{SITE}\"\n\
         [[http.operators]]\nname = \"alice\"\ntoken = \"{ALICE}\"\nadmin = true\n\
         [[http.operators]]\nname = \"José\"\ntoken = \"{JOSE}\"\n"
    );
    Daemon::start_with(DaemonOpts::default().config(&config))
}

const HERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn post_from(from: Ipv4Addr, port: u16, path: &str, body: &Value, extra: &[&str]) -> Reply {
    let origin = format!("Origin: http://127.0.0.1:{port}");
    let mut h = vec!["Content-Type: application/json", origin.as_str()];
    h.extend_from_slice(extra);
    request_from(from, port, "POST", path, &h, Some(&body.to_string()))
}

fn sign_in(from: Ipv4Addr, port: u16, name: &str, token: &str) -> Reply {
    post_from(from, port, "/scanner/api/signin", &json!({"name": name, "token": token}), &[])
}

/// Waits until the daemon's log has a line containing all of `parts`.
fn logged(d: &Daemon, parts: &[&str]) -> String {
    wait_for(&format!("a log line with {parts:?}"), DEADLINE, || {
        d.log_text().lines().find(|l| parts.iter().all(|p| l.contains(p))).map(str::to_owned)
    })
}

fn assert_no_secret(d: &Daemon, secrets: &[&str]) {
    let log = d.log_text();
    for s in secrets {
        assert!(!log.contains(s), "the log shows {s:?}:\n{log}");
    }
}

#[test]
fn the_site_token_does_not_sign_in_as_an_operator() {
    let port = free_port();
    let d = daemon(port);

    // A configured operator's name, in any case, needs that operator's token.
    for name in ["alice", "ALICE", " Alice ", "José", "JOSÉ"] {
        let r = sign_in(HERE, port, name, SITE);
        assert_eq!(r.status, 403, "{name}: {}", r.body);
        let j = r.json();
        assert_eq!(j["ok"], false);
        assert_eq!(j["kind"], "denied");
        let e = j["error"].as_str().unwrap();
        assert!(e.contains("configured operator") && e.contains("own token"), "{e}");
        assert!(r.header("set-cookie").is_none(), "no sign-in: {}", r.headers);
    }
    // Another operator's token does not pass for alice either.
    let r = sign_in(HERE, port, "alice", JOSE);
    assert_eq!(r.status, 403, "{}", r.body);

    // A cookie forged from alice's name and the site token is no sign-in.
    let forged = format!("Cookie: casman_operator={}", hex::encode(format!("alice\n{SITE}")));
    let me = request_from(HERE, port, "GET", "/scanner/api/me", &[&forged], None).json();
    assert_eq!(me["signed_in"], false, "{me}");

    // The site token still signs in under other names; alice's own as alice.
    let r = sign_in(HERE, port, "bob", SITE);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["operator"], "bob");
    let r = sign_in(HERE, port, "alice", ALICE);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["operator"], "alice");
    let cookie = format!("Cookie: {}", r.cookie("casman_operator"));
    let me = request_from(HERE, port, "GET", "/scanner/api/me", &[&cookie], None).json();
    assert_eq!(me["operator"], "alice", "{me}");
    assert_eq!(me["admin"], true, "{me}");

    logged(&d, &["wrong token", "client=127.0.0.1", "sign-in", "alice"]);
    assert_no_secret(&d, &[SITE, ALICE, JOSE]);
}

#[test]
fn wrong_tokens_are_throttled_per_address_and_logged_without_the_value() {
    let port = free_port();
    let d = daemon(port);
    let guesses: Vec<String> = (0..10).map(|i| format!("guessed-token-{i:04}")).collect();

    // Ten wrong bearer tokens are each refused (401) and logged ...
    for g in &guesses {
        let bearer = format!("Authorization: Bearer {g}");
        let r = request_from(HERE, port, "GET", "/chains", &[&bearer], None);
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // ... then the address is throttled: even the right token is not checked.
    let bearer = format!("Authorization: Bearer {SITE}");
    let r = request_from(HERE, port, "GET", "/chains", &[&bearer], None);
    assert_eq!(r.status, 429, "{}", r.body);
    let j = r.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["kind"], "throttled");
    let e = j["error"].as_str().unwrap();
    assert!(e.starts_with("too many wrong tokens from 127.0.0.1; try again in "), "{e}");
    let wait: u64 = r.header("retry-after").expect("Retry-After").trim().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(e.ends_with(&format!("try again in {wait} s")), "{e} vs Retry-After {wait}");
    // Sign-in, cookies and ?token= from that address too; quickly (no 500 ms pause).
    let started = std::time::Instant::now();
    let r = sign_in(HERE, port, "bob", SITE);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(started.elapsed() < Duration::from_millis(400), "{:?}", started.elapsed());
    let r = request_from(HERE, port, "GET", &format!("/chains?token={SITE}"), &[], None);
    assert_eq!(r.status, 429, "{}", r.body);
    // A request carrying no token is not a guess: the sign-in page still loads.
    assert_eq!(request_from(HERE, port, "GET", "/scanner", &[], None).status, 200);

    // Another address is not affected: its right token works, its sign-in too.
    assert_eq!(request_from(NEIGHBOUR, port, "GET", "/chains", &[&bearer], None).status, 200);
    let r = sign_in(NEIGHBOUR, port, "bob", SITE);
    assert_eq!(r.status, 200, "{}", r.body);
    let bob = format!("Cookie: {}", r.cookie("casman_operator"));
    // A name and token typed the wrong way round: refused, counted, and the
    // token typed as the name is not logged.
    let r = sign_in(NEIGHBOUR, port, SITE, "bob");
    assert_eq!(r.status, 403, "{}", r.body);
    // A forged sign-in cookie is counted (and removed) too.
    let forged = format!("Cookie: casman_operator={}", hex::encode(format!("José\n{ALICE}")));
    let r = request_from(NEIGHBOUR, port, "GET", "/scanner/api/me", &[&forged], None);
    assert_eq!(r.json()["signed_in"], false);
    assert!(r.cookie("casman_operator") == "casman_operator=", "{}", r.headers);
    // 127.0.0.2's two failures stay under the limit: its right cookie works.
    let me = request_from(NEIGHBOUR, port, "GET", "/scanner/api/me", &[&bob], None).json();
    assert_eq!(me["operator"], "bob", "{me}");

    // Each failure was logged with the address and what was tried, never a value.
    let line = logged(&d, &["wrong token", "client=127.0.0.1", "tried=\"bearer\"", "failures=10"]);
    assert!(line.contains("WARN"), "{line}");
    logged(&d, &["wrong token", "client=127.0.0.2", "sign-in", "a token was typed as the name"]);
    logged(&d, &["wrong token", "client=127.0.0.2", "sign-in cookie"]);
    let mut secrets: Vec<&str> = guesses.iter().map(String::as_str).collect();
    secrets.extend([SITE, ALICE, JOSE]);
    assert_no_secret(&d, &secrets);
}

#[test]
fn csv_uploads_too_large_are_refused_in_json() {
    let port = free_port();
    let d = daemon(port);
    let r = sign_in(HERE, port, "alice", ALICE);
    assert_eq!(r.status, 200, "{}", r.body);
    let alice = format!("Cookie: {}", r.cookie("casman_operator"));
    let load = |mib_tenths: usize| {
        let header = "grid_code,latitude,longitude,height,coordinate_system,notes\n";
        let row = "CC000E01,37.2,-118.2,1183.8,WGS84,";
        let size = mib_tenths * (1 << 20) / 10;
        let csv = format!("{header}{row}{}\n", "x".repeat(size - header.len() - row.len() - 1));
        assert_eq!(csv.len(), size);
        let body =
            json!({"request_id": format!("coords-{mib_tenths:05}"), "csv": csv, "file_name": "big.csv"});
        post_from(HERE, port, "/admin/api/load-coordinates", &body, &[&alice])
    };

    // 3 MiB (refused as plain text by the framework's 2 MiB default before):
    // the handler answers, in JSON.
    let r = load(30);
    assert_ne!(r.status, 413, "{}", r.body);
    assert!(r.json().get("ok").is_some(), "{}", r.body);

    // A bit over the CSV limit: the handler's own check, naming the size.
    let r = load(45);
    assert_eq!(r.status, 400, "{}", r.body);
    let j = r.json();
    assert_eq!(j["kind"], "invalid", "{j}");
    let e = j["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("CSV of {} bytes", 45 * (1 << 20) / 10)) && e.contains("at most 4194304"),
        "{e}"
    );

    // Over the hard limit: 413, still JSON.
    let r = load(120);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.headers.contains("content-type: application/json"), "{}", r.headers);
    let j = r.json();
    assert_eq!(j["ok"], false, "{j}");
    assert_eq!(j["kind"], "too_large", "{j}");
    assert!(j["error"].as_str().unwrap().contains("at most 4194304 bytes"), "{j}");

    // Elsewhere too: a sign-in body over 1 MiB is a JSON 413, and a body
    // that is no JSON object is a JSON 4xx.
    let big = json!({"name": "bob", "token": "x".repeat(2 << 20)});
    let r = post_from(HERE, port, "/scanner/api/signin", &big, &[]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["kind"], "too_large");
    let r = request_from(
        HERE,
        port,
        "POST",
        "/scanner/api/signin",
        &["Content-Type: application/json", &format!("Origin: http://127.0.0.1:{port}")],
        Some("{not json"),
    );
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert_eq!(r.json()["ok"], false, "{}", r.body);
    drop(d);
}

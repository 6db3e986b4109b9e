//! The web sign-in is a session kept by casmand (issue 32, item 3), against
//! the real daemon: the `casman_operator` cookie is an opaque random id that
//! holds no token (state.db keeps neither the id nor the token); sign-out
//! ends the session server-side, so a copy of the cookie replayed afterwards
//! is refused (and counted as a wrong cookie); a restart with an operator's
//! token changed revokes that operator's sessions, a changed site token the
//! site-token sessions, and the others survive the restart. Expiry is tested
//! beside the code (`casmand/src/db/web_sessions.rs`, with an injected clock).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use casman_tests::{
    DEADLINE, Daemon, DaemonOpts,
    http::{Reply, free_port, request},
    sqlite, wait_for,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SITE: &str = "site-token-01234";
const ALICE: &str = "alice-own-token-1";
const JOSE: &str = "jose-own-token-01";

fn config(port: u16, site: &str, alice: &str) -> DaemonOpts {
    DaemonOpts::default().config(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{site}\"\n\
         [[http.operators]]\nname = \"alice\"\ntoken = \"{alice}\"\nadmin = true\n\
         [[http.operators]]\nname = \"José\"\ntoken = \"{JOSE}\"\n"
    ))
}

/// Stops `d` and starts a daemon on its directory (databases kept) with `opts`.
fn restart_with(mut d: Daemon, opts: DaemonOpts) -> Daemon {
    d.terminate();
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    Daemon::start_in(dir, opts)
}

fn post(port: u16, path: &str, body: &Value, cookie: Option<&str>) -> Reply {
    let origin = format!("Origin: http://127.0.0.1:{port}");
    let cookie = cookie.map(|c| format!("Cookie: {c}"));
    let mut h = vec!["Content-Type: application/json", origin.as_str()];
    h.extend(cookie.as_deref());
    request(port, "POST", path, &h, Some(&body.to_string()))
}

fn get(port: u16, path: &str, cookie: &str) -> Reply {
    request(port, "GET", path, &[&format!("Cookie: {cookie}")], None)
}

/// Signs in; returns the `casman_operator=<id>` pair and the Set-Cookie line.
fn sign_in(port: u16, name: &str, token: &str, cookie: Option<&str>) -> (String, String) {
    let r = post(port, "/scanner/api/signin", &json!({"name": name, "token": token}), cookie);
    assert_eq!(r.status, 200, "sign-in as {name}: {}", r.body);
    let line = r
        .headers
        .lines()
        .find(|l| l.starts_with("set-cookie: casman_operator="))
        .unwrap_or_else(|| panic!("no sign-in cookie: {}", r.headers))
        .to_owned();
    (r.cookie("casman_operator"), line)
}

/// Who `/scanner/api/me` says the cookie signs in, if anyone.
fn me(port: u16, cookie: &str) -> Option<(String, bool)> {
    let j = get(port, "/scanner/api/me", cookie).json();
    (j["signed_in"] == true).then(|| (j["operator"].as_str().unwrap().to_owned(), j["admin"] == true))
}

/// Whether the cookie opens a page that needs a sign-in (or the site token).
fn opens_pages(port: u16, cookie: &str) -> bool {
    let r = get(port, "/status", cookie);
    assert!(r.status == 200 || r.status == 401, "{} {}", r.status, r.body);
    r.status == 200
}

fn sessions(d: &Daemon) -> String {
    sqlite(&d.data_dir.join("state.db"), "SELECT * FROM web_sessions")
}

#[test]
fn the_cookie_is_an_opaque_session_ended_by_sign_out() {
    let port = free_port();
    let d = Daemon::start_with(config(port, SITE, ALICE));

    let (alice, line) = sign_in(port, "", ALICE, None);
    let id = alice.strip_prefix("casman_operator=").unwrap();
    // 32 random bytes in hex; no token in any form.
    assert_eq!(id.len(), 64, "{alice}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{alice}");
    for secret in [ALICE.to_owned(), hex::encode(ALICE), hex::encode(format!("alice\n{ALICE}"))] {
        assert!(!line.contains(&secret.to_ascii_lowercase()), "{line} holds {secret}");
    }
    for attr in ["path=/", "httponly", "samesite=strict", "max-age=604800"] {
        assert!(line.contains(attr), "{line} lacks {attr}");
    }
    assert_eq!(me(port, &alice), Some(("alice".into(), true)));
    assert!(opens_pages(port, &alice));

    // state.db keeps the id's SHA-256 and no token, nor the id itself.
    let rows = sessions(&d);
    assert!(rows.contains(&hex::encode(Sha256::digest(hex::decode(id).unwrap()))), "{rows}");
    assert!(rows.contains("|alice|"), "{rows}");
    for secret in [id.to_owned(), ALICE.into(), hex::encode(ALICE), hex::encode(Sha256::digest(ALICE))] {
        assert!(!rows.contains(&secret), "state.db holds {secret}: {rows}");
    }

    // The guard's internal mark cannot be sent by a client.
    let mark = format!("x-casman-internal-signed-in: 1:{}", hex::encode("alice"));
    let j = request(port, "GET", "/scanner/api/me", &[&mark], None).json();
    assert_eq!(j["signed_in"], false, "{j}");
    assert_eq!(request(port, "GET", "/status", &[&mark], None).status, 401);

    // Signing in again on a device ends its previous session.
    let (jose, _) = sign_in(port, "José", JOSE, None);
    let (jose2, _) = sign_in(port, "", JOSE, Some(&jose));
    assert_ne!(jose, jose2);
    assert_eq!(me(port, &jose), None);
    assert_eq!(me(port, &jose2), Some(("José".into(), false)));

    // Sign-out ends the session in casmand, not only in the browser.
    let r = post(port, "/scanner/api/signout", &json!({}), Some(&alice));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.cookie("casman_operator"), "casman_operator=", "{}", r.headers);
    assert!(!sessions(&d).contains("|alice|"), "{}", sessions(&d));
    // The same cookie replayed (a copy another service on the host received):
    // refused, removed and counted like a wrong cookie.
    assert_eq!(me(port, &alice), None);
    let r = get(port, "/status", &alice);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.cookie("casman_operator"), "casman_operator=", "{}", r.headers);
    let r = post(port, "/scanner/api/connect", &json!({"request_id": "r1"}), Some(&alice));
    assert_eq!(r.status, 401, "{}", r.body);
    wait_for("the replayed cookie logged", DEADLINE, || {
        d.log_text().lines().any(|l| l.contains("wrong token") && l.contains("sign-in cookie")).then_some(())
    });
    // José's session is untouched.
    assert_eq!(me(port, &jose2), Some(("José".into(), false)));

    // Old-format cookies (hex of name and token) no longer sign in.
    let old = format!("casman_operator={}", hex::encode(format!("alice\n{ALICE}")));
    assert_eq!(me(port, &old), None);

    let log = d.log_text();
    for secret in [ALICE, JOSE, SITE, id] {
        assert!(!log.contains(secret), "the log shows {secret}");
    }
}

#[test]
fn changing_a_token_in_the_configuration_revokes_its_sessions() {
    let port = free_port();
    let d = Daemon::start_with(config(port, SITE, ALICE));
    let (alice, _) = sign_in(port, "alice", ALICE, None);
    let (bob, _) = sign_in(port, "bob", SITE, None);
    let (jose, _) = sign_in(port, "José", JOSE, None);
    for c in [&alice, &bob, &jose] {
        assert!(opens_pages(port, c), "{c}");
    }

    // alice's token changed: her session is refused; the others survive the restart.
    const ALICE2: &str = "alice-new-token-22";
    let d = restart_with(d, config(port, SITE, ALICE2));
    assert_eq!(me(port, &alice), None);
    assert!(!opens_pages(port, &alice));
    assert_eq!(me(port, &bob), Some(("bob".into(), false)));
    assert_eq!(me(port, &jose), Some(("José".into(), false)));
    // Revoked for good: the row is gone, even if the old token came back.
    assert_eq!(sessions(&d).lines().count(), 2, "{}", sessions(&d));
    let (alice2, _) = sign_in(port, "", ALICE2, None);
    assert_eq!(me(port, &alice2), Some(("alice".into(), true)));

    // The site token changed: the sessions it signed in are refused, the
    // operators' own stay.
    let d = restart_with(d, config(port, "site-token-56789", ALICE2));
    assert_eq!(me(port, &bob), None);
    assert!(!opens_pages(port, &bob));
    assert_eq!(me(port, &jose), Some(("José".into(), false)));
    assert_eq!(me(port, &alice2), Some(("alice".into(), true)));
    assert!(opens_pages(port, &alice2));
    drop(d);
}

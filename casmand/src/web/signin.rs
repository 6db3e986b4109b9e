//! Who is scanning: operators sign in once per device (design in
//! [`crate::config::http`]). A sign-in is a session kept by casmand in
//! state.db ([`crate::db::web_sessions`]): the HttpOnly, SameSite=Strict
//! cookie (Secure under TLS) holds only a random session id, useless to
//! anyone but casmand, and casmand keeps the SHA-256 of that id with the
//! operator's name and a fingerprint of the token that signed in (a SHA-256
//! salted with the id, never the token). Every request's session is checked
//! against the configuration, so editing `[http]` (an operator's token, the
//! site token, an operator removed) and restarting revokes it; sign-out
//! deletes it; it ends after [`web_sessions::IDLE`] unused or
//! [`web_sessions::LIFETIME`] after sign-in. Writes also need a same-origin
//! request ([`same_origin`]).

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Web, json::ApiError, same, set_cookie};
use crate::{
    config::{HttpOperator, http::check_name},
    context::caller::Caller,
    db::web_sessions,
    error::Error,
};

/// Name of the sign-in cookie.
pub const COOKIE: &str = "casman_operator";

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Their name, as audited.
    pub name: String,
    /// Whether they may use the admin page.
    pub admin: bool,
}

impl Operator {
    /// The caller to audit a write by this operator from `client`.
    pub fn caller(&self, client: SocketAddr) -> Caller {
        Caller { peer: None, operator: Some(self.name.clone()), client: Some(client.ip().to_string()) }
    }
}

/// Checks a name and token against the configuration.
pub fn check(web: &Web, name: &str, token: &str) -> Result<Operator, Error> {
    check_against(web.token.as_deref(), &web.operators, name, token)
}

/// [`check`] against the site token `site` and `operators`.
fn check_against(
    site: Option<&str>,
    operators: &[HttpOperator],
    name: &str,
    token: &str,
) -> Result<Operator, Error> {
    let token = token.trim();
    // Every operator's token is compared, so the time taken reveals nothing.
    let mut found = None;
    for op in operators {
        if same(op.token.trim().as_bytes(), token.as_bytes()) {
            found = Some(op);
        }
    }
    if let Some(op) = found {
        let typed = name.trim();
        if !typed.is_empty() && !typed.eq_ignore_ascii_case(op.name.trim()) {
            return Err(Error::PermissionDenied(format!(
                "this token belongs to operator {:?}, not {typed:?}; leave the name empty or type theirs",
                op.name.trim()
            )));
        }
        return Ok(Operator { name: op.name.trim().to_owned(), admin: op.admin });
    }
    let name = check_name(name).map_err(Error::invalid)?;
    // A configured operator's name needs that operator's own token: the site
    // token (or any other) must not pass for them. The same answer whatever
    // the token was, so it tells a guesser nothing about the site token.
    if operators.iter().any(|op| same_name(&op.name, &name)) {
        return Err(Error::PermissionDenied(format!(
            "{name:?} is a configured operator's name: sign in with that operator's own token (the site \
             token signs in only under other names)"
        )));
    }
    match site {
        Some(site) if same(site.as_bytes(), token.as_bytes()) => Ok(Operator { name, admin: false }),
        None if operators.is_empty() => Ok(Operator { name, admin: false }),
        _ => Err(Error::PermissionDenied(
            "wrong token: use the site's access token (http.token) or your own operator token".into(),
        )),
    }
}

/// Whether two operator names are the same person's: compared as the
/// configuration compares them (ASCII case-insensitively) and, stricter,
/// Unicode case-insensitively, so `JOSÉ` cannot pass for `José`.
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}

/// The name typed at a refused sign-in, as it may be logged: not when it is
/// a configured token (typed in the wrong field), nor when it is no valid name.
fn loggable_name<'a>(web: &Web, name: &'a str) -> &'a str {
    let typed = name.trim();
    let is_token = web.token.as_deref().is_some_and(|t| t.trim() == typed)
        || web.operators.iter().any(|op| op.token.trim() == typed);
    if is_token {
        "(not shown: a token was typed as the name)"
    } else if check_name(typed).is_err() {
        "(not a valid name)"
    } else {
        typed
    }
}

/// Random bytes of a session id (the cookie holds them in hex).
const ID_BYTES: usize = 32;

/// Request header by which [`super::guard`] hands the signed-in operator of a
/// request to the handlers ([`operator`]). Never taken from a client: the
/// guard removes it from every request before looking up the session.
pub(super) const SIGNED_IN: HeaderName = HeaderName::from_static("x-casman-internal-signed-in");

/// A new session id (random, from the thread's cryptographically secure
/// generator).
fn new_session_id() -> [u8; ID_BYTES] {
    rand::random()
}

/// The session id a cookie value holds, if it is one (old-format cookies,
/// hex of a name and a token, are not).
fn parse_id(value: &str) -> Option<[u8; ID_BYTES]> {
    let mut id = [0u8; ID_BYTES];
    hex::decode_to_slice(value.trim(), &mut id).ok()?;
    Some(id)
}

/// What state.db keeps of a session id: its SHA-256 (hex).
fn id_digest(id: &[u8]) -> String {
    hex::encode(Sha256::digest(id))
}

/// The fingerprint kept of the token that signed in a session: a SHA-256
/// of the token salted with the session id, so state.db alone (which holds
/// only the id's digest) tells nothing about the token, not even whether
/// two sessions share one.
fn token_digest(id: &[u8], token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"casman web session token\0");
    h.update(id);
    h.update(b"\0");
    h.update(token.trim().as_bytes());
    hex::encode(h.finalize())
}

/// The operator session `s` (of id `id`) signs in under the configuration
/// (`site`, `operators`) now, if it still does: a configured operator's name
/// needs that operator's current token; another name the current site token
/// (or, with neither configured, nothing).
fn session_operator(
    site: Option<&str>,
    operators: &[HttpOperator],
    id: &[u8],
    s: &web_sessions::Session,
) -> Option<Operator> {
    let signed_with = |token: &str| same(token_digest(id, token).as_bytes(), s.token_sha256.as_bytes());
    if let Some(op) = operators.iter().find(|op| same_name(&op.name, &s.operator)) {
        return signed_with(&op.token).then(|| Operator { name: op.name.trim().to_owned(), admin: op.admin });
    }
    let name = check_name(&s.operator).ok()?;
    match site {
        Some(site) if signed_with(site) => Some(Operator { name, admin: false }),
        None if operators.is_empty() => Some(Operator { name, admin: false }),
        _ => None,
    }
}

/// The sign-in cookie of a request, looked up ([`resolve`]).
#[derive(Debug)]
pub(super) enum Session {
    /// No sign-in cookie.
    None,
    /// A live session, still valid under the configuration.
    SignedIn(Operator),
    /// A cookie that is no session id, an unknown, ended or revoked session.
    Refused,
    /// state.db could not be read (logged): not signed in, but the cookie
    /// was not found wrong either.
    Unavailable,
}

/// Looks up the session of a request's sign-in cookie.
pub(super) async fn resolve(web: &Web, headers: &HeaderMap) -> Session {
    let Some(raw) = super::cookie_value(headers, COOKIE) else { return Session::None };
    let Some(id) = parse_id(&raw) else { return Session::Refused };
    let state = &web.ctx.dbs().state;
    let digest = id_digest(&id);
    let found = match web_sessions::find(state, &digest, jiff::Timestamp::now()).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "web: cannot look up a sign-in session in state.db");
            return Session::Unavailable;
        }
    };
    let Some(s) = found else { return Session::Refused };
    match session_operator(web.token.as_deref(), &web.operators, &id, &s) {
        Some(op) => Session::SignedIn(op),
        None => {
            // Revoked by the configuration: gone for good, even if the old
            // token came back.
            tracing::info!(operator = s.operator, "web: sign-in session revoked by the configuration; ended");
            if let Err(e) = web_sessions::delete(state, &digest).await {
                tracing::warn!(error = %e, "web: cannot delete a revoked sign-in session");
            }
            Session::Refused
        }
    }
}

/// Marks `headers` (of a request, in [`super::guard`]) as signed in by `op`.
pub(super) fn mark(headers: &mut HeaderMap, op: &Operator) {
    let v = format!("{}:{}", u8::from(op.admin), hex::encode(&op.name));
    if let Ok(v) = HeaderValue::from_str(&v) {
        headers.insert(SIGNED_IN, v);
    }
}

/// The signed-in operator of a request, as [`super::guard`] found it (its
/// session live and still valid under the configuration).
pub fn operator(_web: &Web, headers: &HeaderMap) -> Option<Operator> {
    marked(headers)
}

/// The operator [`mark`] put on `headers`.
fn marked(headers: &HeaderMap) -> Option<Operator> {
    let v = headers.get(SIGNED_IN)?.to_str().ok()?;
    let (admin, name) = v.split_once(':')?;
    let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
    Some(Operator { name, admin: admin == "1" })
}

/// The operator of a write, or a refusal naming what is missing.
pub fn require(web: &Web, headers: &HeaderMap, admin: bool) -> Result<Operator, ApiError> {
    if !same_origin(headers) {
        return Err(ApiError(Error::PermissionDenied(
            "cross-origin request refused: writes are accepted only from casmand's own pages".into(),
        )));
    }
    let Some(op) = operator(web, headers) else {
        return Err(ApiError(Error::PermissionDenied(
            "not signed in: sign in on this device first (name and access token); nothing was recorded"
                .into(),
        )));
    };
    if admin && !op.admin {
        return Err(ApiError(Error::PermissionDenied(format!(
            "operator {:?} is not an admin (admin = true in [[http.operators]]); nothing was changed",
            op.name
        ))));
    }
    Ok(op)
}

/// Whether a POST comes from casmand's own pages: a JSON body (a cross-site
/// form cannot send one without a CORS preflight, which casmand never
/// grants), an `Origin` (when sent) naming this host, and `Sec-Fetch-Site`
/// (when sent) `same-origin`. The cookie is SameSite=Strict on top.
pub fn same_origin(h: &HeaderMap) -> bool {
    let json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_ok = match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host)),
    };
    let site_ok = h
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin" || v == "none");
    json && origin_ok && site_ok
}

/// `POST /scanner/api/signin` `{name, token}`.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    token: String,
}

pub(super) async fn sign_in(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<SignIn>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError(Error::PermissionDenied("cross-origin sign-in refused".into())));
    }
    let op = match check(&web, &body.name, &body.token) {
        Ok(op) => op,
        Err(e) => {
            super::wrong_token(&web, Some(client.ip()), "sign-in", Some(loggable_name(&web, &body.name)));
            // Slows down guessing tokens (one connection at a time).
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            return Err(ApiError(e));
        }
    };
    let id = new_session_id();
    let state = &web.ctx.dbs().state;
    // This browser's previous session, if any, ends here.
    if let Some(old) = super::cookie_value(&headers, COOKIE).as_deref().and_then(parse_id) {
        web_sessions::delete(state, &id_digest(&old)).await?;
    }
    let now = jiff::Timestamp::now();
    web_sessions::create(state, &id_digest(&id), &op.name, &token_digest(&id, &body.token), now).await?;
    tracing::info!(client = %client.ip(), operator = op.name, admin = op.admin, "web sign-in");
    let cookie = set_cookie(COOKIE, hex::encode(id), web.tls, Some(web_sessions::LIFETIME));
    let mut r = Json(json!({"ok": true, "operator": op.name, "admin": op.admin})).into_response();
    if let Some(v) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `POST /scanner/api/signout`: ends the session in state.db (the cookie is
/// then refused wherever it was copied to) and removes the browser's cookie.
pub(super) async fn sign_out(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = super::cookie_value(&headers, COOKIE).as_deref().and_then(parse_id)
        && web_sessions::delete(&web.ctx.dbs().state, &id_digest(&id)).await?
    {
        let op = operator(&web, &headers).map(|o| o.name);
        tracing::info!(client = %client.ip(), operator = op, "web sign-out");
    }
    let mut r = Json(json!({"ok": true})).into_response();
    if let Some(v) = set_cookie(COOKIE, String::new(), web.tls, Some(std::time::Duration::ZERO)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub(super) async fn me(State(web): State<Web>, headers: HeaderMap) -> Json<serde_json::Value> {
    let op = operator(&web, &headers);
    Json(json!({
        "ok": true,
        "signed_in": op.is_some(),
        "operator": op.as_ref().map(|o| o.name.clone()),
        "admin": op.as_ref().is_some_and(|o| o.admin),
        "token_needed": web.token.is_some() || !web.operators.is_empty(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, axum::http::HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn the_site_token_signs_in_only_under_names_that_are_not_operators() {
        let ops = [
            HttpOperator { name: "alice".into(), token: "alice-own-token-1".into(), admin: true },
            HttpOperator { name: "José".into(), token: "jose-own-token-01".into(), admin: false },
        ];
        let site = Some("site-token-01234");
        let check = |name: &str, token: &str| check_against(site, &ops, name, token);
        for name in ["alice", " ALICE ", "José", "JOSÉ"] {
            let e = check(name, "site-token-01234").unwrap_err();
            assert!(matches!(e, Error::PermissionDenied(_)), "{name}: {e}");
            assert!(e.to_string().contains("own token"), "{e}");
            // The same answer with a wrong token: nothing learnt about the site token.
            assert_eq!(check(name, "wrong-token-000000").unwrap_err().to_string(), e.to_string());
        }
        let bob = check("bob", "site-token-01234").unwrap();
        assert_eq!(bob, Operator { name: "bob".into(), admin: false });
        assert_eq!(check("", "alice-own-token-1").unwrap(), Operator { name: "alice".into(), admin: true });
        assert_eq!(check("Alice", "alice-own-token-1").unwrap().name, "alice");
        assert!(check("José", "alice-own-token-1").is_err());
        assert!(check("bob", "wrong-token-000000").is_err());
        // No token configured and no operators: a name alone.
        assert_eq!(check_against(None, &[], "carol", "").unwrap().name, "carol");
    }

    #[test]
    fn session_ids_are_random_and_reveal_nothing() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_ne!(a, b);
        let cookie = hex::encode(a);
        assert_eq!(cookie.len(), 2 * ID_BYTES);
        assert_eq!(parse_id(&cookie), Some(a));
        // Old-format cookies (hex of a name and a token) and junk are no ids.
        assert_eq!(parse_id(&hex::encode("alice\nalice-own-token-1")), None);
        assert_eq!(parse_id(&"zz".repeat(ID_BYTES)), None);
        assert_eq!(parse_id(""), None);
        // What state.db keeps: neither the id nor the token.
        let digest = id_digest(&a);
        assert_ne!(digest, cookie);
        let fp = token_digest(&a, "alice-own-token-1");
        assert!(!fp.contains(&hex::encode("alice-own-token-1")));
        assert_eq!(fp, token_digest(&a, " alice-own-token-1 "), "trimmed as at sign-in");
        assert_ne!(fp, token_digest(&b, "alice-own-token-1"), "salted with the id");
        assert_ne!(fp, hex::encode(Sha256::digest("alice-own-token-1")));
    }

    #[test]
    fn a_session_is_valid_while_the_token_that_signed_it_in_is() {
        let alice = HttpOperator { name: "alice".into(), token: "alice-own-token-1".into(), admin: true };
        let id = new_session_id();
        let session = |name: &str, token: &str| web_sessions::Session {
            operator: name.into(),
            token_sha256: token_digest(&id, token),
            created_at: String::new(),
            last_seen_at: String::new(),
            expires_at: String::new(),
        };
        let site = Some("site-token-01234");
        let ops = [alice.clone()];
        let valid = |site, ops: &[HttpOperator], s| session_operator(site, ops, &id, &s);

        let own = session("alice", "alice-own-token-1");
        assert_eq!(valid(site, &ops, own.clone()), Some(Operator { name: "alice".into(), admin: true }));
        // alice's token changed, or alice removed while a site token exists: revoked.
        let changed = [HttpOperator { token: "alice-new-token-2".into(), ..alice.clone() }];
        assert_eq!(valid(site, &changed, own.clone()), None);
        assert_eq!(valid(site, &[], own.clone()), None);
        // Admin follows the configuration.
        let demoted = [HttpOperator { admin: false, ..alice.clone() }];
        assert_eq!(valid(site, &demoted, own.clone()).map(|o| o.admin), Some(false));

        let bob = session("bob", "site-token-01234");
        assert_eq!(valid(site, &ops, bob.clone()), Some(Operator { name: "bob".into(), admin: false }));
        assert_eq!(valid(Some("site-token-56789"), &ops, bob.clone()), None, "site token changed");
        assert_eq!(valid(None, &ops, bob.clone()), None, "site token removed");
        let bob_op = [HttpOperator { name: "Bob".into(), token: "bob-own-token-01".into(), admin: false }];
        assert_eq!(valid(site, &bob_op, bob.clone()), None, "bob became an operator");
        // With nothing configured a name alone signs in.
        assert_eq!(valid(None, &[], bob).map(|o| o.name), Some("bob".into()));
        // Another id's fingerprint does not pass.
        let other = web_sessions::Session {
            token_sha256: token_digest(&new_session_id(), "alice-own-token-1"),
            ..own
        };
        assert_eq!(valid(site, &ops, other), None);
    }

    #[test]
    fn the_guards_mark_carries_name_and_admin() {
        let mut h = HeaderMap::new();
        assert_eq!(marked(&h), None);
        for op in
            [Operator { name: "José".into(), admin: true }, Operator { name: "bob".into(), admin: false }]
        {
            mark(&mut h, &op);
            assert_eq!(marked(&h), Some(op));
        }
    }

    #[test]
    fn only_same_origin_json_posts_pass() {
        let json = ("content-type", "application/json");
        let host = ("host", "10.0.0.5:8998");
        assert!(same_origin(&h(&[json, host])));
        assert!(same_origin(&h(&[
            json,
            host,
            ("origin", "http://10.0.0.5:8998"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&h(&[json, host, ("origin", "http://evil.example")])));
        assert!(!same_origin(&h(&[json, host, ("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&h(&[("content-type", "text/plain"), host])));
        assert!(!same_origin(&h(&[json, ("origin", "http://10.0.0.5:8998")])));
    }
}

//! Who is scanning: operators sign in once per device (design in
//! [`crate::config::http`]); the sign-in lives in an HttpOnly, SameSite=Strict
//! cookie (Secure under TLS) holding the name and the token, checked against
//! the configuration on every request, so editing `[http]` and restarting
//! revokes it. Writes also need a same-origin request ([`same_origin`]).

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{Web, json::ApiError, same, set_cookie};
use crate::{
    config::{HttpOperator, http::check_name},
    context::caller::Caller,
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

fn encode(name: &str, token: &str) -> String {
    hex::encode(format!("{name}\n{token}"))
}

/// The signed-in operator of a request, if its cookie still checks out.
pub fn operator(web: &Web, headers: &HeaderMap) -> Option<Operator> {
    let raw = super::cookie_value(headers, COOKIE)?;
    let text = String::from_utf8(hex::decode(raw).ok()?).ok()?;
    let (name, token) = text.split_once('\n')?;
    check(web, name, token).ok()
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
    tracing::info!(client = %client.ip(), operator = op.name, admin = op.admin, "web sign-in");
    let month = std::time::Duration::from_secs(30 * 24 * 3600);
    let cookie = set_cookie(COOKIE, encode(&op.name, body.token.trim()), web.tls, Some(month));
    let mut r = Json(json!({"ok": true, "operator": op.name, "admin": op.admin})).into_response();
    if let Some(v) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub(super) async fn sign_out(State(web): State<Web>) -> Response {
    let mut r = Json(json!({"ok": true})).into_response();
    if let Some(v) = set_cookie(COOKIE, String::new(), web.tls, Some(std::time::Duration::ZERO)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
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

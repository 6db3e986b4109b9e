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
use crate::{config::http::check_name, context::caller::Caller, error::Error};

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
    let token = token.trim();
    // Every operator's token is compared, so the time taken reveals nothing.
    let mut found = None;
    for op in web.operators.iter() {
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
    match web.token.as_deref() {
        Some(site) if same(site.as_bytes(), token.as_bytes()) => Ok(Operator { name, admin: false }),
        None if web.operators.is_empty() => Ok(Operator { name, admin: false }),
        _ => Err(Error::PermissionDenied(
            "wrong token: use the site's access token (http.token) or your own operator token".into(),
        )),
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
            tracing::warn!(client = %client.ip(), name = body.name.trim(), "web sign-in refused");
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

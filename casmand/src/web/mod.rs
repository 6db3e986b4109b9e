//! Read-only web views over HTTP (`[http]` in the configuration): chains,
//! the core grid, SNAP ports and backup status, server-rendered from the same
//! db/domain functions the gRPC API uses, with live updates by server-sent
//! events. Off unless `http.listen` is set.
//!
//! Access: with `http.token` configured every request must carry it
//! (`Authorization: Bearer`, `?token=` which also sets a cookie, or that
//! cookie); a non-loopback address without a token is refused at start-up
//! ([`crate::config::HttpConfig::address`]). Pages embed no external
//! resources (the field network may be offline) and no inline script, so a
//! strict Content-Security-Policy applies.

mod chains;
mod events;
mod grid;
mod html;
mod snap;
mod status;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use tokio::{net::TcpListener, sync::watch};

use crate::{config::Config, context::Context};

/// Name of the cookie holding the (hex-encoded) token.
const COOKIE: &str = "casman_token";

const CSS: &str = include_str!("assets/style.css");
const JS: &str = include_str!("assets/app.js");

/// Shared state of the handlers.
#[derive(Debug, Clone)]
struct Web {
    ctx: Context,
    token: Option<Arc<str>>,
    stop: watch::Receiver<bool>,
}

/// A listener bound to `http.listen`, ready to serve.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
}

/// Binds `http.listen` if it is set. Errors (a malformed address, a
/// non-loopback address without a token, an address in use) are meant to stop
/// start-up, with a message naming the key.
pub async fn bind(config: &Config) -> Result<Option<Bound>, String> {
    let Some(addr) = config.http.address().map_err(|e| e.to_string())? else { return Ok(None) };
    let listener =
        TcpListener::bind(addr).await.map_err(|e| format!("http.listen {addr}: cannot listen: {e}"))?;
    let addr = listener.local_addr().unwrap_or(addr);
    Ok(Some(Bound { listener, addr }))
}

/// Serves the views on `bound` until `stop` turns true; open event streams
/// end then too, so the shutdown is not held up by browsers.
pub async fn serve(bound: Bound, ctx: Context, stop: watch::Receiver<bool>) {
    let token = ctx.config().http.token.as_deref().filter(|t| !t.trim().is_empty()).map(Arc::from);
    let web = Web { ctx, token, stop: stop.clone() };
    let app = router(web);
    let mut stop = stop;
    tracing::info!(address = %bound.addr, "serving the web views");
    let served = axum::serve(bound.listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the web views stopped");
    }
}

fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(chains::page))
        .route("/chains", get(chains::page))
        .route("/grid", get(grid::page))
        .route("/snap", get(snap::page))
        .route("/snap/port/{port}", get(snap::port_fragment))
        .route("/status", get(status::page))
        .route("/events", get(events::stream))
        .route("/assets/style.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .route("/assets/app.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(web.clone(), guard))
        .with_state(web)
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

async fn not_found() -> Response {
    let body = html::page("Not found", "", "<p class=\"empty\">No such page.</p>");
    (StatusCode::NOT_FOUND, Html(body)).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Compares without an early exit, so the time taken does not reveal how
/// much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .and_then(|(_, v)| hex::decode(v).ok())
        .and_then(|b| String::from_utf8(b).ok())
}

/// Checks the token (when one is configured) and adds security headers.
async fn guard(State(web): State<Web>, req: Request, next: Next) -> Response {
    let mut set_cookie = None;
    if let Some(token) = &web.token {
        let want = token.as_bytes();
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        let query = Query::<TokenQuery>::try_from_uri(req.uri()).ok().and_then(|q| q.0.token);
        let cookie = cookie_token(req.headers());
        let by_query = query.as_deref().is_some_and(|t| same(t.as_bytes(), want));
        let ok = by_query
            || bearer.as_deref().is_some_and(|t| same(t.as_bytes(), want))
            || cookie.as_deref().is_some_and(|t| same(t.as_bytes(), want));
        if !ok {
            let body = html::page(
                "Access token required",
                "",
                "<p class=\"empty\">This casmand requires its access token (<code>http.token</code>): \
                 send <code>Authorization: Bearer &lt;token&gt;</code>, or open a page once with \
                 <code>?token=&lt;token&gt;</code>.</p>",
            );
            let mut r = (StatusCode::UNAUTHORIZED, Html(body)).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            secure(r.headers_mut());
            return r;
        }
        if by_query {
            set_cookie = HeaderValue::from_str(&format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                hex::encode(want)
            ))
            .ok();
            // Take the token out of the address bar (and of the history).
            if req.method() == axum::http::Method::GET && !req.uri().path().starts_with("/events") {
                let path = req.uri().path().to_owned();
                let rest: Vec<String> = req
                    .uri()
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .filter(|kv| !kv.is_empty() && !kv.starts_with("token="))
                    .map(str::to_owned)
                    .collect();
                let to = if rest.is_empty() { path } else { format!("{path}?{}", rest.join("&")) };
                let mut r = Redirect::to(&to).into_response();
                if let Some(c) = set_cookie {
                    r.headers_mut().insert(header::SET_COOKIE, c);
                }
                secure(r.headers_mut());
                return r;
            }
        }
    }
    let mut r = next.run(req).await;
    if let Some(c) = set_cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    secure(r.headers_mut());
    r
}

fn secure(h: &mut HeaderMap) {
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
               form-action 'self'";
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A failure while building a page: logged in full, shown generically.
#[derive(Debug)]
struct WebError(crate::error::Error);

impl From<crate::error::Error> for WebError {
    fn from(e: crate::error::Error) -> Self {
        WebError(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "web view failed");
        let body = html::page(
            "Error",
            "",
            "<p class=\"empty\">The page could not be built; the casmand log says why.</p>",
        );
        (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
    }
}

type PageResult = Result<Html<String>, WebError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_and_cookie() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; casman_token=736563726574"));
        assert_eq!(cookie_token(&h).as_deref(), Some("secret"));
    }
}

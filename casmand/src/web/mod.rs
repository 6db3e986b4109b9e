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
//!
//! `/scanner` (and `/admin`) are the field scanner: signed-in operators
//! record connections and positions from a phone ([`signin`],
//! [`scanner_writes`]), through the same application layer as the gRPC API
//! ([`crate::context`]). Optional TLS: [`tls`].
//!
//! Wrong tokens are counted per client address and logged (never the value
//! tried); too many in a minute and that address gets 429 ([`throttle`]).
//! Request bodies are limited ([`BODY_LIMIT`], [`CSV_BODY_LIMIT`]) and the
//! framework's plain-text refusals of API requests (too large, not JSON) are
//! answered in the APIs' JSON ([`api_rejection`]).

mod admin;
mod chains;
mod events;
mod grid;
mod history;
mod html;
mod json;
mod listener;
mod request_ids;
mod scanner;
mod scanner_writes;
mod signin;
mod snap;
mod status;
mod throttle;
mod tls;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{ConnectInfo, DefaultBodyLimit, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    config::{Config, HttpOperator},
    context::Context,
};

/// Name of the cookie holding the (hex-encoded) token.
const COOKIE: &str = "casman_token";

/// Largest request body of the CSV uploads (`/admin/api/load-*`): a CSV of
/// [`admin::MAX_CSV`] bytes in a JSON string, where escaping (`\n`, `\"`)
/// at most doubles it, with room for the other fields. Anything a bit above
/// the CSV limit thus reaches the handler, whose own check answers in JSON
/// naming the CSV's size; a larger body is refused by [`api_rejection`].
const CSV_BODY_LIMIT: usize = 2 * admin::MAX_CSV + (64 << 10);

/// Largest request body elsewhere (sign-in, scans, add parts: small JSON
/// objects).
const BODY_LIMIT: usize = 1 << 20;

const CSS: &str = include_str!("assets/style.css");
const JS: &str = include_str!("assets/app.js");
const SCANNER_CSS: &str = include_str!("assets/scanner.css");
const SCANNER_JS: &str = include_str!("assets/scanner.js");
const ADMIN_JS: &str = include_str!("assets/admin.js");

/// Shared state of the handlers.
#[derive(Debug, Clone)]
struct Web {
    ctx: Context,
    token: Option<Arc<str>>,
    /// `[[http.operators]]`.
    operators: Arc<[HttpOperator]>,
    /// Whether the listener speaks HTTPS (cookies are then `Secure`).
    tls: bool,
    /// Whether the listener is on a loopback address (the `Host` header must
    /// then name the loopback too).
    loopback: bool,
    /// Scanner request ids being answered.
    ids: Arc<request_ids::InFlight>,
    /// Wrong tokens per client address.
    throttle: Arc<throttle::Throttle>,
    stop: watch::Receiver<bool>,
}

/// A listener bound to `http.listen`, ready to serve.
pub struct Bound {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound").field("addr", &self.addr).field("tls", &self.tls.is_some()).finish()
    }
}

/// Why the web listener could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A setting of `[http]` that cannot be used (the message names the key).
    #[error("{0}")]
    Settings(String),
    /// The address could not be listened on (in use, not local, ...).
    #[error("http.listen {addr}: cannot listen: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds `http.listen` if it is set. Errors (a malformed address, a
/// non-loopback address without a token, an address in use) are meant to stop
/// start-up, with a message naming the key.
pub async fn bind(config: &Config) -> Result<Option<Bound>, BindError> {
    let Some(addr) = config.http.address().map_err(|e| BindError::Settings(e.to_string()))? else {
        return Ok(None);
    };
    let tls = match (&config.http.tls_cert, &config.http.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(BindError::Settings)?),
        _ => None,
    };
    let listener = TcpListener::bind(addr).await.map_err(|source| BindError::Listen { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    Ok(Some(Bound { listener, tls, addr }))
}

/// Serves the views on `bound` until `stop` turns true; open event streams
/// end then too, so the shutdown is not held up by browsers.
pub async fn serve(bound: Bound, ctx: Context, stop: watch::Receiver<bool>) {
    let token = ctx.config().http.token.as_deref().filter(|t| !t.trim().is_empty()).map(Arc::from);
    let operators: Arc<[HttpOperator]> = ctx.config().http.operators.clone().into();
    let ctx_server = ctx.config().server.clone();
    let tls = bound.tls.is_some();
    let loopback = bound.addr.ip().is_loopback();
    let web = Web {
        ctx,
        token,
        operators,
        tls,
        loopback,
        ids: Arc::default(),
        throttle: Arc::default(),
        stop: stop.clone(),
    };
    let app = router(web);
    let scheme = if tls { "HTTPS" } else { "HTTP" };
    tracing::info!(address = %bound.addr, "serving the web views and the scanner over {scheme}");
    let limiter = crate::connections::Limiter::new("web", &ctx_server);
    listener::serve(bound.listener, bound.tls, limiter, app, stop).await;
}

fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(chains::page))
        .route("/chains", get(chains::page))
        .route("/grid", get(grid::page))
        .route("/snap", get(snap::page))
        .route("/snap/port/{port}", get(snap::port_fragment))
        .route("/status", get(status::page))
        .route("/metrics", get(status::metrics))
        .route("/events", get(events::stream))
        .route("/scanner", get(scanner::page))
        .route("/scanner/", get(scanner::page))
        .route("/scanner/api/me", get(signin::me))
        .route("/scanner/api/signin", post(signin::sign_in))
        .route("/scanner/api/signout", post(signin::sign_out))
        .route("/scanner/api/part", get(scanner::part))
        .route("/scanner/api/check", get(scanner::check))
        .route("/scanner/api/snap", get(scanner::snap_ports))
        .route("/scanner/api/layout", get(scanner::layout))
        .route("/scanner/api/grid", get(scanner::grid))
        .route("/scanner/api/antenna", get(scanner::antenna))
        .route("/scanner/api/history", get(scanner::part_history))
        .route("/scanner/api/connect", post(scanner_writes::connect))
        .route("/scanner/api/disconnect", post(scanner_writes::disconnect))
        .route("/scanner/api/remove", post(scanner_writes::remove))
        .route("/scanner/api/assign", post(scanner_writes::assign))
        .route("/admin", get(scanner::admin_page))
        .route(
            "/admin/api/load-snap-boards",
            post(admin::load_snap_boards).layer(DefaultBodyLimit::max(CSV_BODY_LIMIT)),
        )
        .route(
            "/admin/api/load-coordinates",
            post(admin::load_coordinates).layer(DefaultBodyLimit::max(CSV_BODY_LIMIT)),
        )
        .route("/admin/api/add-parts", post(admin::add_parts))
        .route("/admin/api/backup", post(admin::backup))
        .route("/admin/api/sync-status", get(admin::sync_status))
        .route("/admin/labels.pdf", get(admin::labels_sheet))
        .route("/assets/scanner.css", get(|| async { asset(SCANNER_CSS, "text/css; charset=utf-8") }))
        .route("/assets/scanner.js", get(|| async { asset(SCANNER_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/admin.js", get(|| async { asset(ADMIN_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/style.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .route("/assets/app.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(web.clone(), guard))
        .with_state(web)
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

async fn not_found() -> Response {
    let body = html::message_page("Not found", maud::html! { "No such page." });
    (StatusCode::NOT_FOUND, Html(body.into_string())).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Compares in constant time, so the time taken does not reveal how much of
/// a guess was right (a length mismatch fails at once: lengths are no secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

/// The value of cookie `name`.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers).get(name).map(|c| c.value().to_owned())
}

/// A `Set-Cookie` of `name=value` for the whole site, HttpOnly, SameSite=Strict,
/// Secure under TLS; kept for `max_age` when given (else for the browser
/// session); an empty `value` with `Some(ZERO)` removes the cookie.
fn set_cookie(
    name: &'static str,
    value: String,
    tls: bool,
    max_age: Option<std::time::Duration>,
) -> Option<HeaderValue> {
    let mut c =
        Cookie::build((name, value)).path("/").http_only(true).same_site(SameSite::Strict).secure(tls);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(i64::try_from(age.as_secs()).unwrap_or(i64::MAX)));
    }
    HeaderValue::from_str(&c.build().to_string()).ok()
}

/// The value of the view cookie (`casman_token`) that `?token=` sets: a
/// one-way digest of the site token, not the token itself, so a copy of the
/// cookie (cookies are not port-scoped: every service on the host receives
/// it) neither reveals the token nor signs anyone in to write; it opens the
/// views only, and stops working when the token changes.
fn view_cookie(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"casman view cookie\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

/// Pages anyone may load, to sign in: the scanner shell, its assets, sign-in.
fn open_path(path: &str) -> bool {
    matches!(
        path,
        "/scanner"
            | "/scanner/"
            | "/scanner/api/me"
            | "/scanner/api/signin"
            | "/assets/scanner.css"
            | "/assets/scanner.js"
            | "/favicon.ico"
    )
}

/// Checks the token (when one is configured) and adds security headers.
/// Wrong tokens are counted per client address ([`throttle`]); a throttled
/// address's requests that carry a token are answered 429 unchecked.
async fn guard(State(web): State<Web>, mut req: Request, next: Next) -> Response {
    // Only this guard says who is signed in (below), never the client.
    req.headers_mut().remove(signin::SIGNED_IN);
    if web.loopback && !loopback_host(req.headers()) {
        return misdirected();
    }
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let path = req.uri().path().to_owned();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let query = Query::<TokenQuery>::try_from_uri(req.uri()).ok().and_then(|q| q.0.token);
    let cookie = cookie_token(req.headers());
    let operator_cookie = cookie_value(req.headers(), signin::COOKIE).is_some();
    let signing_in = req.method() == axum::http::Method::POST && path == "/scanner/api/signin";
    let carries_token =
        bearer.is_some() || query.is_some() || cookie.is_some() || operator_cookie || signing_in;
    if carries_token
        && let Some(ip) = client
        && let Some(wait) = web.throttle.blocked(ip, Instant::now())
    {
        return throttled(ip, wait);
    }
    let mut set_cookie = None;
    // A signed-in operator's cookie (a live session in state.db, still valid
    // under the configuration) grants what the site token grants.
    let session = signin::resolve(&web, req.headers()).await;
    let signed_in = matches!(session, signin::Session::SignedIn(_));
    if let signin::Session::SignedIn(op) = &session {
        signin::mark(req.headers_mut(), op);
    }
    // A sign-in cookie that does not check out (no session id, an unknown,
    // ended or revoked session) is counted wherever it is sent
    // (`/scanner/api/me` would otherwise answer guesses freely) and removed,
    // so a browser holding a revoked one is counted once, not on every page.
    let bad_operator_cookie = matches!(session, signin::Session::Refused);
    if bad_operator_cookie {
        wrong_token(&web, client, "sign-in cookie", None);
    }
    let needs_token = web.token.is_some() || !web.operators.is_empty();
    if needs_token && web.token.is_none() && !open_path(&path) && !signed_in {
        return forget_bad_cookie(&web, bad_operator_cookie, refused());
    }
    if let Some(token) = &web.token {
        let want = token.as_bytes();
        let by_query = query.as_deref().is_some_and(|t| same(t.as_bytes(), want));
        let by_bearer = bearer.as_deref().is_some_and(|t| same(t.as_bytes(), want));
        let by_cookie = cookie.as_deref().is_some_and(|c| same(c.as_bytes(), view_cookie(token).as_bytes()));
        let ok = by_query || by_bearer || by_cookie || open_path(&path) || signed_in;
        if !ok {
            // Wrong site tokens count where they decide (on open paths they
            // decide nothing, and a stale cookie there is harmless).
            let tried: Vec<&str> = [
                (bearer.is_some(), "bearer"),
                (query.is_some(), "?token="),
                (cookie.is_some(), "token cookie"),
            ]
            .into_iter()
            .filter_map(|(sent, what)| sent.then_some(what))
            .collect();
            if !tried.is_empty() {
                wrong_token(&web, client, &tried.join(", "), None);
            }
            return forget_bad_cookie(&web, bad_operator_cookie, refused());
        }
        if by_query {
            set_cookie = self::set_cookie(COOKIE, view_cookie(token), web.tls, None);
            // Take the token out of the address bar (and of the history).
            if req.method() == axum::http::Method::GET && !path.starts_with("/events") {
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
    let mut r = api_rejection(&path, next.run(req).await).await;
    if let Some(c) = set_cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    let mut r = forget_bad_cookie(&web, bad_operator_cookie, r);
    secure(r.headers_mut());
    r
}

/// `r`, removing the browser's sign-in cookie when it was `bad` (and `r`
/// sets no new one), so a browser holding an ended or revoked session is
/// counted once, not on every page.
fn forget_bad_cookie(web: &Web, bad: bool, mut r: Response) -> Response {
    let sets_operator = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(format!("{}=", signin::COOKIE).as_bytes()));
    if bad
        && !sets_operator
        && let Some(c) = self::set_cookie(signin::COOKIE, String::new(), web.tls, Some(Duration::ZERO))
    {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Counts a wrong token from `client` and logs what it was tried against
/// (`tried`: bearer, cookie, sign-in; the name typed at a sign-in), never
/// the value.
fn wrong_token(web: &Web, client: Option<IpAddr>, tried: &str, name: Option<&str>) {
    let Some(ip) = client else {
        tracing::warn!(tried, name, "web: wrong token from an unknown address");
        return;
    };
    let failures = web.throttle.failed(ip, Instant::now());
    let limit = throttle::MAX_FAILURES;
    if failures == limit {
        tracing::warn!(client = %ip, tried, name, failures, limit, window_s = throttle::WINDOW.as_secs(),
            "web: wrong token; that is too many, further tokens from this address are refused (429) until the window ends");
    } else {
        tracing::warn!(client = %ip, tried, name, failures, limit, "web: wrong token");
    }
}

/// 429 for an address that sent too many wrong tokens, with `Retry-After`.
fn throttled(ip: IpAddr, wait: Duration) -> Response {
    let secs = throttle::retry_secs(wait);
    let body = serde_json::json!({
        "ok": false,
        "kind": "throttled",
        "error": format!("too many wrong tokens from {ip}; try again in {secs} s"),
    });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    secure(r.headers_mut());
    r
}

/// The APIs (`/scanner/api/*`, `/admin/api/*`) answer in JSON, and their
/// pages read only JSON: the framework's plain-text refusals (a body over
/// the limit, a body that is not the JSON expected) are rewritten as
/// `{"ok": false, "kind", "error"}` with the same status. A body over the
/// limit is refused in JSON on every path.
async fn api_rejection(path: &str, r: Response) -> Response {
    let api = path.starts_with("/scanner/api/") || path.starts_with("/admin/api/");
    let too_large = r.status() == StatusCode::PAYLOAD_TOO_LARGE;
    let plain = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !plain || !(too_large || (api && r.status().is_client_error())) {
        return r;
    }
    let status = r.status();
    let (kind, error) = if too_large {
        let limit = if csv_path(path) { CSV_BODY_LIMIT } else { BODY_LIMIT };
        let csv = if csv_path(path) {
            format!(" (a CSV may have at most {} bytes)", admin::MAX_CSV)
        } else {
            String::new()
        };
        (
            "too_large",
            format!("request body over {limit} bytes, the most accepted here{csv}; nothing was changed"),
        )
    } else {
        let text = axum::body::to_bytes(r.into_body(), 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        ("invalid", if text.is_empty() { status.to_string() } else { text })
    };
    (status, Json(serde_json::json!({"ok": false, "kind": kind, "error": error}))).into_response()
}

/// Paths taking a CSV upload ([`CSV_BODY_LIMIT`]).
fn csv_path(path: &str) -> bool {
    matches!(path, "/admin/api/load-snap-boards" | "/admin/api/load-coordinates")
}

/// True when the request's `Host` names a loopback address (`localhost`,
/// `127.x.x.x`, `[::1]`, with or without a port). A page served on the
/// loopback listener under any other name is a DNS-rebinding attempt: a site
/// the browser loaded pointing its own name at 127.0.0.1 to read the views.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/1.0 clients without Host are not browsers.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn misdirected() -> Response {
    let mut r = (
        StatusCode::MISDIRECTED_REQUEST,
        "casmand's web views on a loopback address answer only to localhost, 127.0.0.1 or [::1]",
    )
        .into_response();
    secure(r.headers_mut());
    r
}

fn refused() -> Response {
    let body = html::message_page(
        "Access token required",
        maud::html! {
            "This casmand requires its access token (" code { "http.token" } "): send "
            code { "Authorization: Bearer <token>" } ", open a page once with " code { "?token=<token>" }
            ", or " a href="/scanner" { "sign in on the scanner" } "."
        },
    );
    let mut r = (StatusCode::UNAUTHORIZED, Html(body.into_string())).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
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

/// A failure while building a page, answered with the HTTP status of the
/// one error mapping ([`json::status_of`]: not found is 404, a bad value
/// 400, ...) and the domain's message; an internal error is logged in full
/// and shown generically.
#[derive(Debug)]
struct WebError(crate::error::Error);

impl From<crate::error::Error> for WebError {
    fn from(e: crate::error::Error) -> Self {
        WebError(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, _) = json::status_of(&self.0);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "web view failed");
            "The page could not be built; the casmand log says why.".to_owned()
        } else {
            self.0.to_string()
        };
        let title = status.canonical_reason().unwrap_or("Error");
        (status, Html(html::message_page(title, maud::html! { (message) }).into_string())).into_response()
    }
}

type PageResult = Result<Html<String>, WebError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_reach_the_loopback_listener() {
        let with = |h: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_static(h));
            loopback_host(&m)
        };
        for ok in ["localhost", "LOCALHOST:8998", "127.0.0.1:8998", "127.1.2.3", "[::1]:8998", "[::1]"] {
            assert!(with(ok), "{ok}");
        }
        for bad in
            ["evil.example:8998", "evil.example", "192.168.1.5:8998", "localhost.evil.example", "[::2]:80"]
        {
            assert!(!with(bad), "{bad}");
        }
    }

    #[test]
    fn page_errors_answer_with_their_status() {
        let r = WebError(crate::error::Error::NotFound("no part ANT00009P1".into())).into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = WebError(crate::error::Error::invalid("grid code \"X\"")).into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = WebError(crate::error::Error::internal("reading", "disk")).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn cookies_are_strict_and_http_only() {
        let c = set_cookie(COOKIE, "ab".into(), true, Some(std::time::Duration::from_secs(60)));
        let c = c.and_then(|c| c.to_str().ok().map(str::to_owned)).unwrap_or_default();
        for part in ["casman_token=ab", "Path=/", "HttpOnly", "SameSite=Strict", "Secure", "Max-Age=60"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        let c = set_cookie(COOKIE, "ab".into(), false, None);
        assert!(c.is_some_and(|c| !c.to_str().unwrap_or("Secure").contains("Secure")));
    }

    #[test]
    fn token_comparison_and_cookie() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; casman_token=736563726574"));
        assert_eq!(cookie_token(&h).as_deref(), Some("736563726574"));
        // The view cookie is a digest: neither the token nor its hex.
        let c = view_cookie("secret");
        assert_eq!(c.len(), 64);
        assert!(!c.contains("secret") && !c.contains("736563726574"));
        assert_ne!(view_cookie("secret2"), c);
    }
}

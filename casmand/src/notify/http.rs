//! The HTTP side of notifications: the webhook's POST of an event's JSON
//! and the success ping's GET, over hyper-util's client with rustls (the
//! system's root certificates), each bounded by `notify.timeout`, the
//! webhook retried with backoff. URLs are only ever shown redacted
//! ([`super::redact`]), and so are the client's error messages.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use super::redact;

/// Attempts of one webhook delivery.
pub const WEBHOOK_ATTEMPTS: u32 = 6;

/// Why a request did not succeed. Messages hold the URL redacted only.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL is not one casmand can call.
    #[error("{url}: {rule}")]
    BadUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        rule: &'static str,
    },
    /// No answer in time.
    #[error("{url}: no answer within {timeout}")]
    Timeout {
        /// The URL, redacted.
        url: String,
        /// `notify.timeout`.
        timeout: String,
    },
    /// The connection or the request failed.
    #[error("{url}: {reason}")]
    Failed {
        /// The URL, redacted.
        url: String,
        /// The client's message, scrubbed of the URL's secrets.
        reason: String,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url}: answered HTTP {status}")]
    Status {
        /// The URL, redacted.
        url: String,
        /// The status code.
        status: u16,
    },
}

impl SendError {
    /// Whether trying again may help (not a bad URL, not a 4xx other than
    /// 408 and 429).
    pub fn retryable(&self) -> bool {
        match self {
            SendError::BadUrl { .. } => false,
            SendError::Status { status, .. } => !(400..500).contains(status) || matches!(status, 408 | 429),
            _ => true,
        }
    }
}

/// An HTTP(S) client for notifications. Cheap to clone.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    agent: String,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("timeout", &self.timeout).finish()
    }
}

impl Http {
    /// A client whose requests take at most `timeout` each. Without
    /// readable system root certificates only `http://` URLs work (logged).
    pub fn new(timeout: Duration) -> Http {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "notify: no system root certificates; https:// webhooks will fail");
                let roots = tokio_rustls::rustls::RootCertStore::empty();
                let config = tokio_rustls::rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Http { client, timeout, agent: format!("casmand/{}", env!("CARGO_PKG_VERSION")) }
    }

    /// Sends one request: `body` as JSON with POST, or a GET without one.
    pub async fn send(&self, url: &str, body: Option<&[u8]>) -> Result<u16, SendError> {
        let shown = redact::url(url);
        let parsed = redact::check_url(url).map_err(|rule| SendError::BadUrl { url: shown.clone(), rule })?;
        let mut req =
            http::Request::builder().uri(parsed.as_str()).header(http::header::USER_AGENT, &self.agent);
        // Userinfo travels as Basic authentication, never in the request line.
        if !parsed.username().is_empty() {
            let user =
                percent_encoding::percent_decode_str(parsed.username()).decode_utf8_lossy().into_owned();
            let pass = parsed
                .password()
                .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            req = req
                .header(http::header::AUTHORIZATION, format!("Basic {}", base64(&format!("{user}:{pass}"))));
        }
        let req = match body {
            Some(b) => req
                .method(http::Method::POST)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::copy_from_slice(b))),
            None => req.method(http::Method::GET).body(Full::new(Bytes::new())),
        };
        let req = req.map_err(|_| SendError::BadUrl { url: shown.clone(), rule: "cannot be requested" })?;
        let req = without_userinfo(req);
        let answer = tokio::time::timeout(self.timeout, async {
            let resp = self.client.request(req).await?;
            let status = resp.status().as_u16();
            // Read (and drop) the answer so the connection can be reused.
            let _ = resp.into_body().collect().await;
            Ok::<u16, hyper_util::client::legacy::Error>(status)
        })
        .await;
        match answer {
            Err(_) => {
                Err(SendError::Timeout { url: shown, timeout: casman_proto::duration::format(self.timeout) })
            }
            Ok(Err(e)) => {
                let reason = redact::scrub(&crate::error::chain(&e), url);
                Err(SendError::Failed { url: shown, reason })
            }
            Ok(Ok(status)) if (200..300).contains(&status) => Ok(status),
            Ok(Ok(status)) => Err(SendError::Status { url: shown, status }),
        }
    }

    /// POSTs `body` to `url`, retrying a failure that may pass after 1s,
    /// 2s, 4s, ... (at most [`WEBHOOK_ATTEMPTS`] attempts). `stop` turning
    /// true ends the retries.
    pub async fn post_with_retries(
        &self,
        url: &str,
        body: &[u8],
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<u32, SendError> {
        let mut attempt = 1;
        loop {
            match self.send(url, Some(body)).await {
                Ok(_) => return Ok(attempt),
                Err(e) if attempt < WEBHOOK_ATTEMPTS && e.retryable() => {
                    let wait = retry_wait(attempt);
                    tracing::debug!(error = %e, attempt, "notify: webhook failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return Err(e),
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The wait after failed attempt `n` (1-based): 1s, 2s, 4s, ... at most 60s.
pub fn retry_wait(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// The request with the userinfo taken out of its URI.
fn without_userinfo(mut req: http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let uri = req.uri().clone();
    let host = uri.authority().and_then(|a| a.as_str().rsplit_once('@').map(|(_, h)| h.to_owned()));
    if let Some(host) = host {
        let mut parts = uri.into_parts();
        parts.authority = host.parse().ok();
        if let Ok(u) = http::Uri::from_parts(parts) {
            *req.uri_mut() = u;
        }
    }
    req
}

/// Standard base64 of `s` (for Basic authentication).
fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, c)| n | u32::from(*c) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_standard_base64() {
        assert_eq!(base64("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(base64("ab"), "YWI=");
        assert_eq!(base64("abc"), "YWJj");
    }

    #[test]
    fn retries_back_off_and_are_capped() {
        assert_eq!(retry_wait(1), Duration::from_secs(1));
        assert_eq!(retry_wait(2), Duration::from_secs(2));
        assert_eq!(retry_wait(5), Duration::from_secs(16));
        assert_eq!(retry_wait(30), Duration::from_secs(60));
    }

    #[test]
    fn client_errors_are_not_retried_but_throttling_is() {
        let s = |status| SendError::Status { url: String::new(), status };
        assert!(!s(404).retryable());
        assert!(s(429).retryable());
        assert!(s(503).retryable());
    }

    #[tokio::test]
    async fn https_goes_through_tls_and_a_failed_handshake_is_an_error_not_a_panic() {
        // A plain-text server where TLS is expected: the handshake fails.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok();
        let Some(port) = listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port()) else {
            return;
        };
        tokio::spawn(async move {
            if let Some(l) = listener
                && let Ok((mut s, _)) = l.accept().await
            {
                use tokio::io::AsyncWriteExt;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let url = format!("https://127.0.0.1:{port}/hook?token=s3cr3t");
        let err = Http::new(Duration::from_secs(5)).send(&url, Some(b"{}")).await;
        let err = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with(&format!("https://127.0.0.1:{port}/<redacted>?<redacted>: ")), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_url_redacted() {
        let http = Http::new(Duration::from_secs(5));
        // A port nothing listens on (bound then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let url = format!("http://u:s3cr3t@127.0.0.1:{}/hook/abc?token=xyz", port.unwrap_or(9));
        let err = http.send(&url, Some(b"{}")).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("127.0.0.1"), "{err}");
        for secret in ["s3cr3t", "abc", "xyz"] {
            assert!(!err.contains(secret), "{err}");
        }
    }
}

//! Per-RPC request counts and latency (issue 31): a tower layer on the
//! tonic server ([`RpcMetricsLayer`]) counts every gRPC request by method
//! and status code (`casman_rpc_requests_total{method,code}`) and observes
//! its duration by method (`casman_rpc_duration_seconds`), from the request
//! until the response ends (its trailers, so a stream counts whole and a
//! status sent in trailers is the one counted). A response dropped before
//! its end (the client went away) counts as `CANCELLED`.
//!
//! Method labels are the gRPC path (`casman.v1.Parts/AddPart`); requests
//! for methods the server does not have (UNIMPLEMENTED) are counted under
//! `unknown`, so a client cannot grow the label set.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use http_body::{Body, Frame};

use crate::histogram::{self, Histogram};

/// Method label of requests for methods the server does not have.
pub const UNKNOWN: &str = "unknown";

/// Counts and durations of every RPC. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RpcMetrics {
    inner: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    requests: BTreeMap<(String, &'static str), u64>,
    durations: BTreeMap<String, Arc<Histogram>>,
}

/// What [`RpcMetrics`] holds at one moment, sorted by method.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// (method, code, requests).
    pub requests: Vec<(String, &'static str, u64)>,
    /// (method, durations in seconds).
    pub durations: Vec<(String, histogram::Figures)>,
}

impl RpcMetrics {
    /// Counts one finished request of `method` with `code` after `seconds`.
    pub fn record(&self, method: &str, code: i32, seconds: f64) {
        let (method, code) = if code == 12 { (UNKNOWN, code_name(code)) } else { (method, code_name(code)) };
        let h = {
            let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            *t.requests.entry((method.to_owned(), code)).or_default() += 1;
            t.durations
                .entry(method.to_owned())
                .or_insert_with(|| Arc::new(Histogram::new(histogram::SECONDS)))
                .clone()
        };
        h.observe(seconds);
    }

    /// A snapshot.
    pub fn figures(&self) -> Figures {
        let t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Figures {
            requests: t.requests.iter().map(|((m, c), n)| (m.clone(), *c, *n)).collect(),
            durations: t.durations.iter().map(|(m, h)| (m.clone(), h.figures())).collect(),
        }
    }
}

/// The gRPC name of status `code` (`OK`, `INVALID_ARGUMENT`, ...).
pub fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

/// The `grpc-status` in `headers`, if any.
fn status_of(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

/// The method label of a request path (`/casman.v1.Parts/AddPart`).
fn method_of(path: &str) -> String {
    let m = path.trim_start_matches('/');
    if m.len() <= 128 && m.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/')) {
        m.to_owned()
    } else {
        UNKNOWN.to_owned()
    }
}

/// The tower layer that measures every request of the server it wraps.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: RpcMetrics,
}

impl RpcMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: RpcMetrics) -> Self {
        RpcMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Measured { inner, metrics: self.metrics.clone() }
    }
}

/// A service whose requests are measured (see [`RpcMetricsLayer`]).
#[derive(Debug, Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: RpcMetrics,
}

impl<S, ReqB, ResB> tower::Service<http::Request<ReqB>> for Measured<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: Body + Unpin,
{
    type Response = http::Response<MeteredBody<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let method = method_of(req.uri().path());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(resp) => {
                    let mut pending = Pending { metrics, method, started, code: None };
                    // A trailers-only response (an error) carries its status in the headers.
                    if let Some(code) = status_of(resp.headers()) {
                        pending.code = Some(code);
                    }
                    Ok(resp.map(|body| MeteredBody { body, pending: Some(pending) }))
                }
                Err(e) => {
                    metrics.record(&method, 13, started.elapsed().as_secs_f64());
                    Err(e)
                }
            }
        })
    }
}

/// A request being answered, recorded once when its response ends.
#[derive(Debug)]
struct Pending {
    metrics: RpcMetrics,
    method: String,
    started: Instant,
    code: Option<i32>,
}

impl Pending {
    fn finish(self, code: i32) {
        self.metrics.record(&self.method, code, self.started.elapsed().as_secs_f64());
    }
}

/// A response body that records its request when it ends.
#[derive(Debug)]
pub struct MeteredBody<B> {
    body: B,
    pending: Option<Pending>,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of)
                    && let Some(p) = this.pending.take()
                {
                    p.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(p) = this.pending.take() {
                    p.finish(13);
                }
            }
            Poll::Ready(None) => {
                if let Some(p) = this.pending.take() {
                    let code = p.code.unwrap_or(0);
                    p.finish(code);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            // Ended before its end: the status in the headers, else the
            // client went away.
            let code = p.code.unwrap_or(1);
            p.finish(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_method_and_code() {
        let m = RpcMetrics::default();
        m.record("casman.v1.Parts/ListParts", 0, 0.002);
        m.record("casman.v1.Parts/ListParts", 0, 0.004);
        m.record("casman.v1.Parts/AddPart", 3, 0.5);
        m.record("casman.v1.Nope/Nothing", 12, 0.0001);
        let f = m.figures();
        assert_eq!(
            f.requests,
            vec![
                ("casman.v1.Parts/AddPart".to_owned(), "INVALID_ARGUMENT", 1),
                ("casman.v1.Parts/ListParts".to_owned(), "OK", 2),
                (UNKNOWN.to_owned(), "UNIMPLEMENTED", 1),
            ]
        );
        let list = f.durations.iter().find(|(m, _)| m == "casman.v1.Parts/ListParts").map(|(_, h)| h.clone());
        assert_eq!(list.map(|h| h.count), Some(2));
    }

    #[test]
    fn odd_paths_do_not_make_labels() {
        assert_eq!(method_of("/casman.v1.Parts/AddPart"), "casman.v1.Parts/AddPart");
        assert_eq!(method_of("/a\"b"), UNKNOWN);
        assert_eq!(method_of(&format!("/{}", "x".repeat(500))), UNKNOWN);
        assert_eq!(code_name(14), "UNAVAILABLE");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}

//! The web listener's accept loop: each connection within `[server]`'s
//! limits ([`crate::connections`], counted per client address), handshaken
//! with TLS when configured, and served by hyper-util (HTTP/1.1). A request's
//! head must arrive within `server.header_timeout` and its body within
//! `server.body_timeout` (issue 32, item 1: a client trickling a byte every
//! few seconds is closed); a connection counts as past its handshake once a
//! first whole request head has arrived. On shutdown, connections are asked
//! to finish and open event streams end.

use std::{net::SocketAddr, time::Duration};

use axum::{
    BoxError, Router,
    body::{Body, HttpBody},
    extract::{ConnectInfo, Request},
    middleware::Next,
};
use futures_util::StreamExt;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;

use crate::connections::{Limiter, PeerKey};

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limiter: Limiter,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let (tcp, client) = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, typically: let some connections end.
                    tracing::warn!(error = %e, "web: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let tcp = match limiter.admit_from(tcp, PeerKey::Addr(client.ip()), false) {
            Ok(tcp) => tcp,
            Err((_, refused)) => {
                tracing::debug!(client = %client, "web: {}", refused.0);
                continue;
            }
        };
        let settle = tcp.settler();
        let body_timeout = limiter.body_timeout();
        let svc = app
            .clone()
            .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
                // A whole request head has arrived.
                settle.settle();
                next.run(with_body_deadline(req, body_timeout))
            }))
            .layer(axum::Extension(ConnectInfo::<SocketAddr>(client)));
        let svc = TowerToHyperService::new(svc);
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(limiter.header_timeout());
        match &tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc).into_owned();
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = watched.await {
                        tracing::debug!(client = %client, error = %e, "web: connection ended");
                    }
                });
            }
            Some(tls) => {
                let tls = tls.clone();
                let watcher = graceful.watcher();
                let handshake = limiter.handshake_timeout();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(handshake, tls.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %client, error = %e, "https: handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(client = %client, "https: no handshake within server.handshake_timeout");
                            return;
                        }
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(client = %client, error = %e, "https: connection ended");
                    }
                });
            }
        }
    }
    // Event streams end on `stop` too; give the rest a moment to finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// `req` with a body that fails unless it has arrived whole within `limit`
/// (`server.body_timeout`) of now.
fn with_body_deadline(req: Request, limit: Duration) -> Request {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return Request::from_parts(parts, body);
    }
    let deadline = tokio::time::Instant::now() + limit;
    let chunks = futures_util::stream::unfold(Some(body.into_data_stream()), move |data| async move {
        let mut data = data?;
        match tokio::time::timeout_at(deadline, data.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(data))),
            Ok(Some(Err(e))) => Some((Err(BoxError::from(e)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(BoxError::from(format!(
                    "the request body did not arrive within server.body_timeout ({limit:?})"
                ))),
                None,
            )),
        }
    });
    Request::from_parts(parts, Body::from_stream(chunks))
}

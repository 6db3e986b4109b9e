//! The web listener's accept loop: each connection within `[server]`'s
//! limits ([`crate::connections`]), handshaken with TLS when configured, and
//! served by hyper-util (HTTP/1.1). On shutdown,
//! connections are asked to finish and open event streams end.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;

use crate::connections::Limiter;

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
        let Some(tcp) = limiter.admit(tcp) else { continue };
        let svc = app.clone().layer(axum::Extension(ConnectInfo::<SocketAddr>(client)));
        let svc = TowerToHyperService::new(svc);
        let builder = Builder::new(TokioExecutor::new());
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

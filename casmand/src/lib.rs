//! casmand: the daemon that owns CASM's assembly databases and serves the
//! `casman.v1` gRPC API on a Unix socket.
//!
//! [`run`] is the whole daemon; `main.rs` only parses flags, loads the
//! configuration and turns signals into the shutdown future.

pub mod api;
pub mod config;
pub mod config_env;
pub mod context;
pub mod error;
pub mod logging;
pub mod peer;
pub mod server;
pub mod systemd;

use std::{future::Future, path::PathBuf};

use casman_proto::socket::{Side, default_socket_path};
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

use crate::{config::Loaded, context::Context};

/// Why the daemon could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The socket could not be bound.
    #[error(transparent)]
    Socket(#[from] server::SocketError),
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A service failed to start.
    #[error("{0}")]
    Startup(String),
    /// The server failed while running.
    #[error("server: {0}")]
    Serve(String),
}

/// Runs the daemon until `shutdown` completes, then stops gracefully: no new
/// connections, in-flight requests finish (bounded by `shutdown_timeout`),
/// the socket is removed.
pub async fn run(
    loaded: Loaded,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let config = &loaded.config;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| RunError::DataDir { path: config.data_dir.clone(), source })?;
    let socket_path = config.socket.clone().unwrap_or_else(|| default_socket_path(Side::Daemon));
    let gid = config.socket_group.as_deref().map(server::resolve_group).transpose()?;
    let mode = config.socket_mode().unwrap_or(0o660);
    let timeout = config.shutdown_timeout;

    let server::BoundSocket { listener, file: socket_file } = server::bind(&socket_path, mode, gid)?;
    let ctx = Context::new(loaded, socket_file.path.clone());
    let router = api::router(ctx.clone()).await.map_err(|e| RunError::Startup(e.to_string()))?;

    // One signal, observed by the server (stop accepting) and by us (deadline).
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        systemd::stopping();
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let mut server_stop = stop_rx.clone();
    let incoming = UnixListenerStream::new(listener);
    let serve = router.serve_with_incoming_shutdown(incoming, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    });

    let watchdog = systemd::watchdog_interval().map(|i| tokio::spawn(systemd::watchdog(i)));
    let status_line = format!("serving on {}", socket_file.path.display());
    tracing::info!(socket = %socket_file.path.display(), data_dir = %ctx.config().data_dir.display(), version = env!("CARGO_PKG_VERSION"), "casmand ready");
    systemd::ready(&status_line);

    tokio::pin!(serve);
    let result = tokio::select! {
        r = &mut serve => r.map_err(|e| RunError::Serve(e.to_string())),
        _ = async {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(timeout).await;
        } => {
            tracing::warn!(timeout = ?timeout, "in-flight requests did not finish in time; closing them");
            Ok(())
        }
    };
    if let Some(w) = watchdog {
        w.abort();
    }
    socket_file.remove();
    tracing::info!("casmand stopped");
    result
}

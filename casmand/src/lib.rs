//! casmand: the daemon that owns CASM's assembly databases and serves the
//! `casman.v1` gRPC API on a Unix socket.
//!
//! [`run`] is the whole daemon; `main.rs` only parses flags, loads the
//! configuration and turns signals into the shutdown future.

pub mod api;
pub mod authz;
pub mod backup;
pub mod config;
pub mod connections;
pub mod context;
pub mod db;
pub mod error;
pub mod histogram;
pub mod inventory;
pub mod labels;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod peer;
pub mod rpc_metrics;
pub mod schedule;
pub mod server;
pub mod systemd;
pub mod timestamp;
pub mod uds_authority;
pub mod web;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod test_rng;

use std::{future::Future, path::PathBuf};

use casman_proto::socket::{Side, default_socket_path};
use futures_util::{StreamExt, TryStreamExt};
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
    /// Another daemon owns the data directory.
    #[error("data directory {0} is in use by another casmand (lock file {0}/casmand.lock)")]
    DataDirLocked(PathBuf),
    /// A database could not be opened, adopted or migrated.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// `admin_group` names no group.
    #[error("admin_group: {0}")]
    AdminGroup(#[source] server::SocketError),
    /// `legacy_timezone` names no time zone.
    #[error("legacy_timezone: {0}")]
    Timezone(#[source] jiff::Error),
    /// The backup store could not be set up from the configuration.
    #[error("backup store: {0}")]
    Store(#[source] backup::store::StoreError),
    /// The gRPC services could not be built.
    #[error("{0}")]
    Services(#[source] error::Error),
    /// The web listener could not be bound.
    #[error(transparent)]
    Web(#[from] web::BindError),
    /// The server failed while running.
    #[error("server: {0}")]
    Serve(#[source] tonic::transport::Error),
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

    let admin_gid = match config.admin_group.as_deref() {
        Some(g) => Some(server::resolve_group(g).map_err(RunError::AdminGroup)?),
        None => None,
    };
    let tz = match config.legacy_timezone.as_deref() {
        Some(name) => jiff::tz::TimeZone::get(name).map_err(RunError::Timezone)?,
        None => jiff::tz::TimeZone::system(),
    };
    // Bind first: a daemon already serving on this socket is refused before
    // anything touches the databases. Clients connecting meanwhile wait in the
    // backlog until the databases are open.
    // Under socket activation systemd bound the socket (casmand.socket).
    let server::BoundSocket { listener, file: socket_file } = match server::from_systemd()? {
        Some(inherited) => inherited,
        None => server::bind(&socket_path, mode, gid)?,
    };
    // `socket_file` removes the socket file when it goes out of scope, on
    // every return below.
    let _lock = lock_data_dir(&config.data_dir)?;
    clear_tmp_dir(&config.data_dir.join("tmp"));
    db::settle_safety_copies(&config.data_dir);
    systemd::status("opening databases");
    let dbs = db::Databases::open(&config.data_dir, &tz).await?;
    // Every change from here on carries this site's identity (db::stamping).
    dbs.stamp_as(&config.site_id).await?;
    let store = backup::store::Store::from_config(config, backup::accounting::Accounting::default())
        .await
        .map_err(RunError::Store)?;
    let (notices, notify_rx) = notify::Notices::channel(&config.notify);
    let backups = backup::service::BackupService::new(
        store,
        dbs.clone(),
        config.site_id.clone(),
        config.sync.keep_versions,
        &config.data_dir,
        tz.clone(),
    )
    .with_deltas(config.sync.delta_chain_max, config.sync.delta_max_share)
    .with_exchange(config.sync.exchange)
    .with_spool(config.sync.offline_spool_max)
    .with_notices(notices);
    let (scans, scan_writer) = context::group_commit::channel(loaded.config.server.write_batch);
    let ctx = Context::new(loaded, socket_file.path.clone(), dbs.clone(), admin_gid, backups, scans);
    // One signal, observed by the server (stop accepting), the change feed's
    // watchers (end) and by us (deadline).
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let router = api::router(ctx.clone(), stop_rx.clone()).await.map_err(RunError::Services)?;
    // The web views (off unless http.listen is set), bound before READY=1 so
    // that a bad or busy address stops start-up.
    let web = web::bind(ctx.config()).await?;

    let stopping = dbs.clone();
    tokio::spawn(async move {
        shutdown.await;
        systemd::stopping();
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        stopping.stop_long_work();
    });
    let mut server_stop = stop_rx.clone();
    // Clients that send the socket path as :authority (grpcio, grpc-java)
    // are served too: see `uds_authority`.
    // Each connection within `[server]`'s limits: see `connections`.
    let limiter = connections::Limiter::socket(&ctx.config().server, ctx.admin_gid());
    let incoming = UnixListenerStream::new(listener)
        .filter_map(move |accepted| {
            let limiter = limiter.clone();
            async move {
                match accepted {
                    Ok(stream) => limiter.admit_unix(stream).map(Ok),
                    // Out of descriptors, typically: pause rather than spin (tonic retries at once).
                    Err(e) => {
                        tracing::warn!(error = %e, "socket: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        Some(Err(e))
                    }
                }
            }
        })
        .map_ok(uds_authority::AuthorityFix::new);
    let serve = router.serve_with_incoming_shutdown(incoming, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    });

    // Every background task, in one list; each ends on the stop signal.
    let tasks = context::tasks::start(&ctx, scan_writer, web, notify_rx, stop_rx.clone());
    let status_line = format!("serving on {}", socket_file.path.display());
    tracing::info!(socket = %socket_file.path.display(), data_dir = %ctx.config().data_dir.display(), version = env!("CARGO_PKG_VERSION"), "casmand ready");
    // Adoption and the first rebuild of a large file allocated a lot, and
    // filled the connections' page caches.
    dbs.release_memory().await;
    systemd::ready(&status_line);

    tokio::pin!(serve);
    let result = tokio::select! {
        r = &mut serve => r.map_err(RunError::Serve),
        _ = async {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(timeout).await;
        } => {
            tracing::warn!(timeout = ?timeout, "in-flight requests did not finish in time; closing them");
            Ok(())
        }
    };
    // A backup in progress may finish (bounded); pending work stays in state.db.
    tasks.stopped(timeout).await;
    drop(socket_file);
    dbs.close().await;
    tracing::info!("casmand stopped");
    result
}

/// Removes what a killed daemon left in `<data_dir>/tmp` (half-written
/// snapshots and downloads). Only this daemon, holding the data-directory
/// lock, writes there, so nothing in it is in use at start. A file that cannot
/// be removed is logged, never fatal.
fn clear_tmp_dir(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed =
            if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match removed {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed a temporary file left by an earlier run")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover temporary file")
            }
        }
    }
}

/// Takes an exclusive lock on `<data_dir>/casmand.lock` for the daemon's
/// lifetime, so two daemons never write the same databases.
fn lock_data_dir(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, RunError> {
    let path = dir.join("casmand.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| RunError::DataDir { path: path.clone(), source })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| RunError::DataDirLocked(dir.to_path_buf()))
}

//! A tonic channel to casmand over its Unix socket.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

/// Why a connection to the daemon could not be made.
#[derive(Debug)]
pub struct ConnectError {
    /// The socket that was tried.
    pub socket: PathBuf,
    /// What went wrong, in words.
    pub reason: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach casmand at {}: {}", self.socket.display(), self.reason)
    }
}

impl std::error::Error for ConnectError {}

/// How long a client waits for a daemon that does not answer, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a gRPC channel to the daemon listening on `socket`, with the
/// default timeout ([`connect_with_timeout`]).
pub async fn connect(socket: &Path) -> Result<Channel, ConnectError> {
    connect_with_timeout(socket, DEFAULT_TIMEOUT).await
}

/// Opens a gRPC channel to the daemon listening on `socket`. The connection is
/// made eagerly, so a missing or dead daemon is reported here.
///
/// `timeout` bounds how long the client waits on a daemon that does not
/// answer at all (hung, overloaded past its limits, or stopped with SIGSTOP):
/// connecting must finish within it, and while a request is open the client
/// pings the daemon every `timeout` and gives up when a ping goes unanswered
/// for `timeout`. A daemon that is alive but busy with long work (a large
/// backup, a long stream) answers the pings, so long requests are not cut.
/// The client's HTTP/2 receive window per stream (bytes).
const STREAM_WINDOW: u32 = 4 << 20;

pub async fn connect_with_timeout(socket: &Path, timeout: Duration) -> Result<Channel, ConnectError> {
    let path = socket.to_path_buf();
    let err = |reason: String| ConnectError { socket: path.clone(), reason };
    if !path.exists() {
        return Err(err("no such socket".into()));
    }
    // The URI is required by tonic but never resolved: the connector below
    // ignores it and dials the Unix socket.
    let endpoint = Endpoint::try_from("http://casmand.invalid")
        .map_err(|e| err(e.to_string()))?
        .connect_timeout(timeout)
        .http2_keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .keep_alive_while_idle(true)
        // Long streams (100,000 parts, a restore to the client) are not held
        // back by HTTP/2's 64 KiB default window: over a local socket every
        // window update is a wake-up of both processes.
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(2 * STREAM_WINDOW));
    let dial = path.clone();
    let connecting = endpoint.connect_with_connector(service_fn(move |_: Uri| {
        let dial = dial.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(dial).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    }));
    let connected = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| err(format!("it did not answer within {timeout:?} (stopped, hung or overloaded?)")))?;
    connected.map_err(|e| {
        let mut reason = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        err(reason)
    })
}

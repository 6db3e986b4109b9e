//! A tonic channel to casmand over its Unix socket.

use std::path::{Path, PathBuf};

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

/// Opens a gRPC channel to the daemon listening on `socket`. The connection is
/// made eagerly, so a missing or dead daemon is reported here.
pub async fn connect(socket: &Path) -> Result<Channel, ConnectError> {
    let path = socket.to_path_buf();
    let err = |reason: String| ConnectError { socket: path.clone(), reason };
    if !path.exists() {
        return Err(err("no such socket".into()));
    }
    // The URI is required by tonic but never resolved: the connector below
    // ignores it and dials the Unix socket.
    let endpoint = Endpoint::try_from("http://casmand.invalid").map_err(|e| err(e.to_string()))?;
    let dial = path.clone();
    endpoint
        .connect_with_connector(service_fn(move |_: Uri| {
            let dial = dial.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(dial).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| {
            let mut reason = e.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                reason = s.to_string();
                src = s.source();
            }
            err(reason)
        })
}

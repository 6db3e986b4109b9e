//! casmanctl's failures and their exit codes: 1 for refused requests and an
//! unreachable daemon, 2 for bad input (clap's usage errors also exit 2).

use casman_proto::client::ConnectError;
use tonic::Code;

/// A command's failure, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The daemon is not running or the socket is wrong.
    #[error(
        "{0}. Start the daemon with `casmand` (or `sudo systemctl start casmand`), or name its socket with --socket"
    )]
    Connect(#[from] ConnectError),
    /// The daemon refused or failed the request.
    #[error("{}", rpc_message(.0))]
    Rpc(#[from] tonic::Status),
    /// Bad input found before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// Local I/O (reading a CSV, writing output).
    #[error("{0}")]
    Io(String),
}

/// The daemon's message, or, when the connection itself failed under the
/// request (no answer to the keep-alive pings), what that means.
fn rpc_message(s: &tonic::Status) -> String {
    let lost = matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled);
    let mut text = s.message().to_ascii_lowercase();
    let mut src = std::error::Error::source(s);
    while let Some(e) = src {
        text.push_str(&e.to_string().to_ascii_lowercase());
        src = e.source();
    }
    if lost && (text.contains("keep-alive") || text.contains("keepalive") || text.contains("timed out")) {
        return "casmand stopped answering (no reply within --timeout): it may be stopped, hung or overloaded".into();
    }
    s.message().to_owned()
}

impl CtlError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Rpc(s) if s.code() == Code::InvalidArgument => 2,
            _ => 1,
        }
    }
}

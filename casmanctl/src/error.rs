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
    #[error("{}", .0.message())]
    Rpc(#[from] tonic::Status),
    /// Bad input found before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// Local I/O (reading a CSV, writing output).
    #[error("{0}")]
    Io(String),
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

//! The daemon's error type. Every request fails with one of these kinds; the
//! mapping to gRPC status codes lives in `api::status` and nowhere else.
//! Messages name the offending value and the rule it broke, and never carry
//! internal details (those go to the log).

/// An error a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input: a bad part number, an unknown type, a count out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A rule refuses the request in the current state (chain rule,
    /// polarization mismatch, occupied position, sync divergence).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The storage quota would be exceeded.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The backup store cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The peer may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The client gave up or the daemon is shutting down.
    #[error("{0}")]
    Aborted(String),
    /// Anything else. The message shown to clients is generic; the detail is logged.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the daemon's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::FailedPrecondition`].
    pub fn refused(msg: impl Into<String>) -> Self {
        Error::FailedPrecondition(msg.into())
    }

    /// An internal error whose detail is logged, not shown. A failure of the
    /// machine rather than of casman (the disk full, a permission, a path that
    /// is not a directory) is told as what it is, with the context, since the
    /// operator can fix it: std and SQLite both end such messages with the
    /// OS error number, which is what is looked at.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        tracing::error!(context, error = %detail, "internal error");
        match os_error(&detail) {
            Some(OsFault::Full) => Error::ResourceExhausted(format!(
                "{context}: no space left on the device ({detail}); nothing was written: free space and try again"
            )),
            Some(OsFault::Denied) => Error::FailedPrecondition(format!(
                "{context}: permission denied ({detail}): check the owner and mode of casmand's directories"
            )),
            Some(OsFault::NotADirectory) => {
                Error::FailedPrecondition(format!("{context}: a path is not a directory ({detail})"))
            }
            Some(OsFault::ReadOnly) => {
                Error::FailedPrecondition(format!("{context}: the file system is read-only ({detail})"))
            }
            None => Error::Internal(context.to_owned()),
        }
    }
}

/// Failures of the machine that an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OsFault {
    Full,
    Denied,
    NotADirectory,
    ReadOnly,
}

/// Reads the OS error number std prints (`... (os error 28)`).
fn os_error(detail: &str) -> Option<OsFault> {
    let start = detail.rfind("(os error ")? + "(os error ".len();
    let code: i32 = detail[start..].split(')').next()?.parse().ok()?;
    use nix::errno::Errno;
    match Errno::from_raw(code) {
        Errno::ENOSPC | Errno::EDQUOT => Some(OsFault::Full),
        Errno::EACCES | Errno::EPERM => Some(OsFault::Denied),
        Errno::ENOTDIR => Some(OsFault::NotADirectory),
        Errno::EROFS => Some(OsFault::ReadOnly),
        _ => None,
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound("no such row".into()),
            sqlx::Error::PoolTimedOut => Error::Unavailable("the database is busy; try again".into()),
            // The file was replaced (restore, sync) while this request was starting.
            sqlx::Error::PoolClosed => {
                Error::Unavailable("the database was being replaced by a restore or sync; try again".into())
            }
            // SQLite's own codes for a full disk and a read-only file.
            sqlx::Error::Database(d) if d.code().as_deref() == Some("13") => {
                tracing::error!(error = %e, "database write failed: disk full");
                Error::ResourceExhausted(
                    "the disk holding the databases is full (database or disk is full); nothing was written: free space and try again"
                        .into(),
                )
            }
            sqlx::Error::Database(d) if d.code().as_deref() == Some("8") => {
                tracing::error!(error = %e, "database write failed: read-only");
                Error::FailedPrecondition(
                    "the database file is read-only (attempt to write a readonly database): check its owner and mode".into(),
                )
            }
            _ => Error::internal("database error", e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_failures_are_told_as_what_they_are() {
        let full = std::io::Error::from_raw_os_error(28);
        let e = Error::internal("writing the snapshot", full);
        assert!(matches!(e, Error::ResourceExhausted(_)), "{e:?}");
        assert!(e.to_string().contains("writing the snapshot") && e.to_string().contains("no space"), "{e}");
        let denied = std::io::Error::from_raw_os_error(13);
        assert!(matches!(Error::internal("opening /backups", denied), Error::FailedPrecondition(_)));
        let other = std::io::Error::other("boom");
        assert_eq!(Error::internal("a thing", other).to_string(), "internal error: a thing");
    }
}

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

    /// An internal error whose detail is logged, not shown.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(context, error = %detail, "internal error");
        Error::Internal(context.to_owned())
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
            _ => Error::internal("database error", e),
        }
    }
}

//! The daemon's error type. Every request fails with one of these; its
//! [`Kind`] decides the gRPC status (`api::status`) and the HTTP status
//! (`web::json`), the only two mappings. Messages name the offending value
//! and the rule it broke, and never carry internal details (those go to the
//! log). Errors keep their type up to that mapping: a store failure stays a
//! [`StoreError`], a failure of the machine keeps its `io::Error`, each with
//! its source chain; nothing is recognised again from message text.

use std::error::Error as StdError;

use crate::backup::store::StoreError;

/// A boxed cause, kept as the error's source.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

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
    /// The database is busy or being replaced, or the daemon is stopping.
    #[error("{0}")]
    Unavailable(String),
    /// The peer may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The client gave up, or a compare-and-swap lost a race.
    #[error("{0}")]
    Aborted(String),
    /// The backup store failed (unreachable, credentials refused, no such
    /// object, ...): the variant of [`StoreError`] decides the kind.
    #[error("{}", store_message(.0))]
    Store(#[source] StoreError),
    /// A failure of the machine rather than of casman (the disk full, a
    /// permission, a read-only file system) while doing `context`: told as
    /// what it is, since the operator can fix it.
    #[error("{}", fault.message(context, source))]
    Machine {
        /// What was being done.
        context: String,
        /// What the OS said, read from the error's `raw_os_error()`.
        fault: OsFault,
        /// The error, with its chain.
        #[source]
        source: Cause,
    },
    /// Anything else. The message shown to clients is generic; the detail is
    /// logged and kept as the source.
    #[error("internal error: {context}")]
    Internal {
        /// What was being done.
        context: String,
        /// The error, with its chain.
        #[source]
        source: Cause,
    },
}

/// Result with the daemon's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: one gRPC status code, one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input.
    InvalidArgument,
    /// No such thing.
    NotFound,
    /// It exists already.
    AlreadyExists,
    /// A rule refuses it now.
    FailedPrecondition,
    /// Out of quota or space.
    ResourceExhausted,
    /// Try again later.
    Unavailable,
    /// Not allowed.
    PermissionDenied,
    /// Gave up or lost a race.
    Aborted,
    /// A bug or an unexpected failure.
    Internal,
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::FailedPrecondition`].
    pub fn refused(msg: impl Into<String>) -> Self {
        Error::FailedPrecondition(msg.into())
    }

    /// An error while doing `context`, caused by `cause` (any error, or a
    /// message). If an `io::Error` anywhere in its source chain names a
    /// failure of the machine ([`OsFault`]), the error says so
    /// ([`Error::Machine`]); otherwise it is [`Error::Internal`]. The detail
    /// is logged either way.
    pub fn internal(context: &str, cause: impl Into<Cause>) -> Self {
        let source: Cause = cause.into();
        tracing::error!(context, error = %chain(&*source), "internal error");
        match os_fault(&*source) {
            Some(fault) => Error::Machine { context: context.to_owned(), fault, source },
            None => Error::Internal { context: context.to_owned(), source },
        }
    }

    /// The kind of failure, for the gRPC and HTTP mappings.
    pub fn kind(&self) -> Kind {
        match self {
            Error::InvalidArgument(_) => Kind::InvalidArgument,
            Error::NotFound(_) => Kind::NotFound,
            Error::AlreadyExists(_) => Kind::AlreadyExists,
            Error::FailedPrecondition(_) => Kind::FailedPrecondition,
            Error::ResourceExhausted(_) => Kind::ResourceExhausted,
            Error::Unavailable(_) => Kind::Unavailable,
            Error::PermissionDenied(_) => Kind::PermissionDenied,
            Error::Aborted(_) => Kind::Aborted,
            Error::Store(e) => match e {
                StoreError::NotFound(_) => Kind::NotFound,
                StoreError::PreconditionFailed(_) => Kind::Aborted,
                StoreError::Unavailable(_) | StoreError::Auth(_) => Kind::Unavailable,
                StoreError::Disabled => Kind::FailedPrecondition,
                StoreError::Io { source, .. } => match OsFault::of(source) {
                    Some(f) => f.kind(),
                    None => Kind::Internal,
                },
                StoreError::Other(_) => Kind::Internal,
            },
            Error::Machine { fault, .. } => fault.kind(),
            Error::Internal { .. } => Kind::Internal,
        }
    }

    /// Whether this is the disk holding casmand's files being full (as
    /// opposed to the store's quota).
    pub fn disk_full(&self) -> bool {
        match self {
            Error::Machine { fault, .. } => *fault == OsFault::Full,
            Error::Store(StoreError::Io { source, .. }) => OsFault::of(source) == Some(OsFault::Full),
            _ => false,
        }
    }

    /// Whether the backup store cannot be used now (unreachable, or refusing
    /// the credentials), as opposed to a busy database or a bad object: what
    /// the offline spool is for.
    pub fn store_unusable(&self) -> bool {
        matches!(self, Error::Store(StoreError::Unavailable(_) | StoreError::Auth(_)))
    }

    /// An error of the same kind with the same message, for each request of
    /// a group-committed batch that failed as a whole (the original keeps
    /// its source chain for the first).
    pub fn replicate(&self) -> Error {
        let m = self.to_string();
        match self.kind() {
            Kind::InvalidArgument => Error::InvalidArgument(m),
            Kind::NotFound => Error::NotFound(m),
            Kind::AlreadyExists => Error::AlreadyExists(m),
            Kind::FailedPrecondition => Error::FailedPrecondition(m),
            Kind::ResourceExhausted => Error::ResourceExhausted(m),
            Kind::Unavailable => Error::Unavailable(m),
            Kind::PermissionDenied => Error::PermissionDenied(m),
            Kind::Aborted => Error::Aborted(m),
            Kind::Internal => match self {
                Error::Internal { context, .. } => {
                    Error::Internal { context: context.clone(), source: "the batch failed".into() }
                }
                _ => Error::Internal { context: m, source: "the batch failed".into() },
            },
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::Other(_) | StoreError::Io { .. }) {
            tracing::error!(error = %chain(&e), "backup store error");
        }
        Error::Store(e)
    }
}

/// What a request failing with a store error says.
fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::NotFound(k) => format!("no backup {k} in the store"),
        StoreError::PreconditionFailed(k) => format!("{k} changed meanwhile; try again"),
        StoreError::Disabled => "backups are disabled (backend none); set sync.backend".into(),
        StoreError::Unavailable(_) | StoreError::Auth(_) => e.to_string(),
        StoreError::Io { what, source } => match OsFault::of(source) {
            Some(f) => f.message(&format!("backup store: {what}"), source),
            None => "internal error: backup store".into(),
        },
        StoreError::Other(_) => "internal error: backup store".into(),
    }
}

/// Failures of the machine that an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFault {
    /// No space left (or over the disk quota).
    Full,
    /// Permission denied.
    Denied,
    /// A path that should be a directory is not.
    NotADirectory,
    /// The file system is mounted read-only.
    ReadOnly,
}

impl OsFault {
    /// The fault `e` reports: by its OS error number, or by its kind when
    /// it wraps one (tempfile and others add the path to the error, keeping
    /// the kind but not the number).
    pub fn of(e: &std::io::Error) -> Option<OsFault> {
        use std::io::ErrorKind as K;

        use nix::errno::Errno;
        if let Some(n) = e.raw_os_error() {
            return match Errno::from_raw(n) {
                Errno::ENOSPC | Errno::EDQUOT => Some(OsFault::Full),
                Errno::EACCES | Errno::EPERM => Some(OsFault::Denied),
                Errno::ENOTDIR => Some(OsFault::NotADirectory),
                Errno::EROFS => Some(OsFault::ReadOnly),
                _ => None,
            };
        }
        match e.kind() {
            K::StorageFull | K::QuotaExceeded => Some(OsFault::Full),
            K::PermissionDenied => Some(OsFault::Denied),
            K::NotADirectory => Some(OsFault::NotADirectory),
            K::ReadOnlyFilesystem => Some(OsFault::ReadOnly),
            _ => None,
        }
    }

    fn kind(self) -> Kind {
        match self {
            OsFault::Full => Kind::ResourceExhausted,
            OsFault::Denied | OsFault::NotADirectory | OsFault::ReadOnly => Kind::FailedPrecondition,
        }
    }

    fn message(self, context: &str, detail: &dyn std::fmt::Display) -> String {
        match self {
            OsFault::Full => format!(
                "{context}: the disk is full: no space left on the device ({detail}); nothing was written: \
                 free space and try again"
            ),
            OsFault::Denied => format!(
                "{context}: permission denied ({detail}): check the owner and mode of casmand's directories"
            ),
            OsFault::NotADirectory => format!("{context}: a path is not a directory ({detail})"),
            OsFault::ReadOnly => format!("{context}: the file system is read-only ({detail})"),
        }
    }
}

/// The first machine fault named by an `io::Error` in `e`'s source chain.
fn os_fault(e: &(dyn StdError + 'static)) -> Option<OsFault> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(f) = e.downcast_ref::<std::io::Error>().and_then(OsFault::of) {
            return Some(f);
        }
        cur = e.source();
    }
    None
}

/// `e` and its sources, `: `-separated, for the log.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
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
        assert_eq!(e.kind(), Kind::ResourceExhausted, "{e:?}");
        assert!(e.to_string().contains("writing the snapshot") && e.to_string().contains("no space"), "{e}");
        let denied = std::io::Error::from_raw_os_error(13);
        assert_eq!(Error::internal("opening /backups", denied).kind(), Kind::FailedPrecondition);
        let other = std::io::Error::other("boom");
        assert_eq!(Error::internal("a thing", other).to_string(), "internal error: a thing");
    }

    /// The fault is read from the io::Error's number wherever it sits in
    /// the chain, never from message text.
    #[test]
    fn a_full_disk_is_told_apart_from_the_store_quota() {
        assert!(Error::internal("writing the snapshot", std::io::Error::from_raw_os_error(28)).disk_full());
        assert!(!Error::internal("writing the snapshot", std::io::Error::from_raw_os_error(13)).disk_full());
        assert!(!Error::ResourceExhausted("R2 quota limit reached".into()).disk_full());
    }

    #[test]
    fn faults_are_found_in_the_source_chain_not_in_text() {
        #[derive(Debug, thiserror::Error)]
        #[error("copying pages")]
        struct Wrapper(#[source] std::io::Error);
        let e = Error::internal("a snapshot", Wrapper(std::io::Error::from_raw_os_error(30)));
        assert_eq!(e.kind(), Kind::FailedPrecondition);
        assert!(e.to_string().contains("read-only"), "{e}");
        assert!(StdError::source(&e).is_some());
        let lookalike = Error::internal("a thing", "disk (os error 28)");
        assert_eq!(lookalike.kind(), Kind::Internal);
        // A wrapped error keeps its kind, not its number.
        let wrapped =
            std::io::Error::new(std::io::ErrorKind::StorageFull, "writing /x: No space left on device");
        assert_eq!(Error::internal("a temporary file", wrapped).kind(), Kind::ResourceExhausted);
    }

    #[test]
    fn store_errors_keep_their_type_and_kind() {
        let e = Error::from(StoreError::Unavailable("connection refused".into()));
        assert!(e.store_unusable());
        assert_eq!(e.kind(), Kind::Unavailable);
        assert_eq!(e.to_string(), "the backup store is unreachable: connection refused");
        let busy = Error::Unavailable("the backup store is unreachable: look-alike".into());
        assert!(!busy.store_unusable());
        let full = Error::from(StoreError::Io {
            what: "writing x".into(),
            source: std::io::Error::from_raw_os_error(28),
        });
        assert_eq!(full.kind(), Kind::ResourceExhausted);
        assert!(full.to_string().contains("no space left"), "{full}");
        assert_eq!(Error::from(StoreError::NotFound("k".into())).kind(), Kind::NotFound);
        assert_eq!(full.replicate().kind(), Kind::ResourceExhausted);
    }
}

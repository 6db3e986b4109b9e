//! The object store holding backups: one interface, three backends (S3/R2,
//! a local directory, none). Objects are immutable: versions are written with
//! `If-None-Match: *` (a collision is an error, never an overwrite); the
//! per-database manifest is replaced by compare-and-swap (`If-Match`).
//! Every request is counted by [`Accounting`].

mod local;
pub mod s3;

use std::{io::Write, path::Path};

use futures_util::{Stream, StreamExt};

pub use local::LocalStore;
pub use s3::S3Store;

use super::accounting::{Accounting, Request};

/// What the store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// Entity tag (opaque; used for conditional requests).
    pub etag: String,
    /// Storage class, when the backend has them (`STANDARD`, `STANDARD_IA`).
    pub storage_class: Option<String>,
    /// Last modification time, RFC 3339, when known.
    pub last_modified: Option<String>,
}

/// A condition on a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object's entity tag is this (`If-Match`).
    Matches(String),
}

/// Why a store request failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object has that key.
    #[error("no object {0} in the backup store")]
    NotFound(String),
    /// The write's precondition failed: the object exists (`Absent`) or
    /// changed (`Matches`).
    #[error("object {0} exists or changed meanwhile")]
    PreconditionFailed(String),
    /// The store cannot be reached (network, DNS, timeouts, 5xx).
    #[error("the backup store is unreachable: {0}")]
    Unavailable(String),
    /// Credentials refused or missing.
    #[error("the backup store refused the credentials: {0}")]
    Auth(String),
    /// Backups are disabled (`backend = "none"`).
    #[error("backups are disabled (backend none)")]
    Disabled,
    /// The file system under the store failed (a local store, or the file
    /// a download is written to): the `io::Error` keeps its OS error number.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else.
    #[error("backup store error: {0}")]
    Other(String),
}

/// Equal when of the same variant with the same values; two I/O failures
/// are equal when they say the same of the same path (`io::Error` itself has
/// no equality).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        use StoreError as E;
        match (self, other) {
            (E::NotFound(a), E::NotFound(b))
            | (E::PreconditionFailed(a), E::PreconditionFailed(b))
            | (E::Unavailable(a), E::Unavailable(b))
            | (E::Auth(a), E::Auth(b))
            | (E::Other(a), E::Other(b)) => a == b,
            (E::Disabled, E::Disabled) => true,
            (E::Io { what: a, source: x }, E::Io { what: b, source: y }) => {
                a == b && x.kind() == y.kind() && x.raw_os_error() == y.raw_os_error()
            }
            _ => false,
        }
    }
}

/// The configured store and its accounting.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    accounting: Accounting,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(LocalStore),
    S3(S3Store),
    None,
}

macro_rules! dispatch {
    ($self:ident, $req:expr, $b:ident => $call:expr) => {{
        $self.accounting.record($req);
        match &$self.backend {
            Backend::Local($b) => $call.await,
            Backend::S3($b) => $call.await,
            Backend::None => Err(StoreError::Disabled),
        }
    }};
}

impl Store {
    /// A store over a local directory.
    pub fn local(store: LocalStore, accounting: Accounting) -> Store {
        Store { backend: Backend::Local(store), accounting }
    }

    /// A store over an S3-compatible bucket.
    pub fn s3(store: S3Store, accounting: Accounting) -> Store {
        Store { backend: Backend::S3(store), accounting }
    }

    /// No store: every request fails with [`StoreError::Disabled`].
    pub fn none(accounting: Accounting) -> Store {
        Store { backend: Backend::None, accounting }
    }

    /// The store `cfg` configures: a local directory, an S3/R2 bucket or none,
    /// as [`crate::config::Config::backend`] says. Fails, naming the key, when
    /// the S3/R2 settings cannot work; does not contact the store.
    pub async fn from_config(
        cfg: &crate::config::Config,
        accounting: Accounting,
    ) -> Result<Store, StoreError> {
        use crate::config::Backend as Kind;
        accounting.configure(cfg);
        match cfg.backend() {
            Kind::Local => Ok(Store::local(LocalStore::new(cfg.backup_dir()), accounting)),
            Kind::None => Ok(Store::none(accounting)),
            kind @ (Kind::S3 | Kind::R2) => Ok(Store::s3(S3Store::new(&cfg.store, kind)?, accounting)),
        }
    }

    /// True when backups are disabled.
    pub fn is_none(&self) -> bool {
        matches!(self.backend, Backend::None)
    }

    /// The request counts.
    pub fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    /// Uploads the file at `src` to `key` under `cond`; returns the new entity tag.
    pub async fn put_file(
        &self,
        key: &str,
        src: &Path,
        cond: Option<Precondition>,
    ) -> Result<String, StoreError> {
        dispatch!(self, Request::Put, b => b.put_file(key, src, cond.as_ref()))
    }

    /// Uploads the version object at `src` to `key` under `cond`, described
    /// by `entry` (its manifest entry, JSON) in the same request where the
    /// backend can: S3 user metadata `casman-entry` (no request of its own;
    /// kept by storage-class copies), a `<key>.meta.json` file beside it on
    /// a local store. Returns the entity tag and whether `entry` was stored
    /// with the object; when it was not (an entry over S3's 2 KB metadata
    /// limit, or not ASCII), the caller stores it as a sidecar object.
    pub async fn put_version_file(
        &self,
        key: &str,
        src: &Path,
        cond: Option<Precondition>,
        entry: &[u8],
    ) -> Result<(String, bool), StoreError> {
        dispatch!(self, Request::Put, b => b.put_version_file(key, src, cond.as_ref(), entry))
    }

    /// The manifest entry stored with the version object `key` by
    /// [`Store::put_version_file`], if any (one HEAD on S3; a file read on a
    /// local store).
    pub async fn version_entry(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, Request::Head, b => b.version_entry(key))
    }

    /// Uploads `bytes` to `key` under `cond`; returns the new entity tag.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        cond: Option<Precondition>,
    ) -> Result<String, StoreError> {
        dispatch!(self, Request::Put, b => b.put_bytes(key, bytes, cond.as_ref()))
    }

    /// Reads `key` whole. With `if_none_match`, `Ok(None)` means "unchanged".
    pub async fn get_bytes(
        &self,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        dispatch!(self, Request::Get, b => b.get_bytes(key, if_none_match))
    }

    /// Downloads `key` into the file `dest` (created or truncated); returns its size.
    /// `progress` is called with the bytes received so far. The file is not
    /// synced: it is meant as a temporary download.
    pub async fn get_file(
        &self,
        key: &str,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        let local = |source: std::io::Error| StoreError::Io {
            what: format!("GET {key}: writing {}", dest.display()),
            source,
        };
        let sink = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dest).map_err(local)?);
        let file = self
            .get_into(key, progress, sink)
            .await?
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
        file.and_then(|f| f.metadata()).map(|m| m.len()).map_err(local)
    }

    /// Downloads `key` into `sink` as it arrives: the body's chunks are
    /// written, in order, on a blocking thread (a decompressor, say), so
    /// that the download and what is done with it overlap. `progress` is
    /// called with the bytes received so far. The outer error is the
    /// store's; the inner one is `sink`'s (the download stops at it).
    pub async fn get_into<W: Write + Send + 'static>(
        &self,
        key: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
        sink: W,
    ) -> Result<std::io::Result<W>, StoreError> {
        dispatch!(self, Request::Get, b => b.get_into(key, progress, sink))
    }

    /// Size, entity tag and storage class of `key`.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        dispatch!(self, Request::Head, b => b.head(key))
    }

    /// Deletes `key` (no error if it is already gone).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        dispatch!(self, Request::Delete, b => b.delete(key))
    }

    /// Keys under `prefix` with their info, sorted by key (one LIST request
    /// per page of 1000, each counted).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectInfo)>, StoreError> {
        let (items, pages) = dispatch!(self, Request::List, b => b.list(prefix))?;
        for _ in 1..pages {
            self.accounting.record(Request::List);
        }
        Ok(items)
    }

    /// Rewrites `key` onto itself in storage class `class` (CopyObject).
    pub async fn set_storage_class(&self, key: &str, class: &str) -> Result<(), StoreError> {
        dispatch!(self, Request::Copy, b => b.set_storage_class(key, class))
    }
}

/// Writes the chunks of `body` into `sink` on a blocking thread, at most a
/// few chunks ahead of it; returns the sink (or its error) and the bytes
/// received. A chunk the store fails to deliver ends the download with that
/// error.
async fn pump<W, C>(
    body: impl Stream<Item = Result<C, StoreError>>,
    progress: &(dyn Fn(u64) + Send + Sync),
    mut sink: W,
) -> Result<(std::io::Result<W>, u64), StoreError>
where
    W: Write + Send + 'static,
    C: AsRef<[u8]> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<C>(8);
    let writer = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            sink.write_all(chunk.as_ref())?;
        }
        Ok(sink)
    });
    let mut body = std::pin::pin!(body);
    let (mut total, mut failed) = (0u64, None);
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                total += c.as_ref().len() as u64;
                progress(total);
                if tx.send(c).await.is_err() {
                    break; // the sink failed: its error is returned
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| StoreError::Other(format!("writing a download: {e}")))?;
    match failed {
        Some(e) => Err(e),
        None => Ok((written, total)),
    }
}

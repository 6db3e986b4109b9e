//! The `local` backend: a directory (the embedded default). Writes go to a
//! temporary file that is synced and then linked (create-if-absent) or renamed
//! (compare-and-swap under a lock) into place, so a crash never leaves a torn
//! object. Entity tags are SHA-256 digests of the content.

use std::{
    fs,
    io::{Read, Write},
    path::{Component, Path, PathBuf},
};

use sha2::{Digest, Sha256};

use super::{ObjectInfo, Precondition, StoreError};

/// A backup store in a directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

fn io(source: std::io::Error) -> StoreError {
    StoreError::Io { what: "the local store".into(), source }
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let rel = Path::new(key);
        if key.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(StoreError::Other(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(rel))
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Other(e.to_string()))?
    }

    pub(super) async fn put_file(
        &self,
        key: &str,
        src: &Path,
        cond: Option<&Precondition>,
    ) -> Result<String, StoreError> {
        let (dest, src, cond, key) = (self.path(key)?, src.to_path_buf(), cond.cloned(), key.to_owned());
        Self::blocking(move || {
            let mut f = fs::File::open(&src).map_err(io)?;
            write_object(&dest, &key, &mut f, cond.as_ref())
        })
        .await
    }

    /// The object, then its entry in `<key>.meta.json` beside it (a file:
    /// no request of its own on a local store).
    pub(super) async fn put_version_file(
        &self,
        key: &str,
        src: &Path,
        cond: Option<&Precondition>,
        entry: &[u8],
    ) -> Result<(String, bool), StoreError> {
        let etag = self.put_file(key, src, cond).await?;
        let side = crate::backup::rebuild::sidecar_key(key);
        match self.put_bytes(&side, entry.to_vec(), Some(&Precondition::Absent)).await {
            Ok(_) | Err(StoreError::PreconditionFailed(_)) => Ok((etag, true)),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn version_entry(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get_bytes(&crate::backup::rebuild::sidecar_key(key), None).await {
            Ok(found) => Ok(found.map(|(bytes, _)| bytes)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        cond: Option<&Precondition>,
    ) -> Result<String, StoreError> {
        let (dest, cond, key) = (self.path(key)?, cond.cloned(), key.to_owned());
        Self::blocking(move || write_object(&dest, &key, &mut bytes.as_slice(), cond.as_ref())).await
    }

    pub(super) async fn get_bytes(
        &self,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let (path, key, inm) = (self.path(key)?, key.to_owned(), if_none_match.map(str::to_owned));
        Self::blocking(move || {
            let bytes = fs::read(&path).map_err(|e| not_found(e, &key))?;
            let etag = hex::encode(Sha256::digest(&bytes));
            if inm.as_deref() == Some(etag.as_str()) {
                return Ok(None);
            }
            Ok(Some((bytes, etag)))
        })
        .await
    }

    pub(super) async fn get_into<W: Write + Send + 'static>(
        &self,
        key: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
        sink: W,
    ) -> Result<std::io::Result<W>, StoreError> {
        let path = self.path(key)?;
        let src = fs::File::open(&path).map_err(|e| not_found(e, key))?;
        // Read in 1 MiB blocks (page cache reads: cheap next to the sink).
        let body = futures_util::stream::unfold(Some(src), |src| async move {
            let mut src = src?;
            let mut buf = vec![0u8; 1 << 20];
            match src.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf), Some(src)))
                }
                Err(e) => Some((Err(io(e)), None)),
            }
        });
        Ok(super::pump(body, progress, sink).await?.0)
    }

    pub(super) async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let (path, key) = (self.path(key)?, key.to_owned());
        Self::blocking(move || info(&path).map_err(|e| not_found(e, &key))).await
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<(Vec<(String, ObjectInfo)>, u32), StoreError> {
        let (root, prefix) = (self.root.clone(), prefix.to_owned());
        Self::blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &mut out).map_err(io)?;
            out.retain(|(k, _)| k.starts_with(&prefix));
            out.sort_by(|a, b| a.0.cmp(&b.0));
            let pages = (out.len() as u32).div_ceil(1000).max(1);
            Ok((out, pages))
        })
        .await
    }

    pub(super) async fn set_storage_class(&self, key: &str, _class: &str) -> Result<(), StoreError> {
        // A directory has one storage class; the object must exist.
        self.head(key).await.map(|_| ())
    }
}

fn not_found(e: std::io::Error, key: &str) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound { StoreError::NotFound(key.to_owned()) } else { io(e) }
}

fn info(path: &Path) -> std::io::Result<ObjectInfo> {
    let meta = fs::metadata(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    let last_modified =
        meta.modified().ok().and_then(|t| jiff::Timestamp::try_from(t).ok()).map(|t| t.to_string());
    Ok(ObjectInfo {
        size: meta.len(),
        etag: hex::encode(hasher.finalize()),
        storage_class: None,
        last_modified,
    })
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, ObjectInfo)>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(".casman-tmp") || name.ends_with(".lock") {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_string_lossy().into_owned(), info(&path)?));
        }
    }
    Ok(())
}

/// Writes `src` to `dest` atomically under `cond`; returns the entity tag.
/// A failure of the file system names the object's path and keeps its
/// `io::Error` (whose OS error number tells a full disk).
fn write_object(
    dest: &Path,
    key: &str,
    src: &mut dyn Read,
    cond: Option<&Precondition>,
) -> Result<String, StoreError> {
    write_object_at(dest, key, src, cond).map_err(|e| match e {
        StoreError::Io { source, .. } => {
            StoreError::Io { what: format!("writing {}", dest.display()), source }
        }
        e => e,
    })
}

fn write_object_at(
    dest: &Path,
    key: &str,
    src: &mut dyn Read,
    cond: Option<&Precondition>,
) -> Result<String, StoreError> {
    let dir = dest.parent().ok_or_else(|| StoreError::Other(format!("invalid object key {key:?}")))?;
    fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new().prefix(".casman-tmp").tempfile_in(dir).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    let etag = hex::encode(hasher.finalize());
    match cond {
        Some(Precondition::Absent) => {
            // link() fails if the name exists: create-if-absent, atomically.
            fs::hard_link(tmp.path(), dest).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    StoreError::PreconditionFailed(key.to_owned())
                } else {
                    io(e)
                }
            })?;
        }
        Some(Precondition::Matches(expected)) => {
            let lock = fs::File::create(dest.with_extension("lock")).map_err(io)?;
            let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, e)| StoreError::Other(e.to_string()))?;
            let current = info(dest).map_err(|e| not_found(e, key))?;
            if &current.etag != expected {
                return Err(StoreError::PreconditionFailed(key.to_owned()));
            }
            tmp.persist(dest).map_err(|e| io(e.error))?;
        }
        None => {
            tmp.persist(dest).map_err(|e| io(e.error))?;
        }
    }
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(etag)
}

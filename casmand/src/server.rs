//! The Unix socket: creating its directory, binding with the configured mode
//! and group before it accepts anything, refusing to start beside a running
//! daemon, replacing a stale socket, and removing it on exit.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixListener;

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another daemon answers on the socket.
    #[error("another casmand is already serving on {0}; stop it first or pass a different --socket")]
    InUse(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; remove it or pass a different --socket")]
    NotASocket(PathBuf),
    /// The socket group does not exist.
    #[error("socket_group {0:?}: no such group")]
    NoSuchGroup(String),
    /// Any other I/O failure, with what was being done.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SocketError + use<> {
    let path = path.to_path_buf();
    move |source| SocketError::Io { what, path, source }
}

/// A bound, listening socket.
#[derive(Debug)]
pub struct BoundSocket {
    /// The listener, ready to accept.
    pub listener: UnixListener,
    /// Its file, removed when this is dropped.
    pub file: SocketFile,
}

/// The socket's path and the identity of its file: a drop guard that removes
/// the file when the daemon lets go of it (on every exit path), and only if it
/// is still our own file.
#[derive(Debug)]
pub struct SocketFile {
    /// The path.
    pub path: PathBuf,
    ino: u64,
}

/// Resolves a group name or numeric id to a gid.
pub fn resolve_group(name: &str) -> Result<u32, SocketError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(SocketError::NoSuchGroup(name.to_owned())),
    }
}

/// Binds `path` with permission bits `mode` and optional group `gid`. The mode
/// and group are set before `listen`, so no client can connect through looser
/// permissions. A socket file nobody answers on is replaced; one somebody
/// answers on makes this fail with [`SocketError::InUse`].
pub fn bind(path: &Path, mode: u32, gid: Option<u32>) -> Result<BoundSocket, SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        // Group/other may traverse the directory only if the socket mode lets them in.
        let mut dir_mode = 0o700;
        if mode & 0o060 != 0 {
            dir_mode |= 0o050;
        }
        if mode & 0o006 != 0 {
            dir_mode |= 0o005;
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)
            .map_err(io_err("creating socket directory", dir))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(dir, None, Some(gid))
                .map_err(io_err("setting group of socket directory", dir))?;
        }
    }
    remove_if_stale(path)?;
    let socket =
        Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(io_err("creating socket", path))?;
    let addr = SockAddr::unix(path).map_err(io_err("socket address", path))?;
    socket.bind(&addr).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            SocketError::InUse(path.to_path_buf())
        } else {
            io_err("binding", path)(e)
        }
    })?;
    let cleanup_on_err = |e: SocketError| {
        let _ = fs::remove_file(path);
        e
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", path))
        .map_err(cleanup_on_err)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(io_err("setting group of", path))
            .map_err(cleanup_on_err)?;
    }
    let ino = fs::symlink_metadata(path).map_err(io_err("inspecting", path))?.ino();
    socket.listen(1024).map_err(io_err("listening on", path)).map_err(cleanup_on_err)?;
    socket.set_nonblocking(true).map_err(io_err("configuring", path)).map_err(cleanup_on_err)?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    let listener =
        UnixListener::from_std(std_listener).map_err(io_err("registering", path)).map_err(cleanup_on_err)?;
    Ok(BoundSocket { listener, file: SocketFile { path: path.to_path_buf(), ino } })
}

/// The listening socket systemd passed (socket activation: `LISTEN_FDS` and
/// `LISTEN_PID` name this process, the socket is fd 3), or `None` when the
/// daemon was not socket-activated and must [`bind`] its own. The socket is
/// taken once per process; later calls return `None`.
///
/// systemd owns the file of an inherited socket: it is never removed by
/// casmand (its [`SocketFile`] has no inode to match), and its mode and group are the `.socket` unit's
/// `SocketMode=`/`SocketGroup=`.
pub fn from_systemd() -> Result<Option<BoundSocket>, SocketError> {
    let fds: Vec<std::os::fd::RawFd> = match sd_notify::listen_fds() {
        Ok(fds) => fds.collect(),
        // Not for us (LISTEN_PID is another process) or malformed: bind ourselves.
        Err(e) => {
            if std::env::var_os("LISTEN_FDS").is_some() {
                tracing::warn!(error = %e, "ignoring LISTEN_FDS");
            }
            return Ok(None);
        }
    };
    let Some(&fd) = fds.first() else {
        return Ok(None);
    };
    if TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(None);
    }
    let systemd_path = PathBuf::from("<systemd socket>");
    if fds.len() > 1 {
        tracing::warn!(count = fds.len(), "systemd passed several sockets; serving on the first only");
    }
    #[allow(unsafe_code)]
    // SAFETY: `fd` is an open descriptor handed over by the service manager
    // (`listen_fds` checked LISTEN_PID is this process and set FD_CLOEXEC on
    // it, which fails on a closed fd); nothing else in casmand refers to fd 3
    // (it was open before main ran, so no std object was given that number),
    // and the `TAKEN` flag makes this the only conversion into an owner.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let socket = Socket::from(owned);
    let local = socket.local_addr().map_err(io_err("inspecting inherited socket", &systemd_path))?;
    let path = local.as_pathname().map(Path::to_path_buf).unwrap_or(systemd_path);
    if socket.r#type().map_err(io_err("inspecting inherited socket", &path))? != Type::STREAM
        || local.domain() != Domain::UNIX
    {
        return Err(SocketError::Io {
            what: "using inherited socket (need a Unix stream socket: ListenStream=)",
            path,
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    }
    socket.set_nonblocking(true).map_err(io_err("configuring", &path))?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    let listener = UnixListener::from_std(std_listener).map_err(io_err("registering", &path))?;
    tracing::info!(socket = %path.display(), "using the socket passed by systemd");
    Ok(Some(BoundSocket { listener, file: SocketFile { path, ino: INHERITED } }))
}

/// The `ino` of a socket file systemd owns: matches no file.
const INHERITED: u64 = 0;

/// Set once the inherited socket has an owner, so it is never taken twice.
static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Removes a socket file left by a daemon that died, after checking that
/// nobody answers on it.
fn remove_if_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspecting", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::warn!(socket = %path.display(), "replacing stale socket left by a previous daemon");
            fs::remove_file(path).map_err(io_err("removing stale socket", path))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("probing", path)(e)),
    }
}

impl Drop for SocketFile {
    /// Removes the socket file if it is still the one this daemon bound
    /// (never one inherited from systemd).
    fn drop(&mut self) {
        if self.ino == INHERITED {
            return;
        }
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), error = %e, "could not remove socket");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_with_mode_and_refuses_a_second_daemon() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/casmand.sock");
        let bound = bind(&path, 0o640, None)?;
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o640);
        assert!(matches!(bind(&path, 0o640, None), Err(SocketError::InUse(_))));
        drop(bound);
        assert!(!path.exists());
        Ok(())
    }

    #[tokio::test]
    async fn replaces_a_stale_socket() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("casmand.sock");
        drop(std::os::unix::net::UnixListener::bind(&path)?);
        assert!(path.exists());
        let bound = bind(&path, 0o600, None)?;
        assert!(path.exists());
        drop(bound);
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn refuses_a_regular_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("casmand.sock");
        fs::write(&path, b"x")?;
        assert!(matches!(bind(&path, 0o600, None), Err(SocketError::NotASocket(_))));
        Ok(())
    }
}

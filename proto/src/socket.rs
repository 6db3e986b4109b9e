//! Where the daemon's Unix socket lives when nobody says otherwise. casmand and
//! casmanctl resolve the same default, so that `casmand` and `casmanctl status`
//! find each other without flags.

use std::{
    env,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// File name of the socket inside its directory.
pub const SOCKET_NAME: &str = "casmand.sock";

/// The socket of the system daemon when it runs under systemd
/// (`RuntimeDirectory=casman`).
pub const SYSTEM_SOCKET: &str = "/run/casman/casmand.sock";

/// Environment variable naming the socket explicitly.
pub const SOCKET_ENV: &str = "CASMAN_SOCKET";

/// Which side is asking: the daemon choosing where to bind, or a client
/// looking for a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// casmand, choosing where to listen.
    Daemon,
    /// casmanctl or another client, looking for a running daemon.
    Client,
}

/// The default socket path, in order:
/// 1. `$CASMAN_SOCKET`;
/// 2. `$RUNTIME_DIRECTORY/casmand.sock` (set by systemd for the service);
/// 3. for clients only: [`SYSTEM_SOCKET`] if it exists (the system daemon);
/// 4. `$XDG_RUNTIME_DIR/casman/casmand.sock`;
/// 5. `/tmp/casman-<uid>/casmand.sock`.
pub fn default_socket_path(side: Side) -> PathBuf {
    if let Some(p) = non_empty_env(SOCKET_ENV) {
        return PathBuf::from(p);
    }
    if let Some(dir) = non_empty_env("RUNTIME_DIRECTORY") {
        // systemd may pass several colon-separated directories; the first is ours.
        let first = dir.split(':').next().unwrap_or(&dir).to_owned();
        return Path::new(&first).join(SOCKET_NAME);
    }
    if side == Side::Client && Path::new(SYSTEM_SOCKET).exists() {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    if let Some(dir) = non_empty_env("XDG_RUNTIME_DIR") {
        return Path::new(&dir).join("casman").join(SOCKET_NAME);
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    PathBuf::from(format!("/tmp/casman-{uid}")).join(SOCKET_NAME)
}

fn non_empty_env(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

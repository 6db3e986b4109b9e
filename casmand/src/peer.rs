//! Who is on the other end of the socket: the peer credentials (SO_PEERCRED)
//! tonic captured when the connection was accepted (read by `api::caller`).

/// The process that sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Process id, when the kernel reported one.
    pub pid: Option<i32>,
}

impl Peer {
    /// True for root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "uid={} gid={} pid={}", self.uid, self.gid, pid),
            None => write!(f, "uid={} gid={}", self.uid, self.gid),
        }
    }
}

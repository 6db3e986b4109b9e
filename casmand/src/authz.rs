//! Who may do what. Every peer that can open the socket (its mode and group
//! decide) may read and record scans; destructive requests (restore in place,
//! forced sync, database clear) need root, the daemon's own user, or
//! membership of the configured admin group.

use crate::{error::Error, peer::Peer};

/// Checks that `peer` may run the destructive request `what`.
pub fn require_admin(peer: Option<Peer>, admin_gid: Option<u32>, what: &str) -> Result<(), Error> {
    let Some(peer) = peer else {
        return Err(Error::PermissionDenied(format!("{what}: the caller's credentials are unknown")));
    };
    let own_uid = nix::unistd::geteuid().as_raw();
    if peer.is_root() || peer.uid == own_uid {
        return Ok(());
    }
    if let Some(gid) = admin_gid
        && (peer.gid == gid
            || user_groups(peer.uid).contains(&gid)
            || peer.pid.is_some_and(|pid| supplementary_groups(pid).contains(&gid)))
    {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "{what} needs root or membership of the admin group{}; uid {} may not",
        match admin_gid {
            Some(g) => format!(" (gid {g})"),
            None => " (none is configured: set admin_group)".into(),
        },
        peer.uid
    )))
}

/// The groups of user `uid` in the user database (`/etc/group` and any other
/// NSS source), as `usermod -aG` records them. This works under the unit's
/// `ProtectProc=invisible`, which hides other users' `/proc/<pid>` from the
/// daemon; an unknown uid has none.
fn user_groups(uid: u32) -> Vec<u32> {
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name) else { return Vec::new() };
    nix::unistd::getgrouplist(&name, user.gid)
        .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default()
}

/// The supplementary groups of process `pid`, from `/proc/<pid>/status`, when
/// the daemon may see it (groups the process holds that the user database
/// does not list, e.g. after `newgrp`).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|g| g.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_own_user_pass_others_need_the_group() {
        let me = nix::unistd::geteuid().as_raw();
        let root = Peer { uid: 0, gid: 0, pid: None };
        assert!(require_admin(Some(root), None, "clear").is_ok());
        let own = Peer { uid: me, gid: 1, pid: None };
        assert!(require_admin(Some(own), None, "clear").is_ok());
        let other_uid = if me == 4242 { 4243 } else { 4242 };
        let stranger = Peer { uid: other_uid, gid: 4242, pid: None };
        let err =
            require_admin(Some(stranger), None, "clear").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("admin group"), "{err}");
        assert!(require_admin(Some(stranger), Some(4242), "clear").is_ok());
        assert!(require_admin(None, Some(4242), "clear").is_err());
    }

    #[test]
    fn groups_come_from_the_user_database() {
        // root is in the user database with primary group 0 everywhere.
        assert!(user_groups(0).contains(&0));
        assert!(user_groups(4_000_000_000).is_empty(), "an unknown uid has no groups");
    }
}

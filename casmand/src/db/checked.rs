//! Is a database file exactly as casmand left it when it last stopped
//! cleanly? Then start-up does not run `PRAGMA integrity_check` on it again:
//! the check reads the whole file (1.2 s for the 10x fixture) and would make
//! every start grow with the data, while a file nothing touched since the
//! last clean stop is the file the previous start checked, changed only
//! through SQLite since.
//!
//! The identity kept (`<file>.checked`, beside it): inode, length, and the
//! modification and status-change times to the nanosecond, written after the
//! file was checkpointed and closed; an empty or absent WAL is part of it. Any
//! write by another program, a copy over the file, a crash with a WAL left
//! behind, changes it, and the next start checks the file in full. The mark
//! is removed when a start uses it, so one clean stop vouches for one start.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

fn mark_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.checked", path.display()))
}

/// The file's identity; None when it cannot be read or its WAL holds frames.
fn identity(path: &Path) -> Option<String> {
    let wal = std::fs::metadata(format!("{}-wal", path.display())).map(|m| m.len()).unwrap_or(0);
    if wal != 0 {
        return None;
    }
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {}.{:09} {}.{:09}",
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Records the file at `path` (closed, checkpointed) as casmand leaves it.
/// Not synced: a mark lost in a crash only costs the next start a check.
pub fn remember(path: &Path) {
    let Some(id) = identity(path) else { return };
    let mark = mark_path(path);
    let tmp = PathBuf::from(format!("{}.partial", mark.display()));
    let written = std::fs::write(&tmp, format!("{id}\n")).and_then(|()| std::fs::rename(&tmp, &mark));
    if let Err(e) = written {
        tracing::debug!(file = %path.display(), error = %e, "cannot record the closed file's identity");
    }
}

/// Whether the file at `path` is as [`remember`] recorded it. The mark is
/// used up: removed whatever the answer.
pub fn take_unchanged(path: &Path) -> bool {
    let mark = mark_path(path);
    let recorded = std::fs::read_to_string(&mark).ok();
    let _ = std::fs::remove_file(&mark);
    match (recorded, identity(path)) {
        (Some(r), Some(id)) => r.trim() == id,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_mark_holds_for_the_unchanged_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parts.db");
        std::fs::write(&file, b"SQLite format 3\0 and the rest").unwrap();
        assert!(!take_unchanged(&file), "no mark yet");
        remember(&file);
        assert!(take_unchanged(&file));
        assert!(!take_unchanged(&file), "used up");
        // A write by another program.
        remember(&file);
        std::fs::write(&file, b"SQLite format 3\0 and more of the rest").unwrap();
        assert!(!take_unchanged(&file));
        // A copy over the file (another inode).
        remember(&file);
        let other = dir.path().join("copy");
        std::fs::copy(&file, &other).unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert!(!take_unchanged(&file));
        // A WAL with frames in it: no identity, no mark.
        remember(&file);
        std::fs::write(dir.path().join("parts.db-wal"), b"frames").unwrap();
        assert!(!take_unchanged(&file));
        remember(&file);
        assert!(!mark_path(&file).exists());
    }
}

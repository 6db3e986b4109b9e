//! The disk fails under the daemon: the data directory's file system fills
//! up (a small tmpfs), the backup directory cannot be written. Writes are
//! refused with an error saying what failed, nothing acknowledged is lost,
//! and service resumes by itself once the disk is usable again.
//!
//! Mounting needs root; outside CI the tests are skipped without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{io::Write, path::Path, path::PathBuf, process::Command};

use casman_tests::{Daemon, DaemonOpts, skip, sqlite};

/// A tmpfs mounted for one test, lazily unmounted when dropped (the daemon
/// may still hold its files open).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(at).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
            Ok(o) => {
                skip(&format!(
                    "cannot mount a tmpfs at {}: {}",
                    at.display(),
                    String::from_utf8_lossy(&o.stderr)
                ));
                None
            }
            Err(e) => {
                skip(&format!("cannot run mount: {e}"));
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn part_count(d: &Daemon) -> i64 {
    sqlite(&d.data_dir.join("parts.db"), "SELECT COUNT(*) FROM parts").trim().parse().unwrap()
}

/// Fills the file system holding `path` with one file until it refuses more.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    loop {
        match f.write_all(&chunk).and_then(|()| f.sync_all()) {
            Ok(()) => continue,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

#[test]
fn a_full_data_disk_refuses_writes_clearly_and_writing_resumes_when_space_returns() {
    let dir = tempfile::Builder::new().prefix("casman-e2e-").tempdir().unwrap();
    let Some(_mount) = Tmpfs::mount(&dir.path().join("data"), "size=24m") else { return };
    let d = Daemon::start_in(
        dir,
        DaemonOpts::default()
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    );
    d.ctl_ok(&["parts", "add", "ANTENNA", "5", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "5", "1"]);
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    assert_eq!(part_count(&d), 10);

    let filler = d.data_dir.join("filler");
    fill(&filler);
    // A write larger than any page the WAL holds already needs new blocks.
    // Several tries: each refused one must leave the writer usable.
    for _ in 0..3 {
        let err = d.ctl_err(&["parts", "add", "COAXLONG", "40000", "1"], 1);
        assert!(err.contains("full"), "the refusal says the disk is full: {err}");
        assert!(!err.contains("internal error"), "{err}");
    }
    assert_eq!(part_count(&d), 10, "nothing refused was written, nothing acknowledged lost");
    // Reads go on meanwhile.
    let listed = d.ctl_json(&["parts", "list", "--type", "ANT"]);
    assert_eq!(listed["parts"].as_array().map(Vec::len), Some(5), "{listed}");

    std::fs::remove_file(&filler).unwrap();
    // No restart: the next write goes through.
    let added = d.ctl_json(&["parts", "add", "COAXLONG", "3", "1"]);
    assert_eq!(added["parts"][0], "CXL00001P1", "{added}");
    d.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    assert_eq!(part_count(&d), 13);
    assert_eq!(sqlite(&d.data_dir.join("parts.db"), "PRAGMA integrity_check").trim(), "ok");
    assert_eq!(sqlite(&d.data_dir.join("assembled_casm.db"), "PRAGMA integrity_check").trim(), "ok");
}

#[test]
fn an_unwritable_backup_directory_fails_the_backup_clearly_and_service_continues() {
    let dir = tempfile::Builder::new().prefix("casman-e2e-").tempdir().unwrap();
    let backups = dir.path().join("backups");
    let Some(_mount) = Tmpfs::mount(&backups, "ro,size=1m") else { return };
    let d = Daemon::start_in(
        dir,
        DaemonOpts::default()
            .env("CASMAN_SITE_ID", "lab")
            .env("CASMAN_BACKUP_DIR", &backups)
            .env("CASMAN_SYNC__BACKUP_AFTER_PARTS_GENERATION", "false")
            .env("CASMAN_SYNC__BACKUP_ON_SCAN_COUNT", "100000"),
    );
    // Part numbers are leased from the store: with none writable, none is
    // issued, and the refusal says what failed (no number another site may
    // issue too).
    let err = d.ctl_err(&["parts", "add", "ANTENNA", "2", "1"], 1);
    assert!(err.contains("read-only") && err.contains(backups.to_str().unwrap()), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    let out = d.ctl(&["sync", "backup"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a backup into a read-only directory cannot succeed: {text}");
    assert!(text.contains("read-only") || text.contains("permission"), "says what failed: {text}");
    assert!(text.contains(backups.to_str().unwrap()), "names the directory: {text}");
    assert!(!text.contains("internal error"), "{text}");
    // The daemon keeps serving.
    assert_eq!(part_count(&d), 0);
    d.ctl_ok(&["status"]);
}

//! R2 secrets from systemd credentials (`LoadCredential=` files under
//! `$CREDENTIALS_DIRECTORY`): they take effect above the environment, are
//! shown redacted by `casmanctl config`, and never reach casmanctl's output or
//! the daemon's log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use casman_tests::{Daemon, DaemonOpts};

#[test]
fn secrets_from_credentials_are_used_and_never_shown() {
    let creds = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-from-credential-0a1b2c";
    std::fs::write(creds.path().join("r2_secret_access_key"), format!("{secret}\n")).unwrap();
    std::fs::write(creds.path().join("r2_access_key_id"), "key-id-from-credential").unwrap();
    let d = Daemon::start_with(
        DaemonOpts::default()
            .env("CREDENTIALS_DIRECTORY", creds.path())
            .env("R2_SECRET_ACCESS_KEY", "secret-from-environment")
            // Keep backups local: the credentials are only shown, not used.
            .env("CASMAN_SYNC_BACKEND", "local")
            .env("CASMAN_LOG", "debug"),
    );
    let shown = d.ctl_ok(&["config"]);
    let json = d.ctl_json(&["config"]).to_string();
    for out in [&shown, &json] {
        assert!(out.contains("<redacted>"), "{out}");
        assert!(!out.contains(secret) && !out.contains("key-id-from-credential"), "{out}");
        assert!(out.contains("systemd credentials (r2_access_key_id, r2_secret_access_key)"), "{out}");
    }
    d.ctl_ok(&["parts", "add", "ANTENNA", "1", "1"]);
    d.ctl_ok(&["sync", "backup"]);
    let status = d.ctl_ok(&["status"]);
    assert!(!status.contains(secret), "{status}");
    let log = d.log_text();
    assert!(!log.contains(secret) && !log.contains("key-id-from-credential"), "{log}");
}

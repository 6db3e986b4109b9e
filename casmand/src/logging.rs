//! Logging: structured fields to journald when stderr is the journal
//! (`JOURNAL_STREAM` names stderr's device and inode), human-readable text to
//! stderr otherwise. The filter comes from `CASMAN_LOG`, else `RUST_LOG`, else
//! `info`.
//!
//! In the journal every field of an event is upper-cased and prefixed with
//! `CASMAN_`, so operators can filter with `journalctl CASMAN_DATABASE=parts.db`.
//! The field names used across casmand (keep them consistent):
//!
//! | tracing field | journal field         | meaning                                   |
//! |---------------|-----------------------|-------------------------------------------|
//! | `operation`   | `CASMAN_OPERATION`    | what was done (`parts.add`, `sync.backup`) |
//! | `database`    | `CASMAN_DATABASE`     | `parts.db`, `assembled_casm.db`           |
//! | `part`        | `CASMAN_PART`         | part number(s) concerned                  |
//! | `key`         | `CASMAN_KEY`          | backup object key                         |
//! | `duration_ms` | `CASMAN_DURATION_MS`  | how long it took                          |
//! | `peer_uid`    | `CASMAN_PEER_UID`     | uid of the client process                 |
//! | `operator`    | `CASMAN_OPERATOR`     | operator name given with `--operator`     |
//! | `error`       | `CASMAN_ERROR`        | what went wrong                           |

use std::{io::IsTerminal, os::unix::fs::MetadataExt};

use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Installs the global subscriber. Safe to call once per process.
pub fn init() {
    let filter = std::env::var("CASMAN_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_journal()
        && let Ok(journald) = journald_layer()
    {
        let _ = registry.with(journald).try_init();
        return;
    }
    let _ = registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .try_init();
}

/// Field prefix in the journal: `database` becomes `CASMAN_DATABASE`.
pub const JOURNAL_FIELD_PREFIX: &str = "CASMAN";

/// The journald layer: identifier `casmand`, fields prefixed with
/// [`JOURNAL_FIELD_PREFIX`]. Fails when journald's socket is not there.
pub fn journald_layer() -> std::io::Result<tracing_journald::Layer> {
    Ok(tracing_journald::layer()?
        .with_syslog_identifier("casmand".into())
        .with_field_prefix(Some(JOURNAL_FIELD_PREFIX.into())))
}

/// True when `JOURNAL_STREAM` (`<dev>:<ino>`) matches stderr, as systemd sets
/// it for services whose output goes to the journal.
fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
}

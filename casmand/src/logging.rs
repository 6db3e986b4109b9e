//! Logging: structured fields to journald when stderr is the journal
//! (`JOURNAL_STREAM` names stderr's device and inode), human-readable text to
//! stderr otherwise. The filter comes from `CASMAN_LOG`, else `RUST_LOG`, else
//! `info`.
//!
//! The AWS SDK, smithy, hyper and h2 log request details at debug and trace,
//! credentials among them (the access key id in the signing scope). Their
//! targets ([`CAPPED_TARGETS`]) are therefore capped at `info` whatever the
//! filter's level (`CASMAN_LOG=debug` debugs casmand, not the signer), unless
//! the filter names the target itself: `CASMAN_LOG=debug,aws_sigv4=trace`
//! lifts the cap of `aws_sigv4` only. The cap is a second global filter, so
//! span directives (`[backup]=trace`) do not lift it either.
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

use tracing_subscriber::{
    EnvFilter,
    filter::{LevelFilter, Targets},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Targets that may log credentials (access key ids, signatures, headers)
/// at debug or trace: capped at [`CAP`] unless named in the filter. A
/// target covers its sub-targets (`aws_smithy_runtime::client::…`) and, as
/// tracing matches by prefix, crates whose names extend it
/// (`aws_smithy_runtime_api`, `hyper_util`).
pub const CAPPED_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_s3",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
    "aws_sigv4",
    "aws_smithy_http",
    "aws_smithy_runtime",
    "aws_smithy_types",
    "h2",
    "hyper",
    "reqwest",
    "rustls",
];

/// The most verbose level of the [`CAPPED_TARGETS`] not named in the filter.
pub const CAP: LevelFilter = LevelFilter::INFO;

/// Installs the global subscriber. Safe to call once per process.
pub fn init() {
    let spec = std::env::var("CASMAN_LOG").or_else(|_| std::env::var("RUST_LOG")).ok();
    let (filter, spec) = match spec.as_deref().map(|f| (EnvFilter::try_new(f), f)) {
        Some((Ok(filter), f)) => (filter, f.to_owned()),
        _ => (EnvFilter::new("info"), "info".to_owned()),
    };
    let registry = tracing_subscriber::registry().with(filter).with(credential_cap(&spec));
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

/// The second global filter: every target at any level, except the
/// [`CAPPED_TARGETS`] that `spec` (a `CASMAN_LOG` filter) does not name,
/// which are kept at [`CAP`] or quieter.
pub fn credential_cap(spec: &str) -> Targets {
    let named = named_targets(spec);
    let within = |n: &str, t: &str| n == t || n.strip_prefix(t).is_some_and(|r| r.starts_with("::"));
    let capped = CAPPED_TARGETS
        .iter()
        .filter(|t| !named.iter().any(|n| n == *t))
        .fold(Targets::new().with_default(LevelFilter::TRACE), |cap, t| cap.with_target(*t, CAP));
    // A named part of a capped crate (`hyper::proto`) is left to the filter;
    // the rest of the crate stays capped.
    named
        .iter()
        .filter(|n| CAPPED_TARGETS.iter().any(|t| within(n, t)))
        .fold(capped, |cap, n| cap.with_target(n.as_str(), LevelFilter::TRACE))
}

/// The targets a filter's directives name (`target[span{field}]=level`),
/// without spans or levels; bare levels name none.
fn named_targets(spec: &str) -> Vec<String> {
    spec.split(',')
        .filter_map(|directive| {
            let target = directive.split('=').next().unwrap_or_default();
            let target = target.split('[').next().unwrap_or_default().trim();
            let is_level = target.parse::<LevelFilter>().is_ok();
            (!target.is_empty() && !is_level).then(|| target.to_owned())
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn credential_bearing_targets_are_capped_at_info_whatever_the_level() {
        for spec in ["debug", "trace", "info", "casmand=trace,debug", "[backup]=trace", "nonsense=debug"] {
            let cap = credential_cap(spec);
            for target in
                ["aws_sigv4", "aws_config::profile", "aws_smithy_runtime_api::client", "hyper_util", "h2"]
            {
                assert!(!cap.would_enable(target, &Level::DEBUG), "{spec}: {target} at debug");
                assert!(cap.would_enable(target, &Level::INFO), "{spec}: {target} at info");
            }
            assert!(cap.would_enable("casmand::backup", &Level::TRACE), "{spec}: casmand is not capped");
        }
    }

    #[test]
    fn naming_a_target_lifts_its_cap_only() {
        let cap = credential_cap("debug,aws_sigv4=trace,hyper::proto=debug");
        assert!(cap.would_enable("aws_sigv4", &Level::TRACE));
        assert!(cap.would_enable("aws_sigv4::http_request", &Level::TRACE));
        assert!(!cap.would_enable("aws_config", &Level::DEBUG));
        assert!(!cap.would_enable("aws_sdk_s3::config", &Level::DEBUG));
        assert!(cap.would_enable("hyper::proto::h1", &Level::DEBUG), "hyper::proto is named");
        assert!(!cap.would_enable("hyper::client", &Level::DEBUG), "the rest of hyper is not");
        assert!(!cap.would_enable("h2::codec", &Level::DEBUG));
        assert_eq!(named_targets("warn,aws_sigv4[span{a=1}]=trace, hyper ,info"), ["aws_sigv4", "hyper"]);
    }

    #[test]
    fn a_filter_quieter_than_the_cap_stays_quieter() {
        // The cap only removes: with the user's filter before it, `warn`
        // keeps the SDK at warn.
        let user: EnvFilter = EnvFilter::new("warn");
        let cap = credential_cap("warn");
        assert!(!cap.would_enable("aws_sigv4", &Level::DEBUG));
        assert_eq!(user.max_level_hint(), Some(LevelFilter::WARN));
    }
}

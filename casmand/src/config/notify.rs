//! `[notify]`: who is told when protection fails (see `crate::notify` and
//! the README, "Monitoring and alerts"): a `command` run with the event as
//! JSON on stdin, a `webhook` the same JSON is POSTed to, and a
//! `success_ping` URL called after successful backups (the healthchecks.io
//! convention). Each is off unless set. The URLs may carry secrets
//! (userinfo, a token in the query or path): they are never shown, see
//! [`crate::notify::redact`].

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Notification settings.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// A program run once per event, with the event as JSON on its stdin and
    /// `CASMAN_EVENT`, `CASMAN_DATABASE`, `CASMAN_SITE`, `CASMAN_MESSAGE`,
    /// `CASMAN_TIME` in its environment (no shell, no arguments). Default: none.
    pub command: Option<PathBuf>,
    /// An `http://` or `https://` URL the event's JSON is POSTed to
    /// (retried with backoff). Secret. Default: none.
    pub webhook: Option<String>,
    /// A failing backup is notified once it has failed for this long.
    #[serde(with = "crate::config::duration")]
    pub after: Duration,
    /// ...or once it has failed this many times in a row, whichever comes
    /// first; 0: by time only.
    pub after_attempts: u32,
    /// An `http://` or `https://` URL called (GET) after a successful
    /// backup, at most once per `success_ping_every`. Secret. Default: none.
    pub success_ping: Option<String>,
    /// The least time between two success pings.
    #[serde(with = "crate::config::duration")]
    pub success_ping_every: Duration,
    /// How long one run of `command` or one HTTP request may take.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            command: None,
            webhook: None,
            after: Duration::from_secs(30 * 60),
            after_attempts: 0,
            success_ping: None,
            success_ping_every: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.redacted();
        f.debug_struct("NotifyConfig")
            .field("command", &r.command)
            .field("webhook", &r.webhook)
            .field("after", &r.after)
            .field("after_attempts", &r.after_attempts)
            .field("success_ping", &r.success_ping)
            .field("success_ping_every", &r.success_ping_every)
            .field("timeout", &r.timeout)
            .finish()
    }
}

impl NotifyConfig {
    /// A copy with the URLs' secrets replaced (see [`crate::notify::redact::url`]).
    pub fn redacted(&self) -> NotifyConfig {
        let hide = |u: &Option<String>| u.as_deref().map(crate::notify::redact::url);
        NotifyConfig { webhook: hide(&self.webhook), success_ping: hide(&self.success_ping), ..self.clone() }
    }

    /// Whether anything is to be told at all.
    pub fn any(&self) -> bool {
        self.command.is_some() || self.webhook.is_some() || self.success_ping.is_some()
    }

    /// Checks the URLs (scheme, host) and the durations. A bad URL is named
    /// by its key and its redacted form, never in full.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [("notify.webhook", &self.webhook), ("notify.success_ping", &self.success_ping)] {
            let Some(v) = value else { continue };
            if let Err(rule) = crate::notify::redact::check_url(v) {
                return Err(ConfigError::Invalid(format!(
                    "key `{key}` = {:?}: {rule}",
                    crate::notify::redact::url(v)
                )));
            }
        }
        if let Some(c) = &self.command
            && !c.is_absolute()
        {
            return Err(ConfigError::Invalid(format!(
                "key `notify.command` = {:?}: must be an absolute path to a program (it is run without a shell)",
                c.display().to_string()
            )));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Invalid("key `notify.timeout` = 0s: must be at least 1s".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_named_without_their_secrets() {
        let c =
            NotifyConfig { webhook: Some("ftp://user:s3cr3t@example.org/x".into()), ..Default::default() };
        let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("notify.webhook") && err.contains("http"), "{err}");
        assert!(!err.contains("s3cr3t") && !err.contains("user"), "{err}");
        let ok = NotifyConfig {
            webhook: Some("https://hooks.example.org/casman?token=abc".into()),
            success_ping: Some("https://hc-ping.com/0d9c1e5a".into()),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let shown = format!("{ok:?} {}", toml::to_string(&ok.redacted()).unwrap_or_default());
        assert!(!shown.contains("abc") && !shown.contains("0d9c1e5a"), "{shown}");
        let rel = NotifyConfig { command: Some("notify.sh".into()), ..Default::default() };
        assert!(rel.validate().is_err());
    }
}

//! Sign-in and TLS keys of `[http]`: the scanner's operators and their
//! tokens. See `config/casmand.toml` and the README ("Scanning from a phone").
//!
//! An operator signs in once per device with a name and a token:
//! * an operator's own token (`[[http.operators]]`) signs in as that operator
//!   (the name typed must be theirs, or empty); `admin = true` opens the admin page;
//! * the site token (`http.token`) signs in under any name typed, never as admin;
//! * with no token configured at all (a loopback listener), a name alone signs in.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, HttpConfig, REDACTED};

/// Shortest token (`http.token`, `http.operators[].token`), in characters.
pub const MIN_TOKEN: usize = 16;

/// Longest operator name, in characters.
pub const MAX_NAME: usize = 64;

/// One `[[http.operators]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpOperator {
    /// The operator's name, as shown in the audit log and the history.
    pub name: String,
    /// Their token; secret.
    pub token: String,
    /// Whether they may use the admin page (CSV loads, new parts, backups).
    #[serde(default)]
    pub admin: bool,
}

impl HttpOperator {
    /// A copy with the token replaced by [`REDACTED`].
    pub fn redacted(&self) -> HttpOperator {
        HttpOperator { token: REDACTED.to_owned(), ..self.clone() }
    }
}

/// Checks an operator name: 1 to [`MAX_NAME`] printable characters once trimmed.
pub fn check_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.is_empty() {
        return Err("operator name is empty: type your name".into());
    }
    if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(format!("operator name {n:?}: at most {MAX_NAME} printable characters"));
    }
    Ok(n.to_owned())
}

impl HttpConfig {
    /// Checks the operators (names valid and distinct, tokens non-empty and
    /// distinct from each other and from the site token) and that
    /// `tls_cert`/`tls_key` come together.
    pub fn check_signin(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        if let Some(token) = self.token.as_deref().map(str::trim).filter(|t| !t.is_empty())
            && token.chars().count() < MIN_TOKEN
        {
            return bad(format!(
                "key `http.token`: must be at least {MIN_TOKEN} characters (it has {}); a short token is \
                 guessed quickly",
                token.chars().count()
            ));
        }
        for (i, op) in self.operators.iter().enumerate() {
            if let Err(e) = check_name(&op.name) {
                return bad(format!("key `http.operators[{i}].name`: {e}"));
            }
            if op.token.trim().chars().count() < MIN_TOKEN {
                return bad(format!(
                    "key `http.operators[{i}].token` (operator {:?}): must be at least {MIN_TOKEN} characters",
                    op.name
                ));
            }
            let earlier = &self.operators[..i];
            if earlier.iter().any(|o| o.name.trim().eq_ignore_ascii_case(op.name.trim())) {
                return bad(format!("key `http.operators[{i}].name` = {:?}: named twice", op.name));
            }
            if earlier.iter().any(|o| o.token == op.token) || self.token.as_deref() == Some(op.token.as_str())
            {
                return bad(format!(
                    "key `http.operators[{i}].token` (operator {:?}): the same token is given twice; each \
                     operator needs their own",
                    op.name
                ));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                bad("key `http.tls_cert` is set but `http.tls_key` is not; set both or neither".into())
            }
            (None, Some(_)) => {
                bad("key `http.tls_key` is set but `http.tls_cert` is not; set both or neither".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, token: &str) -> HttpOperator {
        HttpOperator { name: name.into(), token: token.into(), admin: false }
    }

    #[test]
    fn operators_and_tls_are_checked() {
        let mut h = HttpConfig { operators: vec![op("alice", "alice-secret-0123")], ..HttpConfig::default() };
        assert!(h.check_signin().is_ok());
        h.operators.push(op("Alice", "other-secret-0123"));
        assert!(h.check_signin().unwrap_err().to_string().contains("named twice"));
        h.operators[1] = op("bob", "alice-secret-0123");
        assert!(h.check_signin().unwrap_err().to_string().contains("own"));
        h.operators[1] = op("bob", "short");
        assert!(h.check_signin().unwrap_err().to_string().contains("16 characters"));
        h.operators.pop();
        h.token = Some("short-token".into());
        let err = h.check_signin().unwrap_err().to_string();
        assert!(err.contains("`http.token`") && err.contains("at least 16 characters (it has 11)"), "{err}");
        h.token = None;
        h.operators.push(op("bob", "bob-secret-01234"));
        h.operators.pop();
        h.tls_cert = Some("/etc/cert.pem".into());
        assert!(h.check_signin().unwrap_err().to_string().contains("http.tls_key"));
        assert!(format!("{:?}", HttpConfig { tls_cert: None, ..h.clone() }).contains(REDACTED));
        assert!(!format!("{:?}", h).contains("alice-secret-0123"));
        assert!(check_name("  ").is_err());
        assert_eq!(check_name(" Ann ").as_deref(), Ok("Ann"));
    }
}

//! The systemd-credentials layer of the configuration: secrets passed with
//! `LoadCredential=`/`SetCredentialEncrypted=` instead of the environment.
//!
//! systemd places each credential in a file under `$CREDENTIALS_DIRECTORY`
//! (readable by the service only, never in `/proc/<pid>/environ`). The files
//! read, and the keys they set:
//!
//! | credential             | key                       |
//! |------------------------|---------------------------|
//! | `r2_account_id`        | `store.account_id`        |
//! | `r2_access_key_id`     | `store.access_key_id`     |
//! | `r2_secret_access_key` | `store.secret_access_key` |
//!
//! A missing file sets nothing; one trailing newline (as `echo` writes it) is
//! dropped. The layer sits above the environment and below command-line flags.

use std::path::{Path, PathBuf};

use figment::{
    Metadata, Profile, Provider,
    value::{Dict, Map, Value},
};

/// Credential file names and the `store` keys they set.
pub const CREDENTIALS: &[(&str, &str)] = &[
    ("r2_account_id", "account_id"),
    ("r2_access_key_id", "access_key_id"),
    ("r2_secret_access_key", "secret_access_key"),
];

/// The credentials found, captured once (values are secrets: never logged).
#[derive(Clone, Default)]
pub struct CredentialsLayer {
    dir: Option<PathBuf>,
    /// (credential name, store key, value)
    found: Vec<(&'static str, &'static str, String)>,
    /// A credential file that exists but cannot be read.
    error: Option<String>,
}

impl std::fmt::Debug for CredentialsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsLayer").field("dir", &self.dir).field("names", &self.names()).finish()
    }
}

impl CredentialsLayer {
    /// Reads `$CREDENTIALS_DIRECTORY` when systemd set it.
    pub fn from_process() -> Self {
        match std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
            Some(dir) => Self::from_dir(Path::new(&dir)),
            None => Self::default(),
        }
    }

    /// Reads the credential files in `dir`.
    pub fn from_dir(dir: &Path) -> Self {
        let mut layer = CredentialsLayer { dir: Some(dir.to_path_buf()), ..Self::default() };
        for &(name, key) in CREDENTIALS {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(mut v) => {
                    if v.ends_with('\n') {
                        v.pop();
                        if v.ends_with('\r') {
                            v.pop();
                        }
                    }
                    layer.found.push((name, key, v));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // The message names the file, never its contents.
                Err(e) => layer.error = Some(format!("systemd credential {}: {e}", path.display())),
            }
        }
        layer
    }

    /// True when no credential sets anything.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Names of the credentials found.
    pub fn names(&self) -> Vec<&'static str> {
        self.found.iter().map(|(n, _, _)| *n).collect()
    }
}

impl Provider for CredentialsLayer {
    fn metadata(&self) -> Metadata {
        let found: Vec<(String, String)> =
            self.found.iter().map(|(n, k, _)| (format!("store.{k}"), (*n).to_owned())).collect();
        Metadata::named("systemd credential").interpolater(move |_: &Profile, path: &[&str]| {
            let key = path.join(".");
            found.iter().find(|(k, _)| *k == key).map(|(_, n)| n.clone()).unwrap_or(key)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        if let Some(e) = &self.error {
            return Err(figment::Error::from(e.clone()));
        }
        let mut store = Dict::new();
        for (_, key, value) in &self.found {
            store.insert((*key).to_owned(), Value::from(value.clone()));
        }
        let mut dict = Dict::new();
        if !store.is_empty() {
            dict.insert("store".into(), Value::from(store));
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use figment::{Figment, providers::Serialized};

    use super::*;
    use crate::config::{Config, env::EnvLayer};

    #[test]
    fn credentials_override_the_environment_and_keep_other_keys() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("r2_secret_access_key"), "from-credential\n")?;
        std::fs::write(dir.path().join("r2_account_id"), "acct")?;
        let env = EnvLayer::from_vars([
            ("R2_SECRET_ACCESS_KEY".to_owned(), "from-env".to_owned()),
            ("R2_ACCESS_KEY_ID".to_owned(), "id-from-env".to_owned()),
        ]);
        let creds = CredentialsLayer::from_dir(dir.path());
        assert_eq!(creds.names(), vec!["r2_account_id", "r2_secret_access_key"]);
        assert!(!format!("{creds:?}").contains("from-credential"));
        let c: Config =
            Figment::from(Serialized::defaults(Config::default())).merge(env).merge(creds).extract()?;
        assert_eq!(c.store.secret_access_key.as_deref(), Some("from-credential"));
        assert_eq!(c.store.access_key_id.as_deref(), Some("id-from-env"));
        assert_eq!(c.store.account_id.as_deref(), Some("acct"));
        Ok(())
    }

    #[test]
    fn an_empty_or_missing_directory_sets_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        assert!(CredentialsLayer::from_dir(dir.path()).is_empty());
        assert!(CredentialsLayer::from_dir(&dir.path().join("absent")).is_empty());
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(CredentialsLayer::from_dir(dir.path()))
            .extract()?;
        assert_eq!(c, Config::default());
        Ok(())
    }
}

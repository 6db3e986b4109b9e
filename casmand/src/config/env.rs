//! The environment layer of the configuration.
//!
//! Two kinds of variables are read:
//! * the names CAsMan users already have in their shell profiles
//!   (`CASMAN_DATABASE_DIR`, `R2_ACCOUNT_ID`, ...), mapped to keys by [`NAMED`];
//! * any key by its path: `CASMAN_<SECTION>__<KEY>`, e.g.
//!   `CASMAN_SYNC__KEEP_VERSIONS=5`, `CASMAN_QUOTA__WARN_THRESHOLD=0.7`.
//!
//! Values of text keys are taken verbatim (a site id `0042` stays `0042`);
//! other values are parsed like TOML scalars. Other `CASMAN_*` variables
//! (`CASMAN_LOG`, the Python tool's `CASMAN_PARTS_DB`, ...) are not
//! configuration and are left alone.

use figment::{
    Metadata, Profile, Provider,
    value::{Dict, Map, Value},
};

/// How a variable's value becomes a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Taken verbatim as a string.
    Text,
    /// Parsed as a scalar (bool, number, string).
    Parsed,
}

/// CAsMan-compatible variable names and the keys they set.
const NAMED: &[(&str, &str, Kind)] = &[
    ("CASMAN_DATABASE_DIR", "data_dir", Kind::Text),
    ("CASMAN_SOCKET", "socket", Kind::Text),
    ("CASMAN_SITE_ID", "site_id", Kind::Text),
    ("CASMAN_SYNC_ENABLED", "sync.enabled", Kind::Text),
    ("CASMAN_SYNC_BACKEND", "sync.backend", Kind::Text),
    ("CASMAN_AUTO_SYNC_ON_INSTALL", "sync.sync_on_start", Kind::Text),
    ("CASMAN_BACKUP_DIR", "store.backup_dir", Kind::Text),
    ("R2_ACCOUNT_ID", "store.account_id", Kind::Text),
    ("R2_ACCESS_KEY_ID", "store.access_key_id", Kind::Text),
    ("R2_SECRET_ACCESS_KEY", "store.secret_access_key", Kind::Text),
    ("R2_BUCKET_NAME", "store.bucket_name", Kind::Text),
    ("R2_ENDPOINT", "store.endpoint", Kind::Text),
    ("CASMAN_WRITE_BATCH", "server.write_batch", Kind::Parsed),
    ("CASMAN_PART_NUMBER_RANGE", "part_number_range", Kind::Text),
];

/// Keys whose values are text even when given by path (`CASMAN_X__Y`).
const TEXT_KEYS: &[&str] = &[
    "data_dir",
    "socket",
    "socket_mode",
    "socket_group",
    "admin_group",
    "site_id",
    "legacy_timezone",
    "config_yaml",
    "sync.backend",
    "sync.storage_class",
    "store.bucket_name",
    "store.account_id",
    "store.access_key_id",
    "store.secret_access_key",
    "store.endpoint",
    "store.region",
    "store.backup_dir",
    "notify.command",
    "notify.webhook",
    "notify.success_ping",
];

/// The environment variables that set configuration keys, captured once.
#[derive(Debug, Clone, Default)]
pub struct EnvLayer {
    /// (variable name, dotted key, value)
    vars: Vec<(String, String, Value)>,
}

impl EnvLayer {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Builds the layer from explicit variables (used by tests).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut out = Vec::new();
        for (name, value) in vars {
            let Some((key, kind)) = key_for(&name) else {
                continue;
            };
            let value = match kind {
                Kind::Text => Value::from(value),
                Kind::Parsed => value.parse::<Value>().unwrap_or_else(|_| Value::from(value)),
            };
            out.push((name, key, value));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        EnvLayer { vars: out }
    }

    /// True when no variable sets anything.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Names of the variables that set something.
    pub fn names(&self) -> Vec<String> {
        self.vars.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

fn key_for(name: &str) -> Option<(String, Kind)> {
    if let Some((_, key, kind)) = NAMED.iter().find(|(n, _, _)| *n == name) {
        return Some(((*key).to_owned(), *kind));
    }
    let rest = name.strip_prefix("CASMAN_")?;
    if !rest.contains("__") && !is_top_level_key(rest) {
        return None;
    }
    let key = rest.split("__").map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>().join(".");
    let kind = if TEXT_KEYS.contains(&key.as_str()) { Kind::Text } else { Kind::Parsed };
    Some((key, kind))
}

/// `CASMAN_SOCKET_MODE` and the like: top-level keys also work without `__`.
fn is_top_level_key(rest: &str) -> bool {
    matches!(
        rest,
        "SOCKET_MODE"
            | "SOCKET_GROUP"
            | "ADMIN_GROUP"
            | "LEGACY_TIMEZONE"
            | "SHUTDOWN_TIMEOUT"
            | "CONFIG_YAML"
    )
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        let names: Vec<(String, String)> = self.vars.iter().map(|(n, k, _)| (k.clone(), n.clone())).collect();
        Metadata::named("environment variable").interpolater(move |_: &Profile, path: &[&str]| {
            let key = path.join(".");
            names
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| format!("CASMAN_{}", key.to_ascii_uppercase().replace('.', "__")))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (_, key, value) in &self.vars {
            let mut nested = value.clone();
            for part in key.rsplit('.') {
                let mut d = Dict::new();
                d.insert(part.to_owned(), nested);
                nested = Value::from(d);
            }
            if let Value::Dict(_, d) = nested {
                dict = merge(dict, d);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn merge(mut a: Dict, b: Dict) -> Dict {
    for (k, v) in b {
        let merged = match (a.remove(&k), v) {
            (Some(Value::Dict(_, x)), Value::Dict(tag, y)) => Value::Dict(tag, merge(x, y)),
            (_, v) => v,
        };
        a.insert(k, merged);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(vars: &[(&str, &str)]) -> EnvLayer {
        EnvLayer::from_vars(vars.iter().map(|(a, b)| (a.to_string(), b.to_string())))
    }

    #[test]
    fn casman_names_map_to_keys() {
        let l = layer(&[
            ("CASMAN_DATABASE_DIR", "/srv/db"),
            ("R2_BUCKET_NAME", "b"),
            ("CASMAN_LOG", "debug"),
            ("CASMAN_PARTS_DB", "x.db"),
            ("CASMAN_BARCODE_DIR", "/srv/labels"),
            ("HOME", "/root"),
        ]);
        assert_eq!(l.names(), vec!["CASMAN_DATABASE_DIR", "R2_BUCKET_NAME"]);
    }

    #[test]
    fn path_form_and_text_keys() {
        let l = layer(&[("CASMAN_SYNC__KEEP_VERSIONS", "5"), ("CASMAN_SITE_ID", "0042")]);
        let data = l.data().unwrap_or_default();
        let d = data.get(&Profile::Default).cloned().unwrap_or_default();
        assert_eq!(d.get("site_id").and_then(|v| v.as_str()), Some("0042"));
        let sync = d.get("sync").and_then(|v| v.as_dict()).cloned().unwrap_or_default();
        assert_eq!(sync.get("keep_versions").and_then(|v| v.to_u128()), Some(5));
    }
}

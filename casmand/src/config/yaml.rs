//! A CAsMan `config.yaml` as a configuration layer, between casmand.toml and
//! the environment (python-casman-behaviour §1.1, §7.1).
//!
//! It is another program's file: keys with a casman meaning are mapped (the
//! `database.sync` and `r2` sections, merged with `r2` winning as the Python
//! tool did, their `quota_limits`, and `CASMAN_PARTS_DB`/`CASMAN_ASSEMBLED_DB`),
//! every other key is reported by name in a warning and ignored, never
//! refused. Which file is read: `--config-yaml`, else the key `config_yaml`,
//! else a CAsMan `config.yaml` found beside the databases (in the data
//! directory or its parent, the Python checkout's layout).

use std::path::{Path, PathBuf};

use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Format, Yaml},
    value::{Dict, Map, Value},
};

use crate::config::ConfigError;

/// Name of the figment layer, as `casmanctl config` shows it.
const LAYER: &str = "CAsMan config.yaml";

/// `database.sync` / `r2` fields (§7.1) and the casman keys they set.
const SYNC_KEYS: &[(&str, &str)] = &[
    ("enabled", "sync.enabled"),
    ("backend", "sync.backend"),
    ("auto_sync_on_import", "sync.sync_on_start"),
    ("keep_versions", "sync.keep_versions"),
    ("backup_on_scan_count", "sync.backup_on_scan_count"),
    ("backup_on_hours", "sync.backup_on_hours"),
    ("account_id", "store.account_id"),
    ("access_key_id", "store.access_key_id"),
    ("secret_access_key", "store.secret_access_key"),
    ("bucket_name", "store.bucket_name"),
    ("endpoint", "store.endpoint"),
    ("region", "store.region"),
];

/// `quota_limits` fields and their casman keys.
const QUOTA_KEYS: &[(&str, &str)] = &[
    ("storage_gb", "quota.storage_gb"),
    ("class_a_operations", "quota.class_a_operations"),
    ("class_b_operations", "quota.class_b_operations"),
    ("warn_threshold", "quota.warn_threshold"),
    ("block_threshold", "quota.block_threshold"),
];

/// Top-level keys of a CAsMan config.yaml, used to recognise one found
/// beside the databases.
const CASMAN_TOP_KEYS: &[&str] =
    &["PART_TYPES", "CASMAN_PARTS_DB", "CASMAN_ASSEMBLED_DB", "database", "r2", "grid", "web_app", "barcode"];

/// A config.yaml read and mapped to casman keys.
#[derive(Debug, Clone)]
pub struct YamlLayer {
    path: PathBuf,
    /// (casman key, config.yaml key, value), in mapping order.
    mapped: Vec<(String, String, Value)>,
    /// config.yaml keys without a casman meaning, with why.
    ignored: Vec<String>,
}

impl YamlLayer {
    /// Reads and maps `path`.
    pub fn read(path: &Path) -> Result<YamlLayer, ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let data = Yaml::file_exact(&path)
            .data()
            .map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
        let dict = data.into_values().next().unwrap_or_default();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_dict(path, &base, dict)
    }

    /// Maps an already parsed file (`base`: where relative paths start).
    fn from_dict(path: PathBuf, base: &Path, dict: Dict) -> Result<YamlLayer, ConfigError> {
        let mut layer = YamlLayer { path, mapped: Vec::new(), ignored: Vec::new() };
        let text = |v: Option<&Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        let (parts, assembled) = (text(dict.get("CASMAN_PARTS_DB")), text(dict.get("CASMAN_ASSEMBLED_DB")));
        let origin = format!("config.yaml {}", layer.path.display());
        if let Some(dir) =
            crate::config::db_paths::data_dir(parts.as_deref(), assembled.as_deref(), base, &origin)?
        {
            let from = if parts.is_some() { "CASMAN_PARTS_DB" } else { "CASMAN_ASSEMBLED_DB" };
            layer.mapped.push((
                "data_dir".into(),
                from.into(),
                Value::from(dir.to_string_lossy().into_owned()),
            ));
        }
        for (key, value) in &dict {
            match key.as_str() {
                "CASMAN_PARTS_DB" | "CASMAN_ASSEMBLED_DB" => {}
                "database" => match value.as_dict() {
                    Some(db) => {
                        for (k, v) in db {
                            match (k.as_str(), v.as_dict()) {
                                ("sync", Some(sync)) => layer.section("database.sync", sync),
                                _ => layer.ignore(format!("database.{k}")),
                            }
                        }
                    }
                    None => layer.ignore("database".into()),
                },
                "r2" => match value.as_dict() {
                    Some(r2) => layer.section("r2", r2),
                    None => layer.ignore("r2".into()),
                },
                other => layer.ignore(other.to_owned()),
            }
        }
        // r2 wins over database.sync (§7.1): keep the last value per key.
        let mut seen = std::collections::HashSet::new();
        let mut kept: Vec<_> =
            layer.mapped.drain(..).rev().filter(|(k, _, _)| seen.insert(k.clone())).collect();
        kept.reverse();
        layer.mapped = kept;
        Ok(layer)
    }

    fn ignore(&mut self, key: String) {
        self.ignored.push(key);
    }

    fn section(&mut self, prefix: &str, section: &Dict) {
        for (k, v) in section {
            let yaml_key = format!("{prefix}.{k}");
            if matches!(v, Value::Empty(..)) {
                continue;
            }
            if k == "quota_limits" {
                match v.as_dict() {
                    Some(q) => {
                        for (qk, qv) in q {
                            match QUOTA_KEYS.iter().find(|(name, _)| name == qk) {
                                Some((_, key)) => {
                                    self.mapped.push(((*key).into(), format!("{yaml_key}.{qk}"), qv.clone()))
                                }
                                None => self.ignore(format!("{yaml_key}.{qk}")),
                            }
                        }
                    }
                    None => self.ignore(yaml_key),
                }
                continue;
            }
            let Some((_, key)) = SYNC_KEYS.iter().find(|(name, _)| name == k) else {
                self.ignore(yaml_key);
                continue;
            };
            if *key == "sync.backend" {
                let backend = v.as_str().map(|s| s.trim().to_ascii_lowercase()).unwrap_or_default();
                if !matches!(backend.as_str(), "r2" | "s3" | "local" | "none") {
                    // `github` (the shipped R2 config) had no R2 client at all.
                    self.ignore(format!("{yaml_key} = {backend:?} (casman backends: r2, s3, local, none)"));
                    continue;
                }
                self.mapped.push(((*key).into(), yaml_key, Value::from(backend)));
                continue;
            }
            self.mapped.push(((*key).into(), yaml_key, v.clone()));
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// config.yaml keys ignored (no casman meaning).
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// The casman keys this file sets.
    pub fn keys(&self) -> Vec<String> {
        self.mapped.iter().map(|(k, _, _)| k.clone()).collect()
    }

    /// The line `casmanctl config` shows for this layer: which keys it set
    /// that are in effect, which a higher layer overrode, what it ignored.
    pub fn describe(&self, fig: &Figment) -> String {
        let (mut effective, mut overridden) = (Vec::new(), Vec::new());
        for (key, yaml_key, _) in &self.mapped {
            let ours = fig.find_metadata(key).is_some_and(|m| m.name.starts_with(LAYER));
            let entry = if key == yaml_key { key.clone() } else { format!("{key} <- {yaml_key}") };
            if ours { effective.push(entry) } else { overridden.push(entry) }
        }
        let mut line = format!("config.yaml {} (sets: {}", self.path.display(), list(&effective));
        if !overridden.is_empty() {
            line.push_str(&format!("; overridden by a higher layer: {}", list(&overridden)));
        }
        if !self.ignored.is_empty() {
            line.push_str(&format!("; ignored: {}", self.ignored.join(", ")));
        }
        line.push(')');
        line
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "nothing".into() } else { v.join(", ") }
}

impl Provider for YamlLayer {
    fn metadata(&self) -> Metadata {
        let names: Vec<(String, String)> =
            self.mapped.iter().map(|(k, y, _)| (k.clone(), y.clone())).collect();
        Metadata::named(format!("{LAYER} {}", self.path.display())).interpolater(
            move |_: &Profile, path: &[&str]| {
                let key = path.join(".");
                names.iter().find(|(k, _)| *k == key).map(|(_, y)| y.clone()).unwrap_or(key)
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, _, value) in &self.mapped {
            insert(&mut root, key, value.clone());
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert(root: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            root.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = root.entry(head.to_owned()).or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, d) = entry {
                insert(d, rest, value);
            }
        }
    }
}

/// Which config.yaml to read: `explicit` (flag or key; an empty path reads
/// none), else a CAsMan one beside `data_dir`. Returns the file and whether
/// it was found rather than named.
pub fn locate(explicit: Option<&Path>, data_dir: &Path) -> Option<(PathBuf, bool)> {
    if let Some(p) = explicit {
        return (!p.as_os_str().is_empty()).then(|| (p.to_path_buf(), false));
    }
    let beside = [Some(data_dir.join("config.yaml")), data_dir.parent().map(|p| p.join("config.yaml"))];
    beside.into_iter().flatten().find(|p| looks_like_casman(p)).map(|p| (p, true))
}

/// True for a readable YAML file with a top-level key of CAsMan's config.
fn looks_like_casman(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    match Yaml::file_exact(path).data() {
        Ok(data) => data.values().any(|d| d.keys().any(|k| CASMAN_TOP_KEYS.contains(&k.as_str()))),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "not reading config.yaml found beside the databases");
            false
        }
    }
}

#[cfg(test)]
mod tests;

//! casmand's configuration, layered with figment, lowest to highest:
//! built-in defaults < `/etc/casman/casmand.toml` (or `--config FILE`) <
//! a CAsMan `config.yaml` (see [`crate::config::yaml`]) <
//! environment (`CASMAN_*` and the CAsMan names, see [`crate::config::env`]) <
//! systemd credentials (see [`crate::config::credentials`]) < command-line
//! flags. Unknown keys and malformed values are errors that name the key and
//! where it came from.

pub mod credentials;
pub mod db_paths;
pub mod duration;
pub mod env;
pub mod health;
pub mod http;
pub mod notify;
pub mod server;
pub mod yaml;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use serde::{Deserialize, Deserializer, Serialize};

use self::env::EnvLayer;
pub use self::{health::HealthConfig, http::HttpOperator, notify::NotifyConfig, server::ServerConfig};

/// The system-wide configuration file, read when it exists and no `--config`
/// is given.
pub const SYSTEM_CONFIG: &str = "/etc/casman/casmand.toml";

/// Everything casmand can be configured with. Every key and its default is
/// documented in `config/casmand.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding `parts.db`, `assembled_casm.db` and `state.db`.
    /// Default: `$CASMAN_DATABASE_DIR`, else `$STATE_DIRECTORY`, else `./database`.
    pub data_dir: PathBuf,
    /// Unix socket to serve on. Default: see `casman_proto::socket`.
    pub socket: Option<PathBuf>,
    /// Permission bits of the socket, octal (`"0660"`).
    pub socket_mode: String,
    /// Group owning the socket (name or numeric id). Default: the daemon's group.
    pub socket_group: Option<String>,
    /// Group whose members may run destructive requests (restore in place,
    /// forced sync, database clear). Root always may.
    pub admin_group: Option<String>,
    /// This site's identifier in backup keys and sync. Default: the host name.
    pub site_id: String,
    /// IANA time zone in which the Python tool wrote its local timestamps.
    /// Default: the host's zone.
    pub legacy_timezone: Option<String>,
    /// Part numbers this site issues, `"LO-HI"` within 1-99999. Sites that
    /// generate parts while sharing a bucket get disjoint ranges.
    pub part_number_range: String,
    /// How long in-flight requests may run after SIGTERM before they are cut.
    #[serde(with = "crate::config::duration")]
    pub shutdown_timeout: Duration,
    /// Backup triggers, retention and sync (`database.sync` in CAsMan's config.yaml).
    pub sync: SyncConfig,
    /// Where backups are stored (`r2` in CAsMan's config.yaml).
    #[serde(alias = "r2")]
    pub store: StoreConfig,
    /// Object-store free-tier limits (R2's by default).
    pub quota: QuotaConfig,
    /// Connection limits of the socket and the web listener.
    pub server: ServerConfig,
    /// The read-only web views (off unless `listen` is set).
    pub http: HttpConfig,
    /// When the backups stop being called healthy.
    pub health: HealthConfig,
    /// Who is told when backups fail, recover, or the store needs attention.
    pub notify: NotifyConfig,
    /// Barcode label sizes and sheet layout (`barcode` in CAsMan's config.yaml).
    pub labels: casman_labels::LabelsConfig,
    /// A CAsMan `config.yaml` read as a layer above this file (see
    /// `crate::config::yaml`). Default: one found beside the databases; `""`
    /// reads none.
    pub config_yaml: Option<PathBuf>,
}

/// The web views served over HTTP (see `crate::web`).
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port to serve on, e.g. `127.0.0.1:8998`. Default: off.
    pub listen: Option<String>,
    /// Access token every request must carry; secret, at least
    /// [`http::MIN_TOKEN`] characters. Required unless `allow_without_token`
    /// is set on a loopback address.
    pub token: Option<String>,
    /// Serve a loopback `listen` address without any token: every local
    /// user can then read the inventory (and, with a browser, sign in to the
    /// scanner by name). Never allowed on other addresses.
    #[serde(deserialize_with = "lenient_bool")]
    pub allow_without_token: bool,
    /// Scanner operators with their own tokens (`[[http.operators]]`), see
    /// [`crate::config::http`].
    pub operators: Vec<HttpOperator>,
    /// PEM certificate chain: with `tls_key`, the listener speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl HttpConfig {
    /// A copy with the token replaced by [`REDACTED`].
    pub fn redacted(&self) -> HttpConfig {
        HttpConfig {
            token: self.token.as_ref().map(|_| REDACTED.to_owned()),
            operators: self.operators.iter().map(HttpOperator::redacted).collect(),
            ..self.clone()
        }
    }

    /// The address to serve on, if any, checked: an IP address and port, and
    /// a token when the address is not loopback (the views show the whole
    /// inventory, and anyone on the network could read it).
    pub fn address(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(listen) = self.listen.as_deref() else { return Ok(None) };
        let addr: std::net::SocketAddr = listen.trim().parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "key `http.listen` = {listen:?}: must be an IP address and port, e.g. \"127.0.0.1:8998\""
            ))
        })?;
        self.check_signin()?;
        let has_token =
            self.token.as_deref().is_some_and(|t| !t.trim().is_empty()) || !self.operators.is_empty();
        if !addr.ip().is_loopback() && !has_token {
            return Err(ConfigError::Invalid(format!(
                "key `http.listen` = {listen:?} is not a loopback address, so `http.token` must be set \
                 (every request must then carry it); casmand will not serve the web views to the network \
                 without one"
            )));
        }
        if !has_token && !self.allow_without_token {
            return Err(ConfigError::Invalid(format!(
                "key `http.token` is not set: the web views on {listen:?} need a token of at least {} \
                 characters (every request must then carry it), or `http.allow_without_token = true` to \
                 let every local user read them without one",
                http::MIN_TOKEN
            )));
        }
        Ok(Some(addr))
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = self.redacted();
        f.debug_struct("HttpConfig")
            .field("listen", &redacted.listen)
            .field("token", &redacted.token)
            .field("allow_without_token", &redacted.allow_without_token)
            .field("operators", &redacted.operators)
            .field("tls_cert", &redacted.tls_cert)
            .field("tls_key", &redacted.tls_key)
            .finish()
    }
}

/// Which kind of store holds backups.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Cloudflare R2 (S3 API at `https://<account>.r2.cloudflarestorage.com`).
    R2,
    /// Any S3-compatible endpoint (AWS S3, MinIO, a test server).
    S3,
    /// A local directory (the embedded default: no cloud account needed).
    Local,
    /// No backups at all.
    None,
}

impl Backend {
    /// The lowercase name used in configuration and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::R2 => "r2",
            Backend::S3 => "s3",
            Backend::Local => "local",
            Backend::None => "none",
        }
    }
}

/// Backup triggers and retention.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Whether backups run at all.
    #[serde(deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// `r2`, `s3`, `local` or `none`. Default: `r2` when an R2 account id or an
    /// endpoint is configured, else `local`.
    pub backend: Option<Backend>,
    /// Versions kept per database.
    pub keep_versions: u32,
    /// Back up after this many writes.
    pub backup_on_scan_count: u32,
    /// ...or this long after the last backup when there are unsaved writes.
    /// A humantime string (`"24h"`) or, as in CAsMan's config.yaml, a number of hours.
    #[serde(with = "hours_or_humantime")]
    pub backup_on_hours: Duration,
    /// Back up parts.db at once after every batch of generated parts.
    #[serde(deserialize_with = "lenient_bool")]
    pub backup_after_parts_generation: bool,
    /// Fetch newer versions from other sites when the daemon starts.
    #[serde(deserialize_with = "lenient_bool")]
    pub sync_on_start: bool,
    /// How often storage-class maintenance runs.
    #[serde(with = "crate::config::duration")]
    pub maintenance_interval: Duration,
    /// First wait before retrying a failed backup; it doubles per failure.
    #[serde(with = "crate::config::duration")]
    pub retry_initial: Duration,
    /// Longest wait between retries.
    #[serde(with = "crate::config::duration")]
    pub retry_max: Duration,
    /// Storage class every version is kept in.
    pub storage_class: String,
    /// Maintenance downloads and checks a rotating sample of versions so
    /// that every version is verified within this period.
    #[serde(with = "crate::config::duration")]
    pub verify_period: Duration,
    /// At most this many MiB of stored versions are downloaded for checking
    /// per day of `maintenance_interval` (a run checks what its days allow).
    pub verify_daily_mib: u64,
    /// Maintenance deletes objects no manifest version references once they
    /// are older than this (younger ones may be uploads in progress at
    /// another site, and are only reported).
    #[serde(with = "crate::config::duration")]
    pub orphan_grace: Duration,
    /// A version is stored as a delta (the pages changed since this site's
    /// last stored version) unless its chain from the last full snapshot
    /// would get longer than this; 0 stores every version in full.
    pub delta_chain_max: u32,
    /// ...or the chain's deltas would add up to more than this share of
    /// its full snapshot's stored size (0 to 1).
    pub delta_max_share: f64,
    /// Continuous protection: a write is in the store at most this long
    /// after it was acknowledged (writes within it share one version);
    /// zero = off.
    #[serde(with = "crate::config::duration")]
    pub replicate_within: Duration,
    /// While the store is unreachable, each due backup waits in a local
    /// spool (`<data_dir>/spool/`), at most this many per database (the
    /// oldest are folded together beyond it); 0 = off (a backup just fails).
    pub offline_spool_max: u32,
    /// How often the scheduler applies the changes other sites published
    /// (and publishes this site's first); zero = only on `casmanctl sync
    /// sync` and after backups.
    #[serde(with = "crate::config::duration")]
    pub pull_every: Duration,
    /// Sites exchange changes (true, the default): `sync sync` publishes
    /// this site's changes and applies the other sites', never replacing a
    /// live file. false: the whole-file flow of earlier versions (pull,
    /// diverge, merge), for a store shared with sites that still run one.
    pub exchange: bool,
}

/// Object store location and credentials.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Bucket holding `backups/`.
    pub bucket_name: String,
    /// Cloudflare account id (R2).
    pub account_id: Option<String>,
    /// Access key id; secret.
    pub access_key_id: Option<String>,
    /// Secret access key; secret.
    pub secret_access_key: Option<String>,
    /// Endpoint URL; overrides the R2 account endpoint and the AWS default.
    pub endpoint: Option<String>,
    /// Region (`auto` for R2).
    pub region: Option<String>,
    /// Path-style addressing (needed by most S3 servers other than AWS and R2).
    pub path_style: bool,
    /// Directory of the `local` backend. Default: `<data_dir>/backups`.
    pub backup_dir: Option<PathBuf>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, not even in debug output.
        let redacted = self.redacted();
        f.debug_struct("StoreConfig")
            .field("bucket_name", &redacted.bucket_name)
            .field("account_id", &redacted.account_id)
            .field("access_key_id", &redacted.access_key_id)
            .field("secret_access_key", &redacted.secret_access_key)
            .field("endpoint", &redacted.endpoint)
            .field("region", &redacted.region)
            .field("path_style", &redacted.path_style)
            .field("backup_dir", &redacted.backup_dir)
            .finish()
    }
}

/// Free-tier limits; warn and block thresholds are fractions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Storage limit in GB (GiB, as the Python tool computed it).
    pub storage_gb: f64,
    /// Class A operations per month.
    pub class_a_operations: u64,
    /// Class B operations per month.
    pub class_b_operations: u64,
    /// Warn from this fraction of any limit.
    pub warn_threshold: f64,
    /// Refuse operations from this fraction of any limit.
    pub block_threshold: f64,
}

/// Marker shown instead of a secret.
pub const REDACTED: &str = "<redacted>";

impl StoreConfig {
    /// The endpoint URL the `backend` store talks to: `endpoint` when set,
    /// else for R2 the account's `https://<account_id>.r2.cloudflarestorage.com`.
    /// `None` means the AWS default (S3), or an R2 store that lacks both keys.
    /// Blank values count as unset.
    pub fn endpoint_for(&self, backend: Backend) -> Option<String> {
        let set =
            |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        match (set(&self.endpoint), backend) {
            (Some(e), _) => Some(e),
            (None, Backend::R2) => {
                set(&self.account_id).map(|a| format!("https://{a}.r2.cloudflarestorage.com"))
            }
            (None, _) => None,
        }
    }

    /// A copy with secrets replaced by [`REDACTED`].
    pub fn redacted(&self) -> StoreConfig {
        let hide = |v: &Option<String>| v.as_ref().map(|_| REDACTED.to_owned());
        StoreConfig {
            access_key_id: hide(&self.access_key_id),
            secret_access_key: hide(&self.secret_access_key),
            ..self.clone()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            socket: None,
            socket_mode: "0660".into(),
            socket_group: None,
            admin_group: None,
            site_id: default_site_id(),
            legacy_timezone: None,
            part_number_range: "1-99999".into(),
            shutdown_timeout: Duration::from_secs(10),
            sync: SyncConfig::default(),
            store: StoreConfig { bucket_name: "casman-databases".into(), ..Default::default() },
            quota: QuotaConfig::default(),
            server: ServerConfig::default(),
            http: HttpConfig::default(),
            health: HealthConfig::default(),
            notify: NotifyConfig::default(),
            labels: casman_labels::LabelsConfig::default(),
            config_yaml: None,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            enabled: true,
            backend: None,
            keep_versions: 10,
            backup_on_scan_count: 10,
            backup_on_hours: Duration::from_secs(24 * 3600),
            backup_after_parts_generation: true,
            sync_on_start: false,
            maintenance_interval: Duration::from_secs(7 * 24 * 3600),
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            storage_class: "STANDARD".into(),
            verify_period: Duration::from_secs(30 * 24 * 3600),
            verify_daily_mib: 64,
            orphan_grace: Duration::from_secs(7 * 24 * 3600),
            delta_chain_max: 50,
            delta_max_share: 0.5,
            replicate_within: Duration::ZERO,
            offline_spool_max: 64,
            pull_every: Duration::from_secs(300),
            exchange: true,
        }
    }
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            storage_gb: 10.0,
            class_a_operations: 1_000_000,
            class_b_operations: 10_000_000,
            warn_threshold: 0.80,
            block_threshold: 0.95,
        }
    }
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        // systemd may pass several colon-separated directories; the first is ours.
        Some(dirs) => {
            let s = dirs.to_string_lossy().into_owned();
            PathBuf::from(s.split(':').next().unwrap_or(&s))
        }
        None => PathBuf::from("database"),
    }
}

fn default_site_id() -> String {
    hostname::get()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "site".into())
}

/// Values given on casmand's command line; they override every other layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--socket`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// `--socket-mode`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_mode: Option<String>,
    /// `--site-id`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// `--config-yaml`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_yaml: Option<PathBuf>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist or cannot be read.
    #[error("configuration file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
    /// The configuration file is not valid TOML. The offending line is
    /// never shown (it may hold a token or a key): its number, column and
    /// key name are.
    #[error(
        "configuration file {path}, line {line}, column {column}{}: not valid TOML ({reason}); \
         the line is not shown, as it may hold a secret",
        key.as_deref().map(|k| format!(" (key `{k}`)")).unwrap_or_default()
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (characters) of the error.
        column: usize,
        /// The key being written on that line, when it can be told.
        key: Option<String>,
        /// What the TOML parser expected, without any of the line's text.
        reason: String,
    },
    /// A key is unknown or a value malformed; the message names the key
    /// and the layer (file path or environment variable), and the value
    /// unless the key holds a secret (see [`is_secret_key`]).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A loaded configuration and the layers it was built from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Human-readable layer names, lowest first.
    pub sources: Vec<String>,
}

/// Loads the configuration. `file` is `--config`; without it the system file
/// is read if it exists (or `$CONFIGURATION_DIRECTORY/casmand.toml` under systemd).
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let mut sources = vec!["defaults".to_owned()];
    let mut base = Figment::from(Serialized::defaults(Config::default()));
    let path = match file {
        Some(p) => {
            std::fs::metadata(p)
                .map_err(|e| ConfigError::File { path: p.to_path_buf(), reason: e.to_string() })?;
            Some(p.to_path_buf())
        }
        None => default_config_file(),
    };
    if let Some(p) = path {
        check_syntax(&p)?;
        base = base.merge(Toml::file_exact(&p));
        sources.push(format!("file {}", p.display()));
    }
    let env = EnvLayer::from_process();
    let db_paths = db_paths_layer(&env)?;
    let creds = crate::config::credentials::CredentialsLayer::from_process();
    let flags = Serialized::defaults(overrides.clone());
    let above = |fig: Figment| {
        let fig = fig.merge(env.clone());
        let fig = match &db_paths {
            Some(dir) => fig.merge(Serialized::default("data_dir", dir)),
            None => fig,
        };
        fig.merge(creds.clone()).merge(flags.clone())
    };
    // Which config.yaml (flag, key, or found beside the databases) is known
    // only once every other layer is read.
    let pre: Config = above(base.clone()).extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
    let yaml = match crate::config::yaml::locate(pre.config_yaml.as_deref(), &absolute(&pre.data_dir)) {
        Some((p, found)) => {
            let layer = crate::config::yaml::YamlLayer::read(&p)?;
            if found {
                tracing::info!(file = %layer.path().display(), "reading the CAsMan config.yaml found beside the databases (choose another with --config-yaml, or config_yaml = \"\" for none)");
            }
            if !layer.ignored().is_empty() {
                tracing::warn!(file = %layer.path().display(), ignored = %layer.ignored().join(", "), "config.yaml keys without a casman meaning are ignored");
            }
            Some(layer)
        }
        None => None,
    };
    let fig = match &yaml {
        Some(layer) => above(base.merge(layer.clone())),
        None => above(base),
    };
    if let Some(layer) = &yaml {
        sources.push(layer.describe(&fig));
    }
    if !env.is_empty() {
        sources.push(format!("environment ({})", env.names().join(", ")));
    }
    if let Some(dir) = &db_paths {
        sources
            .push(format!("environment (CASMAN_PARTS_DB/CASMAN_ASSEMBLED_DB: data_dir = {})", dir.display()));
    }
    if !creds.is_empty() {
        sources.push(format!("systemd credentials ({})", creds.names().join(", ")));
    }
    if overrides.data_dir.is_some()
        || overrides.socket.is_some()
        || overrides.socket_mode.is_some()
        || overrides.site_id.is_some()
        || overrides.config_yaml.is_some()
    {
        sources.push("command-line flags".into());
    }
    let mut config: Config = fig.extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
    config.validate()?;
    config.data_dir = absolute(&config.data_dir);
    Ok(Loaded { config, sources })
}

/// The data directory named by the Python tool's `CASMAN_PARTS_DB` /
/// `CASMAN_ASSEMBLED_DB` variables, checked against `CASMAN_DATABASE_DIR`.
fn db_paths_layer(env: &EnvLayer) -> Result<Option<PathBuf>, ConfigError> {
    let var = |n: &str| std::env::var(n).ok();
    let cwd = std::env::current_dir().unwrap_or_default();
    let Some(dir) = crate::config::db_paths::data_dir(
        var("CASMAN_PARTS_DB").as_deref(),
        var("CASMAN_ASSEMBLED_DB").as_deref(),
        &cwd,
        "environment",
    )?
    else {
        return Ok(None);
    };
    if env.names().iter().any(|n| n == "CASMAN_DATABASE_DIR")
        && let Some(set) = var("CASMAN_DATABASE_DIR")
        && absolute(&cwd.join(&set)) != dir
    {
        return Err(ConfigError::Invalid(format!(
            "CASMAN_DATABASE_DIR = {set:?} but CASMAN_PARTS_DB/CASMAN_ASSEMBLED_DB name {}: set one of them",
            dir.display()
        )));
    }
    Ok(Some(dir))
}

fn default_config_file() -> Option<PathBuf> {
    let candidates = std::env::var_os("CONFIGURATION_DIRECTORY")
        .map(|d| PathBuf::from(d).join("casmand.toml"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from(SYSTEM_CONFIG)));
    candidates.into_iter().find(|p| p.is_file())
}

/// Reads and parses the configuration file `path` as TOML, so that a
/// syntax error is reported by line, column and key, never with the text of
/// the line (the TOML parser's own message quotes it, and the line may be
/// `token = "…"`).
fn check_syntax(path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File { path: path.to_path_buf(), reason: e.to_string() })?;
    match toml::from_str::<toml::Table>(&text) {
        Ok(_) => Ok(()),
        Err(e) => Err(syntax_error(path, &text, &e)),
    }
}

/// The [`ConfigError::Syntax`] for `e`, raised parsing `text` (the file `path`).
fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let key = key_at(&lines[..line.min(lines.len())]);
    // The parser's message, minus any quoted fragment of the file: only
    // lines that quote nothing of the offending line are kept.
    let own_line = lines.get(line - 1).copied().unwrap_or_default();
    let reason = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !quotes_text(l, own_line))
        .collect::<Vec<_>>()
        .join("; ");
    let reason = if reason.is_empty() { "syntax error".to_owned() } else { reason };
    ConfigError::Syntax { path: path.to_path_buf(), line, column, key, reason }
}

/// Whether `message` quotes (between backticks or double quotes) a piece of
/// `line` other than TOML punctuation.
fn quotes_text(message: &str, line: &str) -> bool {
    ['`', '"'].iter().any(|q| {
        message
            .split(*q)
            .skip(1)
            .step_by(2)
            .any(|quoted| quoted.chars().any(|c| c.is_alphanumeric()) && line.contains(quoted.trim()))
    })
}

/// The dotted key written on the last of `lines` (inside the last table
/// header before it), when it is a plain key; `None` otherwise.
fn key_at(lines: &[&str]) -> Option<String> {
    let plain = |k: &str| {
        let k = k.trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ')))
            .then(|| k.split('.').map(str::trim).collect::<Vec<_>>().join("."))
    };
    let (last, earlier) = lines.split_last()?;
    let table = earlier.iter().rev().find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix("[[").and_then(|r| r.split("]]").next());
        let inner = inner.or_else(|| l.strip_prefix('[').and_then(|r| r.split(']').next()));
        inner.map(|t| plain(t).unwrap_or_default())
    });
    let own = last.trim();
    if own.starts_with('[') {
        let name = own.trim_start_matches('[').split(']').next().unwrap_or_default();
        return plain(name);
    }
    let key = plain(own.split_once('=')?.0)?;
    Some(match table.filter(|t| !t.is_empty()) {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}

/// Whether the configuration key `path` (dotted, or its segments) holds a
/// secret whose value must never appear in a message: any `token` (the web
/// token, operators' tokens), any `secret`, `password` or access key, and the
/// notification URLs (`webhook`, `success_ping`: they may carry a token).
pub fn is_secret_key(path: &[impl AsRef<str>]) -> bool {
    path.iter().any(|seg| {
        let seg = seg.as_ref().to_ascii_lowercase();
        seg == "token"
            || seg == "tokens"
            || seg.ends_with("_token") && seg != "allow_without_token"
            || seg.contains("secret")
            || seg.contains("password")
            || seg.contains("access_key")
            || seg == "webhook"
            || seg == "success_ping"
    })
}

/// Every figment error in the chain, joined with `; `: kind, key and layer,
/// as figment words them, except that a value of a secret key is described
/// by its type only, and a parser message's quoted source lines are dropped.
fn describe(e: figment::Error) -> String {
    e.into_iter().map(|e| describe_one(&e)).collect::<Vec<_>>().join("; ")
}

fn describe_one(e: &figment::Error) -> String {
    use figment::error::{Actual, Kind};
    let kind_of = |a: &Actual| match a {
        Actual::Str(_) => "a string".to_owned(),
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer".to_owned(),
        Actual::Float(_) => "a float".to_owned(),
        Actual::Bool(_) => "a boolean".to_owned(),
        Actual::Char(_) => "a character".to_owned(),
        Actual::Bytes(_) => "bytes".to_owned(),
        Actual::Other(_) => "a value".to_owned(),
        other => other.to_string(),
    };
    let mut out = if is_secret_key(&e.path) {
        match &e.kind {
            Kind::InvalidType(a, exp) => format!("invalid type: found {}, expected {exp}", kind_of(a)),
            Kind::InvalidValue(a, exp) => format!("invalid value ({}), expected {exp}", kind_of(a)),
            Kind::Message(_) => "malformed value (not shown: the key holds a secret)".to_owned(),
            other => other.to_string(),
        }
    } else {
        match &e.kind {
            Kind::Message(m) => without_source_lines(m),
            other => other.to_string(),
        }
    };
    if let (Some(profile), Some(md)) = (&e.profile, &e.metadata)
        && !e.path.is_empty()
    {
        out.push_str(&format!(" for key {:?}", md.interpolate(profile, &e.path)));
    }
    if let Some(md) = &e.metadata {
        match &md.source {
            Some(source) => out.push_str(&format!(" in {source} {}", md.name)),
            None => out.push_str(&format!(" in {}", md.name)),
        }
    }
    out
}

/// A parser's message without the source excerpt it quotes (`3 | token =
/// "…"` and the `|` / `^` lines around it).
fn without_source_lines(message: &str) -> String {
    message
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            let t = t.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
            !t.starts_with('|') && !t.is_empty()
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Config {
    /// Checks values that deserialize but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: &dyn std::fmt::Display, rule: &str| {
            Err(ConfigError::Invalid(format!("key `{key}` = {value}: {rule}")))
        };
        if self.socket_mode().is_none() {
            return bad(
                "socket_mode",
                &format!("{:?}", self.socket_mode),
                "must be octal permission bits such as \"0660\"",
            );
        }
        if self.site_id.is_empty()
            || !self.site_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return bad(
                "site_id",
                &format!("{:?}", self.site_id),
                "must be non-empty ASCII letters, digits, '-' or '.'",
            );
        }
        if self.part_numbers().is_none() {
            return bad(
                "part_number_range",
                &format!("{:?}", self.part_number_range),
                "must be LO-HI with 1 <= LO <= HI <= 99999, e.g. \"1-49999\"",
            );
        }
        if self.sync.keep_versions == 0 {
            return bad("sync.keep_versions", &0, "must be at least 1");
        }
        if self.sync.offline_spool_max == 1 {
            return bad(
                "sync.offline_spool_max",
                &self.sync.offline_spool_max,
                "must be 0 (no spool) or at least 2 (the oldest two are folded to make room)",
            );
        }
        if !(0.0..=1.0).contains(&self.sync.delta_max_share) {
            return bad("sync.delta_max_share", &self.sync.delta_max_share, "must be between 0 and 1");
        }
        if self.server.write_batch == 0 {
            return bad("server.write_batch", &0, "must be at least 1 (1 commits every scan on its own)");
        }
        if self.sync.backup_on_scan_count == 0 {
            return bad("sync.backup_on_scan_count", &0, "must be at least 1");
        }
        let q = &self.quota;
        if !(0.0 < q.warn_threshold && q.warn_threshold <= q.block_threshold && q.block_threshold <= 1.0) {
            return bad(
                "quota.warn_threshold/quota.block_threshold",
                &format!("{}/{}", q.warn_threshold, q.block_threshold),
                "need 0 < warn <= block <= 1",
            );
        }
        if let Some(tz) = &self.legacy_timezone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            return bad("legacy_timezone", &format!("{tz:?}"), "not a known IANA time zone");
        }
        self.http.address()?;
        self.notify.validate()?;
        self.labels.validate().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// The part numbers this site issues, parsed from [`Config::part_number_range`].
    pub fn part_numbers(&self) -> Option<std::ops::RangeInclusive<u32>> {
        let (lo, hi) = self.part_number_range.split_once('-')?;
        let (lo, hi): (u32, u32) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        (1 <= lo && lo <= hi && hi <= 99_999).then_some(lo..=hi)
    }

    /// The socket's permission bits, parsed from [`Config::socket_mode`].
    pub fn socket_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8).ok().filter(|m| *m <= 0o777)
    }

    /// The backend in effect: the configured one, else `r2` when an R2 account
    /// or an endpoint is configured, else `local`.
    pub fn backend(&self) -> Backend {
        if !self.sync.enabled {
            return Backend::None;
        }
        self.sync.backend.unwrap_or(if self.store.account_id.is_some() || self.store.endpoint.is_some() {
            Backend::R2
        } else {
            Backend::Local
        })
    }

    /// Directory of the `local` backend.
    pub fn backup_dir(&self) -> PathBuf {
        self.store.backup_dir.clone().unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// A copy safe to show: secrets redacted.
    pub fn redacted(&self) -> Config {
        Config {
            store: self.store.redacted(),
            http: self.http.redacted(),
            notify: self.notify.redacted(),
            ..self.clone()
        }
    }
}

/// `true`/`false`, and the CAsMan spellings `1`/`0`, `yes`/`no` (any case).
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Int(i64),
        Str(String),
    }
    match B::deserialize(d)? {
        B::Bool(b) => Ok(b),
        B::Int(i) => Ok(i != 0),
        B::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            other => {
                Err(serde::de::Error::custom(format!("{other:?} is not a boolean (true/false, yes/no, 1/0)")))
            }
        },
    }
}

/// A duration written as a humantime string (`"24h"`, `"90m"`) or as a number
/// of hours (`24.0`, CAsMan's `backup_on_hours`).
mod hours_or_humantime {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        crate::config::duration::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum H {
            Hours(f64),
            Text(String),
        }
        match H::deserialize(d)? {
            H::Hours(h) if h.is_finite() && h > 0.0 => Ok(Duration::from_secs_f64(h * 3600.0)),
            H::Hours(h) => Err(serde::de::Error::custom(format!("{h} hours: must be positive"))),
            H::Text(t) => humantime::parse_duration(&t).map_err(|e| {
                serde::de::Error::custom(format!("{t:?} is not a duration ({e}); use e.g. \"24h\""))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.socket_mode(), Some(0o660));
        assert_eq!(c.backend(), Backend::Local);
        assert_eq!(c.sync.backup_on_hours, Duration::from_secs(86400));
    }

    #[test]
    fn hours_accept_numbers_and_text() {
        let f: SyncConfig = toml::from_str("backup_on_hours = 1.5").unwrap_or_default();
        assert_eq!(f.backup_on_hours, Duration::from_secs(5400));
        let f: SyncConfig = toml::from_str("backup_on_hours = \"90m\"").unwrap_or_default();
        assert_eq!(f.backup_on_hours, Duration::from_secs(5400));
        assert!(toml::from_str::<SyncConfig>("backup_on_hours = \"soon\"").is_err());
    }

    #[test]
    fn backend_defaults_to_r2_with_an_account() {
        let mut c = Config::default();
        c.store.account_id = Some("abc".into());
        assert_eq!(c.backend(), Backend::R2);
        c.sync.enabled = false;
        assert_eq!(c.backend(), Backend::None);
    }

    #[test]
    fn the_r2_endpoint_comes_from_the_account_unless_set() {
        let mut s = StoreConfig { account_id: Some("abc".into()), ..StoreConfig::default() };
        assert_eq!(s.endpoint_for(Backend::R2).as_deref(), Some("https://abc.r2.cloudflarestorage.com"));
        assert_eq!(s.endpoint_for(Backend::S3), None);
        s.endpoint = Some(" ".into());
        assert_eq!(s.endpoint_for(Backend::R2).as_deref(), Some("https://abc.r2.cloudflarestorage.com"));
        s.endpoint = Some("http://127.0.0.1:9000".into());
        assert_eq!(s.endpoint_for(Backend::R2).as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.endpoint_for(Backend::S3).as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(StoreConfig::default().endpoint_for(Backend::R2), None);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::default();
        c.store.secret_access_key = Some("hunter2".into());
        let shown = format!("{:?} {}", c, toml::to_string(&c.redacted()).unwrap_or_default());
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains(REDACTED));
    }

    #[test]
    fn http_token_is_redacted_and_required_unless_allowed_on_loopback() {
        let mut c = Config::default();
        assert_eq!(c.http.address().ok(), Some(None));
        c.http.listen = Some("127.0.0.1:8998".into());
        let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`http.token` is not set") && err.contains("allow_without_token"), "{err}");
        c.http.allow_without_token = true;
        assert!(c.validate().is_ok());
        c.http.listen = Some("0.0.0.0:8998".into());
        let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("http.token") && err.contains("not a loopback"), "{err}");
        c.http.token = Some("hunter2-hunter2-hunter2".into());
        assert!(c.validate().is_ok());
        let shown = format!("{:?} {}", c, toml::to_string(&c.redacted()).unwrap_or_default());
        assert!(!shown.contains("hunter2"), "{shown}");
        c.http.token = Some("hunter2".into());
        let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`http.token`: must be at least 16 characters"), "{err}");
        c.http.listen = Some("localhost".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn an_offline_spool_of_one_is_refused_naming_the_key() {
        let mut c = Config::default();
        for (max, ok) in [(0, true), (1, false), (2, true), (64, true)] {
            c.sync.offline_spool_max = max;
            let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(err.is_empty(), ok, "{max}: {err}");
            assert!(ok || err.contains("sync.offline_spool_max") && err.contains("at least 2"), "{err}");
        }
    }

    fn load_file(text: &str) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let path = dir.path().join("casmand.toml");
        std::fs::write(&path, text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        load(Some(&path), &Overrides { config_yaml: Some("".into()), ..Overrides::default() })
    }

    #[test]
    fn a_syntax_error_names_line_and_key_but_never_echoes_the_line() {
        for (text, line, key) in [
            ("site_id = \"lab\"\n\n[http]\ntoken = \"s3cr3t-value\n", 4, "http.token"),
            ("[http]\ntoken = \"s3cr3t-value\" junk\n", 2, "http.token"),
            ("[store]\nsecret_access_key = s3cr3t-value\n", 2, "store.secret_access_key"),
            ("[[http.operators]]\nname = \"ann\"\ntoken = 's3cr3t-value\n", 3, "http.operators.token"),
            ("store.access_key_id = \"s3cr3t-value\"\"\n", 1, "store.access_key_id"),
        ] {
            let err = load_file(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(&format!("line {line}, column")), "{text:?}: {err}");
            assert!(err.contains(&format!("key `{key}`")), "{text:?}: {err}");
            assert!(err.contains("casmand.toml"), "{text:?}: {err}");
            assert!(!err.contains("s3cr3t"), "{text:?} leaks the value: {err}");
        }
    }

    #[test]
    fn a_malformed_secret_value_is_described_by_its_type_only() {
        for text in [
            "[http]\ntoken = 123456789\n",
            "[http]\ntoken = [\"s3cr3t-value\"]\n",
            "[store]\naccess_key_id = 123456789\n",
            "[[http.operators]]\nname = \"ann\"\ntoken = 123456789\n",
        ] {
            let err = load_file(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("token") || err.contains("access_key_id"), "{text:?}: {err}");
            assert!(!err.contains("123456789") && !err.contains("s3cr3t"), "{text:?} leaks: {err}");
        }
        // Other keys still name the bad value.
        let err = load_file("site_id = 123456789\n").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("123456789") && err.contains("site_id"), "{err}");
    }

    #[test]
    fn secret_keys_are_recognised() {
        for key in [
            "http.token",
            "http.operators.0.token",
            "store.secret_access_key",
            "store.access_key_id",
            "notify.webhook",
            "notify.success_ping",
        ] {
            assert!(is_secret_key(&key.split('.').collect::<Vec<_>>()), "{key}");
        }
        for key in ["http.listen", "http.allow_without_token", "store.bucket_name", "site_id"] {
            assert!(!is_secret_key(&key.split('.').collect::<Vec<_>>()), "{key}");
        }
    }

    #[test]
    fn bad_socket_mode_is_named() {
        let c = Config { socket_mode: "rw-rw----".into(), ..Config::default() };
        let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("socket_mode"), "{err}");
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    /// `config/casmand.toml` documents every key with its default: loading it
    /// must give exactly the defaults.
    #[test]
    fn the_example_file_holds_the_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/casmand.toml");
        let text = std::fs::read_to_string(&path)?;
        let parsed: Config =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text)).extract()?;
        assert_eq!(parsed, Config::default());
        // Every key of the defaults appears in the file, set or commented.
        let defaults = toml::to_string(&Config::default())?;
        for line in defaults.lines().filter(|l| l.contains(" = ")) {
            let key = line.split(" = ").next().unwrap_or_default();
            assert!(text.contains(&format!("{key} = ")), "config/casmand.toml lacks `{key}`");
        }
        Ok(())
    }
}

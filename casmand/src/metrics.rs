//! What an operator's monitoring needs to know (issue 31): per database the
//! last successful backup, the writes not yet backed up and the age of the
//! oldest, failing backups waiting for a retry, spooled versions; the quota
//! use; and whether the backups are healthy ([`problems`]).
//!
//! Everything is read on request from what state.db and the backup service
//! already hold ([`gather`]: a few SELECTs, no request to the store), then
//! rendered by pure functions: [`render`] writes the Prometheus text format
//! (version 0.0.4, which OpenMetrics parsers read too) served at `/metrics`,
//! [`problems`] the health verdict used by `grpc.health.v1`, `casmanctl
//! status --check` and the web `/status` page.

use std::{fmt::Write as _, time::Duration};

use crate::{
    backup::{
        layout,
        quota::{Resource, fractions, replication_window},
    },
    context::Context,
    db::sync_state,
    error::Result,
};

/// The service whose health follows the backups.
pub const BACKUP_SERVICE: &str = "casman.v1.Backups";

/// The backup state of one database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseFigures {
    /// File name.
    pub name: &'static str,
    /// Size of the live file.
    pub size_bytes: u64,
    /// Last successful backup.
    pub last_backup_at: Option<jiff::Timestamp>,
    /// Writes not yet in a stored backup.
    pub unsaved_writes: i64,
    /// When the oldest of them was made.
    pub oldest_unsaved_write_at: Option<jiff::Timestamp>,
    /// Failed attempts of a pending backup (0: none pending).
    pub failed_attempts: i64,
    /// When the pending backup first failed.
    pub failing_since: Option<jiff::Timestamp>,
    /// Its last error.
    pub last_error: Option<String>,
    /// Versions in the offline spool.
    pub spooled: u64,
    /// When maintenance last downloaded and checked one of its versions.
    pub last_verified_at: Option<jiff::Timestamp>,
    /// Its stored versions whose last check failed.
    pub failed_verifications: u64,
    /// Conflicts of the change exchange standing in it.
    pub conflicts: u64,
}

/// Quota use as fractions of the limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaFigures {
    /// Whether the limits are enforced.
    pub enforced: bool,
    /// Class A requests.
    pub class_a: f64,
    /// Class B requests.
    pub class_b: f64,
    /// Bytes stored.
    pub storage: f64,
    /// Replication window in effect.
    pub replication_window: Duration,
}

/// Everything [`render`] and [`problems`] need.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// casmand's version.
    pub version: &'static str,
    /// This site.
    pub site: String,
    /// When the daemon started.
    pub started_at: Option<jiff::Timestamp>,
    /// Whether backups run at all (a backend other than `none`).
    pub backups_enabled: bool,
    /// `health.backup_stale_after`.
    pub stale_after: Duration,
    /// Per backed-up database.
    pub databases: Vec<DatabaseFigures>,
    /// Quota use.
    pub quota: QuotaFigures,
    /// gRPC requests by method and code, and their durations.
    pub rpc: crate::rpc_metrics::Figures,
    /// Requests per group-commit batch.
    pub group_commit: crate::histogram::Figures,
}

fn parse_time(s: Option<&str>) -> Option<jiff::Timestamp> {
    s.and_then(|s| s.parse().ok())
}

/// Reads the figures from state.db and the backup service.
pub async fn gather(ctx: &Context) -> Result<Snapshot> {
    let state = &ctx.dbs().state;
    let pending = sync_state::pending(state).await?;
    let backups = ctx.backups();
    let status = ctx.status().await;
    let mut databases = Vec::new();
    for name in layout::BACKED_UP {
        let act = sync_state::activity(state, name).await?;
        let p = pending.iter().find(|p| p.database == name);
        let verify = verification(state, name).await?;
        databases.push(DatabaseFigures {
            name,
            size_bytes: status.databases.iter().find(|d| d.name == name).map_or(0, |d| d.size_bytes),
            last_backup_at: parse_time(act.last_backup_at.as_deref()),
            unsaved_writes: act.writes_since_backup,
            oldest_unsaved_write_at: parse_time(act.first_unsaved_write_at.as_deref())
                .filter(|_| act.writes_since_backup > 0),
            failed_attempts: p.map_or(0, |p| p.attempts),
            failing_since: p.and_then(|p| parse_time(Some(&p.first_failed_at))),
            last_error: p.and_then(|p| p.last_error.clone()),
            spooled: backups.spooled(name) as u64,
            last_verified_at: parse_time(verify.0.as_deref()),
            failed_verifications: u64::try_from(verify.1).unwrap_or(0),
            conflicts: backups.conflicts(name).await.map_or(0, |c| c.len() as u64),
        });
    }
    let report = backups.quota().report().await;
    let mut quota = QuotaFigures { enforced: report.enforced, ..QuotaFigures::default() };
    for (resource, fraction) in fractions(&report.fleet, &report.limits) {
        match resource {
            Resource::ClassA => quota.class_a = fraction,
            Resource::ClassB => quota.class_b = fraction,
            Resource::Storage => quota.storage = fraction,
        }
    }
    let cfg = ctx.config();
    quota.replication_window = replication_window(&cfg.sync, &report, jiff::Timestamp::now()).effective;
    Ok(Snapshot {
        version: status.version,
        site: status.site_id,
        started_at: status.started_at.parse().ok(),
        backups_enabled: status.backend.enabled,
        stale_after: cfg.health.backup_stale_after,
        databases,
        quota,
        rpc: ctx.rpc_metrics().figures(),
        group_commit: ctx.group_commit_batches(),
    })
}

/// The last verification of a version of `database` and how many of its
/// versions failed their last one (maintenance's `verified_versions`).
async fn verification(state: &crate::db::Db, database: &str) -> Result<(Option<String>, i64)> {
    Ok(sqlx::query_as(
        "SELECT MAX(verified_at), COALESCE(SUM(NOT ok), 0) FROM verified_versions WHERE database = ?",
    )
    .bind(database)
    .fetch_one(&*state.reader().await)
    .await?)
}

/// Seconds from `t` to `now` (0 when `t` is later).
pub fn age(t: jiff::Timestamp, now: jiff::Timestamp) -> u64 {
    u64::try_from(now.as_second().saturating_sub(t.as_second())).unwrap_or(0)
}

/// `secs` as `6h`, `90m`, `2d 3h`: for messages.
fn human(secs: u64) -> String {
    casman_proto::duration::format(Duration::from_secs(secs))
}

/// Why the backups are not healthy at `now`, one line per problem; empty when
/// they are. A database is a problem while a backup of it failed and waits
/// for a retry, or when its oldest unsaved write is older than
/// `health.backup_stale_after`. With backups off (backend `none`) nothing is
/// expected of them.
pub fn problems(s: &Snapshot, now: jiff::Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    if !s.backups_enabled {
        return out;
    }
    for d in &s.databases {
        if d.failed_attempts > 0 {
            let since = d.failing_since.map_or_else(String::new, |t| format!(" for {}", human(age(t, now))));
            let error = d.last_error.as_deref().map_or_else(String::new, |e| format!(": {e}"));
            out.push(format!(
                "{}: backups failing{since} ({} failed attempt(s), retrying){error}",
                d.name, d.failed_attempts
            ));
        }
        if let Some(t) = d.oldest_unsaved_write_at {
            let a = age(t, now);
            if d.unsaved_writes > 0 && a > s.stale_after.as_secs() {
                out.push(format!(
                    "{}: {} write(s) not backed up, the oldest {} old (health.backup_stale_after {})",
                    d.name,
                    d.unsaved_writes,
                    human(a),
                    human(s.stale_after.as_secs())
                ));
            }
        }
    }
    out
}

/// A label value escaped for the text format (`\`, `"`, newline).
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A float as the text format writes it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// Builds one metric family at a time: HELP and TYPE lines, then samples.
struct Families(String);

impl Families {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
            let _ = write!(self.0, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.0, " {}", value(v));
    }

    /// The samples of histogram `name` with `labels`: cumulative buckets
    /// by `le`, `+Inf`, sum and count (its HELP and TYPE are written once
    /// by the caller).
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &crate::histogram::Figures) {
        let bucket = format!("{name}_bucket");
        for (bound, n) in &h.buckets {
            let le = value(*bound);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *n as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    /// A gauge with one sample per database.
    fn per_db(&mut self, s: &Snapshot, name: &str, help: &str, f: impl Fn(&DatabaseFigures) -> Option<f64>) {
        let samples: Vec<(&str, f64)> = s.databases.iter().filter_map(|d| Some((d.name, f(d)?))).collect();
        if samples.is_empty() {
            return;
        }
        self.family(name, "gauge", help);
        for (db, v) in samples {
            self.sample(name, &[("database", db)], v);
        }
    }
}

/// The Prometheus text format of `s` at `now`.
pub fn render(s: &Snapshot, now: jiff::Timestamp) -> String {
    let mut m = Families(String::new());
    m.family("casman_up", "gauge", "1 while casmand answers.");
    m.sample("casman_up", &[], 1.0);
    m.family("casman_build_info", "gauge", "casmand's version and site, as labels; always 1.");
    m.sample("casman_build_info", &[("version", s.version), ("site", &s.site)], 1.0);
    if let Some(t) = s.started_at {
        m.family("casman_start_time_seconds", "gauge", "When casmand started, Unix time.");
        m.sample("casman_start_time_seconds", &[], t.as_second() as f64);
    }
    m.family("casman_backups_enabled", "gauge", "1 when backups run (a backend other than none).");
    m.sample("casman_backups_enabled", &[], f64::from(u8::from(s.backups_enabled)));
    m.per_db(
        s,
        "casman_backup_last_success_timestamp_seconds",
        "When the last successful backup of the database was stored, Unix time (absent: never).",
        |d| d.last_backup_at.map(|t| t.as_second() as f64),
    );
    m.per_db(
        s,
        "casman_backup_last_success_age_seconds",
        "Seconds since the last successful backup of the database (absent: never).",
        |d| d.last_backup_at.map(|t| age(t, now) as f64),
    );
    m.per_db(s, "casman_unsaved_writes", "Writes to the database not yet in a stored backup.", |d| {
        Some(d.unsaved_writes as f64)
    });
    m.per_db(
        s,
        "casman_oldest_unsaved_write_age_seconds",
        "Age of the oldest write not yet in a stored backup, seconds (0: none).",
        |d| Some(d.oldest_unsaved_write_at.map_or(0.0, |t| age(t, now) as f64)),
    );
    m.per_db(
        s,
        "casman_backup_failed_attempts",
        "Failed attempts of a backup waiting to be retried (0: none pending).",
        |d| Some(d.failed_attempts as f64),
    );
    m.per_db(
        s,
        "casman_backup_pending_retry",
        "1 while a failed backup of the database waits to be retried.",
        |d| Some(f64::from(u8::from(d.failed_attempts > 0))),
    );
    m.per_db(s, "casman_spooled_versions", "Versions waiting in the offline spool for the store.", |d| {
        Some(d.spooled as f64)
    });
    m.per_db(
        s,
        "casman_verify_last_timestamp_seconds",
        "When a stored version of the database was last downloaded and checked, Unix time (absent: never).",
        |d| d.last_verified_at.map(|t| t.as_second() as f64),
    );
    m.per_db(
        s,
        "casman_verify_last_age_seconds",
        "Seconds since a stored version of the database was last checked (absent: never).",
        |d| d.last_verified_at.map(|t| age(t, now) as f64),
    );
    m.per_db(
        s,
        "casman_verify_failed_versions",
        "Stored versions of the database whose last check failed.",
        |d| Some(d.failed_verifications as f64),
    );
    m.per_db(
        s,
        "casman_exchange_conflicts",
        "Rules broken by changes made at different sites, standing (casmanctl database check).",
        |d| Some(d.conflicts as f64),
    );
    m.per_db(s, "casman_database_size_bytes", "Size of the live database file, bytes.", |d| {
        Some(d.size_bytes as f64)
    });
    m.family(
        "casman_quota_used_ratio",
        "gauge",
        "The fleet's use this month as a fraction of the free-tier limit (1 = all of it).",
    );
    for (resource, v) in
        [("class_a", s.quota.class_a), ("class_b", s.quota.class_b), ("storage", s.quota.storage)]
    {
        m.sample("casman_quota_used_ratio", &[("resource", resource)], v);
    }
    m.family("casman_quota_enforced", "gauge", "1 when the quota limits are enforced (r2, s3).");
    m.sample("casman_quota_enforced", &[], f64::from(u8::from(s.quota.enforced)));
    m.family(
        "casman_replication_window_seconds",
        "gauge",
        "The replication window in effect, seconds (0: continuous protection off).",
    );
    m.sample("casman_replication_window_seconds", &[], s.quota.replication_window.as_secs_f64());
    let problems = problems(s, now);
    m.family(
        "casman_health_backup_serving",
        "gauge",
        "1 while casman.v1.Backups is SERVING in grpc.health.v1 (no failing or stale backups).",
    );
    m.sample("casman_health_backup_serving", &[], f64::from(u8::from(problems.is_empty())));
    m.family("casman_health_problems", "gauge", "Problems casmanctl status --check reports.");
    m.sample("casman_health_problems", &[], problems.len() as f64);
    m.family("casman_health_backup_stale_after_seconds", "gauge", "health.backup_stale_after, seconds.");
    m.sample("casman_health_backup_stale_after_seconds", &[], s.stale_after.as_secs_f64());
    if !s.rpc.requests.is_empty() {
        m.family(
            "casman_rpc_requests_total",
            "counter",
            "gRPC requests answered since casmand started, by method and status code.",
        );
        for (method, code, n) in &s.rpc.requests {
            m.sample("casman_rpc_requests_total", &[("method", method), ("code", code)], *n as f64);
        }
        m.family(
            "casman_rpc_duration_seconds",
            "histogram",
            "Time from a gRPC request to the end of its response, seconds, by method.",
        );
        for (method, h) in &s.rpc.durations {
            m.histogram("casman_rpc_duration_seconds", &[("method", method)], h);
        }
    }
    m.family(
        "casman_group_commit_batch_size",
        "histogram",
        "Scan requests committed together in one assembly transaction (server.write_batch at most).",
    );
    m.histogram("casman_group_commit_batch_size", &[], &s.group_commit);
    m.0
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The status fields of `casman.v1.Daemon/GetStatus` for `s` at `now`.
pub fn status_fields(
    s: &Snapshot,
    now: jiff::Timestamp,
) -> (Vec<casman_proto::v1::DatabaseBackupState>, casman_proto::v1::QuotaUse, casman_proto::v1::BackupHealth)
{
    let time = |t: Option<jiff::Timestamp>| t.map_or_else(String::new, crate::timestamp::format);
    let backups = s
        .databases
        .iter()
        .map(|d| casman_proto::v1::DatabaseBackupState {
            name: d.name.into(),
            last_backup_at: time(d.last_backup_at),
            last_backup_age_seconds: d.last_backup_at.map_or(0, |t| age(t, now)),
            unsaved_writes: d.unsaved_writes,
            oldest_unsaved_write_at: time(d.oldest_unsaved_write_at),
            oldest_unsaved_write_age_seconds: d.oldest_unsaved_write_at.map_or(0, |t| age(t, now)),
            failed_attempts: d.failed_attempts,
            failing_since: time(d.failing_since),
            last_error: d.last_error.clone().unwrap_or_default(),
            spooled_versions: d.spooled,
            size_bytes: d.size_bytes,
            last_verified_at: time(d.last_verified_at),
            last_verified_age_seconds: d.last_verified_at.map_or(0, |t| age(t, now)),
            failed_verifications: d.failed_verifications,
        })
        .collect();
    let quota = casman_proto::v1::QuotaUse {
        enforced: s.quota.enforced,
        class_a_fraction: s.quota.class_a,
        class_b_fraction: s.quota.class_b,
        storage_fraction: s.quota.storage,
        replication_window_seconds: s.quota.replication_window.as_secs(),
    };
    let problems = problems(s, now);
    let health = casman_proto::v1::BackupHealth {
        serving: problems.is_empty(),
        problems,
        backup_stale_after_seconds: s.stale_after.as_secs(),
    };
    (backups, quota, health)
}

/// Checks `text` against the Prometheus text format strictly: every sample's
/// family has HELP and TYPE lines before it, names and labels are well
/// formed, values parse. Returns the samples as (name with labels, value).
/// Used by the unit tests here and by the end-to-end tests.
pub fn parse_strict(text: &str) -> std::result::Result<Vec<(String, f64)>, String> {
    fn name_ok(n: &str) -> bool {
        let mut c = n.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|f| f.is_ascii_alphanumeric() || f == '_' || f == ':')
    }
    let mut help = std::collections::HashSet::new();
    let mut kind = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !name_ok(name) || !help.insert(name.to_owned()) {
                return Err(at("bad or repeated HELP"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, k) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let known = ["counter", "gauge", "histogram", "summary", "untyped"].contains(&k);
            if !name_ok(name) || !known || kind.insert(name.to_owned(), k.to_owned()).is_some() {
                return Err(at("bad or repeated TYPE"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, v) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let v: f64 = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| at("value is not a float"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, Some(rest.strip_suffix('}').ok_or_else(|| at("unclosed labels"))?)),
            None => (series, None),
        };
        if !name_ok(name) {
            return Err(at("bad metric name"));
        }
        let family = ["_total", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| kind.contains_key(*f)))
            .unwrap_or(name);
        if !help.contains(family) || !kind.contains_key(family) {
            return Err(at("sample before its HELP and TYPE lines"));
        }
        if let Some(mut l) = labels {
            while !l.is_empty() {
                let (k, rest) = l.split_once("=\"").ok_or_else(|| at("bad label"))?;
                if !name_ok(k) || k.contains(':') {
                    return Err(at("bad label name"));
                }
                let mut end = None;
                let mut escaped = false;
                for (j, c) in rest.char_indices() {
                    match (escaped, c) {
                        (true, '\\' | '"' | 'n') => escaped = false,
                        (true, _) => return Err(at("bad escape in a label value")),
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(j);
                            break;
                        }
                        (false, _) => {}
                    }
                }
                let end = end.ok_or_else(|| at("unterminated label value"))?;
                l = rest.get(end + 1..).unwrap_or("");
                l = l.strip_prefix(',').unwrap_or(l);
            }
        }
        samples.push((series.to_owned(), v));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            version: "0.1.0",
            site: "lab \"one\"\\".into(),
            started_at: Some(t("2026-03-01T00:00:00Z")),
            backups_enabled: true,
            stale_after: Duration::from_secs(6 * 3600),
            databases: vec![
                DatabaseFigures {
                    name: "parts.db",
                    size_bytes: 4096,
                    last_backup_at: Some(t("2026-03-01T10:00:00Z")),
                    ..DatabaseFigures::default()
                },
                DatabaseFigures {
                    name: "assembled_casm.db",
                    unsaved_writes: 3,
                    oldest_unsaved_write_at: Some(t("2026-03-01T11:00:00Z")),
                    ..DatabaseFigures::default()
                },
            ],
            quota: QuotaFigures { class_a: 0.25, ..QuotaFigures::default() },
            rpc: {
                let r = crate::rpc_metrics::RpcMetrics::default();
                r.record("casman.v1.Parts/ListParts", 0, 0.003);
                r.record("casman.v1.Parts/AddPart", 6, 0.02);
                r.figures()
            },
            group_commit: {
                let h = crate::histogram::Histogram::new(crate::histogram::BATCH);
                h.observe(3.0);
                h.figures()
            },
        }
    }

    #[test]
    fn the_text_format_is_well_formed_and_holds_the_figures() {
        let now = t("2026-03-01T12:00:00Z");
        let text = render(&snapshot(), now);
        let samples = parse_strict(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let get = |k: &str| samples.iter().find(|(s, _)| s == k).map(|(_, v)| *v);
        assert_eq!(get("casman_up"), Some(1.0));
        assert_eq!(get("casman_unsaved_writes{database=\"assembled_casm.db\"}"), Some(3.0));
        assert_eq!(
            get("casman_oldest_unsaved_write_age_seconds{database=\"assembled_casm.db\"}"),
            Some(3600.0)
        );
        assert_eq!(get("casman_oldest_unsaved_write_age_seconds{database=\"parts.db\"}"), Some(0.0));
        assert_eq!(get("casman_backup_last_success_age_seconds{database=\"parts.db\"}"), Some(7200.0));
        // Never backed up: no sample rather than a made-up time.
        assert_eq!(get("casman_backup_last_success_timestamp_seconds{database=\"assembled_casm.db\"}"), None);
        assert_eq!(get("casman_quota_used_ratio{resource=\"class_a\"}"), Some(0.25));
        assert_eq!(get("casman_health_backup_serving"), Some(1.0));
        assert_eq!(
            get("casman_rpc_requests_total{method=\"casman.v1.Parts/AddPart\",code=\"ALREADY_EXISTS\"}"),
            Some(1.0)
        );
        assert_eq!(
            get("casman_rpc_duration_seconds_bucket{method=\"casman.v1.Parts/ListParts\",le=\"0.005\"}"),
            Some(1.0)
        );
        assert_eq!(
            get("casman_rpc_duration_seconds_bucket{method=\"casman.v1.Parts/ListParts\",le=\"0.0025\"}"),
            Some(0.0)
        );
        assert_eq!(get("casman_rpc_duration_seconds_count{method=\"casman.v1.Parts/ListParts\"}"), Some(1.0));
        assert_eq!(get("casman_group_commit_batch_size_bucket{le=\"2\"}"), Some(0.0));
        assert_eq!(get("casman_group_commit_batch_size_bucket{le=\"4\"}"), Some(1.0));
        assert_eq!(get("casman_group_commit_batch_size_bucket{le=\"+Inf\"}"), Some(1.0));
        assert_eq!(get("casman_group_commit_batch_size_sum"), Some(3.0));
        assert!(text.contains("site=\"lab \\\"one\\\"\\\\\""), "{text}");
    }

    #[test]
    fn the_strict_parser_refuses_what_prometheus_would() {
        assert!(parse_strict("x 1\n").is_err(), "no HELP/TYPE");
        assert!(parse_strict("# HELP x h\n# TYPE x gauge\nx one\n").is_err());
        assert!(parse_strict("# HELP 1x h\n# TYPE 1x gauge\n1x 1\n").is_err());
        assert!(parse_strict("# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n").is_err());
        assert!(parse_strict("# HELP x h\n# TYPE x counter\nx_total 1\n").is_ok());
    }

    #[test]
    fn stale_and_failing_backups_are_problems_until_they_clear() {
        let mut s = snapshot();
        assert!(problems(&s, t("2026-03-01T12:00:00Z")).is_empty());
        // The oldest unsaved write passes backup_stale_after.
        let late = problems(&s, t("2026-03-01T17:00:01Z"));
        assert_eq!(late.len(), 1, "{late:?}");
        assert!(late[0].starts_with("assembled_casm.db: 3 write(s) not backed up"), "{late:?}");
        // A failing backup, whatever the age.
        s.databases[0].failed_attempts = 2;
        s.databases[0].failing_since = Some(t("2026-03-01T11:30:00Z"));
        s.databases[0].last_error = Some("the store is unreachable".into());
        let failing = problems(&s, t("2026-03-01T12:00:00Z"));
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert!(failing[0].contains("parts.db: backups failing for 30m (2 failed attempt(s)"), "{failing:?}");
        assert_eq!(
            parse_strict(&render(&s, t("2026-03-01T12:00:00Z")))
                .ok()
                .and_then(|v| v.into_iter().find(|(k, _)| k == "casman_health_backup_serving"))
                .map(|(_, v)| v),
            Some(0.0)
        );
        // Backups off: nothing is expected of them.
        s.backups_enabled = false;
        assert!(problems(&s, t("2026-03-02T00:00:00Z")).is_empty());
    }
}

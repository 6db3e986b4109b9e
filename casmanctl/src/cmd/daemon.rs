//! `casmanctl status` and `casmanctl config`.

use casman_proto::v1::GetStatusResponse;
use serde_json::json;

use crate::{client::Conn, error::CtlError, output};

/// `casmanctl status [--check]`
pub async fn status(conn: &Conn, as_json: bool, check: bool) -> Result<(), CtlError> {
    let s = conn.status().await?;
    let problems = check_lines(&s);
    if as_json {
        let mut v = output::message(&s);
        v["client_protocol"] = json!(casman_proto::PROTOCOL);
        output::json(&v);
    } else if check {
        crate::output::put!("{}", check_text(&problems));
    } else {
        crate::output::put!("{}", status_text(&s));
    }
    if check && !problems.is_empty() {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::process::exit(1);
    }
    Ok(())
}

/// The problems `casmanctl status --check` reports. A daemon too old to
/// report health has none to report.
pub fn check_lines(s: &GetStatusResponse) -> Vec<String> {
    s.health.as_ref().map(|h| h.problems.clone()).unwrap_or_default()
}

/// What `casmanctl status --check` prints: one line per problem, or "ok".
pub fn check_text(problems: &[String]) -> String {
    if problems.is_empty() {
        return "ok: backups are healthy".into();
    }
    problems.iter().map(|p| format!("PROBLEM: {p}")).collect::<Vec<_>>().join("\n")
}

/// What `casmanctl status` prints for people.
pub fn status_text(s: &GetStatusResponse) -> String {
    let backend = s.backend.clone().unwrap_or_default();
    let mut out = format!(
        "casmand {} (protocol {}), pid {}, up {}\n",
        s.version,
        s.protocol,
        s.pid,
        output::duration_secs(s.uptime_seconds)
    );
    out += &format!("  site:      {}\n", s.site_id);
    out += &format!("  socket:    {}\n", s.socket);
    out += &format!("  data dir:  {}\n", s.data_dir);
    if backend.enabled {
        out += &format!("  backend:   {} ({})\n", backend.kind, backend.location);
    } else {
        out += "  backend:   none (backups disabled)\n";
    }
    if !s.conflicts.is_empty() {
        out += &format!(
            "  conflicts: {} standing between sites (an ordinary scan or change resolves each)\n",
            s.conflicts.len()
        );
        for c in &s.conflicts {
            out += &format!("    CONFLICT ({}): {}\n", c.kind, c.detail);
        }
    }
    let mut t = output::table(["database", "size", "schema", "path"]);
    for d in &s.databases {
        t.add_row([
            d.name.clone(),
            output::bytes(d.size_bytes),
            d.schema_version.to_string(),
            d.path.clone(),
        ]);
    }
    out += &t.to_string();
    out += "\n";
    if !s.backups.is_empty() {
        let mut t =
            output::table(["backed up", "last backup", "unsaved writes", "oldest unsaved", "failing"]);
        for b in &s.backups {
            let ago = |at: &str, secs: u64| {
                if at.is_empty() { "-".to_owned() } else { format!("{} ago", output::duration_secs(secs)) }
            };
            t.add_row([
                b.name.clone(),
                if b.last_backup_at.is_empty() {
                    "never".to_owned()
                } else {
                    ago(&b.last_backup_at, b.last_backup_age_seconds)
                },
                b.unsaved_writes.to_string(),
                ago(&b.oldest_unsaved_write_at, b.oldest_unsaved_write_age_seconds),
                if b.failed_attempts > 0 {
                    format!("{} attempt(s)", b.failed_attempts)
                } else {
                    "-".to_owned()
                },
            ]);
        }
        out += &t.to_string();
        out += "\n";
    }
    if let Some(h) = &s.health {
        out += &check_text(&h.problems);
        out += "\n";
    }
    out
}

/// `casmanctl config`
pub async fn config(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let c = conn.daemon().get_config(casman_proto::v1::GetConfigRequest {}).await?.into_inner();
    if as_json {
        let value: serde_json::Value =
            serde_json::from_str(&c.json).map_err(|e| CtlError::Io(format!("daemon sent bad JSON: {e}")))?;
        output::json(&json!({ "config": value, "sources": c.sources }));
    } else {
        crate::output::say!("# effective configuration of casmand (secrets redacted)");
        crate::output::say!("# layers, lowest first: {}", c.sources.join(" < "));
        crate::output::put!("{}", c.toml);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_prints_one_line_per_problem_or_ok() {
        assert_eq!(check_text(&[]), "ok: backups are healthy");
        let lines = check_text(&["parts.db: a".into(), "assembled_casm.db: b".into()]);
        assert_eq!(lines, "PROBLEM: parts.db: a\nPROBLEM: assembled_casm.db: b");
        let s = GetStatusResponse {
            health: Some(casman_proto::v1::BackupHealth {
                serving: false,
                problems: vec!["x".into()],
                backup_stale_after_seconds: 60,
            }),
            ..Default::default()
        };
        assert_eq!(check_lines(&s), vec!["x".to_owned()]);
        assert!(check_lines(&GetStatusResponse::default()).is_empty());
    }
}

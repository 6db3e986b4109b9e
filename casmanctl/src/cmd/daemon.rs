//! `casmanctl status` and `casmanctl config`.

use casman_proto::v1::GetStatusResponse;
use serde_json::json;

use crate::{client::Conn, error::CtlError, output};

/// `casmanctl status`
pub async fn status(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let s = conn.status().await?;
    if as_json {
        let mut v = output::message(&s);
        v["client_protocol"] = json!(casman_proto::PROTOCOL);
        output::json(&v);
        return Ok(());
    }
    crate::output::put!("{}", status_text(&s));
    Ok(())
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
    let mut t = output::table(["database", "size", "schema", "path"]);
    for d in &s.databases {
        t.add_row([
            d.name.clone(),
            output::bytes(d.size_bytes),
            d.schema_version.to_string(),
            d.path.clone(),
        ]);
    }
    out + &t.to_string() + "\n"
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

//! `casmanctl status` and `casmanctl config`.

use serde_json::json;

use crate::{client::Conn, error::CtlError, output};

/// `casmanctl status`
pub async fn status(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let s = conn.status().await?;
    let backend = s.backend.clone().unwrap_or_default();
    if as_json {
        output::json(&json!({
            "version": s.version,
            "protocol": s.protocol,
            "client_protocol": casman_proto::PROTOCOL,
            "uptime_seconds": s.uptime_seconds,
            "pid": s.pid,
            "started_at": s.started_at,
            "site_id": s.site_id,
            "data_dir": s.data_dir,
            "socket": s.socket,
            "backend": { "kind": backend.kind, "location": backend.location, "enabled": backend.enabled },
            "databases": s.databases.iter().map(|d| json!({
                "name": d.name, "path": d.path, "size_bytes": d.size_bytes, "schema_version": d.schema_version,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "casmand {} (protocol {}), pid {}, up {}",
        s.version,
        s.protocol,
        s.pid,
        output::duration_secs(s.uptime_seconds)
    );
    println!("  site:      {}", s.site_id);
    println!("  socket:    {}", s.socket);
    println!("  data dir:  {}", s.data_dir);
    if backend.enabled {
        println!("  backend:   {} ({})", backend.kind, backend.location);
    } else {
        println!("  backend:   none (backups disabled)");
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
    println!("{t}");
    Ok(())
}

/// `casmanctl config`
pub async fn config(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let c = conn.daemon().get_config(casman_proto::v1::GetConfigRequest {}).await?.into_inner();
    if as_json {
        let value: serde_json::Value =
            serde_json::from_str(&c.json).map_err(|e| CtlError::Io(format!("daemon sent bad JSON: {e}")))?;
        output::json(&json!({ "config": value, "sources": c.sources }));
    } else {
        println!("# effective configuration of casmand (secrets redacted)");
        println!("# layers, lowest first: {}", c.sources.join(" < "));
        print!("{}", c.toml);
    }
    Ok(())
}

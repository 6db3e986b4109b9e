//! `casmanctl sync sync` and `casmanctl sync merge`: sync between field sites.

use casman_proto::v1::{MergeRequest, SyncRequest, merge_event, sync_event};
use serde_json::{Value, json};

use super::{progress::Bar, sync::version_json};
use crate::{client::Conn, error::CtlError, output};

fn selected(parts: bool, assembled: bool) -> Vec<String> {
    match (parts, assembled) {
        (true, false) => vec!["parts.db".into()],
        (false, true) => vec!["assembled_casm.db".into()],
        _ => vec![],
    }
}

/// `casmanctl sync sync`
pub async fn sync(
    conn: &Conn,
    parts: bool,
    assembled: bool,
    force: bool,
    as_json: bool,
) -> Result<(), CtlError> {
    let req = SyncRequest { databases: selected(parts, assembled), force };
    let mut stream = conn.sync().sync_databases(conn.request(req)).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut results = Vec::new();
    let mut diverged = false;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(sync_event::Event::Progress(p)) => {
                bar.update(&format!("{} {}", p.database, p.phase), p.done_bytes, p.total_bytes)
            }
            Some(sync_event::Event::Result(r)) => {
                bar.clear();
                diverged |= r.state == "diverged";
                if !as_json {
                    println!("{}", r.message);
                    for t in &r.rows {
                        println!(
                            "  {:<18} here {:>7}   {} {:>7}",
                            t.table,
                            t.local,
                            r.remote.as_ref().map_or("", |v| v.site.as_str()),
                            t.remote
                        );
                    }
                }
                results.push(json!({
                    "database": r.database, "state": r.state, "message": r.message,
                    "version": r.version.as_ref().map(version_json),
                    "local": r.local.as_ref().map(version_json),
                    "remote": r.remote.as_ref().map(version_json),
                    "remote_versions": r.remote_versions,
                    "rows": r.rows.iter().map(|t| json!({"table": t.table, "local": t.local, "remote": t.remote})).collect::<Vec<_>>(),
                    "unsaved_writes": r.unsaved_writes,
                }));
            }
            None => {}
        }
    }
    bar.clear();
    if as_json {
        output::json(&json!({ "results": results }));
    }
    if diverged {
        return Err(CtlError::Io("a database has diverged from another site; see above".into()));
    }
    Ok(())
}

/// `casmanctl sync merge`
pub async fn merge(
    conn: &Conn,
    parts: bool,
    assembled: bool,
    prefer: Option<String>,
    as_json: bool,
) -> Result<(), CtlError> {
    let req = MergeRequest { databases: selected(parts, assembled), prefer: prefer.unwrap_or_default() };
    let mut stream = conn.sync().merge(conn.request(req)).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut results: Vec<Value> = Vec::new();
    let mut blocked = false;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(merge_event::Event::Progress(p)) => {
                bar.update(&format!("{} {}", p.database, p.phase), p.done_bytes, p.total_bytes)
            }
            Some(merge_event::Event::Result(r)) => {
                bar.clear();
                blocked |= !r.applied;
                if !as_json {
                    let from =
                        r.remote.as_ref().map(|v| format!("{} (site {})", v.key, v.site)).unwrap_or_default();
                    if r.applied {
                        let added: Vec<String> = r
                            .added
                            .iter()
                            .filter(|t| t.local > 0)
                            .map(|t| format!("{} {}", t.local, t.table))
                            .collect();
                        println!(
                            "{}: merged {from}: added {}",
                            r.database,
                            if added.is_empty() { "nothing".into() } else { added.join(", ") }
                        );
                        if let Some(v) = &r.version {
                            println!("  stored as {} (both parents recorded)", v.key);
                        }
                    } else {
                        println!(
                            "{}: {} conflict(s) with {from}; nothing was merged:",
                            r.database,
                            r.conflicts.len()
                        );
                    }
                    for c in &r.conflicts {
                        println!("  {} {}: here {:?}, there {:?}", c.kind, c.key, c.local, c.remote);
                    }
                    if !r.applied {
                        println!("  resolve with --prefer local or --prefer remote");
                    }
                }
                results.push(json!({
                    "database": r.database, "applied": r.applied,
                    "conflicts": r.conflicts.iter().map(|c| json!({"kind": c.kind, "key": c.key, "local": c.local, "remote": c.remote})).collect::<Vec<_>>(),
                    "added": r.added.iter().map(|t| json!({"table": t.table, "rows": t.local})).collect::<Vec<_>>(),
                    "version": r.version.as_ref().map(version_json),
                    "remote": r.remote.as_ref().map(version_json),
                }));
            }
            None => {}
        }
    }
    bar.clear();
    if as_json {
        output::json(&json!({ "results": results }));
    }
    if blocked {
        return Err(CtlError::Io("conflicts stopped the merge; nothing was changed".into()));
    }
    Ok(())
}

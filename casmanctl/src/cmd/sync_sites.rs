//! `casmanctl sync sync` and `casmanctl sync merge`: sync between field sites.

use casman_proto::v1::{MergeRequest, SyncRequest, merge_event, sync_event};
use serde_json::{Value, json};

use super::{progress::Bar, sync::show_progress};
use crate::{
    cli::{Databases, Prefer},
    client::Conn,
    error::CtlError,
    output,
};

/// `casmanctl sync sync`
pub async fn sync(conn: &Conn, dbs: Databases, force: bool, as_json: bool) -> Result<(), CtlError> {
    let req = SyncRequest { databases: dbs.request(), force };
    let mut stream = conn.sync().sync_databases(conn.request(req)).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut results = Vec::new();
    let mut diverged = false;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(sync_event::Event::Progress(p)) => show_progress(&mut bar, &p),
            Some(sync_event::Event::Result(r)) => {
                bar.clear();
                diverged |= r.state == "diverged";
                if !as_json {
                    crate::output::say!("{}", r.message);
                    for t in &r.rows {
                        crate::output::say!(
                            "  {:<18} here {:>7}   {} {:>7}",
                            t.table,
                            t.local,
                            r.remote.as_ref().map_or("", |v| v.site.as_str()),
                            t.remote
                        );
                    }
                    for c in &r.conflicts {
                        crate::output::say!("  conflict ({}): {}", c.kind, c.detail);
                    }
                }
                results.push(output::message(&r));
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
    dbs: Databases,
    prefer: Option<Prefer>,
    as_json: bool,
) -> Result<(), CtlError> {
    let prefer = prefer.map(Prefer::as_str).unwrap_or_default().to_owned();
    let req = MergeRequest { databases: dbs.request(), prefer };
    let mut stream = conn.sync().merge(conn.request(req)).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut results: Vec<Value> = Vec::new();
    let mut blocked = false;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(merge_event::Event::Progress(p)) => show_progress(&mut bar, &p),
            Some(merge_event::Event::Result(r)) => {
                bar.clear();
                blocked |= !r.applied && !r.up_to_date;
                if !as_json {
                    let from =
                        r.remote.as_ref().map(|v| format!("{} (site {})", v.key, v.site)).unwrap_or_default();
                    if r.up_to_date {
                        crate::output::say!("{}: already contains {from}; nothing to merge", r.database);
                    } else if r.applied {
                        let added: Vec<String> = r
                            .added
                            .iter()
                            .filter(|t| t.local > 0)
                            .map(|t| format!("{} {}", t.local, t.table))
                            .collect();
                        crate::output::say!(
                            "{}: merged {from}: added {}",
                            r.database,
                            if added.is_empty() { "nothing".into() } else { added.join(", ") }
                        );
                        if let Some(v) = &r.version {
                            crate::output::say!("  stored as {} (both parents recorded)", v.key);
                        }
                    } else {
                        crate::output::say!(
                            "{}: {} conflict(s) with {from}; nothing was merged:",
                            r.database,
                            r.conflicts.len()
                        );
                    }
                    for c in &r.conflicts {
                        crate::output::say!(
                            "  {} {}: here {:?}, there {:?}",
                            c.kind,
                            c.key,
                            c.local,
                            c.remote
                        );
                    }
                    if !r.applied && !r.up_to_date {
                        crate::output::say!("  resolve with --prefer local or --prefer remote");
                    }
                }
                results.push(output::message(&r));
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

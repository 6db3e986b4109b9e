//! `casmanctl connections`, `casmanctl chains` and `casmanctl database check`:
//! the current state of the assembly as data (streamed by casmand from its
//! kept state), and the comparison of that state with the log.

use casman_proto::v1::{CheckCurrentStateRequest, ListChainsRequest, ListConnectionsRequest};
use serde_json::json;

use crate::{client::Conn, error::CtlError, output};

/// `casmanctl connections [--part P] [--type T]`: every current connection.
pub async fn connections(
    conn: &Conn,
    part: Option<String>,
    part_type: Option<String>,
    as_json: bool,
) -> Result<(), CtlError> {
    let req =
        ListConnectionsRequest { part: part.unwrap_or_default(), part_type: part_type.unwrap_or_default() };
    let mut stream = conn.assembly().list_connections(conn.request(req)).await?.into_inner();
    let mut all = Vec::new();
    while let Some(c) = stream.message().await? {
        all.push(c);
    }
    if as_json {
        output::json(&json!({ "connections": output::messages(&all) }));
        return Ok(());
    }
    if all.is_empty() {
        crate::output::say!("No current connections.");
        return Ok(());
    }
    let mut t = output::table(["source", "type", "pol", "target", "type", "pol", "since", "event"]);
    for c in &all {
        t.add_row([
            c.source.clone(),
            c.source_type.clone(),
            c.source_polarization.clone(),
            c.target.clone(),
            c.target_type.clone(),
            c.target_polarization.clone(),
            c.since.clone(),
            c.event_id.to_string(),
        ]);
    }
    crate::output::say!("{t}");
    crate::output::say!("{} current connections", all.len());
    Ok(())
}

/// `casmanctl chains [--complete]`: every chain as data.
pub async fn chains(conn: &Conn, complete_only: bool, as_json: bool) -> Result<(), CtlError> {
    let req = ListChainsRequest { complete_only };
    let mut stream = conn.assembly().list_chains(conn.request(req)).await?.into_inner();
    let mut all = Vec::new();
    while let Some(c) = stream.message().await? {
        all.push(c);
    }
    if as_json {
        output::json(&json!({ "chains": output::messages(&all) }));
        return Ok(());
    }
    if all.is_empty() {
        crate::output::say!("No chains.");
        return Ok(());
    }
    for c in &all {
        let parts: Vec<&str> = c.parts.iter().map(|p| p.part.as_str()).collect();
        let mut line = parts.join(" ---> ");
        if let Some(s) = c.snap.as_ref().filter(|s| s.board_configured) {
            line.push_str(&format!(
                "  [SN {} | F-engine {} | packet index {}]",
                s.serial_number, s.feng_id, s.packet_index
            ));
        }
        if c.cyclic {
            line.push_str("  (loop)");
        }
        crate::output::say!("{line}");
    }
    crate::output::say!("{} chains", all.len());
    Ok(())
}

/// `casmanctl database check`: the kept current state against the log.
/// Exits 1 when they differ.
pub async fn check(conn: &Conn, repair: bool, as_json: bool) -> Result<(), CtlError> {
    let req = CheckCurrentStateRequest { repair };
    let r = conn.assembly().check_current_state(conn.request(req)).await?.into_inner();
    if as_json {
        output::json(&output::message(&r));
    } else {
        crate::output::say!(
            "assembled_casm.db: {} events, {} current connections by the log, {} kept",
            r.events,
            r.by_log,
            r.kept
        );
        for c in &r.missing {
            crate::output::say!(
                "  missing from the kept state: {} -> {} (event {})",
                c.source,
                c.target,
                c.event_id
            );
        }
        for c in &r.extra {
            crate::output::say!(
                "  kept but not in the log: {} -> {} (event {})",
                c.source,
                c.target,
                c.event_id
            );
        }
        if r.misfiled > 0 {
            crate::output::say!(
                "  {} events not filed under their pair (history would miss them)",
                r.misfiled
            );
        }
        if r.clean {
            crate::output::say!("current state matches the log");
        } else if r.repaired {
            crate::output::say!("the kept current state was rebuilt from the log");
        }
        for c in &r.conflicts {
            crate::output::say!("  conflict ({}): {}", c.kind, c.detail);
        }
    }
    if (r.clean || r.repaired) && !r.conflicts.is_empty() {
        Err(CtlError::Rpc(tonic::Status::failed_precondition(format!(
            "{} conflict(s) between scans made at different sites stand (listed above); \
             an ordinary scan resolves each (disconnect the wrong connection)",
            r.conflicts.len()
        ))))
    } else if r.clean || r.repaired {
        Ok(())
    } else {
        Err(CtlError::Rpc(tonic::Status::data_loss(format!(
            "the kept current state differs from the log ({} missing, {} extra); \
             `casmanctl database check --repair` rebuilds it from the log",
            r.missing.len(),
            r.extra.len()
        ))))
    }
}

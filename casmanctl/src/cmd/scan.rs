//! `casmanctl scan ...`, `chain`, `history`, `visualize chains`.

use casman_proto::v1::{
    ConnectRequest, DisconnectRequest, GetChainRequest, GetHistoryRequest, RemovePartRequest,
    RenderChainsRequest, ValidatePartRequest,
};
use clap::Subcommand;
use serde_json::json;

use super::{
    prompt,
    scan_interactive::{Mode, interactive},
};
use crate::{client::Conn, error::CtlError, output};

/// Scan commands.
#[derive(Debug, Subcommand)]
pub enum ScanCmd {
    /// Record that SRC (upstream) is connected to DST (downstream).
    Connect {
        /// Upstream part, e.g. ANT00001P1.
        src: String,
        /// Downstream part, e.g. LNA00001P1 (SNAP ports: SNAP1A05).
        dst: String,
    },
    /// Record that A and B (either order) are no longer connected.
    Disconnect {
        /// One end.
        a: String,
        /// The other end.
        b: String,
    },
    /// Interactive scanning: each line on stdin is a scan; pairs of scans
    /// (source, then target) are connected; after a BACBOARD the SNAP chassis,
    /// slot and port are asked for. `quit` ends, at any prompt.
    Connection {
        /// Chain mode: each target becomes the next source.
        #[arg(long)]
        chain: bool,
    },
    /// Interactive scanning: scan a part, then choose one of its connections
    /// by number (or scan its other end) to disconnect. `quit` ends.
    Disconnection,
    /// Disconnect every active connection of PART.
    Remove {
        /// The part.
        part: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `visualize` subcommands.
#[derive(Debug, Subcommand)]
pub enum VisualizeCmd {
    /// ASCII view of every chain, as CAsMan printed it.
    Chains,
}

/// Runs a scan command.
pub async fn run(conn: &Conn, cmd: ScanCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        ScanCmd::Connect { src, dst } => {
            let r =
                conn.assembly().connect(conn.request(ConnectRequest { source: src, target: dst })).await?;
            let c = r.into_inner().connection.unwrap_or_default();
            if as_json {
                output::json(&json!({ "connection": output::message(&c) }));
            } else {
                crate::output::say!("connected {} -> {}", c.source, c.target);
            }
            Ok(())
        }
        ScanCmd::Disconnect { a, b } => {
            let r = conn.assembly().disconnect(conn.request(DisconnectRequest { a, b })).await?;
            let c = r.into_inner().connection.unwrap_or_default();
            if as_json {
                output::json(&json!({ "connection": output::message(&c) }));
            } else {
                crate::output::say!("disconnected {} -X-> {}", c.source, c.target);
            }
            Ok(())
        }
        ScanCmd::Remove { part, yes } => remove(conn, part, yes, as_json).await,
        ScanCmd::Connection { chain } => interactive(conn, Mode::Connect { chain }, as_json).await,
        ScanCmd::Disconnection => interactive(conn, Mode::Disconnect, as_json).await,
    }
}

async fn remove(conn: &Conn, part: String, yes: bool, as_json: bool) -> Result<(), CtlError> {
    let v = conn.assembly().validate_part(conn.request(ValidatePartRequest { part: part.clone() })).await;
    let active = match v {
        Ok(v) => v.into_inner().connections,
        Err(s) if s.code() == tonic::Code::NotFound => Vec::new(),
        Err(s) => return Err(s.into()),
    };
    if !yes {
        if !prompt::interactive() {
            return Err(CtlError::Usage(format!(
                "removing {part} needs confirmation: run on a terminal or pass --yes"
            )));
        }
        for c in &active {
            eprintln!("  {} -> {}", c.source, c.target);
        }
        let answer =
            prompt::ask(&format!("Disconnect these {} connection(s) of {part}? [y/N] ", active.len()))?;
        if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(CtlError::Usage("not confirmed; nothing was changed".into()));
        }
    }
    let r = conn
        .assembly()
        .remove_part(conn.request(RemovePartRequest { part: part.clone() }))
        .await?
        .into_inner();
    if as_json {
        output::json(&json!({ "part": part, "disconnected": output::messages(&r.connections) }));
    } else if r.connections.is_empty() {
        crate::output::say!("{part} has no active connections");
    } else {
        for c in &r.connections {
            crate::output::say!("disconnected {} -X-> {}", c.source, c.target);
        }
    }
    Ok(())
}

/// `casmanctl chain PART`
pub async fn chain(conn: &Conn, part: String, at: &crate::cli::AsOf, as_json: bool) -> Result<(), CtlError> {
    let req = GetChainRequest { part, as_of: at.as_of() };
    let c = conn.assembly().get_chain(conn.request(req)).await?.into_inner();
    if as_json {
        output::json(&output::message(&c));
        return Ok(());
    }
    crate::output::say!("{}", c.parts.join(" ---> "));
    say_conflicts(&c.conflicts);
    match &c.snap {
        None => crate::output::say!("(the chain does not reach a SNAP port)"),
        Some(s) if s.board_configured => {
            crate::output::say!(
                "SNAP port {}: chassis {}, slot {}, port {}",
                s.port,
                s.chassis,
                s.slot,
                s.port_number
            );
            crate::output::say!(
                "  board SN {} | F-engine {} | packet index {} | MAC {} | IP {}",
                s.serial_number,
                s.feng_id,
                s.packet_index,
                s.mac_address,
                s.ip_address
            );
        }
        Some(s) => {
            crate::output::say!(
                "SNAP port {}: chassis {}, slot {}, port {} (board not configured)",
                s.port,
                s.chassis,
                s.slot,
                s.port_number
            )
        }
    }
    Ok(())
}

/// `casmanctl history PART`
pub async fn history(conn: &Conn, part: String, as_json: bool) -> Result<(), CtlError> {
    let h = conn
        .assembly()
        .get_history(conn.request(GetHistoryRequest { part: part.clone() }))
        .await?
        .into_inner();
    if as_json {
        output::json(&output::message(&h));
        return Ok(());
    }
    if h.events.is_empty() {
        crate::output::say!("No events for {part}.");
        return Ok(());
    }
    say_conflicts(&h.conflicts);
    let mut t = output::table(["time", "row id", "part", "other part", "status"]);
    for e in &h.events {
        t.add_row([
            e.scan_time.clone(),
            e.id.to_string(),
            e.part_number.clone(),
            e.connected_to.clone(),
            e.connection_status.clone(),
        ]);
    }
    crate::output::say!("{t}");
    Ok(())
}

/// The exchange's conflicts standing on the parts shown, one line each.
fn say_conflicts(conflicts: &[casman_proto::v1::Conflict]) {
    for c in conflicts {
        crate::output::say!("CONFLICT ({}): {}", c.kind, c.detail);
    }
}

/// `casmanctl visualize chains`
pub async fn visualize(conn: &Conn, cmd: VisualizeCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        VisualizeCmd::Chains => {
            let r = conn.assembly().render_chains(conn.request(RenderChainsRequest {})).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
            } else {
                crate::output::say!("{}", r.text);
            }
            Ok(())
        }
    }
}

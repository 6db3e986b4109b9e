//! `casmanctl connections`, `casmanctl chains` and `casmanctl database check`:
//! the current state of the assembly as data (streamed by casmand from its
//! kept state), and the comparison of that state with the log.

use std::{borrow::Cow, io::Write};

use casman_proto::v1::{
    ChainInfo, CheckCurrentStateRequest, CurrentConnection, ListChainsRequest, ListConnectionsRequest,
};
use serde::Serialize;

use crate::{
    cli::AsOf,
    client::Conn,
    error::CtlError,
    listing::{self, Cells, io},
    output,
};

/// `casmanctl connections [--part P] [--type T] [--at TIME]`: every current
/// connection (or every connection at TIME), printed as it arrives (the
/// table's columns sized from the first page).
pub async fn connections(
    conn: &Conn,
    part: Option<String>,
    part_type: Option<String>,
    at: &AsOf,
    as_json: bool,
) -> Result<(), CtlError> {
    let req = ListConnectionsRequest {
        part: part.unwrap_or_default(),
        part_type: part_type.unwrap_or_default(),
        as_of: at.as_of(),
    };
    let mut stream = conn.assembly().list_connections(conn.request(req)).await?.into_inner();
    let mut out = listing::stdout();
    if as_json {
        return listing::json(&mut out, "connections", &mut stream, |a, out, c| {
            a.item(out, &ConnectionJson::of(c))
        })
        .await;
    }
    let (table, n) = listing::table(&mut out, &mut stream, &CONNECTIONS_HEADER, connection_row).await?;
    match table {
        Some(t) => write!(out, "{}\n{n} current connections\n", t.foot()).map_err(io)?,
        None => writeln!(out, "No current connections.").map_err(io)?,
    }
    out.flush().map_err(io)
}

const CONNECTIONS_HEADER: [&str; 8] = ["source", "type", "pol", "target", "type", "pol", "since", "event"];

/// A row for people: stored text with its terminal controls escaped.
fn connection_row(c: &CurrentConnection) -> Cells<'_> {
    let h = output::human;
    vec![
        h(&c.source),
        h(&c.source_type),
        h(&c.source_polarization),
        h(&c.target),
        h(&c.target_type),
        h(&c.target_polarization),
        h(&c.since),
        Cow::Owned(c.event_id.to_string()),
    ]
}

/// A current connection in the proto3 JSON mapping `--json` prints (as
/// [`output::message`] makes it: proto field names in their sorted order,
/// every field), written without the reflection round trip.
#[derive(Serialize)]
struct ConnectionJson<'a> {
    event_id: i64,
    since: &'a str,
    source: &'a str,
    source_polarization: &'a str,
    source_type: &'a str,
    target: &'a str,
    target_polarization: &'a str,
    target_type: &'a str,
}

impl<'a> ConnectionJson<'a> {
    fn of(c: &'a CurrentConnection) -> Self {
        ConnectionJson {
            event_id: c.event_id,
            since: &c.since,
            source: &c.source,
            source_polarization: &c.source_polarization,
            source_type: &c.source_type,
            target: &c.target,
            target_polarization: &c.target_polarization,
            target_type: &c.target_type,
        }
    }
}

/// `casmanctl chains [--complete]`: every chain as data, printed as it
/// arrives.
pub async fn chains(conn: &Conn, complete_only: bool, at: &AsOf, as_json: bool) -> Result<(), CtlError> {
    let req = ListChainsRequest { complete_only, as_of: at.as_of() };
    let mut stream = conn.assembly().list_chains(conn.request(req)).await?.into_inner();
    let mut out = listing::stdout();
    if as_json {
        return listing::json(&mut out, "chains", &mut stream, |a, out, c| a.item(out, &ChainJson::of(c)))
            .await;
    }
    let mut n = 0usize;
    let mut line = String::new();
    while let Some(c) = stream.message().await? {
        n += 1;
        line.clear();
        chain_line(&mut line, &c);
        writeln!(out, "{}", output::human(&line)).map_err(io)?;
    }
    if n == 0 {
        writeln!(out, "No chains.").map_err(io)?;
    } else {
        writeln!(out, "{n} chains").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// A chain on one line: its parts, its SNAP board's details, a loop mark.
fn chain_line(line: &mut String, c: &ChainInfo) {
    use std::fmt::Write as _;
    for (i, p) in c.parts.iter().enumerate() {
        if i > 0 {
            line.push_str(" ---> ");
        }
        line.push_str(&p.part);
    }
    if let Some(s) = c.snap.as_ref().filter(|s| s.board_configured) {
        let _ = write!(
            line,
            "  [SN {} | F-engine {} | packet index {}]",
            s.serial_number, s.feng_id, s.packet_index
        );
    }
    if c.cyclic {
        line.push_str("  (loop)");
    }
}

/// A chain in the proto3 JSON mapping (see [`ConnectionJson`]).
#[derive(Serialize)]
struct ChainJson<'a> {
    cyclic: bool,
    parts: Vec<ChainPartJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snap: Option<SnapJson<'a>>,
}

#[derive(Serialize)]
struct ChainPartJson<'a> {
    part: &'a str,
    part_type: &'a str,
    polarization: &'a str,
}

#[derive(Serialize)]
struct SnapJson<'a> {
    board_configured: bool,
    chassis: u32,
    feng_id: u32,
    ip_address: &'a str,
    mac_address: &'a str,
    packet_index: u32,
    port: &'a str,
    port_number: u32,
    serial_number: &'a str,
    slot: &'a str,
}

impl<'a> ChainJson<'a> {
    fn of(c: &'a ChainInfo) -> Self {
        ChainJson {
            cyclic: c.cyclic,
            parts: c
                .parts
                .iter()
                .map(|p| ChainPartJson {
                    part: &p.part,
                    part_type: &p.part_type,
                    polarization: &p.polarization,
                })
                .collect(),
            snap: c.snap.as_ref().map(|s| SnapJson {
                board_configured: s.board_configured,
                chassis: s.chassis,
                feng_id: s.feng_id,
                ip_address: &s.ip_address,
                mac_address: &s.mac_address,
                packet_index: s.packet_index,
                port: &s.port,
                port_number: s.port_number,
                serial_number: &s.serial_number,
                slot: &s.slot,
            }),
        }
    }
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

#[cfg(test)]
mod tests {
    use casman_proto::v1::{ChainPart, ChainSnapPort};

    use super::*;

    fn same_json(ours: &impl Serialize, mapping: serde_json::Value) {
        let ours = serde_json::to_string_pretty(ours).unwrap_or_default();
        assert_eq!(ours, serde_json::to_string_pretty(&mapping).unwrap_or_default());
    }

    /// The JSON written without reflection is the proto3 mapping
    /// [`output::message`] makes, byte for byte.
    #[test]
    fn the_json_views_are_the_proto_mapping() {
        let c = CurrentConnection {
            source: "ANT00001P1".into(),
            source_type: "ANTENNA".into(),
            target: "LNA\u{1b}\"00001P1\"".into(),
            since: "2025-01-01T00:00:00Z".into(),
            event_id: i64::MAX,
            ..Default::default()
        };
        same_json(&ConnectionJson::of(&c), output::message(&c));
        same_json(
            &ConnectionJson::of(&CurrentConnection::default()),
            output::message(&CurrentConnection::default()),
        );
        let part =
            |p: &str| ChainPart { part: p.into(), part_type: "LNA".into(), polarization: String::new() };
        let mut chain =
            ChainInfo { parts: vec![part("ANT00001P1"), part("SNAP1A05")], snap: None, cyclic: true };
        same_json(&ChainJson::of(&chain), output::message(&chain));
        chain.snap = Some(ChainSnapPort {
            port: "SNAP1A05".into(),
            chassis: 1,
            slot: "A".into(),
            port_number: 5,
            board_configured: true,
            serial_number: "SN01".into(),
            feng_id: 3,
            packet_index: 41,
            mac_address: "02:00:00:00:00:01".into(),
            ip_address: "192.168.1.1".into(),
        });
        same_json(&ChainJson::of(&chain), output::message(&chain));
        chain.snap = Some(ChainSnapPort::default());
        same_json(&ChainJson::of(&chain), output::message(&chain));
        same_json(&ChainJson::of(&ChainInfo::default()), output::message(&ChainInfo::default()));
    }
}

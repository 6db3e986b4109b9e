//! Recording scans: connect, disconnect and remove events appended to the
//! `assembly` log. Every rule is checked inside the write transaction
//! (`BEGIN IMMEDIATE` on the single writer), against the current edges of the
//! parts involved, so two scanners racing for the same part cannot both win.

use sqlx::SqliteConnection;

use super::{Db, assembly::edges_touching, parts};
use crate::{
    error::{Error, Result},
    inventory::{
        Edge, PartNumber, PartType, Polarization, SnapPort, Terminal, check_connection, check_disconnection,
    },
    timestamp,
};

/// A scanned part, resolved: its id as stored, type and polarization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The id as stored (`ANT00001P1`, `SNAP1A05`, or a historic id).
    pub id: String,
    /// Its type.
    pub part_type: PartType,
    /// Its polarization (`None` for SNAP ports).
    pub polarization: Option<Polarization>,
}

impl Resolved {
    fn terminal(&self) -> Terminal<'_> {
        Terminal { id: &self.id, part_type: self.part_type, polarization: self.polarization }
    }
}

/// Resolves a scanned id: SNAP ports by their id (canonical or numeric form;
/// the board need not be configured), other parts by looking them up in
/// parts.db (any case; historic ids as stored).
pub async fn resolve(parts_db: &Db, scanned: &str) -> Result<Resolved> {
    let scanned = scanned.trim();
    if scanned.is_empty() {
        return Err(Error::invalid("empty part number: scan a part label"));
    }
    if scanned.to_ascii_uppercase().starts_with("SNAP") {
        let port = SnapPort::parse(scanned)?;
        return Ok(Resolved { id: port.to_string(), part_type: PartType::Snap, polarization: None });
    }
    // A malformed number is reported as such, unless it is a historic id on file.
    let parsed = PartNumber::parse(scanned);
    let Some(row) = parts::get(parts_db, scanned).await? else {
        return Err(match parsed {
            Ok(pn) => {
                Error::NotFound(format!("part {pn} is not in parts.db; add it first (casmanctl parts add)"))
            }
            Err(e) => e,
        });
    };
    let part_type =
        row.part_type.as_deref().map(PartType::parse).transpose()?.ok_or_else(|| {
            Error::refused(format!("part {} has no part type in parts.db", row.part_number))
        })?;
    let polarization = match row.polarization.as_deref() {
        Some(p) => Some(Polarization::parse(p)?),
        None => parsed.ok().map(|p| p.polarization()),
    };
    Ok(Resolved { id: row.part_number, part_type, polarization })
}

/// One event to append.
struct NewEvent<'a> {
    source: &'a str,
    source_type: Option<&'a str>,
    source_pol: Option<&'a str>,
    target: &'a str,
    target_type: Option<&'a str>,
    target_pol: Option<&'a str>,
    at: &'a str,
    connected: bool,
}

async fn append(conn: &mut SqliteConnection, e: NewEvent<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                               connected_polarization, connected_scan_time, connection_status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(e.source)
    .bind(e.source_type)
    .bind(e.source_pol)
    .bind(e.at)
    .bind(e.target)
    .bind(e.target_type)
    .bind(e.target_pol)
    .bind(e.at)
    .bind(if e.connected { "connected" } else { "disconnected" })
    .fetch_one(conn)
    .await?)
}

/// Records `source -> target` if every rule allows it; returns the new edge.
pub async fn connect(assembled: &Db, source: &Resolved, target: &Resolved) -> Result<Edge> {
    let mut tx = assembled.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let edges = edges_touching(&mut tx, &[&source.id, &target.id]).await?;
    check_connection(&source.terminal(), &target.terminal(), &edges)?;
    let at = timestamp::now();
    let id = append(
        &mut tx,
        NewEvent {
            source: &source.id,
            source_type: Some(source.part_type.name()),
            source_pol: source.polarization.map(Polarization::as_str),
            target: &target.id,
            target_type: Some(target.part_type.name()),
            target_pol: target.polarization.map(Polarization::as_str),
            at: &at,
            connected: true,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Edge {
        source: source.id.clone(),
        source_type: Some(source.part_type.name().to_owned()),
        target: target.id.clone(),
        target_type: Some(target.part_type.name().to_owned()),
        scan_time: at,
        event_id: id,
    })
}

/// Appends a disconnect for `edge` (in its recorded orientation), copying the
/// polarizations of the event that made it.
async fn disconnect_edge(conn: &mut SqliteConnection, edge: &Edge, at: &str) -> Result<()> {
    let pols: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT polarization, connected_polarization FROM assembly WHERE id = ?")
            .bind(edge.event_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (sp, tp) = pols.unwrap_or_default();
    append(
        conn,
        NewEvent {
            source: &edge.source,
            source_type: edge.source_type.as_deref(),
            source_pol: sp.as_deref(),
            target: &edge.target,
            target_type: edge.target_type.as_deref(),
            target_pol: tp.as_deref(),
            at,
            connected: false,
        },
    )
    .await?;
    Ok(())
}

/// Disconnects `a` and `b` (either order); refused if they are not connected.
/// Returns the edge that was removed.
pub async fn disconnect(assembled: &Db, a: &str, b: &str) -> Result<Edge> {
    let mut tx = assembled.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let edges = edges_touching(&mut tx, &[a, b]).await?;
    let edge = check_disconnection(a, b, &edges)?.clone();
    disconnect_edge(&mut tx, &edge, &timestamp::now()).await?;
    tx.commit().await?;
    Ok(edge)
}

/// Disconnects every current edge of `part`; returns them (none is not an error).
pub async fn remove(assembled: &Db, part: &str) -> Result<Vec<Edge>> {
    let mut tx = assembled.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let edges = edges_touching(&mut tx, &[part]).await?;
    let at = timestamp::now();
    for e in &edges {
        disconnect_edge(&mut tx, e, &at).await?;
    }
    tx.commit().await?;
    Ok(edges)
}

/// The canonical id of a scanned part for lookups that need no parts row
/// (disconnect, history): SNAP ports and current numbers canonicalised,
/// anything else trimmed as given.
pub fn canonical_id(scanned: &str) -> String {
    let s = scanned.trim();
    if let Ok(p) = SnapPort::parse(s) {
        return p.to_string();
    }
    PartNumber::parse(s).map(|p| p.to_string()).unwrap_or_else(|_| s.to_owned())
}

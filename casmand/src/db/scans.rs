//! Recording scans: connect, disconnect and remove events appended to the
//! `assembly` log. Every rule is checked inside the write transaction (on the
//! single writer), against the kept current state of the parts involved
//! (`pair_state` by key, with the log rows it names), so two scanners racing for the
//! same part cannot both win. The daemon batches concurrent requests into one
//! transaction ([`super::batch`]); each request runs [`apply`] in arrival
//! order inside it.

use sqlx::SqliteConnection;

use super::{
    Db,
    assembly::{Current, current_touching, edges_touching},
    batch_plan::PlannedEvent,
    parts,
};
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
    /// This part as one end of a proposed connection.
    pub fn terminal(&self) -> Terminal<'_> {
        Terminal { id: &self.id, part_type: self.part_type, polarization: self.polarization }
    }
}

/// Resolves a scanned id: SNAP ports by their id (canonical or numeric form;
/// the board need not be configured), other parts by looking them up in
/// parts.db (any case; historic ids as stored).
pub async fn resolve(parts_db: &Db, scanned: &str) -> Result<Resolved> {
    let [one] = resolve_all(parts_db, [scanned]).await?;
    Ok(one)
}

/// [`resolve`] for several ids with one lookup in parts.db; the first id
/// that does not resolve (in order) is the error.
pub async fn resolve_all<const N: usize>(parts_db: &Db, scanned: [&str; N]) -> Result<[Resolved; N]> {
    let scanned = scanned.map(str::trim);
    let looked_up: Vec<&str> = scanned.iter().copied().filter(|s| !s.is_empty() && !is_snap(s)).collect();
    let mut rows =
        if looked_up.is_empty() { Vec::new() } else { parts::get_many(parts_db, &looked_up).await? }
            .into_iter();
    let mut out = Vec::with_capacity(N);
    for s in scanned {
        out.push(if s.is_empty() || is_snap(s) {
            resolve_unlisted(s)?
        } else {
            resolve_row(s, rows.next().flatten())?
        });
    }
    out.try_into().map_err(|_| Error::internal("resolve", "count"))
}

fn is_snap(scanned: &str) -> bool {
    scanned.to_ascii_uppercase().starts_with("SNAP")
}

/// An empty id or a SNAP port (no parts row).
fn resolve_unlisted(scanned: &str) -> Result<Resolved> {
    if scanned.is_empty() {
        return Err(Error::invalid("empty part number: scan a part label"));
    }
    let port = SnapPort::parse(scanned)?;
    Ok(Resolved { id: port.to_string(), part_type: PartType::Snap, polarization: None })
}

/// A part from its parts.db row (`None`: not on file).
fn resolve_row(scanned: &str, row: Option<parts::PartRow>) -> Result<Resolved> {
    // A malformed number is reported as such, unless it is a historic id on file.
    let parsed = PartNumber::parse(scanned);
    let Some(row) = row else {
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

/// Appends one event; the kept state follows in the same transaction (the
/// `assembly_keep_insert` trigger).
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

/// Appends `events` in order with one statement and commits the caller's
/// transaction in the same round trip to the connection's thread; returns
/// the ids the events got, in order. The kept state follows by the triggers.
/// On an error nothing was committed (the caller rolls back).
pub async fn append_all_and_commit(conn: &mut SqliteConnection, events: &[PlannedEvent]) -> Result<Vec<i64>> {
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!([
                e.source,
                e.source_type,
                e.source_pol,
                e.target,
                e.target_type,
                e.target_pol,
                e.at,
                if e.connected { "connected" } else { "disconnected" }
            ])
        })
        .collect();
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                               connected_polarization, connected_scan_time, connection_status)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 6, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6, value ->> 7
           FROM json_each(?) ORDER BY key
         RETURNING id;
         COMMIT",
    )
    .bind(serde_json::Value::from(rows).to_string())
    .fetch_all(conn)
    .await?;
    // One statement, one writer: the rows got increasing ids in the order inserted.
    ids.sort_unstable();
    Ok(ids)
}

/// A write request on the assembly log, its parts already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOp {
    /// Connect `source -> target`.
    Connect {
        /// Upstream part.
        source: Resolved,
        /// Downstream part.
        target: Resolved,
    },
    /// Disconnect two parts, either order (canonical ids).
    Disconnect {
        /// One end.
        a: String,
        /// The other end.
        b: String,
    },
    /// Disconnect every current edge of a part (canonical id).
    Remove {
        /// The part.
        part: String,
    },
}

/// What an applied [`ScanOp`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The new connection.
    Connected(Edge),
    /// The connection that was ended, in its recorded orientation.
    Disconnected(Edge),
    /// The connections that were ended (none is not an error).
    Removed(Vec<Edge>),
}

impl Applied {
    /// Events it appended.
    pub fn events(&self) -> u32 {
        match self {
            Applied::Connected(_) | Applied::Disconnected(_) => 1,
            Applied::Removed(edges) => edges.len() as u32,
        }
    }
}

/// Checks the rules for `op` against the kept current state (by index: the
/// cost does not depend on the parts' history) and appends its events, on
/// `conn` inside the caller's write transaction. On a refusal nothing was
/// written.
pub async fn apply(conn: &mut SqliteConnection, op: &ScanOp, at: &str) -> Result<Applied> {
    match op {
        ScanOp::Connect { source, target } => {
            connect_on(conn, source, target, at).await.map(Applied::Connected)
        }
        ScanOp::Disconnect { a, b } => {
            let current = current_touching(conn, &[a, b]).await?;
            let edges: Vec<Edge> = current.iter().map(|c| c.edge.clone()).collect();
            let edge = check_disconnection(a, b, &edges)?;
            let Some(kept) = current.iter().find(|c| c.edge.event_id == edge.event_id) else {
                return Err(Error::internal("disconnect", "edge vanished"));
            };
            disconnect_edge(conn, kept, at).await?;
            Ok(Applied::Disconnected(kept.edge.clone()))
        }
        ScanOp::Remove { part } => {
            let current = current_touching(conn, &[part]).await?;
            for c in &current {
                disconnect_edge(conn, c, at).await?;
            }
            Ok(Applied::Removed(current.into_iter().map(|c| c.edge).collect()))
        }
    }
}

async fn connect_on(
    conn: &mut SqliteConnection,
    source: &Resolved,
    target: &Resolved,
    at: &str,
) -> Result<Edge> {
    let edges = edges_touching(conn, &[&source.id, &target.id]).await?;
    check_connection(&source.terminal(), &target.terminal(), &edges)?;
    let id = append(
        conn,
        NewEvent {
            source: &source.id,
            source_type: Some(source.part_type.name()),
            source_pol: source.polarization.map(Polarization::as_str),
            target: &target.id,
            target_type: Some(target.part_type.name()),
            target_pol: target.polarization.map(Polarization::as_str),
            at,
            connected: true,
        },
    )
    .await?;
    Ok(Edge {
        source: source.id.clone(),
        source_type: Some(source.part_type.name().to_owned()),
        target: target.id.clone(),
        target_type: Some(target.part_type.name().to_owned()),
        scan_time: at.to_owned(),
        event_id: id,
    })
}

/// Appends a disconnect for a kept edge (in its recorded orientation),
/// copying the types and polarizations of the event that made it.
async fn disconnect_edge(conn: &mut SqliteConnection, kept: &Current, at: &str) -> Result<()> {
    let edge = &kept.edge;
    append(
        conn,
        NewEvent {
            source: &edge.source,
            source_type: edge.source_type.as_deref(),
            source_pol: kept.source_polarization.as_deref(),
            target: &edge.target,
            target_type: edge.target_type.as_deref(),
            target_pol: kept.target_polarization.as_deref(),
            at,
            connected: false,
        },
    )
    .await?;
    Ok(())
}

/// Applies one op in its own write transaction (no batching: in-process
/// callers and the benchmark's baseline; the daemon's requests go through
/// [`super::batch::GroupCommit`]).
pub async fn apply_alone(assembled: &Db, op: &ScanOp) -> Result<Applied> {
    let mut tx = assembled.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let applied = apply(&mut tx, op, &timestamp::now()).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Records `source -> target` if every rule allows it; returns the new edge.
pub async fn connect(assembled: &Db, source: &Resolved, target: &Resolved) -> Result<Edge> {
    let op = ScanOp::Connect { source: source.clone(), target: target.clone() };
    match apply_alone(assembled, &op).await? {
        Applied::Connected(e) => Ok(e),
        other => Err(Error::internal("connect", format!("{other:?}"))),
    }
}

/// Disconnects `a` and `b` (either order); refused if they are not connected.
/// Returns the edge that was removed.
pub async fn disconnect(assembled: &Db, a: &str, b: &str) -> Result<Edge> {
    match apply_alone(assembled, &ScanOp::Disconnect { a: a.to_owned(), b: b.to_owned() }).await? {
        Applied::Disconnected(e) => Ok(e),
        other => Err(Error::internal("disconnect", format!("{other:?}"))),
    }
}

/// Disconnects every current edge of `part`; returns them (none is not an error).
pub async fn remove(assembled: &Db, part: &str) -> Result<Vec<Edge>> {
    match apply_alone(assembled, &ScanOp::Remove { part: part.to_owned() }).await? {
        Applied::Removed(e) => Ok(e),
        other => Err(Error::internal("remove", format!("{other:?}"))),
    }
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

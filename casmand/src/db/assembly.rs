//! SQL for the `assembly` event log: reading events and current edges,
//! tracing chains hop by hop, and appending connect/disconnect events with the
//! rules checked inside the write transaction.

use std::collections::BTreeSet;

use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use super::Db;
use crate::{
    error::Result,
    inventory::{Chain, Edge, Event, current_edges, trace_chain},
};

/// One row of `assembly`, as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AssemblyRow {
    /// Row id.
    pub id: i64,
    /// First end as recorded.
    pub part_number: Option<String>,
    /// Its type.
    pub part_type: Option<String>,
    /// Its polarization.
    pub polarization: Option<String>,
    /// When it was scanned (UTC ISO).
    pub scan_time: Option<String>,
    /// Other end as recorded.
    pub connected_to: Option<String>,
    /// Its type.
    pub connected_to_type: Option<String>,
    /// Its polarization.
    pub connected_polarization: Option<String>,
    /// When the other end was scanned.
    pub connected_scan_time: Option<String>,
    /// `connected` or `disconnected`.
    pub connection_status: Option<String>,
}

const COLUMNS: &str = "id, part_number, part_type, polarization, scan_time, connected_to, connected_to_type, \
                       connected_polarization, connected_scan_time, connection_status";

impl AssemblyRow {
    /// The row as an event of the current-state rule; `None` if an end is NULL.
    pub fn event(&self) -> Option<Event> {
        Some(Event {
            id: self.id,
            part_number: self.part_number.clone()?,
            part_type: self.part_type.clone(),
            connected_to: self.connected_to.clone()?,
            connected_to_type: self.connected_to_type.clone(),
            scan_time: self.scan_time.clone().unwrap_or_default(),
            connected: self.connection_status.as_deref() != Some("disconnected"),
        })
    }
}

/// Every row, in id order.
pub async fn all_rows(db: &Db) -> Result<Vec<AssemblyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM assembly ORDER BY id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&*db.reader().await).await?)
}

/// Rows in which any of `parts` is either end, in id order.
pub async fn rows_touching(conn: &mut SqliteConnection, parts: &[&str]) -> Result<Vec<AssemblyRow>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM assembly WHERE part_number IN ("));
    let mut sep = q.separated(", ");
    for p in parts {
        sep.push_bind(p.to_string());
    }
    q.push(") OR connected_to IN (");
    let mut sep = q.separated(", ");
    for p in parts {
        sep.push_bind(p.to_string());
    }
    q.push(") ORDER BY id");
    Ok(q.build_query_as::<AssemblyRow>().fetch_all(conn).await?)
}

fn events(rows: &[AssemblyRow]) -> Vec<Event> {
    rows.iter().filter_map(AssemblyRow::event).collect()
}

/// All current connections (newest event per unordered pair).
pub async fn current(db: &Db) -> Result<Vec<Edge>> {
    Ok(current_edges(&events(&all_rows(db).await?)))
}

/// Current connections touching any of `parts`. Exact, because the state of
/// a pair depends only on the events of that pair.
pub async fn edges_touching(conn: &mut SqliteConnection, parts: &[&str]) -> Result<Vec<Edge>> {
    let rows = rows_touching(conn, parts).await?;
    let mut edges = current_edges(&events(&rows));
    edges.retain(|e| parts.contains(&e.source.as_str()) || parts.contains(&e.target.as_str()));
    Ok(edges)
}

/// The chain through `part`, walked hop by hop over indexed lookups (no full
/// scan of the log). Stops after 64 parts, far beyond a real chain.
pub async fn trace(db: &Db, part: &str) -> Result<Chain> {
    let mut conn = db.reader().await.acquire().await?;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut frontier: Vec<String> = vec![part.to_owned()];
    let mut edges: Vec<Edge> = Vec::new();
    while !frontier.is_empty() && seen.len() < 64 {
        let batch: Vec<&str> = frontier.iter().map(String::as_str).collect();
        let found = edges_touching(&mut conn, &batch).await?;
        seen.extend(frontier.drain(..));
        for e in found {
            for end in [&e.source, &e.target] {
                if !seen.contains(end) && !frontier.contains(end) {
                    frontier.push(end.clone());
                }
            }
            if !edges.iter().any(|x| x.event_id == e.event_id) {
                edges.push(e);
            }
        }
    }
    Ok(trace_chain(part, &edges))
}

/// Every row in which `part` is either end, newest first.
pub async fn history(db: &Db, part: &str) -> Result<Vec<AssemblyRow>> {
    let mut conn = db.reader().await.acquire().await?;
    let mut rows = rows_touching(&mut conn, &[part]).await?;
    rows.sort_by(|a, b| (&b.scan_time, b.id).cmp(&(&a.scan_time, a.id)));
    Ok(rows)
}

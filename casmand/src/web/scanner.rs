//! `/scanner`: the field scanner for a phone and a keyboard-wedge barcode
//! scanner (page shell here, behaviour in `assets/scanner.js`), and its read
//! API: each scanned part is resolved and checked against the same rules the
//! write will check again inside its transaction
//! ([`crate::inventory::check_connection`]); the page only displays.

use axum::{
    Json,
    extract::{Query, State},
    response::Html,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Web, history, html, json::ApiResult};
use crate::{
    db::{
        assembly, positions,
        scans::{self, Resolved, canonical_id},
    },
    error::Error,
    inventory::{
        Edge, GridCode, GridLayout, PartType, SnapBoardId, Terminal, check_connection, kernel_index,
    },
};

/// The page shell: everything is drawn by `scanner.js`, which needs no
/// external resource (the site network may be offline).
pub(super) async fn page() -> Html<String> {
    let live = maud::html! { span id="live" class="live" { "static" } };
    let main = include_str!("assets/scanner_main.html");
    Html(html::field_page("Scanner", "/assets/scanner.js", "scanner", "/chains", live, main).into_string())
}

/// The admin page shell (`admin.js`).
pub(super) async fn admin_page() -> Html<String> {
    let back = maud::html! { span class="live" { a href="/scanner" { "Scanner" } } };
    let main = include_str!("assets/admin_main.html");
    Html(html::field_page("Admin", "/assets/admin.js", "scanner admin", "/scanner", back, main).into_string())
}

fn part_json(p: &Resolved) -> Value {
    json!({
        "id": p.id,
        "type": p.part_type.name(),
        "polarization": p.polarization.map(|p| p.as_str()),
        "next_type": p.part_type.successor().map(PartType::name),
    })
}

/// The conflicts between sites' scans that concern `id` (it receives from
/// two sources, sends to two targets, or is one of those), in words: the
/// page shows them on the part's card, so the technician who scans it sees
/// what to disconnect.
async fn conflicts_of(web: &Web, id: &str) -> Result<Vec<String>, Error> {
    Ok(web.ctx.conflicts_concerning(&[id]).await?.into_iter().map(|c| c.detail).collect())
}

/// A connection as the page shows it.
pub fn edge_json(e: &Edge) -> Value {
    json!({"source": e.source, "target": e.target, "source_type": e.source_type,
           "target_type": e.target_type, "since": e.scan_time})
}

async fn edges_of(web: &Web, ids: &[&str]) -> Result<Vec<Edge>, Error> {
    let mut conn = web.ctx.dbs().assembled.reader().await.acquire().await?;
    assembly::edges_touching(&mut conn, ids).await
}

fn terminal(p: &Resolved) -> Terminal<'_> {
    Terminal { id: &p.id, part_type: p.part_type, polarization: p.polarization }
}

/// Why `source` cannot start a connection whatever comes next (a SNAP port,
/// an outgoing connection already), in the rules' own words: checked
/// against a stand-in of the right type and polarization.
fn source_problem(source: &Resolved, edges: &[Edge]) -> Option<String> {
    let next = source.part_type.successor().unwrap_or(PartType::Snap);
    let pol = if next == PartType::Snap { None } else { source.polarization };
    let stand_in = Terminal { id: "the next part", part_type: next, polarization: pol };
    check_connection(&terminal(source), &stand_in, edges).err().map(|e| e.to_string())
}

#[derive(Debug, Deserialize)]
pub(super) struct PartQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    role: String,
}

/// `GET /scanner/api/part?id=&role=source|other`: the part, its current
/// connections and, as a source, what stops it from connecting.
pub(super) async fn part(State(web): State<Web>, Query(q): Query<PartQuery>) -> ApiResult {
    let resolved = scans::resolve(&web.ctx.dbs().parts, &q.id).await;
    let p = match resolved {
        Ok(p) => p,
        // Disconnect/remove/history may name a part only the log knows.
        Err(Error::NotFound(msg)) if q.role != "source" => {
            let id = canonical_id(&q.id);
            let edges = edges_of(&web, &[&id]).await?;
            if edges.is_empty() {
                return Err(Error::NotFound(msg).into());
            }
            return Ok(Json(json!({"ok": true, "part": {"id": id, "type": null, "polarization": null},
                                  "connections": edges.iter().map(edge_json).collect::<Vec<_>>()})));
        }
        Err(e) => return Err(e.into()),
    };
    let edges = edges_of(&web, &[&p.id]).await?;
    let problem = (q.role == "source").then(|| source_problem(&p, &edges)).flatten();
    let mut part = part_json(&p);
    part["conflicts"] = json!(conflicts_of(&web, &p.id).await?);
    Ok(Json(json!({
        "ok": true,
        "part": part,
        "connections": edges.iter().map(edge_json).collect::<Vec<_>>(),
        "problem": problem,
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct CheckQuery {
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
}

/// `GET /scanner/api/check?source=&target=`: whether `source -> target`
/// would be recorded now, and if not the rule and the connection in the way.
pub(super) async fn check(State(web): State<Web>, Query(q): Query<CheckQuery>) -> ApiResult {
    let parts = &web.ctx.dbs().parts;
    let source = scans::resolve(parts, &q.source).await?;
    let target = scans::resolve(parts, &q.target).await?;
    let edges = edges_of(&web, &[&source.id, &target.id]).await?;
    let problem =
        check_connection(&terminal(&source), &terminal(&target), &edges).err().map(|e| e.to_string());
    let target_edges: Vec<Value> = edges.iter().filter(|e| e.touches(&target.id)).map(edge_json).collect();
    Ok(Json(json!({
        "ok": true,
        "source": part_json(&source),
        "target": part_json(&target),
        "connections": target_edges,
        "problem": problem,
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct BoardQuery {
    #[serde(default)]
    board: String,
}

/// `GET /scanner/api/snap?board=SNAP1A`: the board's 12 ports, each with the
/// part connected to it (the occupied ones cannot be picked).
pub(super) async fn snap_ports(State(web): State<Web>, Query(q): Query<BoardQuery>) -> ApiResult {
    let board = SnapBoardId::parse(&q.board)?;
    let ids: Vec<String> = board.ports().map(|p| p.to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let edges = edges_of(&web, &refs).await?;
    let ports: Vec<Value> = board
        .ports()
        .map(|p| {
            let id = p.to_string();
            let occupant = edges.iter().find(|e| e.target == id).map(|e| e.source.clone());
            json!({"id": id, "port": p.port(), "occupant": occupant})
        })
        .collect();
    Ok(Json(json!({"ok": true, "board": board.to_string(), "ports": ports})))
}

/// `GET /scanner/api/layout`: the arrays and their extent, for the position form.
pub(super) async fn layout() -> Json<Value> {
    let arrays: Vec<Value> = [GridLayout::core()]
        .iter()
        .map(|l| {
            json!({"name": l.name, "array_id": l.array_id.to_string(), "north_rows": l.north_rows,
                   "south_rows": l.south_rows, "east_columns": l.east_columns})
        })
        .collect();
    Json(json!({"ok": true, "arrays": arrays}))
}

#[derive(Debug, Deserialize)]
pub(super) struct GridQuery {
    #[serde(default)]
    array: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    row: u32,
    #[serde(default)]
    col: u32,
    #[serde(default)]
    antenna: String,
}

/// The grid code of a position form, checked against the core layout.
pub fn grid_code_of(array: &str, direction: &str, row: u32, col: u32) -> Result<GridCode, Error> {
    let one = |s: &str, what: &str| {
        let mut c = s.trim().chars();
        match (c.next(), c.next()) {
            (Some(x), None) => Ok(x),
            _ => Err(Error::invalid(format!("{what} {s:?}: expected one letter"))),
        }
    };
    let code = GridCode::from_direction(one(array, "array")?, one(direction, "direction")?, row, col)?;
    GridLayout::validate_in(&[GridLayout::core()], code)?;
    Ok(code)
}

/// `GET /scanner/api/grid?array=C&direction=N&row=&col=&antenna=`: the live
/// preview of a position: its code, kernel index, who is there now, and
/// where `antenna` is now (both need a second confirmation to change).
pub(super) async fn grid(State(web): State<Web>, Query(q): Query<GridQuery>) -> ApiResult {
    let code = grid_code_of(&q.array, &q.direction, q.row, q.col)?;
    let parts = &web.ctx.dbs().parts;
    let occupant = positions::get_by_grid(parts, code, None).await?.map(|r| r.antenna_number);
    let current = match q.antenna.trim() {
        "" => None,
        a => {
            let base = crate::inventory::antenna_base(a)?;
            positions::get_by_antenna(parts, &base, None).await?.map(|r| r.grid_code)
        }
    };
    Ok(Json(json!({
        "ok": true,
        "grid_code": code.to_string(),
        "kernel_index": kernel_index(code),
        "occupant": occupant,
        "antenna_at": current,
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct AntennaQuery {
    #[serde(default)]
    id: String,
}

/// `GET /scanner/api/antenna?id=`: the base antenna number and its position.
pub(super) async fn antenna(State(web): State<Web>, Query(q): Query<AntennaQuery>) -> ApiResult {
    let base = crate::inventory::antenna_base(&q.id)?;
    let parts = &web.ctx.dbs().parts;
    let known = [format!("{base}P1"), format!("{base}P2")];
    let mut found = false;
    for k in &known {
        found |= crate::db::parts::get(parts, k).await?.is_some();
    }
    if !found {
        return Err(Error::NotFound(format!(
            "antenna {base}: neither {base}P1 nor {base}P2 is in parts.db; add the antenna first"
        ))
        .into());
    }
    let at = positions::get_by_antenna(parts, &base, None).await?.map(|r| r.grid_code);
    Ok(Json(json!({"ok": true, "antenna": base, "grid_code": at})))
}

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    #[serde(default)]
    part: String,
}

/// `GET /scanner/api/history?part=`: every event of the part, newest first,
/// with who recorded it and from where (from the audit log).
pub(super) async fn part_history(State(web): State<Web>, Query(q): Query<HistoryQuery>) -> ApiResult {
    let part = canonical_id(&q.part);
    if part.is_empty() {
        return Err(Error::invalid("history needs a part number: scan or type one").into());
    }
    let rows = assembly::history(&web.ctx.dbs().assembled, &part).await?;
    let audit = crate::db::audit::naming(&web.ctx.dbs().state, "scan.", &format!("\"{part}"), 2000).await?;
    let events = history::annotate(&rows, &audit);
    Ok(Json(json!({"ok": true, "part": part, "events": events})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Polarization;

    #[test]
    fn a_source_with_an_outgoing_connection_is_refused_in_the_rules_words() {
        let lna = Resolved {
            id: "LNA00001P1".into(),
            part_type: PartType::Lna,
            polarization: Some(Polarization::parse("1").unwrap_or_else(|_| unreachable!())),
        };
        assert_eq!(source_problem(&lna, &[]), None);
        let edge = Edge {
            source: "LNA00001P1".into(),
            source_type: Some("LNA".into()),
            target: "CXS00001P1".into(),
            target_type: Some("COAXSHORT".into()),
            scan_time: "2026-01-01T00:00:00Z".into(),
            event_id: 1,
        };
        let p = source_problem(&lna, &[edge]).unwrap_or_default();
        assert!(p.contains("already connects to CXS00001P1") && p.contains("one outgoing"), "{p}");
        let snap = Resolved { id: "SNAP1A00".into(), part_type: PartType::Snap, polarization: None };
        assert!(source_problem(&snap, &[]).unwrap_or_default().contains("SNAP only has incoming"));
        assert!(grid_code_of("C", "N", 2, 3).is_ok_and(|c| c.to_string() == "CN002E03"));
        assert!(grid_code_of("C", "C", 1, 3).is_err());
    }
}

//! The scanner's writes: `POST /scanner/api/{connect,disconnect,remove,assign}`,
//! JSON bodies with a `request_id` ([`super::request_ids`]). Each needs a
//! signed-in operator and a same-origin request ([`super::signin::require`])
//! and calls the application layer ([`crate::context`]) as the gRPC handlers
//! do: one set of rules, one audit, one write count.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::HeaderMap,
};
use serde::Deserialize;
use serde_json::json;

use super::{Web, json::ApiResult, scanner::edge_json, signin};
use crate::{
    db::positions,
    error::Error,
    inventory::{GridCode, GridLayout, antenna_base},
};

#[derive(Debug, Deserialize)]
pub(super) struct ConnectBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
}

pub(super) async fn connect(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<ConnectBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, false)?;
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "scan.connect", &b.request_id, async {
            let e = ctx.connect(&caller, &b.source, &b.target).await?;
            Ok(json!({"ok": true, "message": format!("Connected {} → {}", e.source, e.target),
                      "connection": edge_json(&e)}))
        })
        .await?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
pub(super) struct DisconnectBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    part: String,
    #[serde(default)]
    other: String,
}

pub(super) async fn disconnect(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<DisconnectBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, false)?;
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "scan.disconnect", &b.request_id, async {
            let e = ctx.disconnect(&caller, &b.part, &b.other).await?;
            Ok(json!({"ok": true, "message": format!("Disconnected {} -X-> {}", e.source, e.target),
                      "connection": edge_json(&e)}))
        })
        .await?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
pub(super) struct RemoveBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    part: String,
    #[serde(default)]
    confirm: bool,
}

pub(super) async fn remove(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<RemoveBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, false)?;
    if !b.confirm {
        return Err(
            Error::invalid("remove ends every connection of the part: confirm it (confirm: true)").into()
        );
    }
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "scan.remove", &b.request_id, async {
            let edges = ctx.remove_part(&caller, &b.part).await?;
            let message = if edges.is_empty() {
                format!("{} had no active connections; nothing was changed", b.part.trim())
            } else {
                format!("Ended {} connection(s) of {}", edges.len(), b.part.trim())
            };
            Ok(json!({"ok": true, "message": message,
                      "ended": edges.iter().map(edge_json).collect::<Vec<_>>()}))
        })
        .await?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
pub(super) struct AssignBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    antenna: String,
    #[serde(default)]
    grid_code: String,
    #[serde(default)]
    notes: String,
    /// The antenna the operator agreed to evict (must be the occupant).
    #[serde(default)]
    confirm_evict: String,
    /// The position the operator agreed to move the antenna from.
    #[serde(default)]
    confirm_move: String,
}

/// Assigns a position. An occupied position or an antenna placed elsewhere
/// is refused with `needs_confirmation` naming who is evicted / where from,
/// until the request confirms exactly that; only then is the write forced.
/// (Occupancy is read just before the write: an antenna placed there by
/// someone else in between is evicted by a forced write too; without
/// anything to confirm the write is not forced and the database refuses.)
pub(super) async fn assign(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<AssignBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, false)?;
    let caller = op.caller(client);
    let antenna = antenna_base(&b.antenna)?;
    let code = GridCode::parse(&b.grid_code)?;
    GridLayout::validate_in(&[GridLayout::core()], code)?;
    let parts = &web.ctx.dbs().parts;
    let occupant =
        positions::get_by_grid(parts, code, None).await?.map(|r| r.antenna_number).filter(|a| *a != antenna);
    let current = positions::get_by_antenna(parts, &antenna, None)
        .await?
        .map(|r| r.grid_code)
        .filter(|g| *g != code.to_string());
    let evict_ok = occupant.as_deref().is_none_or(|o| o.eq_ignore_ascii_case(b.confirm_evict.trim()));
    let move_ok = current.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(b.confirm_move.trim()));
    if !evict_ok || !move_ok {
        let mut why = Vec::new();
        if let Some(o) = &occupant {
            why.push(format!("{code} is occupied by {o}, who will be evicted and left without a position"));
        }
        if let Some(c) = &current {
            why.push(format!("{antenna} is placed at {c} and will move from there"));
        }
        return Ok(Json(json!({
            "ok": false, "kind": "confirm", "needs_confirmation": true,
            "error": format!("{}; confirm to go ahead", why.join("; ")),
            "evicts": occupant, "moves_from": current, "grid_code": code.to_string(), "antenna": antenna,
        })));
    }
    let force = occupant.is_some() || current.is_some();
    let notes = Some(b.notes.trim()).filter(|n| !n.is_empty());
    let ctx = web.ctx.clone();
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "positions.assign", &b.request_id, async {
            let a = ctx.assign_position(&caller, &antenna, code, notes, force).await?;
            let mut message = format!("Assigned {antenna} to {code}");
            if let Some(p) = &a.previous {
                message.push_str(&format!("; moved from {p}"));
            }
            if let Some(e) = &a.evicted {
                message.push_str(&format!("; evicted {e}, which now has no position"));
            }
            Ok(json!({"ok": true, "message": message, "grid_code": a.row.grid_code,
                      "previous": a.previous, "evicted": a.evicted}))
        })
        .await?;
    Ok(Json(v))
}

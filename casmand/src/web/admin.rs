//! `/admin` (operators with `admin = true` only): load grid coordinates and
//! SNAP boards from an uploaded CSV (all or nothing; problems listed by
//! line, as `casmanctl database load-*` does), add parts, back up now, and
//! the sync status. Writes go through the application layer ([`crate::context`]).

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::HeaderMap,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Web,
    json::{ApiError, ApiResult},
    signin,
};
use crate::{
    db::{ASSEMBLED_DB, PARTS_DB},
    error::Error,
    inventory::{CsvErrors, PartType, Polarization, parse_grid_positions, parse_snap_boards},
};

/// Largest CSV accepted, in bytes.
pub(super) const MAX_CSV: usize = 4 << 20;

#[derive(Debug, Deserialize)]
pub(super) struct CsvBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    csv: String,
    #[serde(default)]
    file_name: String,
}

fn csv_problems(e: CsvErrors) -> Json<Value> {
    let problems: Vec<Value> =
        e.0.iter()
            .map(|p| json!({"line": p.line, "field": p.field, "value": p.value, "rule": p.rule}))
            .collect();
    Json(json!({"ok": false, "kind": "invalid", "error": e.to_string(), "problems": problems}))
}

fn source(b: &CsvBody) -> String {
    let name = b.file_name.trim();
    format!("web upload {}", if name.is_empty() { "(unnamed)" } else { name })
}

fn too_big(b: &CsvBody) -> Result<(), ApiError> {
    if b.csv.len() > MAX_CSV {
        return Err(Error::invalid(format!("CSV of {} bytes: at most {MAX_CSV} bytes", b.csv.len())).into());
    }
    Ok(())
}

/// `POST /admin/api/load-snap-boards` `{request_id, csv, file_name}`.
pub(super) async fn load_snap_boards(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<CsvBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, true)?;
    too_big(&b)?;
    let file = match parse_snap_boards(&b.csv) {
        Ok(f) => f,
        Err(e) => return Ok(csv_problems(e)),
    };
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let src = source(&b);
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "database.load_snap_boards", &b.request_id, async {
            let d = ctx.load_snap_boards(&caller, &file, &src).await?;
            Ok(json!({"ok": true, "message": format!("Loaded {} new board(s), updated {}, unchanged {}",
                      d.inserted.len(), d.updated.len(), d.unchanged.len())}))
        })
        .await?;
    Ok(Json(v))
}

/// `POST /admin/api/load-coordinates` `{request_id, csv, file_name}`.
pub(super) async fn load_coordinates(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<CsvBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, true)?;
    too_big(&b)?;
    let file = match parse_grid_positions(&b.csv) {
        Ok(f) => f,
        Err(e) => return Ok(csv_problems(e)),
    };
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let src = source(&b);
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "database.load_coordinates", &b.request_id, async {
            let d = ctx.load_coordinates(&caller, &file, 0, &src).await?;
            Ok(json!({"ok": true, "message": format!("Loaded {} position(s) ({} blank line(s) skipped); \
                      coordinates copied to {} placed antenna(s)", d.done.loaded, d.skipped,
                      d.done.positions_updated)}))
        })
        .await?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
pub(super) struct AddPartsBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    part_type: String,
    #[serde(default)]
    polarization: String,
    #[serde(default)]
    count: u32,
}

/// `POST /admin/api/add-parts` `{request_id, part_type, polarization, count}`.
pub(super) async fn add_parts(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<AddPartsBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, true)?;
    let part_type = PartType::parse(&b.part_type)?;
    let pol = Polarization::parse(&b.polarization)?;
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "parts.add", &b.request_id, async {
            let rows = ctx.add_parts(&caller, part_type, pol, b.count).await?;
            let numbers: Vec<&str> = rows.iter().map(|r| r.part_number.as_str()).collect();
            let labels = format!("/admin/labels.pdf?parts={}", numbers.join(","));
            Ok(json!({"ok": true, "parts": numbers, "labels_url": labels, "message": match (numbers.first(), numbers.last()) {
                (Some(f), Some(l)) => format!("Added {} part(s): {f} … {l}", numbers.len()),
                _ => "No parts added".to_owned(),
            }}))
        })
        .await?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
pub(super) struct LabelsQuery {
    /// Part numbers (or SNAP port ids), comma-separated, in sheet order.
    #[serde(default)]
    parts: String,
}

/// Most labels one download carries (a sheet per batch, not per inventory).
const MAX_LABELS: usize = 2_000;

/// `GET /admin/labels.pdf?parts=ANT00001P1,ANT00002P1,...`: the label sheet
/// of a batch (what `casmanctl parts add ... --labels` writes), laid out by
/// `[labels]`. Offered after "Add parts"; reads nothing and writes nothing.
pub(super) async fn labels_sheet(
    State(web): State<Web>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LabelsQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    // A download, not a write: no same-origin check (a link is a plain
    // navigation), but an admin's sign-in like every /admin request.
    match signin::operator(&web, &headers) {
        Some(op) if op.admin => {}
        Some(op) => {
            return Err(ApiError(Error::PermissionDenied(format!(
                "operator {:?} is not an admin (admin = true in [[http.operators]])",
                op.name
            ))));
        }
        None => {
            return Err(ApiError(Error::PermissionDenied(
                "not signed in: sign in on this device first".into(),
            )));
        }
    }
    let ids: Vec<&str> = q.parts.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if ids.is_empty() || ids.len() > MAX_LABELS {
        return Err(Error::invalid(format!(
            "a label sheet takes 1 to {MAX_LABELS} part numbers (parts=A,B,...), not {}",
            ids.len()
        ))
        .into());
    }
    let pdf = crate::labels::sheet_of(&web.ctx.config().labels, &ids)?;
    let name = format!("labels_{}_{}.pdf", ids[0], ids[ids.len() - 1])
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '.', "_");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pdf".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        pdf,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct BackupBody {
    #[serde(default)]
    request_id: String,
}

/// `POST /admin/api/backup` `{request_id}`: backs up both inventory databases now.
pub(super) async fn backup(
    State(web): State<Web>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<BackupBody>,
) -> ApiResult {
    let op = signin::require(&web, &headers, true)?;
    let caller = op.caller(client);
    let ctx = web.ctx.clone();
    let v = web
        .ids
        .once(&web.ctx.dbs().state, &op, "sync.backup", &b.request_id, async {
            let mut done = Vec::new();
            for db in [PARTS_DB, ASSEMBLED_DB] {
                let o = ctx.backup_now(&caller, db, &|_| {}).await?;
                done.push(json!({"database": db, "key": o.version.key, "uploaded": o.uploaded}));
            }
            Ok(json!({"ok": true, "message": "Backed up parts.db and assembled_casm.db", "backups": done}))
        })
        .await?;
    Ok(Json(v))
}

/// `GET /admin/api/sync-status`: per database, the last backup, the writes
/// not yet backed up and any failed backup waiting to be retried.
pub(super) async fn sync_status(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let op = signin::operator(&web, &headers);
    if !op.is_some_and(|o| o.admin) {
        return Err(
            Error::PermissionDenied("the sync status is for admin operators; sign in as one".into()).into()
        );
    }
    let s = web.ctx.backups().sync_status(web.ctx.config()).await?;
    let dbs: Vec<Value> = s
        .databases
        .iter()
        .map(|d| {
            json!({"database": d.name, "size_bytes": d.size_bytes, "writes_since_backup": d.writes_since_backup,
                   "last_backup_at": d.last_backup_at, "last_backup_key": d.last_backup_key,
                   "pending": d.pending.as_ref().map(|p| json!({"attempts": p.attempts, "last_error": p.last_error,
                                                              "next_attempt_at": p.next_attempt_at}))})
        })
        .collect();
    Ok(Json(
        json!({"ok": true, "site": s.site, "reachable": s.reachable, "error": s.error, "databases": dbs}),
    ))
}

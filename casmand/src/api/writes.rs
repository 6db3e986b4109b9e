//! Write entry points shared by the gRPC handlers and the web scanner
//! (`crate::web`): each does what the handler of the same name in
//! [`super::assembly`], [`super::positions`], [`super::parts`] and
//! [`super::snap`] does — the same db call (rules inside the write
//! transaction), the same audit entry and the same write count for the
//! backup scheduler — so a scan recorded from a phone and one recorded with
//! casmanctl are one and the same write. Thin by design: when a handler's
//! write path changes, this changes with it.

use serde_json::json;

use super::caller::Caller;
use crate::{
    activity::Activity,
    context::Context,
    db::{
        ASSEMBLED_DB, PARTS_DB, boards, parts,
        positions::{self, Assigned},
        scans::{self, canonical_id},
    },
    error::{Error, Result},
    inventory::{CsvFile, Edge, GridCode, PartType, Polarization, SnapBoard, SnapBoardId},
};

async fn written(ctx: &Context, caller: &Caller, action: &'static str, detail: serde_json::Value) {
    let activity = Activity::Write { database: ASSEMBLED_DB, action, writes: 1 };
    caller.audit_activity(ctx, action, ASSEMBLED_DB, detail, activity).await;
}

/// `Assembly.Connect`: records `source -> target` (ids as scanned).
pub async fn connect(ctx: &Context, caller: &Caller, source: &str, target: &str) -> Result<Edge> {
    let dbs = ctx.dbs();
    let source = scans::resolve(&dbs.parts, source).await?;
    let target = scans::resolve(&dbs.parts, target).await?;
    let edge = scans::connect(&dbs.assembled, &source, &target).await?;
    written(
        ctx,
        caller,
        "scan.connect",
        json!({"source": edge.source, "target": edge.target, "event_id": edge.event_id}),
    )
    .await;
    Ok(edge)
}

/// `Assembly.Disconnect`: ends the connection between `a` and `b`.
pub async fn disconnect(ctx: &Context, caller: &Caller, a: &str, b: &str) -> Result<Edge> {
    let (a, b) = (canonical_id(a), canonical_id(b));
    if a.is_empty() || b.is_empty() {
        return Err(Error::invalid("disconnect needs two part numbers"));
    }
    let edge = scans::disconnect(&ctx.dbs().assembled, &a, &b).await?;
    written(ctx, caller, "scan.disconnect", json!({"source": edge.source, "target": edge.target})).await;
    Ok(edge)
}

/// `Assembly.RemovePart`: ends every connection of `part`.
pub async fn remove_part(ctx: &Context, caller: &Caller, part: &str) -> Result<Vec<Edge>> {
    let part = canonical_id(part);
    if part.is_empty() {
        return Err(Error::invalid("remove needs a part number"));
    }
    let edges = scans::remove(&ctx.dbs().assembled, &part).await?;
    if !edges.is_empty() {
        let ended: Vec<String> = edges.iter().map(|e| format!("{} -> {}", e.source, e.target)).collect();
        caller.audit(ctx, "scan.remove", ASSEMBLED_DB, json!({"part": part, "ended": ended})).await;
        ctx.record(Activity::Write {
            database: ASSEMBLED_DB,
            action: "scan.remove",
            writes: edges.len() as u32,
        })
        .await;
    }
    Ok(edges)
}

/// `Positions.AssignPosition`: places base antenna `antenna` at `code`.
pub async fn assign_position(
    ctx: &Context,
    caller: &Caller,
    antenna: &str,
    code: GridCode,
    notes: Option<&str>,
    force: bool,
) -> Result<Assigned> {
    let a = positions::assign(&ctx.dbs().parts, antenna, code, notes, force).await?;
    caller
        .audit(
            ctx,
            "positions.assign",
            PARTS_DB,
            json!({"antenna": antenna, "grid_code": code.to_string(), "force": force,
                   "previous": a.previous, "evicted": a.evicted}),
        )
        .await;
    ctx.record(Activity::Write { database: PARTS_DB, action: "positions.assign", writes: 1 }).await;
    Ok(a)
}

/// `Parts.AddParts`: generates `count` new parts.
pub async fn add_parts(
    ctx: &Context,
    caller: &Caller,
    part_type: PartType,
    pol: Polarization,
    count: u32,
) -> Result<Vec<parts::PartRow>> {
    let numbers = ctx.config().part_numbers().unwrap_or(1..=99_999);
    let rows = parts::generate(&ctx.dbs().parts, &ctx.dbs().state, part_type, pol, count, numbers).await?;
    let numbers: Vec<&str> = rows.iter().map(|r| r.part_number.as_str()).collect();
    caller
        .audit_activity(
            ctx,
            "parts.add",
            PARTS_DB,
            json!({"part_type": part_type.name(), "polarization": pol.as_str(), "count": count,
                   "first": numbers.first(), "last": numbers.last()}),
            Activity::PartsGenerated { count },
        )
        .await;
    Ok(rows)
}

/// `SnapBoards.LoadSnapBoards` of a parsed file (all or nothing).
pub async fn load_snap_boards(
    ctx: &Context,
    caller: &Caller,
    file: &CsvFile<SnapBoard>,
    source: &str,
) -> Result<boards::BoardsLoaded> {
    let done = boards::load(&ctx.dbs().parts, &file.rows).await?;
    if !done.inserted.is_empty() || !done.updated.is_empty() {
        let ids = |b: &[SnapBoardId]| b.iter().map(ToString::to_string).collect::<Vec<_>>();
        caller
            .audit(
                ctx,
                "database.load_snap_boards",
                PARTS_DB,
                json!({"source": source, "loaded": ids(&done.inserted), "updated": ids(&done.updated),
                       "unchanged": done.unchanged.len()}),
            )
            .await;
        ctx.record(Activity::Write { database: PARTS_DB, action: "database.load_snap_boards", writes: 1 })
            .await;
    }
    Ok(done)
}

/// `Positions.LoadCoordinates` of a parsed file (all or nothing, no skipped rows).
pub async fn load_coordinates(
    ctx: &Context,
    caller: &Caller,
    file: &CsvFile<crate::inventory::GridPosition>,
    source: &str,
) -> Result<positions::CoordinatesLoaded> {
    let rows: Vec<_> = file.rows.iter().map(|n| n.row.clone()).collect();
    let done = positions::load_coordinates(&ctx.dbs().parts, &rows).await?;
    if done.loaded > 0 {
        caller
            .audit(
                ctx,
                "database.load_coordinates",
                PARTS_DB,
                json!({"source": source, "loaded": done.loaded, "skipped": file.skipped_lines.len(),
                       "positions_updated": done.positions_updated}),
            )
            .await;
        ctx.record(Activity::Write { database: PARTS_DB, action: "database.load_coordinates", writes: 1 })
            .await;
    }
    Ok(done)
}

/// `Backups.Backup` of one database (`Reason::Manual`), without progress.
pub async fn backup_now(ctx: &Context, caller: &Caller, db: &str) -> Result<crate::backup::service::Outcome> {
    let o = ctx.backups().backup(db, crate::backup::manifest::Reason::Manual, &|_| {}).await?;
    caller.audit(ctx, "sync.backup", db, json!({"key": o.version.key, "uploaded": o.uploaded})).await;
    Ok(o)
}

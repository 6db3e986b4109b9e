//! Write entry points shared by the gRPC handlers and the web scanner
//! (`crate::web`): each does what the handler of the same name in
//! [`super::assembly`], [`super::positions`], [`super::parts`] and
//! [`super::snap`] does — the same db call (rules inside the write
//! transaction), the same audit entry and the same write count for the
//! backup scheduler — so a scan recorded from a phone and one recorded with
//! casmanctl are one and the same write. Thin by design: when a handler's
//! write path changes, this changes with it.

use serde_json::json;

use crate::context::caller::Caller;
use crate::{
    context::Context,
    db::activity::Activity,
    db::{
        PARTS_DB, boards, parts,
        positions::{self, Assigned},
    },
    error::Result,
    inventory::{CsvFile, Edge, GridCode, PartType, Polarization, SnapBoard, SnapBoardId},
};

/// `Assembly.Connect`: records `source -> target` (ids as scanned), through
/// the group commit ([`Context::connect`]).
pub async fn connect(ctx: &Context, caller: &Caller, source: &str, target: &str) -> Result<Edge> {
    ctx.connect(caller, source, target).await
}

/// `Assembly.Disconnect`: ends the connection between `a` and `b`.
pub async fn disconnect(ctx: &Context, caller: &Caller, a: &str, b: &str) -> Result<Edge> {
    ctx.disconnect(caller, a, b).await
}

/// `Assembly.RemovePart`: ends every connection of `part`.
pub async fn remove_part(ctx: &Context, caller: &Caller, part: &str) -> Result<Vec<Edge>> {
    ctx.remove_part(caller, part).await
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
    let detail = json!({"antenna": antenna, "grid_code": code.to_string(), "force": force,
                        "previous": a.previous, "evicted": a.evicted});
    caller.audit_write(ctx, "positions.assign", PARTS_DB, detail).await;
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
        let detail = json!({"source": source, "loaded": ids(&done.inserted), "updated": ids(&done.updated),
                            "unchanged": done.unchanged.len()});
        caller.audit_write(ctx, "database.load_snap_boards", PARTS_DB, detail).await;
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
        let detail = json!({"source": source, "loaded": done.loaded, "skipped": file.skipped_lines.len(),
                            "positions_updated": done.positions_updated});
        caller.audit_write(ctx, "database.load_coordinates", PARTS_DB, detail).await;
    }
    Ok(done)
}

/// `Backups.Backup` of one database (`Reason::Manual`), reporting to `progress`.
pub async fn backup_now(
    ctx: &Context,
    caller: &Caller,
    db: &str,
    progress: crate::backup::service::ProgressFn<'_>,
) -> Result<crate::backup::service::Outcome> {
    let o = ctx.backups().backup(db, crate::backup::manifest::Reason::Manual, progress).await?;
    caller.audit(ctx, "sync.backup", db, json!({"key": o.version.key, "uploaded": o.uploaded})).await;
    Ok(o)
}

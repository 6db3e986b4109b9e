//! Antenna grid positions and grid coordinates.

use serde_json::json;

use super::{Context, caller::Caller};
use crate::{
    db::{
        PARTS_DB,
        positions::{self, Assigned, CoordinatesLoaded, PositionRow},
    },
    error::Result,
    inventory::{CsvFile, GridCode, GridPosition},
};

/// What loading a coordinates file did.
#[derive(Debug, Clone)]
pub struct CoordinatesLoad {
    /// Rows written and antenna positions updated.
    pub done: CoordinatesLoaded,
    /// Lines left out: blank lines and rows skipped as bad.
    pub skipped: usize,
}

impl Context {
    /// Places base antenna `antenna` at `code` for `caller`; `force` evicts
    /// an occupant and moves an antenna placed elsewhere.
    pub async fn assign_position(
        &self,
        caller: &Caller,
        antenna: &str,
        code: GridCode,
        notes: Option<&str>,
        force: bool,
    ) -> Result<Assigned> {
        let a = positions::assign(&self.dbs().parts, antenna, code, notes, force).await?;
        let detail = json!({"antenna": antenna, "grid_code": code.to_string(), "force": force,
                            "previous": a.previous, "evicted": a.evicted});
        caller.audit_write(self, "positions.assign", PARTS_DB, detail).await;
        Ok(a)
    }

    /// Removes the position of base antenna `antenna`; `None` when it had none
    /// (nothing written, nothing audited).
    pub async fn remove_position(&self, caller: &Caller, antenna: &str) -> Result<Option<PositionRow>> {
        let removed = positions::remove(&self.dbs().parts, antenna).await?;
        if let Some(r) = &removed {
            let detail = json!({"antenna": antenna, "grid_code": r.grid_code});
            caller.audit_write(self, "positions.remove", PARTS_DB, detail).await;
        }
        Ok(removed)
    }

    /// Loads the coordinates of a parsed file (all or nothing); `bad_rows`
    /// rows were already left out by the parser (`--skip-bad-rows`). The
    /// skipped count, audited and answered, is the file's blank lines plus
    /// those rows, whichever door the file came through.
    pub async fn load_coordinates(
        &self,
        caller: &Caller,
        file: &CsvFile<GridPosition>,
        bad_rows: usize,
        source: &str,
    ) -> Result<CoordinatesLoad> {
        let rows: Vec<_> = file.rows.iter().map(|n| n.row.clone()).collect();
        let done = positions::load_coordinates(&self.dbs().parts, &rows).await?;
        let skipped = file.skipped_lines.len() + bad_rows;
        if done.loaded > 0 {
            let detail = json!({"source": source, "loaded": done.loaded, "skipped": skipped,
                                "positions_updated": done.positions_updated});
            caller.audit_write(self, "database.load_coordinates", PARTS_DB, detail).await;
        }
        Ok(CoordinatesLoad { done, skipped })
    }
}

//! Parts and SNAP boards in parts.db.

use serde_json::json;

use super::{Context, caller::Caller};
use crate::{
    db::{PARTS_DB, activity::Activity, boards, parts},
    error::Result,
    inventory::{CsvFile, PartType, Polarization, SnapBoard, SnapBoardId},
};

impl Context {
    /// Generates `count` new parts of `part_type`/`pol` for `caller`, numbered
    /// within this site's `part_number_range`; parts.db is backed up soon after.
    pub async fn add_parts(
        &self,
        caller: &Caller,
        part_type: PartType,
        pol: Polarization,
        count: u32,
    ) -> Result<Vec<parts::PartRow>> {
        let numbers = self.config().part_numbers().unwrap_or(1..=99_999);
        let rows =
            parts::generate(&self.dbs().parts, &self.dbs().state, part_type, pol, count, numbers).await?;
        let numbers: Vec<&str> = rows.iter().map(|r| r.part_number.as_str()).collect();
        let detail = json!({"part_type": part_type.name(), "polarization": pol.as_str(), "count": count,
                            "first": numbers.first(), "last": numbers.last()});
        caller.audit_activity(self, "parts.add", PARTS_DB, detail, Activity::PartsGenerated { count }).await;
        Ok(rows)
    }

    /// Loads the SNAP boards of a parsed file (all or nothing).
    pub async fn load_snap_boards(
        &self,
        caller: &Caller,
        file: &CsvFile<SnapBoard>,
        source: &str,
    ) -> Result<boards::BoardsLoaded> {
        let done = boards::load(&self.dbs().parts, &file.rows).await?;
        if !done.inserted.is_empty() || !done.updated.is_empty() {
            let ids = |b: &[SnapBoardId]| b.iter().map(ToString::to_string).collect::<Vec<_>>();
            let detail = json!({"source": source, "loaded": ids(&done.inserted), "updated": ids(&done.updated),
                                "unchanged": done.unchanged.len()});
            caller.audit_write(self, "database.load_snap_boards", PARTS_DB, detail).await;
        }
        Ok(done)
    }
}

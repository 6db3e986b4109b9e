//! Parts and SNAP boards in parts.db.

use serde_json::json;

use std::ops::RangeInclusive;

use super::{Context, caller::Caller};
use crate::{
    db::{PARTS_DB, activity::Activity, boards, issued, leases, parts},
    error::{Error, Result},
    inventory::{
        CsvFile, PartType, Polarization, SnapBoard, SnapBoardId,
        leases::{Ask, usable_block},
        next_numbers,
    },
};

impl Context {
    /// Generates `count` new parts of `part_type`/`pol` for `caller`, numbered
    /// from a block of numbers this site leased (within its
    /// `part_number_range`): no other site issues the same numbers, even
    /// offline. Without a backup store (backend `none`) the site is alone and
    /// numbers come from the range directly. parts.db is backed up soon after.
    pub async fn add_parts(
        &self,
        caller: &Caller,
        part_type: PartType,
        pol: Polarization,
        count: u32,
    ) -> Result<Vec<parts::PartRow>> {
        let range = self.config().part_numbers().unwrap_or(1..=99_999);
        // Bad input is refused before anything is leased.
        next_numbers(None, count)?;
        // One generation at a time: the block chosen is the block written.
        let _one = self.inner.generating.lock().await;
        let numbers = if self.backups().store().is_none() || !part_type.generatable() {
            range
        } else {
            self.leased_block(part_type, pol, count, range).await?
        };
        let rows =
            parts::generate(&self.dbs().parts, &self.dbs().state, part_type, pol, count, numbers).await?;
        let numbers: Vec<&str> = rows.iter().map(|r| r.part_number.as_str()).collect();
        let detail = json!({"part_type": part_type.name(), "polarization": pol.as_str(), "count": count,
                            "first": numbers.first(), "last": numbers.last()});
        caller.audit_activity(self, "parts.add", PARTS_DB, detail, Activity::PartsGenerated { count }).await;
        Ok(rows)
    }

    /// A block of this site's with room for `count` more numbers of
    /// (`t`, `pol`) after the highest issued in it and after any number
    /// issued outside every known block ([`usable_block`]); if none, the
    /// blocks are read again from the store (numbers learned from other
    /// sites may lie in blocks not known here yet), and else a new block is
    /// leased. Offline with no room left, refused with why and what to do.
    async fn leased_block(
        &self,
        t: PartType,
        pol: Polarization,
        count: u32,
        range: RangeInclusive<u32>,
    ) -> Result<RangeInclusive<u32>> {
        let state = &self.dbs().state;
        let site = &self.config().site_id;
        let (lo, hi) = (*range.start(), *range.end());
        let known = issued::load(state).await?;
        // Numbers in parts.db count as issued too (another program's rows).
        let mut issued_runs = known.runs(t, pol).to_vec();
        let in_file = parts::highest_row(&self.dbs().parts, t, pol, lo, hi).await?;
        issued_runs.extend(in_file.map(|n| (n, n)));
        let choose =
            |blocks: &[(u32, u32, String)]| usable_block(blocks, site, &issued_runs, count, (lo, hi));
        let blocks = leases::known(state, t, pol).await?;
        let mut choice = choose(&blocks);
        if choice.block.is_none() && !choice.own.is_empty() && self.backups().refresh_leases().await.is_ok() {
            choice = choose(&leases::known(state, t, pol).await?);
        }
        if let Some(b) = choice.block {
            return Ok(b);
        }
        let issued = known.highest_in(t, pol, lo, hi).max(in_file);
        let ask = Ask { part_type: t, pol, want: count, range: (lo, hi), issued };
        match self.backups().lease_block(&ask).await {
            Ok((block, all)) => {
                leases::record(state, &all).await?;
                Ok(block.first..=block.last)
            }
            Err(e) if e.store_unusable() => {
                let held = if choice.own.is_empty() {
                    "this site holds no block of them yet".to_owned()
                } else {
                    let listed: Vec<String> = choice.own.iter().map(|(a, b)| format!("{a}-{b}")).collect();
                    let why = match choice.outside {
                        Some(o) => format!(
                            "; {o} was issued outside every block known here, and is never issued below"
                        ),
                        None => String::new(),
                    };
                    format!(
                        "this site's blocks ({}) have fewer than {count} numbers left{why}",
                        listed.join(", ")
                    )
                };
                Err(Error::refused(format!(
                    "cannot issue {count} {} {} number(s): {held}, and a new block cannot be leased: {e}. \
                     Numbers are leased from the backup store so that no two sites issue the same number; \
                     reconnect to the store and try again (or add fewer parts)",
                    t.name(),
                    pol.as_str()
                )))
            }
            Err(e) => Err(e),
        }
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

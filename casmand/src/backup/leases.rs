//! The store's record of leased part-number blocks,
//! `leases/part_numbers.json`, updated by compare-and-swap (see
//! `crate::inventory::leases` for the rules).

use super::{
    service::BackupService,
    store::{Precondition, StoreError},
};
use crate::{
    error::{Error, Result},
    inventory::leases::{Ask, Block, Leases},
    timestamp,
};

/// The object's key.
pub const KEY: &str = "leases/part_numbers.json";

/// How many times a lost race (another site leased meanwhile) is retried.
const RACE_RETRIES: u32 = 16;

impl BackupService {
    /// Leases the next block `ask` describes for this site: reads the
    /// store's record and writes it back with the new block if nobody
    /// changed it meanwhile (else reads again). Returns the new block and
    /// the record as written (every site's blocks).
    pub async fn lease_block(&self, ask: &Ask) -> Result<(Block, Vec<Block>)> {
        for _ in 0..RACE_RETRIES {
            let (mut leases, etag) = self.read_leases().await?;
            let block = leases
                .next_block(&self.site, ask, &timestamp::now())
                .map_err(|e| Error::refused(e.to_string()))?;
            leases.blocks.push(block.clone());
            let bytes =
                serde_json::to_vec_pretty(&leases).map_err(|e| Error::internal("writing leases", e))?;
            let cond = etag.map_or(Precondition::Absent, Precondition::Matches);
            match self.store.put_bytes(KEY, bytes, Some(cond)).await {
                Ok(_) => {
                    tracing::info!(part_type = %block.part_type, polarization = %block.polarization,
                        first = block.first, last = block.last, "leased a block of part numbers");
                    return Ok((block, leases.blocks));
                }
                Err(StoreError::PreconditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Aborted(format!("{KEY} kept changing (other sites leasing); try again")))
    }

    /// The store's record and its entity tag (`None`: no record yet).
    async fn read_leases(&self) -> Result<(Leases, Option<String>)> {
        match self.store.get_bytes(KEY, None).await {
            Ok(Some((bytes, etag))) => {
                // Not the caller's input: a record damaged in the store.
                let l: Leases = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::refused(format!(
                        "{KEY} in the backup store is not a valid lease record ({e}); no number was issued: \
                         put back a good copy of it (every site keeps the blocks it read in state.db, table part_leases)"
                    ))
                })?;
                Ok((l, Some(etag)))
            }
            Ok(None) | Err(StoreError::NotFound(_)) => Ok((Leases { format: 1, blocks: Vec::new() }, None)),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads every site's blocks from the store into state.db (one GET):
    /// the numbers other sites issued, learned at a sync, then count as
    /// inside their blocks, not as numbers issued outside the lease system.
    pub async fn refresh_leases(&self) -> Result<()> {
        let (leases, _) = self.read_leases().await?;
        crate::db::leases::record(&self.dbs.state, &leases.blocks).await
    }

    /// [`Self::refresh_leases`] where a failure only costs a later lease:
    /// logged, never failing the sync that asked for it.
    pub(super) async fn refresh_leases_quietly(&self) {
        if self.store.is_none() {
            return;
        }
        if let Err(e) = self.refresh_leases().await {
            tracing::warn!(error = %e, "could not read the part-number leases from the store");
        }
    }
}

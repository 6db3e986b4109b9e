//! The blocks of part numbers leased by the sites, as this site last read
//! them from the store (state.db table `part_leases`; see
//! `crate::inventory::leases`).

use super::Db;
use crate::{
    error::Result,
    inventory::{PartType, Polarization, leases::Block},
};

/// The known blocks of (`t`, `pol`), lowest first, as (first, last, site).
pub async fn known(state: &Db, t: PartType, pol: Polarization) -> Result<Vec<(u32, u32, String)>> {
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT first, last, site FROM part_leases WHERE part_type = ? AND polarization = ? ORDER BY first",
    )
    .bind(t.name())
    .bind(pol.as_str())
    .fetch_all(&*state.reader().await)
    .await?;
    Ok(rows.into_iter().map(|(a, b, s)| (a.clamp(1, 99_999) as u32, b.clamp(1, 99_999) as u32, s)).collect())
}

/// Records `blocks` (one transaction); blocks already known are kept.
pub async fn record(state: &Db, blocks: &[Block]) -> Result<()> {
    let rows: Vec<serde_json::Value> = blocks
        .iter()
        .map(|b| serde_json::json!([b.part_type, b.polarization, b.first, b.last, b.site, b.leased_at]))
        .collect();
    sqlx::query(
        "INSERT OR IGNORE INTO part_leases (part_type, polarization, first, last, site, leased_at)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?)",
    )
    .bind(serde_json::Value::from(rows).to_string())
    .execute(&*state.writer().await)
    .await?;
    Ok(())
}

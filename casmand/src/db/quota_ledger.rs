//! The quota ledger's rows in state.db: `quota_ledger` (one row per UTC
//! month: Class A, Class B, free requests, backups, restores) and
//! `quota_storage` (stored bytes and versions per database).

use super::Db;
use crate::error::Result;

/// Adds `counts` (`(month, [class_a, class_b, free, backups, restores])`) to
/// their months and sets the stored bytes and versions of each database, in
/// one transaction.
pub async fn write(db: &Db, counts: &[(String, [u64; 5])], storage: &[(String, u64, u64)]) -> Result<()> {
    let now = crate::timestamp::now();
    let mut tx = db.writer().await.begin().await?;
    for (month, [class_a, class_b, free, backups, restores]) in counts {
        sqlx::query(
            "INSERT INTO quota_ledger (month, class_a, class_b, free, backups, restores, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (month) DO UPDATE SET
                 class_a = class_a + excluded.class_a, class_b = class_b + excluded.class_b,
                 free = free + excluded.free, backups = backups + excluded.backups,
                 restores = restores + excluded.restores, updated_at = excluded.updated_at",
        )
        .bind(month)
        .bind(*class_a as i64)
        .bind(*class_b as i64)
        .bind(*free as i64)
        .bind(*backups as i64)
        .bind(*restores as i64)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    for (database, bytes, versions) in storage {
        sqlx::query(
            "INSERT INTO quota_storage (database, stored_bytes, versions, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (database) DO UPDATE SET stored_bytes = excluded.stored_bytes,
                 versions = excluded.versions, updated_at = excluded.updated_at",
        )
        .bind(database)
        .bind(*bytes as i64)
        .bind(*versions as i64)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The counts of `month` (`[class_a, class_b, free, backups, restores]`,
/// zero when none) and every database's `(name, stored bytes, versions)`.
pub async fn load(db: &Db, month: &str) -> Result<([u64; 5], Vec<(String, u64, u64)>)> {
    let row: Option<(i64, i64, i64, i64, i64)> =
        sqlx::query_as("SELECT class_a, class_b, free, backups, restores FROM quota_ledger WHERE month = ?")
            .bind(month)
            .fetch_optional(&*db.reader().await)
            .await?;
    let n = |v: i64| v.max(0) as u64;
    let counts = row.map(|(a, b, f, k, r)| [n(a), n(b), n(f), n(k), n(r)]).unwrap_or_default();
    let storage: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT database, stored_bytes, versions FROM quota_storage")
            .fetch_all(&*db.reader().await)
            .await?;
    Ok((counts, storage.into_iter().map(|(d, b, v)| (d, n(b), n(v))).collect()))
}

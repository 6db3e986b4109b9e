//! Maintenance's records in state.db: when each stored version was last
//! downloaded and checked (`verified_versions`), and the runs
//! (`maintenance_runs`).

use std::collections::HashMap;

use super::Db;
use crate::error::Result;

/// When each of `keys` was last verified (UTC ISO), for those ever verified.
pub async fn verified_at(state: &Db, keys: &[String]) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, verified_at FROM verified_versions")
        .fetch_all(&*state.reader().await)
        .await?;
    Ok(rows.into_iter().filter(|(k, _)| keys.contains(k)).collect())
}

/// Keys whose last verification failed.
pub async fn failed_verifications(state: &Db) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT key FROM verified_versions WHERE NOT ok")
        .fetch_all(&*state.reader().await)
        .await?)
}

/// Records that `key` (of `database`) was verified now, and what failed.
pub async fn record_verification(state: &Db, key: &str, database: &str, problem: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO verified_versions (key, database, verified_at, ok, problem) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET verified_at = excluded.verified_at, ok = excluded.ok,
             problem = excluded.problem",
    )
    .bind(key)
    .bind(database)
    .bind(crate::timestamp::now())
    .bind(problem.is_none())
    .bind(problem)
    .execute(&*state.writer().await)
    .await?;
    Ok(())
}

/// Drops the records of versions that no longer exist.
pub async fn forget_verifications(state: &Db, present: &[String]) -> Result<()> {
    let known: Vec<String> =
        sqlx::query_scalar("SELECT key FROM verified_versions").fetch_all(&*state.reader().await).await?;
    for key in known.iter().filter(|k| !present.contains(k)) {
        sqlx::query("DELETE FROM verified_versions WHERE key = ?")
            .bind(key)
            .execute(&*state.writer().await)
            .await?;
    }
    Ok(())
}

/// Records a maintenance run (its time, summary and JSON report); keeps the last 60.
pub async fn record_run(state: &Db, at: &str, summary: &str, json: &str) -> Result<()> {
    sqlx::query("INSERT INTO maintenance_runs (at, summary, report) VALUES (?, ?, ?)")
        .bind(at)
        .bind(summary)
        .bind(json)
        .execute(&*state.writer().await)
        .await?;
    // Keep a year of weekly runs.
    sqlx::query("DELETE FROM maintenance_runs WHERE id NOT IN (SELECT id FROM maintenance_runs ORDER BY id DESC LIMIT 60)")
        .execute(&*state.writer().await)
        .await?;
    Ok(())
}

/// When maintenance last ran and its summary.
pub async fn last_maintenance(state: &Db) -> Option<(String, String)> {
    sqlx::query_as("SELECT at, summary FROM maintenance_runs ORDER BY id DESC LIMIT 1")
        .fetch_optional(&*state.reader().await)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the last maintenance run");
            None
        })
}

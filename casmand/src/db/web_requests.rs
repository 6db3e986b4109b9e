//! Request ids the web scanner has answered (state.db `web_requests`): a
//! write retried after a lost answer, or tapped twice, gets the first answer
//! back instead of being recorded again. Kept [`KEEP_DAYS`] days.

use super::Db;
use crate::{error::Result, timestamp};

/// How long an answered request id is remembered.
pub const KEEP_DAYS: u64 = 7;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Answered {
    /// Who sent it.
    pub operator: String,
    /// What it did (`scan.connect`, ...).
    pub action: String,
    /// The JSON answer given.
    pub response: String,
}

/// The answer already given to `request_id`, if any.
pub async fn get(state: &Db, request_id: &str) -> Result<Option<Answered>> {
    Ok(sqlx::query_as("SELECT operator, action, response FROM web_requests WHERE request_id = ?")
        .bind(request_id)
        .fetch_optional(&*state.reader().await)
        .await?)
}

/// Remembers the answer to `request_id` and forgets ids older than [`KEEP_DAYS`].
pub async fn put(state: &Db, request_id: &str, operator: &str, action: &str, response: &str) -> Result<()> {
    let mut tx = state.writer().await.begin().await?;
    sqlx::query("DELETE FROM web_requests WHERE at < ?")
        .bind(timestamp::ago(std::time::Duration::from_secs(KEEP_DAYS * 86_400)))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO web_requests (request_id, at, operator, action, response) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(request_id)
    .bind(timestamp::now())
    .bind(operator)
    .bind(action)
    .bind(response)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

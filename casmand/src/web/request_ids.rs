//! Idempotent writes: every scanner write carries a `request_id` chosen by
//! the page (random, one per intended write, reused by its Retry). The first
//! request with an id does the write and its answer is stored in state.db
//! ([`crate::db::web_requests`], kept 7 days); any later request with the id
//! gets that answer back, marked `"replayed": true`, and writes nothing. Two
//! requests with one id at the same moment (a double tap) are serialised.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use serde_json::Value;

use super::{json::ApiError, signin::Operator};
use crate::{
    db::{Db, web_requests},
    error::Error,
};

/// Request ids being worked on right now.
#[derive(Debug, Default)]
pub struct InFlight {
    ids: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Checks the shape of a request id: 8 to 64 of `A-Z a-z 0-9 - _`.
pub fn check_id(id: &str) -> Result<&str, Error> {
    let ok = (8..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(Error::invalid(format!(
            "request_id {id:?}: expected 8 to 64 letters, digits, '-' or '_' (the page sends one with every write)"
        )))
    }
}

impl InFlight {
    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut ids = self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ids.entry(id.to_owned()).or_default().clone()
    }

    fn release(&self, id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut ids = self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Two references: the map's and ours. More means someone waits on it.
        if Arc::strong_count(&lock) <= 2 {
            ids.remove(id);
        }
    }

    /// Runs `write` once for `request_id`; a repeat gets the stored answer.
    pub async fn once<F>(
        &self,
        state: &Db,
        op: &Operator,
        action: &str,
        request_id: &str,
        write: F,
    ) -> Result<Value, ApiError>
    where
        F: Future<Output = Result<Value, Error>>,
    {
        let id = check_id(request_id.trim())?;
        let lock = self.lock_for(id);
        let result = {
            let _held = lock.lock().await;
            Self::run(state, op, action, id, write).await
        };
        self.release(id, lock);
        result
    }

    async fn run<F>(state: &Db, op: &Operator, action: &str, id: &str, write: F) -> Result<Value, ApiError>
    where
        F: Future<Output = Result<Value, Error>>,
    {
        if let Some(done) = web_requests::get(state, id).await? {
            if done.operator != op.name || done.action != action {
                return Err(ApiError(Error::AlreadyExists(format!(
                    "request_id {id} was already used by {} for {}; the page must pick a new id for a new write",
                    done.operator, done.action
                ))));
            }
            let mut v: Value = serde_json::from_str(&done.response)
                .map_err(|e| Error::internal("reading a stored web answer", e))?;
            v["replayed"] = Value::Bool(true);
            return Ok(v);
        }
        let v = write.await?;
        if let Err(e) = web_requests::put(state, id, &op.name, action, &v.to_string()).await {
            // The write is committed; failing now would invite a second one.
            tracing::warn!(request_id = id, error = %e, "could not remember a web request id");
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(check_id("0123abcd-ef").is_ok());
        assert!(check_id("short").is_err());
        assert!(check_id("has space in it").is_err());
        assert!(check_id(&"x".repeat(65)).is_err());
    }
}

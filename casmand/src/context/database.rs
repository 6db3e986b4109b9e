//! Whole-database operations: clearing a table.

use serde_json::json;

use super::{Context, caller::Caller};
use crate::{
    db::{ASSEMBLED_DB, Db, PARTS_DB, whole},
    error::{Error, Result},
};

impl Context {
    /// The inventory database named `name` (`parts.db` or `parts`,
    /// `assembled_casm.db` or `assembled`).
    pub fn inventory_db(&self, name: &str) -> Result<&Db> {
        match name.trim() {
            PARTS_DB | "parts" => Ok(&self.dbs().parts),
            ASSEMBLED_DB | "assembled" => Ok(&self.dbs().assembled),
            other => {
                Err(Error::invalid(format!("database {other:?}: expected parts.db or assembled_casm.db")))
            }
        }
    }

    /// Deletes every row of the main table of database `name` for `caller`,
    /// who must confirm with the database's file name; a safety copy is
    /// kept. (Who may clear is the door's to decide: an admin.)
    pub async fn clear_database(&self, caller: &Caller, name: &str, confirm: &str) -> Result<whole::Cleared> {
        let db = self.inventory_db(name)?;
        if confirm.trim() != db.name {
            return Err(Error::invalid(format!(
                "clearing {} needs confirmation: confirm must be {:?}, got {:?}",
                db.name,
                db.name,
                confirm.trim()
            )));
        }
        let cleared = whole::clear(db, &self.dbs().state).await?;
        let detail = json!({"rows_deleted": cleared.rows_deleted, "safety_copy": cleared.safety_copy});
        caller.audit_write(self, "database.clear", db.name, detail).await;
        Ok(cleared)
    }
}

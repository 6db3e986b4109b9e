//! Who sent a request, whatever door it came through: the one "who" of the
//! audit log. Each adapter makes it from its transport (`api::caller` from
//! a gRPC request, `web::signin` from a signed-in operator); only this
//! module's operations ([`super`]) write audit entries from it.

use super::Context;
use crate::{
    db::audit::{self, AuditEntry},
    peer::Peer,
};

/// The sender of a request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Socket peer credentials.
    pub peer: Option<Peer>,
    /// Operator name, if given.
    pub operator: Option<String>,
    /// The address an HTTP request came from (`192.0.2.7`); `None` on the socket.
    pub client: Option<String>,
}

impl Caller {
    /// The audit entry of `action` on `database` by this caller.
    pub(super) fn entry<'a>(
        &'a self,
        action: &'a str,
        database: &'a str,
        detail: serde_json::Value,
    ) -> AuditEntry<'a> {
        AuditEntry {
            peer: self.peer,
            operator: self.operator.as_deref(),
            client: self.client.as_deref(),
            action,
            database,
            detail,
        }
    }

    /// Appends a mutating request to the audit log; a failure to record is
    /// logged, never turned into a failed request (the change is already committed).
    pub(super) async fn audit(&self, ctx: &Context, action: &str, database: &str, detail: serde_json::Value) {
        self.audit_counting(ctx, action, database, detail, None).await
    }

    /// Audits a mutating request and records its `activity` (write count in
    /// the same state.db transaction, then announced).
    pub(super) async fn audit_activity(
        &self,
        ctx: &Context,
        action: &str,
        database: &str,
        detail: serde_json::Value,
        activity: crate::db::activity::Activity,
    ) {
        self.audit_counting(ctx, action, database, detail, activity.counted()).await;
        ctx.activity().publish(activity);
    }

    /// Audits a request that wrote `database` once: the audit entry and the
    /// write count in one transaction, then announced, under the one name
    /// `action`.
    pub(super) async fn audit_write(
        &self,
        ctx: &Context,
        action: &'static str,
        database: &'static str,
        detail: serde_json::Value,
    ) {
        let write = crate::db::activity::Activity::Write { database, action, writes: 1 };
        self.audit_activity(ctx, action, database, detail, write).await;
    }

    async fn audit_counting(
        &self,
        ctx: &Context,
        action: &str,
        database: &str,
        detail: serde_json::Value,
        writes: Option<(&'static str, u32)>,
    ) {
        let entry = self.entry(action, database, detail.clone());
        if let Err(e) = audit::record_counting(&ctx.dbs().state, entry, writes).await {
            tracing::warn!(action, error = %e, "could not write the audit log");
        }
        self.log_applied(action, database, &detail);
    }

    /// Logs an applied request ("request applied", with the journal fields),
    /// once its audit entry is written.
    pub(super) fn log_applied(&self, action: &str, database: &str, detail: &serde_json::Value) {
        // Field names: see crate::logging (CASMAN_OPERATION, CASMAN_PART, ... in the journal).
        tracing::info!(
            operation = action,
            database,
            part = part_numbers(detail).as_deref(),
            key = detail.get("key").and_then(|k| k.as_str()),
            peer_uid = self.peer.map(|p| p.uid),
            operator = self.operator.as_deref(),
            client = self.client.as_deref(),
            detail = %detail,
            "request applied"
        );
    }
}

/// Part numbers named in an audit detail (`part`, `source`/`target` of a
/// connection, `antenna`, `parts`), space-separated, for the log's `part` field.
fn part_numbers(detail: &serde_json::Value) -> Option<String> {
    let mut out = Vec::new();
    for field in ["part", "source", "target", "antenna", "parts"] {
        match detail.get(field) {
            Some(serde_json::Value::String(s)) if !s.contains('/') => out.push(s.clone()),
            Some(serde_json::Value::Array(a)) => {
                out.extend(a.iter().filter_map(|v| v.as_str()).map(str::to_owned));
            }
            _ => {}
        }
    }
    (!out.is_empty()).then(|| out.join(" "))
}

//! `[health]`: when casmand stops calling its backups healthy
//! (`grpc.health.v1` of `casman.v1.Backups`, `casmanctl status --check`, the
//! web `/status` page and `casman_health_*` on `/metrics`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Health thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// The backups are unhealthy once the oldest write not yet in a stored
    /// backup is older than this.
    #[serde(with = "crate::config::duration")]
    pub backup_stale_after: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { backup_stale_after: Duration::from_secs(6 * 3600) }
    }
}

//! Serde for the configuration's durations: read as humantime strings
//! (`"24h"`, `"90m"`, `"7d"`), written back as the README writes them
//! ([`casman_proto::duration::format`]), so `casmanctl config` and
//! `casmand --print-config` print `7d`, not `7days`.

use std::time::Duration;

use serde::{Deserializer, Serializer};

/// Writes `d` as `24h`, `7d`, `90s`.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&casman_proto::duration::format(*d))
}

/// Reads a humantime string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    humantime_serde::deserialize(d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_defaults_print_as_the_example_file_writes_them() {
        let shown = toml::to_string(&crate::config::Config::default()).unwrap_or_default();
        for line in [
            "shutdown_timeout = \"10s\"",
            "backup_on_hours = \"24h\"",
            "maintenance_interval = \"7d\"",
            "retry_initial = \"30s\"",
            "retry_max = \"1h\"",
            "verify_period = \"30d\"",
        ] {
            assert!(shown.contains(line), "{line:?} not in:\n{shown}");
        }
    }
}

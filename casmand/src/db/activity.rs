//! Write activity: every mutating request announces what it changed, so that
//! the backup scheduler can count writes and back up after part generation.

use tokio::sync::broadcast;

/// Something that changed a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Rows were written to `database` by request `action`.
    Write {
        /// File name of the database.
        database: &'static str,
        /// What was done (`scan.connect`, `positions.assign`, ...).
        action: &'static str,
        /// Number of writes it counts as.
        writes: u32,
    },
    /// A database file was replaced by a restore or a sync.
    Restored {
        /// File name of the database.
        database: &'static str,
    },
    /// Changes made at other sites were applied to `database` (the change
    /// exchange): not counted for backups (they are in the store already).
    Received {
        /// File name of the database.
        database: &'static str,
        /// Changes applied.
        changes: u64,
    },
    /// A batch of parts was generated: parts.db is backed up at once.
    PartsGenerated {
        /// Parts in the batch.
        count: u32,
    },
}

impl Activity {
    /// The database and number of writes this counts as for the backup
    /// triggers (a restore counts none: the file was replaced, not written).
    pub fn counted(&self) -> Option<(&'static str, u32)> {
        match self {
            Activity::Write { database, writes, .. } => Some((*database, *writes)),
            Activity::PartsGenerated { .. } => Some((super::PARTS_DB, 1)),
            Activity::Restored { .. } | Activity::Received { .. } => None,
        }
    }
}

/// Sender side of the activity channel (cheap to clone).
#[derive(Debug, Clone)]
pub struct ActivityBus {
    tx: broadcast::Sender<Activity>,
}

impl Default for ActivityBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        ActivityBus { tx }
    }
}

impl ActivityBus {
    /// Announces `activity` to every subscriber (none is fine).
    pub fn publish(&self, activity: Activity) {
        let _ = self.tx.send(activity);
    }

    /// A receiver of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Activity> {
        self.tx.subscribe()
    }
}

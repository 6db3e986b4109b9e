-- The scheduler: when the first write not yet in a backup happened (the
-- time trigger counts from it), and backups that failed and wait for a retry.
ALTER TABLE activity ADD COLUMN first_unsaved_write_at TEXT;

CREATE TABLE IF NOT EXISTS pending_backups (
    database TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    first_failed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT
);

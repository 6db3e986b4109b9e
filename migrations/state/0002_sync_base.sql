-- The version each database descends from (its sync base): set by every
-- stored backup, restore and sync. A backup's parent is the base; a restore
-- recorded here is not undone by the next sync.
CREATE TABLE sync_base (
    database TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    set_at TEXT NOT NULL,
    reason TEXT NOT NULL
);

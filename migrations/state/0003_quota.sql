-- The object-store ledger (R2 free tier), maintenance bookkeeping and the
-- queue of backups waiting to be retried.

-- Requests this site made per calendar month (UTC, 'YYYY-MM'), by R2 billing
-- class, and the backups and restores it did. A new month is a new row: the
-- monthly reset happens by construction.
CREATE TABLE quota_ledger (
    month TEXT PRIMARY KEY,
    class_a INTEGER NOT NULL DEFAULT 0,
    class_b INTEGER NOT NULL DEFAULT 0,
    free INTEGER NOT NULL DEFAULT 0,
    backups INTEGER NOT NULL DEFAULT 0,
    restores INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT
);

-- Bytes stored per database: the stored size of every version in its
-- manifest (all sites), as last read. Goes down when versions are deleted.
CREATE TABLE quota_storage (
    database TEXT PRIMARY KEY,
    stored_bytes INTEGER NOT NULL,
    versions INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

-- When maintenance last downloaded and checked each version.
CREATE TABLE verified_versions (
    key TEXT PRIMARY KEY,
    database TEXT NOT NULL,
    verified_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    problem TEXT
);

-- Maintenance runs: when, a one-line summary and the full report (JSON).
CREATE TABLE maintenance_runs (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    summary TEXT NOT NULL,
    report TEXT NOT NULL
);

-- Backups that failed and wait to be retried (written by the retry queue).
CREATE TABLE pending_backups (
    database TEXT PRIMARY KEY,
    reason TEXT,
    first_failed_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT
);

-- state.db: what casmand must not forget across restarts.

-- Audit log of mutating requests: who, what, when.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    uid INTEGER,
    gid INTEGER,
    pid INTEGER,
    operator TEXT,
    action TEXT NOT NULL,
    database TEXT,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

-- Write activity per database since its last stored backup.
CREATE TABLE activity (
    database TEXT PRIMARY KEY,
    writes_since_backup INTEGER NOT NULL DEFAULT 0,
    last_write_at TEXT,
    last_backup_at TEXT,
    last_backup_key TEXT
);

-- Facts about the daemon's own state (schema notes, legacy trackers read).
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

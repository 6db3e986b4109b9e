-- assembled_casm.db: the documented CAsMan schema (seeds/database-guide.md).
-- An append-only event log: one row per connect or disconnect scan.

CREATE TABLE IF NOT EXISTS assembly (
    id INTEGER PRIMARY KEY,
    part_number TEXT,
    part_type TEXT,
    polarization TEXT,
    scan_time TEXT,
    connected_to TEXT,
    connected_to_type TEXT,
    connected_polarization TEXT,
    connected_scan_time TEXT,
    connection_status TEXT DEFAULT 'connected'
);

CREATE TABLE IF NOT EXISTS legacy_values (
    id INTEGER PRIMARY KEY,
    table_name TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    column_name TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason TEXT NOT NULL,
    adopted_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS casman_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

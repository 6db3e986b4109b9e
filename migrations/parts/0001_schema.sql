-- parts.db: the documented CAsMan schema (seeds/database-guide.md), column for
-- column, so that every "Common Queries" example runs unchanged.
-- IF NOT EXISTS: on a database adopted from the Python tool, the adoption step
-- has already brought existing tables to this shape.

CREATE TABLE IF NOT EXISTS parts (
    id INTEGER PRIMARY KEY,
    part_number TEXT UNIQUE,
    part_type TEXT,
    polarization TEXT,
    date_created TEXT,
    date_modified TEXT
);

CREATE TABLE IF NOT EXISTS antenna_positions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    antenna_number TEXT UNIQUE NOT NULL,
    array_id TEXT NOT NULL,
    row_offset INTEGER NOT NULL CHECK(row_offset BETWEEN -999 AND 999),
    east_col INTEGER NOT NULL CHECK(east_col BETWEEN 0 AND 99),
    grid_code TEXT UNIQUE NOT NULL,
    assigned_at TEXT NOT NULL,
    notes TEXT,
    latitude REAL,
    longitude REAL,
    height REAL,
    coordinate_system TEXT,
    UNIQUE(array_id, row_offset, east_col)
);

CREATE TABLE IF NOT EXISTS snap_boards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chassis INTEGER NOT NULL CHECK(chassis BETWEEN 1 AND 4),
    slot TEXT NOT NULL CHECK(slot IN ('A','B','C','D','E','F','G','H','I','J','K')),
    serial_number TEXT UNIQUE NOT NULL,
    mac_address TEXT UNIQUE NOT NULL,
    ip_address TEXT UNIQUE NOT NULL,
    feng_id INTEGER UNIQUE NOT NULL CHECK(feng_id BETWEEN 0 AND 43),
    notes TEXT,
    date_added TEXT NOT NULL,
    date_modified TEXT,
    UNIQUE(chassis, slot)
);

-- The Python tool's coordinate table (spec section 2), loaded from grid_positions.csv.
CREATE TABLE IF NOT EXISTS grid_positions (
    grid_code TEXT PRIMARY KEY,
    latitude REAL NOT NULL,
    longitude REAL NOT NULL,
    height REAL NOT NULL,
    coordinate_system TEXT,
    notes TEXT
);

-- Every value casmand changed when adopting a file written by the Python tool.
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

-- casmand's facts about this file: adoption report, schema notes.
CREATE TABLE IF NOT EXISTS casman_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

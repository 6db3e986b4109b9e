-- The change exchange between sites (DESIGN.md "Sync between sites";
-- casmand::backup::exchange): sites publish their changes as segments in
-- the store and apply the segments of the others.

-- How far this file has applied each other site's segments (see the same
-- table in assembled_casm.db).
CREATE TABLE IF NOT EXISTS exchange_applied (
    site_id TEXT PRIMARY KEY,
    segment INTEGER NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID;

-- The newest change of each row, by its key (parts: part_number; antenna
-- positions: antenna_number; SNAP boards: serial_number; grid positions:
-- grid_code), in the total order (hlc; ties by site and sequence): a change
-- received from another site is applied only if it is newer than the row's
-- newest, so every site ends with the same rows whatever the order changes
-- arrive in. A deleted row keeps its entry (a later insert elsewhere wins,
-- an older one does not bring the row back). Written by casmand's stamping
-- triggers for its own changes and by the exchange for others'.
CREATE TABLE IF NOT EXISTS row_clock (
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    hlc INTEGER NOT NULL,
    site INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;

-- The changes recorded so far (stamped since the upgrade of issue 30).
INSERT OR REPLACE INTO row_clock (tbl, key, hlc, site, seq)
SELECT tbl, key, hlc, site, seq
  FROM (SELECT tbl, CASE tbl WHEN 'parts' THEN json_extract(row, '$.part_number')
                             WHEN 'antenna_positions' THEN json_extract(row, '$.antenna_number')
                             WHEN 'snap_boards' THEN json_extract(row, '$.serial_number')
                             WHEN 'grid_positions' THEN json_extract(row, '$.grid_code') END AS key,
               hlc, site, seq
          FROM change_log WHERE op <> 'clear' AND row IS NOT NULL ORDER BY hlc, site, seq)
 WHERE key IS NOT NULL;

-- Rows that could not both stand once changes made offline at two sites met
-- (an antenna at two positions, two antennas at one position, two boards in
-- one slot): the newer change in the total order holds the row, the other
-- stays in the change log, and the combination is listed here until either
-- row changes again (an ordinary change resolves it).
CREATE TABLE IF NOT EXISTS exchange_conflicts (
    id INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    -- The row that holds (the newer change) and the one that gave way.
    kept_key TEXT NOT NULL,
    lost_key TEXT NOT NULL,
    -- The clock of the newer of the two changes.
    hlc INTEGER NOT NULL,
    detail TEXT NOT NULL,
    found_at TEXT NOT NULL
);

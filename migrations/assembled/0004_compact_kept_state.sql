-- The kept current state, compact (issue 14): one row per pair ever seen,
-- naming the pair's newest event; everything else is read from the log by
-- rowid. Replaces the wide `active_connections` table of 0003 and the
-- (part, scan_time) / scan_time log indexes of 0002.
--
-- Accounting on the field-size fixture (100,000 events, every one a distinct
-- connected pair; dbstat, 4 KiB pages; the original file 10.5 MB):
--
--   before (0003)                              after (0004)
--   assembly                 10.5 MB           assembly                 10.5 MB
--   assembly_part             4.0 MB           assembly_part             1.9 MB  (part_number)
--   assembly_connected_to     4.0 MB           assembly_connected_to     1.9 MB  (connected_to)
--   assembly_scan_time        2.9 MB           -
--   active_connections        9.9 MB           pair_state                3.1 MB  (WITHOUT ROWID)
--   its 2 unique + 2 indexes  8.8 MB           pair_state_hi             2.6 MB
--   file                     40.2 MB (3.8x)    file                     20.0 MB (1.9x)
--   WAL after adoption       18.9 MB           WAL after adoption        0
--
-- (after adoption, which compacts the file with VACUUM; without it the
-- WITHOUT ROWID table filled in key order takes 3.5 MB and the file 21.5 MB.
-- Measure: `sqlite3 FILE "select name, sum(pgsize) from dbstat group by name"`.)
--
-- Why not less. With 100,000 active edges the rules need, in time that does
-- not grow with a pair's history (issue 13): the newest event of a pair (for
-- an event appended now, whether it is the newest: one key lookup), and the
-- pairs of a part from either end (the one-in/one-out rules, `chain PART`).
-- That is one row per pair keyed by it, and a second key by its other end:
-- at least 2 x 100,000 pairs of part ids, ~6 MB with B-tree overhead, however
-- the columns are arranged (a table of both orientations costs the same as
-- a table and an index). `history PART` needs the events of a part from
-- either end: one index per end of the log (without scan_time in the key: a
-- part's events are sorted in memory, and the rules no longer search the log
-- by time). 1.3x of the original leaves 3.2 MB for all of this, less than the
-- pair table alone; that layout does not exist for a log in which every
-- event is a distinct active pair.
--
-- The rule (../shared/spec/DECISIONS.md): the newest event of an unordered
-- pair by (scan_time, id), a NULL scan_time sorting first (as ''); the pair is
-- connected iff that event's connection_status is not 'disconnected'.

DROP VIEW IF EXISTS current_connections;
DROP TRIGGER IF EXISTS assembly_keep_insert;
DROP TRIGGER IF EXISTS assembly_keep_delete;
DROP TRIGGER IF EXISTS assembly_keep_update;
DROP TABLE IF EXISTS active_connections;
DROP INDEX IF EXISTS assembly_part;
DROP INDEX IF EXISTS assembly_connected_to;
DROP INDEX IF EXISTS assembly_scan_time;

-- A part's events from either end (`history PART`, the Python tool's
-- queries, the delete and update triggers).
CREATE INDEX assembly_part ON assembly(part_number);
CREATE INDEX assembly_connected_to ON assembly(connected_to);

CREATE TABLE pair_state (
    -- The unordered pair: min and max of the two part ids.
    lo TEXT NOT NULL,
    hi TEXT NOT NULL,
    -- id in `assembly` of the pair's newest event.
    event_id INTEGER NOT NULL,
    -- 1 iff that event is not a disconnect (0 and 1 take no bytes).
    active INTEGER NOT NULL,
    PRIMARY KEY (lo, hi)
) WITHOUT ROWID;

-- The state as the log implies it now.
INSERT INTO pair_state (lo, hi, event_id, active)
SELECT lo, hi, id, active
  FROM (SELECT min(part_number, connected_to) AS lo, max(part_number, connected_to) AS hi, id,
               connection_status IS NOT 'disconnected' AS active,
               row_number() OVER (PARTITION BY min(part_number, connected_to), max(part_number, connected_to)
                                  ORDER BY COALESCE(scan_time, '') DESC, id DESC) AS n
          FROM assembly
         WHERE part_number IS NOT NULL AND connected_to IS NOT NULL)
 WHERE n = 1;
-- Built after the rows (sorted, full pages: 2.6 MB instead of 3.0 on the fixture).
CREATE INDEX pair_state_hi ON pair_state(hi);

-- The active connections with the columns of 0003 (the edge as its newest,
-- connecting, event recorded it). Look them up by pair_lo / pair_hi (keys);
-- source / target are columns of the log.
CREATE VIEW active_connections AS
SELECT k.lo AS pair_lo, k.hi AS pair_hi, a.part_number AS source, a.part_type AS source_type,
       a.polarization AS source_polarization, a.connected_to AS target, a.connected_to_type AS target_type,
       a.connected_polarization AS target_polarization, a.scan_time AS since, a.id AS event_id
  FROM pair_state k JOIN assembly a ON a.id = k.event_id
 WHERE k.active;

-- The current connections with the columns of `assembly` (the documented
-- names): one row per active connection, the event that made it.
CREATE VIEW current_connections AS
SELECT a.id, a.part_number, a.part_type, a.polarization, a.scan_time, a.connected_to, a.connected_to_type,
       a.connected_polarization, a.connected_scan_time, COALESCE(a.connection_status, 'connected') AS connection_status
  FROM pair_state k JOIN assembly a ON a.id = k.event_id
 WHERE k.active;

-- A new event becomes its pair's state if it is newer than the pair's newest
-- (an event merged in from another site may be older): one key lookup and
-- one rowid lookup, whatever the pair's history.
CREATE TRIGGER assembly_keep_insert AFTER INSERT ON assembly
WHEN NEW.part_number IS NOT NULL AND NEW.connected_to IS NOT NULL
 AND NOT EXISTS (SELECT 1 FROM pair_state k JOIN assembly a ON a.id = k.event_id
        WHERE k.lo = min(NEW.part_number, NEW.connected_to) AND k.hi = max(NEW.part_number, NEW.connected_to)
          AND (COALESCE(a.scan_time, ''), a.id) > (COALESCE(NEW.scan_time, ''), NEW.id))
BEGIN
    INSERT OR REPLACE INTO pair_state (lo, hi, event_id, active)
    VALUES (min(NEW.part_number, NEW.connected_to), max(NEW.part_number, NEW.connected_to), NEW.id,
            NEW.connection_status IS NOT 'disconnected');
END;

-- casman never changes or deletes events (except `database clear`), but other
-- programs may: a pair whose newest event goes is decided again from its
-- remaining events.
CREATE TRIGGER assembly_keep_delete AFTER DELETE ON assembly
WHEN OLD.part_number IS NOT NULL AND OLD.connected_to IS NOT NULL
BEGIN
    DELETE FROM pair_state
     WHERE lo = min(OLD.part_number, OLD.connected_to) AND hi = max(OLD.part_number, OLD.connected_to)
       AND event_id = OLD.id;
    INSERT INTO pair_state (lo, hi, event_id, active)
    SELECT min(OLD.part_number, OLD.connected_to), max(OLD.part_number, OLD.connected_to), n.id,
           n.connection_status IS NOT 'disconnected'
      FROM (SELECT a.id, a.connection_status FROM assembly a
             WHERE (a.part_number = OLD.part_number AND a.connected_to = OLD.connected_to)
                OR (a.part_number = OLD.connected_to AND a.connected_to = OLD.part_number)
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE NOT EXISTS (SELECT 1 FROM pair_state
                        WHERE lo = min(OLD.part_number, OLD.connected_to)
                          AND hi = max(OLD.part_number, OLD.connected_to));
END;

CREATE TRIGGER assembly_keep_update AFTER UPDATE ON assembly
BEGIN
    DELETE FROM pair_state
     WHERE (lo = min(OLD.part_number, OLD.connected_to) AND hi = max(OLD.part_number, OLD.connected_to))
        OR (lo = min(NEW.part_number, NEW.connected_to) AND hi = max(NEW.part_number, NEW.connected_to));
    INSERT OR REPLACE INTO pair_state (lo, hi, event_id, active)
    SELECT min(OLD.part_number, OLD.connected_to), max(OLD.part_number, OLD.connected_to), n.id,
           n.connection_status IS NOT 'disconnected'
      FROM (SELECT a.id, a.connection_status FROM assembly a
             WHERE (a.part_number = OLD.part_number AND a.connected_to = OLD.connected_to)
                OR (a.part_number = OLD.connected_to AND a.connected_to = OLD.part_number)
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE OLD.part_number IS NOT NULL AND OLD.connected_to IS NOT NULL;
    INSERT OR REPLACE INTO pair_state (lo, hi, event_id, active)
    SELECT min(NEW.part_number, NEW.connected_to), max(NEW.part_number, NEW.connected_to), n.id,
           n.connection_status IS NOT 'disconnected'
      FROM (SELECT a.id, a.connection_status FROM assembly a
             WHERE (a.part_number = NEW.part_number AND a.connected_to = NEW.connected_to)
                OR (a.part_number = NEW.connected_to AND a.connected_to = NEW.part_number)
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE NEW.part_number IS NOT NULL AND NEW.connected_to IS NOT NULL;
END;

-- The kept current state in 1.3x the log (issue 14): pairs keyed by part
-- codes, every event findable from its pair, no index on the log.
--
-- 0004 kept one row per pair keyed by the two part ids as text, an index by
-- the other end, and one log index per end for `history PART`: 20.0 MB for
-- the 10.5 MB field-size fixture (1.9x). Here:
--
-- * A part id of the standard form (<ABBR><5 digits>P<1|2>, ABBR one of the
--   six type prefixes) is kept as an integer code, the type's CAsMan number
--   x 1,000,000 + number x 10 + polarization: ANT00001P1 -> 1000011,
--   LNA12500P2 -> 2125002 (3 bytes instead of 10). Any other id (SNAP ports,
--   historic ids) is kept as its text: integers sort before text, so the
--   codes are one order and no code is ever a text. A NULL end is -1.
--   The expression (casmand::db::part_code::part_code) is written out below
--   for the two ends, in the trigger of the view `pair_event`, through which
--   every change of the log passes; a unit test checks both copies.
-- * `pair_state`: one row per pair, keyed (lo, hi) by the codes of its ends,
--   naming its newest event. Index by `hi`: the pairs of a part from either end.
-- * `pair_other`: every other event of the log, keyed (lo, hi, event_id),
--   and indexed by `hi`: a pair's older events, and the events with a NULL
--   end (lo = -1, found by their other end). Every event of the log is in
--   exactly one of the two. On a log where every event is a distinct pair
--   it is empty.
-- * No index on the log. `history PART` reads a part's pairs and their events
--   from the two tables by key and the events by rowid; the rules read the
--   pairs by key. The Python tool's own queries of `assembly` scan the log,
--   as they did on its files.
--
-- Accounting on the fixture (dbstat, after the adoption's VACUUM):
--   assembly 10.5 MB, pair_state 1.7 MB, pair_state_hi 1.2 MB,
--   pair_other 4 KB, pair_other_hi 4 KB: file 13.5 MB (1.28x).
--
-- The rule (../shared/spec/DECISIONS.md) is unchanged: the newest event of
-- an unordered pair by (scan_time, id), a NULL scan_time sorting first (as
-- ''); the pair is connected iff that event's connection_status is not
-- 'disconnected'. The tables start empty: casmand rebuilds them from the
-- whole log on the first open after this migration (the meta key below is
-- removed), in code with the same expression.

DROP VIEW IF EXISTS current_connections;
DROP VIEW IF EXISTS active_connections;
DROP TRIGGER IF EXISTS assembly_keep_insert;
DROP TRIGGER IF EXISTS assembly_keep_delete;
DROP TRIGGER IF EXISTS assembly_keep_update;
DROP INDEX IF EXISTS pair_state_hi;
DROP TABLE IF EXISTS pair_state;
DROP INDEX IF EXISTS assembly_part;
DROP INDEX IF EXISTS assembly_connected_to;
DELETE FROM casman_meta WHERE key = 'active_connections_rebuilt_at';

-- lo and hi have no declared type: a code stays an integer, an id stays text.
CREATE TABLE pair_state (
    -- The unordered pair: min and max of the codes of its two ends.
    lo NOT NULL,
    hi NOT NULL,
    -- id in `assembly` of the pair's newest event.
    event_id INTEGER NOT NULL,
    -- 1 iff that event is not a disconnect.
    active INTEGER NOT NULL,
    PRIMARY KEY (lo, hi)
) WITHOUT ROWID;
CREATE INDEX pair_state_hi ON pair_state(hi);

CREATE TABLE pair_other (
    -- As in pair_state; lo = -1 for an event with a NULL end.
    lo NOT NULL,
    hi NOT NULL,
    -- id in `assembly` of the event.
    event_id INTEGER NOT NULL,
    PRIMARY KEY (lo, hi, event_id)
) WITHOUT ROWID;
CREATE INDEX pair_other_hi ON pair_other(hi);

-- The active connections (the edge as its newest, connecting, event recorded
-- it), with the columns of 0003 and 0004. pair_lo / pair_hi are the pair's
-- ids as text; casmand looks pairs up in pair_state by code.
CREATE VIEW active_connections AS
SELECT min(a.part_number, a.connected_to) AS pair_lo, max(a.part_number, a.connected_to) AS pair_hi,
       a.part_number AS source, a.part_type AS source_type, a.polarization AS source_polarization,
       a.connected_to AS target, a.connected_to_type AS target_type,
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

-- An event added to or removed from its pair, its ends already coded (by
-- `pair_event` below). Nothing is stored in it, nor in `pair_event`: their
-- INSTEAD OF triggers do the work, so that each step is written once.
CREATE VIEW pair_change (op, lo, hi, event_id, t, active) AS
SELECT NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

-- An event joins its pair: it becomes the pair's newest if it is newer (by
-- (t, event_id), t = COALESCE(scan_time, '')) than the pair's newest (an
-- event merged in from another site may be older), the replaced one joining
-- the others; otherwise it joins the others. One key lookup and one rowid
-- lookup, whatever the pair's history.
CREATE TRIGGER pair_change_add INSTEAD OF INSERT ON pair_change
WHEN NEW.op = 'add'
BEGIN
    INSERT OR IGNORE INTO pair_other (lo, hi, event_id)
    SELECT NEW.lo, NEW.hi, NEW.event_id
     WHERE NEW.lo = -1
        OR EXISTS (SELECT 1 FROM pair_state k JOIN assembly a ON a.id = k.event_id
                    WHERE k.lo = NEW.lo AND k.hi = NEW.hi
                      AND (COALESCE(a.scan_time, ''), a.id) > (NEW.t, NEW.event_id));
    INSERT OR IGNORE INTO pair_other (lo, hi, event_id)
    SELECT k.lo, k.hi, k.event_id FROM pair_state k
     WHERE k.lo = NEW.lo AND k.hi = NEW.hi AND k.event_id <> NEW.event_id
       AND NOT EXISTS (SELECT 1 FROM pair_other o
                        WHERE o.lo = NEW.lo AND o.hi = NEW.hi AND o.event_id = NEW.event_id);
    -- An update in place leaves the index by `hi` as it is (UPDATE, then
    -- INSERT for a new pair, rather than an upsert: these triggers parse on
    -- SQLite 3.15 and later, as 0004's did).
    UPDATE pair_state SET event_id = NEW.event_id, active = NEW.active
     WHERE lo = NEW.lo AND hi = NEW.hi
       AND NOT EXISTS (SELECT 1 FROM pair_other o
                        WHERE o.lo = NEW.lo AND o.hi = NEW.hi AND o.event_id = NEW.event_id);
    INSERT OR IGNORE INTO pair_state (lo, hi, event_id, active)
    SELECT NEW.lo, NEW.hi, NEW.event_id, NEW.active
     WHERE NEW.lo <> -1
       AND NOT EXISTS (SELECT 1 FROM pair_other o
                        WHERE o.lo = NEW.lo AND o.hi = NEW.hi AND o.event_id = NEW.event_id);
END;

-- An event leaves its pair; if it was the pair's newest, the newest of the
-- others takes its place (reading the pair's other events: a cost of
-- deletions and edits by other programs only; casman never makes them).
CREATE TRIGGER pair_change_remove INSTEAD OF INSERT ON pair_change
WHEN NEW.op = 'remove'
BEGIN
    DELETE FROM pair_other WHERE lo = NEW.lo AND hi = NEW.hi AND event_id = NEW.event_id;
    DELETE FROM pair_state WHERE lo = NEW.lo AND hi = NEW.hi AND event_id = NEW.event_id;
    INSERT INTO pair_state (lo, hi, event_id, active)
    SELECT NEW.lo, NEW.hi, n.id, n.connection_status IS NOT 'disconnected'
      FROM (SELECT a.id, a.connection_status FROM pair_other o JOIN assembly a ON a.id = o.event_id
             WHERE o.lo = NEW.lo AND o.hi = NEW.hi
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE NEW.lo <> -1 AND NOT EXISTS (SELECT 1 FROM pair_state WHERE lo = NEW.lo AND hi = NEW.hi);
    DELETE FROM pair_other
     WHERE lo = NEW.lo AND hi = NEW.hi
       AND event_id = (SELECT event_id FROM pair_state WHERE lo = NEW.lo AND hi = NEW.hi);
END;

-- An event with its ends as ids: coded here, once, and handed on.
CREATE VIEW pair_event (op, a, b, event_id, t, active) AS
SELECT NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER pair_event_code INSTEAD OF INSERT ON pair_event
BEGIN
    INSERT INTO pair_change (op, lo, hi, event_id, t, active)
    SELECT NEW.op, min(x, y), max(x, y), NEW.event_id, NEW.t, NEW.active
      FROM (SELECT
            CASE WHEN NEW.a IS NULL THEN -1 ELSE COALESCE(CASE WHEN NEW.a GLOB
                '[A-Z][A-Z][A-Z][0-9][0-9][0-9][0-9][0-9]P[12]' THEN CASE substr(NEW.a, 1, 3)
                WHEN 'ANT' THEN 1000000 WHEN 'LNA' THEN 2000000 WHEN 'CXS' THEN 3000000 WHEN 'CXL' THEN 4000000
                WHEN 'BAC' THEN 5000000 WHEN 'SNP' THEN 6000000 END
                + CAST(substr(NEW.a, 4, 5) || substr(NEW.a, 10) AS INTEGER) END,
                CAST(NEW.a AS TEXT)) END AS x,
            CASE WHEN NEW.b IS NULL THEN -1 ELSE COALESCE(CASE WHEN NEW.b GLOB
                '[A-Z][A-Z][A-Z][0-9][0-9][0-9][0-9][0-9]P[12]' THEN CASE substr(NEW.b, 1, 3)
                WHEN 'ANT' THEN 1000000 WHEN 'LNA' THEN 2000000 WHEN 'CXS' THEN 3000000 WHEN 'CXL' THEN 4000000
                WHEN 'BAC' THEN 5000000 WHEN 'SNP' THEN 6000000 END
                + CAST(substr(NEW.b, 4, 5) || substr(NEW.b, 10) AS INTEGER) END,
                CAST(NEW.b AS TEXT)) END AS y);
END;

-- Whoever writes the log (casmand, a merge, the sqlite3 shell, the Python
-- tool), in the same transaction.
CREATE TRIGGER assembly_keep_insert AFTER INSERT ON assembly
BEGIN
    INSERT INTO pair_event (op, a, b, event_id, t, active)
    VALUES ('add', NEW.part_number, NEW.connected_to, NEW.id, COALESCE(NEW.scan_time, ''),
            NEW.connection_status IS NOT 'disconnected');
END;

-- casman never changes or deletes events (except `database clear`), but
-- other programs may.
CREATE TRIGGER assembly_keep_delete AFTER DELETE ON assembly
BEGIN
    INSERT INTO pair_event (op, a, b, event_id) VALUES ('remove', OLD.part_number, OLD.connected_to, OLD.id);
END;

-- An edit of what the rule reads: the old event leaves its pair, the new one
-- joins its (perhaps other) pair.
CREATE TRIGGER assembly_keep_update AFTER UPDATE OF id, part_number, connected_to, scan_time, connection_status
ON assembly
BEGIN
    INSERT INTO pair_event (op, a, b, event_id) VALUES ('remove', OLD.part_number, OLD.connected_to, OLD.id);
    INSERT INTO pair_event (op, a, b, event_id, t, active)
    VALUES ('add', NEW.part_number, NEW.connected_to, NEW.id, COALESCE(NEW.scan_time, ''),
            NEW.connection_status IS NOT 'disconnected');
END;

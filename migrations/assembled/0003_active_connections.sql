-- The kept current state of the assembly log: one row per active connection
-- (issue 13). The `assembly` log stays append-only and remains the record;
-- this table is what the log implies by the canonical rule (newest event per
-- unordered pair by (scan_time, id), a NULL scan_time sorting first; the pair
-- is connected iff that event's connection_status is not 'disconnected'), kept
-- so that no request has to read a part's history to know its state.
--
-- It is written in the same transaction as every event, by the triggers
-- below, whoever appends the event (casmand, a merge, the sqlite3 shell, the
-- Python tool). casmand rebuilds it from the whole log on adoption, restore,
-- pull and merge (casmand::db::assembly::rebuild), and `casmanctl database
-- check` compares it with the log.

CREATE TABLE IF NOT EXISTS active_connections (
    -- The unordered pair: min and max of the two part ids.
    pair_lo TEXT NOT NULL,
    pair_hi TEXT NOT NULL,
    -- The edge as its newest (connecting) event recorded it.
    source TEXT NOT NULL,
    source_type TEXT,
    source_polarization TEXT,
    target TEXT NOT NULL,
    target_type TEXT,
    target_polarization TEXT,
    -- scan_time of that event (since when the pair is connected).
    since TEXT,
    -- id of that event in `assembly`.
    event_id INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (pair_lo, pair_hi)
);
CREATE INDEX IF NOT EXISTS active_connections_source ON active_connections(source);
CREATE INDEX IF NOT EXISTS active_connections_target ON active_connections(target);

-- A new event is applied if it is the newest of its pair (an event merged in
-- from another site may be older than what this site already has). The
-- lookups use the (part_number, scan_time) and (connected_to, scan_time)
-- indexes over the events at or after the new one's time: for a scan made now,
-- none but itself, whatever the pair's history.
CREATE TRIGGER IF NOT EXISTS assembly_keep_insert AFTER INSERT ON assembly
WHEN NEW.part_number IS NOT NULL AND NEW.connected_to IS NOT NULL
 AND NOT EXISTS (SELECT 1 FROM assembly a
        WHERE a.part_number = NEW.part_number AND a.connected_to = NEW.connected_to
          AND a.scan_time >= COALESCE(NEW.scan_time, '') AND a.id <> NEW.id
          AND (a.scan_time > COALESCE(NEW.scan_time, '') OR a.id > NEW.id))
 AND NOT EXISTS (SELECT 1 FROM assembly a
        WHERE a.part_number = NEW.connected_to AND a.connected_to = NEW.part_number
          AND a.scan_time >= COALESCE(NEW.scan_time, '') AND a.id <> NEW.id
          AND (a.scan_time > COALESCE(NEW.scan_time, '') OR a.id > NEW.id))
 AND NOT (COALESCE(NEW.scan_time, '') = '' AND EXISTS (SELECT 1 FROM assembly a
        WHERE a.scan_time IS NULL AND a.id > NEW.id
          AND ((a.part_number = NEW.part_number AND a.connected_to = NEW.connected_to)
            OR (a.part_number = NEW.connected_to AND a.connected_to = NEW.part_number))))
BEGIN
    DELETE FROM active_connections
     WHERE pair_lo = min(NEW.part_number, NEW.connected_to) AND pair_hi = max(NEW.part_number, NEW.connected_to);
    INSERT INTO active_connections (pair_lo, pair_hi, source, source_type, source_polarization, target,
                                    target_type, target_polarization, since, event_id)
    SELECT min(NEW.part_number, NEW.connected_to), max(NEW.part_number, NEW.connected_to), NEW.part_number,
           NEW.part_type, NEW.polarization, NEW.connected_to, NEW.connected_to_type, NEW.connected_polarization,
           NEW.scan_time, NEW.id
     WHERE NEW.connection_status IS NOT 'disconnected';
END;

-- casman never changes or deletes events (except `database clear`), but other
-- programs may: the pair(s) touched are decided again from their remaining events.
CREATE TRIGGER IF NOT EXISTS assembly_keep_delete AFTER DELETE ON assembly
WHEN OLD.part_number IS NOT NULL AND OLD.connected_to IS NOT NULL
BEGIN
    DELETE FROM active_connections
     WHERE pair_lo = min(OLD.part_number, OLD.connected_to) AND pair_hi = max(OLD.part_number, OLD.connected_to);
    INSERT INTO active_connections (pair_lo, pair_hi, source, source_type, source_polarization, target,
                                    target_type, target_polarization, since, event_id)
    SELECT min(n.part_number, n.connected_to), max(n.part_number, n.connected_to), n.part_number, n.part_type,
           n.polarization, n.connected_to, n.connected_to_type, n.connected_polarization, n.scan_time, n.id
      FROM (SELECT * FROM assembly a
             WHERE (a.part_number = OLD.part_number AND a.connected_to = OLD.connected_to)
                OR (a.part_number = OLD.connected_to AND a.connected_to = OLD.part_number)
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE n.connection_status IS NOT 'disconnected';
END;

CREATE TRIGGER IF NOT EXISTS assembly_keep_update AFTER UPDATE ON assembly
BEGIN
    DELETE FROM active_connections
     WHERE (pair_lo = min(OLD.part_number, OLD.connected_to) AND pair_hi = max(OLD.part_number, OLD.connected_to))
        OR (pair_lo = min(NEW.part_number, NEW.connected_to) AND pair_hi = max(NEW.part_number, NEW.connected_to))
        OR event_id = OLD.id;
    INSERT OR REPLACE INTO active_connections (pair_lo, pair_hi, source, source_type, source_polarization, target,
                                    target_type, target_polarization, since, event_id)
    SELECT min(n.part_number, n.connected_to), max(n.part_number, n.connected_to), n.part_number, n.part_type,
           n.polarization, n.connected_to, n.connected_to_type, n.connected_polarization, n.scan_time, n.id
      FROM (SELECT * FROM assembly a
             WHERE (a.part_number = OLD.part_number AND a.connected_to = OLD.connected_to)
                OR (a.part_number = OLD.connected_to AND a.connected_to = OLD.part_number)
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE OLD.part_number IS NOT NULL AND OLD.connected_to IS NOT NULL
       AND n.connection_status IS NOT 'disconnected';
    INSERT OR REPLACE INTO active_connections (pair_lo, pair_hi, source, source_type, source_polarization, target,
                                    target_type, target_polarization, since, event_id)
    SELECT min(n.part_number, n.connected_to), max(n.part_number, n.connected_to), n.part_number, n.part_type,
           n.polarization, n.connected_to, n.connected_to_type, n.connected_polarization, n.scan_time, n.id
      FROM (SELECT * FROM assembly a
             WHERE (a.part_number = NEW.part_number AND a.connected_to = NEW.connected_to)
                OR (a.part_number = NEW.connected_to AND a.connected_to = NEW.part_number)
             ORDER BY COALESCE(a.scan_time, '') DESC, a.id DESC LIMIT 1) n
     WHERE NEW.part_number IS NOT NULL AND NEW.connected_to IS NOT NULL
       AND n.connection_status IS NOT 'disconnected';
END;

-- The current connections with the columns of `assembly` (the documented
-- names): one row per active connection, the event that made it. Query it
-- like the log: `SELECT connected_to FROM current_connections WHERE
-- part_number = 'ANT00001P1'`.
CREATE VIEW IF NOT EXISTS current_connections AS
SELECT a.id, a.part_number, a.part_type, a.polarization, a.scan_time, a.connected_to, a.connected_to_type,
       a.connected_polarization, a.connected_scan_time, COALESCE(a.connection_status, 'connected') AS connection_status
  FROM active_connections k JOIN assembly a ON a.id = k.event_id;

-- The change exchange between sites (DESIGN.md "Sync between sites";
-- casmand::backup::exchange): sites publish their changes as segments in
-- the store and apply the segments of the others.

-- How far this file has applied each other site's segments: the number of
-- its last segment applied and the sequence number of that segment's last
-- change. Written in the same transaction as the changes it counts, so a
-- file restored from an older version fetches again what it lacks.
CREATE TABLE IF NOT EXISTS exchange_applied (
    site_id TEXT PRIMARY KEY,
    segment INTEGER NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Parts whose connections broke a rule when other sites' events were
-- applied (two incoming, two outgoing), as last checked: the conflicts are
-- read from the current state of these parts only, never by scanning every
-- connection. Checked again, and pruned, with every batch applied.
CREATE TABLE IF NOT EXISTS exchange_suspects (
    part TEXT PRIMARY KEY
) WITHOUT ROWID;

-- One total order for the events of a pair at every site. Until now two
-- events of a pair with the same scan_time (second resolution) were ordered
-- by row id: the order they reached this file, which differs between sites
-- once events are exchanged. Now: (scan_time, clock, id), where clock is the
-- event's hybrid logical clock value (event_origin.hlc; an event recorded
-- before the upgrade or by another program has 0: such events keep the
-- order they had, by id). An event being appended by casmand (its stamp is written
-- by the statement that appends it) is stamped before this trigger runs:
-- SQLite fires the TEMP triggers casmand installs on its writer connection
-- (db/stamping.rs) before the triggers of the file. Events received from
-- other sites have their origin written first (casmand::db::changes).
DROP TRIGGER IF EXISTS pair_change_add;
DROP TRIGGER IF EXISTS pair_change_remove;

CREATE TRIGGER pair_change_add INSTEAD OF INSERT ON pair_change
WHEN NEW.op = 'add'
BEGIN
    INSERT OR IGNORE INTO pair_other (lo, hi, event_id)
    SELECT NEW.lo, NEW.hi, NEW.event_id
     WHERE NEW.lo = -1
        OR EXISTS (SELECT 1 FROM pair_state k JOIN assembly a ON a.id = k.event_id
                    LEFT JOIN event_origin o ON o.event_id = a.id
                    WHERE k.lo = NEW.lo AND k.hi = NEW.hi
                      AND (COALESCE(a.scan_time, ''), COALESCE(o.hlc, 0), a.id)
                        > (NEW.t, COALESCE((SELECT hlc FROM event_origin WHERE event_id = NEW.event_id), 0), NEW.event_id));
    INSERT OR IGNORE INTO pair_other (lo, hi, event_id)
    SELECT k.lo, k.hi, k.event_id FROM pair_state k
     WHERE k.lo = NEW.lo AND k.hi = NEW.hi AND k.event_id <> NEW.event_id
       AND NOT EXISTS (SELECT 1 FROM pair_other o
                        WHERE o.lo = NEW.lo AND o.hi = NEW.hi AND o.event_id = NEW.event_id);
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

CREATE TRIGGER pair_change_remove INSTEAD OF INSERT ON pair_change
WHEN NEW.op = 'remove'
BEGIN
    DELETE FROM pair_other WHERE lo = NEW.lo AND hi = NEW.hi AND event_id = NEW.event_id;
    DELETE FROM pair_state WHERE lo = NEW.lo AND hi = NEW.hi AND event_id = NEW.event_id;
    INSERT INTO pair_state (lo, hi, event_id, active)
    SELECT NEW.lo, NEW.hi, n.id, n.connection_status IS NOT 'disconnected'
      FROM (SELECT a.id, a.connection_status FROM pair_other p JOIN assembly a ON a.id = p.event_id
              LEFT JOIN event_origin o ON o.event_id = a.id
             WHERE p.lo = NEW.lo AND p.hi = NEW.hi
             ORDER BY COALESCE(a.scan_time, '') DESC, COALESCE(o.hlc, 0) DESC, a.id DESC LIMIT 1) n
     WHERE NEW.lo <> -1 AND NOT EXISTS (SELECT 1 FROM pair_state WHERE lo = NEW.lo AND hi = NEW.hi);
    DELETE FROM pair_other
     WHERE lo = NEW.lo AND hi = NEW.hi
       AND event_id = (SELECT event_id FROM pair_state WHERE lo = NEW.lo AND hi = NEW.hi);
END;

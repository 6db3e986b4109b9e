-- The live change feed (casmand::db::feed; casman.v1.Changes in
-- proto/casman/v1/changes.proto): every change committed to this file, in
-- the order it committed here. See the same table in assembled_casm.db
-- (migration 0009) for `pos`, the local commit position.
-- A row names its change: a change of the change log (site, seq), or a
-- conflict opened or resolved (conflict: its row of `conflict_log`).
CREATE TABLE IF NOT EXISTS change_feed (
    pos INTEGER PRIMARY KEY,
    event_id INTEGER,
    site INTEGER,
    seq INTEGER,
    conflict INTEGER
);

-- Conflicts between sites as they opened (a row of `exchange_conflicts`
-- recorded) and were resolved (a later change of either row, as
-- `casmanctl status` stops listing it).
CREATE TABLE IF NOT EXISTS conflict_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    hlc INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('opened', 'resolved')),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    other TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS conflict_log_at ON conflict_log(at);
CREATE INDEX IF NOT EXISTS conflict_log_subject ON conflict_log(subject);

CREATE TRIGGER IF NOT EXISTS change_feed_log AFTER INSERT ON change_log BEGIN
    INSERT INTO change_feed (pos, site, seq)
    VALUES (max(COALESCE((SELECT MAX(pos) FROM change_feed), 0) + 1,
                CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 65536), NEW.site, NEW.seq);
END;

CREATE TRIGGER IF NOT EXISTS change_feed_conflict AFTER INSERT ON conflict_log BEGIN
    INSERT INTO change_feed (pos, conflict)
    VALUES (max(COALESCE((SELECT MAX(pos) FROM change_feed), 0) + 1,
                CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 65536), NEW.id);
END;

-- A conflict opens when the exchange records it (once while it stands).
CREATE TRIGGER IF NOT EXISTS conflict_log_opened AFTER INSERT ON exchange_conflicts
WHEN COALESCE((SELECT state FROM conflict_log WHERE kind = NEW.tbl AND subject = NEW.kept_key
                AND other = NEW.lost_key ORDER BY id DESC LIMIT 1), 'resolved') = 'resolved'
BEGIN
    INSERT INTO conflict_log (at, hlc, state, kind, subject, other, detail)
    VALUES (NEW.found_at, NEW.hlc, 'opened', NEW.tbl, NEW.kept_key, NEW.lost_key, NEW.detail);
END;

-- ... and is resolved by a later change of either row (or a clear of its table).
CREATE TRIGGER IF NOT EXISTS conflict_log_resolved AFTER INSERT ON change_log
WHEN NEW.tbl IN ('antenna_positions', 'snap_boards')
BEGIN
    INSERT INTO conflict_log (at, hlc, state, kind, subject, other)
    SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), NEW.hlc, 'resolved', k.kind, k.subject, k.other
      FROM conflict_log k
     WHERE k.kind = NEW.tbl AND k.state = 'opened' AND k.hlc < NEW.hlc
       AND (NEW.op = 'clear'
            OR (CASE NEW.tbl WHEN 'antenna_positions' THEN NEW.row ->> '$.antenna_number'
                             ELSE NEW.row ->> '$.serial_number' END) IN (k.subject, k.other))
       AND k.id = (SELECT MAX(j.id) FROM conflict_log j
                    WHERE j.kind = k.kind AND j.subject = k.subject AND j.other = k.other);
END;

-- The conflicts standing at the upgrade.
INSERT INTO conflict_log (at, hlc, state, kind, subject, other, detail)
SELECT c.found_at, c.hlc, 'opened', c.tbl, c.kept_key, c.lost_key, c.detail FROM exchange_conflicts c
 WHERE c.id = (SELECT MIN(d.id) FROM exchange_conflicts d
                WHERE d.tbl = c.tbl AND d.kept_key = c.kept_key AND d.lost_key = c.lost_key)
   AND NOT EXISTS (SELECT 1 FROM row_clock r WHERE r.tbl = c.tbl AND r.key IN (c.kept_key, c.lost_key)
                     AND r.hlc > c.hlc);

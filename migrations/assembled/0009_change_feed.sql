-- The live change feed (casmand::db::feed; casman.v1.Changes in
-- proto/casman/v1/changes.proto): every change committed to this file, in
-- the order it committed here, whoever made it (this site, or another site
-- whose changes the exchange applied). The clock order of changes (hlc) is
-- not that order: changes of other sites arrive later with older clocks.
--
-- pos: the local commit position, strictly increasing within the file:
-- max(previous + 1, milliseconds since 1970 * 65536), written inside the
-- transaction of the change, so positions follow the commit order of the
-- single writer. Because it never runs behind the wall clock, a file put
-- back from an older version (a restore) numbers its next changes after
-- every position handed out before, and a client's resume position stays
-- valid across restarts and restores.
-- A row names its change: a scan event (event_id: its row of `assembly`),
-- a change of the change log (site, seq: its key in `change_log`), or a
-- conflict opened or resolved (conflict: its row of `conflict_log`).
-- About 20 bytes a change; nothing is written for the history before it.
CREATE TABLE IF NOT EXISTS change_feed (
    pos INTEGER PRIMARY KEY,
    event_id INTEGER,
    site INTEGER,
    seq INTEGER,
    conflict INTEGER
);

-- Conflicts between sites as they opened and were resolved (the standing
-- ones are derived from `exchange_suspects`): written by the exchange when
-- it checks the parts its events touched (casmand::db::changes): a few
-- rows, not one per change.
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
-- (No index: a handful of rows, read whole.)

CREATE TRIGGER IF NOT EXISTS change_feed_event AFTER INSERT ON assembly BEGIN
    INSERT INTO change_feed (pos, event_id)
    VALUES (max(COALESCE((SELECT MAX(pos) FROM change_feed), 0) + 1,
                CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 65536), NEW.id);
END;

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

-- The conflicts standing at the upgrade.
INSERT INTO conflict_log (at, state, kind, subject)
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'opened', 'connections', part FROM exchange_suspects;

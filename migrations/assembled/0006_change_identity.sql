-- The identity of every change casmand makes to this file (the multi-site
-- exchange, DESIGN.md "Sync between sites"): the site that made it, that
-- site's sequence number in this file, and a hybrid logical clock (HLC)
-- timestamp, written in the same transaction as the change by triggers
-- casmand installs on its own writer connection (db/stamping.rs). Writes by
-- other programs carry none. Side tables WITHOUT ROWID: the documented
-- schemas, their seed queries and `database print` are unchanged.

-- Sites by a small code (a change names its site in a few bytes).
CREATE TABLE IF NOT EXISTS sites (
    code INTEGER PRIMARY KEY,
    site_id TEXT NOT NULL UNIQUE
) WITHOUT ROWID;

-- Changes other than scan events: a row written, replaced or deleted (its
-- values as JSON), or a whole table cleared.
-- hlc: milliseconds since 1970 * 65536 + a logical counter; one total order
-- over every site's changes with ties broken by (site_id, seq).
CREATE TABLE IF NOT EXISTS change_log (
    site INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL,
    tbl TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'clear')),
    row TEXT,
    PRIMARY KEY (site, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS change_log_hlc ON change_log(hlc);

-- The identity of each scan event (a row of `assembly`), kept compactly
-- beside it; events from before the upgrade have none.
CREATE TABLE IF NOT EXISTS event_origin (
    event_id INTEGER PRIMARY KEY,
    site INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS event_origin_site_seq ON event_origin(site, seq);

-- What this site has published to the change exchange, per database: the
-- number of its last segment in the store and the sequence number of that
-- segment's last change (casmand::backup::exchange). The next segment holds
-- the site's changes after it.
CREATE TABLE IF NOT EXISTS exchange_published (
    database TEXT PRIMARY KEY,
    segment INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    published_at TEXT NOT NULL
);

-- Every segment this site published: after a restore of an older version
-- the file lacks some of them, and the next sync applies them again.
CREATE TABLE IF NOT EXISTS exchange_own_segments (
    database TEXT NOT NULL,
    segment INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (database, segment)
);

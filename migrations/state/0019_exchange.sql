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

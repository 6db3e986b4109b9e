-- History from before the upgrade enters the change exchange
-- (casmand::db::history): rows of parts.db written before casmand stamped
-- changes are given this site's identity with clock 0 in `row_clock` when
-- the site first publishes (their values are read from the table when
-- published, not copied into `change_log`). This index finds a site's
-- changes by sequence number there.
CREATE INDEX IF NOT EXISTS row_clock_site_seq ON row_clock(site, seq);

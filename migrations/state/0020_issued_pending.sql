-- Database files whose part numbers must be known as issued but are not read
-- yet: the file a restore replaced (kept in <data>/safety/), read after the
-- swap so that the restore does not wait for it. A row is written before the
-- swap and removed once its file's numbers are in issued_numbers; generation
-- reads every pending file first (issued::load), also after a restart.
CREATE TABLE issued_pending (
    path TEXT PRIMARY KEY,
    db_name TEXT NOT NULL,
    added_at TEXT NOT NULL
);

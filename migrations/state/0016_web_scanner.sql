-- The field scanner (issue 16, casmand/src/web/scanner*): where a write came
-- from (the HTTP client address; the socket's uid stays in uid/gid/pid), and
-- the request ids it has answered, so that a retried or double-tapped write
-- is recorded once. Request ids are kept 7 days.
ALTER TABLE audit_log ADD COLUMN client TEXT;

CREATE TABLE web_requests (
    request_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE INDEX web_requests_at ON web_requests(at);

-- Web sign-in sessions (issue 32, item 3; casmand/src/db/web_sessions.rs).
-- The `casman_operator` cookie holds a random session id; only its SHA-256
-- is kept here, with the operator's name and a salted SHA-256 of the token
-- that signed in (never the token), so that changing that token in the
-- configuration revokes the session. Sign-out deletes the row; rows past
-- their idle or absolute expiry are refused and purged.
CREATE TABLE web_sessions (
    id_sha256 TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_expires_at ON web_sessions(expires_at);

//! Web sign-in sessions (state.db `web_sessions`): the `casman_operator`
//! cookie holds a random session id, and casmand keeps, per session, the
//! SHA-256 of that id (never the id), the operator's name, a fingerprint of
//! the token that signed in (a salted SHA-256, never the token: see
//! [`crate::web`]'s sign-in), when it was created and last used, and when it
//! ends. A session is live until [`IDLE`] passes without a request or
//! [`LIFETIME`] after its sign-in, whichever comes first; sign-out deletes
//! it. Dead sessions are refused at once and deleted by [`purge`] (run at
//! every sign-in).
//!
//! Times are passed in (`now`), so expiry is tested without waiting.

use std::time::Duration;

use jiff::Timestamp;

use super::Db;
use crate::{error::Result, timestamp};

/// A session unused this long is refused (and purged): a phone left in a
/// drawer overnight signs in again next morning.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);

/// A session is refused this long after its sign-in, however much it is used.
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// `last_seen_at` is written at most this often per session, so browsing does
/// not write state.db on every request; [`IDLE`] is thus exact to this much.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// The operator's name, as signed in.
    pub operator: String,
    /// Fingerprint of the token that signed in (hex).
    pub token_sha256: String,
    /// When it was created (stored form).
    pub created_at: String,
    /// When it was last used, to [`TOUCH_EVERY`] (stored form).
    pub last_seen_at: String,
    /// When it ends at the latest (stored form).
    pub expires_at: String,
}

/// `t` moved by `d` (back when `back`), clamped to the representable range.
fn shift(t: Timestamp, d: Duration, back: bool) -> Timestamp {
    let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
    let moved = if back { t.checked_sub(d) } else { t.checked_add(d) };
    moved.unwrap_or(if back { Timestamp::MIN } else { Timestamp::MAX })
}

/// The stored-form bounds at `now`: a session is live when `expires_at` is
/// after the first and `last_seen_at` after the second.
fn bounds(now: Timestamp) -> (String, String) {
    (timestamp::format(now), timestamp::format(shift(now, IDLE, true)))
}

/// Whether `s` is still live at `now`.
pub fn is_live(s: &Session, now: Timestamp) -> bool {
    let (now, idle) = bounds(now);
    s.expires_at > now && s.last_seen_at > idle
}

/// Records a new session signed in at `now` and deletes dead ones.
pub async fn create(
    state: &Db,
    id_sha256: &str,
    operator: &str,
    token_sha256: &str,
    now: Timestamp,
) -> Result<()> {
    let at = timestamp::format(now);
    let expires = timestamp::format(shift(now, LIFETIME, false));
    let (live_after, idle_after) = bounds(now);
    let mut tx = state.writer().await.begin().await?;
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= ? OR last_seen_at <= ?")
        .bind(&live_after)
        .bind(&idle_after)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO web_sessions
             (id_sha256, operator, token_sha256, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id_sha256)
    .bind(operator)
    .bind(token_sha256)
    .bind(&at)
    .bind(&at)
    .bind(&expires)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The live session `id_sha256` at `now`, if any; marks it used (at most
/// every [`TOUCH_EVERY`]). A dead session is `None`, as an unknown one.
pub async fn find(state: &Db, id_sha256: &str, now: Timestamp) -> Result<Option<Session>> {
    let (live_after, idle_after) = bounds(now);
    let found: Option<Session> = sqlx::query_as(
        "SELECT operator, token_sha256, created_at, last_seen_at, expires_at FROM web_sessions
         WHERE id_sha256 = ? AND expires_at > ? AND last_seen_at > ?",
    )
    .bind(id_sha256)
    .bind(&live_after)
    .bind(&idle_after)
    .fetch_optional(&*state.reader().await)
    .await?;
    let Some(mut s) = found else { return Ok(None) };
    let touch_before = timestamp::format(shift(now, TOUCH_EVERY, true));
    if s.last_seen_at <= touch_before {
        let at = timestamp::format(now);
        sqlx::query("UPDATE web_sessions SET last_seen_at = ? WHERE id_sha256 = ? AND last_seen_at < ?")
            .bind(&at)
            .bind(id_sha256)
            .bind(&at)
            .execute(&*state.writer().await)
            .await?;
        s.last_seen_at = at;
    }
    Ok(Some(s))
}

/// Deletes session `id_sha256` (sign-out); whether there was one.
pub async fn delete(state: &Db, id_sha256: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE id_sha256 = ?")
        .bind(id_sha256)
        .execute(&*state.writer().await)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes the sessions dead at `now`; how many.
pub async fn purge(state: &Db, now: Timestamp) -> Result<u64> {
    let (live_after, idle_after) = bounds(now);
    let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= ? OR last_seen_at <= ?")
        .bind(&live_after)
        .bind(&idle_after)
        .execute(&*state.writer().await)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::db::Databases;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    async fn count(state: &Db) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
            .fetch_one(&*state.reader().await)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sessions_end_when_idle_at_their_lifetime_or_at_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        let state = &dbs.state;
        let t0 = at("2026-03-02T08:00:00Z");
        let plus = |secs: u64| shift(t0, Duration::from_secs(secs), false);
        create(state, "aa", "alice", "f1", t0).await.unwrap();

        let s = find(state, "aa", t0).await.unwrap().unwrap();
        assert_eq!((s.operator.as_str(), s.token_sha256.as_str()), ("alice", "f1"));
        assert_eq!(s.expires_at, "2026-03-09T08:00:00Z");
        assert!(find(state, "bb", t0).await.unwrap().is_none(), "unknown id");

        // Used within the touch interval: last_seen_at is not rewritten.
        assert_eq!(find(state, "aa", plus(30)).await.unwrap().unwrap().last_seen_at, "2026-03-02T08:00:00Z");
        // Just before the idle limit it still works, and that use counts.
        let before_idle = IDLE.as_secs() - 1;
        let s = find(state, "aa", plus(before_idle)).await.unwrap().unwrap();
        assert_eq!(s.last_seen_at, "2026-03-02T19:59:59Z");
        // Idle for IDLE since then: refused.
        assert!(find(state, "aa", plus(before_idle + IDLE.as_secs())).await.unwrap().is_none());

        // Used every few hours it lives until LIFETIME, not a second longer.
        create(state, "cc", "bob", "f2", t0).await.unwrap();
        let mut t = 0;
        while t + 6 * 3600 < LIFETIME.as_secs() {
            t += 6 * 3600;
            assert!(find(state, "cc", plus(t)).await.unwrap().is_some(), "at +{t}s");
        }
        let last = LIFETIME.as_secs() - 1;
        assert!(find(state, "cc", plus(last)).await.unwrap().is_some());
        assert!(find(state, "cc", plus(LIFETIME.as_secs())).await.unwrap().is_none());

        // Sign-out deletes; a second sign-out finds nothing.
        create(state, "dd", "carol", "f3", t0).await.unwrap();
        assert!(delete(state, "dd").await.unwrap());
        assert!(!delete(state, "dd").await.unwrap());
        assert!(find(state, "dd", t0).await.unwrap().is_none());

        // A later sign-in purges what is dead (aa, cc), keeping live ones.
        let later = plus(LIFETIME.as_secs() + 2 * 3600);
        create(state, "ee", "dave", "f4", shift(later, Duration::from_secs(3600), true)).await.unwrap();
        assert_eq!(count(state).await, 1);
        create(state, "ff", "erin", "f5", later).await.unwrap();
        assert_eq!(count(state).await, 2, "ee is an hour old: kept");
        let idle_ee = shift(later, IDLE - Duration::from_secs(60), false);
        assert_eq!(purge(state, idle_ee).await.unwrap(), 1, "ee is idle by then, ff not yet");
        assert_eq!(count(state).await, 1);
    }

    #[test]
    fn liveness_is_decided_by_both_limits() {
        let s = Session {
            operator: "alice".into(),
            token_sha256: "f".into(),
            created_at: "2026-03-02T08:00:00Z".into(),
            last_seen_at: "2026-03-02T08:00:00Z".into(),
            expires_at: "2026-03-09T08:00:00Z".into(),
        };
        assert!(is_live(&s, at("2026-03-02T19:59:59Z")));
        assert!(!is_live(&s, at("2026-03-02T20:00:00Z")), "idle for 12 h");
        let used = Session { last_seen_at: "2026-03-09T07:00:00Z".into(), ..s };
        assert!(is_live(&used, at("2026-03-09T07:59:59Z")));
        assert!(!is_live(&used, at("2026-03-09T08:00:00Z")), "7 days after sign-in");
    }
}

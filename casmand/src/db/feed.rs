//! The change feed: every change committed to parts.db and
//! assembled_casm.db, in the order it committed at this site, read after a
//! resume position ([`Cursor`]).
//!
//! Each file numbers its changes in `change_feed` (migrations assembled
//! 0009, parts 0006): a file trigger writes a row, inside the change's own
//! transaction, for every scan event appended to `assembly`, every change
//! appended to `change_log` (casmand's own, stamped, and those the exchange
//! applies from other sites) and every conflict opened or resolved
//! (`conflict_log`). Its position is `max(previous + 1, now_ms * 65536)`:
//! strictly increasing in commit order (one writer at a time), kept across
//! restarts, and never behind the wall clock, so a file put back from an
//! older version numbers its next changes after every position handed out
//! before the restore. (The clock order of changes, `hlc`, is not the local
//! commit order: changes of other sites arrive later with older clocks.)
//!
//! The two files commit independently: a [`Cursor`] holds the last position
//! delivered of each, so a client resuming from any change's id receives
//! exactly the changes after it in both files (no gap, no duplicate).

use sqlx::AssertSqlSafe;

use super::{
    ASSEMBLED_DB, Databases, Db, PARTS_DB,
    changes::{EVENT_COLUMNS, has_table},
    feed_entry::{ChangeEntry, Raw},
};
use crate::error::{Error, Result};

/// Where a watcher is: the last feed position delivered of each file (0:
/// none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Last position of parts.db delivered.
    pub parts: i64,
    /// Last position of assembled_casm.db delivered.
    pub assembled: i64,
}

/// The prefix of a cursor's text (its format's version).
const CURSOR_PREFIX: &str = "c1";

impl Cursor {
    /// The cursor as the opaque id clients hold: `c1.<parts>.<assembled>`,
    /// positions in hexadecimal.
    pub fn encode(&self) -> String {
        format!("{CURSOR_PREFIX}.{:x}.{:x}", self.parts, self.assembled)
    }

    /// Reads an id made by [`Cursor::encode`]; the error names the value and
    /// the rule.
    pub fn parse(s: &str) -> Result<Cursor> {
        let bad = || {
            Error::InvalidArgument(format!(
                "change id {s:?} is not one casmand gave: ids look like c1.<hex>.<hex>; resume from the id of \
                 the last change received, or give none to start from now"
            ))
        };
        let mut it = s.trim().split('.');
        if it.next() != Some(CURSOR_PREFIX) {
            return Err(bad());
        }
        let mut pos = || it.next().and_then(|p| i64::from_str_radix(p, 16).ok()).filter(|p| *p >= 0);
        let (parts, assembled) = (pos().ok_or_else(bad)?, pos().ok_or_else(bad)?);
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(Cursor { parts, assembled })
    }

    /// This cursor moved past position `pos` of `database`.
    pub fn advanced(mut self, database: &str, pos: i64) -> Cursor {
        match database {
            PARTS_DB => self.parts = self.parts.max(pos),
            _ => self.assembled = self.assembled.max(pos),
        }
        self
    }

    /// The position of `database`.
    pub fn of(&self, database: &str) -> i64 {
        if database == PARTS_DB { self.parts } else { self.assembled }
    }
}

/// The newest position of each file now: "start from now".
pub async fn head(dbs: &Databases) -> Result<Cursor> {
    let mut c = Cursor::default();
    for db in [&dbs.parts, &dbs.assembled] {
        let mut conn = db.reader().await.acquire().await?;
        if has_table(&mut conn, "change_feed").await? {
            let pos: Option<i64> =
                sqlx::query_scalar("SELECT MAX(pos) FROM change_feed").fetch_one(&mut *conn).await?;
            c = c.advanced(db.name, pos.unwrap_or(0));
        }
    }
    Ok(c)
}

/// The columns every change read by this module and by
/// `super::change_history` comes in (see [`Raw`]).
pub(crate) const RAW_COLUMNS: usize = 14;

/// `json_object` of an `assembly` row `a` (the event's values and its row id).
pub(crate) fn event_json(a: &str) -> String {
    let fields: Vec<String> = EVENT_COLUMNS.iter().map(|c| format!("'{c}', {a}.{c}")).collect();
    format!("json_object('id', {a}.id, {})", fields.join(", "))
}

/// The feed of `db` after position `after`, oldest first, at most `limit`
/// rows: (position, change). A change whose row was removed since (a scan
/// event a later clear deleted) comes as `None`: its position still counts.
async fn read_after(db: &Db, after: i64, limit: i64) -> Result<Vec<(i64, Option<Raw>)>> {
    let mut conn = db.reader().await.acquire().await?;
    if !has_table(&mut conn, "change_feed").await? {
        return Ok(Vec::new());
    }
    let sql = if db.name == ASSEMBLED_DB {
        format!(
            "SELECT f.pos,
                    CASE WHEN f.event_id IS NOT NULL THEN 'event' WHEN f.conflict IS NOT NULL THEN 'conflict'
                         ELSE 'log' END,
                    s.site_id, COALESCE(o.seq, c.seq, 0), COALESCE(o.hlc, c.hlc, k.hlc, 0),
                    CASE WHEN f.event_id IS NOT NULL THEN 'assembly' ELSE c.tbl END,
                    CASE WHEN f.event_id IS NOT NULL THEN 'insert' ELSE c.op END,
                    CASE WHEN a.id IS NOT NULL THEN {event} ELSE c.row END,
                    COALESCE(a.scan_time, k.at), k.state, k.kind, k.subject, k.other, k.detail,
                    (f.event_id IS NOT NULL AND a.id IS NULL) OR (f.site IS NOT NULL AND c.seq IS NULL)
                    OR (f.conflict IS NOT NULL AND k.id IS NULL)
               FROM change_feed f
               LEFT JOIN assembly a ON a.id = f.event_id
               LEFT JOIN event_origin o ON o.event_id = f.event_id
               LEFT JOIN change_log c ON c.site = f.site AND c.seq = f.seq
               LEFT JOIN conflict_log k ON k.id = f.conflict
               LEFT JOIN sites s ON s.code = COALESCE(o.site, c.site)
              WHERE f.pos > ?1 ORDER BY f.pos LIMIT ?2",
            event = event_json("a")
        )
    } else {
        "SELECT f.pos, CASE WHEN f.conflict IS NOT NULL THEN 'conflict' ELSE 'log' END,
                s.site_id, COALESCE(c.seq, 0), COALESCE(c.hlc, k.hlc, 0), c.tbl, c.op, c.row,
                k.at, k.state, k.kind, k.subject, k.other, k.detail,
                (f.site IS NOT NULL AND c.seq IS NULL) OR (f.conflict IS NOT NULL AND k.id IS NULL)
           FROM change_feed f
           LEFT JOIN change_log c ON c.site = f.site AND c.seq = f.seq
           LEFT JOIN conflict_log k ON k.id = f.conflict
           LEFT JOIN sites s ON s.code = c.site
          WHERE f.pos > ?1 ORDER BY f.pos LIMIT ?2"
            .to_owned()
    };
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(after).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            let pos: i64 = r.try_get(0)?;
            let gone: bool = r.try_get(RAW_COLUMNS)?;
            let raw = if gone { None } else { Some(Raw::from_sqlx(r, Some(pos))?) };
            Ok((pos, raw))
        })
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
        .map_err(Error::from)
}

/// What one read of the feed found.
#[derive(Debug, Default)]
pub struct Batch {
    /// The changes, in the order to send them (each file's in commit order;
    /// the two files interleaved by position).
    pub changes: Vec<ChangeEntry>,
    /// The cursor after everything read (also past changes that were not
    /// sent because their rows are gone).
    pub cursor: Cursor,
    /// Whether a file had more than `limit` new changes (read again at once).
    pub more: bool,
}

/// The changes of both files after `cursor`, at most `limit` of each.
/// Each change's id is the cursor just after it.
pub async fn read(dbs: &Databases, cursor: Cursor, limit: i64) -> Result<Batch> {
    read_some(dbs, cursor, limit, [true, true]).await
}

/// [`read`], of parts.db only if `which[0]`, of assembled_casm.db only if
/// `which[1]` (a file nothing committed to since the last read).
pub async fn read_some(dbs: &Databases, cursor: Cursor, limit: i64, which: [bool; 2]) -> Result<Batch> {
    let mut read = Vec::new();
    let mut more = false;
    for (db, wanted) in [&dbs.parts, &dbs.assembled].into_iter().zip(which) {
        if !wanted {
            continue;
        }
        let rows = read_after(db, cursor.of(db.name), limit).await?;
        more |= rows.len() as i64 >= limit;
        read.push((db.name, rows));
    }
    // Interleaved by position (both follow the wall clock), each file's in order.
    let mut all: Vec<(i64, &'static str, Option<Raw>)> =
        read.into_iter().flat_map(|(name, rows)| rows.into_iter().map(move |(p, r)| (p, name, r))).collect();
    all.sort_by_key(|(p, name, _)| (*p, *name == ASSEMBLED_DB));
    let mut at = cursor;
    let mut changes = Vec::with_capacity(all.len());
    for (pos, name, raw) in all {
        at = at.advanced(name, pos);
        if let Some(raw) = raw {
            let mut entry = ChangeEntry::from_raw(name, raw);
            entry.id = Some(at);
            changes.push(entry);
        }
    }
    Ok(Batch { changes: super::feed_entry::collapse(changes), cursor: at, more })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_bad_ids_are_named() {
        let c = Cursor { parts: 0x1234_5678_9abc, assembled: 7 };
        assert_eq!(Cursor::parse(&c.encode()).ok(), Some(c));
        assert_eq!(Cursor::parse(" c1.0.0 ").ok(), Some(Cursor::default()));
        for bad in ["", "c1", "c1.1", "c2.1.1", "c1.1.1.1", "c1.x.1", "c1.-1.0", "12345"] {
            match Cursor::parse(bad) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(&format!("{bad:?}")), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert_eq!(c.advanced(PARTS_DB, 5).parts, 0x1234_5678_9abc);
        assert_eq!(c.advanced(ASSEMBLED_DB, 9).assembled, 9);
    }
}

#[cfg(test)]
mod feed_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{
        db::{Databases, batch::run_batch, change_history, feed_entry::Kind, parts, positions, scans},
        inventory::{GridCode, PartType, Polarization},
    };

    /// Local writes of both files come out of the feed in commit order,
    /// each exactly once whatever the page size, resumable from any id; the
    /// history lists the same changes by time; a restart keeps positions.
    #[tokio::test]
    async fn the_feed_gives_every_change_once_in_order_and_the_history_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        dbs.stamp_as("lab").await.unwrap();
        let start = head(&dbs).await.unwrap();
        for t in [PartType::Antenna, PartType::Lna] {
            parts::generate(&dbs.parts, &dbs.state, t, Polarization::P1, 2, 1..=99_999).await.unwrap();
        }
        let op = |a: &str, b: &str| {
            let parts = dbs.parts.clone();
            let (a, b) = (a.to_owned(), b.to_owned());
            async move {
                scans::ScanOp::Connect {
                    source: scans::resolve(&parts, &a).await.unwrap(),
                    target: scans::resolve(&parts, &b).await.unwrap(),
                }
            }
        };
        let connect = op("ANT00001P1", "LNA00001P1").await;
        run_batch(&dbs.assembled, &[&connect]).await[0].as_ref().unwrap();
        let (one, two) = (GridCode::parse("CN002E03").unwrap(), GridCode::parse("CN003E03").unwrap());
        positions::assign(&dbs.parts, "ANT00001", one, None, false).await.unwrap();
        positions::assign(&dbs.parts, "ANT00001", two, None, true).await.unwrap();
        let all = read(&dbs, start, 1000).await.unwrap();
        let kinds: Vec<(Kind, &str)> = all.changes.iter().map(|c| (c.kind, c.subject.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::PartCreated, "ANT00001P1"),
                (Kind::PartCreated, "ANT00002P1"),
                (Kind::PartCreated, "LNA00001P1"),
                (Kind::PartCreated, "LNA00002P1"),
                (Kind::Connected, "ANT00001P1"),
                (Kind::PositionAssigned, "ANT00001"),
                (Kind::PositionMoved, "ANT00001"),
            ]
        );
        assert!(all.changes.iter().all(|c| c.site.as_deref() == Some("lab")));
        assert_eq!(all.changes.last().and_then(|c| c.id), Some(all.cursor));
        // One at a time, resuming from each id: the same changes.
        let mut at = start;
        let mut one_by_one = Vec::new();
        loop {
            let b = read(&dbs, at, 1).await.unwrap();
            if b.cursor == at {
                break;
            }
            one_by_one.extend(b.changes.into_iter().map(|c| (c.kind, c.subject)));
            at = b.cursor;
        }
        assert_eq!(one_by_one.len(), 8, "the move is read in two pieces: {one_by_one:?}");
        assert_eq!(at, all.cursor);
        // Nothing new: nothing read, cursor kept.
        let none = read(&dbs, all.cursor, 10).await.unwrap();
        assert!(none.changes.is_empty() && none.cursor == all.cursor);
        // The history: the same changes, by time.
        let mut listed = Vec::new();
        change_history::list(&dbs, &change_history::Filter::default(), "lab", 3, |page| {
            listed.extend(page.into_iter().map(|c| c.kind));
            async { true }
        })
        .await
        .unwrap();
        assert_eq!(listed.len(), 7, "{listed:?}");
        assert!(listed.contains(&Kind::PositionMoved));
        // Positions survive a restart; the next change comes after.
        dbs.close().await;
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        dbs.stamp_as("lab").await.unwrap();
        assert_eq!(head(&dbs).await.unwrap(), all.cursor);
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P2, 1, 1..=99_999)
            .await
            .unwrap();
        let next = read(&dbs, all.cursor, 10).await.unwrap();
        assert_eq!(next.changes.len(), 1);
        assert!(next.cursor.parts > all.cursor.parts);
    }
}

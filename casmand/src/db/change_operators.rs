//! Who made a change, from this site's audit log (state.db).
//!
//! The change logs record the site of every change, not the person: the
//! operator (`--operator`, or the Unix user of the socket) is in the audit
//! entry of the request, written just after the change committed. A change
//! made at this site is matched to the entries of its database and action
//! written from its second to five seconds later that name its part
//! (scans, positions) or, for requests whose entry names no part (parts
//! added, loads, clears, reverts), by time alone; it gets that entry's
//! operator when all the matching entries agree, and is unknown otherwise.
//! Changes made at other sites are unknown: the audit log stays at the
//! site that wrote it (it is not exchanged).

use super::{
    Db,
    feed_entry::{ChangeEntry, Kind},
};
use crate::error::Result;

/// Seconds after a change within which its audit entry is written.
const LAG_SECONDS: i64 = 5;
/// Entries further apart than this are matched with separate reads.
const CLUSTER_SECONDS: i64 = 30;
/// Audit entries read at most per cluster (beyond, the operators are unknown).
const MAX_ROWS: i64 = 20_000;

/// The audit actions that make changes of `kind`, and whether their entry
/// names the part.
fn actions(kind: Kind) -> (&'static [&'static str], bool) {
    match kind {
        Kind::Connected => (&["scan.connect"], true),
        Kind::Disconnected => (&["scan.disconnect", "scan.remove"], true),
        Kind::PositionAssigned | Kind::PositionMoved | Kind::PositionRemoved => {
            (&["positions.assign", "positions.remove"], true)
        }
        Kind::PartCreated => (&["parts.add"], false),
        Kind::BoardAdded | Kind::BoardChanged | Kind::BoardRemoved => (&["database.load_snap_boards"], false),
        Kind::CoordinatesLoaded | Kind::CoordinatesRemoved | Kind::PositionChanged => {
            (&["database.load_coordinates"], false)
        }
        Kind::Cleared => (&["database.clear"], false),
        _ => (&[], false),
    }
}

/// An audit entry as read: (at, uid, operator, action, database, detail).
type AuditRow = (String, Option<i64>, Option<String>, String, Option<String>, Option<String>);

/// An audit entry: (second, operator label, action, database, detail).
type Audit = (i64, String, String, String, String);

fn stored(second: i64) -> String {
    crate::timestamp::format(jiff::Timestamp::from_second(second).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

/// Fills the operator of every entry of `entries` made at `local_site`
/// that the audit log of `state` names (see the module's comment). Returns
/// the index of the first entry whose audit entry is not written yet
/// (none matches it) and may still come (the change is younger than
/// `LAG_SECONDS` by `now_millis`): the live feed waits for it there.
pub async fn fill(
    state: &Db,
    local_site: &str,
    entries: &mut [ChangeEntry],
    now_millis: i64,
) -> Result<Option<usize>> {
    let mut awaiting: Option<usize> = None;
    let wanted: Vec<usize> = (0..entries.len())
        .filter(|&i| {
            let e = &entries[i];
            e.site.as_deref() == Some(local_site)
                && e.millis > 0
                && e.hlc > 0
                && !actions(e.kind).0.is_empty()
        })
        .collect();
    let mut start = 0;
    while start < wanted.len() {
        let first = entries[wanted[start]].millis.div_euclid(1000);
        let mut end = start + 1;
        while end < wanted.len() && entries[wanted[end]].millis.div_euclid(1000) - first <= CLUSTER_SECONDS {
            end += 1;
        }
        let last = entries[wanted[end - 1]].millis.div_euclid(1000);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, uid, operator, action, database, detail FROM audit_log
                  WHERE at >= ? AND at <= ? ORDER BY id LIMIT ?",
        )
        .bind(stored(first))
        .bind(stored(last + LAG_SECONDS))
        .bind(MAX_ROWS)
        .fetch_all(&*state.reader().await)
        .await?;
        if (rows.len() as i64) < MAX_ROWS {
            let audits: Vec<Audit> = rows
                .into_iter()
                .filter_map(|(at, uid, operator, action, database, detail)| {
                    let second = at.parse::<jiff::Timestamp>().ok()?.as_second();
                    let label = match (operator.filter(|o| !o.is_empty()), uid) {
                        (Some(o), _) => o,
                        (None, Some(uid)) => format!("uid {uid}"),
                        (None, None) => return None,
                    };
                    Some((second, label, action, database.unwrap_or_default(), detail.unwrap_or_default()))
                })
                .collect();
            for &i in &wanted[start..end] {
                match operator_of(&entries[i], &audits) {
                    Matched::One(o) => entries[i].operator = Some(o),
                    Matched::Several => {}
                    Matched::None if now_millis - entries[i].millis < LAG_SECONDS * 1000 => {
                        awaiting = Some(awaiting.map_or(i, |a| a.min(i)));
                    }
                    Matched::None => {}
                }
            }
        }
        start = end;
    }
    Ok(awaiting)
}

/// What the audit entries matching a change say of its operator.
#[derive(Debug, PartialEq)]
enum Matched {
    /// They agree on this one.
    One(String),
    /// They name different operators: unknown.
    Several,
    /// None matches (not written yet, or never).
    None,
}

/// The one operator the audit entries matching `e` agree on.
fn operator_of(e: &ChangeEntry, audits: &[Audit]) -> Matched {
    let (acts, named) = actions(e.kind);
    let second = e.millis.div_euclid(1000);
    let mut found: Option<&str> = None;
    for (at, label, action, database, detail) in audits {
        let matches = (second..=second + LAG_SECONDS).contains(at)
            && database == e.database
            && acts.contains(&action.as_str())
            && (!named || detail.contains(&format!("\"{}\"", e.subject)));
        if matches {
            match found {
                Some(f) if f != label => return Matched::Several,
                _ => found = Some(label),
            }
        }
    }
    found.map_or(Matched::None, |f| Matched::One(f.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{
        ASSEMBLED_DB,
        feed_entry::{Raw, Source},
    };

    fn scan(seconds: i64, part: &str) -> ChangeEntry {
        ChangeEntry::from_raw(
            ASSEMBLED_DB,
            Raw {
                pos: None,
                source: Source::Log,
                site: Some("lab".into()),
                seq: 1,
                hlc: (seconds * 1000) << 16,
                tbl: "assembly".into(),
                op: "insert".into(),
                row: Some(serde_json::json!({"part_number": part, "connected_to": "LNA00001P1"}).to_string()),
                time: None,
                conflict: None,
            },
        )
    }

    #[test]
    fn the_operator_is_the_one_all_matching_entries_name() {
        let a = |at: i64, who: &str, part: &str| {
            (
                at,
                who.to_owned(),
                "scan.connect".to_owned(),
                ASSEMBLED_DB.to_owned(),
                format!("{{\"source\":\"{part}\"}}"),
            )
        };
        let e = scan(100, "ANT00001P1");
        let one = |o: &str| Matched::One(o.to_owned());
        assert_eq!(operator_of(&e, &[a(101, "ana", "ANT00001P1"), a(101, "bo", "ANT00002P1")]), one("ana"));
        assert_eq!(
            operator_of(&e, &[a(101, "ana", "ANT00001P1"), a(102, "bo", "ANT00001P1")]),
            Matched::Several
        );
        assert_eq!(
            operator_of(&e, &[a(99, "ana", "ANT00001P1"), a(106, "ana", "ANT00001P1")]),
            Matched::None
        );
        assert_eq!(operator_of(&e, &[a(105, "ana", "ANT00001P1")]), one("ana"));
    }
}

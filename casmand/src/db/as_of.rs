//! The state at a past moment, read from the logs by the same rules as the
//! current state (issue 33, "The array at any moment").
//!
//! * **Connections.** The current state keeps, per pair of parts, the pair's
//!   newest event by (scan time, clock, id) (`pair_state`), and every other
//!   event of the pair in `pair_other`. A pair's state at `T` is its newest
//!   event with a scan time at or before `T`: for a pair whose kept event is
//!   at or before `T` (most pairs, for a recent `T`) that is the kept event
//!   itself; for the others it is found by key among the pair's other
//!   events. The current listing's pass over the kept state, one
//!   sequential pass over the log for the events after `T` (no fold: each
//!   is compared with `T`, and only those still kept are looked at), and
//!   one indexed lookup per pair that changed after `T`.
//! * **Positions, boards, grid coordinates** (parts.db). Every change to
//!   them is a row of `change_log` (the row's values as JSON, the clock of
//!   the change); a row's state at `T` is its newest change made at or
//!   before `T` (a removal: absent), unless a `clear` of its table came
//!   after. Changes from before the upgrade carry clock 0 and count from the
//!   row's own time (`assigned_at`, `date_added`); rows with no change at
//!   all (no `row_clock` entry: a file no site has stamped) count from their
//!   own time with their current values. Each table's changes are found by
//!   a partial index of their own (parts 0007), not among the parts'.
//!
//! A late sync that brings another site's older changes changes the answers
//! for the times after those changes: the logs are the truth, and they grew.

use super::part_code::part_code;
use crate::{error::Error, timestamp};

/// A moment an as-of question asks about: validated, in the stored time
/// form (so it is written into SQL as a literal: only digits, `-`, `:`, `T`
/// and `Z`), with the greatest clock of a change made within its second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    stored: String,
    hlc_max: i64,
}

impl At {
    /// Reads `s` (see [`timestamp::parse_instant`]).
    pub fn parse(s: &str) -> Result<At, Error> {
        let ts = timestamp::parse_instant(s).map_err(Error::InvalidArgument)?;
        let stored = timestamp::format(ts);
        if !timestamp::is_stored_form(&stored) {
            return Err(Error::InvalidArgument(format!(
                "time {s:?} is outside the years casman stores (0000-9999)"
            )));
        }
        // The clock counts milliseconds since 1970 × 65536: the last value
        // within the second of `ts` (times before 1970 hold no change).
        let hlc_max =
            (ts.as_second().saturating_add(1)).saturating_mul(1000).saturating_mul(65536).max(1) - 1;
        Ok(At { stored, hlc_max })
    }

    /// None for an empty `s` (the present), else [`At::parse`].
    pub fn optional(s: &str) -> Result<Option<At>, Error> {
        match s.trim() {
            "" => Ok(None),
            t => At::parse(t).map(Some),
        }
    }

    /// The moment in the stored form.
    pub fn stored(&self) -> &str {
        &self.stored
    }
}

/// The columns of the `active_connections` view the listings read
/// (`assembly::KEPT_COLUMNS`), from the log row `{e}`.
pub fn log_columns(e: &str) -> String {
    format!(
        "{e}.part_number AS source, {e}.part_type AS source_type, {e}.polarization AS source_polarization, \
         {e}.connected_to AS target, {e}.connected_to_type AS target_type, \
         {e}.connected_polarization AS target_polarization, {e}.scan_time AS since, {e}.id AS event_id"
    )
}

/// The id of the newest event of kept pair `k` with a scan time at or
/// before `t` (NULL when none), by the rule of the kept state, among the
/// pair's other events (those of a pair whose kept event is after `t`).
fn newest_other(t: &str) -> String {
    format!(
        "(SELECT o.id FROM pair_other p JOIN assembly o ON o.id = p.event_id
            LEFT JOIN event_origin g ON g.event_id = o.id
           WHERE p.lo = k.lo AND p.hi = k.hi AND COALESCE(o.scan_time, '') <= '{t}'
           ORDER BY COALESCE(o.scan_time, '') DESC, COALESCE(g.hlc, 0) DESC, o.id DESC LIMIT 1)"
    )
}

/// The connections held at `at`, as a derived table named
/// `active_connections` with the view's columns that the listings read
/// (source, source_type, source_polarization, target, target_type,
/// target_polarization, since, event_id), for the pairs of the kept state
/// passing `pair_filter` (SQL over `k`; empty for all).
///
/// * Pairs whose kept event is at or before `at`: that event, read as the
///   current listing reads it.
/// * Pairs changed after `at`: every pair when filtered (a few, by key);
///   unfiltered, the events after `at` are found in one sequential pass over
///   the log (no random lookup per pair, which at ten times the field size
///   costs more than the listing itself), each kept event among them names
///   its pair, and the pair's newest event by `at` is looked up by key.
pub fn connections(at: &At, pair_filter: &str) -> String {
    let t = &at.stored;
    let (head, other) = (log_columns("a"), log_columns("b"));
    let newest = newest_other(t);
    let changed = if pair_filter.is_empty() {
        let (x, y) = (part_code("a.part_number"), part_code("a.connected_to"));
        format!(
            "SELECT {other} FROM assembly a
               JOIN pair_state k ON k.lo = min({x}, {y}) AND k.hi = max({x}, {y}) AND k.event_id = a.id
               JOIN assembly b ON b.id = {newest}
              WHERE COALESCE(a.scan_time, '') > '{t}' AND a.part_number IS NOT NULL AND a.connected_to IS NOT NULL
                AND b.connection_status IS NOT 'disconnected'"
        )
    } else {
        format!(
            "SELECT {other} FROM pair_state k JOIN assembly a ON a.id = k.event_id
               JOIN assembly b ON b.id = {newest}
              {pair_filter} AND COALESCE(a.scan_time, '') > '{t}' AND b.connection_status IS NOT 'disconnected'"
        )
    };
    let kept_filter = if pair_filter.is_empty() { "WHERE".to_owned() } else { format!("{pair_filter} AND") };
    format!(
        "(SELECT {head} FROM pair_state k JOIN assembly a ON a.id = k.event_id
           {kept_filter} k.active AND COALESCE(a.scan_time, '') <= '{t}'
         UNION ALL
         {changed}) AS active_connections"
    )
}

/// The connections listing's source: the kept view now, or the state at
/// `at` (see [`connections`]).
pub fn connections_source(at: Option<&At>) -> String {
    match at {
        None => "active_connections".to_owned(),
        Some(at) => connections(at, ""),
    }
}

/// A tracked table of parts.db as it was at `at`: a derived table named
/// `tbl` with the columns `columns` (names of the table's columns), for a
/// query written against the live table. `own_time` is the row's column
/// that says since when it holds (changes from before the upgrade have no
/// clock), `key` the column naming a row across sites.
pub fn tracked_table(tbl: &str, key: &str, own_time: Option<&str>, columns: &[&str], at: &At) -> String {
    let (t, hb) = (&at.stored, at.hlc_max);
    let own = |row: &str| match own_time {
        Some(c) => format!("COALESCE({row}, '') <= '{t}'", row = json_or_column(row, c)),
        None => "1".to_owned(),
    };
    let from_log: Vec<String> =
        columns.iter().map(|c| format!("json_extract(c.row, '$.{c}') AS \"{c}\"")).collect();
    let live: Vec<String> = columns.iter().map(|c| format!("live.\"{c}\"")).collect();
    format!(
        "(SELECT {from_log} FROM
            (SELECT c.row, c.op, c.hlc,
                    row_number() OVER (PARTITION BY CAST(json_extract(c.row, '$.{key}') AS TEXT)
                                       ORDER BY c.hlc DESC, c.site DESC, c.seq DESC) AS n
               FROM change_log c
              WHERE c.tbl = '{tbl}' AND c.op <> 'clear'
                AND CASE WHEN c.hlc > 0 THEN c.hlc <= {hb} ELSE {own_log} END) c
          WHERE c.n = 1 AND c.op <> 'delete'
            AND c.hlc > COALESCE((SELECT MAX(x.hlc) FROM change_log x
                                   WHERE x.tbl = '{tbl}' AND x.op = 'clear' AND x.hlc <= {hb}), -1)
          UNION ALL
          SELECT {live} FROM {tbl} live
           WHERE {own_live}
             AND NOT EXISTS (SELECT 1 FROM row_clock r
                              WHERE r.tbl = '{tbl}' AND r.key = CAST(live.\"{key}\" AS TEXT))
             AND NOT EXISTS (SELECT 1 FROM change_log x WHERE x.tbl = '{tbl}' AND x.op = 'clear' AND x.hlc <= {hb})
        ) AS {tbl}",
        from_log = from_log.join(", "),
        live = live.join(", "),
        own_log = own("c.row"),
        own_live = own("live"),
    )
}

/// `c`'s value in `row`: a log row's JSON (`c.row`) or a live row (`live`).
fn json_or_column(row: &str, c: &str) -> String {
    if row == "live" { format!("live.\"{c}\"") } else { format!("json_extract({row}, '$.{c}')") }
}

/// The columns of `antenna_positions`.
pub const POSITION_COLUMNS: [&str; 12] = [
    "id",
    "antenna_number",
    "array_id",
    "row_offset",
    "east_col",
    "grid_code",
    "assigned_at",
    "notes",
    "latitude",
    "longitude",
    "height",
    "coordinate_system",
];

/// The columns of `snap_boards`.
pub const BOARD_COLUMNS: [&str; 10] = [
    "id",
    "chassis",
    "slot",
    "serial_number",
    "mac_address",
    "ip_address",
    "feng_id",
    "notes",
    "date_added",
    "date_modified",
];

/// The columns of `grid_positions`.
pub const COORDINATE_COLUMNS: [&str; 6] =
    ["grid_code", "latitude", "longitude", "height", "coordinate_system", "notes"];

/// `antenna_positions` now (the table) or at `at`.
pub fn positions_source(at: Option<&At>) -> String {
    match at {
        None => "antenna_positions".to_owned(),
        Some(at) => {
            tracked_table("antenna_positions", "antenna_number", Some("assigned_at"), &POSITION_COLUMNS, at)
        }
    }
}

/// `snap_boards` now (the table) or at `at`.
pub fn boards_source(at: Option<&At>) -> String {
    match at {
        None => "snap_boards".to_owned(),
        Some(at) => tracked_table("snap_boards", "serial_number", Some("date_added"), &BOARD_COLUMNS, at),
    }
}

/// `grid_positions` now (the table) or at `at`.
pub fn coordinates_source(at: Option<&At>) -> String {
    match at {
        None => "grid_positions".to_owned(),
        Some(at) => tracked_table("grid_positions", "grid_code", None, &COORDINATE_COLUMNS, at),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn moments_are_stored_form_with_the_seconds_last_clock() {
        let at = At::parse("2025-01-15 10:30").unwrap();
        assert_eq!(at.stored(), "2025-01-15T10:30:00Z");
        let secs = 1_736_937_000_i64;
        assert_eq!(at.hlc_max, (secs + 1) * 1000 * 65536 - 1);
        assert!(At::optional("  ").unwrap().is_none());
        let e = At::parse("last tuesday").err().unwrap().to_string();
        assert!(e.contains("last tuesday") && e.contains("RFC 3339"), "{e}");
    }
}

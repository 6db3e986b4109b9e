//! What changed between two times (`casmanctl changes --since T`): the
//! change logs of both files merged by time, oldest first, read in pages
//! (memory bounded by a page whatever the span), each source by an index
//! on its time so that a span near now reads only its own rows:
//!
//! * scan events (`assembly`, by `scan_time`; their identity from
//!   `event_origin`), local and applied from other sites, and those from
//!   before the upgrade alike;
//! * the change logs (`change_log`, by clock): parts, positions, boards,
//!   coordinates, clears;
//! * conflicts opened and resolved (`conflict_log`, by time);
//! * rows of parts.db from before the upgrade, which have no change in the
//!   log (parts by `date_created`, positions by `assigned_at`, boards by
//!   `date_added`; what happened to them before the upgrade other than
//!   their creation was not recorded).

use std::future::Future;

use jiff::Timestamp;
use rusqlite::{Connection, types::Value};

use super::{
    ASSEMBLED_DB, Databases, PARTS_DB,
    feed::event_json,
    feed_entry::{ChangeEntry, Raw, collapse},
    paged,
};
use crate::error::Result;

/// Which changes to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// From this instant on (its whole second included); the beginning when None.
    pub since: Option<Timestamp>,
    /// Up to this instant (its whole second included); now when None.
    pub until: Option<Timestamp>,
    /// Only changes about this part (a part number; an antenna or board
    /// number matches its polarizations' part numbers and the reverse).
    pub part: Option<String>,
    /// Only changes made by this site.
    pub site: Option<String>,
}

/// The bounds of `filter` as the sources compare them: stored times
/// (prefixes, so that fractions of a second stored by older versions
/// count in their second) and clock values.
fn bounds(filter: &Filter) -> (String, String, i64, i64) {
    let second = |t: Timestamp| t.as_second();
    let text = |s: i64| {
        let t = Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH);
        t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
    };
    let since = filter.since.map(second);
    let until = filter.until.map(|t| second(t).saturating_add(1));
    (
        since.map(text).unwrap_or_default(),
        until.map(text).unwrap_or_else(|| "~".into()),
        since.map_or(1, |s| s.saturating_mul(1000 << 16).max(1)),
        until.map_or(i64::MAX, |s| s.saturating_mul(1000 << 16)),
    )
}

/// `expr IN (P, P1, P2) OR P IN (expr||P1, expr||P2)`, P being `?3`.
fn names(expr: &str) -> String {
    format!("({expr} IN (?3, ?3 || 'P1', ?3 || 'P2') OR ?3 IN ({expr} || 'P1', {expr} || 'P2'))")
}

/// The queries of one file, each ordered by time.
fn sources(conn: &Connection, database: &str, filter: &Filter) -> rusqlite::Result<Vec<String>> {
    let part = filter.part.is_some();
    let site = |col: &str| if filter.site.is_some() { format!(" AND {col} = ?4") } else { String::new() };
    let nulls = "NULL, NULL, NULL, NULL, NULL";
    let mut out = Vec::new();
    if database == ASSEMBLED_DB && super::read_only::has_table(conn, "event_origin")? {
        let part_sql = if part {
            " AND (a.part_number IN (?3, ?3 || 'P1', ?3 || 'P2') OR a.connected_to IN (?3, ?3 || 'P1', ?3 || 'P2'))"
        } else {
            ""
        };
        out.push(format!(
            "SELECT NULL, 'event', s.site_id, o.seq, o.hlc, 'assembly', 'insert', {event}, a.scan_time, {nulls}
               FROM assembly a LEFT JOIN event_origin o ON o.event_id = a.id LEFT JOIN sites s ON s.code = o.site
              WHERE a.scan_time >= ?1 AND a.scan_time < ?2{part_sql}{site}
              ORDER BY a.scan_time, COALESCE(o.hlc, 0), a.id",
            event = event_json("a"),
            site = site("s.site_id"),
        ));
    }
    if super::read_only::has_table(conn, "change_log")? {
        let part_sql = if part {
            let keys: Vec<String> = ["part_number", "antenna_number", "serial_number", "grid_code"]
                .iter()
                .map(|k| names(&format!("(c.row ->> '$.{k}')")))
                .collect();
            format!(" AND (c.op = 'clear' OR {})", keys.join(" OR "))
        } else {
            String::new()
        };
        out.push(format!(
            "SELECT NULL, 'log', s.site_id, c.seq, c.hlc, c.tbl, c.op, c.row, NULL, {nulls}
               FROM change_log c LEFT JOIN sites s ON s.code = c.site
              WHERE c.hlc >= ?5 AND c.hlc < ?6{part_sql}{site}
              ORDER BY c.hlc, c.site, c.seq",
            site = site("s.site_id"),
        ));
    }
    if super::read_only::has_table(conn, "conflict_log")? {
        let part_sql = if part {
            format!(" AND ({} OR instr(k.other, ?3) > 0)", names("k.subject"))
        } else {
            String::new()
        };
        // Found at this site: listed for it alone.
        let site_sql = if filter.site.is_some() { " AND ?4 = ?7" } else { "" };
        out.push(format!(
            "SELECT NULL, 'conflict', ?7, 0, k.hlc, 'conflict_log', k.state, NULL, k.at,
                    k.state, k.kind, k.subject, k.other, k.detail
               FROM conflict_log k WHERE k.at >= ?1 AND k.at < ?2{part_sql}{site_sql}
              ORDER BY k.at, k.id"
        ));
    }
    if database == PARTS_DB && super::read_only::has_table(conn, "row_clock")? {
        // Rows from before the upgrade: no stamped change of their key.
        for (tbl, key, date, values) in [
            (
                "parts",
                "part_number",
                "date_created",
                "'part_number', t.part_number, 'part_type', t.part_type",
            ),
            (
                "antenna_positions",
                "antenna_number",
                "assigned_at",
                "'antenna_number', t.antenna_number, 'grid_code', t.grid_code",
            ),
            (
                "snap_boards",
                "serial_number",
                "date_added",
                "'serial_number', t.serial_number, 'chassis', t.chassis, 'slot', t.slot",
            ),
        ] {
            if !super::read_only::has_table(conn, tbl)? {
                continue;
            }
            let part_sql = if part { format!(" AND {}", names(&format!("t.{key}"))) } else { String::new() };
            out.push(format!(
                "SELECT NULL, 'row', s.site_id, 0, 0, '{tbl}', 'insert', json_object({values}), t.{date}, {nulls}
                   FROM {tbl} t LEFT JOIN row_clock r ON r.tbl = '{tbl}' AND r.key = t.{key}
                   LEFT JOIN sites s ON s.code = r.site
                  WHERE t.{date} >= ?1 AND t.{date} < ?2 AND COALESCE(r.hlc, 0) = 0{part_sql}{site}
                  ORDER BY t.{date}, t.id",
                site = site("s.site_id"),
            ));
        }
    }
    Ok(out)
}

/// Every change `filter` selects, oldest first (ties: parts.db first),
/// passed to `page` in pages of about `size` as they are read; conflicts
/// are told as found at site `local_site`. Stops early when `page` returns
/// false.
pub async fn list<F, Fut>(
    dbs: &Databases,
    filter: &Filter,
    local_site: &str,
    size: usize,
    mut page: F,
) -> Result<()>
where
    F: FnMut(Vec<ChangeEntry>) -> Fut,
    Fut: Future<Output = bool>,
{
    let (since_t, until_t, since_h, until_h) = bounds(filter);
    let params: Vec<Value> = vec![
        Value::Text(since_t),
        Value::Text(until_t),
        filter.part.clone().map_or(Value::Null, Value::Text),
        filter.site.clone().map_or(Value::Null, Value::Text),
        Value::Integer(since_h),
        Value::Integer(until_h),
        Value::Text(local_site.to_owned()),
    ];
    let filter = filter.clone();
    let parts_path = dbs.parts.path.clone();
    let size = size.max(1);
    paged::produce(
        &dbs.assembled.path,
        "listing the changes",
        move |assembled, emit| {
            let parts = super::read_only::open(&parts_path)?;
            let mut statements = Vec::new();
            for (conn, name) in [(&parts, PARTS_DB), (assembled, ASSEMBLED_DB)] {
                for sql in sources(conn, name, &filter)? {
                    statements.push((name, conn.prepare(&sql)?));
                }
            }
            let mut cursors = Vec::new();
            for (name, stmt) in statements.iter_mut() {
                for i in 1..=stmt.parameter_count() {
                    if let Some(v) = params.get(i - 1) {
                        stmt.raw_bind_parameter(i, v)?;
                    }
                }
                cursors.push((*name, stmt.raw_query()));
            }
            let mut heads: Vec<Option<Raw>> = Vec::with_capacity(cursors.len());
            for (_, rows) in cursors.iter_mut() {
                heads.push(rows.next()?.map(Raw::from_row).transpose()?);
            }
            let mut out = Vec::with_capacity(size);
            loop {
                let next =
                    heads.iter().enumerate().filter_map(|(i, h)| h.as_ref().map(|r| (r.millis(), i))).min();
                let Some((_, i)) = next else { break };
                let (name, rows) = &mut cursors[i];
                let following = rows.next()?.map(Raw::from_row).transpose()?;
                if let Some(raw) = std::mem::replace(&mut heads[i], following) {
                    out.push((*name, raw));
                }
                if out.len() >= size && !emit(std::mem::replace(&mut out, Vec::with_capacity(size))) {
                    return Ok(());
                }
            }
            if !out.is_empty() {
                emit(out);
            }
            Ok(())
        },
        move |rows: Vec<(&'static str, Raw)>| {
            let entries = collapse(rows.into_iter().map(|(n, r)| ChangeEntry::from_raw(n, r)).collect());
            page(entries)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_take_whole_seconds() {
        let t = |s: &str| s.parse::<Timestamp>().ok();
        let f = Filter {
            since: t("2025-01-15T10:30:00.700Z"),
            until: t("2025-01-15T10:31:00Z"),
            ..Filter::default()
        };
        let (s, u, sh, uh) = bounds(&f);
        assert_eq!((s.as_str(), u.as_str()), ("2025-01-15T10:30:00", "2025-01-15T10:31:01"));
        assert_eq!((sh >> 16, uh >> 16), (1_736_937_000_000, 1_736_937_061_000));
        assert!("2025-01-15T10:30:00Z" >= s.as_str() && "2025-01-15T10:31:00.5Z" < u.as_str());
        let all = bounds(&Filter::default());
        assert_eq!((all.0.as_str(), all.1.as_str(), all.2, all.3), ("", "~", 1, i64::MAX));
    }
}

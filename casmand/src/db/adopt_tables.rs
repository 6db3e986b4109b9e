//! The table-by-table work of adoption (see `adopt.rs`): schema completion and
//! value normalisation for parts.db and assembled_casm.db. Every changed value
//! goes through [`Recorder::record`].

use std::collections::BTreeSet;

use jiff::tz::TimeZone;
use sqlx::{AssertSqlSafe, Row, SqliteConnection, sqlite::SqliteRow};

use super::adopt::{Recorder, Report, table_names};
use crate::{
    inventory::{
        GridCode, PartId, Polarization, classify_part_id,
        polarization::{LegacyPol, normalize_legacy_polarization},
    },
    timestamp,
};

/// Historic ids listed by name in the report; beyond this only counted.
const HISTORIC_LISTED: usize = 100;

const POL_REASON: &str = "legacy polarization normalised (1/2 -> P1/P2; N/A, X -> NULL)";
const POL_DERIVED: &str = "polarization derived from the part number";
const TIME_REASON: &str = "legacy timestamp converted to UTC ISO 8601";

async fn columns(conn: &mut SqliteConnection, table: &str) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!("SELECT name FROM pragma_table_info('{table}')");
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_all(conn).await
}

async fn add_column(
    conn: &mut SqliteConnection,
    report: &mut Report,
    table: &str,
    column: &str,
    decl: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!("ALTER TABLE {table} ADD COLUMN {column} {decl}");
    sqlx::query(AssertSqlSafe(sql)).execute(conn).await?;
    report.added_columns.push(format!("{table}.{column}"));
    Ok(())
}

async fn set_value(
    conn: &mut SqliteConnection,
    table: &str,
    column: &str,
    id: i64,
    value: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = format!("UPDATE {table} SET {column} = ? WHERE id = ?");
    sqlx::query(AssertSqlSafe(sql)).bind(value).bind(id).execute(conn).await?;
    Ok(())
}

/// Normalises one stored polarization; returns the value now stored.
#[allow(clippy::too_many_arguments)]
async fn fix_polarization(
    conn: &mut SqliteConnection,
    rec: &mut Recorder,
    report: &mut Report,
    table: &str,
    column: &str,
    id: i64,
    stored: Option<&str>,
    part_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    match normalize_legacy_polarization(stored) {
        LegacyPol::Changed(p) => {
            let new = p.map(Polarization::as_str);
            set_value(conn, table, column, id, new).await?;
            rec.record(conn, table, id, column, stored, new, POL_REASON).await?;
        }
        LegacyPol::Unrecognised => {
            report.notes.push(format!("{table} row {id}: {column} {stored:?} is not P1/P2; kept as it is"));
        }
        LegacyPol::Same if stored.is_none() => {
            if let Some(p) = part_id.and_then(polarization_of_id) {
                set_value(conn, table, column, id, Some(p.as_str())).await?;
                rec.record(conn, table, id, column, None, Some(p.as_str()), POL_DERIVED).await?;
            }
        }
        LegacyPol::Same => {}
    }
    Ok(())
}

/// The polarization written in a part id, current or historic (`ANTP1-00001`,
/// `ANT-P1-00001`, `TEST001P1`); none for SNAP ports and anything else.
fn polarization_of_id(id: &str) -> Option<Polarization> {
    match classify_part_id(id) {
        PartId::Current(pn) => Some(pn.polarization()),
        PartId::Historic { id, .. } => {
            let up = id.to_ascii_uppercase();
            if up.contains("P1-") || up.ends_with("P1") {
                Some(Polarization::P1)
            } else if up.contains("P2-") || up.ends_with("P2") {
                Some(Polarization::P2)
            } else {
                None
            }
        }
        _ => None,
    }
}

async fn fix_time(
    conn: &mut SqliteConnection,
    rec: &mut Recorder,
    tz: &TimeZone,
    table: &str,
    column: &str,
    id: i64,
    stored: Option<&str>,
) -> Result<(), sqlx::Error> {
    if let Some(new) = stored.and_then(|s| timestamp::normalise_legacy(s, tz)) {
        set_value(conn, table, column, id, Some(&new)).await?;
        rec.record(conn, table, id, column, stored, Some(&new), TIME_REASON).await?;
    }
    Ok(())
}

fn note_id(historic: &mut BTreeSet<String>, report: &mut Report, id: Option<&str>) {
    let Some(id) = id else { return };
    match classify_part_id(id) {
        PartId::Historic { id, .. } | PartId::Unrecognised(id) => {
            historic.insert(id);
        }
        PartId::NonCanonical { id, canonical } => {
            report.notes.push(format!("part id {id:?} is {canonical} in canonical spelling; kept as stored"));
        }
        PartId::Current(_) | PartId::Snap(_) => {}
    }
}

fn finish_historic(historic: BTreeSet<String>, report: &mut Report) {
    if historic.len() > HISTORIC_LISTED {
        report.notes.push(format!(
            "{} part ids in historic formats kept as they are; the first {HISTORIC_LISTED} are listed",
            historic.len()
        ));
    }
    report.historic_ids = historic.into_iter().take(HISTORIC_LISTED).collect();
}

fn note_added_tables(existing: &[String], wanted: &[&str], report: &mut Report) {
    for t in wanted {
        if !existing.iter().any(|e| e == t) {
            report.added_tables.push((*t).to_owned());
        }
    }
}

/// Adopts parts.db: parts, antenna_positions, snap_boards, grid_positions.
pub(super) async fn parts(
    conn: &mut SqliteConnection,
    tz: &TimeZone,
    rec: &mut Recorder,
    report: &mut Report,
) -> Result<(), sqlx::Error> {
    let existing = table_names(conn).await?;
    sqlx::raw_sql(include_str!("../../../migrations/parts/0001_schema.sql")).execute(&mut *conn).await?;
    note_added_tables(&existing, &["parts", "antenna_positions", "snap_boards", "grid_positions"], report);
    let has = |t: &str| existing.iter().any(|e| e == t);
    let mut historic = BTreeSet::new();

    if has("parts") {
        let cols = columns(conn, "parts").await?;
        if !cols.iter().any(|c| c == "polarization") {
            add_column(conn, report, "parts", "polarization", "TEXT").await?;
        }
        if !cols.iter().any(|c| c == "date_created") {
            add_column(conn, report, "parts", "date_created", "TEXT").await?;
            add_column(conn, report, "parts", "date_modified", "TEXT").await?;
            if cols.iter().any(|c| c == "created_at") {
                let modified =
                    if cols.iter().any(|c| c == "modified_at") { "modified_at" } else { "created_at" };
                let sql = format!("UPDATE parts SET date_created = created_at, date_modified = {modified}");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
                report.notes.push(format!(
                    "parts.date_created/date_modified copied from created_at/{modified} (kept)"
                ));
            }
        }
        let mut after = i64::MIN;
        loop {
            let rows = page(
                conn,
                "SELECT id, part_number, polarization, date_created, date_modified FROM parts
                  WHERE id > ?1 ORDER BY id LIMIT ?2",
                &mut after,
            )
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let number: Option<String> = row.try_get(1)?;
                let pol: Option<String> = row.try_get(2)?;
                fix_polarization(
                    conn,
                    rec,
                    report,
                    "parts",
                    "polarization",
                    id,
                    pol.as_deref(),
                    number.as_deref(),
                )
                .await?;
                for (i, col) in [(3, "date_created"), (4, "date_modified")] {
                    let v: Option<String> = row.try_get(i)?;
                    fix_time(conn, rec, tz, "parts", col, id, v.as_deref()).await?;
                }
                note_id(&mut historic, report, number.as_deref());
            }
        }
    }

    if has("antenna_positions") {
        adopt_positions(conn, tz, rec, report).await?;
    }

    if has("snap_boards") {
        let cols = columns(conn, "snap_boards").await?;
        if !cols.iter().any(|c| c == "feng_id") {
            add_column(conn, report, "snap_boards", "feng_id", "INTEGER").await?;
        }
        let rows = sqlx::query("SELECT id, date_added, date_modified FROM snap_boards")
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let id: i64 = row.try_get(0)?;
            for (i, col) in [(1, "date_added"), (2, "date_modified")] {
                let v: Option<String> = row.try_get(i)?;
                fix_time(conn, rec, tz, "snap_boards", col, id, v.as_deref()).await?;
            }
        }
    }
    finish_historic(historic, report);
    Ok(())
}

async fn adopt_positions(
    conn: &mut SqliteConnection,
    tz: &TimeZone,
    rec: &mut Recorder,
    report: &mut Report,
) -> Result<(), sqlx::Error> {
    let cols = columns(conn, "antenna_positions").await?;
    for (col, decl) in
        [("latitude", "REAL"), ("longitude", "REAL"), ("height", "REAL"), ("coordinate_system", "TEXT")]
    {
        if !cols.iter().any(|c| c == col) {
            add_column(conn, report, "antenna_positions", col, decl).await?;
        }
    }
    let zero_based: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM antenna_positions WHERE east_col = 0")
        .fetch_one(&mut *conn)
        .await?;
    // Highest column first, so that no shifted row collides with an unshifted one.
    let rows = sqlx::query(
        "SELECT id, array_id, row_offset, east_col, grid_code, assigned_at FROM antenna_positions ORDER BY east_col DESC, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let array: String = row.try_get(1)?;
        let offset: i64 = row.try_get(2)?;
        let col: i64 = row.try_get(3)?;
        let code: String = row.try_get(4)?;
        let assigned: Option<String> = row.try_get(5)?;
        if zero_based > 0 {
            let new_col = col + 1;
            let new_code = array
                .chars()
                .next()
                .and_then(|a| GridCode::new(a, offset as i32, new_col as u32).ok())
                .map(|g| g.to_string());
            match new_code {
                Some(new_code) => {
                    sqlx::query("UPDATE antenna_positions SET east_col = ?, grid_code = ? WHERE id = ?")
                        .bind(new_col)
                        .bind(&new_code)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    let reason = "0-based east column shifted to 1-based";
                    let (old_c, new_c) = (col.to_string(), new_col.to_string());
                    rec.record(conn, "antenna_positions", id, "east_col", Some(&old_c), Some(&new_c), reason)
                        .await?;
                    rec.record(
                        conn,
                        "antenna_positions",
                        id,
                        "grid_code",
                        Some(&code),
                        Some(&new_code),
                        reason,
                    )
                    .await?;
                }
                None => report.notes.push(format!(
                    "antenna_positions row {id} ({code}): cannot shift to a 1-based column; kept as it is"
                )),
            }
        }
        fix_time(conn, rec, tz, "antenna_positions", "assigned_at", id, assigned.as_deref()).await?;
    }
    if zero_based > 0 {
        report.notes.push(
            "antenna_positions used 0-based east columns (before Dec 2025): every position shifted by one column"
                .into(),
        );
    }
    Ok(())
}

/// Adopts assembled_casm.db: the `assembly` event log.
pub(super) async fn assembled(
    conn: &mut SqliteConnection,
    tz: &TimeZone,
    rec: &mut Recorder,
    report: &mut Report,
) -> Result<(), sqlx::Error> {
    let existing = table_names(conn).await?;
    sqlx::raw_sql(include_str!("../../../migrations/assembled/0001_schema.sql")).execute(&mut *conn).await?;
    note_added_tables(&existing, &["assembly"], report);
    if !existing.iter().any(|e| e == "assembly") {
        return Ok(());
    }
    let cols = columns(conn, "assembly").await?;
    if !cols.iter().any(|c| c == "connection_status") {
        add_column(conn, report, "assembly", "connection_status", "TEXT DEFAULT 'connected'").await?;
    }
    let mut historic = BTreeSet::new();
    let mut after = i64::MIN;
    loop {
        let rows = page(
            conn,
            "SELECT id, part_number, polarization, scan_time, connected_to, connected_polarization,
                    connected_scan_time, connection_status
               FROM assembly WHERE id > ?1 ORDER BY id LIMIT ?2",
            &mut after,
        )
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            assembly_row(conn, tz, rec, report, &mut historic, &row).await?;
        }
    }
    finish_historic(historic, report);
    Ok(())
}

/// Normalises one row of `assembly`.
async fn assembly_row(
    conn: &mut SqliteConnection,
    tz: &TimeZone,
    rec: &mut Recorder,
    report: &mut Report,
    historic: &mut BTreeSet<String>,
    row: &SqliteRow,
) -> Result<(), sqlx::Error> {
    let id: i64 = row.try_get(0)?;
    let part: Option<String> = row.try_get(1)?;
    let other: Option<String> = row.try_get(4)?;
    let status: Option<String> = row.try_get(7)?;
    for (i, col, owner) in [(2, "polarization", &part), (5, "connected_polarization", &other)] {
        let v: Option<String> = row.try_get(i)?;
        // Only the stored value is normalised here; a NULL stays NULL on assembly rows.
        if v.is_some() {
            fix_polarization(conn, rec, report, "assembly", col, id, v.as_deref(), owner.as_deref()).await?;
        }
    }
    for (i, col) in [(3, "scan_time"), (6, "connected_scan_time")] {
        let v: Option<String> = row.try_get(i)?;
        fix_time(conn, rec, tz, "assembly", col, id, v.as_deref()).await?;
    }
    if status.is_none() {
        set_value(conn, "assembly", "connection_status", id, Some("connected")).await?;
        let reason = "missing connection_status set to connected (as the Python migration did)";
        rec.record(conn, "assembly", id, "connection_status", None, Some("connected"), reason).await?;
    }
    note_id(historic, report, part.as_deref());
    note_id(historic, report, other.as_deref());
    Ok(())
}

/// Rows a page of a table adoption reads: memory stays at a page, whatever
/// the table's size (reading a 1,000,000-event log at once held 1.5 GB).
const PAGE: i64 = 2000;

/// The page of `sql` (selecting `id` first, `WHERE id > ?1 ORDER BY id
/// LIMIT ?2`) after id `after`, which moves to the page's last id. Rows are
/// only changed in place, by id, after they are read: no row is met twice.
async fn page(
    conn: &mut SqliteConnection,
    sql: &'static str,
    after: &mut i64,
) -> Result<Vec<SqliteRow>, sqlx::Error> {
    let rows = sqlx::query(sql).bind(*after).bind(PAGE).fetch_all(&mut *conn).await?;
    if let Some(last) = rows.last() {
        *after = last.try_get(0)?;
    }
    Ok(rows)
}

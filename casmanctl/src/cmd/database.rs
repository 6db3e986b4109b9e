//! `casmanctl database ...`

use std::{borrow::Cow, io::Write};

use casman_proto::v1::{ClearDatabaseRequest, GetAdoptionReportRequest, PrintDatabaseRequest, TableDump};
use clap::Subcommand;
use serde_json::json;

use super::prompt;
use crate::{
    cli::{ASSEMBLED_DB, Databases, PARTS_DB},
    client::Conn,
    error::CtlError,
    listing,
    output::{self, StreamTable},
};

/// Database commands.
#[derive(Debug, Subcommand)]
pub enum DatabaseCmd {
    /// Print every table, readable.
    Print {
        #[command(flatten)]
        dbs: Databases,
        /// At most this many rows per table (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Delete every part (`--parts`) and/or every scan (`--assembled`); none
    /// given means both. A local safety copy is taken first. Asks you to type
    /// the database name, or pass `--yes NAME` for each database.
    Clear {
        #[command(flatten)]
        dbs: Databases,
        /// Confirm without a prompt by naming the database (repeat for both).
        #[arg(long, value_name = "DATABASE")]
        yes: Vec<String>,
    },
    /// What casmand changed when adopting the Python CAsMan's files.
    Adoption,
    /// Compare the kept current state of assembled_casm.db (table
    /// active_connections) with the state recomputed from the whole log;
    /// exit 1 on any drift. `--repair` rebuilds it from the log.
    Check {
        /// Rebuild the kept state from the log if it differs.
        #[arg(long)]
        repair: bool,
    },
    /// Load grid coordinates from a CSV file (grid_code,latitude,longitude,height,
    /// coordinate_system,notes) into parts.db; coordinates are copied onto
    /// assigned antenna positions. Any bad row loads nothing unless --skip-bad-rows.
    LoadCoordinates {
        /// The CSV file (read by casmanctl).
        #[arg(long, value_name = "PATH", default_value = "grid_positions.csv")]
        csv: std::path::PathBuf,
        /// Load the good rows and report the bad ones.
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Load SNAP board configuration from a CSV file (chassis,slot,sn,mac,ip,
    /// feng_id,notes): an upsert by chassis and slot; any bad row loads nothing.
    LoadSnapBoards {
        /// The CSV file (read by casmanctl).
        #[arg(long, value_name = "PATH", default_value = "snap_boards.csv")]
        csv: std::path::PathBuf,
    },
}

/// Runs a database command.
pub async fn run(conn: &Conn, cmd: DatabaseCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        DatabaseCmd::Print { dbs, limit } => print(conn, dbs.names(), limit, as_json).await,
        DatabaseCmd::Clear { dbs, yes } => clear(conn, dbs.names(), yes, as_json).await,
        DatabaseCmd::Adoption => adoption(conn, as_json).await,
        DatabaseCmd::Check { repair } => super::current::check(conn, repair, as_json).await,
        DatabaseCmd::LoadCoordinates { csv, skip_bad_rows } => {
            super::grid::load_coordinates(conn, &csv, skip_bad_rows, as_json).await
        }
        DatabaseCmd::LoadSnapBoards { csv } => super::snap::load_snap_boards(conn, &csv, as_json).await,
    }
}

/// Prints the dump as it streams in, one page (at most 1,000 rows) at a time,
/// so memory stays bounded however large the database: for people a table
/// per database table, its columns sized from its first page; `--json` the
/// documented shape `{"tables": [{"database", "table", "columns", "rows"}]}`,
/// written incrementally.
async fn print(conn: &Conn, dbs: Vec<&str>, limit: u32, as_json: bool) -> Result<(), CtlError> {
    let req =
        PrintDatabaseRequest { databases: dbs.iter().map(|s| s.to_string()).collect(), limit, packed: true };
    let mut stream = conn.database().print_database(conn.request(req)).await?.into_inner();
    let mut out = listing::stdout();
    let io = |e: std::io::Error| CtlError::Io(format!("writing the dump: {e}"));
    if as_json {
        write!(out, "{{\"tables\": [").map_err(io)?;
        let mut open_table = false;
        while let Some(t) = stream.message().await? {
            json_page(&mut out, &t, &mut open_table).map_err(io)?;
        }
        if open_table {
            write!(out, "]}}").map_err(io)?;
        }
        writeln!(out, "\n]}}").map_err(io)?;
        return out.flush().map_err(io);
    }
    let mut table: Option<StreamTable> = None;
    while let Some(t) = stream.message().await? {
        if !t.continuation {
            if let Some(done) = table.take() {
                writeln!(out, "{}", done.foot()).map_err(io)?;
            }
            let head = format!("== {} : {} ({} rows)", t.database, t.table, t.table_rows);
            writeln!(out, "{}", output::human(&head)).map_err(io)?;
            if t.table_rows == 0 {
                writeln!(out, "(No entries in this table)").map_err(io)?;
            }
        }
        // The first page of a table sizes its columns; later rows are written as they are read.
        let mut first: Vec<Vec<Cow<'_, str>>> = Vec::new();
        let mut cells: Vec<Cow<'_, str>> = Vec::new();
        each_row(&t, |values| match &table {
            None => {
                first.push(values.iter().map(cell).collect());
                Ok(())
            }
            Some(table) => {
                cells.clear();
                cells.extend(values.iter().map(cell));
                table.write_row(&mut out, &cells)
            }
        })
        .map_err(io)?;
        if !first.is_empty() {
            let header: Vec<Cow<'_, str>> = t.columns.iter().map(|h| output::human(h)).collect();
            let header: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
            let head = StreamTable::new(&header, &first);
            out.write_all(head.head().as_bytes()).map_err(io)?;
            for r in &first {
                head.write_row(&mut out, r).map_err(io)?;
            }
            table = Some(head);
        }
    }
    if let Some(done) = table {
        writeln!(out, "{}", done.foot()).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// A value for people: NULL as `NULL`, text with its controls escaped.
fn cell<'a>(v: &Option<&'a str>) -> Cow<'a, str> {
    v.map_or(Cow::Borrowed("NULL"), output::human)
}

/// Calls `f` with each row of a page, its values in column order (NULL as
/// None), whichever form casmand sent them in: packed (asked for), or as
/// messages (a casmand that predates the packed form).
fn each_row<'t>(
    t: &'t TableDump,
    mut f: impl FnMut(&[Option<&'t str>]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut row: Vec<Option<&str>> = Vec::with_capacity(t.columns.len());
    if !t.rows.is_empty() {
        for r in &t.rows {
            row.clear();
            row.extend(r.values.iter().map(|v| (!v.is_null).then_some(v.value.as_str())));
            f(&row)?;
        }
        return Ok(());
    }
    let width = t.columns.len().max(1);
    let mut nulls = t.packed_nulls.iter().copied().peekable();
    let mut start = 0;
    for (i, end) in t.packed_ends.iter().enumerate() {
        let end = *end as usize;
        let null = nulls.next_if_eq(&(i as u32)).is_some();
        row.push((!null).then(|| t.packed_text.get(start..end).unwrap_or_default()));
        start = end;
        if row.len() == width {
            f(&row)?;
            row.clear();
        }
    }
    Ok(())
}

/// Writes a page of the dump in the `--json` shape: a table's head on its
/// first page (closing the one before), then its rows, compact, one a line.
fn json_page(out: &mut impl Write, t: &TableDump, open_table: &mut bool) -> std::io::Result<()> {
    if !t.continuation {
        if *open_table {
            write!(out, "]}}")?;
        }
        let head = json!({ "database": t.database, "table": t.table, "columns": t.columns }).to_string();
        let comma = if *open_table { "," } else { "" };
        write!(out, "{comma}\n  {}, \"rows\": [", &head[..head.len() - 1])?;
        *open_table = true;
    }
    let mut first = !t.continuation;
    each_row(t, |values| {
        out.write_all(if first { b"\n    [" } else { b",\n    [" })?;
        first = false;
        for (j, v) in values.iter().enumerate() {
            if j > 0 {
                out.write_all(b",")?;
            }
            match v {
                None => out.write_all(b"null")?,
                Some(v) => serde_json::to_writer(&mut *out, v)?,
            }
        }
        out.write_all(b"]")
    })
}

async fn clear(conn: &Conn, dbs: Vec<&str>, yes: Vec<String>, as_json: bool) -> Result<(), CtlError> {
    for name in &yes {
        if name != PARTS_DB && name != ASSEMBLED_DB {
            return Err(CtlError::Usage(format!("--yes {name:?}: expected parts.db or assembled_casm.db")));
        }
    }
    let mut results = Vec::new();
    for db in dbs {
        let confirm = if yes.iter().any(|y| y == db) {
            db.to_owned()
        } else if prompt::interactive() {
            eprintln!("This deletes every row of the main table of {db}. A safety copy is taken first.");
            prompt::ask(&format!("Type {db} to confirm: "))?
        } else {
            return Err(CtlError::Usage(format!(
                "clearing {db} needs confirmation: run on a terminal, or pass --yes {db}"
            )));
        };
        if confirm != db {
            return Err(CtlError::Usage(format!(
                "not confirmed ({confirm:?} is not {db}); nothing was cleared"
            )));
        }
        let req = ClearDatabaseRequest { database: db.to_owned(), confirm };
        let r = conn.database().clear_database(conn.request(req)).await?.into_inner();
        if !as_json {
            crate::output::say!("{db}: {} row(s) deleted; safety copy {}", r.rows_deleted, r.safety_copy);
        }
        let mut v = output::message(&r);
        v["database"] = json!(db);
        results.push(v);
    }
    if as_json {
        output::json(&json!({ "cleared": results }));
    }
    Ok(())
}

async fn adoption(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let r =
        conn.database().get_adoption_report(conn.request(GetAdoptionReportRequest {})).await?.into_inner();
    if as_json {
        output::json(&output::message(&r));
        return Ok(());
    }
    for a in &r.reports {
        if !a.adopted {
            crate::output::say!("{}: created by casmand (nothing adopted)", a.database);
            continue;
        }
        crate::output::say!("{}: adopted {} (legacy times read as {})", a.database, a.adopted_at, a.timezone);
        crate::output::say!("  original kept at {}", a.original_copy);
        for t in &a.tables {
            crate::output::say!(
                "  table {:<18} {} rows before, {} after",
                t.table,
                t.rows_before,
                t.rows_after
            );
        }
        for t in &a.added_tables {
            crate::output::say!("  added table {t}");
        }
        for c in &a.added_columns {
            crate::output::say!("  added column {c}");
        }
        for c in &a.changes {
            crate::output::say!("  {} value(s) of {}.{}: {}", c.count, c.table, c.column, c.reason);
        }
        if !a.historic_ids.is_empty() {
            crate::output::say!("  historic part ids kept as stored: {}", a.historic_ids.join(", "));
        }
        for n in &a.notes {
            crate::output::say!("  note: {n}");
        }
        crate::output::say!("  every change is in table legacy_values of {}", a.database);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use casman_proto::v1::{NullableString, TableRow};

    use super::*;

    fn rows(t: &TableDump) -> Vec<Vec<Option<String>>> {
        let mut out = Vec::new();
        let _ = each_row(t, |r| {
            out.push(r.iter().map(|v| v.map(str::to_owned)).collect());
            Ok(())
        });
        out
    }

    /// A page reads the same packed or as messages.
    #[test]
    fn packed_pages_read_as_the_rows() {
        let columns = vec!["id".to_owned(), "note".into()];
        let value =
            |v: Option<&str>| NullableString { is_null: v.is_none(), value: v.unwrap_or_default().into() };
        let messages = TableDump {
            columns: columns.clone(),
            rows: vec![
                TableRow { values: vec![value(Some("1")), value(Some("é"))] },
                TableRow { values: vec![value(Some("2")), value(None)] },
                TableRow { values: vec![value(None), value(Some(""))] },
            ],
            ..Default::default()
        };
        let packed = TableDump {
            columns,
            packed_text: "1é2".into(),
            packed_ends: vec![1, 3, 4, 4, 4, 4],
            packed_nulls: vec![3, 4],
            ..Default::default()
        };
        assert_eq!(rows(&packed), rows(&messages));
        assert_eq!(rows(&messages)[1], [Some("2".to_owned()), None]);
        assert!(rows(&TableDump::default()).is_empty());
    }
}

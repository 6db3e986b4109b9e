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
    let req = PrintDatabaseRequest { databases: dbs.iter().map(|s| s.to_string()).collect(), limit };
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
        if t.rows.is_empty() {
            continue;
        }
        let rows: Vec<Vec<Cow<'_, str>>> = t
            .rows
            .iter()
            .map(|r| {
                r.values
                    .iter()
                    .map(|v| if v.is_null { "NULL".into() } else { output::human(&v.value) })
                    .collect()
            })
            .collect();
        if table.is_none() {
            let header: Vec<Cow<'_, str>> = t.columns.iter().map(|h| output::human(h)).collect();
            let header: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
            let head = StreamTable::new(&header, &rows);
            out.write_all(head.head().as_bytes()).map_err(io)?;
            table = Some(head);
        }
        if let Some(table) = &table {
            for r in &rows {
                table.write_row(&mut out, r).map_err(io)?;
            }
        }
    }
    if let Some(done) = table {
        writeln!(out, "{}", done.foot()).map_err(io)?;
    }
    out.flush().map_err(io)
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
    for (i, r) in t.rows.iter().enumerate() {
        out.write_all(if i == 0 && !t.continuation { b"\n    [" } else { b",\n    [" })?;
        for (j, v) in r.values.iter().enumerate() {
            if j > 0 {
                out.write_all(b",")?;
            }
            if v.is_null {
                out.write_all(b"null")?;
            } else {
                serde_json::to_writer(&mut *out, &v.value)?;
            }
        }
        out.write_all(b"]")?;
    }
    Ok(())
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

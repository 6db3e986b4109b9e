//! `casmanctl export inputs`: the correlator input map (one row per antenna
//! polarization, from its grid position to the SNAP input it feeds), now or
//! at a past moment, as a table, CSV or JSON. The format is
//! `casman.v1.InputRow` (proto/casman/v1/inputs.proto), stable for scripts.

use std::io::Write;

use casman_proto::v1::{ExportInputsRequest, InputRow};
use clap::Subcommand;

use crate::{
    cli::AsOf,
    client::Conn,
    error::CtlError,
    listing::{self, FirstPage, Taken, io},
    output::{self, StreamTable},
};

/// Export commands.
#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// The correlator input map: one row per antenna polarization with its
    /// grid code, coordinates (and local east/north/up), its chain, the SNAP
    /// port, board, input index, F-engine id, packet index, MAC and IP, and
    /// whether the row is complete (`--csv`, or `--json` for scripts).
    Inputs {
        #[command(flatten)]
        at: AsOf,
        /// CSV with a header line (the columns of `CSV_HEADER` in the README).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
}

/// The CSV columns, in order (also the README's).
pub const CSV_HEADER: [&str; 26] = [
    "antenna",
    "antenna_number",
    "polarization",
    "grid_code",
    "kernel_index",
    "latitude",
    "longitude",
    "elevation",
    "coordinate_system",
    "east_m",
    "north_m",
    "up_m",
    "chain",
    "snap_port",
    "chassis",
    "slot",
    "adc_port",
    "input_index",
    "board_serial",
    "feng_id",
    "packet_index",
    "mac_address",
    "ip_address",
    "complete",
    "conflict",
    "problems",
];

/// Runs an export command.
pub async fn run(conn: &Conn, cmd: ExportCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        ExportCmd::Inputs { at, csv } => inputs(conn, &at, csv, as_json).await,
    }
}

async fn inputs(conn: &Conn, at: &AsOf, csv: bool, as_json: bool) -> Result<(), CtlError> {
    let req = ExportInputsRequest { as_of: at.as_of() };
    let mut stream = conn.assembly().export_inputs(conn.request(req)).await?.into_inner();
    let mut out = listing::stdout();
    if as_json {
        return listing::json(&mut out, "inputs", &mut stream, |a, out, r| a.item(out, &output::message(r)))
            .await;
    }
    if csv {
        let mut w = ::csv::Writer::from_writer(&mut out);
        w.write_record(CSV_HEADER).map_err(csv_error)?;
        while let Some(r) = stream.message().await? {
            w.write_record(csv_record(&r)).map_err(csv_error)?;
        }
        w.flush().map_err(io)?;
        drop(w);
        return out.flush().map_err(io);
    }
    let mut first = FirstPage::default();
    let mut table = None;
    let mut n = 0usize;
    while let Some(r) = stream.message().await? {
        n += 1;
        match first.take(r) {
            Taken::Held => {}
            Taken::Page(page) => table = Some(head(&mut out, &page)?),
            Taken::Later(r) => {
                if let Some(t) = &table {
                    t.write_row(&mut out, &table_row(&r)).map_err(io)?;
                }
            }
        }
    }
    if let Some(page) = first.rest() {
        table = Some(head(&mut out, &page)?);
    }
    match table {
        Some(t) => writeln!(out, "{}\n{n} antenna polarizations", t.foot()).map_err(io)?,
        None => writeln!(out, "No antenna heads a chain or has a grid position.").map_err(io)?,
    }
    out.flush().map_err(io)
}

const TABLE_HEADER: [&str; 8] =
    ["ANTENNA", "GRID", "SNAP PORT", "INPUT", "FENG", "PACKET", "BOARD", "STATUS"];

fn table_row(r: &InputRow) -> Vec<String> {
    let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    let status = if r.complete { "complete".to_owned() } else { r.problems.join("; ") };
    vec![
        r.antenna.clone(),
        dash(&r.grid_code),
        dash(&r.snap_port),
        n(r.input_index),
        n(r.feng_id),
        n(r.packet_index),
        dash(&r.board_serial),
        status,
    ]
}

fn head(out: &mut impl Write, page: &[InputRow]) -> Result<StreamTable, CtlError> {
    let rows: Vec<Vec<String>> = page.iter().map(table_row).collect();
    let t = StreamTable::new(&TABLE_HEADER, &rows);
    writeln!(out, "{}", t.head()).map_err(io)?;
    for r in &rows {
        t.write_row(out, r).map_err(io)?;
    }
    Ok(t)
}

/// A row's CSV record, in the order of [`CSV_HEADER`]; absent values empty,
/// the chain joined by `>`, the problems by `; `.
fn csv_record(r: &InputRow) -> Vec<String> {
    let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    vec![
        r.antenna.clone(),
        r.antenna_number.clone(),
        r.polarization.clone(),
        r.grid_code.clone(),
        n(r.kernel_index),
        f(r.latitude),
        f(r.longitude),
        f(r.elevation),
        r.coordinate_system.clone(),
        f(r.east_m),
        f(r.north_m),
        f(r.up_m),
        r.chain.join(">"),
        r.snap_port.clone(),
        n(r.chassis),
        r.slot.clone(),
        n(r.adc_port),
        n(r.input_index),
        r.board_serial.clone(),
        n(r.feng_id),
        n(r.packet_index),
        r.mac_address.clone(),
        r.ip_address.clone(),
        r.complete.to_string(),
        r.conflict.to_string(),
        r.problems.join("; "),
    ]
}

fn csv_error(e: ::csv::Error) -> CtlError {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => io(e),
        other => io(std::io::Error::other(format!("{other:?}"))),
    }
}

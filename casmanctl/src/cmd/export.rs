//! `casmanctl export inputs`: the correlator input map (one row per antenna
//! polarization, from its grid position to the SNAP input it feeds), now or
//! at a past moment, as a table, CSV or JSON. The format is
//! `casman.v1.InputRow` (proto/casman/v1/inputs.proto), stable for scripts.

use std::{borrow::Cow, io::Write};

use casman_proto::v1::{ExportInputsRequest, InputRow};
use clap::Subcommand;

use crate::{
    cli::AsOf,
    client::Conn,
    error::CtlError,
    listing::{self, Cells, io},
    output,
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
        return listing::csv(&mut out, &mut stream, &CSV_HEADER, csv_record).await;
    }
    let (table, n) = listing::table(&mut out, &mut stream, &TABLE_HEADER, table_row).await?;
    match table {
        Some(t) => write!(out, "{}\n{n} antenna polarizations\n", t.foot()).map_err(io)?,
        None => writeln!(out, "No antenna heads a chain or has a grid position.").map_err(io)?,
    }
    out.flush().map_err(io)
}

const TABLE_HEADER: [&str; 8] =
    ["ANTENNA", "GRID", "SNAP PORT", "INPUT", "FENG", "PACKET", "BOARD", "STATUS"];

fn table_row(r: &InputRow) -> Cells<'_> {
    let n = |v: Option<u32>| Cow::Owned(v.map_or_else(|| "-".into(), |v| v.to_string()));
    fn text(s: &str) -> Cow<'_, str> {
        if s.is_empty() { Cow::Borrowed("-") } else { output::human(s) }
    }
    let status = if r.complete { Cow::Borrowed("complete") } else { Cow::Owned(r.problems.join("; ")) };
    vec![
        output::human(&r.antenna),
        text(&r.grid_code),
        text(&r.snap_port),
        n(r.input_index),
        n(r.feng_id),
        n(r.packet_index),
        text(&r.board_serial),
        status,
    ]
}

/// A row's CSV record, in the order of [`CSV_HEADER`]; absent values empty,
/// the chain joined by `>`, the problems by `; `.
fn csv_record(r: &InputRow) -> Cells<'_> {
    let n = |v: Option<u32>| Cow::Owned(v.map(|v| v.to_string()).unwrap_or_default());
    let f = |v: Option<f64>| Cow::Owned(v.map(|v| v.to_string()).unwrap_or_default());
    fn b(s: &str) -> Cow<'_, str> {
        Cow::Borrowed(s)
    }
    vec![
        b(&r.antenna),
        b(&r.antenna_number),
        b(&r.polarization),
        b(&r.grid_code),
        n(r.kernel_index),
        f(r.latitude),
        f(r.longitude),
        f(r.elevation),
        b(&r.coordinate_system),
        f(r.east_m),
        f(r.north_m),
        f(r.up_m),
        Cow::Owned(r.chain.join(">")),
        b(&r.snap_port),
        n(r.chassis),
        b(&r.slot),
        n(r.adc_port),
        n(r.input_index),
        b(&r.board_serial),
        n(r.feng_id),
        n(r.packet_index),
        b(&r.mac_address),
        b(&r.ip_address),
        Cow::Owned(r.complete.to_string()),
        Cow::Owned(r.conflict.to_string()),
        Cow::Owned(r.problems.join("; ")),
    ]
}

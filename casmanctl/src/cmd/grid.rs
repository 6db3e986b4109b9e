//! `casmanctl grid ...` (generated coordinates, the SVG plot) and
//! `casmanctl database load-coordinates`. casmanctl reads and writes the
//! files; casmand only sees their contents.

use std::path::{Path, PathBuf};

use casman_proto::v1::{
    GenerateGridCoordinatesRequest, LoadCoordinatesRequest, PlotGridRequest,
    positions_client::PositionsClient,
};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{client::Conn, error::CtlError, output};

/// Grid commands.
#[derive(Debug, Subcommand)]
pub enum GridCmd {
    /// Generate grid_positions.csv from the survey reference at CC000E01
    /// (defaults: CASM's survey values). Writes FILE, or stdout without -o.
    Coordinates(CoordinateArgs),
    /// Draw the core array as SVG: every position with grid code and kernel
    /// index, assigned antennas highlighted. Writes FILE, or stdout without -o.
    Plot {
        /// Output file, e.g. grid.svg.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// `grid coordinates` parameters; each defaults to the CASM survey value.
#[derive(Debug, Args)]
pub struct CoordinateArgs {
    /// Output file (e.g. grid_positions.csv); stdout when absent.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Latitude of CC000E01, degrees [default: 37.234286].
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    ref_lat: Option<f64>,
    /// Longitude of CC000E01, degrees [default: -118.283416].
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    ref_lon: Option<f64>,
    /// Height of every position, metres [default: 1183.8092].
    #[arg(long, value_name = "M", allow_hyphen_values = true)]
    height: Option<f64>,
    /// North-south distance between rows, metres [default: 0.50088].
    #[arg(long, value_name = "M")]
    ns_pitch: Option<f64>,
    /// East-west step E01→E02, E03→E04, E05→E06, metres [default: 0.38].
    #[arg(long, value_name = "M")]
    ew_step_odd: Option<f64>,
    /// East-west step E02→E03, E04→E05, metres [default: 0.445].
    #[arg(long, value_name = "M")]
    ew_step_even: Option<f64>,
    /// Date written in the notes, YYYY-MM-DD [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    date: Option<String>,
    /// Coordinate system column [default: WGS84].
    #[arg(long, value_name = "NAME")]
    coordinate_system: Option<String>,
}

/// The largest CSV file one request carries: gRPC's default message limit
/// (4 MiB, which casmand keeps), less room for the rest of the request.
pub const CSV_LIMIT: u64 = 4 * 1024 * 1024 - 64 * 1024;

/// Reads a CSV file named on the command line.
pub fn read_csv(path: &Path) -> Result<String, CtlError> {
    // A request larger than the daemon decodes would be refused after being
    // sent, with a transport error; say it plainly first.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() > CSV_LIMIT
    {
        return Err(CtlError::Usage(format!(
            "CSV file {} is {}; casmand takes at most {} in one request: split it into smaller files",
            path.display(),
            output::bytes(meta.len()),
            output::bytes(CSV_LIMIT)
        )));
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CtlError::Io(format!("CSV file not found: {}", path.display())),
        _ => CtlError::Io(format!("cannot read {}: {e}", path.display())),
    })
}

/// Writes `text` to `path`, or to stdout when `path` is `None`.
pub fn write_output(path: Option<&Path>, text: &str) -> Result<(), CtlError> {
    match path {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| CtlError::Io(format!("cannot write {}: {e}", p.display())))
        }
        // A file's content, printed exact.
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn client(conn: &Conn) -> PositionsClient<tonic::transport::Channel> {
    PositionsClient::new(conn.channel.clone())
}

/// Runs a grid command.
pub async fn run(conn: &Conn, cmd: GridCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        GridCmd::Coordinates(a) => {
            let req = GenerateGridCoordinatesRequest {
                reference_latitude: a.ref_lat,
                reference_longitude: a.ref_lon,
                reference_height: a.height,
                row_pitch_m: a.ns_pitch,
                column_step_odd_m: a.ew_step_odd,
                column_step_even_m: a.ew_step_even,
                date: a.date.unwrap_or_default(),
                coordinate_system: a.coordinate_system.unwrap_or_default(),
            };
            let r = client(conn).generate_grid_coordinates(conn.request(req)).await?.into_inner();
            match (&a.output, as_json) {
                (None, true) => output::json(&output::message(&r)),
                (None, false) => write_output(None, &r.csv)?,
                (Some(p), _) => {
                    write_output(Some(p), &r.csv)?;
                    if as_json {
                        output::json(&json!({ "file": p, "rows": r.rows }));
                    } else {
                        crate::output::say!("Wrote {} grid position(s) to {}", r.rows, p.display());
                    }
                }
            }
            Ok(())
        }
        GridCmd::Plot { output: out } => {
            let r = client(conn).plot_grid(conn.request(PlotGridRequest {})).await?.into_inner();
            match (&out, as_json) {
                (None, true) => output::json(&output::message(&r)),
                (None, false) => write_output(None, &r.svg)?,
                (Some(p), _) => {
                    write_output(Some(p), &r.svg)?;
                    if as_json {
                        output::json(&json!({ "file": p, "positions": r.positions, "assigned": r.assigned }));
                    } else {
                        crate::output::say!(
                            "Wrote {} ({} positions, {} assigned)",
                            p.display(),
                            r.positions,
                            r.assigned
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

/// `database load-coordinates`: reads `csv` and has casmand load it.
pub async fn load_coordinates(
    conn: &Conn,
    csv: &Path,
    skip_bad_rows: bool,
    as_json: bool,
) -> Result<(), CtlError> {
    let text = read_csv(csv)?;
    let req = LoadCoordinatesRequest { csv: text, skip_bad_rows, source: csv.display().to_string() };
    let r = client(conn).load_coordinates(conn.request(req)).await?.into_inner();
    if as_json {
        let mut v = output::message(&r);
        v["source"] = json!(csv);
        output::json(&v);
        return Ok(());
    }
    crate::output::say!("Loading coordinates from {}", csv.display());
    crate::output::say!("Loaded:  {} position(s)", r.loaded);
    crate::output::say!("Skipped: {}", r.skipped);
    crate::output::say!("Updated: {} antenna position(s) with coordinates", r.positions_updated);
    for e in &r.errors {
        crate::output::say!("  skipped line {}, {} {:?}: {}", e.line, e.field, e.value, e.rule);
    }
    for l in &r.blank_lines {
        crate::output::say!("  skipped line {l}: blank");
    }
    crate::output::say!("[OK] Grid coordinates loaded into parts.db");
    Ok(())
}

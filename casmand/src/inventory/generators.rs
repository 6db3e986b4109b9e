//! The default-file generators: grid coordinates from the survey reference
//! (spec section 5.4) and the 44 placeholder SNAP boards (spec section 6),
//! and the CSV writers for both files (CRLF line ends, as the Python tool's
//! files have).

use std::net::{IpAddr, Ipv4Addr};

use jiff::civil::Date;

use super::{GridCode, GridLayout, GridPosition, SnapBoard, SnapBoardId, csv_rows};
use crate::error::{Error, Result};

/// The parameters of the grid coordinate generator; [`CoordinateParams::new`]
/// gives the survey values CAsMan used.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinateParams {
    /// Latitude of `CC000E01`, degrees.
    pub reference_latitude: f64,
    /// Longitude of `CC000E01`, degrees.
    pub reference_longitude: f64,
    /// Height of every position, metres (written with 2 decimals).
    pub reference_height: f64,
    /// North-south distance between rows, metres (north positive).
    pub row_pitch_m: f64,
    /// East-west steps between columns from E01, alternating:
    /// E01→E02 = `[0]`, E02→E03 = `[1]`, E03→E04 = `[0]`, …
    pub column_steps_m: [f64; 2],
    /// Earth radius for the metres-to-degrees conversion.
    pub earth_radius_m: f64,
    /// Which positions to generate.
    pub layout: GridLayout,
    /// Written in the `coordinate_system` column.
    pub coordinate_system: String,
    /// The date written in the notes.
    pub date: Date,
}

/// The surveyed position of `CC000E01`, the array's reference: where the
/// generated coordinates start, and the origin of the input map's local
/// east/north/up when no coordinates are loaded for it.
pub const SURVEY_REFERENCE: crate::inventory::enu::Geodetic =
    crate::inventory::enu::Geodetic { latitude: 37.234286, longitude: -118.283416, height: 1183.8092 };

impl CoordinateParams {
    /// The survey defaults (reference 37.234286, −118.283416, 1183.8092 m;
    /// pitch 0.50088 m; steps 0.38/0.445 m; R = 6378137 m; core layout;
    /// WGS84), noted as generated on `date`.
    pub fn new(date: Date) -> CoordinateParams {
        CoordinateParams {
            reference_latitude: SURVEY_REFERENCE.latitude,
            reference_longitude: SURVEY_REFERENCE.longitude,
            reference_height: SURVEY_REFERENCE.height,
            row_pitch_m: 0.50088,
            column_steps_m: [0.38, 0.445],
            earth_radius_m: 6_378_137.0,
            layout: GridLayout::core(),
            coordinate_system: "WGS84".into(),
            date,
        }
    }
}

/// Rounds as the CSV writes it, so generated rows equal the parsed file.
fn rounded(x: f64, decimals: usize) -> f64 {
    format!("{x:.decimals$}").parse().unwrap_or(x)
}

/// Generates every position of `p.layout`, in the CSV's order: south to
/// north (S021 … C000 … N021), each row from E01 eastwards. Latitude and longitude
/// are rounded to 9 decimals and height to 2, as written.
pub fn generate_grid_positions(p: &CoordinateParams) -> Vec<GridPosition> {
    let deg = std::f64::consts::PI / 180.0;
    let m_per_deg_lat = p.earth_radius_m * deg;
    let m_per_deg_lon = p.earth_radius_m * (p.reference_latitude * deg).cos() * deg;
    let reference =
        GridCode::new(p.layout.array_id, 0, 1).map_or_else(|_| "CC000E01".into(), |c| c.to_string());
    let notes = format!("Generated from {reference} reference on {}", p.date);
    let mut rows: Vec<i32> = p.layout.rows().collect();
    rows.reverse();
    let mut out = Vec::new();
    for row in rows {
        let mut east_m = 0.0;
        for col in 1..=p.layout.east_columns {
            if col > 1 {
                east_m += if col % 2 == 0 { p.column_steps_m[0] } else { p.column_steps_m[1] };
            }
            let Ok(grid_code) = GridCode::new(p.layout.array_id, row, col) else { continue };
            out.push(GridPosition {
                grid_code,
                latitude: rounded(p.reference_latitude + f64::from(row) * p.row_pitch_m / m_per_deg_lat, 9),
                longitude: rounded(p.reference_longitude + east_m / m_per_deg_lon, 9),
                height: rounded(p.reference_height, 2),
                coordinate_system: Some(p.coordinate_system.clone()),
                notes: Some(notes.clone()),
            });
        }
    }
    out
}

/// The 44 placeholder boards the Python generator wrote: chassis 1-4 ×
/// slots A-K, n = 1…44 in that order, serial `SN<n:02>`, MAC
/// `00:11:22:33:<chassis:02x>:<slot index:02x>` (lower-case, casman's
/// canonical form; Python wrote the last group upper-case), IP
/// `192.168.1.<n>`, feng_id n−1, notes `Generated on <date>`.
pub fn generate_snap_boards(date: Date) -> Vec<SnapBoard> {
    SnapBoardId::all()
        .zip(1u8..)
        .map(|(board, n)| SnapBoard {
            board,
            serial_number: format!("SN{n:02}"),
            mac_address: format!("00:11:22:33:{:02x}:{:02x}", board.chassis(), board.slot_index()),
            ip_address: IpAddr::V4(Ipv4Addr::new(192, 168, 1, n)),
            feng_id: n - 1,
            notes: Some(format!("Generated on {date}")),
        })
        .collect()
}

fn write_csv(header: &str, rows: impl Iterator<Item = Vec<String>>) -> Result<String> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let fail = |e: csv::Error| Error::internal("writing CSV", e);
    w.write_record(header.split(',')).map_err(fail)?;
    for row in rows {
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::internal("writing CSV", e))?;
    String::from_utf8(bytes).map_err(|e| Error::internal("writing CSV", e))
}

/// Writes `grid_positions.csv`: latitude/longitude with 9 decimals, height
/// with 2, CRLF line ends.
pub fn grid_positions_csv(rows: &[GridPosition]) -> Result<String> {
    write_csv(
        csv_rows::GRID_HEADER,
        rows.iter().map(|r| {
            vec![
                r.grid_code.to_string(),
                format!("{:.9}", r.latitude),
                format!("{:.9}", r.longitude),
                format!("{:.2}", r.height),
                r.coordinate_system.clone().unwrap_or_default(),
                r.notes.clone().unwrap_or_default(),
            ]
        }),
    )
}

/// Writes `snap_boards.csv`, CRLF line ends.
pub fn snap_boards_csv(rows: &[SnapBoard]) -> Result<String> {
    write_csv(
        csv_rows::SNAP_HEADER,
        rows.iter().map(|r| {
            vec![
                r.board.chassis().to_string(),
                r.board.slot().to_string(),
                r.serial_number.clone(),
                r.mac_address.clone(),
                r.ip_address.to_string(),
                r.feng_id.to_string(),
                r.notes.clone().unwrap_or_default(),
            ]
        }),
    )
}

#[cfg(test)]
#[path = "generators_tests.rs"]
mod tests;

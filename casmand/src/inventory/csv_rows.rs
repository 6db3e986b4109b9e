//! The two CSV files users load: grid coordinates
//! (`grid_code,latitude,longitude,height,coordinate_system,notes`) and SNAP
//! boards (`chassis,slot,sn,mac,ip,feng_id,notes`).
//!
//! Parsing is all or nothing: either every row is valid and typed rows come
//! back, or every problem comes back, each naming the 1-based line, the
//! field, the value and the rule. Columns are found by header name (trimmed,
//! case-insensitive; extra columns ignored); every field is trimmed; rows
//! whose fields are all blank are skipped and reported (empty lines are
//! ignored); a missing trailing newline and a leading BOM are fine.

use std::{collections::HashMap, fmt, net::IpAddr};

use super::{GridCode, SnapBoardId, snap};
use crate::error::Error;

/// One row of `grid_positions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPosition {
    /// The position.
    pub grid_code: GridCode,
    /// Latitude, degrees (-90..90).
    pub latitude: f64,
    /// Longitude, degrees (-180..180).
    pub longitude: f64,
    /// Height, metres.
    pub height: f64,
    /// e.g. `WGS84`; `None` when blank.
    pub coordinate_system: Option<String>,
    /// Free text; `None` when blank.
    pub notes: Option<String>,
}

/// One row of `snap_boards.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapBoard {
    /// Chassis and slot.
    pub board: SnapBoardId,
    /// Serial number, kept as text (`099` keeps its leading zero).
    pub serial_number: String,
    /// MAC address in canonical form: lower-case hex, colon-separated.
    pub mac_address: String,
    /// IPv4 or IPv6 address.
    pub ip_address: IpAddr,
    /// F-engine id, 0-43.
    pub feng_id: u8,
    /// Free text; `None` when blank.
    pub notes: Option<String>,
}

/// A parsed row and the line it started on.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered<T> {
    /// 1-based line number (the header is line 1).
    pub line: u64,
    /// The row.
    pub row: T,
}

/// A fully valid file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvFile<T> {
    /// The rows, in file order.
    pub rows: Vec<Numbered<T>>,
    /// Lines skipped because every field was blank.
    pub skipped_lines: Vec<u64>,
}

/// One problem in a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line number.
    pub line: u64,
    /// The column (or `header` / `row`).
    pub field: String,
    /// The offending value as written (trimmed).
    pub value: String,
    /// The rule it broke.
    pub rule: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {} {:?}: {}", self.line, self.field, self.value, self.rule)
    }
}

/// Every problem found in a CSV file, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvErrors(pub Vec<CsvError>);

/// Problems named one by one in a message; the rest are counted.
pub const CSV_ERRORS_SHOWN: usize = 20;

impl fmt::Display for CsvErrors {
    /// The count, then the first [`CSV_ERRORS_SHOWN`] problems (each value cut
    /// to 60 characters), so that a file with thousands of bad rows still
    /// gives a message that fits a reply.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{} in the CSV file, nothing was loaded", if n == 1 { "" } else { "s" })?;
        for e in self.0.iter().take(CSV_ERRORS_SHOWN) {
            let value: String = e.value.chars().take(60).collect();
            let cut = if value.len() < e.value.len() { "…" } else { "" };
            write!(f, "; line {}, {} {value:?}{cut}: {}", e.line, e.field, e.rule)?;
        }
        if n > CSV_ERRORS_SHOWN {
            write!(f, "; and {} more (the first {CSV_ERRORS_SHOWN} are shown)", n - CSV_ERRORS_SHOWN)?;
        }
        Ok(())
    }
}

impl From<CsvErrors> for Error {
    fn from(e: CsvErrors) -> Error {
        Error::invalid(e.to_string())
    }
}

/// The header of `grid_positions.csv`.
pub const GRID_HEADER: &str = "grid_code,latitude,longitude,height,coordinate_system,notes";
/// The header of `snap_boards.csv`.
pub const SNAP_HEADER: &str = "chassis,slot,sn,mac,ip,feng_id,notes";

/// Collects errors for one file and reads fields of the current record.
struct Reader {
    columns: HashMap<String, usize>,
    header_len: usize,
    errors: Vec<CsvError>,
}

impl Reader {
    fn err(&mut self, line: u64, field: &str, value: &str, rule: impl Into<String>) {
        self.errors.push(CsvError { line, field: field.into(), value: value.into(), rule: rule.into() });
    }

    fn field<'r>(&self, rec: &'r csv::StringRecord, name: &str) -> &'r str {
        self.columns.get(name).and_then(|&i| rec.get(i)).map_or("", str::trim)
    }

    fn required<'r>(&mut self, line: u64, rec: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        let v = self.field(rec, name);
        if v.is_empty() {
            self.err(line, name, v, "required");
            return None;
        }
        Some(v)
    }

    fn optional(&self, rec: &csv::StringRecord, name: &str) -> Option<String> {
        Some(self.field(rec, name)).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// Records `value` of `field` as seen on `line`; reports an earlier use.
    fn unique(&mut self, seen: &mut HashMap<(String, String), u64>, line: u64, field: &str, value: &str) {
        if let Some(first) = seen.insert((field.to_owned(), value.to_owned()), line) {
            seen.insert((field.to_owned(), value.to_owned()), first);
            self.err(line, field, value, format!("must be unique, but line {first} has it too"));
        }
    }
}

/// Line numbers of byte offsets. (The reader's own line count lags by one
/// after a CRLF or a skipped empty line, so lines are counted here.)
struct Lines<'t> {
    text: &'t [u8],
    newlines: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        let text = text.as_bytes();
        Lines {
            text,
            newlines: text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect(),
        }
    }

    /// The 1-based line of the record starting at `pos` (past any line ends).
    fn line_of(&self, pos: &csv::Position) -> u64 {
        let mut at = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
        while self.text.get(at).is_some_and(|b| *b == b'\r' || *b == b'\n') {
            at += 1;
        }
        u64::try_from(self.newlines.partition_point(|&i| i < at)).map_or(u64::MAX, |n| n + 1)
    }
}

/// Reads the header and hands every non-blank record to `row`.
fn parse_file<T>(
    text: &str,
    expected: &str,
    required: &[&str],
    mut row: impl FnMut(&mut Reader, u64, &csv::StringRecord) -> Option<T>,
) -> Result<CsvFile<T>, CsvErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let lines = Lines::new(text);
    let mut records = rdr.records();
    let mut reader = Reader { columns: HashMap::new(), header_len: 0, errors: Vec::new() };
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(CsvErrors(vec![csv_error(1, &e)])),
        None => {
            reader.err(1, "header", "", format!("the file is empty; expected the header {expected}"));
            return Err(CsvErrors(reader.errors));
        }
    };
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if reader.columns.insert(name.clone(), i).is_some() {
            reader.err(1, "header", &name, "column named twice");
        }
    }
    reader.header_len = header.len();
    for name in required {
        if !reader.columns.contains_key(*name) {
            reader.err(
                1,
                "header",
                &header.iter().collect::<Vec<_>>().join(","),
                format!("missing column {name}; expected {expected}"),
            );
        }
    }
    if !reader.errors.is_empty() {
        return Err(CsvErrors(reader.errors));
    }
    let mut rows = Vec::new();
    let mut skipped_lines = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_of(p));
                reader.errors.push(csv_error(line, &e));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| lines.line_of(p));
        if rec.iter().all(|f| f.trim().is_empty()) {
            skipped_lines.push(line);
            continue;
        }
        if rec.len() > reader.header_len {
            let extra = rec.iter().skip(reader.header_len).collect::<Vec<_>>().join(",");
            let rule = format!(
                "expected {} fields as in the header, found {} (quote values that contain commas)",
                reader.header_len,
                rec.len()
            );
            reader.err(line, "row", &extra, rule);
            continue;
        }
        if let Some(r) = row(&mut reader, line, &rec) {
            rows.push(Numbered { line, row: r });
        }
    }
    if reader.errors.is_empty() { Ok(CsvFile { rows, skipped_lines }) } else { Err(CsvErrors(reader.errors)) }
}

fn csv_error(line: u64, e: &csv::Error) -> CsvError {
    CsvError { line, field: "row".into(), value: String::new(), rule: format!("unreadable CSV: {e}") }
}

/// The part of a domain error message after `<what> "<value>": `.
fn rule_of(e: &Error) -> String {
    let msg = e.to_string();
    msg.split_once(": ").map_or(msg.clone(), |(_, r)| r.to_owned())
}

/// A required finite number, within `limit` (degrees) when given.
fn number(r: &mut Reader, line: u64, rec: &csv::StringRecord, name: &str, limit: Option<f64>) -> Option<f64> {
    let v = r.required(line, rec, name)?;
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && limit.is_none_or(|l| x.abs() <= l) => Some(x),
        Ok(_) => {
            let rule = match limit {
                Some(l) => format!("must be a number within -{l}..{l}"),
                None => "must be a finite number".to_owned(),
            };
            r.err(line, name, v, rule);
            None
        }
        Err(_) => {
            r.err(line, name, v, "must be a number");
            None
        }
    }
}

/// Parses `grid_positions.csv`. Grid codes are checked with
/// [`GridCode::parse`] and must be unique; latitude, longitude and height
/// are required numbers.
pub fn parse_grid_positions(text: &str) -> Result<CsvFile<GridPosition>, CsvErrors> {
    let mut seen = HashMap::new();
    parse_file(text, GRID_HEADER, &["grid_code", "latitude", "longitude", "height"], |r, line, rec| {
        let code = r.required(line, rec, "grid_code").and_then(|v| match GridCode::parse(v) {
            Ok(c) => Some(c),
            Err(e) => {
                r.err(line, "grid_code", v, rule_of(&e));
                None
            }
        });
        if let Some(c) = code {
            r.unique(&mut seen, line, "grid_code", &c.to_string());
        }
        let lat = number(r, line, rec, "latitude", Some(90.0));
        let lon = number(r, line, rec, "longitude", Some(180.0));
        let height = number(r, line, rec, "height", None);
        Some(GridPosition {
            grid_code: code?,
            latitude: lat?,
            longitude: lon?,
            height: height?,
            coordinate_system: r.optional(rec, "coordinate_system"),
            notes: r.optional(rec, "notes"),
        })
    })
}

/// Parses a MAC address: six 2-digit hex groups separated by `:` (or all by
/// `-`), any case. Returns the canonical lower-case, colon-separated form.
pub fn parse_mac(input: &str) -> Result<String, String> {
    let s = input.trim();
    let sep = if s.contains('-') { '-' } else { ':' };
    let groups: Vec<&str> = s.split(sep).collect();
    let ok =
        groups.len() == 6 && groups.iter().all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(groups.join(":").to_ascii_lowercase())
    } else {
        Err("must be six 2-digit hex groups separated by colons, e.g. 00:29:c4:e8:18:05".into())
    }
}

fn small_int(r: &mut Reader, line: u64, rec: &csv::StringRecord, name: &str, lo: u8, hi: u8) -> Option<u8> {
    let v = r.required(line, rec, name)?;
    match v.parse::<u8>() {
        Ok(x) if (lo..=hi).contains(&x) => Some(x),
        _ => {
            r.err(line, name, v, format!("must be a whole number {lo}-{hi}"));
            None
        }
    }
}

/// Parses `snap_boards.csv`: chassis 1-4, slot A-K, serial as text, a
/// well-formed MAC (stored lower-case), an IPv4/IPv6 address, feng_id 0-43;
/// (chassis, slot), serial, MAC, IP and feng_id each unique in the file.
pub fn parse_snap_boards(text: &str) -> Result<CsvFile<SnapBoard>, CsvErrors> {
    let mut seen = HashMap::new();
    parse_file(text, SNAP_HEADER, &["chassis", "slot", "sn", "mac", "ip", "feng_id"], |r, line, rec| {
        let chassis = small_int(r, line, rec, "chassis", *snap::CHASSIS.start(), *snap::CHASSIS.end());
        let slot = r.required(line, rec, "slot").and_then(|v| {
            let mut chars = v.chars();
            match (chars.next().and_then(snap::slot_index).and_then(snap::slot_letter), chars.next()) {
                (Some(s), None) => Some(s),
                _ => {
                    r.err(line, "slot", v, "must be one letter A-K");
                    None
                }
            }
        });
        let board = match (chassis, slot) {
            (Some(c), Some(s)) => SnapBoardId::new(c, s).ok(),
            _ => None,
        };
        if let Some(b) = board {
            r.unique(&mut seen, line, "chassis,slot", &format!("{},{}", b.chassis(), b.slot()));
        }
        let sn = r.required(line, rec, "sn").map(str::to_owned);
        if let Some(sn) = &sn {
            r.unique(&mut seen, line, "sn", sn);
        }
        let mac = r.required(line, rec, "mac").and_then(|v| match parse_mac(v) {
            Ok(m) => Some(m),
            Err(rule) => {
                r.err(line, "mac", v, rule);
                None
            }
        });
        if let Some(m) = &mac {
            r.unique(&mut seen, line, "mac", m);
        }
        let ip = r.required(line, rec, "ip").and_then(|v| match v.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                r.err(line, "ip", v, "must be an IPv4 or IPv6 address, e.g. 192.168.1.1");
                None
            }
        });
        if let Some(ip) = ip {
            r.unique(&mut seen, line, "ip", &ip.to_string());
        }
        let feng = small_int(r, line, rec, "feng_id", *snap::FENG_IDS.start(), *snap::FENG_IDS.end());
        if let Some(f) = feng {
            r.unique(&mut seen, line, "feng_id", &f.to_string());
        }
        Some(SnapBoard {
            board: board?,
            serial_number: sn?,
            mac_address: mac?,
            ip_address: ip?,
            feng_id: feng?,
            notes: r.optional(rec, "notes"),
        })
    })
}

#[cfg(test)]
#[path = "csv_rows_tests.rs"]
mod tests;

//! `casmanctl parts ...`

use std::borrow::Cow;

use casman_proto::v1::{AddPartsRequest, CountPartsRequest, GetPartRequest, ListPartsRequest, Part};
use clap::{Args, Subcommand};
use serde_json::json;

use super::prompt;
use crate::{client::Conn, error::CtlError, output};

/// Parts commands.
#[derive(Debug, Subcommand)]
pub enum PartsCmd {
    /// Generate the next part numbers: `parts add ANTENNA 10 1` or
    /// `parts add --part-type ANTENNA --count 10 --polarization 1`.
    Add(AddArgs),
    /// List parts, newest first.
    List(ListArgs),
    /// Show one part.
    Show {
        /// Part number, e.g. ANT00001P1 (any case).
        part: String,
    },
    /// Count parts by type and polarization.
    Count,
    /// Parts whose number matches PATTERN (`*`/`?` wildcards, else a substring).
    Search {
        /// Pattern, e.g. `ANT0000*P1` or `00042`.
        pattern: String,
        /// At most this many.
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
}

/// What a TYPE may be: the same list as the README's "Part types" and
/// casmand's error message.
const PART_TYPES: &str = "Part type: ANTENNA (ANT, 1), LNA (2), COAXSHORT (CXS, 3), COAXLONG (CXL, 4), \
                          BACBOARD (BAC, 5), SNAP (SNP, 6), in any case; SNAP ports are not generated";

/// `parts add` arguments: positional (documented form) or flags (CAsMan's form).
#[derive(Debug, Args)]
pub struct AddArgs {
    #[arg(value_name = "TYPE", help = PART_TYPES)]
    part_type_pos: Option<String>,
    /// How many (1-99999).
    #[arg(value_name = "COUNT")]
    count_pos: Option<u32>,
    /// Polarization: 1, 2, P1 or P2.
    #[arg(value_name = "POLARIZATION")]
    polarization_pos: Option<String>,
    /// Part type (flag form).
    #[arg(long = "part-type", value_name = "TYPE", conflicts_with = "part_type_pos")]
    part_type: Option<String>,
    /// How many (flag form).
    #[arg(long, value_name = "N", conflicts_with = "count_pos")]
    count: Option<u32>,
    /// Polarization (flag form).
    #[arg(long, value_name = "POL", conflicts_with = "polarization_pos")]
    polarization: Option<String>,
    /// Also write the PDF label sheet of exactly the new parts to FILE.
    #[arg(long, value_name = "FILE.pdf")]
    labels: Option<std::path::PathBuf>,
}

/// `parts list` filters.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long = "type", value_name = "TYPE", help = PART_TYPES)]
    part_type: Option<String>,
    /// Only this polarization (1, 2, P1, P2).
    #[arg(long)]
    polarization: Option<String>,
    /// Only parts created within this duration, e.g. 7d, 12h.
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// At most this many (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: u32,
    /// Every part (CAsMan's `parts list --all`; without filters or a limit
    /// every part is listed anyway).
    #[arg(long, conflicts_with = "limit")]
    all: bool,
}

/// Runs a parts command.
pub async fn run(conn: &Conn, cmd: PartsCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        PartsCmd::Add(a) => add(conn, a, as_json).await,
        PartsCmd::List(l) => {
            let req = ListPartsRequest {
                part_type: l.part_type.unwrap_or_default(),
                polarization: l.polarization.unwrap_or_default(),
                since: l.since.unwrap_or_default(),
                limit: if l.all { 0 } else { l.limit },
                pattern: String::new(),
            };
            stream_parts(conn, req, as_json).await
        }
        PartsCmd::Search { pattern, limit } => {
            let req = ListPartsRequest { pattern, limit, ..Default::default() };
            stream_parts(conn, req, as_json).await
        }
        PartsCmd::Show { part } => {
            let p =
                conn.parts().get_part(conn.request(GetPartRequest { part_number: part })).await?.into_inner();
            if as_json {
                output::json(&output::message(&p));
            } else {
                crate::output::say!("part number:   {}", p.part_number);
                crate::output::say!("type:          {}", p.part_type);
                crate::output::say!("polarization:  {}", dash(&p.polarization));
                crate::output::say!("created:       {}", dash(&p.date_created));
                crate::output::say!("modified:      {}", dash(&p.date_modified));
                if p.historic {
                    crate::output::say!(
                        "note:          historic number format (adopted from CAsMan, kept as stored)"
                    );
                }
            }
            Ok(())
        }
        PartsCmd::Count => {
            let c = conn.parts().count_parts(conn.request(CountPartsRequest {})).await?.into_inner();
            if as_json {
                output::json(&output::message(&c));
            } else {
                let mut t = output::table(["type", "polarization", "count"]);
                for c in &c.counts {
                    t.add_row([c.part_type.clone(), dash(&c.polarization).to_owned(), c.count.to_string()]);
                }
                crate::output::say!("{t}");
                crate::output::say!("total: {}", c.total);
            }
            Ok(())
        }
    }
}

async fn add(conn: &Conn, a: AddArgs, as_json: bool) -> Result<(), CtlError> {
    let part_type = a.part_type.or(a.part_type_pos);
    let count = a.count.or(a.count_pos);
    let polarization = a.polarization.or(a.polarization_pos);
    let (part_type, count, polarization) = match (part_type, count, polarization) {
        (Some(t), Some(c), Some(p)) => (t, c, p),
        (t, c, p) if prompt::interactive() => {
            let t = match t {
                Some(t) => t,
                None => {
                    prompt::ask("Part type (ANTENNA, LNA, COAXSHORT, COAXLONG, BACBOARD; 0 = all five): ")?
                }
            };
            let c = match c {
                Some(c) => c,
                None => prompt::ask("How many: ")?
                    .parse()
                    .map_err(|_| CtlError::Usage("count: expected a whole number from 1 to 99999".into()))?,
            };
            let p = match p {
                Some(p) => p,
                None => prompt::ask("Polarization (1 or 2): ")?,
            };
            (t, c, p)
        }
        _ => {
            return Err(CtlError::Usage(
                "parts add needs TYPE COUNT POLARIZATION (e.g. `parts add ANTENNA 10 1`) or \
                 --part-type, --count and --polarization"
                    .into(),
            ));
        }
    };
    // CAsMan's interactive `0`: every type that can be generated.
    let types: Vec<String> = if part_type.trim() == "0" {
        ["ANTENNA", "LNA", "COAXSHORT", "COAXLONG", "BACBOARD"].map(String::from).to_vec()
    } else {
        vec![part_type]
    };
    let mut numbers: Vec<String> = Vec::new();
    for part_type in types {
        let req = AddPartsRequest { part_type, count, polarization: polarization.clone() };
        let resp = conn.parts().add_parts(conn.request(req)).await?.into_inner();
        numbers.extend(resp.parts.into_iter().map(|p| p.part_number));
    }
    let sheet = match &a.labels {
        Some(path) => Some(super::labels::sheet_of(conn, numbers.clone(), path).await),
        None => None,
    };
    if as_json {
        let mut out = json!({ "parts": numbers });
        if let Some(Ok(w)) = &sheet {
            out["labels"] = json!({"file": w.path, "pages": w.pages});
        }
        output::json(&out);
    } else {
        for n in &numbers {
            crate::output::say!("{n}");
        }
    }
    match sheet {
        Some(Ok(w)) if !as_json => {
            eprintln!("labels: {} ({} label(s), {} page(s))", w.path.display(), w.ids.len(), w.pages)
        }
        Some(Err(e)) => {
            return Err(CtlError::Io(format!(
                "the parts above were generated, but their label sheet was not written: {e}; \
                 print it with `casmanctl labels TYPE FROM TO`"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// Prints the parts `req` selects as the pages arrive: memory is bounded by
/// a page (the first page sets the column widths), whatever the count.
async fn stream_parts(conn: &Conn, req: ListPartsRequest, as_json: bool) -> Result<(), CtlError> {
    use std::io::Write;
    let mut stream = conn.parts().list_parts(conn.request(req)).await?.into_inner();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out.lock());
    let io = |e: std::io::Error| CtlError::Io(format!("writing the list: {e}"));
    let mut table: Option<output::StreamTable> = None;
    let mut n = 0usize;
    if as_json {
        write!(out, "{{\n  \"parts\": [").map_err(io)?;
    }
    while let Some(page) = stream.message().await? {
        for p in &page.parts {
            if as_json {
                out.write_all(if n == 0 { b"\n    " } else { b",\n    " }).map_err(io)?;
                serde_json::to_writer(&mut out, &PartJson::of(p)).map_err(|e| io(e.into()))?;
            }
            n += 1;
        }
        if as_json {
            continue;
        }
        let rows: Vec<[Cow<'_, str>; 4]> = page.parts.iter().map(part_row).collect();
        let t = table.get_or_insert_with(|| {
            let t = output::StreamTable::new(&PARTS_HEADER, &rows);
            let _ = write!(out, "{}", t.head());
            t
        });
        for r in &rows {
            t.write_row(&mut out, r).map_err(io)?;
        }
    }
    if as_json {
        writeln!(out, "{}]\n}}", if n == 0 { "" } else { "\n  " }).map_err(io)?;
    } else if let Some(t) = table {
        write!(out, "{}\n{n} part(s)\n", t.foot()).map_err(io)?;
    } else {
        writeln!(out, "No parts found.").map_err(io)?;
    }
    out.flush().map_err(io)
}

const PARTS_HEADER: [&str; 4] = ["part number", "type", "pol", "created"];

/// A part in the proto3 JSON mapping `--json` prints (as [`output::message`]
/// makes it: proto field names in their sorted order, every field), written
/// without the reflection round trip.
#[derive(serde::Serialize)]
struct PartJson<'a> {
    date_created: &'a str,
    date_modified: &'a str,
    historic: bool,
    id: i64,
    part_number: &'a str,
    part_type: &'a str,
    polarization: &'a str,
}

impl<'a> PartJson<'a> {
    fn of(p: &'a Part) -> Self {
        PartJson {
            date_created: &p.date_created,
            date_modified: &p.date_modified,
            historic: p.historic,
            id: p.id,
            part_number: &p.part_number,
            part_type: &p.part_type,
            polarization: &p.polarization,
        }
    }
}

/// A row for people: stored text with its terminal controls escaped.
fn part_row(p: &Part) -> [Cow<'_, str>; 4] {
    let h = output::human;
    [h(&p.part_number), h(&p.part_type), h(dash(&p.polarization)), h(&p.date_created)]
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// What `parts list` and `parts search` print for people, at once (the
/// snapshot of the streamed output).
#[cfg(test)]
pub fn parts_text(parts: &[Part]) -> String {
    if parts.is_empty() {
        return "No parts found.\n".into();
    }
    let rows: Vec<[Cow<'_, str>; 4]> = parts.iter().map(part_row).collect();
    let t = output::StreamTable::new(&PARTS_HEADER, &rows);
    let body: String = rows.iter().map(|r| t.row(r)).collect();
    format!("{}{body}{}\n{} part(s)\n", t.head(), t.foot(), parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON written without reflection is the proto3 mapping, byte for byte.
    #[test]
    fn the_json_view_is_the_proto_mapping() {
        let p = Part {
            id: i64::MIN,
            part_number: "ANT\u{1b}00001P1".into(),
            part_type: "ANTENNA".into(),
            historic: true,
            date_created: "é".into(),
            ..Default::default()
        };
        for p in [p, Part::default()] {
            let ours = serde_json::to_string(&PartJson::of(&p)).unwrap_or_default();
            assert_eq!(ours, serde_json::to_string(&output::message(&p)).unwrap_or_default());
        }
    }
}

//! `casmanctl labels ...`, `casmanctl barcode printpages ...`, and the
//! sheet written by `parts add ... --labels FILE.pdf`.

use std::path::{Path, PathBuf};

use casman_proto::v1::{RenderLabelsRequest, labels_client::LabelsClient};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::label_files::{self, Dest, Written};
use crate::{client::Conn, error::CtlError, output};

/// The output directory used when no `--out` is given (CAsMan's variable).
pub const BARCODE_DIR_ENV: &str = "CASMAN_BARCODE_DIR";

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabelFormat {
    /// PDF sheets for label stock.
    Pdf,
    /// One PNG image per label.
    Png,
    /// One SVG image per label.
    Svg,
}

impl LabelFormat {
    fn name(self) -> &'static str {
        match self {
            LabelFormat::Pdf => "pdf",
            LabelFormat::Png => "png",
            LabelFormat::Svg => "svg",
        }
    }
}

/// `labels TYPE FROM TO` arguments.
#[derive(Debug, Args)]
pub struct LabelsArgs {
    /// Part type: ANTENNA/ANT, LNA, COAXSHORT/CXS, COAXLONG/CXL, BACBOARD/BAC,
    /// or SNAP (then FROM and TO are port ids such as 1A00 or SNAP1A00).
    #[arg(value_name = "TYPE")]
    part_type: String,
    /// First number (1-99999).
    #[arg(value_name = "FROM")]
    from: String,
    /// Last number, inclusive.
    #[arg(value_name = "TO")]
    to: String,
    /// Which polarizations: 1, 2 or both.
    #[arg(long, value_name = "1|2|both", default_value = "both")]
    polarization: String,
    /// pdf: sheets; png, svg: one image per label.
    #[arg(long, value_enum, default_value_t = LabelFormat::Pdf)]
    format: LabelFormat,
    /// A PDF file for all the labels, or a directory. Default:
    /// $CASMAN_BARCODE_DIR, else the current directory, with CAsMan's names
    /// (`ANTENNA_P1_00001_00050.pdf`, `ANTENNA/P1/ANT00001P1.png`).
    #[arg(long, short, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// `barcode ...` (CAsMan's command group).
#[derive(Debug, Subcommand)]
pub enum BarcodeCmd {
    /// CAsMan's form: PDF sheets of P1 and P2 labels of numbers START..END
    /// of a type, one file per polarization (`<TYPE>_P1_<START>_<END>.pdf`).
    Printpages {
        /// Part type.
        #[arg(long = "part-type", value_name = "TYPE")]
        part_type: String,
        /// First number.
        #[arg(long = "start-number", value_name = "N", default_value = "1")]
        start_number: String,
        /// Last number, inclusive.
        #[arg(long = "end-number", value_name = "N")]
        end_number: String,
        /// Directory for the files (default: $CASMAN_BARCODE_DIR, else the current directory).
        #[arg(long, short, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

fn client(conn: &Conn) -> LabelsClient<tonic::transport::Channel> {
    LabelsClient::new(conn.channel.clone()).max_decoding_message_size(16 << 20)
}

/// The directory used without `--out`.
fn default_dir() -> PathBuf {
    std::env::var_os(BARCODE_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Where `--out` puts the files of `format`: an existing directory, or a
/// path ending in `/`, is a directory; any other path is one PDF file (or,
/// for PNG/SVG, a directory unless it ends in `.png`/`.svg`).
fn dest(out: Option<PathBuf>, format: LabelFormat) -> Dest {
    let Some(out) = out else { return Dest::Dir(default_dir()) };
    let as_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    let is_image_file = out.extension().is_some_and(|e| e.eq_ignore_ascii_case(format.name()));
    match format {
        _ if as_dir => Dest::Dir(out),
        LabelFormat::Pdf => Dest::File(out),
        _ if is_image_file => Dest::File(out),
        _ => Dest::Dir(out),
    }
}

async fn render(conn: &Conn, req: RenderLabelsRequest, dest: &Dest) -> Result<Vec<Written>, CtlError> {
    let stream = client(conn).render_labels(conn.request(req)).await?.into_inner();
    let files = label_files::receive(stream).await?;
    label_files::write(files, dest)
}

fn report(written: &[Written], as_json: bool) {
    if as_json {
        output::json(&json!({
            "files": written.iter().map(|w| json!({
                "path": w.path, "labels": w.ids, "pages": w.pages,
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    for w in written {
        let (first, last) =
            (w.ids.first().map_or("", String::as_str), w.ids.last().map_or("", String::as_str));
        let range = if w.ids.len() > 1 { format!("{first} … {last}") } else { first.to_owned() };
        match w.pages {
            0 => crate::output::say!("{}  ({range})", w.path.display()),
            p => {
                crate::output::say!("{}  ({} label(s), {p} page(s): {range})", w.path.display(), w.ids.len())
            }
        }
    }
}

/// Runs `labels TYPE FROM TO`.
pub async fn labels(conn: &Conn, a: LabelsArgs, as_json: bool) -> Result<(), CtlError> {
    let dest = dest(a.out, a.format);
    let req = RenderLabelsRequest {
        part_type: a.part_type,
        start: a.from,
        end: a.to,
        polarization: a.polarization,
        format: a.format.name().into(),
        single_file: matches!(dest, Dest::File(_)) && a.format == LabelFormat::Pdf,
        ..Default::default()
    };
    let written = render(conn, req, &dest).await?;
    report(&written, as_json);
    Ok(())
}

/// Runs a `barcode` command.
pub async fn barcode(conn: &Conn, cmd: BarcodeCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        BarcodeCmd::Printpages { part_type, start_number, end_number, out } => {
            let req = RenderLabelsRequest {
                part_type,
                start: start_number,
                end: end_number,
                polarization: "both".into(),
                format: "pdf".into(),
                ..Default::default()
            };
            let written = render(conn, req, &Dest::Dir(out.unwrap_or_else(default_dir))).await?;
            report(&written, as_json);
            Ok(())
        }
    }
}

/// Writes the PDF sheet of exactly `ids`, in order, to `path`
/// (`parts add ... --labels FILE.pdf`).
pub async fn sheet_of(conn: &Conn, ids: Vec<String>, path: &Path) -> Result<Written, CtlError> {
    let req = RenderLabelsRequest {
        part_numbers: ids,
        format: "pdf".into(),
        single_file: true,
        ..Default::default()
    };
    let mut written = render(conn, req, &Dest::File(path.to_path_buf())).await?;
    written.pop().ok_or_else(|| CtlError::Io("casmand sent no label sheet".into()))
}

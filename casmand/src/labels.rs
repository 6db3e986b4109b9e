//! Which labels a request asks for, what files they make, and their
//! rendering with `casman-labels` under the `[labels]` configuration.
//! Pure: no I/O; the gRPC service ([`crate::api::labels`]) streams the files
//! and the web views may call [`sheet_of`] to offer a batch's sheet.

use casman_labels::{LabelError, LabelsConfig, PolarizationLayout, SheetLabel, Stock};

use crate::{
    error::{Error, Result},
    inventory::{MAX_PART_NUMBER, PartNumber, PartType, Polarization, SnapBoardId, SnapPort},
};

/// Most labels one request may render (about 670 Letter pages).
pub const MAX_LABELS: usize = 20_000;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PDF sheets.
    Pdf,
    /// One PNG per label.
    Png,
    /// One SVG per label.
    Svg,
}

impl Format {
    /// Parses `pdf` (also the default, empty), `png` or `svg`, any case.
    pub fn parse(input: &str) -> Result<Format> {
        match input.trim().to_ascii_lowercase().as_str() {
            "" | "pdf" => Ok(Format::Pdf),
            "png" => Ok(Format::Png),
            "svg" => Ok(Format::Svg),
            _ => Err(Error::invalid(format!("label format {input:?}: expected pdf, png or svg"))),
        }
    }
}

/// One label to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelId {
    /// The id on the label.
    pub text: String,
    /// Its part type (SNAP for ports).
    pub part_type: PartType,
    /// Its polarization; `None` for SNAP ports.
    pub polarization: Option<Polarization>,
}

impl LabelId {
    fn part(p: PartNumber) -> LabelId {
        LabelId { text: p.to_string(), part_type: p.part_type(), polarization: Some(p.polarization()) }
    }

    fn port(p: SnapPort) -> LabelId {
        LabelId { text: p.to_string(), part_type: PartType::Snap, polarization: None }
    }

    fn stock(&self) -> Stock {
        match self.part_type {
            PartType::CoaxShort => Stock::CoaxShort,
            PartType::CoaxLong => Stock::CoaxLong,
            _ => Stock::Standard,
        }
    }

    /// CAsMan's place of a label image: `<TYPE>/<P1|P2>/<id>.<ext>`
    /// (`SNAP/<id>.<ext>` for ports).
    fn image_path(&self, ext: &str) -> String {
        match self.polarization {
            Some(p) => format!("{}/{p}/{}.{ext}", self.part_type.name(), self.text),
            None => format!("{}/{}.{ext}", self.part_type.name(), self.text),
        }
    }
}

/// What to label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Numbers `start..=end` of a part type, in the given polarizations.
    Range {
        /// The type.
        part_type: PartType,
        /// First number.
        start: u32,
        /// Last number.
        end: u32,
        /// P1, P2 or both, in that order.
        polarizations: Vec<Polarization>,
    },
    /// SNAP ports from `start` to `end` (chassis, slot, port order).
    Ports {
        /// First port.
        start: SnapPort,
        /// Last port.
        end: SnapPort,
    },
    /// These ids, in this order.
    List(Vec<LabelId>),
}

/// A file to hand to the client.
#[derive(Debug, Clone)]
pub struct LabelFile {
    /// Relative path (`ANTENNA_P1_00001_00050.pdf`, `ANTENNA/P1/ANT00001P1.png`).
    pub path: String,
    /// Contents.
    pub data: Vec<u8>,
    /// The ids on it, in order.
    pub ids: Vec<String>,
    /// Pages (PDF), else 0.
    pub pages: u32,
}

fn number(which: &str, input: &str) -> Result<u32> {
    let s = input.trim();
    let n: u64 = s.parse().map_err(|_| {
        Error::invalid(format!("{which} number {input:?} is not a number: expected 1-{MAX_PART_NUMBER}"))
    })?;
    if n == 0 || n > u64::from(MAX_PART_NUMBER) {
        return Err(Error::invalid(format!(
            "{which} number {n} is out of range 1-{MAX_PART_NUMBER} (part numbers have 5 digits)"
        )));
    }
    Ok(n as u32)
}

fn port(input: &str) -> Result<SnapPort> {
    let s = input.trim().to_ascii_uppercase();
    SnapPort::parse(&if s.starts_with("SNAP") { s } else { format!("SNAP{s}") })
}

fn port_index(p: SnapPort) -> u32 {
    (u32::from(p.chassis()) - 1) * 132 + u32::from(p.board().slot_index()) * 12 + u32::from(p.port())
}

impl Selection {
    /// A range: `part_type` by name or abbreviation (SNAP for ports),
    /// `start`/`end` numbers (port ids for SNAP), `polarization` 1, 2, P1,
    /// P2 or both (empty = both).
    pub fn range(part_type: &str, start: &str, end: &str, polarization: &str) -> Result<Selection> {
        let part_type = PartType::parse(part_type)?;
        if part_type == PartType::Snap {
            let (start, end) = (port(start)?, port(end)?);
            if port_index(start) > port_index(end) {
                return Err(Error::invalid(format!(
                    "Start port must come before the end port: {start} is after {end} \
                     (ports run by chassis, slot, port)"
                )));
            }
            return Ok(Selection::Ports { start, end });
        }
        let (start, end) = (number("start", start)?, number("end", end)?);
        if start > end {
            return Err(Error::invalid(format!(
                "Start number must be less than or equal to end number (start {start}, end {end})"
            )));
        }
        let polarizations = match polarization.trim().to_ascii_lowercase().as_str() {
            "" | "both" => Polarization::ALL.to_vec(),
            _ => vec![Polarization::parse(polarization).map_err(|_| {
                Error::invalid(format!("polarization {polarization:?}: expected 1, 2, P1, P2 or both"))
            })?],
        };
        Ok(Selection::Range { part_type, start, end, polarizations })
    }

    /// A list of part numbers (`ANT00001P1`) and SNAP port ids (`SNAP1A05`).
    pub fn list<S: AsRef<str>>(ids: &[S]) -> Result<Selection> {
        let ids = ids
            .iter()
            .map(|id| {
                let id = id.as_ref();
                if id.trim().to_ascii_uppercase().starts_with("SNAP") {
                    SnapPort::parse(id).map(LabelId::port)
                } else {
                    PartNumber::parse(id).map(LabelId::part)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Err(Error::invalid("no part numbers given to label"));
        }
        Ok(Selection::List(ids))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        match self {
            Selection::Range { start, end, polarizations, .. } => {
                (end - start + 1) as usize * polarizations.len()
            }
            Selection::Ports { start, end } => (port_index(*end) - port_index(*start) + 1) as usize,
            Selection::List(ids) => ids.len(),
        }
    }

    /// Whether there is nothing to label (never, for a parsed selection).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels in sheet order, grouped: each group starts a new sheet
    /// (polarizations apart unless `layout` interleaves them).
    pub fn groups(&self, layout: PolarizationLayout) -> Result<Vec<Vec<LabelId>>> {
        if self.len() > MAX_LABELS {
            return Err(Error::invalid(format!(
                "{} labels asked for: at most {MAX_LABELS} per request; print the range in parts",
                self.len()
            )));
        }
        Ok(match self {
            Selection::Range { part_type, start, end, polarizations } => {
                let label = |n: u32, p: Polarization| PartNumber::new(*part_type, n, p).map(LabelId::part);
                match layout {
                    PolarizationLayout::Separate => polarizations
                        .iter()
                        .map(|&p| (*start..=*end).map(|n| label(n, p)).collect::<Result<Vec<_>>>())
                        .collect::<Result<Vec<_>>>()?,
                    PolarizationLayout::Interleaved => vec![
                        (*start..=*end)
                            .flat_map(|n| polarizations.iter().map(move |&p| (n, p)))
                            .map(|(n, p)| label(n, p))
                            .collect::<Result<Vec<_>>>()?,
                    ],
                }
            }
            Selection::Ports { start, end } => {
                let range = port_index(*start)..=port_index(*end);
                vec![
                    SnapBoardId::all()
                        .flat_map(SnapBoardId::ports)
                        .filter(|p| range.contains(&port_index(*p)))
                        .map(LabelId::port)
                        .collect(),
                ]
            }
            Selection::List(ids) => vec![ids.clone()],
        })
    }

    /// The sheet name of `group` (CAsMan's `<TYPE>_P1_00001_00050.pdf` for a
    /// range of one polarization).
    fn sheet_name(&self, group: &[LabelId]) -> String {
        let pols = |g: &[LabelId]| {
            let mut p: Vec<Polarization> = g.iter().filter_map(|l| l.polarization).collect();
            p.dedup();
            p
        };
        match self {
            Selection::Range { part_type, start, end, .. } => match pols(group).as_slice() {
                [one] => format!("{}_{one}_{start:05}_{end:05}.pdf", part_type.name()),
                _ => format!("{}_{start:05}_{end:05}.pdf", part_type.name()),
            },
            Selection::Ports { start, end } => {
                let short = |p: &SnapPort| p.to_string().trim_start_matches("SNAP").to_owned();
                format!("SNAP_{}_{}.pdf", short(start), short(end))
            }
            Selection::List(ids) => {
                let first = ids.first().map_or("", |l| l.text.as_str());
                let last = ids.last().map_or("", |l| l.text.as_str());
                if first == last { format!("{first}.pdf") } else { format!("{first}_{last}.pdf") }
            }
        }
    }
}

fn label_error(e: LabelError) -> Error {
    match e {
        LabelError::Png(detail) => Error::internal("encoding a label image", detail),
        other => Error::invalid(other.to_string()),
    }
}

fn sheet(cfg: &LabelsConfig, groups: &[Vec<LabelId>]) -> Result<casman_labels::Sheet> {
    let groups: Vec<Vec<SheetLabel>> = groups
        .iter()
        .map(|g| g.iter().map(|l| SheetLabel { text: l.text.clone(), stock: l.stock() }).collect())
        .collect();
    casman_labels::sheet_pdf(cfg, &groups).map_err(label_error)
}

/// Renders `selection` as files: PDF sheets (one per group, or one in all
/// with `single_file`), or one image per label. Everything is laid out
/// before anything is returned: any bad label fails the whole request.
pub fn render(
    cfg: &LabelsConfig,
    selection: &Selection,
    format: Format,
    single_file: bool,
) -> Result<Vec<LabelFile>> {
    let groups = selection.groups(cfg.polarizations)?;
    let ids = |g: &[LabelId]| g.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
    match format {
        Format::Pdf if single_file => {
            let all: Vec<LabelId> = groups.iter().flatten().cloned().collect();
            let s = sheet(cfg, &groups)?;
            Ok(vec![LabelFile {
                path: selection.sheet_name(&all),
                data: s.pdf,
                ids: ids(&all),
                pages: s.pages,
            }])
        }
        Format::Pdf => groups
            .iter()
            .map(|g| {
                let s = sheet(cfg, std::slice::from_ref(g))?;
                Ok(LabelFile { path: selection.sheet_name(g), data: s.pdf, ids: ids(g), pages: s.pages })
            })
            .collect(),
        Format::Png | Format::Svg => groups
            .iter()
            .flatten()
            .map(|l| {
                let g = casman_labels::layout(cfg, &l.text, l.stock()).map_err(label_error)?;
                let (data, ext) = match format {
                    Format::Png => (casman_labels::label_png(&g).map_err(label_error)?, "png"),
                    _ => (casman_labels::label_svg(&g).into_bytes(), "svg"),
                };
                Ok(LabelFile { path: l.image_path(ext), data, ids: vec![l.text.clone()], pages: 0 })
            })
            .collect(),
    }
}

/// The PDF sheet of exactly these ids, in this order (e.g. a batch just
/// generated): what a web page offers for download.
pub fn sheet_of<S: AsRef<str>>(cfg: &LabelsConfig, ids: &[S]) -> Result<Vec<u8>> {
    let files = render(cfg, &Selection::list(ids)?, Format::Pdf, true)?;
    files.into_iter().next().map(|f| f.data).ok_or_else(|| Error::invalid("no labels to render"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(groups: &[Vec<LabelId>]) -> Vec<Vec<String>> {
        groups.iter().map(|g| g.iter().map(|l| l.text.clone()).collect()).collect()
    }

    #[test]
    fn a_range_gives_both_polarizations_apart_or_interleaved() -> Result<()> {
        let s = Selection::range("ANT", "1", "2", "both")?;
        assert_eq!(
            texts(&s.groups(PolarizationLayout::Separate)?),
            [["ANT00001P1", "ANT00002P1"], ["ANT00001P2", "ANT00002P2"]]
        );
        assert_eq!(
            texts(&s.groups(PolarizationLayout::Interleaved)?),
            [["ANT00001P1", "ANT00001P2", "ANT00002P1", "ANT00002P2"]]
        );
        let one = Selection::range("lna", "7", "7", "2")?;
        assert_eq!(texts(&one.groups(PolarizationLayout::Separate)?), [["LNA00007P2"]]);
        Ok(())
    }

    #[test]
    fn bad_ranges_are_refused_with_cas_man_s_message() {
        let err = |t: &str, a: &str, b: &str, p: &str| {
            Selection::range(t, a, b, p).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(err("ANT", "5", "3", "").starts_with("Start number must be less than"));
        assert!(err("ANT", "1", "100000", "").contains("out of range 1-99999"));
        assert!(err("ANT", "0", "1", "").contains("out of range"));
        assert!(err("ANT", "x", "1", "").contains("not a number"));
        assert!(err("WIDGET", "1", "2", "").contains("unknown part type"));
        assert!(err("ANT", "1", "2", "3").contains("expected 1, 2, P1, P2 or both"));
        assert!(err("SNAP", "1B00", "1A00", "").contains("Start port"));
        let huge =
            Selection::range("ANT", "1", "99999", "").and_then(|s| s.groups(PolarizationLayout::Separate));
        assert!(huge.err().map(|e| e.to_string()).unwrap_or_default().contains("at most 20000"));
    }

    #[test]
    fn snap_ranges_run_by_chassis_slot_port() -> Result<()> {
        let s = Selection::range("SNAP", "1A10", "SNAP1B01", "")?;
        assert_eq!(
            texts(&s.groups(PolarizationLayout::Separate)?),
            [["SNAP1A10", "SNAP1A11", "SNAP1B00", "SNAP1B01"]]
        );
        Ok(())
    }

    #[test]
    fn files_are_named_as_cas_man_named_them() -> Result<()> {
        let cfg = LabelsConfig::default();
        let s = Selection::range("ANTENNA", "1", "2", "")?;
        let names: Vec<String> = render(&cfg, &s, Format::Pdf, false)?.into_iter().map(|f| f.path).collect();
        assert_eq!(names, ["ANTENNA_P1_00001_00002.pdf", "ANTENNA_P2_00001_00002.pdf"]);
        let one = render(&cfg, &s, Format::Pdf, true)?;
        assert_eq!((one.len(), one[0].path.as_str(), one[0].pages), (1, "ANTENNA_00001_00002.pdf", 2));
        let pngs = render(&cfg, &Selection::range("CXS", "3", "3", "1")?, Format::Png, false)?;
        assert_eq!(pngs[0].path, "COAXSHORT/P1/CXS00003P1.png");
        Ok(())
    }

    #[test]
    fn a_list_keeps_its_order_and_refuses_bad_ids() -> Result<()> {
        let cfg = LabelsConfig::default();
        let pdf = sheet_of(&cfg, &["ANT00003P1", "snap1a05", "ANT00001P1"])?;
        assert!(pdf.starts_with(b"%PDF"));
        let s = Selection::list(&["ANT00003P1", "snap1a05"])?;
        assert_eq!(texts(&s.groups(PolarizationLayout::Separate)?), [["ANT00003P1", "SNAP1A05"]]);
        assert!(Selection::list(&["ANT1"]).is_err());
        assert!(Selection::list::<&str>(&[]).is_err());
        Ok(())
    }
}

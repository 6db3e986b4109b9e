//! Sheets: PDF pages of labels in rows and columns, for printing on Letter
//! or A4 stock. Bars are vector rectangles on the pixel grid of the
//! configured dpi; the id is set in the standard Courier-Bold font (no
//! embedded font, so every PDF reader has it).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::{Geometry, LabelError, LabelsConfig, Stock, font, layout};

/// Points per inch.
const PT: f64 = 72.0;

/// One label of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetLabel {
    /// The id: a part number or SNAP port id.
    pub text: String,
    /// The stock it is printed on.
    pub stock: Stock,
}

/// A rendered sheet.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// The PDF file.
    pub pdf: Vec<u8>,
    /// Its number of pages.
    pub pages: u32,
    /// Labels on it.
    pub labels: u32,
}

/// Where labels go on a page, in inches from the top-left corner.
#[derive(Debug, Clone, Copy)]
struct Grid {
    columns: u32,
    rows: u32,
    cell_w: f64,
    cell_h: f64,
}

impl Grid {
    fn new(cfg: &LabelsConfig, labels: &[Geometry]) -> Result<Grid, LabelError> {
        let dpi = f64::from(cfg.dpi);
        let cell_w = labels.iter().map(|g| f64::from(g.width) / dpi).fold(0.0, f64::max);
        let cell_h = labels.iter().map(|g| f64::from(g.height) / dpi).fold(0.0, f64::max);
        let (page_w, page_h) = cfg.page_size.inches();
        let room_w = page_w - 2.0 * cfg.margin_inches;
        let room_h = page_h - 2.0 * cfg.margin_inches;
        let fit =
            |room: f64, cell: f64, gap: f64| ((room + gap + 1e-9) / (cell + gap)).floor().max(0.0) as u32;
        let columns = cfg.columns.min(fit(room_w, cell_w, cfg.horizontal_gap_inches));
        let rows = fit(room_h, cell_h, cfg.vertical_gap_inches);
        if columns == 0 || rows == 0 {
            return Err(LabelError::TooSmall(format!(
                "labels of {cell_w:.3} × {cell_h:.3} in do not fit on the page between {} in margins",
                cfg.margin_inches
            )));
        }
        if columns < cfg.columns {
            return Err(LabelError::Config {
                key: "columns",
                value: cfg.columns.to_string(),
                rule: format!("only {columns} labels of {cell_w:.3} in fit in a row of the page"),
            });
        }
        Ok(Grid { columns, rows, cell_w, cell_h })
    }

    fn per_page(self) -> u32 {
        self.columns * self.rows
    }
}

/// Lays out every label first (so that a label that cannot be drawn fails
/// the whole sheet before anything is produced), then draws `groups` in
/// order: each group starts on a new page (P1 and P2 on separate sheets),
/// labels fill rows left to right, top to bottom.
pub fn sheet_pdf(cfg: &LabelsConfig, groups: &[Vec<SheetLabel>]) -> Result<Sheet, LabelError> {
    cfg.validate()?;
    let laid: Vec<Vec<Geometry>> = groups
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| g.iter().map(|l| layout(cfg, &l.text, l.stock)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    let all: Vec<Geometry> = laid.iter().flatten().cloned().collect();
    if all.is_empty() {
        return Err(LabelError::Empty);
    }
    let grid = Grid::new(cfg, &all)?;
    let pages: Vec<&[Geometry]> = laid.iter().flat_map(|g| g.chunks(grid.per_page() as usize)).collect();

    let (page_w, page_h) = cfg.page_size.inches();
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font_ref = Ref::new(3);
    let info = Ref::new(4);
    let font_name = Name(b"F1");
    let page_refs: Vec<(Ref, Ref)> =
        (0..pages.len() as i32).map(|i| (Ref::new(5 + 2 * i), Ref::new(6 + 2 * i))).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_refs.iter().map(|p| p.0)).count(pages.len() as i32);
    pdf.type1_font(font_ref).base_font(Name(b"Courier-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info).title(TextStr("casman labels")).creator(TextStr("casman"));
    for (labels, &(page_ref, content_ref)) in pages.iter().zip(&page_refs) {
        let mut page = pdf.page(page_ref);
        page.media_box(Rect::new(0.0, 0.0, (page_w * PT) as f32, (page_h * PT) as f32));
        page.parent(tree);
        page.contents(content_ref);
        page.resources().fonts().pair(font_name, font_ref);
        page.finish();
        let mut content = Content::new();
        content.set_fill_gray(0.0);
        for (i, g) in labels.iter().enumerate() {
            let (col, row) = (i as u32 % grid.columns, i as u32 / grid.columns);
            let left = cfg.margin_inches + f64::from(col) * (grid.cell_w + cfg.horizontal_gap_inches);
            let top = cfg.margin_inches + f64::from(row) * (grid.cell_h + cfg.vertical_gap_inches);
            draw_label(&mut content, font_name, g, left * PT, (page_h - top) * PT);
        }
        pdf.stream(content_ref, &content.finish());
    }
    Ok(Sheet { pdf: pdf.finish(), pages: pages.len() as u32, labels: all.len() as u32 })
}

/// Draws one label whose top-left corner is at (`left`, `top`) points (PDF
/// y grows upwards).
fn draw_label(content: &mut Content, font_name: Name<'_>, g: &Geometry, left: f64, top: f64) {
    let s = PT / f64::from(g.dpi);
    for b in &g.bars {
        let y = top - f64::from(b.y + b.h) * s;
        content.rect(
            (left + f64::from(b.x) * s) as f32,
            y as f32,
            (f64::from(b.w) * s) as f32,
            (f64::from(b.h) * s) as f32,
        );
    }
    if !g.bars.is_empty() {
        content.fill_nonzero();
    }
    for line in &g.lines {
        // Courier's advance is 0.6 em: this size fills the same cells as
        // the raster font.
        let size = f64::from(font::CELL_W * line.scale) / 0.6 * s;
        let x = left + f64::from(line.x) * s;
        let y = top - f64::from(line.y + font::BASELINE * line.scale) * s;
        content.begin_text();
        content.set_font(font_name, size as f32);
        content.next_line(x as f32, y as f32);
        content.show(Str(line.text.as_bytes()));
        content.end_text();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolarizationLayout;

    fn labels(prefix: &str, n: u32, pol: u32) -> Vec<SheetLabel> {
        (1..=n)
            .map(|i| SheetLabel { text: format!("{prefix}{i:05}P{pol}"), stock: Stock::Standard })
            .collect()
    }

    #[test]
    fn thirty_labels_per_letter_page_and_groups_start_new_pages() {
        let cfg = LabelsConfig::default();
        let sheet =
            sheet_pdf(&cfg, &[labels("ANT", 50, 1), labels("ANT", 50, 2)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((sheet.pages, sheet.labels), (4, 100));
        assert!(sheet.pdf.starts_with(b"%PDF-"));
        let one = sheet_pdf(&cfg, &[labels("ANT", 30, 1)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.pages, 1);
        let _ = PolarizationLayout::Interleaved;
        let a4 = LabelsConfig { page_size: crate::PageSize::A4, ..cfg };
        // A4: 11.69 in tall → 10 rows of 0.75 in + 0.25 in gaps as well.
        assert_eq!(sheet_pdf(&a4, &[labels("LNA", 31, 2)]).map(|s| s.pages).ok(), Some(2));
    }

    #[test]
    fn nothing_or_a_bad_label_renders_no_sheet() {
        let cfg = LabelsConfig::default();
        assert_eq!(sheet_pdf(&cfg, &[]).err(), Some(LabelError::Empty));
        let bad = vec![SheetLabel { text: "ANT 1".into(), stock: Stock::Standard }];
        assert!(matches!(sheet_pdf(&cfg, &[labels("ANT", 2, 1), bad]), Err(LabelError::Text { .. })));
    }
}

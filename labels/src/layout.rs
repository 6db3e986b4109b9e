//! The geometry of one label in pixels at the configured dpi: bars, quiet
//! zones and the human-readable text. PNG, SVG and PDF all draw this.

use crate::{LabelError, LabelsConfig, code128, font};

/// The narrowest bar (one Code 128 module), in pixels: 2 px is 0.17 mm at
/// 300 dpi, which ordinary hand-held scanners resolve.
pub const MIN_MODULE_PX: u32 = 2;

/// Quiet zone Code 128 asks for on each side, in modules.
const QUIET_MODULES: u32 = 10;

/// Smallest quiet zone casman accepts when a label is too narrow for the
/// full one (CAsMan's 1 in coax label at 300 dpi), in modules. On a sheet the
/// gap between labels adds to it.
const MIN_QUIET_MODULES: u32 = 2;

/// The label stock a part is printed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stock {
    /// The standard label (`width_inches` × `height_inches`).
    Standard,
    /// A label wrapped around a COAXSHORT cable (coax size).
    CoaxShort,
    /// A label wrapped around a COAXLONG cable (coax size).
    CoaxLong,
}

/// One bar: a black rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Left edge, px.
    pub x: u32,
    /// Top edge, px.
    pub y: u32,
    /// Width, px (a multiple of the module width).
    pub w: u32,
    /// Height, px.
    pub h: u32,
}

/// One line of text in the monospaced label font: each character cell is
/// `10 × scale` px wide and `20 × scale` px tall, the baseline `16 × scale`
/// px below the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLine {
    /// The text.
    pub text: String,
    /// Left edge of the first cell, px.
    pub x: u32,
    /// Top of the cells, px.
    pub y: u32,
    /// Magnification of the 10 × 20 px font.
    pub scale: u32,
}

impl TextLine {
    /// Width of the line, px.
    pub fn width(&self) -> u32 {
        self.text.len() as u32 * font::CELL_W * self.scale
    }
}

/// A label: size, resolution, bars and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// The id printed.
    pub text: String,
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Pixels per inch.
    pub dpi: u32,
    /// Width of one module (the narrowest bar), px; 0 for a text-only label.
    pub module: u32,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
    /// The text lines, top to bottom.
    pub lines: Vec<TextLine>,
}

/// Lays out the label of `text` on `stock`.
pub fn layout(cfg: &LabelsConfig, text: &str, stock: Stock) -> Result<Geometry, LabelError> {
    let (w_in, h_in) = match stock {
        Stock::Standard => (cfg.width_inches, cfg.height_inches),
        Stock::CoaxShort | Stock::CoaxLong => (cfg.coax_width_inches, cfg.coax_height_inches),
    };
    let (width, height) = (cfg.px(w_in), cfg.px(h_in));
    let text_only = stock != Stock::Standard && !cfg.coax_use_barcode;
    if text_only {
        let diameter = match stock {
            Stock::CoaxLong => cfg.coaxlong_diameter_inches,
            _ => cfg.coaxshort_diameter_inches,
        };
        return text_label(cfg, text, width, height, (h_in / (0.9 * diameter)).floor().max(1.0) as u32);
    }
    let modules = code128::modules(text)?;
    let n = modules.len() as u32;
    let module = (width / (n + 2 * QUIET_MODULES)).max(MIN_MODULE_PX);
    let symbol = n * module;
    if symbol + 2 * MIN_QUIET_MODULES * module > width {
        return Err(LabelError::TooSmall(format!(
            "a label {width} px wide ({w_in} in at {} dpi) cannot hold {text:?} in Code 128: its {n} modules \
             of {MIN_MODULE_PX} px need {} px with the smallest quiet zones; raise the label width or the dpi",
            cfg.dpi,
            (n + 2 * MIN_QUIET_MODULES) * MIN_MODULE_PX
        )));
    }
    let quiet = (width - symbol) / 2;
    // Vertical: margin, bars, a small gap, the text, margin.
    let margin = (height * 6 / 100).max(1);
    let scale = font_scale(text, width.saturating_sub(2 * quiet.min(width / 10)), height / 4);
    if scale == 0 {
        return Err(LabelError::TooSmall(format!(
            "a label {width} × {height} px cannot hold the text {text:?} beneath its barcode"
        )));
    }
    let text_h = font::CELL_H * scale;
    let gap = (height * 3 / 100).max(1);
    let bar_h = height.saturating_sub(2 * margin + gap + text_h);
    if bar_h < height / 3 {
        return Err(LabelError::TooSmall(format!(
            "a label {height} px tall leaves only {bar_h} px for the bars of {text:?}"
        )));
    }
    let mut bars = Vec::new();
    let mut i = 0;
    while i < modules.len() {
        if modules[i] {
            let start = i;
            while i < modules.len() && modules[i] {
                i += 1;
            }
            bars.push(Bar {
                x: quiet + start as u32 * module,
                y: margin,
                w: (i - start) as u32 * module,
                h: bar_h,
            });
        } else {
            i += 1;
        }
    }
    let line = TextLine { text: text.to_owned(), x: 0, y: margin + bar_h + gap, scale };
    let line = TextLine { x: (width - line.width()) / 2, ..line };
    Ok(Geometry { text: text.to_owned(), width, height, dpi: cfg.dpi, module, bars, lines: vec![line] })
}

/// CAsMan's text-only coax label: `repeat` lines of the id, wrapping the cable.
fn text_label(
    cfg: &LabelsConfig,
    text: &str,
    width: u32,
    height: u32,
    repeat: u32,
) -> Result<Geometry, LabelError> {
    // The same characters as a barcode label may hold.
    code128::modules(text)?;
    let band = height / repeat;
    let scale = font_scale(text, width * 95 / 100, band * 85 / 100);
    if scale == 0 {
        return Err(LabelError::TooSmall(format!(
            "a coax label {width} × {height} px cannot hold {repeat} line(s) of {text:?}"
        )));
    }
    let lines = (0..repeat)
        .map(|k| {
            let line = TextLine { text: text.to_owned(), x: 0, y: 0, scale };
            let (w, h) = (line.width(), font::CELL_H * scale);
            TextLine { x: (width - w) / 2, y: k * band + (band - h) / 2, ..line }
        })
        .collect();
    Ok(Geometry { text: text.to_owned(), width, height, dpi: cfg.dpi, module: 0, bars: Vec::new(), lines })
}

/// The largest font magnification (at most 4) at which `text` fits in
/// `max_w` × `max_h` px; 0 if none does.
fn font_scale(text: &str, max_w: u32, max_h: u32) -> u32 {
    let len = text.len() as u32;
    (1..=4).rev().find(|s| len * font::CELL_W * s <= max_w && font::CELL_H * s <= max_h).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_label_has_two_pixel_modules_and_full_quiet_zones() {
        let g =
            layout(&LabelsConfig::default(), "ANT00001P1", Stock::Standard).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((g.width, g.height, g.module), (360, 225, 2));
        let first = g.bars.first().map_or(0, |b| b.x);
        let last = g.bars.last().map_or(0, |b| b.x + b.w);
        assert!(first >= 10 * g.module && g.width - last >= 10 * g.module, "{first} {last}");
        assert!(g.bars.iter().all(|b| b.w % g.module == 0 && b.w >= MIN_MODULE_PX));
        let line = &g.lines[0];
        assert!(line.y > g.bars[0].y + g.bars[0].h && line.y + 20 * line.scale <= g.height);
    }

    #[test]
    fn coax_label_keeps_two_pixel_bars_in_three_hundred_pixels() {
        let g = layout(&LabelsConfig::default(), "CXS00001P1", Stock::CoaxShort)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((g.width, g.height, g.module), (300, 102, 2));
        assert!(g.bars[0].x >= 2 * MIN_QUIET_MODULES);
    }

    #[test]
    fn text_only_coax_repeats_the_id_per_cable_diameter() {
        let cfg = LabelsConfig { coax_use_barcode: false, ..LabelsConfig::default() };
        // 0.34 / (0.9 × 0.141) = 2.68 → 2 lines; 0.34 / (0.9 × 0.233) = 1.62 → 1.
        let short = layout(&cfg, "CXS00001P1", Stock::CoaxShort).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((short.lines.len(), short.bars.len()), (2, 0));
        let long = layout(&cfg, "CXL00001P1", Stock::CoaxLong).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(long.lines.len(), 1);
    }

    #[test]
    fn too_narrow_a_label_is_refused() {
        let cfg = LabelsConfig { width_inches: 0.5, ..LabelsConfig::default() };
        let err =
            layout(&cfg, "ANT00001P1", Stock::Standard).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("150 px wide") && err.contains("raise"), "{err}");
    }

    #[test]
    fn higher_dpi_widens_the_modules() {
        let cfg = LabelsConfig { dpi: 600, ..LabelsConfig::default() };
        let g = layout(&cfg, "ANT00001P1", Stock::Standard).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((g.width, g.module), (720, 4));
    }
}

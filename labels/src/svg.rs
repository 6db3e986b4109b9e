//! One label as an SVG document sized in inches (bars on the pixel grid of
//! the configured dpi, the id as text in a monospaced font).

use std::fmt::Write;

use crate::{Geometry, font};

/// Font names for the id, most specific first.
const FONT_FAMILY: &str = "DejaVu Sans Mono, Liberation Mono, Courier New, monospace";

/// Escapes text for XML content and attributes.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The label as an SVG document: `width`/`height` in inches, a view box in
/// pixels of the configured dpi, so it prints at the configured size and
/// rasterizes at that dpi to the same pixels as the PNG's bars.
pub fn label_svg(g: &Geometry) -> String {
    let inches = |px: u32| f64::from(px) / f64::from(g.dpi);
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}in" height="{}in" viewBox="0 0 {} {}">"#,
        inches(g.width),
        inches(g.height),
        g.width,
        g.height
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&g.text));
    let _ = writeln!(s, r#"<rect width="{}" height="{}" fill="white"/>"#, g.width, g.height);
    let _ = writeln!(s, r#"<g fill="black" shape-rendering="crispEdges">"#);
    for b in &g.bars {
        let _ = writeln!(s, r#"<rect x="{}" y="{}" width="{}" height="{}"/>"#, b.x, b.y, b.w, b.h);
    }
    let _ = writeln!(s, "</g>");
    for line in &g.lines {
        // A monospaced font's advance is 0.6 em: pick the size that fills the
        // cells, and pin the length so that any fallback font fits the same box.
        let size = f64::from(font::CELL_W * line.scale) / 0.6;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-family="{FONT_FAMILY}" font-weight="bold" font-size="{size:.2}" textLength="{}" lengthAdjust="spacingAndGlyphs">{}</text>"#,
            line.x,
            line.y + font::BASELINE * line.scale,
            line.width(),
            escape(&line.text)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LabelsConfig, Stock, layout};

    #[test]
    fn svg_is_sized_in_inches_with_one_rect_per_bar() {
        let g =
            layout(&LabelsConfig::default(), "BAC00003P1", Stock::Standard).unwrap_or_else(|e| panic!("{e}"));
        let svg = label_svg(&g);
        assert!(svg.contains(r#"width="1.2in" height="0.75in" viewBox="0 0 360 225""#), "{svg}");
        assert_eq!(svg.matches("<rect x=").count(), g.bars.len());
        assert!(svg.contains(">BAC00003P1</text>"));
    }
}

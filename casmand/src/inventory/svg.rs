//! An SVG drawing of an array layout: one cell per position at its grid
//! location (north at the top, E01 on the left), labelled with grid code and
//! kernel index, assigned antennas highlighted. Hand-written SVG 1.1, no
//! scripts or external resources, so any viewer (and `rsvg-convert`) shows it.

use std::{collections::BTreeMap, fmt::Write};

use super::{GridCode, GridLayout};

const CELL_W: u32 = 118;
const CELL_H: u32 = 42;
const GAP: u32 = 6;
const LEFT: u32 = 64;
const TOP: u32 = 118;
const RIGHT: u32 = 24;
const BOTTOM: u32 = 36;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Draws every position of `layout`; `assigned` maps positions to the
/// antenna standing there (positions outside the layout are counted in the
/// title but not drawn). Each position is one `<g class="position …">`
/// element (`position assigned` when an antenna stands there).
pub fn grid_svg(layout: &GridLayout, assigned: &BTreeMap<GridCode, String>) -> String {
    let rows: Vec<i32> = layout.rows().collect();
    let cols = layout.east_columns;
    let width = LEFT + cols * (CELL_W + GAP) + RIGHT;
    let height = TOP + u32::try_from(rows.len()).unwrap_or(0) * (CELL_H + GAP) + BOTTOM;
    let total = layout.positions().count();
    let inside = assigned.keys().filter(|c| layout.contains(**c)).count();
    let outside = assigned.len() - inside;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">"#
    );
    let _ = writeln!(s, r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##);
    let title = format!("CASM {} array ({})", layout.name, layout.array_id);
    let summary = format!(
        "{inside} of {total} positions assigned{}",
        if outside > 0 { format!("; {outside} outside the layout not shown") } else { String::new() }
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="28" font-size="18" font-weight="bold" fill="#1a1a1a">{}</text>"##,
        xml_escape(&title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="48" font-size="13" fill="#333333">{}</text>"##,
        xml_escape(&summary)
    );
    legend(&mut s);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" font-size="12" fill="#555555" text-anchor="end">N ↑</text>"##,
        width - RIGHT,
        30
    );
    for col in 1..=cols {
        let x = LEFT + (col - 1) * (CELL_W + GAP) + CELL_W / 2;
        let _ = writeln!(
            s,
            r##"<text x="{x}" y="{}" font-size="13" font-weight="bold" fill="#333333" text-anchor="middle">E{col:02}</text>"##,
            TOP - 10
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + u32::try_from(i).unwrap_or(0) * (CELL_H + GAP);
        let label = match row {
            0 => "C000".to_owned(),
            r if *r > 0 => format!("N{r:03}"),
            r => format!("S{:03}", r.unsigned_abs()),
        };
        if *row == 0 {
            let _ = writeln!(
                s,
                r##"<rect x="4" y="{}" width="{}" height="{}" fill="#fff4d6"/>"##,
                y - GAP / 2,
                width - 8,
                CELL_H + GAP
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" font-size="13" font-weight="bold" fill="#333333" text-anchor="end">{label}</text>"##,
            LEFT - 10,
            y + CELL_H / 2 + 5
        );
        for col in 1..=cols {
            let Ok(code) = GridCode::new(layout.array_id, *row, col) else { continue };
            let x = LEFT + (col - 1) * (CELL_W + GAP);
            cell(&mut s, code, layout.kernel_index(code), assigned.get(&code).map(String::as_str), x, y);
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{}" font-size="11" fill="#777777">Cells at grid locations (not to scale); k = correlator kernel index.</text>"##,
        height - 12
    );
    s.push_str("</svg>\n");
    s
}

fn legend(s: &mut String) {
    let items = [
        ("#2e7d32", "#c8e6c9", "", "assigned antenna"),
        ("#9e9e9e", "#f5f5f5", "", "free position"),
        ("#9e9e9e", "#f5f5f5", r#" stroke-dasharray="4 3""#, "no kernel index"),
    ];
    let mut x = LEFT;
    for (stroke, fill, dash, label) in items {
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="62" width="22" height="14" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>"#
        );
        let _ = writeln!(s, r##"<text x="{}" y="74" font-size="12" fill="#333333">{label}</text>"##, x + 28);
        x += 170;
    }
}

fn cell(s: &mut String, code: GridCode, kernel: Option<u16>, antenna: Option<&str>, x: u32, y: u32) {
    let (class, fill, stroke, width) = match antenna {
        Some(_) => ("position assigned", "#c8e6c9", "#2e7d32", "2"),
        None => ("position", "#f5f5f5", "#9e9e9e", "1"),
    };
    let dash = if kernel.is_none() { r#" stroke-dasharray="4 3""# } else { "" };
    let kernel_text = kernel.map_or_else(|| "k —".to_owned(), |k| format!("k {k}"));
    let _ = writeln!(s, r#"<g class="{class}" id="{code}">"#);
    let _ = writeln!(
        s,
        r#"  <rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" rx="5" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#
    );
    let _ = writeln!(
        s,
        r##"  <text x="{}" y="{}" font-size="11" font-weight="bold" fill="#222222">{code}</text>"##,
        x + 6,
        y + 15
    );
    let _ = writeln!(
        s,
        r##"  <text x="{}" y="{}" font-size="10" fill="#555555" text-anchor="end">{kernel_text}</text>"##,
        x + CELL_W - 6,
        y + 15
    );
    if let Some(a) = antenna {
        let _ = writeln!(
            s,
            r##"  <text x="{}" y="{}" font-size="12" font-weight="bold" fill="#1b5e20">{}</text>"##,
            x + 6,
            y + 33,
            xml_escape(a)
        );
    }
    s.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny well-formedness check: tags balance, attributes are quoted,
    /// no stray `<` or `&`. Enough for the SVG we write.
    pub(crate) fn well_formed(doc: &str) -> Result<usize, String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut elements = 0;
        let mut rest = doc.trim_start();
        if let Some(r) = rest.strip_prefix("<?xml")
            && let Some(end) = r.find("?>")
        {
            rest = &r[end + 2..];
        }
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            if text.contains('<')
                || text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").contains('&')
            {
                return Err(format!("bad text {text:?}"));
            }
            let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
            let tag = &rest[open + 1..close];
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or(format!("unexpected </{name}>"))?;
                if top != name.trim() {
                    return Err(format!("</{name}> closes <{top}>"));
                }
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().ok_or("empty tag")?;
                if !body.matches('"').count().is_multiple_of(2) {
                    return Err(format!("unbalanced quotes in <{body}>"));
                }
                elements += 1;
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        if stack.is_empty() { Ok(elements) } else { Err(format!("unclosed {stack:?}")) }
    }

    #[test]
    fn core_plot_has_one_element_per_position() {
        let layout = GridLayout::core();
        let mut assigned = BTreeMap::new();
        assigned.insert(GridCode::parse("CN002E03").unwrap(), "ANT00001".to_owned());
        assigned.insert(GridCode::parse("CC000E01").unwrap(), "ANT<&>".to_owned());
        assigned.insert(GridCode::parse("CN099E05").unwrap(), "ANT00009".to_owned());
        let svg = grid_svg(&layout, &assigned);
        well_formed(&svg).unwrap();
        assert_eq!(svg.matches(r#"<g class="position"#).count(), 258);
        assert_eq!(svg.matches(r#"<g class="position assigned""#).count(), 2);
        assert!(svg.contains(r#"id="CN021E01""#) && svg.contains(r#"id="CS021E06""#));
        assert!(svg.contains("k 126") && svg.contains("k 255") && svg.contains("ANT&lt;&amp;&gt;"));
        assert!(svg.contains("2 of 258 positions assigned; 1 outside the layout not shown"));
        assert!(well_formed("<a><b></a></b>").is_err());
        assert!(well_formed("<a x=\"1/>").is_err());
    }
}

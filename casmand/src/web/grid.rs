//! `/grid`: the core array (43 rows N021..C000..S021 by E01..E06) with the
//! antenna at each position and each cell's kernel index; search by antenna,
//! grid code or kernel index; a detail panel with coordinates and, per
//! polarization, the SNAP port, its board and the traced chain (spec 10.4).

use std::collections::BTreeMap;

use axum::{
    extract::{Query, State},
    response::Html,
};

use super::{PageResult, Web, chains::board_lines, html};
use crate::{
    db::{
        assembly, boards,
        positions::{self, PositionRow},
    },
    error::Result,
    inventory::{GridCode, GridLayout, base_antenna, grid_for_kernel, kernel_index},
};

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct GridQuery {
    antenna: Option<String>,
    grid: Option<String>,
    kernel: Option<String>,
}

/// What a search asked for.
enum Selection {
    None,
    /// A position (occupied or not).
    At(GridCode, Option<Box<PositionRow>>),
    /// A search that found nothing, with the reason to show.
    Missing(String),
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn select(web: &Web, q: &GridQuery) -> Result<Selection> {
    let parts = &web.ctx.dbs().parts;
    if let Some(a) = blank(&q.antenna) {
        let base = base_antenna(&a.to_ascii_uppercase());
        return Ok(match positions::get_by_antenna(parts, &base).await? {
            Some(row) => match GridCode::parse(&row.grid_code) {
                Ok(code) => Selection::At(code, Some(Box::new(row))),
                Err(_) => Selection::Missing(format!("{base} has an unreadable grid code.")),
            },
            None => Selection::Missing(format!("No antenna found at the specified location ({base}).")),
        });
    }
    let code = if let Some(g) = blank(&q.grid) {
        match GridCode::parse(g) {
            Ok(c) => c,
            Err(e) => return Ok(Selection::Missing(e.to_string())),
        }
    } else if let Some(k) = blank(&q.kernel) {
        match k.parse::<i64>().ok().and_then(grid_for_kernel) {
            Some(c) => c,
            None => return Ok(Selection::Missing(format!("Kernel index {k:?} is not 0-255."))),
        }
    } else {
        return Ok(Selection::None);
    };
    let row = positions::get_by_grid(parts, code).await?;
    Ok(Selection::At(code, row.map(Box::new)))
}

fn kernel_text(code: GridCode) -> String {
    kernel_index(code).map_or_else(|| "Not mapped".to_owned(), |k| k.to_string())
}

async fn detail(web: &Web, code: GridCode, row: Option<&PositionRow>) -> Result<String> {
    let dbs = web.ctx.dbs();
    let mut t = String::from("<table class=\"kv\">");
    t.push_str(&html::row("Grid code", &html::esc(&code.to_string())));
    t.push_str(&html::row("Kernel index", &kernel_text(code)));
    t.push_str(&html::row("Antenna", &row.map_or_else(|| "—".to_owned(), |r| html::esc(&r.antenna_number))));
    if let Some(r) = row {
        t.push_str(&html::row("Assigned at", &html::esc(&r.assigned_at)));
        t.push_str(&html::row("Notes", &html::or_dash(r.notes.as_deref().unwrap_or(""))));
    }
    let coords =
        match row.and_then(|r| Some((r.latitude?, r.longitude?, r.height, r.coordinate_system.clone()))) {
            Some(c) => Some(c),
            None => positions::coordinate(&dbs.parts, code)
                .await?
                .map(|c| (c.latitude, c.longitude, Some(c.height), c.coordinate_system)),
        };
    let coords = coords.map_or_else(
        || "not loaded".to_owned(),
        |(lat, lon, h, sys)| {
            format!(
                "{lat:.6}, {lon:.6}{}{}",
                h.map(|h| format!(", {h:.2} m")).unwrap_or_default(),
                sys.map(|s| format!(" ({})", html::esc(&s))).unwrap_or_default()
            )
        },
    );
    t.push_str(&html::row("Coordinates", &coords));
    t.push_str("</table>");
    let Some(r) = row else { return Ok(t) };
    for pol in ["P1", "P2"] {
        let part = format!("{}{pol}", r.antenna_number);
        let chain = assembly::trace(&dbs.assembled, &part).await?;
        t.push_str(&format!(
            "<section class=\"pol pol-{}\"><h3>{}</h3>",
            pol.to_ascii_lowercase(),
            html::esc(&part)
        ));
        match chain.snap_port {
            Some(port) => {
                let board = boards::get(&dbs.parts, port.board()).await?;
                t.push_str(&format!(
                    "<p><b>SNAP port</b> <a href=\"/snap?port={port}\">{port}</a>: Chassis {}, Slot {}, Port {}</p>\
                     <p class=\"board\">{}</p>",
                    port.chassis(),
                    port.slot(),
                    port.port(),
                    board_lines(port, board.as_ref())
                ));
            }
            None => t.push_str("<p class=\"muted\">No SNAP port found.</p>"),
        }
        if chain.is_connected() {
            let list: Vec<String> = chain
                .parts
                .iter()
                .map(|p| format!("<a href=\"/chains?part={0}\">{0}</a>", html::esc(p)))
                .collect();
            t.push_str(&format!("<p class=\"trace\">{}</p>", list.join(" → ")));
        }
        t.push_str("</section>");
    }
    Ok(t)
}

pub(super) async fn page(State(web): State<Web>, Query(q): Query<GridQuery>) -> PageResult {
    let layout = GridLayout::core();
    let rows = positions::list(&web.ctx.dbs().parts, Some(layout.array_id)).await?;
    let assigned: BTreeMap<GridCode, &PositionRow> =
        rows.iter().filter_map(|r| GridCode::parse(&r.grid_code).ok().map(|c| (c, r))).collect();
    let selection = select(&web, &q).await?;
    let selected = match &selection {
        Selection::At(c, _) => Some(*c),
        _ => None,
    };

    let mut body = String::from("<form class=\"search grid-search\" method=\"get\" action=\"/grid\">");
    for (name, label, value) in [
        ("antenna", "Antenna, e.g. ANT00001", &q.antenna),
        ("grid", "Grid code, e.g. CC000E01", &q.grid),
        ("kernel", "Kernel index 0-255", &q.kernel),
    ] {
        body.push_str(&format!(
            "<input type=\"search\" name=\"{name}\" value=\"{}\" placeholder=\"{label}\" aria-label=\"{label}\">",
            html::esc(value.as_deref().unwrap_or(""))
        ));
    }
    body.push_str("<button type=\"submit\">Search</button></form>");
    body.push_str("<div class=\"grid-layout\">");
    match &selection {
        Selection::At(code, row) => {
            body.push_str(&format!(
                "<section id=\"detail\" class=\"detail\"><h2>{}</h2>{}</section>",
                html::esc(&code.to_string()),
                detail(&web, *code, row.as_deref()).await?
            ));
        }
        Selection::Missing(why) => {
            body.push_str(&format!(
                "<section id=\"detail\" class=\"detail\"><p class=\"empty\">{}</p></section>",
                html::esc(why)
            ));
        }
        Selection::None => body.push_str(&format!(
            "<section id=\"detail\" class=\"detail\"><p>{} rows × {} columns, {} assigned. Grid codes read \
             <code>C&lt;N|C|S&gt;&lt;row&gt;E&lt;column&gt;</code>, e.g. CN021E01 (kernel 0) to CS021E04 \
             (kernel 255). Pick a cell for its details.</p></section>",
            layout.rows().count(),
            layout.east_columns,
            assigned.len()
        )),
    }
    body.push_str("<div class=\"table-wrap\"><table class=\"core-grid\"><thead><tr><th>Row</th>");
    for c in 1..=layout.east_columns {
        body.push_str(&format!("<th>E{c:02}</th>"));
    }
    body.push_str("</tr></thead><tbody>");
    for code in layout.positions() {
        if code.east_col() == 1 {
            let center = if code.row_offset() == 0 { " class=\"center\"" } else { "" };
            body.push_str(&format!("<tr{center}><th scope=\"row\">{}</th>", code.row_label()));
        }
        let k = kernel_index(code);
        let kernel = k.map_or_else(|| "—".to_owned(), |k| k.to_string());
        let mut classes = String::from("cell");
        let (label, title) = match assigned.get(&code) {
            Some(r) => {
                classes.push_str(" assigned");
                (
                    html::esc(&r.antenna_number),
                    format!("{} | {code} | Kernel: {kernel}", html::esc(&r.antenna_number)),
                )
            }
            None => ("—".to_owned(), format!("{code} | Kernel: {kernel}")),
        };
        if selected == Some(code) {
            classes.push_str(" selected");
        }
        body.push_str(&format!(
            "<td data-grid=\"{code}\"><a class=\"{classes}\" href=\"/grid?grid={code}\" title=\"{title}\">\
             <span class=\"ant\">{label}</span><span class=\"k\">{kernel}</span></a></td>"
        ));
        if code.east_col() == layout.east_columns {
            body.push_str("</tr>");
        }
    }
    body.push_str("</tbody></table></div></div>");
    let outside = rows.len().saturating_sub(assigned.iter().filter(|(c, _)| layout.contains(**c)).count());
    if outside > 0 {
        body.push_str(&format!(
            "<p class=\"muted\">{outside} antenna(s) of array C stand outside the core rows and columns \
             (search for them by antenna).</p>"
        ));
    }
    Ok(Html(html::page("Core grid", "grid", &body)))
}

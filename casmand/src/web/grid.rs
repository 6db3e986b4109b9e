//! `/grid`: the core array (43 rows N021..C000..S021 by E01..E06) with the
//! antenna at each position and each cell's kernel index; search by antenna,
//! grid code or kernel index; a detail panel with coordinates and, per
//! polarization, the SNAP port, its board and the traced chain (spec 10.4).

use std::collections::BTreeMap;

use axum::{
    extract::{Query, State},
    response::Html,
};
use maud::{Markup, html};

use super::{PageResult, Web, chains::board_lines, html};
use crate::{
    db::{
        as_of::At,
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
    /// As of this moment (the form's picker, or any form `--at` takes).
    at: Option<String>,
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

async fn select(web: &Web, q: &GridQuery, at: Option<&At>) -> Result<Selection> {
    let parts = &web.ctx.dbs().parts;
    if let Some(a) = blank(&q.antenna) {
        let base = base_antenna(&a.to_ascii_uppercase());
        return Ok(match positions::get_by_antenna(parts, &base, at).await? {
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
    let row = positions::get_by_grid(parts, code, at).await?;
    Ok(Selection::At(code, row.map(Box::new)))
}

fn kernel_text(code: GridCode) -> String {
    kernel_index(code).map_or_else(|| "Not mapped".to_owned(), |k| k.to_string())
}

async fn detail(web: &Web, code: GridCode, row: Option<&PositionRow>, at: Option<&At>) -> Result<Markup> {
    let dbs = web.ctx.dbs();
    let coords =
        match row.and_then(|r| Some((r.latitude?, r.longitude?, r.height, r.coordinate_system.clone()))) {
            Some(c) => Some(c),
            None => positions::coordinate(&dbs.parts, code, at)
                .await?
                .map(|c| (c.latitude, c.longitude, Some(c.height), c.coordinate_system)),
        };
    let coords = html! {
        @match coords {
            Some((lat, lon, h, sys)) => {
                (format!("{lat:.6}, {lon:.6}"))
                @if let Some(h) = h { (format!(", {h:.2} m")) }
                @if let Some(s) = sys { " (" (s) ")" }
            }
            None => "not loaded",
        }
    };
    let table = html! {
        table class="kv" {
            (html::row("Grid code", code.to_string()))
            (html::row("Kernel index", kernel_text(code)))
            (html::row("Antenna", row.map_or("—", |r| r.antenna_number.as_str())))
            @if let Some(r) = row {
                (html::row("Assigned at", &r.assigned_at))
                (html::row("Notes", html::or_dash(r.notes.as_deref().unwrap_or(""))))
            }
            (html::row("Coordinates", coords))
        }
    };
    let Some(r) = row else { return Ok(table) };
    let mut sections = Vec::new();
    for pol in ["P1", "P2"] {
        let part = format!("{}{pol}", r.antenna_number);
        let chain = assembly::trace(&dbs.assembled, &part, at).await?;
        let board = match chain.snap_port {
            Some(port) => boards::get(&dbs.parts, port.board(), at).await?,
            None => None,
        };
        sections.push(html! {
            section class={ "pol pol-" (pol.to_ascii_lowercase()) } {
                h3 { (part) }
                @match chain.snap_port {
                    Some(port) => {
                        p {
                            b { "SNAP port" } " " a href={ "/snap?port=" (port.to_string()) } { (port.to_string()) }
                            ": Chassis " (port.chassis()) ", Slot " (port.slot()) ", Port " (port.port())
                        }
                        p class="board" { (board_lines(port, board.as_ref())) }
                    }
                    None => p class="muted" { "No SNAP port found." },
                }
                @if chain.is_connected() {
                    p class="trace" {
                        @for (i, p) in chain.parts.iter().enumerate() {
                            @if i > 0 { " → " }
                            a href={ "/chains?part=" (p) } { (p) }
                        }
                    }
                }
            }
        });
    }
    Ok(html! { (table) @for s in sections { (s) } })
}

pub(super) async fn page(State(web): State<Web>, Query(q): Query<GridQuery>) -> PageResult {
    let layout = GridLayout::core();
    let at = At::optional(q.at.as_deref().unwrap_or(""))?;
    let rows = positions::list(&web.ctx.dbs().parts, Some(layout.array_id), at.as_ref()).await?;
    let assigned: BTreeMap<GridCode, &PositionRow> =
        rows.iter().filter_map(|r| GridCode::parse(&r.grid_code).ok().map(|c| (c, r))).collect();
    let selection = select(&web, &q, at.as_ref()).await?;
    let selected = match &selection {
        Selection::At(c, _) => Some(*c),
        _ => None,
    };
    let detail = match &selection {
        Selection::At(code, row) => Some(detail(&web, *code, row.as_deref(), at.as_ref()).await?),
        _ => None,
    };
    let cells: Vec<GridCode> = layout.positions().collect();
    let outside = rows.len().saturating_sub(assigned.iter().filter(|(c, _)| layout.contains(**c)).count());
    let body = html! {
        (html::at_banner(at.as_ref(), "/grid"))
        form class="search grid-search" method="get" action="/grid" {
            @for (name, label, value) in [
                ("antenna", "Antenna, e.g. ANT00001", &q.antenna),
                ("grid", "Grid code, e.g. CC000E01", &q.grid),
                ("kernel", "Kernel index 0-255", &q.kernel),
            ] {
                input type="search" name=(name) value=(value.as_deref().unwrap_or("")) placeholder=(label) aria-label=(label);
            }
            (html::at_field(at.as_ref()))
            button type="submit" { "Search" }
        }
        div class="grid-layout" {
            section id="detail" class="detail" {
                @match (&selection, &detail) {
                    (Selection::At(code, _), Some(d)) => { h2 { (code.to_string()) } (d) }
                    (Selection::Missing(why), _) => p class="empty" { (why) },
                    _ => p {
                        (layout.rows().count()) " rows × " (layout.east_columns) " columns, " (assigned.len())
                        " assigned. Grid codes read " code { "C<N|C|S><row>E<column>" }
                        ", e.g. CN021E01 (kernel 0) to CS021E04 (kernel 255). Pick a cell for its details."
                    },
                }
            }
            div class="table-wrap" {
                table class="core-grid" {
                    thead { tr {
                        th { "Row" }
                        @for c in 1..=layout.east_columns { th { (format!("E{c:02}")) } }
                    } }
                    tbody {
                        @for line in cells.chunk_by(|a, b| a.row_offset() == b.row_offset()) {
                            tr class=[line.first().filter(|c| c.row_offset() == 0).map(|_| "center")] {
                                @if let Some(first) = line.first() { th scope="row" { (first.row_label()) } }
                                @for &code in line {
                                    @let kernel = kernel_index(code).map_or_else(|| "—".to_owned(), |k| k.to_string());
                                    @let antenna = assigned.get(&code).map(|r| r.antenna_number.as_str());
                                    td data-grid=(code.to_string()) {
                                        a class={ "cell" @if antenna.is_some() { " assigned" } @if selected == Some(code) { " selected" } }
                                            href={ "/grid?grid=" (code.to_string()) }
                                            title={ @if let Some(a) = antenna { (a) " | " } (code.to_string()) " | Kernel: " (kernel) } {
                                            span class="ant" { (antenna.unwrap_or("—")) }
                                            span class="k" { (kernel) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if outside > 0 {
            p class="muted" {
                (outside) " antenna(s) of array C stand outside the core rows and columns (search for them by antenna)."
            }
        }
    };
    Ok(Html(html::layout("Core grid", "grid", body).into_string()))
}

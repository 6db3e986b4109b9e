//! `/snap`: chassis 1-4 × slots A-K × ADC ports 0-11. An occupied port shows
//! the antenna at the HEAD of its chain (not whichever upstream part a row
//! order favours, the Python bug of spec 10.5), with its grid code and kernel
//! index, coloured by polarization. A port's details (board configuration,
//! packet index, chain) come from `/snap/port/{port}`: in a modal with
//! JavaScript, or as `/snap?port=` without.

use std::collections::{BTreeMap, HashMap};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use maud::{Markup, html};

use super::{
    PageResult, Web, WebError,
    html::{self, layout, or_dash, row},
};
use crate::{
    db::{
        as_of::At,
        assembly::{self, AssemblyRow},
        boards::{self, BoardRow},
        positions,
    },
    error::Result,
    inventory::{
        Chain, Edge, GridCode, PartNumber, PartType, SnapBoardId, SnapPort, base_antenna, kernel_index,
        trace_chain,
    },
};

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct SnapQuery {
    chassis: Option<String>,
    slot: Option<String>,
    port: Option<String>,
    /// As of this moment (the form's picker, or any form `--at` takes).
    at: Option<String>,
}

/// What is connected to one port.
#[derive(Debug, Clone)]
pub struct Occupant {
    /// The chain ending at the port.
    pub chain: Chain,
    /// The antenna at its head, if the head is an antenna.
    pub antenna: Option<PartNumber>,
}

/// The occupant of every port that is the target of a current edge: the
/// chain traced from the port, and the antenna at its head.
pub fn occupants(edges: &[Edge]) -> BTreeMap<SnapPort, Occupant> {
    let mut out = BTreeMap::new();
    for e in edges {
        let Ok(port) = SnapPort::parse(&e.target) else { continue };
        if out.contains_key(&port) {
            continue;
        }
        let chain = trace_chain(&e.target, edges);
        let antenna = PartNumber::parse(chain.head()).ok().filter(|p| p.part_type() == PartType::Antenna);
        out.insert(port, Occupant { chain, antenna });
    }
    out
}

/// Grid code and kernel index by base antenna number.
async fn placements(web: &Web, at: Option<&At>) -> Result<HashMap<String, (String, Option<u16>)>> {
    let rows = positions::list(&web.ctx.dbs().parts, None, at).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let k = GridCode::parse(&r.grid_code).ok().and_then(kernel_index);
            (r.antenna_number, (r.grid_code, k))
        })
        .collect())
}

fn pol_class(o: Option<&Occupant>) -> &'static str {
    match o.map(|o| o.antenna.map(|a| a.polarization().as_str())) {
        None => "empty",
        Some(Some("P1")) => "p1",
        Some(Some(_)) => "p2",
        Some(None) => "partial",
    }
}

fn filter<T: Copy + PartialEq>(value: Option<&str>, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    value.map(str::trim).filter(|v| !v.is_empty()).and_then(parse)
}

/// The detail of `port` as an HTML fragment.
fn port_detail(
    port: SnapPort,
    occupant: Option<&Occupant>,
    board: Option<&BoardRow>,
    placed: &HashMap<String, (String, Option<u16>)>,
) -> Markup {
    let at_head = occupant.map(|o| match o.antenna {
        Some(a) => {
            let (g, k) = placed.get(&base_antenna(&a.to_string())).cloned().unwrap_or_default();
            (a.to_string(), g, k.map(|k| k.to_string()).unwrap_or_default())
        }
        None => (String::new(), String::new(), String::new()),
    });
    html! {
        div class="port-detail" data-port=(port) {
            h2 { (port.board()) " - Port " (port.port()) }
            table class="kv" {
                (row("Chassis", port.chassis()))
                (row("Slot", port.slot()))
                (row("ADC port", port.port()))
                @match (occupant, &at_head) {
                    (Some(o), Some((ant, grid, kernel))) => {
                        (row("Antenna", or_dash(ant)))
                        (row("Grid code", or_dash(grid)))
                        (row("Kernel index", or_dash(kernel)))
                        (row("Chain", html! {
                            @for (i, p) in o.chain.parts.iter().enumerate() {
                                @if i > 0 { " → " }
                                (p)
                            }
                        }))
                    }
                    _ => (row("Connected", "nothing")),
                }
            }
            @match board {
                Some(b) => {
                    @let pkt = u8::try_from(b.feng_id).ok().and_then(|f| port.packet_index(f).ok());
                    h3 { "Board configuration" }
                    table class="kv" {
                        (row("Serial number", &b.serial_number))
                        (row("F-Engine ID", b.feng_id))
                        (row("Packet index", html! {
                            @match pkt {
                                Some(p) => { (p) " " small { "(feng_id × 12 + port)" } }
                                None => "—",
                            }
                        }))
                        (row("MAC", &b.mac_address))
                        (row("IP", &b.ip_address))
                        (row("Notes", or_dash(b.notes.as_deref().unwrap_or(""))))
                    }
                }
                None => p class="muted" { "No board configuration found." },
            }
        }
    }
}

struct Data {
    occupants: BTreeMap<SnapPort, Occupant>,
    boards: HashMap<SnapBoardId, BoardRow>,
    placed: HashMap<String, (String, Option<u16>)>,
}

async fn load(web: &Web, at: Option<&At>) -> Result<Data> {
    let dbs = web.ctx.dbs();
    let edges: Vec<Edge> = match at {
        None => assembly::current(&dbs.assembled).await?,
        Some(_) => assembly::current_rows(&dbs.assembled, at)
            .await?
            .iter()
            .filter_map(AssemblyRow::event)
            .map(|e| Edge::from(&e))
            .collect(),
    };
    let boards = boards::list(&dbs.parts, at)
        .await?
        .into_iter()
        .filter_map(|b| b.board_id().map(|id| (id, b)))
        .collect();
    Ok(Data { occupants: occupants(&edges), boards, placed: placements(web, at).await? })
}

/// `/snap/port/{port}`: one port's detail fragment (for the modal).
pub(super) async fn port_fragment(State(web): State<Web>, Path(port): Path<String>) -> Response {
    let Ok(port) = SnapPort::parse(&port) else {
        let body = html! { p class="empty" { (port) " is not a SNAP port." } };
        return (StatusCode::NOT_FOUND, Html(body.into_string())).into_response();
    };
    match load(&web, None).await {
        Ok(d) => {
            let detail = port_detail(port, d.occupants.get(&port), d.boards.get(&port.board()), &d.placed);
            Html(detail.into_string()).into_response()
        }
        Err(e) => WebError(e).into_response(),
    }
}

fn cell(port: SnapPort, o: Option<&Occupant>, placed: &HashMap<String, (String, Option<u16>)>) -> Markup {
    html! {
        a class={ "port " (pol_class(o)) } href={ "/snap?port=" (port) "#detail" } data-port=(port) id={ "port-" (port) } {
            span class="adc" { "ADC " (port.port()) }
            @match o {
                Some(Occupant { antenna: Some(a), .. }) => {
                    @let (grid, k) = placed.get(&base_antenna(&a.to_string())).cloned().unwrap_or_default();
                    span class="ant" { (a.polarization()) ": " (a) }
                    span class="where" {
                        (or_dash(&grid)) " | "
                        @match k { Some(k) => (k), None => "—" }
                    }
                }
                Some(o) => span class="ant muted" { "from " (o.chain.head()) },
                None => span class="ant muted" { "empty" },
            }
        }
    }
}

pub(super) async fn page(State(web): State<Web>, Query(q): Query<SnapQuery>) -> PageResult {
    let at = At::optional(q.at.as_deref().unwrap_or(""))?;
    let d = load(&web, at.as_ref()).await?;
    let chassis = filter(q.chassis.as_deref(), |v| v.parse::<u8>().ok().filter(|c| (1..=4).contains(c)));
    let slot = filter(q.slot.as_deref(), |v| {
        let mut c = v.chars();
        match (c.next().map(|c| c.to_ascii_uppercase()), c.next()) {
            (Some(s), None) if ('A'..='K').contains(&s) => Some(s),
            _ => None,
        }
    });
    let selected = filter(q.port.as_deref(), |v| SnapPort::parse(v).ok());
    let shown = SnapBoardId::all()
        .filter(|b| chassis.is_none_or(|c| c == b.chassis()) && slot.is_none_or(|s| s == b.slot()));
    let body = html! {
        (html::at_banner(at.as_ref(), "/snap"))
        form class="search filters" method="get" action="/snap" {
            label { "Chassis " select name="chassis" {
                option value="" { "all" }
                @for c in 1..=4u8 { option selected[chassis == Some(c)] { (c) } }
            } }
            label { "Slot " select name="slot" {
                option value="" { "all" }
                @for s in 'A'..='K' { option selected[slot == Some(s)] { (s) } }
            } }
            (html::at_field(at.as_ref()))
            button type="submit" { "Show" }
        }
        p class="legend" {
            span class="port p1" { "P1" } span class="port p2" { "P2" }
            span class="port partial" { "no antenna at head" } span class="port empty" { "empty" }
        }
        @if let Some(port) = selected {
            section id="detail" class="detail" {
                (port_detail(port, d.occupants.get(&port), d.boards.get(&port.board()), &d.placed))
            }
        }
        p class="summary" { (d.occupants.len()) " occupied port(s), " (d.boards.len()) " configured board(s)" }
        @for board in shown {
            @if board.slot() == 'A' || slot.is_some() {
                h2 class="chassis" { "Chassis " (board.chassis()) }
            }
            section class="board" id={ "board-" (board) } {
                h3 {
                    (board) " "
                    small {
                        @match d.boards.get(&board) {
                            Some(b) => { "SN " (b.serial_number) " · FENG " (b.feng_id) " · " (b.ip_address) }
                            None => span class="muted" { "no board configured" },
                        }
                    }
                }
                div class="ports" {
                    @for port in board.ports() { (cell(port, d.occupants.get(&port), &d.placed)) }
                }
            }
        }
    };
    Ok(Html(layout("SNAP ports", "snap", body).into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{current_edges, events::tests::ev};

    #[test]
    fn the_occupant_is_the_head_of_the_chain() {
        let t = "2025-01-01T00:00:00Z";
        let edges = current_edges(&[
            ev(1, "ANT00001P1", "LNA00001P1", t, true),
            ev(2, "LNA00001P1", "CXS00001P1", t, true),
            ev(3, "CXS00001P1", "SNAP1I06", t, true),
            ev(4, "LNA00003P2", "SNAP1I10", t, true),
        ]);
        let o = occupants(&edges);
        let port = SnapPort::parse("SNAP1I06").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o[&port].antenna.map(|a| a.to_string()).as_deref(), Some("ANT00001P1"));
        let port = SnapPort::parse("SNAP1I10").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o[&port].antenna, None);
        assert_eq!(pol_class(o.get(&port)), "partial");
    }
}

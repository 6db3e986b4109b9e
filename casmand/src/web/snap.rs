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

use super::{PageResult, Web, WebError, html};
use crate::{
    db::{
        assembly,
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
async fn placements(web: &Web) -> Result<HashMap<String, (String, Option<u16>)>> {
    let rows = positions::list(&web.ctx.dbs().parts, None).await?;
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
) -> String {
    let mut s = format!(
        "<div class=\"port-detail\" data-port=\"{port}\"><h2>{} - Port {}</h2><table class=\"kv\">",
        port.board(),
        port.port()
    );
    s.push_str(&html::row("Chassis", &port.chassis().to_string()));
    s.push_str(&html::row("Slot", &port.slot().to_string()));
    s.push_str(&html::row("ADC port", &port.port().to_string()));
    match occupant {
        Some(o) => {
            let (ant, grid, kernel) = match o.antenna {
                Some(a) => {
                    let (g, k) = placed.get(&base_antenna(&a.to_string())).cloned().unwrap_or_default();
                    (a.to_string(), g, k.map(|k| k.to_string()).unwrap_or_default())
                }
                None => (String::new(), String::new(), String::new()),
            };
            s.push_str(&html::row("Antenna", &html::or_dash(&ant)));
            s.push_str(&html::row("Grid code", &html::or_dash(&grid)));
            s.push_str(&html::row("Kernel index", &html::or_dash(&kernel)));
            let list: Vec<String> = o.chain.parts.iter().map(|p| html::esc(p)).collect();
            s.push_str(&html::row("Chain", &list.join(" → ")));
        }
        None => s.push_str(&html::row("Connected", "nothing")),
    }
    s.push_str("</table>");
    match board {
        Some(b) => {
            let pkt = u8::try_from(b.feng_id).ok().and_then(|f| port.packet_index(f).ok());
            s.push_str("<h3>Board configuration</h3><table class=\"kv\">");
            s.push_str(&html::row("Serial number", &html::esc(&b.serial_number)));
            s.push_str(&html::row("F-Engine ID", &b.feng_id.to_string()));
            s.push_str(&html::row(
                "Packet index",
                &pkt.map_or_else(|| "—".to_owned(), |p| format!("{p} <small>(feng_id × 12 + port)</small>")),
            ));
            s.push_str(&html::row("MAC", &html::esc(&b.mac_address)));
            s.push_str(&html::row("IP", &html::esc(&b.ip_address)));
            s.push_str(&html::row("Notes", &html::or_dash(b.notes.as_deref().unwrap_or(""))));
            s.push_str("</table>");
        }
        None => s.push_str("<p class=\"muted\">No board configuration found.</p>"),
    }
    s.push_str("</div>");
    s
}

struct Data {
    occupants: BTreeMap<SnapPort, Occupant>,
    boards: HashMap<SnapBoardId, BoardRow>,
    placed: HashMap<String, (String, Option<u16>)>,
}

async fn load(web: &Web) -> Result<Data> {
    let dbs = web.ctx.dbs();
    let edges = assembly::current(&dbs.assembled).await?;
    let boards =
        boards::list(&dbs.parts).await?.into_iter().filter_map(|b| b.board_id().map(|id| (id, b))).collect();
    Ok(Data { occupants: occupants(&edges), boards, placed: placements(web).await? })
}

/// `/snap/port/{port}`: one port's detail fragment (for the modal).
pub(super) async fn port_fragment(State(web): State<Web>, Path(port): Path<String>) -> Response {
    let Ok(port) = SnapPort::parse(&port) else {
        return (
            StatusCode::NOT_FOUND,
            Html(format!("<p class=\"empty\">{} is not a SNAP port.</p>", html::esc(&port))),
        )
            .into_response();
    };
    match load(&web).await {
        Ok(d) => Html(port_detail(port, d.occupants.get(&port), d.boards.get(&port.board()), &d.placed))
            .into_response(),
        Err(e) => WebError(e).into_response(),
    }
}

fn cell(port: SnapPort, o: Option<&Occupant>, placed: &HashMap<String, (String, Option<u16>)>) -> String {
    let mut inner = format!("<span class=\"adc\">ADC {}</span>", port.port());
    match o {
        Some(Occupant { antenna: Some(a), .. }) => {
            let (grid, k) = placed.get(&base_antenna(&a.to_string())).cloned().unwrap_or_default();
            inner.push_str(&format!(
                "<span class=\"ant\">{}: {}</span><span class=\"where\">{} | {}</span>",
                a.polarization(),
                html::esc(&a.to_string()),
                html::or_dash(&grid),
                k.map_or_else(|| "—".to_owned(), |k| k.to_string())
            ));
        }
        Some(o) => {
            inner.push_str(&format!("<span class=\"ant muted\">from {}</span>", html::esc(o.chain.head())))
        }
        None => inner.push_str("<span class=\"ant muted\">empty</span>"),
    }
    format!(
        "<a class=\"port {}\" href=\"/snap?port={port}#detail\" data-port=\"{port}\" id=\"port-{port}\">{inner}</a>",
        pol_class(o)
    )
}

pub(super) async fn page(State(web): State<Web>, Query(q): Query<SnapQuery>) -> PageResult {
    let d = load(&web).await?;
    let chassis = filter(q.chassis.as_deref(), |v| v.parse::<u8>().ok().filter(|c| (1..=4).contains(c)));
    let slot = filter(q.slot.as_deref(), |v| {
        let mut c = v.chars();
        match (c.next().map(|c| c.to_ascii_uppercase()), c.next()) {
            (Some(s), None) if ('A'..='K').contains(&s) => Some(s),
            _ => None,
        }
    });
    let selected = filter(q.port.as_deref(), |v| SnapPort::parse(v).ok());

    let mut body = String::from(
        "<form class=\"search filters\" method=\"get\" action=\"/snap\"><label>Chassis <select name=\"chassis\"><option value=\"\">all</option>",
    );
    for c in 1..=4u8 {
        let sel = if chassis == Some(c) { " selected" } else { "" };
        body.push_str(&format!("<option{sel}>{c}</option>"));
    }
    body.push_str("</select></label><label>Slot <select name=\"slot\"><option value=\"\">all</option>");
    for s in 'A'..='K' {
        let sel = if slot == Some(s) { " selected" } else { "" };
        body.push_str(&format!("<option{sel}>{s}</option>"));
    }
    body.push_str(
        "</select></label><button type=\"submit\">Show</button></form>\
         <p class=\"legend\"><span class=\"port p1\">P1</span><span class=\"port p2\">P2</span>\
         <span class=\"port partial\">no antenna at head</span><span class=\"port empty\">empty</span></p>",
    );
    if let Some(port) = selected {
        body.push_str(&format!(
            "<section id=\"detail\" class=\"detail\">{}</section>",
            port_detail(port, d.occupants.get(&port), d.boards.get(&port.board()), &d.placed)
        ));
    }
    body.push_str(&format!(
        "<p class=\"summary\">{} occupied port(s), {} configured board(s)</p>",
        d.occupants.len(),
        d.boards.len()
    ));
    for board in SnapBoardId::all() {
        if chassis.is_some_and(|c| c != board.chassis()) || slot.is_some_and(|s| s != board.slot()) {
            continue;
        }
        if board.slot() == 'A' || slot.is_some() {
            body.push_str(&format!("<h2 class=\"chassis\">Chassis {}</h2>", board.chassis()));
        }
        let info = d.boards.get(&board).map_or_else(
            || "<span class=\"muted\">no board configured</span>".to_owned(),
            |b| {
                format!(
                    "SN {} · FENG {} · {}",
                    html::esc(&b.serial_number),
                    b.feng_id,
                    html::esc(&b.ip_address)
                )
            },
        );
        body.push_str(&format!(
            "<section class=\"board\" id=\"board-{board}\"><h3>{board} <small>{info}</small></h3><div class=\"ports\">"
        ));
        for port in board.ports() {
            body.push_str(&cell(port, d.occupants.get(&port), &d.placed));
        }
        body.push_str("</div></section>");
    }
    Ok(Html(html::page("SNAP ports", "snap", &body)))
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

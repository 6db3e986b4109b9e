//! `/chains` (and `/`): every chain as a row of boxes, antenna to SNAP port
//! (spec 10.3), with FRM/NOW/NXT times, the SNAP board of the port, and
//! targets with more than one active source highlighted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use axum::{
    extract::{Query, State},
    response::Html,
};
use maud::{Markup, PreEscaped, html};

use super::{PageResult, Web, html as pages};
use crate::{
    db::{
        as_of::At,
        assembly::{self, AssemblyRow},
        boards::{self, BoardRow},
        scans::canonical_id,
    },
    inventory::{Edge, PartNumber, SnapBoardId, SnapPort},
};

#[derive(Debug, serde::Deserialize)]
pub(super) struct ChainsQuery {
    part: Option<String>,
    /// As of this moment (the form's picker, or any form `--at` takes).
    at: Option<String>,
}

/// The chains of `edges` (oldest first): one per start (a source that is no
/// target), sorted, following each part's oldest outgoing edge as the Python
/// view did; then, so that nothing is lost, one per part left unvisited
/// (loops). Never loops itself.
pub fn chains(edges: &[Edge]) -> Vec<Vec<&Edge>> {
    let mut next: BTreeMap<&str, &Edge> = BTreeMap::new();
    for e in edges {
        next.entry(e.source.as_str()).or_insert(e);
    }
    let targets: HashSet<&str> = edges.iter().map(|e| e.target.as_str()).collect();
    let starts: Vec<&str> = next.keys().copied().filter(|p| !targets.contains(p)).collect();
    let mut visited: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for start in starts.into_iter().chain(next.keys().copied()) {
        if visited.contains(start) {
            continue;
        }
        let mut chain = Vec::new();
        let mut seen: HashSet<&str> = HashSet::from([start]);
        visited.insert(start);
        let mut cur = start;
        while let Some(e) = next.get(cur) {
            chain.push(*e);
            visited.insert(e.target.as_str());
            if !seen.insert(e.target.as_str()) {
                break;
            }
            cur = e.target.as_str();
        }
        out.push(chain);
    }
    out
}

/// Targets with more than one active source, with those sources.
pub fn duplicates(edges: &[Edge]) -> BTreeMap<&str, Vec<&Edge>> {
    let mut by_target: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
    for e in edges {
        by_target.entry(e.target.as_str()).or_default().push(e);
    }
    by_target.retain(|_, v| v.len() > 1);
    by_target
}

fn time_line(label: &str, t: Option<&str>) -> Markup {
    html! {
        span.t {
            b { (label) } " "
            @match t.filter(|t| !t.is_empty()) {
                Some(t) => (t),
                None => (PreEscaped("&nbsp;")),
            }
        }
    }
}

/// The CSS classes of a part's box: its type and polarization.
pub fn part_classes(part: &str) -> String {
    if SnapPort::parse(part).is_ok() {
        return "snap".into();
    }
    match PartNumber::parse(part) {
        Ok(p) => format!(
            "{} pol-{}",
            p.part_type().abbreviation().to_ascii_lowercase(),
            p.polarization().as_str().to_ascii_lowercase()
        ),
        Err(_) => "other".into(),
    }
}

/// SN, F-engine id, packet index, MAC, IP of `port`'s board.
pub fn board_lines(port: SnapPort, board: Option<&BoardRow>) -> Markup {
    let Some(b) = board else { return html! { span class="t muted" { "no board configured" } } };
    let pkt = u8::try_from(b.feng_id).ok().and_then(|f| port.packet_index(f).ok());
    html! {
        span.t { b { "SN" } " " (b.serial_number) }
        span.t {
            b { "FENG" } " " (b.feng_id) " | " b { "PKT" } " "
            @match pkt { Some(p) => (p), None => "—" }
        }
        span.t { b { "MAC" } " " (b.mac_address) }
        span.t { b { "IP" } " " (b.ip_address) }
    }
}

struct Ctx<'a> {
    rows: HashMap<i64, &'a AssemblyRow>,
    boards: HashMap<SnapBoardId, &'a BoardRow>,
    dup: BTreeMap<&'a str, Vec<&'a Edge>>,
    selected: Option<&'a str>,
}

fn part_box(c: &Ctx<'_>, part: &str, incoming: Option<&Edge>, outgoing: Option<&Edge>) -> Markup {
    let row_of = |e: Option<&Edge>| e.and_then(|e| c.rows.get(&e.event_id).copied());
    let (inc, out) = (row_of(incoming), row_of(outgoing));
    let frm = inc.and_then(|r| r.connected_scan_time.as_deref().or(r.scan_time.as_deref()));
    let now = out.and_then(|r| r.scan_time.as_deref());
    let nxt = out.and_then(|r| r.connected_scan_time.as_deref().or(r.scan_time.as_deref()));
    let mut classes = format!("part {}", part_classes(part));
    if c.dup.contains_key(part) {
        classes.push_str(" duplicate");
    }
    if c.selected == Some(part) {
        classes.push_str(" selected");
    }
    html! {
        li class=(classes) {
            a.pn href={ "/chains?part=" (part) } { (part) }
            (time_line("FRM", frm))
            (time_line("NOW", now))
            (time_line("NXT", nxt))
            @if let Ok(port) = SnapPort::parse(part) {
                (board_lines(port, c.boards.get(&port.board()).copied()))
            }
        }
    }
}

pub(super) async fn page(State(web): State<Web>, Query(q): Query<ChainsQuery>) -> PageResult {
    let dbs = web.ctx.dbs();
    // The kept state (one row per current connection, with its event), not
    // the whole log.
    let at = At::optional(q.at.as_deref().unwrap_or(""))?;
    let rows = assembly::current_rows(&dbs.assembled, at.as_ref()).await?;
    let board_rows = boards::list(&dbs.parts, at.as_ref()).await?;
    let edges: Vec<Edge> = rows.iter().filter_map(AssemblyRow::event).map(|e| Edge::from(&e)).collect();
    let selected = q.part.as_deref().map(canonical_id).filter(|p| !p.is_empty());
    let c = Ctx {
        rows: rows.iter().map(|r| (r.id, r)).collect(),
        boards: board_rows.iter().filter_map(|b| b.board_id().map(|id| (id, b))).collect(),
        dup: duplicates(&edges),
        selected: selected.as_deref(),
    };
    let all = chains(&edges);
    let shown: Vec<&Vec<&Edge>> = all
        .iter()
        .filter(|ch| match &selected {
            Some(p) => ch.iter().any(|e| e.touches(p)),
            None => true,
        })
        .collect();
    let parts: BTreeSet<&str> = edges.iter().flat_map(|e| [e.source.as_str(), e.target.as_str()]).collect();
    let last_scan = assembly::last_scan_time(&dbs.assembled).await?;
    let body = html! {
        (pages::at_banner(at.as_ref(), "/chains"))
        form.search method="get" action="/chains" {
            @let placeholder = "Part number, e.g. ANT00001P1 or SNAP1A05";
            input type="search" name="part" value=(selected.as_deref().unwrap_or("")) placeholder=(placeholder)
                aria-label=(placeholder) list="all-parts";
            (pages::at_field(at.as_ref()))
            button type="submit" { "Search" }
        }
        datalist id="all-parts" {
            @for p in &parts { option value=(p) {} }
        }
        @if !c.dup.is_empty() {
            section.warning id="duplicates" {
                h2 { "Duplicate connections detected" }
                ul {
                    @for (target, sources) in &c.dup {
                        li {
                            b { (target) } " has " (sources.len()) " active sources: "
                            @for (i, e) in sources.iter().enumerate() {
                                @if i > 0 { ", " }
                                (e.source) " (since " (e.scan_time) ")"
                            }
                        }
                    }
                }
            }
        }
        @if edges.is_empty() {
            p.empty { "No records found in the assembled database." }
        } @else if shown.is_empty() {
            p.empty { "No chain contains " (selected.as_deref().unwrap_or("")) "." }
        }
        p.summary {
            (shown.len()) " chain(s), " (edges.len()) " connection(s)"
            @if selected.is_some() { " — " a href="/chains" { "show all" } }
        }
        div.chains {
            @for ch in &shown {
                @if let Some(first) = ch.first() {
                    ol.chain {
                        (part_box(&c, &first.source, None, Some(first)))
                        @for (i, e) in ch.iter().enumerate() {
                            (part_box(&c, &e.target, Some(e), ch.get(i + 1).copied()))
                        }
                    }
                }
            }
        }
        @if let Some(t) = &last_scan {
            p.footer { "Last part scanned on " (t) }
        }
    };
    Ok(Html(pages::layout("Chains", "chains", body).into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{current_edges, events::tests::ev};

    #[test]
    fn chains_follow_oldest_edges_and_stop_on_loops() {
        let t = "2025-01-01T00:00:00Z";
        let edges = current_edges(&[
            ev(1, "ANT00001P1", "LNA00001P1", t, true),
            ev(2, "LNA00001P1", "CXS00001P1", t, true),
            ev(3, "ANT00002P1", "LNA00002P1", t, true),
            ev(4, "LNA00003P1", "LNA00002P1", t, true),
            ev(5, "A", "B", t, true),
            ev(6, "B", "A", "2025-01-02T00:00:00Z", true),
        ]);
        let ch = chains(&edges);
        let names: Vec<Vec<&str>> =
            ch.iter().map(|c| c.iter().map(|e| e.target.as_str()).collect()).collect();
        assert!(names.contains(&vec!["LNA00001P1", "CXS00001P1"]));
        assert!(names.iter().any(|n| n == &vec!["B"] || n == &vec!["A"]), "{names:?}");
        let dup = duplicates(&edges);
        assert_eq!(dup.keys().copied().collect::<Vec<_>>(), ["LNA00002P1"]);
        assert_eq!(part_classes("SNAP1A05"), "snap");
        assert_eq!(part_classes("LNA00002P2"), "lna pol-p2");
    }
}

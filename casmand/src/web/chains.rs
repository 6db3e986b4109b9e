//! `/chains` (and `/`): every chain as a row of boxes, antenna to SNAP port
//! (spec 10.3), with FRM/NOW/NXT times, the SNAP board of the port, and
//! targets with more than one active source highlighted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use axum::{
    extract::{Query, State},
    response::Html,
};

use super::{PageResult, Web, html};
use crate::{
    db::{
        assembly::{self, AssemblyRow},
        boards::{self, BoardRow},
        scans::canonical_id,
    },
    inventory::{Edge, PartNumber, SnapBoardId, SnapPort},
};

#[derive(Debug, serde::Deserialize)]
pub(super) struct ChainsQuery {
    part: Option<String>,
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

const BLANK: &str = "&nbsp;";

fn time_line(label: &str, t: Option<&str>) -> String {
    let t = t.filter(|t| !t.is_empty()).map_or_else(|| BLANK.to_owned(), html::esc);
    format!("<span class=\"t\"><b>{label}</b> {t}</span>")
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

/// SN, F-engine id, packet index, MAC, IP of `port`'s board (HTML lines).
pub fn board_lines(port: SnapPort, board: Option<&BoardRow>) -> String {
    let Some(b) = board else { return "<span class=\"t muted\">no board configured</span>".into() };
    let pkt = u8::try_from(b.feng_id).ok().and_then(|f| port.packet_index(f).ok());
    format!(
        "<span class=\"t\"><b>SN</b> {}</span><span class=\"t\"><b>FENG</b> {} | <b>PKT</b> {}</span>\
         <span class=\"t\"><b>MAC</b> {}</span><span class=\"t\"><b>IP</b> {}</span>",
        html::esc(&b.serial_number),
        b.feng_id,
        pkt.map_or_else(|| "—".to_owned(), |p| p.to_string()),
        html::esc(&b.mac_address),
        html::esc(&b.ip_address)
    )
}

struct Ctx<'a> {
    rows: HashMap<i64, &'a AssemblyRow>,
    boards: HashMap<SnapBoardId, &'a BoardRow>,
    dup: BTreeMap<&'a str, Vec<&'a Edge>>,
    selected: Option<&'a str>,
}

fn part_box(c: &Ctx<'_>, part: &str, incoming: Option<&Edge>, outgoing: Option<&Edge>) -> String {
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
    let mut s = format!(
        "<li class=\"{classes}\"><a class=\"pn\" href=\"/chains?part={}\">{}</a>{}{}{}",
        html::esc(part),
        html::esc(part),
        time_line("FRM", frm),
        time_line("NOW", now),
        time_line("NXT", nxt)
    );
    if let Ok(port) = SnapPort::parse(part) {
        s.push_str(&board_lines(port, c.boards.get(&port.board()).copied()));
    }
    s.push_str("</li>");
    s
}

pub(super) async fn page(State(web): State<Web>, Query(q): Query<ChainsQuery>) -> PageResult {
    let dbs = web.ctx.dbs();
    // The kept state (one row per current connection, with its event), not
    // the whole log.
    let rows = assembly::current_rows(&dbs.assembled).await?;
    let board_rows = boards::list(&dbs.parts).await?;
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

    let mut body = String::new();
    let parts: BTreeSet<&str> = edges.iter().flat_map(|e| [e.source.as_str(), e.target.as_str()]).collect();
    body.push_str(&html::search_form(
        "/chains",
        "part",
        selected.as_deref().unwrap_or(""),
        "Part number, e.g. ANT00001P1 or SNAP1A05",
        " list=\"all-parts\"",
    ));
    body.push_str("<datalist id=\"all-parts\">");
    for p in &parts {
        body.push_str(&format!("<option value=\"{}\">", html::esc(p)));
    }
    body.push_str("</datalist>");
    if !c.dup.is_empty() {
        body.push_str(
            "<section class=\"warning\" id=\"duplicates\"><h2>Duplicate connections detected</h2><ul>",
        );
        for (target, sources) in &c.dup {
            let list: Vec<String> = sources
                .iter()
                .map(|e| format!("{} (since {})", html::esc(&e.source), html::esc(&e.scan_time)))
                .collect();
            body.push_str(&format!(
                "<li><b>{}</b> has {} active sources: {}</li>",
                html::esc(target),
                sources.len(),
                list.join(", ")
            ));
        }
        body.push_str("</ul></section>");
    }
    if edges.is_empty() {
        body.push_str("<p class=\"empty\">No records found in the assembled database.</p>");
    } else if shown.is_empty() {
        body.push_str(&format!(
            "<p class=\"empty\">No chain contains {}.</p>",
            html::esc(selected.as_deref().unwrap_or(""))
        ));
    }
    body.push_str(&format!(
        "<p class=\"summary\">{} chain(s), {} connection(s){}</p>",
        shown.len(),
        edges.len(),
        if selected.is_some() { " — <a href=\"/chains\">show all</a>" } else { "" }
    ));
    body.push_str("<div class=\"chains\">");
    for ch in shown {
        let Some(first) = ch.first() else { continue };
        body.push_str("<ol class=\"chain\">");
        body.push_str(&part_box(&c, &first.source, None, Some(first)));
        for (i, e) in ch.iter().enumerate() {
            body.push_str(&part_box(&c, &e.target, Some(e), ch.get(i + 1).copied()));
        }
        body.push_str("</ol>");
    }
    body.push_str("</div>");
    if let Some(t) = assembly::last_scan_time(&dbs.assembled).await? {
        body.push_str(&format!("<p class=\"footer\">Last part scanned on {}</p>", html::esc(&t)));
    }
    Ok(Html(html::page("Chains", "chains", &body)))
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

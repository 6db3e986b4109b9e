//! The correlator input map (`casmanctl export inputs`): one row per
//! antenna polarization, from its grid position and coordinates along its
//! chain to the SNAP input it feeds, now or at a past moment (see
//! `proto/casman/v1/inputs.proto` for the format and which rows).
//!
//! The small tables (boards, positions, coordinates) are read once; the
//! chains stream from [`super::listings::chains`], so the map's memory does
//! not grow with the number of connections.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
};

use super::{
    Databases,
    as_of::At,
    boards::{self, BoardRow},
    changes::Conflict,
    listings,
    positions::{self, CoordinateRow, PositionRow},
};
use crate::{
    error::Result,
    inventory::{
        GridCode, PartNumber, PartType, Polarization, SnapBoardId, SnapPort, base_antenna, enu::Geodetic,
        generators::SURVEY_REFERENCE, kernel_index,
    },
};

/// Chains read per page.
const PAGE: usize = 500;

/// One row of the map (the fields of `casman.v1.InputRow`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRow {
    /// The antenna part, `ANT00001P1`.
    pub antenna: String,
    /// `ANT00001`.
    pub antenna_number: String,
    /// `P1` or `P2`.
    pub polarization: String,
    /// Grid code of its position; empty without one.
    pub grid_code: String,
    /// Kernel index of the grid code.
    pub kernel_index: Option<u32>,
    /// Degrees, degrees, metres; their system.
    pub latitude: Option<f64>,
    /// Degrees east.
    pub longitude: Option<f64>,
    /// Metres.
    pub elevation: Option<f64>,
    /// As recorded.
    pub coordinate_system: String,
    /// East, north, up from the array's reference, metres.
    pub enu: Option<[f64; 3]>,
    /// The chain, antenna first.
    pub chain: Vec<String>,
    /// The SNAP port reached, if any.
    pub port: Option<SnapPort>,
    /// The board configured there.
    pub board: Option<BoardRow>,
    /// Usable as it is.
    pub complete: bool,
    /// A conflict stands about it.
    pub conflict: bool,
    /// Why it is not complete.
    pub problems: Vec<String>,
}

impl InputRow {
    /// The input's place in the fixed layout: ((chassis − 1) × 11 + slot) ×
    /// 12 + port, slot A = 0.
    pub fn input_index(&self) -> Option<u32> {
        let p = self.port?;
        let slot = u32::from(p.slot()).checked_sub(u32::from('A'))?;
        Some(((u32::from(p.chassis()) - 1) * 11 + slot) * 12 + u32::from(p.port()))
    }

    /// The packet index, `feng_id × 12 + port`, when a board is configured.
    pub fn packet_index(&self) -> Option<u32> {
        let feng = u8::try_from(self.board.as_ref()?.feng_id).ok()?;
        self.port?.packet_index(feng).ok().map(u32::from)
    }
}

/// What the rows are made from besides the chains, read once.
#[derive(Debug)]
pub struct Sources {
    boards: HashMap<SnapBoardId, BoardRow>,
    positions: BTreeMap<String, PositionRow>,
    coordinates: HashMap<String, CoordinateRow>,
    reference: Geodetic,
    conflicts: Vec<Conflict>,
}

impl Sources {
    /// Reads the boards, positions and coordinates at `at` (now when None);
    /// `conflicts` are those standing now.
    pub async fn read(dbs: &Databases, at: Option<&At>, conflicts: Vec<Conflict>) -> Result<Sources> {
        let boards = boards::list(&dbs.parts, at)
            .await?
            .into_iter()
            .filter_map(|b| Some((b.board_id()?, b)))
            .collect();
        let positions = positions::list(&dbs.parts, None, at)
            .await?
            .into_iter()
            .map(|p| (p.antenna_number.clone(), p))
            .collect();
        let coordinates: HashMap<String, CoordinateRow> = positions::coordinates(&dbs.parts, at)
            .await?
            .into_iter()
            .map(|c| (c.grid_code.trim().to_ascii_uppercase(), c))
            .collect();
        let reference = coordinates.get("CC000E01").map_or(SURVEY_REFERENCE, |c| Geodetic {
            latitude: c.latitude,
            longitude: c.longitude,
            height: c.height,
        });
        Ok(Sources { boards, positions, coordinates, reference, conflicts })
    }

    /// The row of `antenna` whose chain (head first) is `chain` (empty:
    /// none).
    pub fn row(&self, antenna: &PartNumber, chain: Vec<String>) -> InputRow {
        let name = antenna.to_string();
        let number = base_antenna(&name);
        let mut row = InputRow {
            antenna: name.clone(),
            polarization: antenna.polarization().as_str().to_owned(),
            port: chain.last().and_then(|p| SnapPort::parse(p).ok()),
            ..InputRow::default()
        };
        let mut problems = Vec::new();
        match self.positions.get(&number) {
            None => problems.push("no grid position".to_owned()),
            Some(p) => {
                row.grid_code = p.grid_code.clone();
                let code = GridCode::parse(&p.grid_code).ok();
                row.kernel_index = code.and_then(kernel_index).map(u32::from);
                let surveyed = self.coordinates.get(&p.grid_code.trim().to_ascii_uppercase());
                let own = match (p.latitude, p.longitude, p.height) {
                    (Some(la), Some(lo), Some(h)) => Some((la, lo, h, p.coordinate_system.clone())),
                    _ => None,
                };
                let place = own.or_else(|| {
                    surveyed.map(|c| (c.latitude, c.longitude, c.height, c.coordinate_system.clone()))
                });
                match place {
                    Some((la, lo, h, system)) => {
                        row.latitude = Some(la);
                        row.longitude = Some(lo);
                        row.elevation = Some(h);
                        row.coordinate_system = system.unwrap_or_default();
                        let here = Geodetic { latitude: la, longitude: lo, height: h };
                        row.enu = Some(here.enu_from(self.reference));
                    }
                    None => problems.push(format!("no coordinates for {}", p.grid_code)),
                }
            }
        }
        match (chain.len(), row.port) {
            (0 | 1, _) => problems.push("no chain".to_owned()),
            (_, None) => problems.push(format!(
                "chain ends at {}, not a SNAP port",
                chain.last().map(String::as_str).unwrap_or_default()
            )),
            (_, Some(port)) => {
                row.board = self.boards.get(&port.board()).cloned();
                if row.board.is_none() {
                    problems.push(format!("board {} not configured", port.board()));
                }
            }
        }
        for c in &self.conflicts {
            if chain.iter().any(|p| c.concerns(p)) || c.concerns(&name) {
                row.conflict = true;
                problems.push(format!("conflict: {}", c.detail));
            }
        }
        row.complete = row.board.is_some() && !row.conflict;
        row.antenna_number = number;
        row.chain = chain;
        row.problems = problems;
        row
    }
}

/// Every row of the map at `at` (now when None), passed to `page` in pages
/// as they are made: the chains headed by an antenna, then a row for each
/// polarization of a placed antenna that heads no chain. Stops early when
/// `page` returns false.
pub async fn export<F, Fut>(dbs: &Databases, at: Option<&At>, sources: &Sources, mut page: F) -> Result<()>
where
    F: FnMut(Vec<InputRow>) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut seen: HashSet<String> = HashSet::new();
    let listening = AtomicBool::new(true);
    let (seen_in, listening_in, page_in) = (&mut seen, &listening, &mut page);
    listings::chains(&dbs.assembled, at, PAGE, move |pages| {
        let mut rows = Vec::new();
        for (_, parts) in pages.iter().flat_map(|p| p.chains()) {
            let Some(antenna) = parts
                .first()
                .and_then(|p| PartNumber::parse_canonical(p[0].unwrap_or_default()))
                .filter(|p| p.part_type() == PartType::Antenna)
            else {
                continue;
            };
            if sources.positions.contains_key(&base_antenna(&antenna.to_string())) {
                seen_in.insert(antenna.to_string());
            }
            let chain = parts.iter().map(|p| p[0].unwrap_or_default().to_owned()).collect();
            rows.push(sources.row(&antenna, chain));
        }
        let sent = page_in(rows);
        async move {
            let more = sent.await;
            listening_in.store(more, Ordering::Relaxed);
            more
        }
    })
    .await?;
    if !listening.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut rest = Vec::new();
    for number in sources.positions.keys() {
        for pol in [Polarization::P1, Polarization::P2] {
            let Some(antenna) = PartNumber::parse_canonical(&format!("{number}{}", pol.as_str())) else {
                continue;
            };
            if !seen.contains(&antenna.to_string()) {
                rest.push(sources.row(&antenna, Vec::new()));
            }
        }
    }
    if !rest.is_empty() {
        page(rest).await;
    }
    Ok(())
}

//! `casmanctl positions ...`: antenna grid positions.

use casman_proto::v1::{
    AssignPositionRequest, GetGridLayoutRequest, GetPositionRequest, ListPositionsRequest,
    RemovePositionRequest, positions_client::PositionsClient,
};
use clap::Subcommand;
use tonic::transport::Channel;

use crate::{cli::AsOf, client::Conn, error::CtlError, output};

/// Positions commands.
#[derive(Debug, Subcommand)]
pub enum PositionsCmd {
    /// Assign an antenna to a grid position: `positions assign ANT00001 CN002E03`.
    /// Refused when the antenna has a position or the position is occupied,
    /// unless --force (which moves the antenna and evicts the occupant).
    Assign {
        /// Antenna number; a P1/P2 suffix is accepted and stripped (ANT00001P1 = ANT00001).
        antenna: String,
        /// Grid code, e.g. CN002E03 (array, N/C/S and row offset, E and 1-based column).
        grid_code: String,
        /// Notes stored with the assignment.
        #[arg(long)]
        notes: Option<String>,
        /// Move the antenna and evict whoever stands at the position.
        #[arg(long)]
        force: bool,
    },
    /// Remove an antenna's position (succeeds when it had none).
    Remove {
        /// Antenna number, with or without P1/P2.
        antenna: String,
    },
    /// Show one position: by antenna (ANT00001) or by grid code (CN002E03).
    Show {
        /// An antenna number or a grid code.
        query: String,
        #[command(flatten)]
        at: AsOf,
    },
    /// List assigned positions, north to south, west to east.
    List {
        /// Only this array letter, e.g. C.
        #[arg(long, value_name = "LETTER")]
        array: Option<String>,
        #[command(flatten)]
        at: AsOf,
    },
    /// The core array as a table: rows N021 … C000 … S021, columns E01 … E06,
    /// each cell with its kernel index and assigned antenna.
    Grid {
        #[command(flatten)]
        at: AsOf,
    },
}

fn client(conn: &Conn) -> PositionsClient<Channel> {
    PositionsClient::new(conn.channel.clone())
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Runs a positions command.
pub async fn run(conn: &Conn, cmd: PositionsCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        PositionsCmd::Assign { antenna, grid_code, notes, force } => {
            let req = AssignPositionRequest { antenna, grid_code, notes: notes.unwrap_or_default(), force };
            let r = client(conn).assign_position(conn.request(req)).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
            } else {
                crate::output::say!("{}", r.message);
            }
            Ok(())
        }
        PositionsCmd::Remove { antenna } => {
            let r = client(conn).remove_position(conn.request(RemovePositionRequest { antenna })).await?;
            let r = r.into_inner();
            if as_json {
                output::json(&output::message(&r));
            } else {
                crate::output::say!("{}", r.message);
            }
            Ok(())
        }
        PositionsCmd::Show { query, at } => {
            let req = GetPositionRequest { query, as_of: at.as_of() };
            let r = client(conn).get_position(conn.request(req)).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
                return Ok(());
            }
            crate::output::say!("grid code:     {}", r.grid_code);
            crate::output::say!("kernel index:  {}", dash(r.kernel_index));
            match &r.position {
                Some(p) => {
                    crate::output::say!("antenna:       {}", p.antenna_number);
                    crate::output::say!("assigned at:   {}", p.assigned_at);
                    if !p.notes.is_empty() {
                        crate::output::say!("notes:         {}", p.notes);
                    }
                }
                None => crate::output::say!("antenna:       - (free position)"),
            }
            match &r.coordinate {
                Some(c) => crate::output::say!(
                    "coordinates:   {:.9}, {:.9}, {:.2} m {}",
                    c.latitude,
                    c.longitude,
                    c.height,
                    c.coordinate_system
                ),
                None => crate::output::say!("coordinates:   - (not loaded; see database load-coordinates)"),
            }
            Ok(())
        }
        PositionsCmd::List { array, at } => {
            let req = ListPositionsRequest { array_id: array.unwrap_or_default(), as_of: at.as_of() };
            let r = client(conn).list_positions(conn.request(req)).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
                return Ok(());
            }
            if r.positions.is_empty() {
                crate::output::say!("No positions assigned.");
                return Ok(());
            }
            let mut t =
                output::table(["antenna", "grid code", "kernel", "assigned at", "coordinates", "notes"]);
            for p in &r.positions {
                let coords = match (p.latitude, p.longitude) {
                    (Some(lat), Some(lon)) => format!("{lat:.6}, {lon:.6}"),
                    _ => "-".into(),
                };
                t.add_row([
                    p.antenna_number.clone(),
                    p.grid_code.clone(),
                    dash(p.kernel_index),
                    p.assigned_at.clone(),
                    coords,
                    p.notes.clone(),
                ]);
            }
            crate::output::say!("{t}");
            crate::output::say!("{} position(s)", r.positions.len());
            Ok(())
        }
        PositionsCmd::Grid { at } => grid(conn, &at, as_json).await,
    }
}

async fn grid(conn: &Conn, at: &AsOf, as_json: bool) -> Result<(), CtlError> {
    let r = client(conn)
        .get_grid_layout(conn.request(GetGridLayoutRequest { as_of: at.as_of() }))
        .await?
        .into_inner();
    if as_json {
        output::json(&output::message(&r));
        return Ok(());
    }
    let mut header = vec!["row".to_owned()];
    header.extend((1..=r.columns).map(|c| format!("E{c:02}")));
    let mut t = output::table(header);
    let cols = usize::try_from(r.columns).unwrap_or(1).max(1);
    for (label, cells) in r.rows.iter().zip(r.cells.chunks(cols)) {
        let mut row = vec![label.clone()];
        row.extend(cells.iter().map(|c| {
            let k = c.kernel_index.map_or_else(|| "k-".to_owned(), |k| format!("k{k}"));
            let a = if c.antenna_number.is_empty() { "·" } else { c.antenna_number.as_str() };
            format!("{k:>4} {a}")
        }));
        t.add_row(row);
    }
    crate::output::say!("{t}");
    let assigned = r.cells.iter().filter(|c| !c.antenna_number.is_empty()).count();
    crate::output::say!("{assigned} of {} positions assigned (k = kernel index, · = free)", r.cells.len());
    for p in &r.outside {
        crate::output::say!("outside the core layout: {} at {}", p.antenna_number, p.grid_code);
    }
    Ok(())
}

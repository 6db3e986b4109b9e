//! `casman.v1.SnapBoards`: SNAP board configuration and what is connected to
//! each port.

use casman_proto::v1::{
    GenerateSnapBoardsRequest, GenerateSnapBoardsResponse, GetSnapBoardRequest, GetSnapBoardResponse,
    GetSnapPortDetailRequest, GetSnapPortDetailResponse, ListSnapBoardsRequest, ListSnapBoardsResponse,
    LoadSnapBoardsRequest, LoadSnapBoardsResponse, SnapBoardConfig, SnapPortDetail,
    snap_boards_server::SnapBoards,
};
use tonic::{Request, Response, Status};

use crate::{
    context::Context,
    db::{
        as_of::At,
        assembly,
        boards::{self, BoardRow},
        positions,
    },
    error::Error,
    inventory::{
        GridCode, PartNumber, PartType, SnapBoardId, SnapPort, base_antenna, date_or_today,
        generate_snap_boards, kernel_index, parse_snap_boards, snap_boards_csv,
    },
};

/// Implementation of the SnapBoards service.
#[derive(Debug, Clone)]
pub struct SnapApi {
    ctx: Context,
}

impl SnapApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        SnapApi { ctx }
    }

    /// The port's packet index on `board` and the chain connected to it
    /// (at `at` when given).
    async fn port_detail(
        &self,
        port: SnapPort,
        board: Option<&BoardRow>,
        at: Option<&At>,
    ) -> Result<SnapPortDetail, Error> {
        let chain = assembly::trace(&self.ctx.dbs().assembled, &port.to_string(), at).await?;
        let antenna = if chain.is_connected() {
            PartNumber::parse(chain.head()).ok().filter(|p| p.part_type() == PartType::Antenna)
        } else {
            None
        };
        let position = match &antenna {
            Some(a) => {
                positions::get_by_antenna(&self.ctx.dbs().parts, &base_antenna(&a.to_string()), at).await?
            }
            None => None,
        };
        let feng = board.and_then(|b| u8::try_from(b.feng_id).ok());
        Ok(SnapPortDetail {
            port_id: port.to_string(),
            numeric_id: port.numeric_id(),
            port: u32::from(port.port()),
            packet_index: feng.and_then(|f| port.packet_index(f).ok()).map(u32::from),
            antenna: antenna.map(|a| a.to_string()).unwrap_or_default(),
            polarization: antenna.map(|a| a.polarization().as_str().to_owned()).unwrap_or_default(),
            chain: if chain.is_connected() { chain.parts.clone() } else { Vec::new() },
            kernel_index: position
                .as_ref()
                .and_then(|p| GridCode::parse(&p.grid_code).ok())
                .and_then(kernel_index)
                .map(u32::from),
            grid_code: position.map(|p| p.grid_code).unwrap_or_default(),
        })
    }
}

/// Converts a stored row to the API message.
pub fn board_message(r: BoardRow) -> SnapBoardConfig {
    SnapBoardConfig {
        board: r.board_id().map_or_else(|| format!("SNAP{}{}", r.chassis, r.slot), |b| b.to_string()),
        id: r.id,
        chassis: u32::try_from(r.chassis).unwrap_or_default(),
        slot: r.slot,
        serial_number: r.serial_number,
        mac_address: r.mac_address,
        ip_address: r.ip_address,
        feng_id: u32::try_from(r.feng_id).unwrap_or_default(),
        notes: r.notes.unwrap_or_default(),
        date_added: r.date_added,
        date_modified: r.date_modified.unwrap_or_default(),
    }
}

fn ids(boards: &[SnapBoardId]) -> Vec<String> {
    boards.iter().map(ToString::to_string).collect()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl SnapBoards for SnapApi {
    async fn list_snap_boards(
        &self,
        req: Request<ListSnapBoardsRequest>,
    ) -> Result<Response<ListSnapBoardsResponse>, Status> {
        let at = At::optional(&req.into_inner().as_of)?;
        let rows = boards::list(&self.ctx.dbs().parts, at.as_ref()).await?;
        Ok(Response::new(ListSnapBoardsResponse { boards: rows.into_iter().map(board_message).collect() }))
    }

    async fn get_snap_board(
        &self,
        req: Request<GetSnapBoardRequest>,
    ) -> Result<Response<GetSnapBoardResponse>, Status> {
        let r = req.into_inner();
        let id = SnapBoardId::parse(&r.board)?;
        let at = At::optional(&r.as_of)?;
        let row = boards::get(&self.ctx.dbs().parts, id, at.as_ref()).await?;
        let mut ports = Vec::with_capacity(12);
        for port in id.ports() {
            ports.push(self.port_detail(port, row.as_ref(), at.as_ref()).await?);
        }
        Ok(Response::new(GetSnapBoardResponse {
            board_id: id.to_string(),
            board: row.map(board_message),
            ports,
        }))
    }

    async fn get_snap_port_detail(
        &self,
        req: Request<GetSnapPortDetailRequest>,
    ) -> Result<Response<GetSnapPortDetailResponse>, Status> {
        let r = req.into_inner();
        let port = SnapPort::parse(&r.port)?;
        let at = At::optional(&r.as_of)?;
        let row = boards::get(&self.ctx.dbs().parts, port.board(), at.as_ref()).await?;
        let detail = self.port_detail(port, row.as_ref(), at.as_ref()).await?;
        Ok(Response::new(GetSnapPortDetailResponse { port: Some(detail), board: row.map(board_message) }))
    }

    async fn load_snap_boards(
        &self,
        req: Request<LoadSnapBoardsRequest>,
    ) -> Result<Response<LoadSnapBoardsResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let file = parse_snap_boards(&r.csv).map_err(Error::from)?;
        let done = self.ctx.load_snap_boards(&caller, &file, &r.source).await?;
        Ok(Response::new(LoadSnapBoardsResponse {
            loaded: count(done.inserted.len()),
            updated: count(done.updated.len()),
            unchanged: count(done.unchanged.len()),
            loaded_boards: ids(&done.inserted),
            updated_boards: ids(&done.updated),
            blank_lines: file.skipped_lines,
        }))
    }

    async fn generate_snap_boards(
        &self,
        req: Request<GenerateSnapBoardsRequest>,
    ) -> Result<Response<GenerateSnapBoardsResponse>, Status> {
        let date = date_or_today(&req.into_inner().date)?;
        let rows = generate_snap_boards(date);
        Ok(Response::new(GenerateSnapBoardsResponse {
            csv: snap_boards_csv(&rows)?,
            boards: count(rows.len()),
        }))
    }
}

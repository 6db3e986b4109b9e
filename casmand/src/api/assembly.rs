//! `casman.v1.Assembly`: connect, disconnect, remove, validate, chain,
//! history, ASCII chains, current connections and chains as data, drift check.
//! Writes go through the application layer ([`Context::connect`], ...),
//! which the web front end calls too.

use std::{collections::HashMap, pin::Pin};

use casman_proto::v1::{
    AssemblyEvent, ChainInfo, ChainSnapPort, CheckCurrentStateRequest, CheckCurrentStateResponse,
    ConnectRequest, ConnectResponse, Connection, CurrentConnection, DisconnectRequest, DisconnectResponse,
    ExportInputsRequest, GetChainRequest, GetChainResponse, GetHistoryRequest, GetHistoryResponse,
    InputRow as InputMessage, ListChainsRequest, ListConnectionsRequest, RemovePartRequest,
    RemovePartResponse, RenderChainsRequest, RenderChainsResponse, ValidatePartRequest, ValidatePartResponse,
    assembly_server::Assembly,
};
use futures_util::Stream;
use tonic::{Request, Response, Status};

use super::streaming;
use crate::{
    context::Context,
    db::{
        as_of::At,
        assembly::{self, AssemblyRow, Current},
        boards::{self, BoardRow},
        inputs,
        listings::{self, ChainPage, ChainPartText},
        paged::TextRows,
        scans::{self, canonical_id},
    },
    error::Error,
    inventory::{Edge, PartType, SnapBoardId, SnapPort, ascii_chains},
};

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Connections per page read and sent.
const PAGE: usize = 1000;
/// Chains per page sent.
const CHAIN_PAGE: usize = 256;

/// Implementation of the Assembly service.
#[derive(Debug, Clone)]
pub struct AssemblyApi {
    ctx: Context,
}

impl AssemblyApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        AssemblyApi { ctx }
    }
}

fn current_connection(c: Current) -> CurrentConnection {
    CurrentConnection {
        source: c.edge.source,
        source_type: c.edge.source_type.unwrap_or_default(),
        source_polarization: c.source_polarization.unwrap_or_default(),
        target: c.edge.target,
        target_type: c.edge.target_type.unwrap_or_default(),
        target_polarization: c.target_polarization.unwrap_or_default(),
        since: c.edge.scan_time,
        event_id: c.edge.event_id,
    }
}

/// A row of [`listings::connections`] as the API sends it.
fn listed_connection<'a>(event_id: i64, values: impl Iterator<Item = Option<&'a str>>) -> CurrentConnection {
    let mut v = values.map(|v| v.unwrap_or_default().to_owned());
    let mut next = || v.next().unwrap_or_default();
    CurrentConnection {
        source: next(),
        source_type: next(),
        source_polarization: next(),
        target: next(),
        target_type: next(),
        target_polarization: next(),
        since: next(),
        event_id,
    }
}

/// The SNAP port `port` with its board's details when `board` is configured.
fn snap_port(port: SnapPort, board: Option<&BoardRow>) -> ChainSnapPort {
    let mut info = ChainSnapPort {
        port: port.to_string(),
        chassis: port.chassis().into(),
        slot: port.slot().to_string(),
        port_number: port.port().into(),
        ..Default::default()
    };
    if let Some(b) = board {
        info.board_configured = true;
        info.serial_number = b.serial_number.clone();
        info.feng_id = b.feng_id as u32;
        info.packet_index = (b.feng_id as u32) * 12 + u32::from(port.port());
        info.mac_address = b.mac_address.clone();
        info.ip_address = b.ip_address.clone();
    }
    info
}

fn connection(e: Edge) -> Connection {
    Connection {
        source: e.source,
        source_type: e.source_type.unwrap_or_default(),
        target: e.target,
        target_type: e.target_type.unwrap_or_default(),
        scan_time: e.scan_time,
        event_id: e.event_id,
    }
}

/// A chain as the API sends it; None when only complete chains are wanted
/// and it reaches no SNAP port.
fn chain_info(
    (cyclic, parts): (bool, Vec<ChainPartText<'_>>),
    boards: &HashMap<SnapBoardId, BoardRow>,
    complete_only: bool,
) -> Option<ChainInfo> {
    let port = parts.last().and_then(|p| SnapPort::parse(p[0].unwrap_or_default()).ok());
    if complete_only && port.is_none() {
        return None;
    }
    let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
    Some(ChainInfo {
        snap: port.map(|p| snap_port(p, boards.get(&p.board()))),
        cyclic,
        parts: parts
            .into_iter()
            .map(|[part, part_type, pol]| casman_proto::v1::ChainPart {
                part: text(part),
                part_type: text(part_type),
                polarization: text(pol),
            })
            .collect(),
    })
}

fn event(r: AssemblyRow) -> AssemblyEvent {
    AssemblyEvent {
        id: r.id,
        part_number: r.part_number.unwrap_or_default(),
        part_type: r.part_type.unwrap_or_default(),
        polarization: r.polarization.unwrap_or_default(),
        scan_time: r.scan_time.unwrap_or_default(),
        connected_to: r.connected_to.unwrap_or_default(),
        connected_to_type: r.connected_to_type.unwrap_or_default(),
        connected_polarization: r.connected_polarization.unwrap_or_default(),
        connected_scan_time: r.connected_scan_time.unwrap_or_default(),
        connection_status: r.connection_status.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl Assembly for AssemblyApi {
    async fn connect(&self, req: Request<ConnectRequest>) -> Result<Response<ConnectResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let edge = self.ctx.connect(&caller, &r.source, &r.target).await?;
        Ok(Response::new(ConnectResponse { connection: Some(connection(edge)) }))
    }

    async fn disconnect(
        &self,
        req: Request<DisconnectRequest>,
    ) -> Result<Response<DisconnectResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let edge = self.ctx.disconnect(&caller, &r.a, &r.b).await?;
        Ok(Response::new(DisconnectResponse { connection: Some(connection(edge)) }))
    }

    async fn remove_part(
        &self,
        req: Request<RemovePartRequest>,
    ) -> Result<Response<RemovePartResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let edges = self.ctx.remove_part(&caller, &req.into_inner().part).await?;
        Ok(Response::new(RemovePartResponse { connections: edges.into_iter().map(connection).collect() }))
    }

    async fn validate_part(
        &self,
        req: Request<ValidatePartRequest>,
    ) -> Result<Response<ValidatePartResponse>, Status> {
        let dbs = self.ctx.dbs();
        let part = scans::resolve(&dbs.parts, &req.into_inner().part).await?;
        let mut conn = dbs.assembled.reader().await.acquire().await.map_err(Error::from)?;
        let edges = assembly::edges_touching(&mut conn, &[&part.id]).await?;
        Ok(Response::new(ValidatePartResponse {
            part: part.id,
            part_type: part.part_type.name().to_owned(),
            polarization: part.polarization.map(|p| p.as_str().to_owned()).unwrap_or_default(),
            connections: edges.into_iter().map(connection).collect(),
        }))
    }

    async fn get_chain(&self, req: Request<GetChainRequest>) -> Result<Response<GetChainResponse>, Status> {
        let r = req.into_inner();
        let part = canonical_id(&r.part);
        let at = At::optional(&r.as_of)?;
        let dbs = self.ctx.dbs();
        let chain = assembly::trace(&dbs.assembled, &part, at.as_ref()).await?;
        if !chain.is_connected() {
            // Unknown parts are NOT_FOUND; known parts without connections
            // (now or at the moment asked) get their one-part chain.
            let known = part.starts_with("SNAP")
                || crate::db::parts::get(&dbs.parts, &part).await?.is_some()
                || !assembly::history(&dbs.assembled, &part).await?.is_empty();
            if !known {
                return Err(
                    Error::NotFound(format!("{part} is neither in parts.db nor in any connection")).into()
                );
            }
        }
        let snap = match chain.snap_port {
            None => None,
            Some(port) => {
                Some(snap_port(port, boards::get(&dbs.parts, port.board(), at.as_ref()).await?.as_ref()))
            }
        };
        let parts: Vec<&str> = chain.parts.iter().map(String::as_str).collect();
        let conflicts = conflict_messages(self.ctx.conflicts_concerning(&parts).await?);
        Ok(Response::new(GetChainResponse { start: chain.start as u32, parts: chain.parts, snap, conflicts }))
    }

    async fn get_history(
        &self,
        req: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let part = canonical_id(&req.into_inner().part);
        let rows = assembly::history(&self.ctx.dbs().assembled, &part).await?;
        let conflicts = conflict_messages(self.ctx.conflicts_concerning(&[&part]).await?);
        Ok(Response::new(GetHistoryResponse { events: rows.into_iter().map(event).collect(), conflicts }))
    }

    async fn render_chains(
        &self,
        _req: Request<RenderChainsRequest>,
    ) -> Result<Response<RenderChainsResponse>, Status> {
        let edges = assembly::current(&self.ctx.dbs().assembled).await?;
        Ok(Response::new(RenderChainsResponse {
            text: ascii_chains(&edges),
            connections: edges.len() as u32,
        }))
    }

    type ListConnectionsStream = Streamed<CurrentConnection>;

    async fn list_connections(
        &self,
        req: Request<ListConnectionsRequest>,
    ) -> Result<Response<Self::ListConnectionsStream>, Status> {
        let r = req.into_inner();
        let part = canonical_id(&r.part);
        let at = At::optional(&r.as_of)?;
        let part_type = match r.part_type.trim() {
            "" => None,
            t => Some(PartType::parse(t)?.name()),
        };
        let db = self.ctx.dbs().assembled.clone();
        if part.is_empty() {
            // Every connection: read and sent page by page.
            let connections = |pages: Vec<TextRows>| {
                pages
                    .iter()
                    .flat_map(|p| p.rows().map(|(id, values)| listed_connection(id, values)))
                    .collect()
            };
            return Ok(Response::new(streaming::paged(move |tx| {
                streaming::send_pages(tx, connections, move |page| async move {
                    listings::connections(&db, part_type, at.as_ref(), PAGE, page).await
                })
            })));
        }
        // One part's connections, found by key: a page.
        let mut conn = db.reader().await.acquire().await.map_err(Error::from)?;
        let mut current = match &at {
            None => assembly::current_touching(&mut conn, &[&part]).await?,
            Some(at) => assembly::touching_at(&mut conn, &[&part], at).await?,
        };
        drop(conn);
        if let Some(t) = part_type {
            current.retain(|c| {
                c.edge.source_type.as_deref() == Some(t) || c.edge.target_type.as_deref() == Some(t)
            });
        }
        let items = current.into_iter().map(|c| Ok(current_connection(c)));
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }

    type ListChainsStream = Streamed<ChainInfo>;

    async fn list_chains(
        &self,
        req: Request<ListChainsRequest>,
    ) -> Result<Response<Self::ListChainsStream>, Status> {
        let r = req.into_inner();
        let complete_only = r.complete_only;
        let at = At::optional(&r.as_of)?;
        let dbs = self.ctx.dbs();
        let boards: HashMap<SnapBoardId, BoardRow> = boards::list(&dbs.parts, at.as_ref())
            .await?
            .into_iter()
            .filter_map(|b| Some((b.board_id()?, b)))
            .collect();
        let db = dbs.assembled.clone();
        let chains = move |pages: Vec<ChainPage>| {
            pages
                .iter()
                .flat_map(|p| p.chains())
                .filter_map(|c| chain_info(c, &boards, complete_only))
                .collect()
        };
        Ok(Response::new(streaming::paged(move |tx| {
            streaming::send_pages(tx, chains, move |page| async move {
                listings::chains(&db, at.as_ref(), CHAIN_PAGE, page).await
            })
        })))
    }

    type ExportInputsStream = Streamed<InputMessage>;

    async fn export_inputs(
        &self,
        req: Request<ExportInputsRequest>,
    ) -> Result<Response<Self::ExportInputsStream>, Status> {
        let at = At::optional(&req.into_inner().as_of)?;
        let conflicts = self.ctx.standing_conflicts().await?;
        let sources = inputs::Sources::read(self.ctx.dbs(), at.as_ref(), conflicts).await?;
        let ctx = self.ctx.clone();
        Ok(Response::new(streaming::paged(move |tx| async move {
            let rows = |rows: Vec<inputs::InputRow>| {
                let tx = tx.clone();
                async move { tx.send(Ok(rows.into_iter().map(input_message).collect())).await.is_ok() }
            };
            if let Err(e) = inputs::export(ctx.dbs(), at.as_ref(), &sources, rows).await {
                let _ = tx.send(Err(Status::from(e))).await;
            }
        })))
    }

    async fn check_current_state(
        &self,
        req: Request<CheckCurrentStateRequest>,
    ) -> Result<Response<CheckCurrentStateResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let (drift, repaired) = self.ctx.check_current_state(&caller, req.into_inner().repair).await?;
        let mut conflicts = self.ctx.backups().conflicts(crate::db::ASSEMBLED_DB).await?;
        conflicts.extend(self.ctx.backups().conflicts(crate::db::PARTS_DB).await?);
        Ok(Response::new(CheckCurrentStateResponse {
            conflicts: conflicts.into_iter().map(super::sync_status::conflict_message).collect(),
            repaired,
            events: drift.events,
            by_log: drift.by_log,
            kept: drift.kept,
            misfiled: drift.misfiled,
            clean: drift.is_clean(),
            missing: drift.missing.into_iter().map(current_connection).collect(),
            extra: drift.extra.into_iter().map(current_connection).collect(),
        }))
    }
}

/// A row of the input map as the API sends it.
fn input_message(r: inputs::InputRow) -> InputMessage {
    let [east, north, up] = r.enu.map_or([None; 3], |v| v.map(Some));
    let board = r.board.as_ref();
    InputMessage {
        input_index: r.input_index(),
        packet_index: r.packet_index(),
        snap_port: r.port.map(|p| p.to_string()).unwrap_or_default(),
        chassis: r.port.map(|p| u32::from(p.chassis())),
        slot: r.port.map(|p| p.slot().to_string()).unwrap_or_default(),
        adc_port: r.port.map(|p| u32::from(p.port())),
        board_serial: board.map(|b| b.serial_number.clone()).unwrap_or_default(),
        feng_id: board.and_then(|b| u32::try_from(b.feng_id).ok()),
        mac_address: board.map(|b| b.mac_address.clone()).unwrap_or_default(),
        ip_address: board.map(|b| b.ip_address.clone()).unwrap_or_default(),
        antenna: r.antenna,
        antenna_number: r.antenna_number,
        polarization: r.polarization,
        grid_code: r.grid_code,
        kernel_index: r.kernel_index,
        latitude: r.latitude,
        longitude: r.longitude,
        elevation: r.elevation,
        coordinate_system: r.coordinate_system,
        east_m: east,
        north_m: north,
        up_m: up,
        chain: r.chain,
        complete: r.complete,
        conflict: r.conflict,
        problems: r.problems,
    }
}

fn conflict_messages(list: Vec<crate::db::changes::Conflict>) -> Vec<casman_proto::v1::Conflict> {
    list.into_iter().map(crate::api::sync_status::conflict_message).collect()
}

//! `casman.v1.Assembly`: connect, disconnect, remove, validate, chain,
//! history, ASCII chains.

use casman_proto::v1::{
    AssemblyEvent, ChainSnapPort, ConnectRequest, ConnectResponse, Connection, DisconnectRequest,
    DisconnectResponse, GetChainRequest, GetChainResponse, GetHistoryRequest, GetHistoryResponse,
    RemovePartRequest, RemovePartResponse, RenderChainsRequest, RenderChainsResponse, ValidatePartRequest,
    ValidatePartResponse, assembly_server::Assembly,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use super::caller::Caller;
use crate::{
    activity::Activity,
    context::Context,
    db::{
        ASSEMBLED_DB, assembly,
        assembly::AssemblyRow,
        boards,
        scans::{self, canonical_id},
    },
    error::Error,
    inventory::{Edge, ascii_chains, current_edges},
};

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

    async fn written(&self, caller: &Caller, action: &'static str, detail: serde_json::Value) {
        let activity = Activity::Write { database: ASSEMBLED_DB, action, writes: 1 };
        caller.audit_activity(&self.ctx, action, ASSEMBLED_DB, detail, activity).await;
    }
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
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let dbs = self.ctx.dbs();
        let source = scans::resolve(&dbs.parts, &r.source).await?;
        let target = scans::resolve(&dbs.parts, &r.target).await?;
        let edge = scans::connect(&dbs.assembled, &source, &target).await?;
        self.written(
            &caller,
            "scan.connect",
            json!({"source": edge.source, "target": edge.target, "event_id": edge.event_id}),
        )
        .await;
        Ok(Response::new(ConnectResponse { connection: Some(connection(edge)) }))
    }

    async fn disconnect(
        &self,
        req: Request<DisconnectRequest>,
    ) -> Result<Response<DisconnectResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let (a, b) = (canonical_id(&r.a), canonical_id(&r.b));
        if a.is_empty() || b.is_empty() {
            return Err(Error::invalid("disconnect needs two part numbers").into());
        }
        let edge = scans::disconnect(&self.ctx.dbs().assembled, &a, &b).await?;
        self.written(&caller, "scan.disconnect", json!({"source": edge.source, "target": edge.target})).await;
        Ok(Response::new(DisconnectResponse { connection: Some(connection(edge)) }))
    }

    async fn remove_part(
        &self,
        req: Request<RemovePartRequest>,
    ) -> Result<Response<RemovePartResponse>, Status> {
        let caller = Caller::of(&req);
        let part = canonical_id(&req.into_inner().part);
        if part.is_empty() {
            return Err(Error::invalid("remove needs a part number").into());
        }
        let edges = scans::remove(&self.ctx.dbs().assembled, &part).await?;
        if !edges.is_empty() {
            let ended: Vec<String> = edges.iter().map(|e| format!("{} -> {}", e.source, e.target)).collect();
            caller.audit(&self.ctx, "scan.remove", ASSEMBLED_DB, json!({"part": part, "ended": ended})).await;
            self.ctx
                .record(Activity::Write {
                    database: ASSEMBLED_DB,
                    action: "scan.remove",
                    writes: edges.len() as u32,
                })
                .await;
        }
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
        let part = canonical_id(&req.into_inner().part);
        let dbs = self.ctx.dbs();
        let chain = assembly::trace(&dbs.assembled, &part).await?;
        if !chain.is_connected() {
            // Unknown parts are NOT_FOUND; known parts without connections get their one-part chain.
            let known = part.starts_with("SNAP") || crate::db::parts::get(&dbs.parts, &part).await?.is_some();
            if !known {
                return Err(
                    Error::NotFound(format!("{part} is neither in parts.db nor in any connection")).into()
                );
            }
        }
        let snap = match chain.snap_port {
            None => None,
            Some(port) => {
                let board = boards::get(&dbs.parts, port.board()).await?;
                let mut info = ChainSnapPort {
                    port: port.to_string(),
                    chassis: port.chassis().into(),
                    slot: port.slot().to_string(),
                    port_number: port.port().into(),
                    ..Default::default()
                };
                if let Some(b) = board {
                    info.board_configured = true;
                    info.serial_number = b.serial_number;
                    info.feng_id = b.feng_id as u32;
                    info.packet_index = (b.feng_id as u32) * 12 + u32::from(port.port());
                    info.mac_address = b.mac_address;
                    info.ip_address = b.ip_address;
                }
                Some(info)
            }
        };
        Ok(Response::new(GetChainResponse { start: chain.start as u32, parts: chain.parts, snap }))
    }

    async fn get_history(
        &self,
        req: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let part = canonical_id(&req.into_inner().part);
        let rows = assembly::history(&self.ctx.dbs().assembled, &part).await?;
        Ok(Response::new(GetHistoryResponse { events: rows.into_iter().map(event).collect() }))
    }

    async fn render_chains(
        &self,
        _req: Request<RenderChainsRequest>,
    ) -> Result<Response<RenderChainsResponse>, Status> {
        let rows = assembly::all_rows(&self.ctx.dbs().assembled).await?;
        let events: Vec<_> = rows.iter().filter_map(AssemblyRow::event).collect();
        let edges = current_edges(&events);
        Ok(Response::new(RenderChainsResponse {
            text: ascii_chains(&edges),
            connections: edges.len() as u32,
        }))
    }
}

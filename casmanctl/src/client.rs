//! Connecting to casmand and checking that we speak the same protocol.

use std::path::PathBuf;

use casman_proto::{
    socket::{Side, default_socket_path},
    v1::{
        GetStatusRequest, GetStatusResponse, assembly_client::AssemblyClient, backups_client::BackupsClient,
        daemon_client::DaemonClient, database_client::DatabaseClient, parts_client::PartsClient,
        sync_client::SyncClient,
    },
};
use tonic::transport::Channel;

use crate::error::CtlError;

/// An open connection to the daemon.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The gRPC channel, shared by every service client.
    pub channel: Channel,
    /// Operator name sent with every request (`--operator`).
    pub operator: Option<String>,
}

impl Conn {
    /// Connects to `socket`, or to the default socket.
    pub async fn open(
        socket: Option<PathBuf>,
        operator: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<Conn, CtlError> {
        let socket = socket.unwrap_or_else(|| default_socket_path(Side::Client));
        let channel = casman_proto::client::connect_with_timeout(&socket, timeout).await?;
        Ok(Conn { channel, operator })
    }

    /// Wraps `msg` in a request carrying the operator name.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(op) = self.operator.as_deref()
            && let Ok(v) = op.parse()
        {
            req.metadata_mut().insert("x-casman-operator", v);
        }
        req
    }

    /// The Parts service.
    pub fn parts(&self) -> PartsClient<Channel> {
        PartsClient::new(self.channel.clone())
    }

    /// The Backups service.
    pub fn backups(&self) -> BackupsClient<Channel> {
        BackupsClient::new(self.channel.clone()).max_decoding_message_size(16 << 20)
    }

    /// The Sync service.
    pub fn sync(&self) -> SyncClient<Channel> {
        SyncClient::new(self.channel.clone())
    }

    /// The Assembly service.
    pub fn assembly(&self) -> AssemblyClient<Channel> {
        AssemblyClient::new(self.channel.clone())
    }

    /// The Database service.
    pub fn database(&self) -> DatabaseClient<Channel> {
        DatabaseClient::new(self.channel.clone())
    }

    /// The Daemon service.
    pub fn daemon(&self) -> DaemonClient<Channel> {
        DaemonClient::new(self.channel.clone())
    }

    /// Fetches the daemon's status and warns on stderr if its protocol differs
    /// from ours.
    pub async fn status(&self) -> Result<GetStatusResponse, CtlError> {
        let status = self.daemon().get_status(GetStatusRequest {}).await?.into_inner();
        if status.protocol != casman_proto::PROTOCOL {
            eprintln!(
                "casmanctl: warning: casmand speaks protocol {} but this casmanctl speaks {}; update the older one",
                status.protocol,
                casman_proto::PROTOCOL
            );
        }
        Ok(status)
    }
}

//! Connecting to casmand and checking that we speak the same protocol.

use std::path::PathBuf;

use casman_proto::{
    socket::{Side, default_socket_path},
    v1::{GetStatusRequest, GetStatusResponse, daemon_client::DaemonClient},
};
use tonic::transport::Channel;

use crate::error::CtlError;

/// An open connection to the daemon.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The gRPC channel, shared by every service client.
    pub channel: Channel,
    /// The socket it goes to.
    pub socket: PathBuf,
}

impl Conn {
    /// Connects to `socket`, or to the default socket.
    pub async fn open(socket: Option<PathBuf>) -> Result<Conn, CtlError> {
        let socket = socket.unwrap_or_else(|| default_socket_path(Side::Client));
        let channel = casman_proto::client::connect(&socket).await?;
        Ok(Conn { channel, socket })
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

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
        let operator = operator_name(operator)?;
        let socket = socket.unwrap_or_else(|| default_socket_path(Side::Client));
        let channel = casman_proto::client::connect_with_timeout(&socket, timeout).await?;
        Ok(Conn { channel, operator })
    }

    /// Wraps `msg` in a request carrying the operator name: printable ASCII
    /// in `x-casman-operator`, any other name as UTF-8 in
    /// `x-casman-operator-bin` (gRPC metadata text is ASCII only).
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(op) = self.operator.as_deref() {
            match op.parse() {
                Ok(v) if op.is_ascii() => {
                    req.metadata_mut().insert("x-casman-operator", v);
                }
                _ => {
                    let v = tonic::metadata::BinaryMetadataValue::from_bytes(op.as_bytes());
                    req.metadata_mut().insert_bin("x-casman-operator-bin", v);
                }
            }
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

/// The `--operator` name as sent: trimmed, blank is none; any Unicode text,
/// but a control character is refused (it would be dropped or garble the
/// audit log).
fn operator_name(name: Option<String>) -> Result<Option<String>, CtlError> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim();
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(CtlError::Usage(format!(
            "--operator {name:?}: contains the control character U+{:04X}; a name may be any text without control characters",
            u32::from(c)
        )));
    }
    Ok(Some(name.to_owned()).filter(|n| !n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_unicode_without_control_characters() {
        assert_eq!(operator_name(Some(" José ".into())).ok().flatten().as_deref(), Some("José"));
        assert_eq!(operator_name(Some("  ".into())).ok().flatten(), None);
        assert!(
            matches!(operator_name(Some("a\u{7}b".into())), Err(CtlError::Usage(m)) if m.contains("U+0007"))
        );
    }
}

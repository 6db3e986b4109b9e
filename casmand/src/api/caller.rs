//! The caller of a gRPC request: peer credentials from the socket and the
//! operator name the client passed in the `x-casman-operator` metadata
//! header, made into the transport-free [`Caller`] the application layer
//! audits.

use tonic::{Request, transport::server::UdsConnectInfo};

use crate::{context::caller::Caller, peer::Peer};

/// Metadata key carrying the operator's name (casmanctl `--operator`).
pub const OPERATOR_HEADER: &str = "x-casman-operator";

/// The caller of `req`.
pub fn of<T>(req: &Request<T>) -> Caller {
    let operator = req
        .metadata()
        .get(OPERATOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().chars().take(64).collect::<String>())
        .filter(|s| !s.is_empty());
    Caller { peer: peer(req), operator, client: None }
}

/// The peer of `req`, if it came over a Unix socket.
pub fn peer<T>(req: &Request<T>) -> Option<Peer> {
    let info = req.extensions().get::<UdsConnectInfo>()?;
    let cred = info.peer_cred?;
    Some(Peer { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() })
}

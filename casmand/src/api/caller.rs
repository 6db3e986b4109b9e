//! The caller of a gRPC request: peer credentials from the socket and the
//! operator name the client passed in the `x-casman-operator` metadata
//! header, made into the transport-free [`Caller`] the application layer
//! audits.

use tonic::{Request, transport::server::UdsConnectInfo};

use crate::{context::caller::Caller, error::Error, peer::Peer};

/// Metadata key carrying the operator's name (casmanctl `--operator`) when
/// it is printable ASCII...
pub const OPERATOR_HEADER: &str = "x-casman-operator";
/// ...and, as UTF-8, any other name (gRPC text metadata is ASCII only).
pub const OPERATOR_HEADER_BIN: &str = "x-casman-operator-bin";

/// Longest operator name kept, in characters (longer names are cut).
const MAX_OPERATOR: usize = 64;

/// The caller of `req`. An operator name that is not text, or holds a
/// control character, is refused (never dropped silently).
pub fn of<T>(req: &Request<T>) -> Result<Caller, Error> {
    let md = req.metadata();
    let name = if let Some(v) = md.get_bin(OPERATOR_HEADER_BIN) {
        let bytes = v.to_bytes().map_err(|_| {
            Error::invalid(format!("operator name in {OPERATOR_HEADER_BIN}: not valid base64"))
        })?;
        Some(
            String::from_utf8(bytes.to_vec()).map_err(|_| {
                Error::invalid(format!("operator name in {OPERATOR_HEADER_BIN}: not UTF-8 text"))
            })?,
        )
    } else if let Some(v) = md.get(OPERATOR_HEADER) {
        Some(v.to_str().map(str::to_owned).map_err(|_| {
            Error::invalid(format!(
                "operator name in {OPERATOR_HEADER}: not printable ASCII; send other names as UTF-8 in {OPERATOR_HEADER_BIN}"
            ))
        })?)
    } else {
        None
    };
    let operator = match name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => {
            if let Some(c) = n.chars().find(|c| c.is_control()) {
                return Err(Error::invalid(format!(
                    "operator name {n:?}: contains the control character U+{:04X}; a name may be any text without control characters",
                    u32::from(c)
                )));
            }
            Some(n.chars().take(MAX_OPERATOR).collect())
        }
    };
    Ok(Caller { peer: peer(req), operator, client: None })
}

/// The peer of `req`, if it came over a Unix socket.
pub fn peer<T>(req: &Request<T>) -> Option<Peer> {
    let info = req.extensions().get::<UdsConnectInfo>()?;
    let cred = info.peer_cred?;
    Some(Peer { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() })
}

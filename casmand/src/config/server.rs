//! `[server]`: limits on the connections of each listener (the gRPC socket
//! and the web listener), enforced by [`crate::connections`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Connection limits, applied to each listener separately.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Connections open at once per listener; past it, the oldest connection
    /// still in its handshake is closed for the new one, or the new one is.
    pub max_connections: usize,
    /// Connections open at once from one peer (a client address on the web
    /// listener, a uid on the socket; root, casmand's own user and the admin
    /// group are not counted per uid); past it, the peer's oldest connection
    /// still in its handshake gives its place, or the new one is closed.
    pub max_connections_per_peer: usize,
    /// Places on the socket kept for root, casmand's own user and the admin
    /// group (out of `max_connections`).
    pub reserved_connections: usize,
    /// How long a new connection may take to send its first bytes (the HTTP/2
    /// preface, or an HTTP request line).
    #[serde(with = "crate::config::duration")]
    pub handshake_timeout: Duration,
    /// How long a connection may stay without traffic in either direction.
    #[serde(with = "crate::config::duration")]
    pub idle_timeout: Duration,
    /// How long a web client may take to send a request's head (request line
    /// and headers); also how long a kept-alive connection may wait for its
    /// next request.
    #[serde(with = "crate::config::duration")]
    pub header_timeout: Duration,
    /// How long a web client may take to send a request's whole body.
    #[serde(with = "crate::config::duration")]
    pub body_timeout: Duration,
    /// The most scan requests committed in one transaction by the group
    /// commit (`crate::context::group_commit`); 1 turns batching off. Also
    /// `CASMAN_WRITE_BATCH`.
    pub write_batch: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 256,
            max_connections_per_peer: 32,
            reserved_connections: 16,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            write_batch: 256,
        }
    }
}

//! casman's public API: the `casman.v1` gRPC services generated from
//! `proto/casman/v1/*.proto`, the protocol number, and the Unix-socket client
//! used by casmanctl, the tests and any Rust lab script.

pub mod client;
pub mod duration;
pub mod socket;

/// Generated messages, clients and servers of package `casman.v1`.
#[allow(clippy::all, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("casman.v1");
}

/// API protocol number. Raised when a change to `casman.v1` matters to clients
/// (new behaviour they may rely on); casmanctl warns when its own number and the
/// daemon's differ.
pub const PROTOCOL: u32 = 1;

/// Encoded `FileDescriptorSet` of every casman proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/casman_descriptor.bin"));

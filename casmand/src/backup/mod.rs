//! Backups: consistent snapshots of the live databases, checksummed and
//! compressed, stored as immutable versions in an object store (S3, R2 or a
//! local directory) and listed in a per-database manifest.

pub mod accounting;
pub mod chain;
pub mod codec;
pub mod content;
pub mod delta;
pub mod exchange;
pub mod layout;
pub mod leases;
pub mod legacy;
pub mod maintenance;
pub mod manifest;
pub mod missing;
pub mod offline;
pub mod orphans;
mod phases;
pub mod quota;
pub mod rebuild;
pub mod restore;
pub mod retention;
pub mod revert;
pub mod service;
pub mod snapshot;
pub mod spool;
pub mod status;
pub mod store;
pub mod sync;

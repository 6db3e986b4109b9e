//! One module per command group.

pub mod daemon;
pub mod meta;

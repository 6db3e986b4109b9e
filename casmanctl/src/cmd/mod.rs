//! One module per command group.

pub mod daemon;
pub mod database;
pub mod meta;
pub mod parts;
pub mod prompt;

//! One module per command group.

pub mod changes;
pub mod current;
pub mod daemon;
pub mod database;
pub mod export;
pub mod grid;
pub mod label_files;
pub mod labels;
pub mod meta;
pub mod parts;
pub mod positions;
pub mod progress;
pub mod prompt;
pub mod scan;
pub mod scan_interactive;
pub mod snap;
pub mod sync;
pub mod sync_list;
pub mod sync_revert;
pub mod sync_sites;

//! The object-store quota: the free-tier policy ([`policy`], pure) and the
//! site's request ledger ([`ledger`], in memory and in state.db through
//! [`crate::db::quota_ledger`]).
//!
//! The object-store ledger and the free-tier enforcement (Cloudflare R2's by
//! default: 10 GB stored, 1 M Class A and 10 M Class B requests a month).
//!
//! * Every store request is counted by [`crate::backup::accounting`] and lands
//!   here: counts are kept in memory and written to state.db (`quota_ledger`,
//!   one row per UTC calendar month, so the monthly reset happens by
//!   construction) by a background task as soon as it can (requests counted
//!   while a write runs go into the next one; a failed write is retried after
//!   [`FLUSH_INTERVAL`]): a crash loses at most the counts of the last few
//!   milliseconds (a second or two if state.db is failing).
//! * Storage is the stored size of every version listed in the manifests (all
//!   sites), refreshed whenever a manifest is read or written: it goes down
//!   when versions are deleted (CAsMan's tracker only ever added).
//! * Each site publishes its ledger in the manifests it writes (see
//!   [`crate::backup::manifest::Manifest::ledgers`]); the fleet's use is this
//!   site's live counts plus the latest published ledger of every other site
//!   for the current month. The free tier belongs to the account, so checks
//!   use the fleet's figures.
//! * Checks before operations: backup → max(storage, Class A); restore, sync,
//!   verify → Class B; list → Class A; maintain → all three. From the block
//!   threshold the operation fails with [`Error::ResourceExhausted`]; from the
//!   warn threshold a warning is logged. Only the `r2` and `s3` backends are
//!   limited: `local` and `none` are counted, never refused.
//! * With continuous protection on, the replication window widens as the
//!   fleet's Class A use gets ahead of the month's pace ([`window`]), so the
//!   block threshold is not reached by backing up.

pub mod ledger;
pub mod policy;
pub mod window;

pub use ledger::{FLUSH_INTERVAL, Quota, QuotaReport};
pub use policy::*;
pub use window::{ReplicationWindow, effective_window, month_elapsed, replication_window};

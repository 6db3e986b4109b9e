//! Following the change feed ([`super::feed`]) as changes commit: read
//! what is new, hand it on, wait for the next write, again.
//!
//! Woken by the write path, never by a timer: every write through the one
//! door announces itself on the activity bus once its audit entry is
//! written (so the operator of a change made here is known when it is
//! read), and every transaction of a writer connection bumps that file's
//! commit counter ([`super::Db::commits`]); a commit not announced within
//! [`GRACE`] (a write that is not a request) is read then. Wake-ups are
//! taken before each read, so a commit during a read is never missed.
//!
//! Memory: one page of each file is read at a time and handed to `send`,
//! which waits while the client is not reading: a watcher that stops
//! reading holds one page, and writers never wait for it.

use std::{future::Future, time::Duration};

use tokio::sync::broadcast::{Receiver, error::TryRecvError};

use super::{
    Databases,
    activity::Activity,
    change_operators,
    feed::{self, Cursor},
    feed_entry::ChangeEntry,
};
use crate::error::Result;

/// Changes read per file and page.
pub const PAGE: i64 = 256;
/// How long a commit waits for its announcement before it is read anyway.
pub const GRACE: Duration = Duration::from_millis(50);

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// A change.
    Change(ChangeEntry),
    /// `database` was replaced whole (a restore, a pull): read the state again.
    Replaced {
        /// The file.
        database: &'static str,
        /// The cursor at that moment.
        id: Cursor,
    },
}

/// Changes after `cursor`, then every change as it commits, handed to
/// `send` a page at a time (each change's operator filled from the audit
/// log; conflicts told as found at `local_site`). Returns when `send`
/// returns false (the client went away), or with an error reading a file.
/// `activity` must be subscribed before `cursor` was taken.
pub async fn follow<F, Fut>(
    dbs: &Databases,
    mut activity: Receiver<Activity>,
    local_site: &str,
    mut cursor: Cursor,
    mut send: F,
) -> Result<()>
where
    F: FnMut(Vec<FeedItem>) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut ticks = [dbs.parts.commits(), dbs.assembled.commits()];
    let mut replaced = Vec::new();
    loop {
        // Taken before the read: what commits meanwhile wakes the next wait.
        for t in &mut ticks {
            t.borrow_and_update();
        }
        loop {
            match activity.try_recv() {
                Ok(a) => note(a, &mut replaced),
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if !replaced.is_empty() {
            let items =
                replaced.drain(..).map(|database| FeedItem::Replaced { database, id: cursor }).collect();
            if !send(items).await {
                return Ok(());
            }
        }
        loop {
            let batch = feed::read(dbs, cursor, PAGE).await?;
            cursor = batch.cursor;
            let mut changes = batch.changes;
            if !changes.is_empty() {
                for c in &mut changes {
                    if c.site.is_none() && c.table == "conflict_log" {
                        c.site = Some(local_site.to_owned());
                    }
                }
                change_operators::fill(&dbs.state, local_site, &mut changes).await?;
                if !send(changes.into_iter().map(FeedItem::Change).collect()).await {
                    return Ok(());
                }
            }
            if !batch.more {
                break;
            }
        }
        let [parts, assembled] = &mut ticks;
        let heard = tokio::select! {
            a = activity.recv() => a.ok(),
            _ = parts.changed() => announced(&mut activity).await,
            _ = assembled.changed() => announced(&mut activity).await,
        };
        if let Some(a) = heard {
            note(a, &mut replaced);
        }
    }
}

/// Keeps the files `a` says were replaced.
fn note(a: Activity, replaced: &mut Vec<&'static str>) {
    if let Activity::Restored { database } = a
        && !replaced.contains(&database)
    {
        replaced.push(database);
    }
}

/// After a commit: its announcement, or nothing after [`GRACE`].
async fn announced(activity: &mut Receiver<Activity>) -> Option<Activity> {
    tokio::time::timeout(GRACE, activity.recv()).await.ok().and_then(|a| a.ok())
}

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

/// Taken by a watcher while it reads (see `follow`).
static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Changes read per file and page.
pub const PAGE: i64 = 256;
/// How long a commit waits for its announcement before it is read anyway.
pub const GRACE: Duration = Duration::from_millis(50);

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// A change.
    Change(Box<ChangeEntry>),
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
    // Which files may hold news: those committed to since their last read
    // (every file after an announcement: writes by other programs bump no
    // counter).
    let mut dirty = [true, true];
    // Whether the last read stopped at a change awaiting its audit entry.
    let mut waiting = false;
    loop {
        // Taken before the read: what commits meanwhile wakes the next wait.
        for (t, d) in ticks.iter_mut().zip(dirty.iter_mut()) {
            *d |= t.has_changed().unwrap_or(true);
            t.borrow_and_update();
        }
        loop {
            match activity.try_recv() {
                Ok(a) => {
                    note(a, &mut replaced);
                    dirty = [true, true];
                }
                Err(TryRecvError::Lagged(_)) => dirty = [true, true],
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
        while dirty.iter().any(|d| *d) {
            let batch = {
                // One watcher reads at a time: the feed takes one of the
                // readers requests share, whatever the number of watchers.
                let _turn = READS.acquire().await;
                let mut batch = feed::read_some(dbs, cursor, PAGE, dirty).await?;
                waiting = false;
                if !batch.changes.is_empty() {
                    for c in &mut batch.changes {
                        if c.site.is_none() && c.table == "conflict_log" {
                            c.site = Some(local_site.to_owned());
                        }
                    }
                    let now = jiff::Timestamp::now().as_millisecond();
                    let awaiting =
                        change_operators::fill(&dbs.state, local_site, &mut batch.changes, now).await?;
                    // A change made here whose audit entry is not written yet
                    // (the request is finishing): sent once it is, so its
                    // operator is known; what follows it waits with it.
                    if let Some(k) = awaiting {
                        batch.cursor = k.checked_sub(1).and_then(|p| batch.changes[p].id).unwrap_or(cursor);
                        batch.changes.truncate(k);
                        batch.more = false;
                        waiting = true;
                    }
                }
                batch
            };
            dirty = if batch.more { dirty } else { [false, false] };
            cursor = batch.cursor;
            if !batch.changes.is_empty()
                && !send(batch.changes.into_iter().map(|c| FeedItem::Change(Box::new(c))).collect()).await
            {
                return Ok(());
            }
        }
        let [parts, assembled] = &mut ticks;
        // (`changed` marks the counter seen: the file it woke for is noted here.)
        let (heard, committed) = tokio::select! {
            a = activity.recv() => (Some(a.ok()), None),
            _ = parts.changed() => (announced(&mut activity).await, Some(0)),
            _ = assembled.changed() => (announced(&mut activity).await, Some(1)),
            // Waiting for an audit entry: its announcement normally wakes
            // this; a request that fails after its commit announces
            // nothing, so look again after a while (at most LAG_SECONDS).
            _ = tokio::time::sleep(GRACE), if waiting => (Some(None), None),
        };
        if let Some(i) = committed {
            dirty[i] = true;
        }
        if let Some(a) = heard {
            // An announcement (or announcements lost to a lag): every file.
            if let Some(a) = a {
                note(a, &mut replaced);
            }
            dirty = [true, true];
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

/// After a commit: its announcement (`Some(None)`: some were lost to a
/// lag), or `None` after [`GRACE`] without one.
async fn announced(activity: &mut Receiver<Activity>) -> Option<Option<Activity>> {
    tokio::time::timeout(GRACE, activity.recv()).await.ok().map(|a| a.ok())
}

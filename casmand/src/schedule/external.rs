//! Writes to the database files by other programs (the sqlite3 shell, an old
//! script), seen with `notify` and confirmed with `PRAGMA data_version` on
//! casmand's own writer connection: that number changes only when *another*
//! connection commits, so casmand's own writes are never counted twice.
//! Bursts of file events are debounced into one check. The watcher runs in
//! its own task, so nothing cancels a check half way.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::{broadcast::error::RecvError, mpsc, watch};

use crate::{
    context::Context,
    db::activity::Activity,
    db::{ASSEMBLED_DB, Db, PARTS_DB},
};

/// Starts the watcher task; it stops when `stop` becomes true.
pub fn spawn(ctx: Context, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut watcher = Watcher::start(&ctx);
        let mut activity = ctx.activity().subscribe();
        watcher.baseline().await;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                event = activity.recv() => match event {
                    Ok(Activity::Restored { database }) => watcher.rebaseline(database).await,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
                first = watcher.next_event() => {
                    // Outside the select: nothing cancels a burst half way.
                    let burst = watcher.finish_burst(first).await;
                    for db in watcher.committed_by_others(burst).await {
                        ctx.count_external_write(db).await;
                        tracing::info!(database = db, "write by another program counted");
                    }
                }
            }
        }
    })
}

/// File events within this window are one burst.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the data directory.
pub struct Watcher {
    dbs: Vec<Db>,
    events: Option<mpsc::Receiver<&'static str>>,
    /// Per database (parts.db, assembled_casm.db): an event was seen and its
    /// message sent, not yet taken by [`Watcher::next_burst`].
    pending: Arc<[AtomicBool; 2]>,
    versions: HashMap<&'static str, i64>,
    _watcher: Option<notify::RecommendedWatcher>,
}

fn database_of(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    [PARTS_DB, ASSEMBLED_DB].into_iter().find(|db| name == *db || name == format!("{db}-wal"))
}

fn slot(db: &str) -> usize {
    usize::from(db == ASSEMBLED_DB)
}

async fn data_version(db: &Db) -> Option<i64> {
    db.writer_data_version().await
}

impl Watcher {
    /// Starts watching `ctx`'s data directory. If the watch cannot be set up,
    /// external writes are simply not counted (logged once).
    fn start(ctx: &Context) -> Watcher {
        let dbs = vec![ctx.dbs().parts.clone(), ctx.dbs().assembled.clone()];
        let (tx, rx) = mpsc::channel(256);
        // One message per database until the burst is taken: casmand's own
        // WAL writes raise a file event per write, which must not cost a
        // task wake-up each.
        let pending: Arc<[AtomicBool; 2]> = Arc::default();
        let flags = pending.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && (ev.kind.is_modify() || ev.kind.is_create())
            {
                for db in ev.paths.iter().filter_map(|p| database_of(p)) {
                    if !flags[slot(db)].swap(true, Ordering::AcqRel) {
                        let _ = tx.try_send(db);
                    }
                }
            }
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            w.watch(&ctx.config().data_dir, RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        let (events, watcher) = match watcher {
            Ok(w) => (Some(rx), Some(w)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the data directory; writes by other programs are not counted");
                (None, None)
            }
        };
        Watcher { dbs, events, pending, versions: HashMap::new(), _watcher: watcher }
    }

    /// Forgets the baseline of `db` (its file was replaced).
    async fn rebaseline(&mut self, db: &'static str) {
        if let Some(d) = self.dbs.iter().find(|d| d.name == db)
            && let Some(v) = data_version(d).await
        {
            self.versions.insert(db, v);
        }
    }

    /// Records the current `data_version` of every database.
    async fn baseline(&mut self) {
        for d in self.dbs.clone() {
            if let Some(v) = data_version(&d).await {
                self.versions.insert(d.name, v);
            }
        }
    }

    /// Waits for the first file event of a burst (cancel-safe: a message is
    /// either received or left in the channel). Pending forever when not
    /// watching.
    async fn next_event(&mut self) -> &'static str {
        let Some(rx) = self.events.as_mut() else { return std::future::pending().await };
        match rx.recv().await {
            Some(db) => db,
            None => std::future::pending().await,
        }
    }

    /// The rest of the burst that began with `first` (debounced): the
    /// databases touched.
    async fn finish_burst(&mut self, first: &'static str) -> Vec<&'static str> {
        tokio::time::sleep(DEBOUNCE).await;
        let mut touched = vec![first];
        if let Some(rx) = self.events.as_mut() {
            while let Ok(db) = rx.try_recv() {
                if !touched.contains(&db) {
                    touched.push(db);
                }
            }
        }
        // Re-armed: an event from now on starts the next burst.
        for db in [PARTS_DB, ASSEMBLED_DB] {
            if self.pending[slot(db)].swap(false, Ordering::AcqRel) && !touched.contains(&db) {
                touched.push(db);
            }
        }
        touched
    }

    /// Of the `touched` databases, those another program committed to since
    /// the last check.
    async fn committed_by_others(&mut self, touched: Vec<&'static str>) -> Vec<&'static str> {
        let mut changed = Vec::new();
        for db in touched {
            let Some(d) = self.dbs.iter().find(|d| d.name == db) else { continue };
            let Some(now) = data_version(d).await else { continue };
            if self.versions.insert(db, now).is_some_and(|before| before != now) {
                changed.push(db);
            }
        }
        changed
    }
}

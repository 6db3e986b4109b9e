//! `casman.v1.Changes`: what changed between two times, and the live change
//! feed (see `proto/casman/v1/changes.proto` for the guarantees). Thin: the
//! reading is [`crate::db::change_history`] and [`crate::db::feed_watch`].

use std::sync::Arc;

use casman_proto::v1::{ChangeEvent, ListChangesRequest, WatchChangesRequest, changes_server::Changes};
use tokio::sync::{Semaphore, watch};
use tonic::{Request, Response, Status};

use super::streaming::{self, EventStream};
use crate::{
    context::Context,
    db::{
        change_history::{self, Filter},
        change_operators,
        feed::{self, Cursor},
        feed_entry::ChangeEntry,
        feed_watch::{self, FeedItem},
        scans::canonical_id,
    },
    error::Error,
    timestamp,
};

/// Watchers served at a time.
pub const MAX_WATCHERS: usize = 64;
/// Changes per page of a listing.
const PAGE: usize = 500;
/// What is said when the log does not tell.
const UNKNOWN: &str = "unknown";

/// Implementation of the Changes service.
#[derive(Debug, Clone)]
pub struct ChangesApi {
    ctx: Context,
    stop: watch::Receiver<bool>,
    watchers: Arc<Semaphore>,
}

impl ChangesApi {
    /// A service over the daemon's context; watchers end when `stop` turns true.
    pub fn new(ctx: Context, stop: watch::Receiver<bool>) -> Self {
        ChangesApi { ctx, stop, watchers: Arc::new(Semaphore::new(MAX_WATCHERS)) }
    }
}

/// A time of a request, or none when empty.
fn instant(field: &str, value: &str) -> Result<Option<jiff::Timestamp>, Error> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    timestamp::parse_instant(value).map(Some).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

/// The API message of a change.
fn event(c: ChangeEntry) -> ChangeEvent {
    ChangeEvent {
        id: c.id.map(|i| i.encode()).unwrap_or_default(),
        kind: c.kind.as_str().to_owned(),
        time: c.time,
        site: c.site.unwrap_or_else(|| UNKNOWN.to_owned()),
        operator: c.operator.unwrap_or_else(|| UNKNOWN.to_owned()),
        database: c.database.to_owned(),
        subject: c.subject,
        other: c.other,
        detail: c.detail,
        table: c.table,
        op: c.op,
        row: c.row.unwrap_or_default(),
        hlc: c.hlc,
        seq: c.seq,
        count: c.count,
    }
}

fn item(i: FeedItem) -> ChangeEvent {
    match i {
        FeedItem::Change(c) => event(*c),
        FeedItem::Replaced { database, id } => ChangeEvent {
            id: id.encode(),
            kind: "replaced".into(),
            time: timestamp::now(),
            database: database.to_owned(),
            subject: database.to_owned(),
            detail: format!("{database} was replaced whole (a restore or a pull): read the state again"),
            site: UNKNOWN.into(),
            operator: UNKNOWN.into(),
            ..ChangeEvent::default()
        },
    }
}

#[tonic::async_trait]
impl Changes for ChangesApi {
    type ListChangesStream = EventStream<ChangeEvent>;
    type WatchChangesStream = EventStream<ChangeEvent>;

    async fn list_changes(
        &self,
        req: Request<ListChangesRequest>,
    ) -> Result<Response<Self::ListChangesStream>, Status> {
        let r = req.into_inner();
        let filter = Filter {
            since: instant("since", &r.since)?,
            until: instant("until", &r.until)?,
            part: Some(canonical_id(&r.part)).filter(|p| !p.is_empty()),
            site: Some(r.site.trim().to_owned()).filter(|s| !s.is_empty()),
        };
        if let (Some(s), Some(u)) = (filter.since, filter.until)
            && u < s
        {
            return Err(Error::InvalidArgument(format!(
                "until {:?} is before since {:?}: the span must not end before it starts",
                r.until, r.since
            ))
            .into());
        }
        let dbs = self.ctx.dbs().clone();
        let site = self.ctx.config().site_id.clone();
        Ok(Response::new(streaming::paged(move |tx| async move {
            let pages = tx.clone();
            let state = dbs.state.clone();
            let local = site.clone();
            let listed = change_history::list(&dbs, &filter, &site, PAGE, move |mut entries| {
                let (tx, state, local) = (pages.clone(), state.clone(), local.clone());
                async move {
                    // A listing does not wait for audit entries still to come.
                    if let Err(e) = change_operators::fill(&state, &local, &mut entries, i64::MAX).await {
                        let _ = tx.send(Err(e.into())).await;
                        return false;
                    }
                    tx.send(Ok(entries.into_iter().map(event).collect())).await.is_ok()
                }
            })
            .await;
            if let Err(e) = listed {
                let _ = tx.send(Err(e.into())).await;
            }
        })))
    }

    async fn watch_changes(
        &self,
        req: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let r = req.into_inner();
        let permit = self.watchers.clone().try_acquire_owned().map_err(|_| {
            Error::ResourceExhausted(format!(
                "{MAX_WATCHERS} clients already follow the changes, the most casmand serves at a time; \
                 close one, or try again later"
            ))
        })?;
        // Subscribed before the cursor is taken: nothing committing between is missed.
        let activity = self.ctx.activity().subscribe();
        let dbs = self.ctx.dbs().clone();
        let cursor = match (r.after.trim(), r.from_start) {
            ("", true) => Cursor::default(),
            ("", false) => feed::head(&dbs).await?,
            (after, _) => Cursor::parse(after)?,
        };
        let site = self.ctx.config().site_id.clone();
        let mut stop = self.stop.clone();
        Ok(Response::new(streaming::paged(move |tx| async move {
            let _permit = permit;
            let pages = tx.clone();
            let send = move |items: Vec<FeedItem>| {
                let tx = pages.clone();
                async move { tx.send(Ok(items.into_iter().map(item).collect())).await.is_ok() }
            };
            tokio::select! {
                followed = feed_watch::follow(&dbs, activity, &site, cursor, send) => {
                    if let Err(e) = followed {
                        let _ = tx.send(Err(e.into())).await;
                    }
                }
                _ = tx.closed() => {}
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {}
            }
        })))
    }
}

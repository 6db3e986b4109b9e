//! `/events`: server-sent events, one `change` event per write announced on
//! the activity bus (a scan, a position, a board load, a restore), so that
//! open pages refresh themselves. Streams end when the daemon stops.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::Web;
use crate::db::activity::Activity;

fn describe(a: &Activity) -> serde_json::Value {
    match a {
        Activity::Write { database, action, writes } => {
            serde_json::json!({"kind": "write", "database": database, "action": action, "writes": writes})
        }
        Activity::Restored { database } => serde_json::json!({"kind": "restored", "database": database}),
        Activity::Received { database, changes } => {
            serde_json::json!({"kind": "received", "database": database, "changes": changes})
        }
        Activity::PartsGenerated { count } => {
            serde_json::json!({"kind": "parts_generated", "database": crate::db::PARTS_DB, "count": count})
        }
    }
}

pub(super) async fn stream(State(web): State<Web>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = web.ctx.activity().subscribe();
    let hello = Event::default().event("hello").data("{}");
    let events = futures_util::stream::unfold(
        (rx, web.stop.clone(), Some(hello)),
        |(mut rx, mut stop, first)| async move {
            if let Some(e) = first {
                return Some((Ok(e), (rx, stop, None)));
            }
            if *stop.borrow() {
                return None;
            }
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => return None,
                got = rx.recv() => match got {
                    Ok(a) => Event::default().event("change").data(describe(&a).to_string()),
                    // Missed some: the page must refresh anyway.
                    Err(RecvError::Lagged(n)) => {
                        Event::default().event("change").data(serde_json::json!({"kind": "lagged", "missed": n}).to_string())
                    }
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((Ok(event), (rx, stop, None)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

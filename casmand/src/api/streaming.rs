//! The long calls of `Backups` and `Sync` stream their progress: the work runs
//! in a task of its own and sends progress messages and results down a
//! channel that the response stream reads.

use std::{future::Future, pin::Pin};

use casman_proto::v1::TransferProgress;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::backup::service::Progress;

/// The response stream of a streaming call.
pub type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The sending side of an [`EventStream`].
pub type Sender<T> = mpsc::Sender<Result<T, Status>>;

/// Runs `work` in a task, given the sender of the stream it returns. The
/// stream ends when `work` is done.
pub fn streamed<T, F, Fut>(work: F) -> EventStream<T>
where
    T: Send + 'static,
    F: FnOnce(Sender<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(work(tx));
    Box::pin(ReceiverStream::new(rx))
}

/// The sending side of a [`paged`] stream: a page of items, or the error
/// that ends it.
pub type PageSender<T> = mpsc::Sender<Result<Vec<T>, Status>>;

/// Runs `work` in a task, given the sender of the stream it returns, for
/// listings made in pages: the stream yields each page's items one by one
/// (one message each), one page waiting in the channel at most, so the
/// daemon holds a few pages per client however long the listing and however
/// slow the client. The stream ends when `work` is done.
pub fn paged<T, F, Fut>(work: F) -> EventStream<T>
where
    T: Send + 'static,
    F: FnOnce(PageSender<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use futures_util::{StreamExt, future::Either, stream};
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(work(tx));
    Box::pin(ReceiverStream::new(rx).flat_map(|page: Result<Vec<T>, Status>| match page {
        Ok(items) => Either::Left(stream::iter(items.into_iter().map(Ok))),
        Err(e) => Either::Right(stream::once(std::future::ready(Err(e)))),
    }))
}

/// The page callback [`send_pages`] gives a listing: true while the client
/// still listens.
pub type PageFn<R> = Box<dyn FnMut(Vec<R>) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send>;

/// The body of a [`paged`] listing: runs `list` with a page callback that
/// sends each page it reads down `tx` as `page_of` makes it, then sends the
/// error `list` ended with, if any.
pub async fn send_pages<R, T, M, L, LFut>(tx: PageSender<T>, mut page_of: M, list: L)
where
    R: 'static,
    T: Send + 'static,
    M: FnMut(Vec<R>) -> Vec<T> + Send + 'static,
    L: FnOnce(PageFn<R>) -> LFut,
    LFut: Future<Output = crate::error::Result<()>>,
{
    let pages = tx.clone();
    let listed = list(Box::new(move |rows: Vec<R>| {
        let (tx, page) = (pages.clone(), page_of(rows));
        Box::pin(async move { tx.send(Ok(page)).await.is_ok() })
    }))
    .await;
    if let Err(e) = listed {
        let _ = tx.send(Err(Status::from(e))).await;
    }
}

/// A progress callback that sends every step as `event(progress)` on `tx`.
/// It never waits: a progress message the client is too slow to read is
/// dropped (results, sent with [`send`], are not).
pub fn progress<T: Send + 'static>(
    tx: &Sender<T>,
    event: fn(TransferProgress) -> T,
) -> impl Fn(Progress) + Send + Sync + 'static {
    let tx = tx.clone();
    move |p| {
        let _ = tx.try_send(Ok(event(progress_message(p))));
    }
}

/// Sends `result`; false when the stream must end there: the result was an
/// error, or the client went away.
pub async fn send<T>(tx: &Sender<T>, result: Result<T, Status>) -> bool {
    let failed = result.is_err();
    tx.send(result).await.is_ok() && !failed
}

/// The API message of a progress step.
fn progress_message(p: Progress) -> TransferProgress {
    TransferProgress {
        database: p.database,
        phase: p.phase.to_owned(),
        done_bytes: p.done,
        total_bytes: p.total,
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn the_stream_ends_after_the_first_error() {
        let mut s = streamed(|tx: Sender<u32>| async move {
            let step = progress(&tx, |p| p.done_bytes as u32 + 100);
            step(Progress { database: "parts.db".into(), phase: "upload", done: 1, total: 2 });
            for r in [Ok(1), Err(Status::aborted("no")), Ok(2)] {
                if !send(&tx, r).await {
                    return;
                }
            }
        });
        let mut got = Vec::new();
        while let Some(item) = s.next().await {
            got.push(item.map_err(|e| e.code()));
        }
        assert_eq!(got, vec![Ok(101), Ok(1), Err(tonic::Code::Aborted)]);
    }
}

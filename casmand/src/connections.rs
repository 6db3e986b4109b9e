//! Limits on the connections of one listener (`[server]` in the
//! configuration), so that local clients cannot exhaust the daemon's file
//! descriptors or hold it up (issue 19, defect 1):
//!
//! * at most `max_connections` open at once. Past the cap, a new connection
//!   takes the place of the oldest one that has not finished its handshake
//!   (a connection that never sends the HTTP/2 preface, or a request, is
//!   what a flood is made of, and a real client always gets in); when every
//!   open connection has finished its handshake, it takes the place of the
//!   one that has sent nothing for the longest, if that is longer than
//!   `handshake_timeout` (a client that stalled after its handshake: never
//!   reads, never sends, not even the answer to the server's pings);
//!   otherwise the new one is closed at once. This is logged once per
//!   burst, not per connection;
//! * a connection must send its first [`HANDSHAKE_BYTES`] bytes (the HTTP/2
//!   preface; any HTTP/1 request line with its `Host` header, or a TLS
//!   ClientHello, is longer) within `handshake_timeout`;
//! * after that, a connection with no traffic in either direction for
//!   `idle_timeout` is closed (the gRPC server pings idle clients, so a
//!   client that answers the pings stays connected).

use std::{
    collections::VecDeque,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures_util::task::AtomicWaker;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use crate::config::ServerConfig;

/// Bytes a connection must send within the handshake timeout: the length of
/// the HTTP/2 client preface.
pub const HANDSHAKE_BYTES: usize = 24;

/// The connection limits of one listener, shared by its connections.
#[derive(Debug, Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Which listener, for the log (`"socket"`, `"web"`).
    listener: &'static str,
    max: usize,
    handshake: Duration,
    idle: Duration,
    /// What `Evict::last_received` counts from.
    epoch: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Connections counted against the cap.
    open: usize,
    /// Connections still in their handshake, oldest first.
    pending: VecDeque<Arc<Evict>>,
    /// Connections past their handshake.
    established: Vec<Arc<Evict>>,
    /// Connections closed or refused for the cap in the current burst.
    burst: u64,
}

/// A flag that closes a connection from outside it.
#[derive(Debug, Default)]
struct Evict {
    closed: AtomicBool,
    waker: AtomicWaker,
    /// When the peer last sent something, in milliseconds since the
    /// limiter's epoch.
    last_received: AtomicU64,
}

impl Evict {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

impl Limiter {
    /// The limits of `config` for the listener named `listener` in the log.
    pub fn new(listener: &'static str, config: &ServerConfig) -> Limiter {
        Limiter {
            shared: Arc::new(Shared {
                listener,
                max: config.max_connections.max(1),
                handshake: config.handshake_timeout,
                idle: config.idle_timeout,
                epoch: Instant::now(),
                state: Mutex::default(),
            }),
        }
    }

    /// `server.handshake_timeout`, for handshakes above the byte stream (TLS).
    pub fn handshake_timeout(&self) -> Duration {
        self.shared.handshake
    }

    /// Admits `io` as a new connection, or `None` when it must be closed
    /// (the cap is reached, every open connection finished its handshake and
    /// each sent something within `handshake_timeout`).
    pub fn admit<S>(&self, io: S) -> Option<Limited<S>> {
        let shared = &self.shared;
        let mut state = shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.open >= shared.max {
            if state.burst == 0 {
                tracing::warn!(
                    listener = shared.listener,
                    max_connections = shared.max,
                    "too many connections (server.max_connections = {}): closing the oldest connections \
                     that have not finished their handshake, and new ones when none is left",
                    shared.max
                );
            }
            state.burst += 1;
            let replaced = match state.pending.pop_front() {
                Some(oldest) => oldest,
                None => shared.take_stalled(&mut state)?,
            };
            replaced.close();
            state.open -= 1;
        }
        state.open += 1;
        let evict = Arc::new(Evict::default());
        state.pending.push_back(evict.clone());
        drop(state);
        let now = Instant::now();
        Some(Limited {
            io,
            shared: shared.clone(),
            evict,
            received: 0,
            last_progress: now,
            deadline: Box::pin(tokio::time::sleep_until(now + shared.handshake)),
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remove_pending(state: &mut State, evict: &Arc<Evict>) {
        if let Some(i) = state.pending.iter().position(|e| Arc::ptr_eq(e, evict)) {
            state.pending.remove(i);
        }
    }

    fn remove_established(state: &mut State, evict: &Arc<Evict>) {
        if let Some(i) = state.established.iter().position(|e| Arc::ptr_eq(e, evict)) {
            state.established.swap_remove(i);
        }
    }

    fn millis_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The established connection that has sent nothing for the longest,
    /// taken out of the state, if that is longer than the handshake timeout.
    fn take_stalled(&self, state: &mut State) -> Option<Arc<Evict>> {
        let (i, last) = state
            .established
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.last_received.load(Ordering::Relaxed)))
            .min_by_key(|(_, last)| *last)?;
        let silent = Duration::from_millis(self.millis_now().saturating_sub(last));
        (silent > self.handshake).then(|| state.established.swap_remove(i))
    }
}

/// A connection admitted by a [`Limiter`]: it fails with `TimedOut` past its
/// handshake or idle timeout, and with `ConnectionAborted` when a newer
/// connection took its place; dropping it frees its place.
#[derive(Debug)]
pub struct Limited<S> {
    io: S,
    shared: Arc<Shared>,
    evict: Arc<Evict>,
    /// Bytes received, counted up to [`HANDSHAKE_BYTES`].
    received: usize,
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Limited<S> {
    /// The connection underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    fn handshaken(&self) -> bool {
        self.received >= HANDSHAKE_BYTES
    }

    fn check_evicted(&self, cx: &Context<'_>) -> io::Result<()> {
        self.evict.waker.register(cx.waker());
        if self.evict.closed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("closed for a newer connection: server.max_connections = {}", self.shared.max),
            ));
        }
        Ok(())
    }

    fn progress(&mut self, received: usize) {
        if !self.handshaken() {
            self.received = self.received.saturating_add(received);
            if !self.handshaken() {
                return;
            }
            let mut state = self.shared.lock();
            Shared::remove_pending(&mut state, &self.evict);
            if !self.evict.closed.load(Ordering::SeqCst) {
                state.established.push(self.evict.clone());
            }
        }
        self.evict.last_received.store(self.shared.millis_now(), Ordering::Relaxed);
        self.last_progress = Instant::now();
    }

    /// On a pending read or write: fails once the deadline has passed with
    /// no progress, else makes sure the task is woken at the deadline.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            if !self.handshaken() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no handshake within server.handshake_timeout ({:?})", self.shared.handshake),
                ));
            }
            let next = self.last_progress + self.shared.idle;
            if next <= Instant::now() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for server.idle_timeout ({:?})", self.shared.idle),
                ));
            }
            self.deadline.as_mut().reset(next);
        }
    }
}

impl<S> Drop for Limited<S> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        Shared::remove_pending(&mut state, &self.evict);
        Shared::remove_established(&mut state, &self.evict);
        if !self.evict.closed.load(Ordering::SeqCst) {
            state.open = state.open.saturating_sub(1);
        }
        if state.burst > 0 && state.open < self.shared.max / 2 {
            tracing::info!(
                listener = self.shared.listener,
                closed = state.burst,
                "connections back under the limit; {} were closed for server.max_connections",
                state.burst
            );
            state.burst = 0;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check_evicted(cx)?;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    this.progress(n);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.check_deadline(cx)?;
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_evicted(cx)?;
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 && this.handshaken() {
                    this.last_progress = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.check_deadline(cx)?;
                Poll::Pending
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Limited<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn limiter(max: usize) -> Limiter {
        let config = ServerConfig {
            max_connections: max,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        Limiter::new("test", &config)
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_past_the_cap_replaces_the_oldest_in_handshake() {
        let limits = limiter(2);
        let (a, _a) = tokio::io::duplex(64);
        let (b, mut b_peer) = tokio::io::duplex(64);
        let (c, _c) = tokio::io::duplex(64);
        let (d, mut d_peer) = tokio::io::duplex(64);
        let mut a = limits.admit(a).unwrap();
        let mut b = limits.admit(b).unwrap();
        // b finishes its handshake: it is no longer a candidate.
        b_peer.write_all(&[0; HANDSHAKE_BYTES]).await.unwrap();
        let mut buf = [0; HANDSHAKE_BYTES];
        b.read_exact(&mut buf).await.unwrap();
        let _c = limits.admit(c).unwrap();
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
        assert!(err.to_string().contains("server.max_connections = 2"), "{err}");
        // c is the only one in handshake: d replaces it and finishes its
        // handshake. With none left in handshake, the next is refused.
        let mut d = limits.admit(d).unwrap();
        d_peer.write_all(&[0; HANDSHAKE_BYTES]).await.unwrap();
        d.read_exact(&mut buf).await.unwrap();
        let (e, _e) = tokio::io::duplex(64);
        assert!(limits.admit(e).is_none());
        drop(b);
        let (f, _f) = tokio::io::duplex(64);
        assert!(limits.admit(f).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_cap_a_client_stalled_after_its_handshake_gives_its_place_to_a_new_one() {
        let limits = limiter(2);
        let (a, mut a_peer) = tokio::io::duplex(64);
        let (b, mut b_peer) = tokio::io::duplex(64);
        let mut a = limits.admit(a).unwrap();
        let mut b = limits.admit(b).unwrap();
        let mut buf = [0; HANDSHAKE_BYTES];
        for (conn, peer) in [(&mut a, &mut a_peer), (&mut b, &mut b_peer)] {
            peer.write_all(&[0; HANDSHAKE_BYTES]).await.unwrap();
            conn.read_exact(&mut buf).await.unwrap();
        }
        // Both past their handshake and recently heard from: no place.
        let (c, _c) = tokio::io::duplex(64);
        assert!(limits.admit(c).is_none());
        // a stalls; b keeps sending. Past the handshake timeout of silence,
        // a gives its place; b, heard from 6 s ago, keeps its own.
        tokio::time::advance(Duration::from_secs(5)).await;
        b_peer.write_all(&[1]).await.unwrap();
        b.read_exact(&mut [0; 1]).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        let (c, _c) = tokio::io::duplex(64);
        let _c = limits.admit(c).unwrap();
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
        drop(a);
        // c is in its handshake: the next one takes its place, not b's.
        let (d, _d) = tokio::io::duplex(64);
        assert!(limits.admit(d).is_some());
        b_peer.write_all(&[2]).await.unwrap();
        b.read_exact(&mut [0; 1]).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_times_out_and_an_idle_one_later() {
        let limits = limiter(4);
        let (a, _a_peer) = tokio::io::duplex(64);
        let mut a = limits.admit(a).unwrap();
        let started = Instant::now();
        let mut buf = [0; 64];
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("server.handshake_timeout"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));

        let (b, mut b_peer) = tokio::io::duplex(64);
        let mut b = limits.admit(b).unwrap();
        b_peer.write_all(&[0; HANDSHAKE_BYTES]).await.unwrap();
        b.read_exact(&mut [0; HANDSHAKE_BYTES]).await.unwrap();
        let started = Instant::now();
        let err = b.read(&mut buf).await.unwrap_err();
        assert!(err.to_string().contains("server.idle_timeout"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}

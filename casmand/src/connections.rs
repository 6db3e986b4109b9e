//! Limits on the connections of one listener (`[server]` in the
//! configuration), so that local clients cannot exhaust the daemon's file
//! descriptors or hold it up (issue 19, defect 1; issue 32, item 1):
//!
//! * at most `max_connections` open at once. Past the cap, a new connection
//!   takes the place of the oldest one that has not finished its handshake
//!   (a connection that never sends the HTTP/2 preface and its first frame,
//!   or a complete first request, is what a flood is made of, and a real
//!   client always gets in); when every open connection has finished its
//!   handshake, it takes the place of the one that has sent nothing for the
//!   longest, if that is longer than `handshake_timeout` (a client that
//!   stalled after its handshake: never reads, never sends, not even the
//!   answer to the server's pings); otherwise the new one is closed at once.
//!   This is logged once per burst, not per connection;
//! * at most `max_connections_per_peer` from one peer (a client address on
//!   the web listener, a uid on the socket; root, casmand's own user and the
//!   admin group are not counted per uid): past it, a new connection from
//!   that peer takes the place of that peer's oldest connection in its
//!   handshake, or of its longest silent one, as above: a peer can only
//!   crowd out itself;
//! * on the socket, `reserved_connections` of the places are kept for root,
//!   casmand's own user and the admin group;
//! * a connection must send its first [`HANDSHAKE_BYTES`] bytes (the HTTP/2
//!   preface; any HTTP/1 request line with its `Host` header, or a TLS
//!   ClientHello, is longer) within `handshake_timeout`. On the socket, the
//!   preface and the first HTTP/2 frame must arrive within it, and then every
//!   frame, once begun, must arrive whole within `handshake_timeout` (a client
//!   that trickles a byte every few seconds is closed); the web listener
//!   times request heads and bodies itself (`crate::web::listener`);
//! * after that, a connection with no traffic in either direction for
//!   `idle_timeout` is closed (the gRPC server pings idle clients, so a
//!   client that answers the pings stays connected).

use std::{
    collections::{HashMap, VecDeque},
    io,
    net::IpAddr,
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

/// Who opened a connection, for the per-peer cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKey {
    /// Unknown: counted only against `max_connections`.
    Unknown,
    /// A local user on the socket.
    Uid(u32),
    /// A client address on the web listener.
    Addr(IpAddr),
}

impl std::fmt::Display for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerKey::Unknown => f.write_str("an unknown peer"),
            PeerKey::Uid(uid) => write!(f, "uid {uid}"),
            PeerKey::Addr(ip) => write!(f, "{ip}"),
        }
    }
}

/// How a listener's connections finish their handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// HTTP/2 (the socket): the preface and a first whole frame.
    Http2,
    /// Anything else (the web listener): [`Settle::settle`], called when the
    /// first request has arrived.
    Other,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

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
    per_peer: usize,
    /// Places only privileged peers may take.
    reserved: usize,
    handshake: Duration,
    idle: Duration,
    header: Duration,
    body: Duration,
    protocol: Protocol,
    /// The admin group, whose members (by primary group) are privileged.
    admin_gid: Option<u32>,
    /// What `Evict::last_received` counts from.
    epoch: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Connections counted against the cap.
    open: usize,
    /// Connections of unprivileged peers counted against the cap.
    unprivileged: usize,
    /// Connections counted per (unprivileged, known) peer.
    per_peer: HashMap<PeerKey, usize>,
    /// Connections still in their handshake, oldest first.
    pending: VecDeque<Arc<Evict>>,
    /// Connections past their handshake.
    established: Vec<Arc<Evict>>,
    /// Connections closed or refused for the cap in the current burst.
    burst: u64,
    /// When a per-peer refusal was last logged.
    peer_logged: Option<Instant>,
}

/// A flag that closes a connection from outside it.
#[derive(Debug)]
struct Evict {
    closed: AtomicBool,
    /// Past its handshake (moved from `pending` to `established`).
    settled: AtomicBool,
    waker: AtomicWaker,
    /// When the peer last sent something, in milliseconds since the
    /// limiter's epoch.
    last_received: AtomicU64,
    peer: PeerKey,
    /// Counted per peer and against the unprivileged places.
    counted: bool,
}

impl Evict {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// Which connections may give their place to a new one.
#[derive(Clone, Copy)]
enum Among {
    All,
    Unprivileged,
    Peer(PeerKey),
}

impl Among {
    fn matches(self, e: &Evict) -> bool {
        match self {
            Among::All => true,
            Among::Unprivileged => e.counted,
            Among::Peer(p) => e.counted && e.peer == p,
        }
    }
}

impl Limiter {
    /// The limits of `config` for the listener named `listener` in the log,
    /// for connections that finish their handshake with [`Settle::settle`].
    pub fn new(listener: &'static str, config: &ServerConfig) -> Limiter {
        Limiter::build(listener, config, Protocol::Other, None)
    }

    /// The limits of `config` for the gRPC socket (HTTP/2): per uid, with
    /// `server.reserved_connections` kept for root, casmand's own user and
    /// `admin_gid`.
    pub fn socket(config: &ServerConfig, admin_gid: Option<u32>) -> Limiter {
        Limiter::build("socket", config, Protocol::Http2, admin_gid)
    }

    fn build(
        listener: &'static str,
        config: &ServerConfig,
        protocol: Protocol,
        admin_gid: Option<u32>,
    ) -> Limiter {
        let max = config.max_connections.max(1);
        let reserved = match protocol {
            Protocol::Http2 => config.reserved_connections.min(max - 1),
            Protocol::Other => 0,
        };
        Limiter {
            shared: Arc::new(Shared {
                listener,
                max,
                per_peer: config.max_connections_per_peer.max(1),
                reserved,
                handshake: config.handshake_timeout,
                idle: config.idle_timeout,
                header: config.header_timeout,
                body: config.body_timeout,
                protocol,
                admin_gid,
                epoch: Instant::now(),
                state: Mutex::default(),
            }),
        }
    }

    /// `server.handshake_timeout`, for handshakes above the byte stream (TLS).
    pub fn handshake_timeout(&self) -> Duration {
        self.shared.handshake
    }

    /// `server.header_timeout`, for HTTP/1 request heads (the web listener).
    pub fn header_timeout(&self) -> Duration {
        self.shared.header
    }

    /// `server.body_timeout`, for HTTP/1 request bodies (the web listener).
    pub fn body_timeout(&self) -> Duration {
        self.shared.body
    }

    /// Admits `io` from an unknown peer (see [`Limiter::admit_from`]).
    pub fn admit<S>(&self, io: S) -> Option<Limited<S>> {
        self.admit_from(io, PeerKey::Unknown, true).ok()
    }

    /// Admits a socket connection, its peer known from its credentials;
    /// a refused one is told why (an HTTP/2 GOAWAY) and closed.
    pub fn admit_unix(&self, stream: tokio::net::UnixStream) -> Option<Limited<tokio::net::UnixStream>> {
        let (peer, privileged) = match stream.peer_cred() {
            Ok(cred) => {
                let privileged = cred.uid() == 0
                    || cred.uid() == nix::unistd::geteuid().as_raw()
                    || self.shared.admin_gid == Some(cred.gid());
                (PeerKey::Uid(cred.uid()), privileged)
            }
            Err(_) => (PeerKey::Unknown, false),
        };
        match self.admit_from(stream, peer, privileged) {
            Ok(limited) => Some(limited),
            Err((stream, refused)) => {
                tokio::spawn(refuse_http2(stream, refused));
                None
            }
        }
    }

    /// Admits `io` as a new connection from `peer` (`privileged`: not capped
    /// per peer, may take the reserved places), or gives it back with the
    /// reason when it must be closed.
    pub fn admit_from<S>(&self, io: S, peer: PeerKey, privileged: bool) -> Result<Limited<S>, (S, Refused)> {
        let shared = &self.shared;
        let counted = !privileged;
        let mut state = shared.lock();
        let per_peer = if counted && peer != PeerKey::Unknown {
            state.per_peer.get(&peer).copied().unwrap_or(0)
        } else {
            0
        };
        let among = if per_peer >= shared.per_peer {
            let now = Instant::now();
            if state.peer_logged.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                state.peer_logged = Some(now);
                tracing::warn!(
                    listener = shared.listener,
                    peer = %peer,
                    max_connections_per_peer = shared.per_peer,
                    "too many connections from {peer} (server.max_connections_per_peer = {}): closing its \
                     oldest connections that have not finished their handshake, and new ones when none is left",
                    shared.per_peer
                );
            }
            Some(Among::Peer(peer))
        } else if counted && state.unprivileged >= shared.max - shared.reserved {
            shared.log_burst(&mut state);
            Some(Among::Unprivileged)
        } else if state.open >= shared.max {
            shared.log_burst(&mut state);
            Some(Among::All)
        } else {
            None
        };
        if let Some(among) = among {
            let replaced = state
                .pending
                .iter()
                .position(|e| among.matches(e))
                .and_then(|i| state.pending.remove(i))
                .or_else(|| shared.take_stalled(&mut state, among));
            let Some(replaced) = replaced else {
                let why = match among {
                    Among::Peer(_) => format!(
                        "too many connections from {peer} (server.max_connections_per_peer = {})",
                        shared.per_peer
                    ),
                    Among::Unprivileged if shared.reserved > 0 => format!(
                        "too many connections (server.max_connections = {}, of which server.reserved_connections = {} \
                         are kept for root and the admin group)",
                        shared.max, shared.reserved
                    ),
                    Among::Unprivileged | Among::All => {
                        format!("too many connections (server.max_connections = {})", shared.max)
                    }
                };
                drop(state);
                return Err((io, Refused(why)));
            };
            replaced.close();
            State::release(&mut state, &replaced);
        }
        state.open += 1;
        if counted {
            state.unprivileged += 1;
            if peer != PeerKey::Unknown {
                *state.per_peer.entry(peer).or_insert(0) += 1;
            }
        }
        let evict = Arc::new(Evict {
            closed: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            last_received: AtomicU64::new(shared.millis_now()),
            peer,
            counted,
        });
        state.pending.push_back(evict.clone());
        drop(state);
        let now = Instant::now();
        Ok(Limited {
            io,
            shared: shared.clone(),
            evict,
            received: 0,
            frames: (shared.protocol == Protocol::Http2).then(Frames::default),
            frame_started: None,
            last_progress: now,
            deadline: Box::pin(tokio::time::sleep_until(now + shared.handshake)),
        })
    }
}

/// Tells a refused HTTP/2 client why (the server's SETTINGS, then a GOAWAY
/// whose debug data casmanctl shows), then closes; bounded in time.
async fn refuse_http2(mut stream: tokio::net::UnixStream, refused: Refused) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let message = format!("casmand refused the connection: {}", refused.0);
    let mut out = frame_head(0, 4, 0);
    let mut goaway = vec![0; 8];
    // ENHANCE_YOUR_CALM
    goaway[4..8].copy_from_slice(&0xb_u32.to_be_bytes());
    goaway.extend_from_slice(message.as_bytes());
    out.extend_from_slice(&frame_head(goaway.len(), 7, 0));
    out.extend_from_slice(&goaway);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&out).await?;
        let _ = stream.shutdown().await;
        // Read what the client sent until it closes, so that it reads the
        // GOAWAY rather than a broken pipe.
        let mut buf = [0; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        io::Result::Ok(())
    })
    .await;
}

/// An HTTP/2 frame header.
fn frame_head(len: usize, kind: u8, stream: u32) -> Vec<u8> {
    let len = u32::try_from(len).unwrap_or(0).to_be_bytes();
    let mut head = vec![len[1], len[2], len[3], kind, 0];
    head.extend_from_slice(&stream.to_be_bytes());
    head
}

/// Where an HTTP/2 client's byte stream is: in the preface, in a frame
/// header, in a frame's payload, or between frames.
#[derive(Debug, Clone)]
struct Frames {
    preface_left: usize,
    head: [u8; 9],
    head_len: usize,
    payload_left: usize,
    /// Whole frames received (the preface not counted).
    complete: u64,
}

impl Default for Frames {
    fn default() -> Self {
        Frames { preface_left: HANDSHAKE_BYTES, head: [0; 9], head_len: 0, payload_left: 0, complete: 0 }
    }
}

impl Frames {
    /// Whether a frame (or the preface) has begun and not ended.
    fn partial(&self) -> bool {
        self.preface_left > 0 && self.preface_left < HANDSHAKE_BYTES
            || self.head_len > 0
            || self.payload_left > 0
    }

    /// Follows `data`; whether a frame or the preface ended in it.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        let mut ended = false;
        while !data.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(data.len());
                self.preface_left -= n;
                data = &data[n..];
                ended |= self.preface_left == 0;
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(data.len());
                self.payload_left -= n;
                data = &data[n..];
                if self.payload_left == 0 {
                    self.complete += 1;
                    ended = true;
                }
            } else {
                let n = (9 - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
                self.head_len += n;
                data = &data[n..];
                if self.head_len == 9 {
                    self.head_len = 0;
                    self.payload_left = usize::from(self.head[0]) << 16
                        | usize::from(self.head[1]) << 8
                        | usize::from(self.head[2]);
                    if self.payload_left == 0 {
                        self.complete += 1;
                    }
                    ended = true;
                }
            }
        }
        ended
    }
}

/// Marks a connection as past its handshake from above the byte stream (the
/// web listener, once a whole request head has arrived).
#[derive(Debug, Clone)]
pub struct Settle {
    shared: Arc<Shared>,
    evict: Arc<Evict>,
}

impl Settle {
    /// Moves the connection from those in their handshake (the first to give
    /// their place to new ones) to the established.
    pub fn settle(&self) {
        if self.evict.settled.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut state = self.shared.lock();
        Shared::remove_pending(&mut state, &self.evict);
        if !self.evict.closed.load(Ordering::SeqCst) {
            state.established.push(self.evict.clone());
        }
    }
}

impl State {
    /// Frees the place of `evict` (closed for a newer one, or dropped).
    fn release(state: &mut State, evict: &Evict) {
        state.open = state.open.saturating_sub(1);
        if evict.counted {
            state.unprivileged = state.unprivileged.saturating_sub(1);
            if let Some(n) = state.per_peer.get_mut(&evict.peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.per_peer.remove(&evict.peer);
                }
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log_burst(&self, state: &mut State) {
        if state.burst == 0 {
            tracing::warn!(
                listener = self.listener,
                max_connections = self.max,
                "too many connections (server.max_connections = {}): closing the oldest connections \
                 that have not finished their handshake, and new ones when none is left",
                self.max
            );
        }
        state.burst += 1;
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

    /// The established connection among `among` that has sent nothing for
    /// the longest, taken out of the state, if that is longer than the
    /// handshake timeout.
    fn take_stalled(&self, state: &mut State, among: Among) -> Option<Arc<Evict>> {
        let (i, last) = state
            .established
            .iter()
            .enumerate()
            .filter(|(_, e)| among.matches(e))
            .map(|(i, e)| (i, e.last_received.load(Ordering::Relaxed)))
            .min_by_key(|(_, last)| *last)?;
        let silent = Duration::from_millis(self.millis_now().saturating_sub(last));
        (silent > self.handshake).then(|| state.established.swap_remove(i))
    }
}

/// A connection admitted by a [`Limiter`]: it fails with `TimedOut` past its
/// handshake or idle timeout (or, on the socket, when a frame is too slow to
/// arrive), and with `ConnectionAborted` when a newer connection took its
/// place; dropping it frees its place.
#[derive(Debug)]
pub struct Limited<S> {
    io: S,
    shared: Arc<Shared>,
    evict: Arc<Evict>,
    /// Bytes received, counted up to [`HANDSHAKE_BYTES`].
    received: usize,
    /// The HTTP/2 framing followed (on the socket).
    frames: Option<Frames>,
    /// When the frame now arriving began.
    frame_started: Option<Instant>,
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Limited<S> {
    /// The connection underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// A handle that marks this connection past its handshake.
    pub fn settler(&self) -> Settle {
        Settle { shared: self.shared.clone(), evict: self.evict.clone() }
    }

    /// Past the first bytes (and, on the socket, the first frame).
    fn handshaken(&self) -> bool {
        self.received >= HANDSHAKE_BYTES && self.frames.as_ref().is_none_or(|f| f.complete > 0)
    }

    fn check_evicted(&self, cx: &Context<'_>) -> io::Result<()> {
        self.evict.waker.register(cx.waker());
        if self.evict.closed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                match self.evict.counted && self.evict.peer != PeerKey::Unknown {
                    true => format!(
                        "closed for a newer connection: server.max_connections = {}, server.max_connections_per_peer = {}",
                        self.shared.max, self.shared.per_peer
                    ),
                    false => {
                        format!("closed for a newer connection: server.max_connections = {}", self.shared.max)
                    }
                },
            ));
        }
        Ok(())
    }

    fn progress(&mut self, data: &[u8]) {
        let now = Instant::now();
        self.received = self.received.saturating_add(data.len()).min(HANDSHAKE_BYTES);
        if let Some(frames) = &mut self.frames {
            let was_partial = frames.partial();
            let ended = frames.feed(data);
            if !frames.partial() {
                self.frame_started = None;
            } else if ended || !was_partial {
                self.frame_started = Some(now);
                let due = now + self.shared.handshake;
                if due < self.deadline.deadline() {
                    self.deadline.as_mut().reset(due);
                }
            }
            if self.handshaken() {
                self.settle_once();
            }
        }
        self.evict.last_received.store(self.shared.millis_now(), Ordering::Relaxed);
        self.last_progress = now;
    }

    fn settle_once(&self) {
        if !self.evict.settled.load(Ordering::Relaxed) {
            self.settler().settle();
        }
    }

    /// On a pending read or write: fails once a deadline has passed, else
    /// makes sure the task is woken at the next one.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let now = Instant::now();
            if !self.handshaken() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no handshake within server.handshake_timeout ({:?})", self.shared.handshake),
                ));
            }
            let frame_due = self.frame_started.map(|t| t + self.shared.handshake);
            if frame_due.is_some_and(|due| due <= now) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "too slow: a frame took longer than server.handshake_timeout ({:?}) to arrive",
                        self.shared.handshake
                    ),
                ));
            }
            let idle_due = self.last_progress + self.shared.idle;
            if idle_due <= now {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for server.idle_timeout ({:?})", self.shared.idle),
                ));
            }
            let next = frame_due.map_or(idle_due, |due| due.min(idle_due));
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
            State::release(&mut state, &self.evict);
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
                if buf.filled().len() > before {
                    this.progress(&buf.filled()[before..]);
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

    /// A preface's length and an empty frame: past the handshake.
    const HELLO: usize = HANDSHAKE_BYTES + 9;

    fn limiter(max: usize) -> Limiter {
        let config = ServerConfig {
            max_connections: max,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        Limiter::socket(&config, None)
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
        b_peer.write_all(&[0; HELLO]).await.unwrap();
        let mut buf = [0; HELLO];
        b.read_exact(&mut buf).await.unwrap();
        let _c = limits.admit(c).unwrap();
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
        assert!(err.to_string().contains("server.max_connections = 2"), "{err}");
        // c is the only one in handshake: d replaces it and finishes its
        // handshake. With none left in handshake, the next is refused.
        let mut d = limits.admit(d).unwrap();
        d_peer.write_all(&[0; HELLO]).await.unwrap();
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
        let mut buf = [0; HELLO];
        for (conn, peer) in [(&mut a, &mut a_peer), (&mut b, &mut b_peer)] {
            peer.write_all(&[0; HELLO]).await.unwrap();
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
        b_peer.write_all(&[0; HELLO]).await.unwrap();
        b.read_exact(&mut [0; HELLO]).await.unwrap();
        let started = Instant::now();
        let err = b.read(&mut buf).await.unwrap_err();
        assert!(err.to_string().contains("server.idle_timeout"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    fn limits(max: usize, per_peer: usize, reserved: usize) -> ServerConfig {
        ServerConfig {
            max_connections: max,
            max_connections_per_peer: per_peer,
            reserved_connections: reserved,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        }
    }

    fn addr(last: u8) -> PeerKey {
        PeerKey::Addr(IpAddr::from([127, 0, 0, last]))
    }

    #[tokio::test(start_paused = true)]
    async fn one_peer_past_its_cap_crowds_out_only_itself() {
        let limits = Limiter::new("test", &limits(8, 2, 0));
        let (a, _a) = tokio::io::duplex(64);
        let (b, _b) = tokio::io::duplex(64);
        let (c, _c) = tokio::io::duplex(64);
        let mut a = limits.admit_from(a, addr(2), false).unwrap();
        let b = limits.admit_from(b, addr(2), false).unwrap();
        // A third from the same address takes the place of its oldest in
        // handshake.
        let c = limits.admit_from(c, addr(2), false).unwrap();
        let err = a.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
        // Both past their first request: the next from that address is
        // refused, while another address still gets in.
        b.settler().settle();
        c.settler().settle();
        let (d, _d) = tokio::io::duplex(64);
        let (_, why) = limits.admit_from(d, addr(2), false).unwrap_err();
        assert!(why.0.contains("from 127.0.0.2 (server.max_connections_per_peer = 2)"), "{why:?}");
        let (e, _e) = tokio::io::duplex(64);
        assert!(limits.admit_from(e, addr(1), false).is_ok());
        drop(b);
        let (f, _f) = tokio::io::duplex(64);
        assert!(limits.admit_from(f, addr(2), false).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn places_are_kept_for_root_and_the_admin_group_on_the_socket() {
        let limits = Limiter::socket(&limits(4, 10, 2), None);
        let mut users = Vec::new();
        for uid in [1000, 1001] {
            let (s, peer) = tokio::io::duplex(64);
            let s = limits.admit_from(s, PeerKey::Uid(uid), false).unwrap();
            s.settler().settle();
            users.push((s, peer));
        }
        let (s, _s) = tokio::io::duplex(64);
        let (_, why) = limits.admit_from(s, PeerKey::Uid(1002), false).unwrap_err();
        assert!(why.0.contains("server.reserved_connections = 2"), "{why:?}");
        let (r1, _r1) = tokio::io::duplex(64);
        let (r2, _r2) = tokio::io::duplex(64);
        let _r1 = limits.admit_from(r1, PeerKey::Uid(0), true).unwrap();
        let _r2 = limits.admit_from(r2, PeerKey::Uid(0), true).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn on_the_socket_a_frame_trickled_byte_by_byte_times_out() {
        let limits = Limiter::socket(&limits(8, 8, 0), None);
        let (s, mut peer) = tokio::io::duplex(1024);
        let mut s = limits.admit_from(s, PeerKey::Uid(1000), false).unwrap();
        // The preface and an empty SETTINGS frame: past the handshake.
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        peer.write_all(&hello).await.unwrap();
        let mut buf = [0; 64];
        let mut got = 0;
        while got < hello.len() {
            got += s.read(&mut buf).await.unwrap();
        }
        assert!(s.evict.settled.load(Ordering::SeqCst));
        // Then a frame header, one byte every 3 s.
        let trickle = tokio::spawn(async move {
            for _ in 0..9 {
                if peer.write_all(&[0]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            peer
        });
        let started = Instant::now();
        let err = loop {
            match s.read(&mut buf).await {
                Ok(n) => assert!(n > 0),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("too slow"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        drop(s);
        let _ = trickle.await;
    }

    #[test]
    fn frames_are_followed_across_reads() {
        let mut f = Frames::default();
        assert!(!f.partial());
        assert!(!f.feed(b"PRI * HTTP/2.0"));
        assert!(f.partial());
        assert!(f.feed(b"\r\n\r\nSM\r\n\r\n\0\0"));
        assert!(f.partial());
        assert!(f.feed(&[2, 6, 0, 0, 0, 0, 0, 1]));
        assert_eq!(f.complete, 0);
        assert!(f.feed(&[9]));
        assert_eq!(f.complete, 1);
        assert!(!f.partial());
    }
}

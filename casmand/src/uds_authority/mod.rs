//! Lets gRPC clients that send the socket path as `:authority` talk to casmand.
//!
//! grpcio (C core since 1.57: the percent-encoded path, `%2Frun%2Fcasman%2F...`),
//! grpc-java, Bazel and kubelet put the Unix socket's path in the HTTP/2
//! `:authority` pseudo-header. That is not a valid authority, and the HTTP/2
//! server under tonic (h2) resets every such stream with PROTOCOL_ERROR while
//! it decodes the HEADERS frame, before any tonic or tower layer could look
//! at the request (hyperium/h2#442; the fix hyperium/h2#487 has been open
//! since 2020, and h2, hyper and tonic offer no option to relax the check).
//!
//! On a Unix socket the authority carries no information (the path already
//! names the peer), so casmand wraps each accepted connection in
//! [`AuthorityFix`], which reads the client's bytes before h2 does:
//!
//! * the connection preface and every frame other than HEADERS/CONTINUATION
//!   pass through untouched (DATA is streamed, never buffered whole);
//! * the first request's header block is decoded (HPACK, following the
//!   client's dynamic table). If its `:authority` is valid (or absent), which
//!   is what casmanctl, grpcurl and grpc-go send, the connection becomes a
//!   plain pass-through and nothing else is parsed;
//! * otherwise every header block of the connection is decoded and
//!   re-encoded as literals without indexing, with an invalid `:authority`
//!   replaced by `localhost`. Literals without indexing leave h2's decoder
//!   table empty, so it can never disagree with the client's table, whose
//!   references this module resolves itself.
//!
//! The alternatives were worse: a fork of h2 with #487 applied (a patched
//! dependency to carry forever), or asking every lab script to set
//! `grpc.default_authority` (the issue this fixes).

pub mod hpack;
mod huffman_table;

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// What replaces an invalid `:authority`.
pub const REPLACEMENT: &[u8] = b"localhost";

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PREFACE_LEN: usize = PREFACE.len();
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// SETTINGS_MAX_FRAME_SIZE's default, which h2 announces unchanged: no
/// frame this module writes is larger.
const MAX_FRAME: usize = 16_384;
/// A header block larger than this is refused (h2 itself accepts 16 KiB of
/// decoded headers by default).
const MAX_BLOCK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Until the first header block is seen.
    Deciding,
    /// The client sends invalid authorities: every block is re-encoded.
    Rewriting,
    /// Nothing to fix: bytes go to h2 as they come.
    Passthrough,
}

/// A header block being collected across HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct Pending {
    stream: [u8; 4],
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
    /// The frames as received, for a connection that needs no rewrite.
    raw: Vec<u8>,
}

/// An accepted connection whose incoming HTTP/2 header blocks get a valid
/// `:authority` (see the module documentation).
#[derive(Debug)]
pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    decoder: hpack::Decoder,
    /// Read from `inner`, not yet processed.
    input: Vec<u8>,
    /// Processed, not yet handed to h2.
    output: Vec<u8>,
    output_pos: usize,
    preface_left: usize,
    /// Bytes of the current non-header frame's payload still to pass through.
    payload_left: usize,
    pending: Option<Pending>,
    eof: bool,
    rewrites: u64,
}

impl<S> AuthorityFix<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            mode: Mode::Deciding,
            decoder: hpack::Decoder::default(),
            input: Vec::new(),
            output: Vec::new(),
            output_pos: 0,
            preface_left: PREFACE_LEN,
            payload_left: 0,
            pending: None,
            eof: false,
            rewrites: 0,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Moves everything buffered to the output and stops parsing: used once
    /// the connection needs no rewrite, and for input h2 must judge itself
    /// (malformed framing, which it answers with a connection error).
    fn give_up_parsing(&mut self) {
        if let Some(p) = self.pending.take() {
            self.output.extend_from_slice(&p.raw);
        }
        let input = std::mem::take(&mut self.input);
        self.output.extend_from_slice(&input);
        self.mode = Mode::Passthrough;
    }

    /// Processes as much buffered input as possible.
    fn process(&mut self) -> io::Result<()> {
        loop {
            if self.mode == Mode::Passthrough {
                let input = std::mem::take(&mut self.input);
                self.output.extend_from_slice(&input);
                return Ok(());
            }
            if self.preface_left > 0 {
                if self.input.len() < PREFACE.len() {
                    if !PREFACE.starts_with(&self.input) {
                        // Not HTTP/2 (h2 answers it): nothing to parse.
                        self.give_up_parsing();
                    }
                    return Ok(());
                }
                let head: Vec<u8> = self.input.drain(..PREFACE.len()).collect();
                self.emit(&head);
                self.preface_left = 0;
                if head != PREFACE {
                    self.give_up_parsing();
                }
                continue;
            }
            if self.payload_left > 0 {
                let n = self.payload_left.min(self.input.len());
                if n == 0 {
                    return Ok(());
                }
                let body: Vec<u8> = self.input.drain(..n).collect();
                self.emit(&body);
                self.payload_left -= n;
                continue;
            }
            if self.input.len() < FRAME_HEADER_LEN {
                return Ok(());
            }
            let len = usize::from(self.input[0]) << 16
                | usize::from(self.input[1]) << 8
                | usize::from(self.input[2]);
            let kind = self.input[3];
            if kind != HEADERS && kind != CONTINUATION {
                if self.pending.is_some() {
                    // A frame inside a header block: h2 answers it.
                    self.give_up_parsing();
                    continue;
                }
                let header: Vec<u8> = self.input.drain(..FRAME_HEADER_LEN).collect();
                self.emit(&header);
                self.payload_left = len;
                continue;
            }
            if len > MAX_FRAME || self.input.len() < FRAME_HEADER_LEN + len {
                if len > MAX_FRAME {
                    self.give_up_parsing();
                    continue;
                }
                return Ok(());
            }
            let frame: Vec<u8> = self.input.drain(..FRAME_HEADER_LEN + len).collect();
            if !self.header_frame(frame)? {
                self.give_up_parsing();
            }
        }
    }

    /// Takes one HEADERS or CONTINUATION frame; false when the framing is
    /// wrong (h2 will say so).
    fn header_frame(&mut self, frame: Vec<u8>) -> io::Result<bool> {
        let (kind, flags) = (frame[3], frame[4]);
        let stream: [u8; 4] = [frame[5], frame[6], frame[7], frame[8]];
        let payload = &frame[FRAME_HEADER_LEN..];
        let fragment = if kind == HEADERS {
            if self.pending.is_some() {
                return Ok(false);
            }
            let mut start = 0;
            let mut pad = 0;
            if flags & PADDED != 0 {
                let Some(&p) = payload.first() else { return Ok(false) };
                pad = usize::from(p);
                start = 1;
            }
            let mut priority = None;
            if flags & PRIORITY != 0 {
                let Some(p) = payload.get(start..start + 5) else { return Ok(false) };
                let mut bytes = [0; 5];
                bytes.copy_from_slice(p);
                priority = Some(bytes);
                start += 5;
            }
            let Some(fragment) = payload.len().checked_sub(pad).and_then(|end| payload.get(start..end))
            else {
                return Ok(false);
            };
            let fragment = fragment.to_vec();
            self.pending = Some(Pending {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority,
                block: Vec::new(),
                raw: Vec::new(),
            });
            fragment
        } else {
            match &self.pending {
                Some(p) if p.stream == stream => payload.to_vec(),
                _ => return Ok(false),
            }
        };
        let Some(pending) = self.pending.as_mut() else { return Ok(false) };
        pending.block.extend_from_slice(&fragment);
        pending.raw.extend_from_slice(&frame);
        if pending.block.len() > MAX_BLOCK {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "HTTP/2 header block too large"));
        }
        if flags & END_HEADERS == 0 {
            return Ok(true);
        }
        let Some(pending) = self.pending.take() else { return Ok(false) };
        let mut fields = match self.decoder.decode(&pending.block) {
            Ok(fields) => fields,
            Err(e) if self.mode == Mode::Deciding => {
                // h2 reports the compression error itself.
                tracing::debug!(error = %e, "undecodable first header block; passing it to h2 as is");
                self.pending = Some(pending);
                return Ok(false);
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        };
        let mut fixed = false;
        for f in fields.iter_mut().filter(|f| f.name == b":authority") {
            if http::uri::Authority::try_from(f.value.as_slice()).is_err() {
                if self.rewrites == 0 {
                    tracing::debug!(
                        authority = %String::from_utf8_lossy(&f.value),
                        "a Unix-socket client sent an invalid :authority; serving it as localhost"
                    );
                }
                f.value = REPLACEMENT.to_vec();
                fixed = true;
            }
        }
        if self.mode == Mode::Deciding && !fixed {
            self.mode = Mode::Passthrough;
            self.emit(&pending.raw);
            return Ok(true);
        }
        self.mode = Mode::Rewriting;
        if fixed {
            self.rewrites += 1;
        }
        let block = hpack::encode(&fields);
        self.write_headers(&pending, &block);
        Ok(true)
    }

    /// Writes a header block as one HEADERS frame and as many CONTINUATION
    /// frames as the frame size limit needs.
    fn write_headers(&mut self, pending: &Pending, block: &[u8]) {
        let mut payload = Vec::with_capacity(block.len() + 5);
        if let Some(p) = pending.priority {
            payload.extend_from_slice(&p);
        }
        payload.extend_from_slice(block);
        let mut chunks = payload.chunks(MAX_FRAME).peekable();
        let mut first = true;
        // An empty block still needs its HEADERS frame.
        let empty: &[u8] = &[];
        let mut next = chunks.next().unwrap_or(empty);
        loop {
            let last = chunks.peek().is_none();
            let mut flags = if last { END_HEADERS } else { 0 };
            let kind = if first {
                if pending.end_stream {
                    flags |= END_STREAM;
                }
                if pending.priority.is_some() {
                    flags |= PRIORITY;
                }
                HEADERS
            } else {
                CONTINUATION
            };
            let len = next.len();
            self.output.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
            self.output.extend_from_slice(&pending.stream);
            self.output.extend_from_slice(next);
            first = false;
            match chunks.next() {
                Some(c) => next = c,
                None => break,
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.output_pos < this.output.len() {
                let n = (this.output.len() - this.output_pos).min(buf.remaining());
                buf.put_slice(&this.output[this.output_pos..this.output_pos + n]);
                this.output_pos += n;
                if this.output_pos == this.output.len() {
                    this.output.clear();
                    this.output_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.mode == Mode::Passthrough && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.eof {
                // Whatever is left is an incomplete frame: h2 judges it.
                this.give_up_parsing();
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    if read.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.input.extend_from_slice(read.filled());
                        this.process()?;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;

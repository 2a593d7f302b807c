//! Follows the HTTP/1.1 request framing of a connection as hyper reads it, to see what hyper's parser hides: a `Content-Length` beside a `Transfer-Encoding`.
//!
//! hyper takes such a request by its `Transfer-Encoding` and drops the
//! `Content-Length` from the headers it hands over, so the service cannot
//! tell that both were sent. RFC 9112 §6.3 calls the pair a likely request
//! smuggling attempt; we refuse it. The watcher sees every byte hyper reads,
//! walks the same framing (heads, fixed-length and chunked bodies), and
//! queues, for each request head, whether it carried both headers.
//!
//! When it cannot follow (a line too long, a framing it does not know, an
//! upgrade, too many heads read ahead), it stops watching and says so; the
//! server then ends the connection after its current answer, so no request
//! it could not check is ever served. It only ever reads: a mistake here can
//! close a connection early, never change what hyper parses.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longer lines are not followed (hyper's whole head buffer is ~400 KiB;
/// real header lines are far shorter).
const MAX_LINE: usize = 16 * 1024;

/// Heads read ahead of hyper (pipelining) that the watcher keeps; past it,
/// it stops watching. Each costs a few bytes.
const MAX_QUEUED: usize = 1024;

/// What one request head declared about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Both `Content-Length` and `Transfer-Encoding` were present.
    pub(crate) length_and_encoding: bool,
    /// Hash of the method and request target, to check that this head is
    /// the one hyper handed over.
    key: u64,
}

/// The server's end: what the watcher learned, one head per request.
#[derive(Clone)]
pub(crate) struct Heads {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    queue: VecDeque<Head>,
    /// The watcher stopped: heads after those queued are unknown.
    lost: bool,
}

impl Heads {
    /// The head of the request hyper just parsed, with `method` and
    /// `target`; `None` when the watcher lost track (or its head does not
    /// match), in which case the connection must end after this answer.
    pub(crate) fn next(&self, method: &str, target: &str) -> Option<Head> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let head = shared.queue.pop_front();
        match head {
            Some(head) if head.key == key(method.as_bytes(), target.as_bytes()) => Some(head),
            // Out of step with hyper: trust nothing it queued.
            Some(_) => {
                shared.lost = true;
                shared.queue.clear();
                None
            }
            None => None,
        }
    }

    /// Whether the watcher has stopped following the connection.
    pub(crate) fn is_lost(&self) -> bool {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lost
    }
}

fn key(method: &[u8], target: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    method.hash(&mut hasher);
    target.hash(&mut hasher);
    hasher.finish()
}

/// A stream whose incoming bytes are followed as HTTP/1.1 requests.
pub(crate) struct Watched<T> {
    io: T,
    framing: Framing,
    shared: Arc<Mutex<Shared>>,
}

/// Wraps `io`; the [`Heads`] half tells the server what each head held.
pub(crate) fn watch<T>(io: T) -> (Watched<T>, Heads) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (
        Watched {
            io,
            framing: Framing::default(),
            shared: shared.clone(),
        },
        Heads { shared },
    )
}

impl<T> Watched<T> {
    fn saw(&mut self, bytes: &[u8]) {
        if matches!(self.framing.state, State::Off) {
            return;
        }
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.lost {
            self.framing.state = State::Off;
            return;
        }
        let mut heads = Vec::new();
        let followed = self.framing.feed(bytes, &mut heads);
        shared.queue.extend(heads);
        if !followed || shared.queue.len() > MAX_QUEUED {
            shared.lost = true;
            self.framing.state = State::Off;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.saw(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Where in the request stream the next byte falls.
#[derive(Debug, Default)]
struct Framing {
    state: State,
    /// The line being read, in the line-based states.
    line: Vec<u8>,
    head: HeadSoFar,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    /// Request line and headers, line by line.
    #[default]
    Head,
    /// A body of known length: bytes left.
    Fixed(u64),
    /// A chunk-size line.
    ChunkSize,
    /// Chunk data: bytes left.
    ChunkData(u64),
    /// The line break after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// Not watching any more: upgraded, or lost track.
    Off,
}

/// What the head being read has shown so far.
#[derive(Debug, Default)]
struct HeadSoFar {
    /// The request line has been read (empty lines before it are skipped,
    /// as httparse does).
    started: bool,
    key: u64,
    http10: bool,
    upgrade: bool,
    content_length: Option<u64>,
    /// Present, and whether its last line ends with `chunked` (hyper's rule).
    transfer_encoding: Option<bool>,
}

impl Framing {
    /// Follows `bytes`; the heads completed are pushed to `heads`. `false`
    /// once it cannot follow any more.
    fn feed(&mut self, mut bytes: &[u8], heads: &mut Vec<Head>) -> bool {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return false,
                State::Fixed(left) | State::ChunkData(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = &bytes[take..];
                    let left = left - take as u64;
                    if left == 0 {
                        self.state = match self.state {
                            State::ChunkData(_) => State::ChunkEnd,
                            _ => State::Head,
                        };
                    } else {
                        self.state = match self.state {
                            State::ChunkData(_) => State::ChunkData(left),
                            _ => State::Fixed(left),
                        };
                    }
                }
                State::Head | State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(bytes);
                        if self.line.len() > MAX_LINE {
                            self.state = State::Off;
                        }
                        return !matches!(self.state, State::Off);
                    };
                    let (piece, rest) = (&bytes[..end], &bytes[end + 1..]);
                    bytes = rest;
                    // A line read whole is taken where it lies; only one
                    // split across reads is copied.
                    let mut held = std::mem::take(&mut self.line);
                    let line = if held.is_empty() {
                        piece
                    } else {
                        held.extend_from_slice(piece);
                        &held[..]
                    };
                    if line.len() > MAX_LINE {
                        self.state = State::Off;
                        return false;
                    }
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    self.state = self.on_line(line, heads);
                    held.clear();
                    self.line = held;
                }
            }
        }
        !matches!(self.state, State::Off)
    }

    /// One complete line (without its line break) in a line-based state.
    fn on_line(&mut self, line: &[u8], heads: &mut Vec<Head>) -> State {
        match self.state {
            State::Head if !self.head.started => {
                if line.is_empty() {
                    return State::Head;
                }
                let mut parts = line.split(|&b| b == b' ');
                let (Some(method), Some(target), Some(version)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return State::Off;
                };
                self.head = HeadSoFar {
                    started: true,
                    key: key(method, target),
                    http10: version == b"HTTP/1.0",
                    upgrade: method == b"CONNECT",
                    ..HeadSoFar::default()
                };
                State::Head
            }
            State::Head if line.is_empty() => self.end_of_head(heads),
            State::Head => self.on_header(line),
            State::ChunkSize => chunk_size(line).map_or(State::Off, |size| match size {
                0 => State::Trailers,
                n => State::ChunkData(n),
            }),
            State::ChunkEnd if line.is_empty() => State::ChunkSize,
            State::Trailers if line.is_empty() => State::Head,
            State::Trailers => State::Trailers,
            _ => State::Off,
        }
    }

    fn on_header(&mut self, line: &[u8]) -> State {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Not a header hyper would take: it answers 400 and closes.
            return State::Off;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(length) = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                return State::Off;
            };
            if self.head.content_length.is_some_and(|seen| seen != length) {
                return State::Off;
            }
            self.head.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            self.head.transfer_encoding = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.head.upgrade = true;
        }
        State::Head
    }

    /// The empty line after the headers: the head is complete.
    fn end_of_head(&mut self, heads: &mut Vec<Head>) -> State {
        let head = std::mem::take(&mut self.head);
        heads.push(Head {
            length_and_encoding: head.content_length.is_some() && head.transfer_encoding.is_some(),
            key: head.key,
        });
        // NB: after an upgrade request the bytes are the new protocol's if
        // the server agrees; if it refuses, it closes the connection, so
        // nothing after this head is ever served unwatched.
        if head.upgrade {
            return State::Off;
        }
        match (head.transfer_encoding, head.content_length) {
            // hyper refuses these (400) and closes.
            (Some(_), _) if head.http10 => State::Off,
            (Some(false), _) => State::Off,
            (Some(true), _) => State::ChunkSize,
            (None, Some(0) | None) => State::Head,
            (None, Some(length)) => State::Fixed(length),
        }
    }
}

/// The size in a chunk-size line: hex digits, then optional whitespace and
/// extensions after `;`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 16 {
        return None;
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest.starts_with(b";")) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes; the heads seen and whether
    /// the framing was followed to the end.
    fn follow(wire: &[u8], step: usize) -> (Vec<bool>, bool) {
        let mut framing = Framing::default();
        let mut heads = Vec::new();
        let mut followed = true;
        for piece in wire.chunks(step) {
            followed = framing.feed(piece, &mut heads);
        }
        (
            heads.iter().map(|h| h.length_and_encoding).collect(),
            followed,
        )
    }

    const PIPELINE: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n\r\nX: y\
        POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n\
        GET /b HTTP/1.1\r\nHost: h\r\n\r\n\
        \r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n";

    #[test]
    fn pipelined_heads_are_found_across_bodies_in_any_split() {
        for step in [1, 2, 3, 7, 64, PIPELINE.len()] {
            assert_eq!(
                follow(PIPELINE, step),
                (vec![false, false, false, true], true),
                "read {step} bytes at a time"
            );
        }
    }

    #[test]
    fn content_length_before_or_after_the_encoding_is_seen() {
        let (heads, _) = follow(
            b"POST / HTTP/1.1\r\ncontent-length: 3\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
            5,
        );
        assert_eq!(heads, [true]);
    }

    #[test]
    fn bare_line_feeds_are_line_ends_too() {
        let (heads, followed) = follow(
            b"POST / HTTP/1.1\nContent-Length: 2\n\n{}GET / HTTP/1.1\n\n",
            1,
        );
        assert_eq!((heads, followed), (vec![false, false], true));
    }

    #[test]
    fn what_it_cannot_follow_stops_the_watch() {
        for wire in [
            &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
            b"garbage\r\n",
        ] {
            assert!(!follow(wire, 3).1, "{}", String::from_utf8_lossy(wire));
        }
        let long = [b'a'; MAX_LINE + 1];
        assert!(!follow(&long, 1000).1);
    }

    #[test]
    fn a_head_is_matched_to_hypers_request_by_method_and_target() {
        let (mut io, heads) = watch(());
        io.saw(b"GET /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n");
        assert!(heads.next("GET", "/x").is_some());
        assert!(heads.next("GET", "/z").is_none(), "not the head read");
        assert!(heads.shared.lock().unwrap().lost);
    }
}

//! `Framed`: a byte stream cut into frames, as the transport the core runs over: oversized messages skipped, idle connections ended.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::{Decoder, Encoder};

use crate::connections::Place;
use crate::{FrameCodec, Framing};

pin_project! {
    /// A byte stream cut into `String` frames: the transport every helper
    /// returns.
    ///
    /// It is a `Stream<Item = io::Result<String>> + Sink<String, Error = io::Error>`.
    /// Its stream yields, besides frames:
    /// - an [`io::ErrorKind::FileTooLarge`] error for each incoming message
    ///   over [`max_frame_len`](FrameCodec::max_frame_len), once it has
    ///   passed. That message was skipped without being buffered, and the
    ///   stream goes on: the next item is the next message. The error's text
    ///   names the limit (and the message's size, when the framing tells
    ///   it), so it can be passed on to the peer, and it wraps an
    ///   [`Oversized`](crate::Oversized) with the message's first and last
    ///   bytes;
    /// - an [`io::ErrorKind::InvalidData`] error wrapping a
    ///   [`std::str::Utf8Error`] (`err.get_ref()` downcasts to it) for each
    ///   incoming message that is not UTF-8. That message was consumed
    ///   whole, and the stream goes on;
    /// - an [`io::ErrorKind::TimedOut`] error, then the end, when an idle
    ///   timeout is set (see [`with_idle_timeout`](Self::with_idle_timeout))
    ///   and no complete message has arrived for that long;
    /// - any other error when reading failed or the framing was lost (see
    ///   [`NewlineCodec`](crate::NewlineCodec) and
    ///   [`ContentLengthCodec`](crate::ContentLengthCodec)), then the end.
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt};
    /// use rpcpeer_stream::{framed, Framing};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let (a, b) = tokio::io::duplex(1024);
    /// let mut a = framed(a, Framing::Newline, 1024);
    /// let mut b = framed(b, Framing::Newline, 1024).with_max_frame_len(8);
    /// a.send("[1,2,3,4,5]".to_owned()).await?;
    /// a.send("[6]".to_owned()).await?;
    /// let err = b.next().await.expect("an item").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
    /// assert_eq!(err.to_string(), "message exceeds the limit of 8 bytes");
    /// assert_eq!(b.next().await.transpose()?.as_deref(), Some("[6]"));
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct Framed<T> {
        #[pin]
        inner: tokio_util::codec::Framed<T, Frames>,
        idle: Option<Idle>,
        // The stream has ended (or lost its framing): it stays ended.
        ended: bool,
        // The place this connection holds in its listener's cap; dropping
        // the transport gives it back.
        place: Option<Place>,
    }
}

impl<T: AsyncRead + AsyncWrite> Framed<T> {
    pub(crate) fn new(io: T, framing: Framing, max_frame_len: usize) -> Self {
        Framed {
            inner: tokio_util::codec::Framed::new(
                io,
                Frames(FrameCodec::new(framing, max_frame_len)),
            ),
            idle: None,
            ended: false,
            place: None,
        }
    }

    /// Sets the largest incoming message, in bytes, replacing the limit the
    /// transport was made with (for [`stdio`](crate::stdio),
    /// [`spawn_child`](crate::spawn_child) and the connectors,
    /// [`DEFAULT_MAX_FRAME_LEN`](crate::DEFAULT_MAX_FRAME_LEN)). A longer
    /// message is skipped and reported as an
    /// [`io::ErrorKind::FileTooLarge`] item.
    ///
    /// Meant for a connection just made: it starts a fresh decoder, so a
    /// frame already partly read would be lost.
    ///
    /// ```
    /// use rpcpeer_stream::{framed, Framing, DEFAULT_MAX_FRAME_LEN};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // A pipe to a language server, say, whose replies may be large.
    /// let (pipe, _other_end) = tokio::io::duplex(4096);
    /// let conn = framed(pipe, Framing::ContentLength, DEFAULT_MAX_FRAME_LEN)
    ///     .with_max_frame_len(256 << 20);
    /// assert_eq!(conn.codec().max_frame_len(), 256 << 20);
    /// # }
    /// ```
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        let framing = self.codec().framing();
        *self.inner.codec_mut() = Frames(FrameCodec::new(framing, max_frame_len));
        self
    }

    /// Ends the connection when no complete message has arrived for
    /// `timeout`: the stream then yields an [`io::ErrorKind::TimedOut`]
    /// error and ends. `None`, or a zero duration, turns it off; it is off
    /// unless set.
    ///
    /// Only complete incoming messages (a skipped oversized one included)
    /// restart the clock: bytes that never make a message, such as a peer
    /// trickling one line a byte at a time, do not, and neither do messages
    /// sent. The clock runs while the stream is polled: a call the peer
    /// waits on that runs longer than `timeout` without a message from the
    /// peer ends with the connection, so set it above the longest such call.
    /// The clock starts now.
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle = timeout.filter(|after| !after.is_zero()).map(Idle::new);
        self
    }

    /// Takes a place in a listener's cap, given back when this is dropped.
    pub(crate) fn holding(mut self, place: Place) -> Self {
        self.place = Some(place);
        self
    }
}

impl<T> Framed<T> {
    /// The codec: which framing, and its limit.
    pub fn codec(&self) -> &FrameCodec {
        &self.inner.codec().0
    }

    /// The idle timeout, if one is set.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle.as_ref().map(|idle| idle.after)
    }

    /// The byte stream underneath, such as the `TcpStream`.
    pub fn get_ref(&self) -> &T {
        self.inner.get_ref()
    }

    /// The byte stream underneath. Reading or writing it directly breaks
    /// the framing.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// Gives back the byte stream, dropping any bytes read but not yet
    /// decoded and any frames not yet written.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: AsyncRead> Stream for Framed<T> {
    type Item = io::Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.ended || this.idle.as_ref().is_some_and(|idle| idle.expired) {
            return Poll::Ready(None);
        }
        match this.inner.poll_next(cx) {
            // A message, or one skipped for its size: either way the peer
            // completed one.
            Poll::Ready(Some(Ok(message))) => {
                if let Some(idle) = this.idle {
                    idle.heard();
                }
                Poll::Ready(Some(message))
            }
            // NB: the codec yields a skipped message as an item, so an
            // error here lost the framing (or the reading): tokio-util would
            // read on if polled again, from a codec whose state is stale.
            Poll::Ready(Some(Err(err))) => {
                *this.ended = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                *this.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(idle) = this.idle else {
                    return Poll::Pending;
                };
                if !idle.poll_expired(cx) {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no complete message for {} s: closing the idle connection",
                        idle.after.as_secs_f64()
                    ),
                ))))
            }
        }
    }
}

impl<T: AsyncWrite> Sink<String> for Framed<T> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: String) -> io::Result<()> {
        self.project().inner.start_send(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_close(cx)
    }
}

/// [`FrameCodec`] as `Framed` needs it: a skipped message (oversized, or not
/// UTF-8) becomes an item. tokio-util's `Framed` ends the stream after any
/// decoder error (it yields the error, then `None`), which would end the
/// connection over a message the codec has already dealt with.
#[derive(Debug)]
struct Frames(FrameCodec);

/// What the codec said, with a skipped message as an `Err` item.
fn skipped_as_item(decoded: io::Result<Option<String>>) -> io::Result<Option<io::Result<String>>> {
    match decoded {
        Ok(frame) => Ok(frame.map(Ok)),
        Err(err) if crate::is_skipped(&err) => Ok(Some(Err(err))),
        Err(err) => Err(err),
    }
}

impl Decoder for Frames {
    type Item = io::Result<String>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        skipped_as_item(self.0.decode(src))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        skipped_as_item(self.0.decode_eof(src))
    }
}

impl Encoder<String> for Frames {
    type Error = io::Error;

    fn encode(&mut self, frame: String, dst: &mut BytesMut) -> io::Result<()> {
        self.0.encode(frame, dst)
    }
}

/// The idle timeout's clock.
#[derive(Debug)]
struct Idle {
    after: Duration,
    /// When the last complete message arrived, or the timeout was set.
    last: Instant,
    /// Armed at the first poll, so that making a transport needs no timer;
    /// moved on only when it fires, not at every message.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The timeout has been reported; the stream has ended.
    expired: bool,
}

impl Idle {
    fn new(after: Duration) -> Self {
        Idle {
            after,
            last: Instant::now(),
            sleep: None,
            expired: false,
        }
    }

    fn heard(&mut self) {
        self.last = Instant::now();
    }

    /// Whether `after` has passed since the last message; the first `true`
    /// also marks the clock expired.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(due) = self.last.checked_add(self.after) else {
            // So far off that it cannot be written down: never.
            return false;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            // The timer fired, but a message may have come since it was set.
            let Some(due) = self.last.checked_add(self.after) else {
                return false;
            };
            if due <= Instant::now() {
                self.expired = true;
                return true;
            }
            sleep.as_mut().reset(due);
        }
    }
}

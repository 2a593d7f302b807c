//! `WsTransport`: a WebSocket seen as a stream and sink of text messages, with keep-alive and closing.

use std::{
    future::Future,
    io, mem,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll, Waker},
    time::Duration,
};

use futures::{
    stream::FusedStream,
    task::{waker, ArcWake},
    Sink, SinkExt, Stream, StreamExt,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Interval, MissedTickBehavior, Sleep},
};
use tokio_tungstenite::{
    tungstenite::{
        error::{CapacityError, ProtocolError},
        protocol::{frame::coding::CloseCode, CloseFrame},
        Bytes, Error as WsError, Message, Utf8Bytes,
    },
    WebSocketStream,
};

use crate::Config;

/// One WebSocket connection as a `Stream` of incoming text messages and a
/// `Sink` of outgoing ones.
///
/// Incoming, each message is yielded as [`Utf8Bytes`]: its text where it was
/// read, not copied (`&*text` is the `&str`, `text.to_string()` a copy):
/// - a text message is yielded as is; a binary message that holds valid UTF-8
///   is yielded as text too (some clients only send binary frames);
/// - a binary message that is not UTF-8 is dropped and yields an
///   [`io::ErrorKind::InvalidData`] error wrapping the
///   [`std::str::Utf8Error`] (`err.get_ref()` downcasts to it); the
///   connection goes on, as the WebSocket protocol itself was kept;
/// - a text message that is not UTF-8 breaks the protocol (RFC 6455 §8.1):
///   it closes the connection with code 1007 and yields an
///   [`io::ErrorKind::InvalidData`] error of another kind; one longer than
///   [`Config::max_message_len`] closes it with code 1009, whose reason
///   names the limit, and yields the same kind (RFC 6455 §7.4.1: past a
///   message's first frame the connection cannot be resynchronised, so
///   unlike the stream framings nothing is skipped);
/// - with [`Config::idle_timeout`] set, a connection over which no message
///   has arrived for that long is closed with code 1001 ("going away") and
///   yields [`io::ErrorKind::TimedOut`];
/// - pings are answered by themselves, and with
///   [`Config::ping_interval`] set the transport pings the peer and yields
///   [`io::ErrorKind::TimedOut`] when the peer stays silent past
///   [`Config::ping_timeout`];
/// - a close frame from the peer ends the stream (`None`) once the closing
///   handshake is done; [`close_frame`](Self::close_frame) then tells its code
///   and reason;
/// - a TCP connection dropped without a close frame yields
///   [`io::ErrorKind::UnexpectedEof`] (or the reset error) and then ends.
///
/// After an error the stream ends, except after a binary message that is not
/// UTF-8. Outgoing, every `String` goes out as one
/// text frame; [`Sink::poll_close`] sends close code 1000 (normal closure),
/// or the code [`set_close_frame`](Self::set_close_frame) gave.
///
/// Keep-alive runs inside `poll_next`, so the transport works when one task
/// polls it as both stream and sink, and also when the two halves of
/// [`StreamExt::split`] live on different tasks.
///
/// ```
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_ws::{Config, Role};
///
/// // Echoes every message on a stream that an HTTP server already upgraded.
/// # async fn run(upgraded: tokio::io::DuplexStream) -> std::io::Result<()> {
/// let mut ws = rpcpeer_ws::from_upgraded(upgraded, Role::Server, &Config::default()).await;
/// while let Some(text) = ws.next().await {
///     ws.send(text?.to_string()).await?;
/// }
/// println!("peer said goodbye with {:?}", ws.close_frame());
/// # Ok(())
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// # // Both ends in memory, as if the handshake had been done.
/// # let (client_io, server_io) = tokio::io::duplex(4096);
/// # let server = tokio::spawn(run(server_io));
/// # let mut client = rpcpeer_ws::from_upgraded(client_io, Role::Client, &Config::default()).await;
/// # client.send("hi".to_owned()).await?;
/// # assert_eq!(client.next().await.transpose()?.as_deref(), Some("hi"));
/// # client.close_with(4000, "done").await?;
/// # server.await??;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WsTransport<S> {
    inner: WebSocketStream<S>,
    ping_interval: Option<Duration>,
    ping_timeout: Duration,
    /// Created at the first poll, so that building a transport never needs a
    /// Tokio timer.
    ticks: Option<Interval>,
    /// Reused for every wait, so arming it does not allocate.
    deadline: Option<Pin<Box<Sleep>>>,
    /// What `deadline` is armed for, if anything.
    waiting: Option<Wait>,
    read: Read,
    /// A close frame went out or came in; no more pings may be sent
    /// (RFC 6455 §5.5.1).
    closing: bool,
    /// A ping of ours, or a pong to the peer's, sits unflushed in
    /// tungstenite's write buffer.
    flush_owed: bool,
    /// Pongs queued since the write buffer was last seen empty; see
    /// [`MAX_PONGS_OWED`].
    pongs_owed: u8,
    /// The last task that used the sink; see `poll_flush_for_reader`.
    sink_waker: Option<Waker>,
    close_frame: Option<(u16, String)>,
    /// What [`Sink::poll_close`] sends, when not code 1000.
    own_close: Option<CloseFrame>,
    /// While lingering: when the peer counts as quiet.
    quiet: Option<Pin<Box<Sleep>>>,
    idle: Option<Idle>,
}

/// The idle timeout's clock.
#[derive(Debug)]
struct Idle {
    after: Duration,
    /// When the last message arrived, or the transport was made.
    last: Instant,
    /// Armed at the first poll; moved on only when it fires.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Idle {
    /// Ready once `after` has passed since the last message.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Some(due) = self.last.checked_add(self.after) else {
                // So far off that it cannot be written down: never.
                return Poll::Pending;
            };
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            ready!(sleep.as_mut().poll(cx));
            // The timer fired, but a message may have come since it was set.
            if due <= Instant::now() {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(due);
        }
    }
}

/// How long a failing connection waits after the peer's last byte before it
/// closes (see `poll_drain`).
const LINGER_IDLE: Duration = Duration::from_millis(200);

/// How many pongs may wait unwritten before the peer's frames are no longer
/// read: a few hundred bytes at most (a ping carries at most 125), and more
/// than an honest peer, which pings every few seconds at most, ever has
/// outstanding while its own reading is slow.
const MAX_PONGS_OWED: u8 = 16;

/// Where the reading side is.
#[derive(Debug)]
enum Read {
    Open,
    /// The connection failed: a close frame is being flushed, then the error
    /// is yielded.
    Failing(io::Error),
    /// The close frame is out: what the peer still sends is read and thrown
    /// away until it closes (or the deadline), then the error is yielded.
    Lingering(io::Error),
    Done,
}

/// What the deadline is armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Any frame from the peer after our ping.
    Pong,
    /// The end of the closing handshake.
    CloseHandshake,
    /// The flush of the close frame that fails the connection.
    CloseFlush,
}

impl<S> WsTransport<S> {
    pub(crate) fn new(inner: WebSocketStream<S>, config: &Config) -> Self {
        Self {
            inner,
            ping_interval: config.ping_interval.filter(|period| !period.is_zero()),
            ping_timeout: config.ping_timeout,
            ticks: None,
            deadline: None,
            waiting: None,
            read: Read::Open,
            closing: false,
            flush_owed: false,
            pongs_owed: 0,
            sink_waker: None,
            close_frame: None,
            own_close: None,
            quiet: None,
            idle: config
                .idle_timeout
                .filter(|after| !after.is_zero())
                .map(|after| Idle {
                    after,
                    last: Instant::now(),
                    sleep: None,
                }),
        }
    }

    /// The code and reason of the close frame the peer sent, once one has
    /// arrived. A close frame without a code reads as 1005 ("no status
    /// received", RFC 6455 §7.4.1) with an empty reason.
    pub fn close_frame(&self) -> Option<(u16, String)> {
        self.close_frame.clone()
    }

    /// Makes [`Sink::poll_close`] send `code` and `reason` instead of
    /// code 1000 with no reason, for a close that is not a normal one (a
    /// server going away: 1001, or an application's own 4000–4999).
    ///
    /// # Errors
    /// As [`close_with`](Self::close_with): [`io::ErrorKind::InvalidInput`]
    /// for a code an endpoint may not send or a reason over 123 bytes.
    pub fn set_close_frame(&mut self, code: u16, reason: &str) -> io::Result<()> {
        self.own_close = Some(close_frame(code, reason)?);
        Ok(())
    }

    fn arm(&mut self, wait: Wait) {
        let at = Instant::now() + self.ping_timeout;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.waiting = Some(wait);
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Wait> {
        let (Some(wait), Some(sleep)) = (self.waiting, &mut self.deadline) else {
            return Poll::Pending;
        };
        ready!(sleep.as_mut().poll(cx));
        self.waiting = None;
        Poll::Ready(wait)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    /// Sends a close frame with `code` and `reason`, then waits for the
    /// peer's close frame so that neither side drops the TCP connection under
    /// the other (RFC 6455 §7.1.1). Messages that arrive meanwhile are
    /// dropped.
    ///
    /// When the peer has already sent its close frame, this only waits for
    /// the closing handshake to finish.
    ///
    /// # Errors
    /// - [`io::ErrorKind::InvalidInput`] when `code` may not be sent
    ///   (RFC 6455 §7.4: below 1000, 1004–1006, 1015–2999, 5000 and up) or
    ///   `reason` is longer than 123 bytes.
    /// - The kind of the I/O error when the close frame cannot be written.
    /// - [`io::ErrorKind::TimedOut`] when the peer does not answer within
    ///   [`Config::ping_timeout`].
    ///
    /// # Cancel safety
    /// Once polled, the close frame is queued: dropping the future does not
    /// take it back, and the stream will end after the peer answers.
    pub async fn close_with(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let frame = close_frame(code, reason)?;
        if !self.closing {
            self.closing = true;
            match self.inner.send(Message::Close(Some(frame))).await {
                Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
                Err(err) => return Err(io_error(err)),
            }
        }
        let timeout = self.ping_timeout;
        let handshake = async {
            // An error here also ends the handshake: the frame is out and the
            // connection is gone either way.
            while let Some(Ok(_)) = self.next().await {}
        };
        tokio::time::timeout(timeout, handshake).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer did not answer our close frame within {timeout:?}"),
            )
        })
    }

    fn on_message(&mut self, msg: Message) -> Option<io::Result<Utf8Bytes>> {
        if self.waiting == Some(Wait::Pong) {
            self.waiting = None;
        }
        match msg {
            Message::Text(text) => {
                self.mark_used();
                Some(Ok(text))
            }
            // NB: a binary message that is not UTF-8 breaks no rule of the
            // WebSocket protocol (1007 is for text that is not UTF-8), and
            // the messages after it are intact: it is reported as one bad
            // message, as the stream framings report theirs, and the
            // connection goes on. The wrapped `Utf8Error` is what tells it
            // from an error that ends the stream.
            Message::Binary(bytes) => {
                self.mark_used();
                Some(
                    Utf8Bytes::try_from(bytes)
                        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err)),
                )
            }
            // tungstenite queued the pong when it read the ping; each read
            // tries to flush it, and reading pauses once too many are owed
            // (see `poll_next`).
            Message::Ping(_) => {
                self.flush_owed = true;
                self.pongs_owed = self.pongs_owed.saturating_add(1);
                None
            }
            Message::Pong(_) | Message::Frame(_) => None,
            // A close reply is queued the same way; the next read flushes it.
            Message::Close(frame) => {
                self.peer_closed(frame);
                None
            }
        }
    }

    /// Only messages count as use: pings and pongs show the peer is alive,
    /// not that it uses the connection.
    fn mark_used(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.last = Instant::now();
        }
    }

    /// The peer's close frame has arrived.
    // NB: cold, and kept out of `on_message`, whose path for text and binary
    // messages then lies together.
    #[cold]
    #[inline(never)]
    fn peer_closed(&mut self, frame: Option<CloseFrame>) {
        self.closing = true;
        self.close_frame = Some(match frame {
            Some(frame) => (frame.code.into(), frame.reason.as_str().to_owned()),
            None => (CloseCode::Status.into(), String::new()),
        });
    }

    /// Sorts a read error into one to yield now, or one that first needs a
    /// close frame sent (`None`, the state is then `Failing`).
    // NB: this, `poll_failing` and `try_flush_owed` are cold, and kept out
    // of `poll_next`, whose path for a message read then lies together.
    #[cold]
    #[inline(never)]
    fn on_error(&mut self, err: WsError) -> Option<io::Error> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
        match err {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                // At most 86 bytes: a close reason may have 123.
                let reason =
                    format!("message of {size} bytes exceeds the limit of {max_size} bytes");
                let err = invalid(format!("incoming WebSocket {reason} (max_message_len)"));
                self.fail(CloseCode::Size, reason.into(), err);
                None
            }
            WsError::Utf8(detail) => {
                let err = invalid(format!(
                    "text WebSocket message is not valid UTF-8: {detail}"
                ));
                self.fail(CloseCode::Invalid, "message is not valid UTF-8".into(), err);
                None
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Some(io_error(err)),
            WsError::Protocol(violation) => {
                // The reason names the rule broken, cut to the 123 bytes a
                // close frame has room for.
                let mut reason = violation.to_string();
                if reason.len() > 123 {
                    let mut end = 123;
                    while !reason.is_char_boundary(end) {
                        end -= 1;
                    }
                    reason.truncate(end);
                }
                let err = invalid(format!(
                    "the peer broke the WebSocket protocol: {violation}"
                ));
                self.fail(CloseCode::Protocol, reason.into(), err);
                None
            }
            other => Some(io_error(other)),
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): queues a close frame with
    /// `code`, and leaves `err` to be yielded once it is flushed.
    fn fail(&mut self, code: CloseCode, reason: Utf8Bytes, err: io::Error) {
        if !self.closing {
            self.closing = true;
            // NB: straight to `start_send` without `poll_ready`: tungstenite
            // always accepts a frame into its unbounded write buffer, and the
            // error worth reporting is `err`, not a failure to write.
            let frame = CloseFrame { code, reason };
            let _ = Pin::new(&mut self.inner).start_send(Message::Close(Some(frame)));
        }
        // NB: bounded, because a peer that stopped reading would otherwise
        // keep the flush, and with it the error, pending forever.
        self.arm(Wait::CloseFlush);
        self.read = Read::Failing(err);
    }

    /// Reading after an error that ends the stream: the close frame it
    /// calls for is flushed, our side shut and theirs drained (a lingering
    /// close), then the error is yielded.
    #[cold]
    #[inline(never)]
    fn poll_failing(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Utf8Bytes>>> {
        if matches!(self.read, Read::Failing(_)) {
            let flushed = self.poll_flush_for_reader(cx).is_ready();
            if !flushed && self.poll_deadline(cx).is_pending() {
                return Poll::Pending;
            }
            if flushed {
                if let Read::Failing(err) = mem::replace(&mut self.read, Read::Done) {
                    // NB: a lingering close. Dropping the socket while the
                    // peer's refused message is still arriving makes the
                    // kernel answer with a reset, and the peer never reads
                    // our close frame (1009 for a message over the limit).
                    // So: end our side, then drain theirs until they close.
                    let _ = Pin::new(self.inner.get_mut()).poll_shutdown(cx);
                    self.arm(Wait::CloseFlush);
                    self.read = Read::Lingering(err);
                }
            }
        }
        if matches!(self.read, Read::Lingering(_)) && self.poll_drain(cx).is_pending() {
            return Poll::Pending;
        }
        match mem::replace(&mut self.read, Read::Done) {
            Read::Failing(err) | Read::Lingering(err) => Poll::Ready(Some(Err(err))),
            Read::Open | Read::Done => Poll::Ready(None),
        }
    }

    /// Reads and discards raw bytes until the peer closes, the socket fails,
    /// nothing has arrived for [`LINGER_IDLE`], or the deadline armed when
    /// lingering began passes. Raw, because the refused frame can no longer
    /// be parsed. Once the peer is quiet, nothing unread is left to turn
    /// our close into a reset.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 8 * 1024];
        let mut arrived = false;
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(self.inner.get_mut()).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => arrived = true,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        if self.poll_deadline(cx).is_ready() {
            return Poll::Ready(());
        }
        let idle_until = Instant::now() + LINGER_IDLE;
        let quiet = self
            .quiet
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(idle_until)));
        if arrived {
            quiet.as_mut().reset(idle_until);
        }
        if quiet.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Flushes frames that the reading side queued (pings, close frames).
    fn poll_flush_for_reader(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // NB: tokio-tungstenite keeps a single waker slot for the sink side,
        // and a flush from here lands in it. Were only this task's waker
        // stored, a task flushing through the sink half of `split` would
        // never be woken when the socket drains, so wake-ups go to both.
        let both;
        let mut cx = match &self.sink_waker {
            Some(sink) if !sink.will_wake(cx.waker()) => {
                both = waker(Arc::new(WakeBoth(cx.waker().clone(), sink.clone())));
                Context::from_waker(&both)
            }
            _ => Context::from_waker(cx.waker()),
        };
        Pin::new(&mut self.inner).poll_flush(&mut cx).map(drop)
    }

    /// Flushes what a ping or a pong left in tungstenite's write buffer;
    /// true once it is all out.
    #[cold]
    #[inline(never)]
    fn try_flush_owed(&mut self, cx: &mut Context<'_>) -> bool {
        if self.poll_flush_for_reader(cx).is_pending() {
            return false;
        }
        self.flush_owed = false;
        self.pongs_owed = 0;
        true
    }

    /// Runs the keep-alive timers and the idle timeout; called when there
    /// is nothing to read.
    // NB: kept out of `poll_next`, whose path for a message read then lies
    // together.
    #[inline(never)]
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Utf8Bytes>>> {
        if !self.closing {
            if let Some(idle) = &mut self.idle {
                if idle.poll_expired(cx).is_ready() {
                    let secs = idle.after.as_secs_f64();
                    let err = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no message for {secs} s: closing the idle connection"),
                    );
                    // RFC 6455 §7.4.1: 1001, the server is going away from
                    // this connection (as cloud gateways close idle ones).
                    self.fail(CloseCode::Away, format!("idle for {secs} s").into(), err);
                    return self.poll_failing(cx);
                }
            }
        }
        if self.ticks.is_none() {
            if let Some(period) = self.ping_interval {
                let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
                // A late tick (a busy runtime) must not become a burst of pings.
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                self.ticks = Some(ticks);
            }
        }
        loop {
            if let Poll::Ready(wait) = self.poll_deadline(cx) {
                self.read = Read::Done;
                let timeout = self.ping_timeout;
                return Poll::Ready(match wait {
                    Wait::Pong => {
                        // Said in the close frame too, should the peer
                        // still read: not a normal closure.
                        self.own_close.get_or_insert_with(|| CloseFrame {
                            code: CloseCode::Away,
                            reason: format!("no pong within {timeout:?} of a ping").into(),
                        });
                        Some(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "no pong within {timeout:?} of a ping: the peer is unresponsive"
                            ),
                        )))
                    }
                    // The peer said goodbye; only the TCP teardown is missing.
                    Wait::CloseHandshake if self.close_frame.is_some() => None,
                    Wait::CloseHandshake => Some(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the peer did not answer our close frame within {timeout:?}"),
                    ))),
                    Wait::CloseFlush => None,
                });
            }
            if self.flush_owed {
                self.try_flush_owed(cx);
            }
            let Some(ticks) = &mut self.ticks else {
                return Poll::Pending;
            };
            ready!(ticks.poll_tick(cx));
            if self.closing {
                // No pings after a close frame; the tick bounds the closing
                // handshake instead, which a vanished peer would never finish.
                if self.waiting != Some(Wait::CloseHandshake) {
                    self.arm(Wait::CloseHandshake);
                }
                continue;
            }
            // NB: as in `fail`, tungstenite accepts the frame whatever the
            // state of the socket; the deadline below catches a peer that
            // never lets it through.
            if Pin::new(&mut self.inner)
                .start_send(Message::Ping(Bytes::new()))
                .is_ok()
            {
                self.flush_owed = true;
            }
            // An unanswered earlier ping keeps its (earlier) deadline.
            if self.waiting.is_none() {
                self.arm(Wait::Pong);
            }
        }
    }

    fn remember_sink_waker(&mut self, cx: &Context<'_>) {
        if !self
            .sink_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.sink_waker = Some(cx.waker().clone());
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsTransport<S> {
    type Item = io::Result<Utf8Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.read {
                Read::Open => {}
                Read::Failing(_) | Read::Lingering(_) => return this.poll_failing(cx),
                Read::Done => return Poll::Ready(None),
            }
            // NB: each ping read queues a pong, and tungstenite keeps every
            // one it cannot write, so a peer that pings and never reads would
            // grow the buffer without end. Only then is reading paused:
            // stopping on any pending flush would let two peers that both
            // write more than the other reads, and both ping, wait on each
            // other.
            if this.flush_owed && !this.try_flush_owed(cx) && this.pongs_owed >= MAX_PONGS_OWED {
                return this.poll_timers(cx);
            }
            // NB: the socket is read before the timers are looked at, so a
            // message that arrived just before the deadline still counts.
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    if let Some(item) = this.on_message(msg) {
                        return Poll::Ready(Some(item));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    if let Some(err) = this.on_error(err) {
                        this.read = Read::Done;
                        return Poll::Ready(Some(Err(err)));
                    }
                }
                Poll::Ready(None) => {
                    this.read = Read::Done;
                    return Poll::Ready(None);
                }
                Poll::Pending => return this.poll_timers(cx),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FusedStream for WsTransport<S> {
    fn is_terminated(&self) -> bool {
        matches!(self.read, Read::Done)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<String> for WsTransport<S> {
    type Error = io::Error;

    /// Fails with [`io::ErrorKind::NotConnected`] once the peer's close
    /// frame has arrived: RFC 6455 §5.5.1, no message may follow it, so a
    /// writer learns it before it gives a frame to send.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((code, _)) = &this.close_frame {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("the peer closed the WebSocket connection (close code {code})"),
            )));
        }
        this.remember_sink_waker(cx);
        Pin::new(&mut this.inner).poll_ready(cx).map_err(io_error)
    }

    fn start_send(self: Pin<&mut Self>, text: String) -> io::Result<()> {
        Pin::new(&mut self.get_mut().inner)
            .start_send(Message::text(text))
            .map_err(io_error)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.remember_sink_waker(cx);
        Pin::new(&mut this.inner).poll_flush(cx).map_err(io_error)
    }

    /// Sends close code 1000 (normal closure), or the frame
    /// [`set_close_frame`](WsTransport::set_close_frame) set, and flushes it. The closing
    /// handshake finishes when the stream side reads the peer's answer, so
    /// keep polling the stream to its end, or use
    /// [`close_with`](WsTransport::close_with), which does both.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.remember_sink_waker(cx);
        if !this.closing {
            this.closing = true;
            let frame = this.own_close.take().unwrap_or(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            });
            match Pin::new(&mut this.inner).start_send(Message::Close(Some(frame))) {
                Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
                Err(err) => return Poll::Ready(Err(io_error(err))),
            }
        }
        match ready!(Pin::new(&mut this.inner).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(err) => Poll::Ready(Err(io_error(err))),
        }
    }
}

/// A close frame with `code` and `reason`, when an endpoint may send them.
fn close_frame(code: u16, reason: &str) -> io::Result<CloseFrame> {
    let close_code = CloseCode::from(code);
    if !close_code.is_allowed() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{code} is not a close code an endpoint may send (RFC 6455 §7.4)"),
        ));
    }
    // RFC 6455 §5.5: a control frame's payload is at most 125 bytes, two
    // of which hold the code.
    if reason.len() > 123 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a close reason holds at most 123 bytes, not {}",
                reason.len()
            ),
        ));
    }
    Ok(CloseFrame {
        code: close_code,
        reason: reason.into(),
    })
}

/// Wakes the reading task and the last writing task.
struct WakeBoth(Waker, Waker);

impl ArcWake for WakeBoth {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.wake_by_ref();
        arc_self.1.wake_by_ref();
    }
}

/// Turns a tungstenite error into an `io::Error` that says what happened.
pub(crate) fn io_error(err: WsError) -> io::Error {
    use io::ErrorKind as Kind;
    let (kind, msg) = match err {
        WsError::Io(err) => {
            return io::Error::new(err.kind(), format!("WebSocket I/O failed: {err}"))
        }
        WsError::ConnectionClosed | WsError::AlreadyClosed => (
            Kind::NotConnected,
            "the WebSocket connection is closed".to_owned(),
        ),
        WsError::Protocol(ProtocolError::SendAfterClosing) => (
            Kind::BrokenPipe,
            "cannot send: the WebSocket connection is closing".to_owned(),
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => (
            Kind::UnexpectedEof,
            "the peer dropped the connection without a WebSocket close frame".to_owned(),
        ),
        WsError::Protocol(violation) => (
            Kind::InvalidData,
            format!("WebSocket protocol error: {violation}"),
        ),
        WsError::Tls(err) => (Kind::Other, format!("TLS failed: {err}")),
        WsError::Capacity(err) => (
            Kind::InvalidData,
            format!("WebSocket size limit exceeded: {err}"),
        ),
        WsError::WriteBufferFull(_) => (
            Kind::WouldBlock,
            "the WebSocket write buffer is full".to_owned(),
        ),
        WsError::Utf8(err) => (
            Kind::InvalidData,
            format!("WebSocket text is not valid UTF-8: {err}"),
        ),
        WsError::AttackAttempt => (
            Kind::InvalidData,
            "the handshake response was too large or came in too many tiny pieces".to_owned(),
        ),
        WsError::Url(err) => (Kind::InvalidInput, format!("bad WebSocket URL: {err}")),
        WsError::Http(response) => (
            Kind::Other,
            format!(
                "the server refused the WebSocket upgrade with HTTP {}",
                response.status()
            ),
        ),
        WsError::HttpFormat(err) => (
            Kind::InvalidInput,
            format!("bad WebSocket handshake request: {err}"),
        ),
    };
    io::Error::new(kind, msg)
}

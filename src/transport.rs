//! The transport contract (a stream and sink of text frames, and close frames beside them) and an in-memory pair.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// What a [`Driver`](crate::Driver) runs over: a stream of incoming frames
/// and a sink for outgoing ones, each frame one JSON text. Implemented for
/// every type that has both halves; the framing crates (`rpcpeer::stream`,
/// `rpcpeer::ws`) produce such types.
///
/// An incoming frame is any `F` that is text (`AsRef<str>`): a `String`, or
/// a type that leaves the text in the buffer it was read into, as the
/// WebSocket transport's `Utf8Bytes` does (one copy less per message). The driver reads the frame in place and
/// drops it once its calls are admitted. Outgoing frames are `String`s.
///
/// An error from the stream ends the connection, except two, after which
/// the transport reads on:
/// - one of kind [`io::ErrorKind::FileTooLarge`]: the transport skipped a
///   message over its size limit, and the error's text names the limit.
///   The driver answers it with -32600 (the error's text in the message),
///   under id null, unless the transport kept the message's first and last
///   bytes (as `rpcpeer_stream::Oversized`, with the `stream` feature) and
///   they name its id: then a call is answered under its id, and an answer
///   to one of our calls fails that call at once instead;
/// - one of kind [`io::ErrorKind::InvalidData`] that wraps a
///   [`std::str::Utf8Error`] (`err.get_ref()` downcasts to it): the
///   transport read a whole message that is not UTF-8 and dropped it. The
///   driver answers it with -32700 (id null), as for any text that is not
///   JSON.
///
/// Reading goes on after both.
///
/// The end of the stream may leave the sink open (a TCP half-close: the
/// peer still reads), and then running calls finish and are answered. A
/// transport that can send nothing more once its stream has ended (a
/// WebSocket after the peer's close frame) fails `poll_ready` from then
/// on: the driver then cancels running calls at once.
///
/// Code that runs a peer over any transport names it with this trait (with
/// the frame type as a parameter, so that a WebSocket's `Utf8Bytes` fit too):
///
/// ```
/// use rpcpeer::transport::{memory_pair, Transport};
/// use rpcpeer::{Driver, ErrorObject, Peer, Router};
///
/// /// Runs a peer serving `router` over `transport`: TCP, WebSocket, in memory.
/// fn start<F: AsRef<str>>(transport: impl Transport<F>, router: Router) -> Peer {
///     let (peer, driver) = Driver::new(transport, router);
///     tokio::spawn(driver);
///     peer
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let (a, b) = memory_pair();
/// let mut server = Router::new();
/// server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
/// start(a, server);
/// let client = start(b, Router::new());
/// assert_eq!(client.request::<String>("ping", ()).await?, "pong");
/// # Ok(()) }
/// ```
pub trait Transport<F = String>:
    Stream<Item = io::Result<F>> + Sink<String, Error = io::Error> + Unpin + Send + 'static
{
}

impl<T, F> Transport<F> for T where
    T: Stream<Item = io::Result<F>> + Sink<String, Error = io::Error> + Unpin + Send + 'static
{
}

/// The code and reason of a WebSocket close frame (RFC 6455 §7.4): what a
/// [`Peer::close_with`](crate::Peer::close_with) sends, and what
/// [`Error::Closed`](crate::Error::Closed) tells of the peer's close.
///
/// ```
/// use rpcpeer::{CloseFrame, CloseFrameError};
///
/// let frame = CloseFrame::new(4001, "session expired")?;
/// assert_eq!((frame.code(), frame.reason()), (4001, "session expired"));
/// assert_eq!(frame.to_string(), "close code 4001: session expired");
/// // 1005 and 1006 only describe a close; no endpoint sends them.
/// assert_eq!(CloseFrame::new(1006, ""), Err(CloseFrameError::Code(1006)));
/// # Ok::<(), CloseFrameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: u16,
    reason: String,
}

/// Why a [`CloseFrame`] cannot be sent.
///
/// ```
/// use rpcpeer::{CloseFrame, CloseFrameError};
///
/// assert_eq!(CloseFrame::new(5000, "").unwrap_err(), CloseFrameError::Code(5000));
/// let long = "why".repeat(42);
/// assert_eq!(CloseFrame::new(4000, long).unwrap_err(), CloseFrameError::ReasonTooLong(126));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseFrameError {
    /// The code is not one an endpoint may send: RFC 6455 §7.4 allows
    /// 1000–1003, 1007–1013 (the IANA registry's), and 3000–4999 (libraries'
    /// and applications' own).
    #[error("{0} is not a close code an endpoint may send (RFC 6455 §7.4: 1000–1003, 1007–1013, 3000–4999)")]
    Code(u16),
    /// The reason is longer than the 123 bytes a close frame has room for
    /// (RFC 6455 §5.5: 125, two of which hold the code).
    #[error("a close reason holds at most 123 bytes, not {0}")]
    ReasonTooLong(usize),
}

impl CloseFrame {
    /// A close frame to send.
    ///
    /// # Errors
    /// [`CloseFrameError::Code`] for a code no endpoint may send,
    /// [`CloseFrameError::ReasonTooLong`] for a reason over 123 bytes.
    pub fn new(code: u16, reason: impl Into<String>) -> Result<Self, CloseFrameError> {
        let reason = reason.into();
        if !matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999) {
            return Err(CloseFrameError::Code(code));
        }
        if reason.len() > 123 {
            return Err(CloseFrameError::ReasonTooLong(reason.len()));
        }
        Ok(Self { code, reason })
    }

    /// The frame a server that is stopping closes its peers with: 1001,
    /// "going away" (RFC 6455 §7.4.1).
    #[cfg(feature = "ws")]
    pub(crate) fn server_stopping() -> Self {
        Self {
            code: 1001,
            reason: "the server is stopping".to_owned(),
        }
    }

    /// A frame the peer sent, taken as it came (1005, "no status", for a
    /// frame without a code).
    pub(crate) fn received((code, reason): (u16, String)) -> Self {
        Self { code, reason }
    }

    /// The close code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason, often empty.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason.as_str() {
            "" => write!(f, "close code {}", self.code),
            reason => write!(f, "close code {}: {reason}", self.code),
        }
    }
}

/// A transport whose close says why, as a WebSocket's close frame does.
///
/// The frames of a [`Transport`] are text, and closing its sink says
/// nothing more; a transport that can carry a close code and reason says
/// it through this trait, beside the stream and the sink. A
/// [`Driver`](crate::Driver) uses it when built with
/// [`DriverBuilder::close_frames`](crate::DriverBuilder::close_frames)
/// (as `ws_server::WsServer` builds its peers'): then
/// [`Peer::close_with`](crate::Peer::close_with) sends its frame, and the
/// peer's frame reaches [`Error::Closed`](crate::Error::Closed). With the
/// `ws` feature, `rpcpeer::ws::WsTransport` implements it.
///
/// ```
/// use rpcpeer::transport::CloseFrames;
///
/// /// A transport that only remembers what it was asked to send.
/// #[derive(Default)]
/// struct Remembers(Option<(u16, String)>);
///
/// impl CloseFrames for Remembers {
///     fn set_close_frame(&mut self, code: u16, reason: &str) -> std::io::Result<()> {
///         self.0 = Some((code, reason.to_owned()));
///         Ok(())
///     }
///     fn peer_close_frame(&self) -> Option<(u16, String)> {
///         None
///     }
/// }
///
/// let mut transport = Remembers::default();
/// transport.set_close_frame(4000, "bye")?;
/// assert_eq!(transport.0, Some((4000, "bye".to_owned())));
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait CloseFrames {
    /// Makes closing the sink send `code` and `reason` instead of the
    /// transport's default close. The driver calls it when a close is asked
    /// for, before it closes the sink.
    ///
    /// # Errors
    /// When the transport cannot send them; the driver then logs the error
    /// and closes as it would have without a frame.
    fn set_close_frame(&mut self, code: u16, reason: &str) -> io::Result<()>;

    /// The code and reason of the close frame the peer sent, once its
    /// stream has ended with one. The driver asks when the stream ends.
    fn peer_close_frame(&self) -> Option<(u16, String)>;
}

/// A WebSocket's close frames (feature `ws`).
#[cfg(feature = "ws")]
#[cfg_attr(docsrs, doc(cfg(feature = "ws")))]
impl<S> CloseFrames for rpcpeer_ws::WsTransport<S> {
    fn set_close_frame(&mut self, code: u16, reason: &str) -> io::Result<()> {
        rpcpeer_ws::WsTransport::set_close_frame(self, code, reason)
    }

    fn peer_close_frame(&self) -> Option<(u16, String)> {
        self.close_frame()
    }
}

/// What a driver calls on a transport that has [`CloseFrames`]: plain
/// function pointers, so that a driver over any other transport carries
/// none and needs no bound.
pub(crate) struct CloseHooks<T> {
    pub(crate) set: fn(&mut T, &CloseFrame) -> io::Result<()>,
    pub(crate) peer: fn(&T) -> Option<CloseFrame>,
}

impl<T: CloseFrames> CloseHooks<T> {
    pub(crate) fn new() -> Self {
        Self {
            set: |transport, frame| transport.set_close_frame(frame.code, &frame.reason),
            peer: |transport| transport.peer_close_frame().map(CloseFrame::received),
        }
    }
}

/// Whether `err` says that one incoming message was not UTF-8 and was
/// dropped, the transport reading on (see [`Transport`]).
pub(crate) fn is_not_utf8(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::InvalidData
        && err
            .get_ref()
            .is_some_and(|inner| inner.is::<std::str::Utf8Error>())
}

/// One end of an in-memory connection made by [`memory_pair`]: for peers
/// in one process (a language server run in-process, say) and for tests.
/// Dropping or closing one end ends the other's stream.
///
/// ```
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer::transport::memory_pair;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (mut a, mut b) = memory_pair();
/// a.send(r#"{"jsonrpc":"2.0","method":"hello"}"#.to_owned()).await?;
/// a.close().await?;
/// assert!(b.next().await.is_some());
/// assert!(b.next().await.is_none(), "a's close ends b's stream");
/// # Ok(()) }
/// ```
pub struct MemoryTransport {
    rx: mpsc::Receiver<String>,
    tx: PollSender<String>,
}

/// Two transports joined back to back: what one sends, the other receives.
/// Each direction holds at most 64 frames in flight. It has no close
/// frames ([`CloseFrames`]): closing one end just ends the other's stream.
///
/// ```
/// use futures::{SinkExt, StreamExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (mut a, mut b) = rpcpeer::transport::memory_pair();
/// a.send("{}".to_owned()).await?;
/// assert_eq!(b.next().await.transpose()?, Some("{}".to_owned()));
/// # Ok(()) }
/// ```
pub fn memory_pair() -> (MemoryTransport, MemoryTransport) {
    let (a_tx, b_rx) = mpsc::channel(64);
    let (b_tx, a_rx) = mpsc::channel(64);
    (
        MemoryTransport {
            rx: a_rx,
            tx: PollSender::new(a_tx),
        },
        MemoryTransport {
            rx: b_rx,
            tx: PollSender::new(b_tx),
        },
    )
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the other end of the memory pair is gone",
    )
}

impl Stream for MemoryTransport {
    type Item = io::Result<String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

impl Sink<String> for MemoryTransport {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.poll_reserve(cx).map_err(|_| gone())
    }

    fn start_send(mut self: Pin<&mut Self>, frame: String) -> io::Result<()> {
        self.tx.send_item(frame).map_err(|_| gone())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

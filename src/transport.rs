//! The transport contract (a stream and sink of text frames) and an in-memory pair for tests.

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
/// An error from the stream ends the connection, except two, after which
/// the transport reads on:
/// - one of kind [`io::ErrorKind::FileTooLarge`]: the transport skipped a
///   message over its size limit, and the error's text names the limit.
///   The driver answers it with -32600 (id null, the error's text in the
///   message);
/// - one of kind [`io::ErrorKind::InvalidData`] that wraps a
///   [`std::str::Utf8Error`] (`err.get_ref()` downcasts to it): the
///   transport read a whole message that is not UTF-8 and dropped it. The
///   driver answers it with -32700 (id null), as for any text that is not
///   JSON.
///
/// Both are answered and reading goes on.
///
/// The end of the stream may leave the sink open (a TCP half-close: the
/// peer still reads), and then running calls finish and are answered. A
/// transport that can send nothing more once its stream has ended (a
/// WebSocket after the peer's close frame) fails `poll_ready` from then
/// on: the driver then cancels running calls at once.
pub trait Transport:
    Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Unpin + Send + 'static
{
}

impl<T> Transport for T where
    T: Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Unpin + Send + 'static
{
}

/// Whether `err` says that one incoming message was not UTF-8 and was
/// dropped, the transport reading on (see [`Transport`]).
pub(crate) fn is_not_utf8(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::InvalidData
        && err
            .get_ref()
            .is_some_and(|inner| inner.is::<std::str::Utf8Error>())
}

/// One end of an in-memory connection made by [`memory_pair`].
pub struct MemoryTransport {
    rx: mpsc::Receiver<String>,
    tx: PollSender<String>,
}

/// Two transports joined back to back: what one sends, the other receives.
/// Each direction holds at most 64 frames in flight.
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

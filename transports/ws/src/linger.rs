//! A lingering close (RFC 9112 §9.6): when hyper ends a connection after a refusal, or with pipelined requests unread, the rest of what the client sends is read and dropped, so the answers are not lost to a reset.
//!
//! A refused request (`413` for a body over the limit, `408`, `400`) is
//! answered, and its connection closed, without reading the body still on
//! its way; so is the last request a connection answers once it has lost
//! track of the requests pipelined after it. Closing a socket with unread
//! data makes the kernel answer with a reset: the client, still writing,
//! gets "broken pipe" (or loses answers already sent) and most HTTP
//! clients never read the answer that explains why. So after such an
//! answer ([`Linger::input_left_unread`]) our side is shut down (the client
//! sees the answer end), and the client's bytes are read and dropped until
//! it closes too, for a bounded time. Any other close is immediate: a
//! client that sent `Connection: close`, or a server stopping, must not
//! hold a connection's place for seconds.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long the client may go on sending, in all, once our side is shut:
/// long enough for a body of some tens of MiB on a fast link. A slower
/// client is cut off as before (nginx's `lingering_time` is 30 s; a
/// connection that lingers holds one of the server's places).
const MAX_LINGER: Duration = Duration::from_secs(5);

/// How long the client may go with nothing sent while we linger: one that
/// neither sends nor closes has nothing more coming.
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// What one read while lingering takes at most, dropped at once.
const SCRATCH: usize = 8 * 1024;

/// Reads in one poll at most, so that a client that always has data does
/// not hold the thread (tokio's budget does this only for its own sockets).
const READS_PER_POLL: usize = 64;

/// Whether a connection's close lingers: set by an answer after which the
/// connection closes with the client's input unread.
#[derive(Clone, Default)]
pub(crate) struct Linger(Arc<AtomicBool>);

impl Linger {
    /// The answer being sent is the connection's last, and what the
    /// client sends after it (a refused body, pipelined requests) is not
    /// read.
    pub(crate) fn input_left_unread(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wanted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connection whose shutdown lingers (see the module docs). Reads and
/// writes pass through untouched.
pub(crate) struct Lingering<I> {
    io: I,
    /// Whether its close lingers.
    wanted: Linger,
    /// Set once our side is shut down.
    linger: Option<Deadlines>,
}

struct Deadlines {
    until: Instant,
    /// Fires after [`LINGER_IDLE`] without data, or at `until`.
    quiet: Pin<Box<Sleep>>,
}

impl<I> Lingering<I> {
    /// Wraps `io`; its close lingers once `wanted` says so.
    pub(crate) fn new(io: I, wanted: Linger) -> Self {
        Lingering {
            io,
            wanted,
            linger: None,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Lingering<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<I> {
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

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.wanted.wanted() {
            return Pin::new(&mut this.io).poll_shutdown(cx);
        }
        let linger = match &mut this.linger {
            Some(linger) => linger,
            None => {
                ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                let until = Instant::now() + MAX_LINGER;
                this.linger.insert(Deadlines {
                    until,
                    quiet: Box::pin(tokio::time::sleep_until(
                        until.min(Instant::now() + LINGER_IDLE),
                    )),
                })
            }
        };
        let mut scratch = [0u8; SCRATCH];
        for _ in 0..READS_PER_POLL {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                // The client closed its side (or reset it): nothing of ours
                // is left to lose.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let now = Instant::now();
                    if now >= linger.until {
                        return Poll::Ready(Ok(()));
                    }
                    linger
                        .quiet
                        .as_mut()
                        .reset(linger.until.min(now + LINGER_IDLE));
                }
                Poll::Pending => {
                    ready!(linger.quiet.as_mut().poll(cx));
                    return Poll::Ready(Ok(()));
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn refused() -> Linger {
        let linger = Linger::default();
        linger.input_left_unread();
        linger
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_the_client_to_close() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours, refused());
        let client = tokio::spawn(async move {
            theirs.write_all(&[b'x'; 1000]).await.expect("write");
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).await.expect("read");
            rest
        });
        ours.shutdown().await.expect("shutdown");
        assert!(client.await.expect("client").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_left_after_a_second() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours, refused());
        let start = Instant::now();
        ours.shutdown().await.expect("shutdown");
        assert_eq!(start.elapsed(), LINGER_IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_stops_is_left_at_the_deadline() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours, refused());
        tokio::spawn(async move {
            while theirs.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let start = Instant::now();
        ours.shutdown().await.expect("shutdown");
        let took = start.elapsed();
        assert!(
            (MAX_LINGER..MAX_LINGER + Duration::from_millis(200)).contains(&took),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_after_no_refusal_does_not_linger() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours, Linger::default());
        let start = Instant::now();
        ours.shutdown().await.expect("shutdown");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}

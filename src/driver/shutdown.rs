//! How a connection ends: gracefully (the drain, the last flush, the close, bounded by one
//! deadline), on an idle timeout, or cut off at once (a failed write, a peer that stopped reading).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::{Sink, Stream};
use tokio::time::Instant;

use super::Driver;
use crate::error::{Error, ErrorObject};
use crate::outgoing::Sending;
use crate::transport::CloseFrame;

/// How long the answers to calls cut off by the drain deadline may take to
/// be written (at most the drain timeout itself).
const LAST_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long, at most, the peer may take to close its side once ours is
/// closed (at most what is left of the deadline).
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the connection is on its way to the end.
pub(super) enum Phase {
    /// Reading, dispatching, writing.
    Open,
    /// No more reading; running handlers may finish until the deadline.
    Draining,
    /// Nothing runs any more; write what is left, flush and close the
    /// transport, also before the deadline.
    Closing,
}

impl<T, S, F> Driver<T, S>
where
    T: Stream<Item = io::Result<F>> + Sink<String, Error = io::Error> + Unpin,
    F: AsRef<str>,
    S: Send + Sync + 'static,
{
    /// Moves to `phase`, and tells our own calls what may still be sent.
    fn enter(&mut self, phase: Phase) {
        self.outgoing.sending = match phase {
            Phase::Open => Sending::Everything,
            Phase::Draining => Sending::Notifications,
            Phase::Closing => Sending::Nothing,
        };
        self.phase = phase;
    }

    /// Stop reading, fail our pending calls, let handlers finish until the deadline.
    pub(super) fn begin_shutdown(&mut self) {
        if matches!(self.phase, Phase::Open) {
            self.outgoing.fail_all();
            self.enter(Phase::Draining);
            self.start_deadline();
        }
    }

    /// The drain's deadline, which also bounds the last flush and close.
    fn start_deadline(&mut self) {
        if self.deadline.is_none() {
            let at = Instant::now() + self.config.drain_timeout;
            self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
        }
    }

    /// The connection is gone: cancel everything now.
    pub(super) fn abort(&mut self) {
        self.outgoing.fail_all();
        self.calls.abort();
        self.enter(Phase::Closing);
        self.start_deadline();
    }

    /// A close asked for on this side, with the frame to send if any. Only
    /// the first close is heard: a later one finds the connection closing.
    pub(super) fn close_saying(&mut self, frame: Option<CloseFrame>) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        let why = match (&frame, &self.close_frames) {
            (Some(frame), Some(hooks)) => match (hooks.set)(&mut self.transport, frame) {
                Ok(()) => format!("closed on this side ({frame})"),
                Err(err) => {
                    tracing::warn!("closing without the close frame ({frame}): {err}");
                    "closed on this side".to_owned()
                }
            },
            (Some(frame), None) => {
                tracing::debug!("the transport has no close frames: closing without {frame}");
                "closed on this side".to_owned()
            }
            (None, _) => "closed on this side".to_owned(),
        };
        self.outgoing.close_reason.get_or_insert_with(|| why.into());
    }

    /// Moves the shutdown along; `Ready` when the driver is done.
    pub(super) fn poll_shutdown(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let expired = self
            .deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready());
        if matches!(self.phase, Phase::Draining) {
            if self.calls.is_idle() {
                self.enter(Phase::Closing);
            } else if expired {
                tracing::debug!(
                    running = self.calls.running(),
                    "drain deadline passed: cancelling handlers"
                );
                // NB: every caller still waiting is told, and the answers
                // get a short deadline of their own to be written: the
                // drain's has passed.
                let err = ErrorObject::new(
                    ErrorObject::SHUTTING_DOWN,
                    format!(
                        "Shutting down: the call did not finish within the drain timeout ({:?})",
                        self.config.drain_timeout
                    ),
                );
                self.calls.fail_all(&err, &mut self.outbox);
                self.outgoing.fail_all();
                self.enter(Phase::Closing);
                let at = Instant::now() + LAST_WRITE.min(self.config.drain_timeout);
                self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
                // The answers are in the outbox: another turn writes them.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if matches!(self.phase, Phase::Closing) {
            if self.outbox.is_settled() {
                if !self.closed {
                    match Pin::new(&mut self.transport).poll_close(cx) {
                        Poll::Ready(Ok(())) => self.closed = true,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        // Everything was written; only the polite close (a
                        // WebSocket close handshake, say) is left undone.
                        Poll::Pending if expired => return Poll::Ready(Ok(())),
                        Poll::Pending => return Poll::Pending,
                    }
                    // NB: only a transport with a closing handshake waits
                    // for the peer's side: over a byte stream, a pipe or a
                    // channel the peer needs nothing more, and a `close()`
                    // would wait for a peer that keeps its end open.
                    if self.close_frames.is_none() {
                        return Poll::Ready(Ok(()));
                    }
                    self.shorten_deadline(LINGER);
                }
                return self.poll_linger(cx);
            }
            if expired {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the peer did not read our last {} frames ({} bytes) within the drain timeout",
                        self.outbox.len(),
                        self.outbox.bytes()
                    ),
                )));
            }
        }
        Poll::Pending
    }

    /// After our close frame, reads what the peer still sends, and drops
    /// it, until the peer's close frame (the end of its input) or the
    /// deadline. A socket closed with input unread is reset rather than
    /// closed: the peer may then lose what we wrote last, our close frame
    /// among it, and see an error where we closed cleanly (RFC 6455 §7.1.1
    /// has the server wait for the client's close frame before it closes
    /// the TCP connection).
    fn poll_linger(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        /// Frames dropped in one poll before the task yields: a peer that
        /// floods must not keep the runtime from firing the deadline (a
        /// current-thread runtime fires timers only between tasks).
        const PER_POLL: usize = 64;
        let mut dropped = 0_usize;
        while !self.input_ended {
            if (self.deadline.as_mut()).is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
                break;
            }
            if dropped == PER_POLL {
                tracing::debug!("dropped {dropped} messages sent after our close");
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match Pin::new(&mut self.transport).poll_next(cx) {
                Poll::Ready(Some(Ok(_))) => dropped += 1,
                Poll::Ready(Some(Err(_)) | None) => self.input_ended = true,
                Poll::Pending => break,
            }
        }
        if dropped > 0 {
            tracing::debug!("dropped {dropped} messages sent after our close");
        }
        match self.input_ended
            || (self.deadline.as_mut()).is_some_and(|d| d.as_mut().poll(cx).is_ready())
        {
            true => Poll::Ready(Ok(())),
            false => Poll::Pending,
        }
    }

    /// Brings the deadline to within `most` from now.
    fn shorten_deadline(&mut self, most: std::time::Duration) {
        let at = Instant::now() + most;
        let at = match &self.deadline {
            Some(deadline) => deadline.deadline().min(at),
            None => at,
        };
        self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
    }

    /// With an idle timeout, begins the shutdown of an open connection once
    /// no message has moved for that long; whether it did. `active` says
    /// whether a message was read or written this turn.
    pub(super) fn close_if_idle(&mut self, active: bool, cx: &mut TaskContext<'_>) -> bool {
        let Some(idle) = self
            .idle
            .as_mut()
            .filter(|_| matches!(self.phase, Phase::Open))
        else {
            return false;
        };
        let (calls, outgoing, outbox) = (&self.calls, &self.outgoing, &self.outbox);
        let busy = || !calls.is_idle() || outgoing.is_waiting() || !outbox.is_settled();
        if !idle.expired(active, busy, cx) {
            return false;
        }
        let after = idle.after();
        tracing::debug!("closing a connection idle for {after:?}");
        let why = format!("idle for {after:?}");
        // NB: a WebSocket peer is told why in the close frame, as a normal
        // closure: it was not refused, only left alone too long.
        if let (Some(hooks), Ok(frame)) = (&self.close_frames, CloseFrame::new(1000, why.as_str()))
        {
            if let Err(err) = (hooks.set)(&mut self.transport, &frame) {
                tracing::debug!("closing without the close frame ({frame}): {err}");
            }
        }
        self.outgoing.close_reason = Some(why.into());
        self.begin_shutdown();
        true
    }

    /// Ends the connection now, without a drain: the transport failed, or
    /// the peer stopped reading. `why` is what our pending calls are told,
    /// unless a read failure came first.
    pub(super) fn cut_off(&mut self, why: String, err: io::Error) -> Poll<Result<(), Error>> {
        // NB: a read failure came first when there is one: what fails after
        // it (the write of its answer, on a WebSocket already closing) only
        // follows from it, and the reason it gave stands.
        let err = match self.failure.take() {
            Some(first) => first,
            None => {
                self.outgoing.close_reason = Some(why.into());
                err
            }
        };
        // NB: a WebSocket refuses writes once the peer's close frame is in,
        // which may be before its stream has said it ended: the frame is
        // why the write failed.
        self.read_peer_close();
        self.abort();
        self.finish();
        Poll::Ready(Err(Error::Transport(err)))
    }

    /// What the driver's future completes with, once `poll_shutdown` is
    /// done with `closed` (the transport's close, or why the end could not
    /// wait for it): a read error seen earlier is the connection's failure,
    /// whether the close itself went well or failed after it.
    pub(super) fn ended(&mut self, closed: io::Result<()>) -> Result<(), Error> {
        self.finish();
        match (closed, self.failure.take()) {
            (_, Some(err)) | (Err(err), None) => Err(Error::Transport(err)),
            (Ok(()), None) => Ok(()),
        }
    }
}

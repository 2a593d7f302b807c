//! Frames waiting to be written: counted in frames and bytes, handed to the transport in one flush per turn.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::Sink;

/// What the driver has to write, in order.
pub(crate) struct Outbox {
    frames: VecDeque<String>,
    /// The bytes the frames hold, for limits that count memory, not frames.
    bytes: usize,
    /// Frames went to the transport since its last flush.
    unflushed: bool,
    max_frames: usize,
    max_bytes: usize,
    /// The connection's number, for the frames traced as they leave.
    connection: u64,
}

impl Outbox {
    /// An outbox that has room while it holds fewer than `max_frames`
    /// frames and `max_bytes` bytes, for connection number `connection`.
    pub(crate) fn new(max_frames: usize, max_bytes: usize, connection: u64) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            unflushed: false,
            max_frames,
            max_bytes,
            connection,
        }
    }

    /// Whether new work may add to it. A single reply larger than the
    /// byte bound still goes in when there is room: the bound stops new
    /// work, it never refuses a reply.
    pub(crate) fn has_room(&self) -> bool {
        self.frames.len() < self.max_frames && self.bytes < self.max_bytes
    }

    /// Past twice its bounds: the hard stop for reading, even while we
    /// wait for replies (see the driver's `may_read`).
    pub(crate) fn is_overfull(&self) -> bool {
        self.frames.len() >= 2 * self.max_frames || self.bytes >= 2 * self.max_bytes
    }

    pub(crate) fn push(&mut self, frame: String) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Drops every frame waiting: the peer can no longer be written to.
    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.unflushed = false;
    }

    /// Frames waiting.
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Bytes waiting.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Nothing waits and everything written was flushed.
    pub(crate) fn is_settled(&self) -> bool {
        self.frames.is_empty() && !self.unflushed
    }

    /// Hands every waiting frame the transport takes, then flushes once;
    /// `Ok(true)` when a frame moved.
    pub(crate) fn poll_write<T>(
        &mut self,
        transport: &mut T,
        cx: &mut TaskContext<'_>,
    ) -> Poll<io::Result<bool>>
    where
        T: Sink<String, Error = io::Error> + Unpin,
    {
        let mut moved = false;
        while !self.frames.is_empty() {
            match Pin::new(&mut *transport).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => break,
            }
            if let Some(frame) = self.frames.pop_front() {
                self.bytes -= frame.len();
                crate::observe::frame_out(self.connection, &frame);
                Pin::new(&mut *transport).start_send(frame)?;
                self.unflushed = true;
                moved = true;
            }
        }
        // NB: one flush for everything written in this turn: the replies
        // to all the requests read in one go share one write call.
        if self.unflushed {
            match Pin::new(&mut *transport).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(moved))
    }
}

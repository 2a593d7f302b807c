//! `Handles`: the driver's end of what its `Peer` handles queue (control messages, our own calls), and which of those queues is worth a look.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use crate::outbox::Outbox;
use crate::outgoing::Outgoing;
use crate::peer::{Control, PeerChannels};
use crate::transport::CloseFrame;

/// The handles' two queues as the driver sees them: looked into only
/// after their doorbell rang (see `Doorbell`), and then until each is
/// empty, control before commands.
pub(crate) struct Handles {
    channels: PeerChannels,
    queued: Queued,
}

/// Which queues may still hold something since the doorbell last rang. A
/// queue left unfinished (commands held back by the outbox's bound, or by
/// closing) stays marked across polls, rung or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    Both,
    Commands,
    Nothing,
}

// NB: the methods a round calls are inlined into the driver's loop: most
// rounds find the bell silent, and then each look is a test of `queued`
// rather than a call (about 60 instructions of a request's 7,500 at one
// request at a time, by callgrind).
impl Handles {
    pub(crate) fn new(channels: PeerChannels) -> Self {
        Self {
            channels,
            // NB: a handle may have queued before the driver's first poll.
            queued: Queued::Both,
        }
    }

    /// Answers the doorbell at the start of a round: the task's waker is
    /// registered for the next ring, then a ring since the last look marks
    /// both queues.
    #[inline(always)]
    pub(crate) fn answer(&mut self, cx: &mut TaskContext<'_>) {
        if self.channels.doorbell.answer(cx) {
            self.queued = Queued::Both;
        }
    }

    /// Looks at the doorbell again later in the same round, once handlers
    /// have run: the waker is registered already, so the flag is enough.
    /// Whether it rang.
    #[inline(always)]
    pub(crate) fn look_again(&mut self) -> bool {
        let rang = self.channels.doorbell.rang();
        if rang {
            self.queued = Queued::Both;
        }
        rang
    }

    /// The next control message, while any is queued and the task's
    /// budget lasts.
    #[inline(always)]
    pub(crate) fn next_control(&mut self, cx: &mut TaskContext<'_>) -> Option<Control> {
        if self.queued != Queued::Both {
            return None;
        }
        // NB: as tokio's channels did, each message spends the task's
        // budget, so that a flood yields the thread to other tasks.
        let Poll::Ready(budget) = tokio::task::coop::poll_proceed(cx) else {
            return None;
        };
        let Ok(control) = self.channels.control.try_recv() else {
            self.queued = Queued::Commands;
            return None;
        };
        budget.made_progress();
        Some(control)
    }

    /// Writes the next queued command of ours into the outbox, once the
    /// control queue is empty and while the budget lasts; whether there
    /// was one. It does not look at the outbox's room: call it only while
    /// the outbox has some.
    #[inline(always)]
    pub(crate) fn next_command(
        &mut self,
        cx: &mut TaskContext<'_>,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) -> bool {
        if self.queued != Queued::Commands {
            return false;
        }
        let Poll::Ready(budget) = tokio::task::coop::poll_proceed(cx) else {
            return false;
        };
        if !outgoing.next_command(outbox) {
            self.queued = Queued::Nothing;
            return false;
        }
        budget.made_progress();
        true
    }

    /// The driver has stopped: every `Peer` sees it.
    pub(crate) fn end(&self) {
        self.channels.end();
    }

    /// The peer's stream ended with `frame`: every `Peer` sees it from
    /// now, before the driver has stopped.
    pub(crate) fn peer_closed_with(&self, frame: Arc<CloseFrame>) {
        self.channels.peer_closed_with(frame);
    }
}

//! `Idle`: the idle timeout's clock, by which a connection where nothing moved for that long is closed.

use std::future::Future;
use std::pin::Pin;
use std::task::Context as TaskContext;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// When the connection last moved a message, and the timer that looks
/// whether that was more than the timeout ago.
pub(crate) struct Idle {
    after: Duration,
    /// When a message last moved (or the clock was made).
    last: Instant,
    /// Fires at `last + after`, or later: moved on only when it fires.
    sleep: Pin<Box<Sleep>>,
}

impl Idle {
    /// A clock for an idle timeout of `after`, starting now.
    pub(crate) fn new(after: Duration) -> Self {
        Self {
            after,
            last: Instant::now(),
            sleep: Box::pin(tokio::time::sleep(after)),
        }
    }

    pub(crate) fn after(&self) -> Duration {
        self.after
    }

    /// Whether the connection has been idle for the timeout: nothing moved
    /// either way and nothing in flight. `active` says whether a message
    /// was read or written in this turn; `busy`, asked only once the timer
    /// fires, whether anything is in flight.
    pub(crate) fn expired(
        &mut self,
        active: bool,
        busy: impl FnOnce() -> bool,
        cx: &mut TaskContext<'_>,
    ) -> bool {
        if active {
            // NB: only noted: the timer is moved on when it fires, since
            // resetting it at every turn cost a tenth of a request.
            self.last = Instant::now();
        }
        // NB: polled on busy turns too, since no other round may follow
        // one: a sleep that was never polled, or that fired during a busy
        // turn (its wake-up spent), would wake nobody once the peer falls
        // quiet. And polled for real, not skipped while it seems to hold
        // this task's waker: a poll may answer `Pending` having registered
        // nothing (tokio's, with the task's budget spent or in a task
        // dump), and then only a real poll sets it going again.
        if self.sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        let now = Instant::now();
        // NB: a long call is no idleness: look again a period later.
        let since = if busy() { now } else { self.last };
        let Some(due) = since.checked_add(self.after) else {
            return false;
        };
        if due <= now {
            return true;
        }
        self.sleep.as_mut().reset(due);
        let _ = self.sleep.as_mut().poll(cx);
        false
    }
}

//! `WriteStall`: the write timeout, by which a peer that stopped reading is cut off.

use std::future::Future;
use std::pin::Pin;
use std::task::Context as TaskContext;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A timer armed while the outbox is full, and moved on whenever a frame
/// is written: when it fires, the peer is taken as not reading.
#[derive(Default)]
pub(crate) struct WriteStall {
    /// Made each time the outbox fills, dropped once it has room again:
    /// most connections never arm it, and an idle one should not carry a
    /// timer's size.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl WriteStall {
    /// Whether the outbox has been full, with nothing written, for
    /// `timeout`. `full` says whether it is full now, `moved` whether this
    /// turn wrote a frame.
    // NB: inlined, so that the common case, an outbox with room, costs the
    // driver's every turn a test rather than a call (about 20 instructions
    // of a request's 7,500 at one request at a time, by callgrind).
    #[inline(always)]
    pub(crate) fn stalled(
        &mut self,
        full: bool,
        moved: bool,
        timeout: Duration,
        cx: &mut TaskContext<'_>,
    ) -> bool {
        if !full {
            self.sleep = None;
            return false;
        }
        self.still_full(moved, timeout, cx)
    }

    /// The outbox is full: arms the timer, or moves it on if a frame was
    /// written; whether it fired.
    fn still_full(&mut self, moved: bool, timeout: Duration, cx: &mut TaskContext<'_>) -> bool {
        let deadline = Instant::now() + timeout;
        match &mut self.sleep {
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            Some(sleep) if moved => sleep.as_mut().reset(deadline),
            Some(_) => {}
        }
        self.sleep
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}

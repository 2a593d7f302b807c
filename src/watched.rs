//! A channel the driver polls only when a message may have come: while it holds this task's waker and is empty, a poll would only say so again.
//!
//! A tokio receiver that answers `Pending` keeps the waker it was polled
//! with until a message (or the channel's close) wakes it. The driver asks
//! each of its channels at every turn, and most turns find them empty;
//! each such poll takes a unit of the task's budget and registers the
//! waker anew. [`Watched`] remembers that its receiver is parked on this
//! task's waker and asks the channel, with a few atomic loads, whether it
//! is still empty and open; only then does it skip the poll.

use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc;

/// The receiving end of a tokio channel, as [`Watched`] uses it.
pub(crate) trait Receiver {
    type Item;
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::Item>>;
    fn try_recv(&mut self) -> Option<Self::Item>;
    /// Empty and open: a poll would find nothing to return.
    fn is_quiet(&self) -> bool;
}

impl<T> Receiver for mpsc::Receiver<T> {
    type Item = T;
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        mpsc::Receiver::poll_recv(self, cx)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::Receiver::try_recv(self).ok()
    }
    fn is_quiet(&self) -> bool {
        self.is_empty() && !self.is_closed()
    }
}

impl<T> Receiver for mpsc::UnboundedReceiver<T> {
    type Item = T;
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        mpsc::UnboundedReceiver::poll_recv(self, cx)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::UnboundedReceiver::try_recv(self).ok()
    }
    fn is_quiet(&self) -> bool {
        self.is_empty() && !self.is_closed()
    }
}

/// A receiver, and whether it is parked on a known waker.
pub(crate) struct Watched<R> {
    rx: R,
    /// The waker of the last poll that registered one.
    waker: Option<Waker>,
    /// Whether `waker` is still registered: set by a poll that answered
    /// `Pending` with budget left, cleared by anything taken, since the
    /// wake-up that announced it used the registration up.
    parked: bool,
}

impl<R: Receiver> Watched<R> {
    pub(crate) fn new(rx: R) -> Self {
        Watched {
            rx,
            waker: None,
            parked: false,
        }
    }

    /// As the receiver's `poll_recv`.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<R::Item>> {
        let known = self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if self.parked && known && self.rx.is_quiet() {
            return Poll::Pending;
        }
        // NB: with the task's budget spent, a tokio channel registers
        // nothing: it answers `Pending` and only asks for another turn.
        let budget = tokio::task::coop::has_budget_remaining();
        let polled = self.rx.poll_recv(cx);
        self.parked = budget && polled.is_pending();
        if self.parked && !known {
            self.waker = Some(cx.waker().clone());
        }
        polled
    }

    /// As the receiver's `try_recv`, with any error as `None`.
    pub(crate) fn try_recv(&mut self) -> Option<R::Item> {
        let item = self.rx.try_recv();
        if item.is_some() {
            self.parked = false;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    struct Wakes(AtomicUsize);
    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        (wakes.clone(), Waker::from(wakes))
    }

    /// Parked and empty: skipped. A message then wakes the waker, and the
    /// next poll takes it.
    #[tokio::test]
    async fn a_parked_receiver_is_woken_by_a_message_and_then_polled() {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let mut watched = Watched::new(rx);
        let (wakes, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(watched.poll_recv(&mut cx).is_pending());
        assert!(watched.parked);
        assert!(watched.poll_recv(&mut cx).is_pending());
        tx.send(7).unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the message woke nobody");
        assert_eq!(watched.poll_recv(&mut cx), Poll::Ready(Some(7)));
        assert!(!watched.parked);
    }

    /// What `try_recv` took was announced by a wake-up that used the
    /// registration up: the receiver is polled again, and registers anew,
    /// so the next message wakes the task too.
    #[tokio::test]
    async fn a_message_taken_by_try_recv_unparks_the_receiver() {
        let (tx, rx) = mpsc::channel::<u32>(4);
        let mut watched = Watched::new(rx);
        let (wakes, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(watched.poll_recv(&mut cx).is_pending());
        tx.send(1).await.unwrap();
        assert_eq!(watched.try_recv(), Some(1));
        assert!(watched.poll_recv(&mut cx).is_pending());
        tx.send(2).await.unwrap();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "the second message woke nobody"
        );
        assert_eq!(watched.poll_recv(&mut cx), Poll::Ready(Some(2)));
    }

    /// Another waker (the driver moved to another task) is registered by a
    /// real poll, not skipped.
    #[tokio::test]
    async fn another_waker_is_registered() {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let mut watched = Watched::new(rx);
        let (first, waker) = counting();
        assert!(watched
            .poll_recv(&mut Context::from_waker(&waker))
            .is_pending());
        let (second, other) = counting();
        assert!(watched
            .poll_recv(&mut Context::from_waker(&other))
            .is_pending());
        tx.send(1).unwrap();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the new waker was not registered"
        );
    }

    /// A poll made with the task's budget spent registers nothing, so it
    /// does not park the receiver: the next turn polls it for real, and a
    /// message then wakes the task.
    #[tokio::test]
    async fn a_poll_without_budget_does_not_park() {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let mut watched = Watched::new(rx);
        let (wakes, waker) = counting();
        poll_fn(|cx| {
            while let Poll::Ready(spent) = tokio::task::coop::poll_proceed(cx) {
                spent.made_progress();
            }
            assert!(watched
                .poll_recv(&mut Context::from_waker(&waker))
                .is_pending());
            Poll::Ready(())
        })
        .await;
        // A new turn, with a new budget.
        tokio::task::yield_now().await;
        assert!(watched
            .poll_recv(&mut Context::from_waker(&waker))
            .is_pending());
        let before = wakes.0.load(Ordering::SeqCst);
        tx.send(3).unwrap();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            before + 1,
            "the message woke nobody"
        );
    }

    /// A closed channel is not quiet: its end is seen.
    #[tokio::test]
    async fn a_closed_channel_is_polled_for_its_end() {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let mut watched = Watched::new(rx);
        let (_, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(watched.poll_recv(&mut cx).is_pending());
        drop(tx);
        assert_eq!(watched.poll_recv(&mut cx), Poll::Ready(None));
    }
}

//! `Doorbell`: how a connection's `Peer` handles tell its driver that a command or a control message is queued.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;

use futures::task::AtomicWaker;

/// Rung by a `Peer` after each command or control message it queues;
/// answered by the driver, which looks into those queues only after a ring.
///
/// NB: why not just poll the two tokio channels at every poll of the driver,
/// as before: each poll of an empty channel spends the task's budget and
/// registers its waker there. At one request at a time, where nearly every
/// poll finds both empty, that was about 550 instructions of a request's
/// 8,000. The driver now empties them with `try_recv`, which registers no
/// waker of the task's, so the channels' own wake-ups find none and cost
/// two atomics each; this bell's wake-up stands in for them. (`try_recv`
/// parks the thread in one case: a message whose sender, on another thread,
/// is between claiming its slot and writing it; the wait is that sender's
/// next few instructions, unless the OS preempts it there.)
///
/// No ring is missed. The driver registers its waker before it reads the
/// flag, and a ring sets the flag before it wakes. So a ring either sets the
/// flag before the driver reads it, and the driver sees it in this poll, or
/// comes after the registration, and wakes the driver for another poll.
/// (The pattern of `AtomicWaker`'s own documentation.) A message queued
/// before its ring may be taken in a poll that came before the ring's
/// wake-up; that wake-up then polls the driver once for nothing.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    rung: AtomicBool,
    waker: AtomicWaker,
}

impl Doorbell {
    /// Says that something was queued: call it after the message is in its
    /// queue, never before.
    pub(crate) fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the bell rang since it was last answered. Either way the
    /// task of `cx` is woken by the next ring.
    pub(crate) fn answer(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.rang()
    }

    /// Whether the bell rang since it was last answered, for a task that
    /// answered it earlier in the same poll: its waker is registered.
    pub(crate) fn rang(&self) -> bool {
        // NB: a load first, so that a poll that finds the bell silent (most
        // of them) writes nothing to a line the handles write to.
        self.rung.load(Ordering::Acquire) && self.rung.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use futures::task::{waker, ArcWake};

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl ArcWake for Wakes {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_ring_is_answered_once_and_wakes_the_task_that_answered_before_it() {
        let bell = Doorbell::default();
        let wakes = Arc::new(Wakes::default());
        let task = waker(wakes.clone());
        let mut cx = Context::from_waker(&task);

        // Rung before anyone answered: seen at the first answer, and only there.
        bell.ring();
        assert!(bell.answer(&mut cx));
        assert!(!bell.answer(&mut cx));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);

        // Rung after an answer: the task is woken, and the next answer sees it.
        bell.ring();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        bell.ring();
        assert!(bell.answer(&mut cx));
        assert!(!bell.answer(&mut cx));
    }

    #[test]
    fn rings_from_other_threads_are_never_lost() {
        // A driver-like task that sleeps until woken, against threads that
        // each queue and ring while it runs: every message is taken. A lost
        // ring leaves the task asleep with messages queued, which the
        // watchdog reports.
        const SENDERS: usize = 4;
        const EACH: usize = 50_000;
        let bell = Arc::new(Doorbell::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let (done, outcome) = std::sync::mpsc::channel();
        let start = Arc::new(std::sync::Barrier::new(SENDERS + 1));
        let task = {
            let (bell, start) = (bell.clone(), start.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime");
                let mut taken = 0;
                let mut polls = 0;
                let taken = runtime.block_on(futures::future::poll_fn(move |cx| {
                    polls += 1;
                    if polls == 1 {
                        start.wait();
                    }
                    if bell.answer(cx) {
                        while rx.try_recv().is_ok() {
                            taken += 1;
                        }
                    }
                    match taken {
                        n if n == SENDERS * EACH => std::task::Poll::Ready(n),
                        _ => std::task::Poll::Pending,
                    }
                }));
                let _ = done.send(taken);
            })
        };
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let (bell, tx, start) = (bell.clone(), tx.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for n in 0..EACH {
                        tx.send(n).expect("the receiver is alive");
                        bell.ring();
                    }
                })
            })
            .collect();
        drop(tx);
        let taken = outcome.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(taken, Ok(SENDERS * EACH), "a ring was lost");
        for sender in senders {
            sender.join().expect("a sender thread");
        }
        task.join().expect("the task's thread");
    }
}

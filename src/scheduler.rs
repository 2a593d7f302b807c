//! Which incoming calls may start now: the three [`Concurrency`] modes and the in-flight bound, as a plain structure.
//!
//! The scheduler knows nothing of futures or sockets: the driver submits
//! jobs, starts what [`Scheduler::next`] hands back and reports each job that
//! finishes. Its rules, which the unit tests below pin down:
//!
//! 1. At most `max_running` jobs run at once; the rest wait in arrival order.
//! 2. Concurrent jobs start in arrival order as slots free up.
//! 3. In-order jobs run one at a time, in arrival order, alongside
//!    concurrent ones.
//! 4. An exclusive job starts only when nothing runs and no in-order job
//!    that arrived before it is still waiting; while it runs nothing else
//!    starts.
//! 5. A waiting exclusive job is a barrier: no job that arrived after it,
//!    in-order or concurrent, starts before it has run.
//!
//! It also keeps the sum of the waiting jobs' [`Weight`]s, so the driver can
//! bound the queue by calls and bytes (a batch is as many calls as it has
//! entries, and weighs the bytes it was read from).
//!
//! A job that would start at once skips the queue ([`Scheduler::try_start`]):
//! most calls arrive on a connection with nothing waiting.

use std::collections::VecDeque;

use crate::router::Concurrency;

/// What a waiting job holds: the calls in it and the bytes they were read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Weight {
    pub(crate) calls: usize,
    pub(crate) bytes: usize,
}

/// A job that knows its [`Weight`].
pub(crate) trait Weighed {
    fn weight(&self) -> Weight;
}

/// A job waiting for its turn.
#[derive(Debug, Clone)]
struct Queued<J> {
    seq: u64,
    kind: Concurrency,
    job: J,
}

/// The waiting jobs of one connection and what runs now.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler<J> {
    /// Concurrent and exclusive jobs, in arrival order.
    ready: VecDeque<Queued<J>>,
    /// In-order jobs, in arrival order.
    serial: VecDeque<Queued<J>>,
    running: usize,
    serial_busy: bool,
    exclusive_running: bool,
    /// Exclusive jobs in `ready`: while none waits there is no barrier to
    /// look for.
    exclusive_waiting: usize,
    max_running: usize,
    next_seq: u64,
    /// The sum of the waiting jobs' weights.
    waiting: Weight,
}

impl<J: Weighed> Scheduler<J> {
    pub(crate) fn new(max_running: usize) -> Self {
        Self {
            ready: VecDeque::new(),
            serial: VecDeque::new(),
            running: 0,
            serial_busy: false,
            exclusive_running: false,
            exclusive_waiting: 0,
            max_running: max_running.max(1),
            next_seq: 0,
            waiting: Weight::default(),
        }
    }

    /// Jobs waiting to start.
    pub(crate) fn queued(&self) -> usize {
        self.ready.len() + self.serial.len()
    }

    /// What the waiting jobs hold, together.
    pub(crate) fn waiting(&self) -> Weight {
        self.waiting
    }

    fn add(&mut self, weight: Weight) {
        self.waiting.calls += weight.calls;
        self.waiting.bytes += weight.bytes;
    }

    fn take(&mut self, weight: Weight) {
        self.waiting.calls = self.waiting.calls.saturating_sub(weight.calls);
        self.waiting.bytes = self.waiting.bytes.saturating_sub(weight.bytes);
    }

    /// Jobs started and not yet finished.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Nothing waits and nothing runs.
    pub(crate) fn is_idle(&self) -> bool {
        self.running == 0 && self.queued() == 0
    }

    /// Counts a job of `kind` as started if it may start now, before any job
    /// that waits: what [`Scheduler::submit`] and then [`Scheduler::next`]
    /// would do, without queueing it. `false`: submit it.
    ///
    /// Only when every job that may start has been handed out (`next` has
    /// returned `None` since the last change): a waiting job is then one
    /// the rules hold back, and this job must not pass it.
    pub(crate) fn try_start(&mut self, kind: Concurrency) -> bool {
        let may = self.may_start(kind);
        if may {
            self.running += 1;
            match kind {
                Concurrency::InOrder => self.serial_busy = true,
                Concurrency::Exclusive => self.exclusive_running = true,
                Concurrency::Concurrent => {}
            }
        }
        may
    }

    /// Whether [`Scheduler::try_start`] would start a job of `kind` now.
    pub(crate) fn may_start(&self, kind: Concurrency) -> bool {
        if self.exclusive_running || self.running >= self.max_running {
            return false;
        }
        match kind {
            // Rule 2, and rule 5: a waiting exclusive job is in `ready`.
            Concurrency::Concurrent => self.ready.is_empty(),
            // Rule 3, and rule 5 for in-order jobs.
            Concurrency::InOrder => {
                !self.serial_busy && self.serial.is_empty() && self.exclusive_waiting == 0
            }
            // Rule 4.
            Concurrency::Exclusive => {
                self.running == 0 && self.ready.is_empty() && self.serial.is_empty()
            }
        }
    }

    /// Queues `job`; [`Scheduler::next`] says when it may start.
    pub(crate) fn submit(&mut self, kind: Concurrency, job: J) {
        self.add(job.weight());
        self.next_seq += 1;
        let queued = Queued {
            seq: self.next_seq,
            kind,
            job,
        };
        match kind {
            Concurrency::InOrder => self.serial.push_back(queued),
            Concurrency::Concurrent => self.ready.push_back(queued),
            Concurrency::Exclusive => {
                self.exclusive_waiting += 1;
                self.ready.push_back(queued);
            }
        }
    }

    /// A job that may start now, counted as running from here on; `None`
    /// when every waiting job must wait longer.
    pub(crate) fn next(&mut self) -> Option<(Concurrency, J)> {
        // NB: the common case, nothing waiting, ends here before any rule
        // is looked at: this is asked after every call that finishes.
        if self.exclusive_running || self.queued() == 0 {
            return None;
        }
        let room = self.running < self.max_running;
        // The first exclusive job waiting is the barrier of rule 5.
        let barrier = (self.exclusive_waiting > 0)
            .then(|| self.ready.iter().find(|q| q.kind == Concurrency::Exclusive))
            .flatten()
            .map(|q| q.seq);
        let serial_may_start = !self.serial_busy
            && room
            && self
                .serial
                .front()
                .is_some_and(|q| barrier.is_none_or(|b| q.seq < b));
        if serial_may_start {
            let queued = self.serial.pop_front()?;
            self.serial_busy = true;
            return Some(self.started(queued));
        }
        let head = self.ready.front()?;
        let may_start = match head.kind {
            Concurrency::Exclusive => {
                self.running == 0 && self.serial.front().is_none_or(|q| q.seq > head.seq)
            }
            Concurrency::Concurrent | Concurrency::InOrder => room,
        };
        if !may_start {
            return None;
        }
        let queued = self.ready.pop_front()?;
        if queued.kind == Concurrency::Exclusive {
            self.exclusive_waiting -= 1;
            self.exclusive_running = true;
        }
        Some(self.started(queued))
    }

    fn started(&mut self, queued: Queued<J>) -> (Concurrency, J) {
        self.take(queued.job.weight());
        self.running += 1;
        (queued.kind, queued.job)
    }

    /// A job of `kind` that [`Scheduler::next`] handed out has finished.
    pub(crate) fn finished(&mut self, kind: Concurrency) {
        self.running = self.running.saturating_sub(1);
        match kind {
            Concurrency::InOrder => self.serial_busy = false,
            Concurrency::Exclusive => self.exclusive_running = false,
            Concurrency::Concurrent => {}
        }
    }

    /// Takes the first waiting job that `matches` out of the queues.
    pub(crate) fn remove(&mut self, mut matches: impl FnMut(&J) -> bool) -> Option<J> {
        let mut removed = None;
        for queue in [&mut self.ready, &mut self.serial] {
            if let Some(pos) = queue.iter().position(|q| matches(&q.job)) {
                removed = queue.remove(pos);
                break;
            }
        }
        let queued = removed?;
        if queued.kind == Concurrency::Exclusive {
            self.exclusive_waiting -= 1;
        }
        self.take(queued.job.weight());
        Some(queued.job)
    }

    /// Every waiting job, to change one in place.
    pub(crate) fn waiting_mut(&mut self) -> impl Iterator<Item = &mut J> {
        self.ready
            .iter_mut()
            .chain(self.serial.iter_mut())
            .map(|q| &mut q.job)
    }

    /// Takes every waiting job out, in no particular order.
    pub(crate) fn drain_waiting(&mut self) -> Vec<J> {
        let jobs = self
            .ready
            .drain(..)
            .chain(self.serial.drain(..))
            .map(|q| q.job)
            .collect();
        self.exclusive_waiting = 0;
        self.waiting = Weight::default();
        jobs
    }

    /// Forgets every job, waiting or running (the connection is gone and
    /// the driver dropped what ran).
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.serial.clear();
        self.running = 0;
        self.serial_busy = false;
        self.exclusive_running = false;
        self.exclusive_waiting = 0;
        self.waiting = Weight::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Concurrency::{Concurrent, Exclusive, InOrder};

    /// A test job weighs one call, and a byte per letter of its name.
    impl Weighed for &'static str {
        fn weight(&self) -> Weight {
            Weight {
                calls: 1,
                bytes: self.len(),
            }
        }
    }

    /// Starts everything that may start; returns the job names in order.
    fn start_all(s: &mut Scheduler<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| s.next().map(|(_, job)| job)).collect()
    }

    proptest::proptest! {
        /// Whatever ran before, a job that `try_start` starts is one that
        /// `submit` and `next` would have started at once, and the two
        /// leave the scheduler in the same state; one it refuses, they
        /// would have queued. `may_start` says beforehand which it is.
        #[test]
        fn try_start_is_submit_then_next(
            steps in proptest::collection::vec((0u8..5, 1usize..4), 1..60),
            max_running in 1usize..4,
        ) {
            let kinds = [Concurrent, InOrder, Exclusive];
            let mut s = Scheduler::new(max_running);
            let mut running = Vec::new();
            for (step, which) in steps {
                match step {
                    // Submit a job of some kind, both ways.
                    0..=2 => {
                        let kind = kinds[usize::from(step)];
                        let mut queued = s.clone();
                        queued.submit(kind, "j");
                        let started = start_all(&mut queued);
                        proptest::prop_assert_eq!(s.may_start(kind), s.clone().try_start(kind));
                        if s.try_start(kind) {
                            proptest::prop_assert_eq!(started, ["j"]);
                            running.push(kind);
                            proptest::prop_assert_eq!(
                                (s.running, s.serial_busy, s.exclusive_running, s.queued()),
                                (queued.running, queued.serial_busy, queued.exclusive_running, queued.queued())
                            );
                        } else {
                            proptest::prop_assert!(!started.contains(&"j"));
                            s.submit(kind, "j");
                        }
                    }
                    // A running job finishes.
                    _ if !running.is_empty() => {
                        let kind = running.remove(which % running.len());
                        s.finished(kind);
                    }
                    _ => {}
                }
                // As the connection does after every change.
                while let Some((kind, _)) = s.next() {
                    running.push(kind);
                }
            }
        }
    }

    #[test]
    fn concurrent_jobs_start_at_once_up_to_the_bound() {
        let mut s = Scheduler::new(2);
        for job in ["a", "b", "c"] {
            s.submit(Concurrent, job);
        }
        assert_eq!(start_all(&mut s), ["a", "b"]);
        assert_eq!((s.running(), s.queued()), (2, 1));
        s.finished(Concurrent);
        assert_eq!(start_all(&mut s), ["c"]);
    }

    #[test]
    fn in_order_jobs_run_one_at_a_time_beside_concurrent_ones() {
        let mut s = Scheduler::new(8);
        s.submit(InOrder, "n1");
        s.submit(InOrder, "n2");
        s.submit(Concurrent, "r1");
        assert_eq!(start_all(&mut s), ["n1", "r1"]);
        s.finished(InOrder);
        assert_eq!(start_all(&mut s), ["n2"]);
    }

    #[test]
    fn exclusive_waits_for_everything_running_and_runs_alone() {
        let mut s = Scheduler::new(8);
        s.submit(Concurrent, "r1");
        assert_eq!(start_all(&mut s), ["r1"]);
        s.submit(Exclusive, "x");
        s.submit(Concurrent, "r2");
        assert_eq!(start_all(&mut s), Vec::<&str>::new());
        s.finished(Concurrent);
        assert_eq!(start_all(&mut s), ["x"]);
        s.finished(Exclusive);
        assert_eq!(start_all(&mut s), ["r2"]);
    }

    #[test]
    fn a_waiting_exclusive_job_is_a_barrier_for_later_in_order_jobs() {
        let mut s = Scheduler::new(8);
        s.submit(InOrder, "n1");
        s.submit(Exclusive, "x");
        s.submit(InOrder, "n2");
        // n1 came first, so it runs; x waits for it; n2 waits for x.
        assert_eq!(start_all(&mut s), ["n1"]);
        s.finished(InOrder);
        assert_eq!(start_all(&mut s), ["x"]);
        s.finished(Exclusive);
        assert_eq!(start_all(&mut s), ["n2"]);
    }

    #[test]
    fn exclusive_waits_for_an_earlier_in_order_job_still_queued() {
        let mut s = Scheduler::new(8);
        s.submit(InOrder, "n1");
        s.submit(InOrder, "n2");
        s.submit(Exclusive, "x");
        assert_eq!(start_all(&mut s), ["n1"]);
        s.finished(InOrder);
        assert_eq!(start_all(&mut s), ["n2"]);
        s.finished(InOrder);
        assert_eq!(start_all(&mut s), ["x"]);
    }

    #[test]
    fn a_removed_exclusive_job_is_no_barrier_any_more() {
        let mut s = Scheduler::new(8);
        s.submit(Concurrent, "r1");
        assert_eq!(start_all(&mut s), ["r1"]);
        s.submit(Exclusive, "x");
        s.submit(InOrder, "n1");
        assert_eq!(start_all(&mut s), Vec::<&str>::new());
        assert_eq!(s.remove(|j| *j == "x"), Some("x"));
        assert_eq!(start_all(&mut s), ["n1"]);
    }

    #[test]
    fn removing_a_waiting_job_leaves_the_rest_in_order() {
        let mut s = Scheduler::new(1);
        for job in ["a", "b", "c"] {
            s.submit(Concurrent, job);
        }
        assert_eq!(start_all(&mut s), ["a"]);
        assert_eq!(s.remove(|j| *j == "b"), Some("b"));
        assert_eq!(s.remove(|j| *j == "b"), None);
        s.finished(Concurrent);
        assert_eq!(start_all(&mut s), ["c"]);
        s.finished(Concurrent);
        assert!(s.is_idle());
    }

    #[test]
    fn the_waiting_weight_follows_submit_start_remove_and_clear() {
        let mut s = Scheduler::new(1);
        for job in ["a", "bb", "ccc"] {
            s.submit(Concurrent, job);
        }
        assert_eq!(s.waiting(), Weight { calls: 3, bytes: 6 });
        assert_eq!(start_all(&mut s), ["a"]);
        assert_eq!(s.waiting(), Weight { calls: 2, bytes: 5 });
        assert_eq!(s.remove(|j| *j == "ccc"), Some("ccc"));
        assert_eq!(s.waiting(), Weight { calls: 1, bytes: 2 });
        s.clear();
        assert_eq!(s.waiting(), Weight::default());
    }
}

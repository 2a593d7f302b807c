//! A listener's cap on open connections: the places it hands out, and its log of the connections it refused.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one warning about refused connections per this long; those
/// refused in between are counted and the count goes in the next one.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The places of one listener: how many connections are open, and how many
/// may be.
#[derive(Debug)]
pub(crate) struct Places {
    open: Arc<AtomicUsize>,
    max: usize,
    refusals: Refusals,
}

impl Places {
    pub(crate) fn new(max: usize) -> Self {
        Places {
            open: Arc::new(AtomicUsize::new(0)),
            max: max.max(1),
            refusals: Refusals::default(),
        }
    }

    /// At least one: a listener that may hold no connection is no listener.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A place for the connection from `peer`, or `None` when every place
    /// is taken (the refusal is then logged).
    pub(crate) fn take(&self, peer: &impl fmt::Debug) -> Option<Place> {
        // NB: add first and check after, so that two tasks accepting on one
        // listener cannot both take the last place.
        if self.open.fetch_add(1, Ordering::AcqRel) < self.max {
            self.refusals.accepting(self.max);
            return Some(Place(self.open.clone()));
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.refusals.refused(peer, self.max);
        None
    }
}

/// One open connection's place; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refusals, logged at warn without flooding the log: a flood of
/// connections at a full listener writes one line per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Refusals {
    /// Refused since the last line about them.
    unreported: AtomicU64,
    /// When that line was written.
    last_line: Mutex<Option<Instant>>,
}

impl Refusals {
    fn refused(&self, peer: &impl fmt::Debug, max: usize) {
        self.unreported.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        {
            // A poisoned lock only means a panic elsewhere while logging.
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
                return;
            }
            *last = Some(now);
        }
        match self.unreported.swap(0, Ordering::Relaxed) {
            0 | 1 => tracing::warn!(
                ?peer,
                "refused a connection: all {max} places are taken (max_connections)"
            ),
            n => tracing::warn!(
                ?peer,
                "refused {n} connections, the last one now: all {max} places are taken (max_connections)"
            ),
        }
    }

    /// A connection got a place: report refusals no line has told of yet.
    fn accepting(&self, max: usize) {
        // NB: a plain load first, so that the usual accept costs no write.
        if self.unreported.load(Ordering::Relaxed) == 0 {
            return;
        }
        let n = self.unreported.swap(0, Ordering::Relaxed);
        if n > 0 {
            tracing::warn!(
                "accepting again, after refusing {n} more connections while all {max} places were taken (max_connections)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_given_back_on_drop() {
        let places = Places::new(2);
        let a = places.take(&"a").expect("first place");
        let _b = places.take(&"b").expect("second place");
        assert!(places.take(&"c").is_none(), "no third place");
        drop(a);
        assert!(places.take(&"d").is_some(), "a freed place is taken again");
    }

    #[test]
    fn a_cap_of_zero_is_one() {
        let places = Places::new(0);
        assert_eq!(places.max(), 1);
        let _only = places.take(&"a").expect("one place");
        assert!(places.take(&"b").is_none());
    }
}

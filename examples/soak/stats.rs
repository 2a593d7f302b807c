//! What the soak counts, shared by every connection task, with the first errors kept for the report.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// How many error messages the report repeats in full.
const KEPT_ERRORS: usize = 20;

/// The counters; every task adds to them, the monitor reads them.
#[derive(Default)]
pub(crate) struct Stats {
    /// Connections open on our side right now.
    pub(crate) open: AtomicI64,
    /// Connections opened since the start.
    pub(crate) connects: AtomicU64,
    /// Requests sent that expect a reply (each request of a batch counts).
    pub(crate) calls: AtomicU64,
    /// Replies that came back and were right: right id, expected result or error.
    pub(crate) checked: AtomicU64,
    /// Calls cut off by our own abrupt disconnect: not the server's fault.
    pub(crate) interrupted: AtomicU64,
    /// Notifications sent (each of a batch counts).
    pub(crate) notifications: AtomicU64,
    /// Batches sent.
    pub(crate) batches: AtomicU64,
    /// Chat pushes received (`handleMessage`, `userLeft`).
    pub(crate) pushes: AtomicU64,
    /// The server's calls back to us (`callback`), answered.
    pub(crate) callbacks: AtomicU64,
    /// Connections ended by a graceful close.
    pub(crate) graceful: AtomicU64,
    /// Connections dropped with calls in flight.
    pub(crate) mid_call: AtomicU64,
    /// Connections dropped in the middle of a frame.
    pub(crate) mid_frame: AtomicU64,
    /// Connections dropped while idle, without a close.
    pub(crate) dropped_idle: AtomicU64,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
}

impl Stats {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts an error on a well-formed call or connection, keeping the
    /// first few messages for the report.
    pub(crate) fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut kept = self
            .first_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < KEPT_ERRORS {
            kept.push(what);
        }
    }

    /// Errors counted so far.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The first errors, in the order they happened.
    pub(crate) fn first_errors(&self) -> Vec<String> {
        self.first_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Connections open on our side.
    pub(crate) fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }
}

/// Counts a connection open for as long as it lives.
pub(crate) struct OpenGuard<'a>(&'a Stats);

impl<'a> OpenGuard<'a> {
    /// Counts one more open connection.
    pub(crate) fn new(stats: &'a Stats) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        Stats::add(&stats.connects, 1);
        Self(stats)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

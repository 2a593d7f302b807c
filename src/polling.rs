//! `Polling`: which connection's handlers this thread is polling, so that a handler closing its own connection does not wait for itself.

use std::cell::Cell;

thread_local! {
    /// The connection whose driver (or a handler's own task) this thread is
    /// polling now, if any.
    static CONNECTION: Cell<Option<u64>> = const { Cell::new(None) };
}

/// While alive, this thread polls the handlers of one connection; dropped,
/// what it polled before (a driver may be polled inside another's handler).
pub(crate) struct Polling(Option<u64>);

impl Polling {
    pub(crate) fn enter(connection: u64) -> Self {
        Polling(CONNECTION.with(|current| current.replace(Some(connection))))
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        CONNECTION.with(|current| current.set(self.0));
    }
}

/// Whether this thread is polling the handlers of `connection` right now.
pub(crate) fn handlers_of(connection: u64) -> bool {
    CONNECTION.with(Cell::get) == Some(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_polled_before_comes_back() {
        assert!(!handlers_of(1));
        {
            let _outer = Polling::enter(1);
            assert!(handlers_of(1));
            {
                let _inner = Polling::enter(2);
                assert!(handlers_of(2) && !handlers_of(1));
            }
            assert!(handlers_of(1));
        }
        assert!(!handlers_of(1));
    }
}

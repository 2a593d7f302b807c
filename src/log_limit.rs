//! Log lines a peer can cause at will, kept from flooding the log: one line per period for the whole process, the others counted in it.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one warning of a kind per this long, whatever the number of
/// peers and connections.
const PERIOD: Duration = Duration::from_secs(10);

/// One kind of warning a peer can trigger with every message it sends (a
/// response to no request of ours, say). A `static`, so that opening more
/// connections does not buy a peer more lines.
///
/// ```text
/// static STRAY: LogLimit = LogLimit::new();
/// match STRAY.allow() {
///     Some(more) => tracing::warn!("response to no request of ours{more}"),
///     None => tracing::debug!("response to no request of ours"),
/// }
/// ```
pub(crate) struct LogLimit {
    state: Mutex<State>,
}

struct State {
    /// When the last line was written.
    last: Option<Instant>,
    /// Lines held back since.
    held: u64,
}

impl LogLimit {
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                last: None,
                held: 0,
            }),
        }
    }

    /// `Some` when a line may be written now, with how many were held back
    /// since the last one (to append to the line); `None` when this one is
    /// held back (log it at debug, if at all).
    pub(crate) fn allow(&self) -> Option<HeldBack> {
        // A poisoned lock only means a thread panicked while counting: the
        // count is still good enough for a log line.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < PERIOD)
        {
            state.held += 1;
            return None;
        }
        state.last = Some(now);
        Some(HeldBack(std::mem::take(&mut state.held)))
    }
}

/// How many lines were held back since the last one written; shown as the
/// end of the next line (nothing when none were).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HeldBack(u64);

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(
                f,
                " ({n} more like it since the last such line, logged at debug)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_then_the_count_of_those_held_back() {
        let limit = LogLimit::new();
        // The first line says nothing more.
        assert_eq!(
            limit.allow().map(|more| more.to_string()).as_deref(),
            Some("")
        );
        for _ in 0..1000 {
            assert_eq!(limit.allow(), None);
        }
        // The period passes (faked: the clock is the system's).
        limit.state.lock().unwrap().last = Instant::now().checked_sub(PERIOD);
        let more = limit.allow().expect("a line after the period");
        assert_eq!(
            more.to_string(),
            " (1000 more like it since the last such line, logged at debug)"
        );
        assert_eq!(limit.allow(), None);
    }
}

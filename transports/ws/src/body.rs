//! Reading one HTTP request body: bounded in size, in time, and in the memory all bodies on a server hold at once.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use tokio::time::Instant;

/// The memory that HTTP request bodies may hold at once, shared by every
/// connection a server serves.
///
/// A body is charged for the buffer it is read into as that buffer grows
/// (never more than twice the bytes received, nor more than its declared
/// `Content-Length`), and the charge is given back once its response has
/// been produced. A request whose body would take the budget past its limit
/// is answered `503 Service Unavailable` at once (with `Retry-After` and
/// `Connection: close`), and the other requests go on.
///
/// Clones share one budget: [`Config`](crate::Config) holds one, and a
/// server that serves every connection with clones of one `Config` bounds
/// them all together. Two budgets compare equal when their limits are equal.
///
/// ```
/// use rpcpeer_ws::{BodyBudget, Config};
///
/// let budget = BodyBudget::new(8 << 20);
/// let config = Config { http_body_budget: budget.clone(), ..Config::default() };
/// // ... serve with clones of `config`; later, see what bodies hold:
/// assert_eq!(budget.in_use(), 0);
/// assert_eq!(config.http_body_budget.limit(), 8 << 20);
/// ```
#[derive(Clone)]
pub struct BodyBudget {
    inner: Arc<Budget>,
}

struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    /// The default limit: 64 MiB, four bodies of the default
    /// [`Config::max_message_len`](crate::Config::max_message_len).
    pub const DEFAULT: usize = 64 << 20;

    /// A budget of `limit` bytes. Keep it at least
    /// [`Config::max_message_len`](crate::Config::max_message_len), or the
    /// largest bodies can never be read.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Budget {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// The bytes request bodies hold right now.
    pub fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// A charge of nothing yet, given back when dropped.
    fn charge(&self) -> Charge {
        Charge {
            budget: self.clone(),
            held: 0,
        }
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

impl PartialEq for BodyBudget {
    fn eq(&self, other: &Self) -> bool {
        self.limit() == other.limit()
    }
}

impl Eq for BodyBudget {}

impl fmt::Debug for BodyBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyBudget")
            .field("limit", &self.limit())
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// What one body holds of a [`BodyBudget`]; given back when dropped.
pub(crate) struct Charge {
    budget: BodyBudget,
    held: usize,
}

impl Charge {
    /// Takes `more` bytes; `false` (and nothing taken) when the budget has
    /// not that much left.
    fn grow(&mut self, more: usize) -> bool {
        let inner = &self.budget.inner;
        let taken = inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(more).filter(|&total| total <= inner.limit)
            });
        if taken.is_ok() {
            self.held += more;
        }
        taken.is_ok()
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget
            .inner
            .used
            .fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit (declared, or counted as it came).
    TooLarge(usize),
    /// Not all there when the body timeout passed.
    TimedOut(Duration),
    /// The server's body budget has no room for it.
    Busy,
    /// The connection failed, or the chunked framing was broken.
    Broken(hyper::Error),
    /// Read whole, but not UTF-8: the bytes, and where they are not.
    NotText(std::string::FromUtf8Error),
}

/// Reads `body` whole, as text.
///
/// NB: hyper hands over each read from the socket as a `Bytes` that shares
/// hyper's read buffer, and needs a fresh buffer for its next read while one
/// is kept. Collecting those pieces (as `BodyExt::collect` does) made a body
/// trickled one byte per read keep a whole buffer per byte, about 4 KiB, and
/// a list entry per piece; each piece is copied out here and dropped at once,
/// so hyper reuses its buffer and the body costs what it holds.
pub(crate) async fn read(
    mut body: Incoming,
    max: usize,
    timeout: Duration,
    budget: &BodyBudget,
) -> Result<(String, Charge), BodyError> {
    let deadline = Instant::now() + timeout;
    // The declared length, when there is one: the buffer never grows past it.
    let declared = body
        .size_hint()
        .exact()
        .map(|len| usize::try_from(len).unwrap_or(usize::MAX));
    if declared.is_some_and(|len| len > max) {
        return Err(BodyError::TooLarge(max));
    }
    let mut charge = budget.charge();
    let mut buf: Vec<u8> = Vec::new();
    // One timer for the whole body: a timeout per frame would register and
    // cancel a timer for every chunk.
    let expired = tokio::time::sleep_until(deadline);
    tokio::pin!(expired);
    loop {
        let frame = tokio::select! {
            biased;
            () = &mut expired => return Err(BodyError::TimedOut(timeout)),
            frame = body.frame() => frame,
        };
        let frame = match frame {
            None => break,
            Some(Err(err)) => return Err(BodyError::Broken(err)),
            Some(Ok(frame)) => frame,
        };
        // Trailers carry nothing we use.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let needed = buf.len() + data.len();
        if needed > max {
            return Err(BodyError::TooLarge(max));
        }
        if needed > buf.capacity() {
            // Doubling keeps the copies linear; the declared length and the
            // limit cap it, so a body never holds more than it may need.
            let target = (buf.capacity() * 2)
                .max(1024)
                .min(declared.unwrap_or(max).min(max))
                .max(needed);
            if !charge.grow(target - charge.held) {
                return Err(BodyError::Busy);
            }
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&data);
    }
    let text = String::from_utf8(buf).map_err(BodyError::NotText)?;
    Ok((text, charge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_refused_past_the_limit_and_given_back_when_dropped() {
        let budget = BodyBudget::new(100);
        let mut a = budget.charge();
        assert!(a.grow(60));
        let mut b = budget.charge();
        assert!(!b.grow(41), "over the limit");
        assert!(b.grow(40));
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }
}

//! What a connection tells `tracing`: a span around every call in and out, and every frame at `trace` level.
//!
//! Spans are at `debug`, frames at `trace` under the target
//! `rpcpeer::frames`. With those levels off (a subscriber at `info`, or
//! none at all) a call pays a few level checks and nothing else: no span is
//! built, no field formatted, no allocation made, the handler's future is
//! not wrapped.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::Empty;
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::{Level, Span};

use crate::auth::Identity;
use crate::excerpt::{excerpt, excerpt_of};
use crate::message::Id;
use crate::session::Session;

/// A number for every connection of the process (and every one-shot
/// request, which is a connection of its own), so that log lines can be
/// told apart.
pub(crate) fn next_connection() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether any subscriber may want `level` at all: one atomic load. The
/// span macros check this too, but only once a span is being made, passed
/// around and dropped, which cost 2-4% of a message when checked there.
#[inline(always)]
fn wanted(level: Level) -> bool {
    level <= STATIC_MAX_LEVEL && level <= LevelFilter::current()
}

/// Whether calls may be wanted in spans; when not, nothing here need be called.
#[inline(always)]
pub(crate) fn spans_wanted() -> bool {
    wanted(Level::DEBUG)
}

/// The span an incoming call runs in: its method, its id (none for a
/// notification), its connection, and who called when the connection is
/// logged in. The caller is looked up only when the span is wanted.
pub(crate) fn incoming(method: &str, id: Option<&Id>, connection: u64, session: &Session) -> Span {
    let span = match id {
        Some(id) => tracing::debug_span!(
            "incoming",
            method = %excerpt(method),
            id = %excerpt_of(id),
            connection,
            caller = Empty
        ),
        None => tracing::debug_span!(
            "incoming",
            method = %excerpt(method),
            connection,
            caller = Empty
        ),
    };
    if !span.is_disabled() {
        session.read(|identity: Option<&Identity>| {
            if let Some(identity) = identity {
                span.record("caller", excerpt(&identity.user).as_ref());
            }
        });
    }
    span
}

/// The span one of our own calls runs in, from sending it to its reply.
pub(crate) fn outgoing(method: &str, id: Option<u64>, connection: u64) -> Span {
    match id {
        Some(id) => tracing::debug_span!("outgoing", method = %excerpt(method), id, connection),
        None => tracing::debug_span!("outgoing", method = %excerpt(method), connection),
    }
}

/// The caller of the call running now has just logged in: its span says
/// so from here on.
pub(crate) fn logged_in(identity: &Identity) {
    if !spans_wanted() {
        return;
    }
    let span = Span::current();
    if !span.is_disabled() {
        span.record("caller", excerpt(&identity.user).as_ref());
    }
}

/// A frame read from the peer, as vscode-jsonrpc's message tracing shows
/// it: at `trace` level, cut to an excerpt (a 16 MiB frame is never
/// logged whole).
#[inline(always)]
pub(crate) fn frame_in(connection: u64, frame: &str) {
    if wanted(Level::TRACE) {
        trace_frame(connection, frame, "received");
    }
}

/// A frame handed to the transport, as [`frame_in`].
#[inline(always)]
pub(crate) fn frame_out(connection: u64, frame: &str) {
    if wanted(Level::TRACE) {
        trace_frame(connection, frame, "sent");
    }
}

#[inline(never)]
fn trace_frame(connection: u64, frame: &str, way: &'static str) {
    tracing::trace!(target: "rpcpeer::frames", connection, frame = %excerpt(frame), "{way}");
}

//! Cancellation both ways: the peer cancels a call of ours to run, or our caller gives up on a call to the peer.

use serde_json::value::RawValue;

use crate::message::{encode_notification, Id, Version};
use crate::running::{Running, Work};
use crate::scheduler::Scheduler;

/// The id in `$/cancelRequest` params: `{"id": …}` (LSP) or `[…]`.
pub(crate) fn target(params: &RawValue) -> Option<Id> {
    #[derive(serde::Deserialize)]
    struct ByName {
        id: Id,
    }
    serde_json::from_str::<ByName>(params.get())
        .map(|p| p.id)
        .or_else(|_| serde_json::from_str::<(Id,)>(params.get()).map(|p| p.0))
        .ok()
}

/// Cancels the peer's call `id`, if it has not been answered yet. Work
/// still waiting for its turn that the cancel leaves with nothing to run
/// is taken out and returned, to answer now: left in the queue, an
/// exclusive call would hold back what came after it. A running call (or
/// one of several in waiting work) has its handler dropped and answers
/// -32800 in its turn. Rare, so a search is cheaper than keeping an index
/// of every call.
///
/// Ids are the peer's to choose, and nothing stops two calls in flight from
/// sharing one: each runs and is answered on its own, with that id (spec
/// §5: the reply carries the request's id; telling the replies apart is the
/// client's affair). Refusing the second would need a table of the ids in
/// flight, a hash of every id on the request path, for a client's bug.
/// A cancel then ends one call per cancel notification: one still waiting
/// for its turn if there is one (nothing of it has run yet), else the one
/// that started last, which is the one a client that reused the id still
/// knows by it. `started` yields the newest first for that. A second cancel
/// ends the next.
pub(crate) fn incoming<'a>(
    id: &Id,
    scheduler: &mut Scheduler<Work>,
    mut started: impl Iterator<Item = &'a mut Running>,
) -> Option<Work> {
    if scheduler.waiting_mut().any(|work| work.cancel(id)) {
        // NB: only the work just cancelled can be settled: work is never
        // queued with nothing to run.
        return scheduler.remove(Work::is_settled);
    }
    if !started.any(|run| run.cancel(id)) {
        tracing::debug!(%id, "cancel for a call already answered, or never seen");
    }
    None
}

/// The notification that tells the peer we no longer wait for request `id`.
pub(crate) fn notice(version: Version, method: &str, id: u64) -> String {
    let params = format!(r#"{{"id":{id}}}"#);
    let params = RawValue::from_string(params).ok();
    encode_notification(version, method, params.as_deref())
}

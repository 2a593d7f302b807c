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

/// Cancels the peer's call `id`, if it has not been answered yet. A single
/// call still waiting for its turn is taken out and its -32800 returned, to
/// write now; a running one (or an entry of a batch) has its handler
/// dropped and answers -32800 in its turn. Rare, so a search is cheaper
/// than keeping an index of every call.
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
) -> Option<String> {
    if let Some(mut work) = scheduler.remove(|work| work.is_single_call(id)) {
        work.cancel(id);
        return work.take_reply();
    }
    let found =
        scheduler.waiting_mut().any(|work| work.cancel(id)) || started.any(|run| run.cancel(id));
    if !found {
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

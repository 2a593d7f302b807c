//! Our outgoing requests that wait for a reply, by id. Owned by the driver alone, so no lock.

use foldhash::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::error::ErrorObject;
use crate::progress::ReportSink;
use crate::transport::CloseFrame;

/// Why a waiting call ended without a result.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The peer answered with an error object.
    Remote(ErrorObject),
    /// The peer's answer is no valid response; says what is wrong with it.
    Invalid(String),
    /// The connection was ending when the call reached the driver, so it was
    /// never written: it can safely go out on another connection. Says why
    /// the connection was ending.
    NotSent(Ending),
    /// The call was written (or handed to the transport), then the
    /// connection ended before its reply: the peer may or may not have run
    /// it. Says why the connection ended.
    Lost(Ending),
}

/// Why a connection ended, as each call it fails is told.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    pub(crate) why: Arc<str>,
    /// The close frame the peer ended it with, if its transport has them.
    pub(crate) peer_close: Option<Arc<CloseFrame>>,
}

pub(crate) type ReplySender = oneshot::Sender<Result<Box<RawValue>, Failure>>;

#[derive(Default)]
pub(crate) struct PendingTable {
    calls: HashMap<u64, Waiting>,
}

struct Waiting {
    reply: ReplySender,
    /// Bytes of the frame that carried the request: the whole array for a
    /// batch entry. A peer refuses a frame over its size limit unread.
    frame_len: usize,
    /// Where the call's progress reports go, when it asked for them (see
    /// `progress`). Kept here, so that whatever ends the wait ends them:
    /// from the answer on, a report under the call's token is not its own.
    reports: Option<ReportSink>,
}

impl PendingTable {
    pub(crate) fn insert(
        &mut self,
        id: u64,
        reply: ReplySender,
        frame_len: usize,
        reports: Option<ReportSink>,
    ) {
        self.calls.insert(
            id,
            Waiting {
                reply,
                frame_len,
                reports,
            },
        );
    }

    /// Where call `id`'s progress reports go, while it waits and if it
    /// asked for them.
    pub(crate) fn reports_of(&self, id: u64) -> Option<&ReportSink> {
        self.calls.get(&id)?.reports.as_ref()
    }

    /// Records that call `id` went out in a frame of `frame_len` bytes (a
    /// batch, whose length is known once all its entries are written).
    pub(crate) fn set_frame_len(&mut self, id: u64, frame_len: usize) {
        if let Some(waiting) = self.calls.get_mut(&id) {
            waiting.frame_len = frame_len;
        }
    }

    /// Hands the reply to its caller; gives the outcome back when no call
    /// has that id, so the caller can say what it dropped without a copy.
    pub(crate) fn resolve(
        &mut self,
        id: u64,
        outcome: Result<Box<RawValue>, ErrorObject>,
    ) -> Result<(), Result<Box<RawValue>, ErrorObject>> {
        match self.calls.remove(&id) {
            Some(Waiting { reply, .. }) => {
                // The caller may have stopped waiting; nothing to do then.
                let _ = reply.send(outcome.map_err(Failure::Remote));
                Ok(())
            }
            None => Err(outcome),
        }
    }

    /// Fails call `id` with its invalid answer; `false` when no call has
    /// that id.
    pub(crate) fn fail_invalid(&mut self, id: u64, what: &str) -> bool {
        match self.calls.remove(&id) {
            Some(Waiting { reply, .. }) => {
                let _ = reply.send(Err(Failure::Invalid(what.to_owned())));
                true
            }
            None => false,
        }
    }

    /// Forgets a call whose caller gave up; `true` if it was still waiting.
    pub(crate) fn forget(&mut self, id: u64) -> bool {
        self.calls.remove(&id).is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Resolves every waiting caller with `Lost`. Called when the driver
    /// stops reading, so no `Peer::request` future can hang.
    pub(crate) fn fail_all(&mut self, ending: &Ending) {
        for (_, waiting) in self.calls.drain() {
            let _ = waiting.reply.send(Err(Failure::Lost(ending.clone())));
        }
    }

    /// Fails with `err` every call whose frame was longer than `limit`
    /// bytes: the peer refused those frames unread, and will never answer.
    pub(crate) fn fail_longer_than(&mut self, limit: usize, err: &ErrorObject) {
        let refused: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, waiting)| waiting.frame_len > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in refused {
            if let Some(waiting) = self.calls.remove(&id) {
                let _ = waiting.reply.send(Err(Failure::Remote(err.clone())));
            }
        }
    }
}

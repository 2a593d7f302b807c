//! Our own calls to the peer: each request parked in the pending table and encoded into the outbox, each answer handed to its caller.

use std::sync::Arc;

use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::error::{ErrorObject, Unreadable};
use crate::excerpt::excerpt_of;
use crate::log_limit::LogLimit;
use crate::message::{encode_notification, encode_request, Id, Version};
use crate::outbox::Outbox;
use crate::peer::{Command, Queued};
use crate::pending::{Ending, Failure, PendingTable, ReplySender};
use crate::progress::ReportSink;
use crate::running::join_batch;
use crate::transport::CloseFrame;

/// Responses to no request of ours, logged at warn once per period.
static STRAY: LogLimit = LogLimit::new();

/// What the connection still sends of ours, by shutdown phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    /// Requests and notifications.
    Everything,
    /// Draining: a request could never be answered, so it fails at once;
    /// notifications still go out.
    Notifications,
    /// Closing: nothing more is written.
    Nothing,
}

/// Our own calls: those a `Peer` queued, those that wait for an answer, and
/// the version we write in.
pub(crate) struct Outgoing {
    /// What the connection's `Peer` handles queued, oldest first.
    commands: mpsc::Receiver<Box<Queued>>,
    /// How much of it may still be written, set by the driver's phase.
    pub(crate) sending: Sending,
    pending: PendingTable,
    /// The bytes a call's unread reports may hold.
    report_budget: usize,
    /// The version our own messages use: the peer's last, unless configured.
    speak: Version,
    configured: Option<Version>,
    /// What our pending calls are told when they fail: the transport's
    /// error, the peer's last complaint about our messages, or a local close.
    /// `None` when the peer hung up (see [`Outgoing::ending`]).
    pub(crate) close_reason: Option<Arc<str>>,
    /// The close frame the peer ended the connection with, when its
    /// transport has them (see [`CloseFrames`](crate::transport::CloseFrames)).
    pub(crate) peer_close: Option<Arc<CloseFrame>>,
    /// The highest id written so far: a reply to an id at or below it that
    /// is no longer pending answers a call we gave up (timed out, dropped).
    sent_up_to: u64,
    /// What the program asked to be told about messages that name none
    /// of our calls.
    hooks: Hooks,
}

/// What the program is told of messages that may concern its calls but
/// name none of them: then only the program knows which call it was.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Every error the peer sends with a null id (see
    /// [`DriverBuilder::on_null_id_error`](crate::DriverBuilder::on_null_id_error)).
    pub(crate) null_id: Option<ErrorHook>,
    /// Every message of the peer's that could not be read, with the error
    /// it was answered (see
    /// [`DriverBuilder::on_unreadable`](crate::DriverBuilder::on_unreadable)).
    pub(crate) unreadable: Option<UnreadableHook>,
}

/// What [`DriverBuilder::on_null_id_error`](crate::DriverBuilder::on_null_id_error) was given.
pub(crate) type ErrorHook = Arc<dyn Fn(&ErrorObject) + Send + Sync>;

/// What [`DriverBuilder::on_unreadable`](crate::DriverBuilder::on_unreadable) was given.
pub(crate) type UnreadableHook = Arc<dyn Fn(Unreadable, &ErrorObject) + Send + Sync>;

/// Why our calls fail when the driver stopped reading without a reason of
/// its own: only the peer's end of stream stops it so.
const PEER_HUNG_UP: &str = "the peer closed the connection";

/// Why our pending calls fail when the connection ended with no reason
/// recorded: the peer's end of stream, or a driver dropped before it
/// finished (its task aborted, its runtime shut down).
const ENDED: &str = "the peer closed the connection, or its driver was dropped";

impl Outgoing {
    pub(crate) fn new(
        commands: mpsc::Receiver<Box<Queued>>,
        configured: Option<Version>,
        report_budget: usize,
        hooks: Hooks,
    ) -> Self {
        Self {
            hooks,
            report_budget,
            commands,
            sending: Sending::Everything,
            pending: PendingTable::default(),
            speak: configured.unwrap_or(Version::V2),
            configured,
            close_reason: None,
            peer_close: None,
            sent_up_to: 0,
        }
    }

    /// Follows the version the peer writes in, unless one is configured.
    pub(crate) fn follow(&mut self, version: Version) {
        if self.configured.is_none() {
            self.speak = version;
        }
    }

    /// A message meant as an answer that could not be read as one (`what`
    /// says why): when its id is that of a call of ours, the call fails
    /// with it now, rather than wait out its timeout; `true` if one did.
    pub(crate) fn invalid_answer(&mut self, id: &Id, what: &str) -> bool {
        let failed = id
            .as_u64()
            .is_some_and(|n| self.pending.fail_invalid(n, what));
        if failed {
            tracing::debug!(%id, "an answer to a call of ours is no valid response: {what}");
        }
        failed
    }

    /// A response the peer sent that answers no call of ours waiting,
    /// dropped; `what` says more of it when not empty (it could not be
    /// read).
    pub(crate) fn stray_answer(&self, id: &Id, what: &str) {
        // NB: a peer can send nothing but these, thousands a second:
        // nothing is kept of them, and the log gets one line per period
        // with the count of the others.
        let sep = if what.is_empty() { "" } else { ", " };
        match STRAY.allow() {
            Some(more) => {
                tracing::warn!(%id, "response to no request of ours{sep}{what}, dropped{more}")
            }
            None => tracing::debug!(%id, "response to no request of ours{sep}{what}, dropped"),
        }
    }

    /// A message of the peer's could not be read, for `why`, and was
    /// answered `err`.
    pub(crate) fn unreadable(&self, why: Unreadable, err: &ErrorObject) {
        if let Some(hook) = &self.hooks.unreadable {
            hook(why, err);
        }
    }

    /// Whether a call of ours waits for its answer.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes the oldest queued command into the outbox; `false` when none
    /// is queued. The driver's waker is not left with the queue: the `Peer`
    /// rings the driver's doorbell after queuing.
    pub(crate) fn next_command(&mut self, outbox: &mut Outbox) -> bool {
        match self.commands.try_recv() {
            Ok(queued) => {
                // Its share of the byte bound is given back here, when it is
                // in the outbox (which has a bound of its own).
                self.command(queued.command, outbox);
                true
            }
            // The driver holds a Peer itself, so the queue is not closed.
            Err(_) => false,
        }
    }

    /// Writes every command queued so far into the outbox, whatever its
    /// room: called before a handler's reply, so that what the handler
    /// sent while it ran (progress reports, say) reaches the peer first.
    /// The outbox grows past its bound by at most the command queue's own
    /// bound, and a full outbox stops handlers from being polled.
    pub(crate) fn take_queued(&mut self, outbox: &mut Outbox) {
        while let Ok(queued) = self.commands.try_recv() {
            self.command(queued.command, outbox);
        }
    }

    /// Takes a `$/progress` notification's report when its token is one of
    /// ours: to the call it reports on while that waits, else nowhere (a
    /// report after the answer is not the call's). `false`: not ours, for
    /// the router.
    pub(crate) fn take_report(&self, params: Option<&RawValue>) -> bool {
        let Some((id, value)) = crate::progress::reported_call(params) else {
            return false;
        };
        match self.pending.reports_of(id) {
            Some(sink) => sink.deliver(value, self.report_budget),
            None => tracing::debug!(
                id,
                "a progress report for a call of ours no longer waiting, dropped"
            ),
        }
        true
    }

    /// Writes what a `Peer` asked for, as far as `sending` allows.
    fn command(&mut self, cmd: Command, outbox: &mut Outbox) {
        let sending = self.sending;
        match cmd {
            Command::Request {
                id,
                method,
                params,
                reply,
                reports,
            } => {
                let params = params.as_deref();
                if let Some(text) = self.request(id, reply, reports, &method, params, sending) {
                    outbox.push(text);
                }
            }
            Command::Notify { method, .. } if sending == Sending::Nothing => {
                tracing::debug!(%method, "connection closing: notification not sent");
            }
            Command::Notify { method, params } => {
                outbox.push(encode_notification(self.speak, &method, params.as_deref()));
            }
            Command::Batch(entries) => {
                let mut frame = Vec::with_capacity(entries.len());
                let mut calls = Vec::new();
                for entry in entries {
                    let params = entry.params.as_deref();
                    frame.push(match entry.call {
                        Some((id, reply)) => {
                            let text =
                                self.request(id, reply, None, &entry.method, params, sending);
                            if text.is_some() {
                                calls.push(id);
                            }
                            text
                        }
                        None if sending == Sending::Everything => {
                            Some(encode_notification(self.speak, &entry.method, params))
                        }
                        None => None,
                    });
                }
                if let Some(text) = join_batch(frame) {
                    // A peer refuses a batch over its size limit whole.
                    for id in calls {
                        self.pending.set_frame_len(id, text.len());
                    }
                    outbox.push(text);
                }
            }
        }
    }

    /// Parks one request and gives its text, or answers its caller at once.
    fn request(
        &mut self,
        id: u64,
        reply: ReplySender,
        reports: Option<ReportSink>,
        method: &str,
        params: Option<&RawValue>,
        sending: Sending,
    ) -> Option<String> {
        // NB: a caller that gave up before we got here (a dropped future, a
        // timeout while the queue was full) must not leave a call pending
        // forever: nothing of ours would ever be "not pending" again, and
        // reading would ignore its bounds. `CancelOnDrop` closes the
        // channel before it says so.
        if reply.is_closed() {
            return None;
        }
        if sending != Sending::Everything {
            let why = format!(
                "the connection was closing: {}",
                self.close_reason.as_deref().unwrap_or(PEER_HUNG_UP)
            );
            let _ = reply.send(Err(Failure::NotSent(Ending {
                why: why.into(),
                peer_close: self.peer_close.clone(),
            })));
            return None;
        }
        let text = encode_request(self.speak, &Id::from(id), method, params);
        self.pending.insert(id, reply, text.len(), reports);
        self.sent_up_to = self.sent_up_to.max(id);
        Some(text)
    }

    /// An answer from the peer: to its caller, or to the log.
    // NB: kept out of `Calls::admit`, whose path for a call then lies
    // together.
    #[inline(never)]
    pub(crate) fn answer(&mut self, id: Id, outcome: Result<Box<RawValue>, ErrorObject>) {
        let unmatched = match id.as_u64() {
            Some(n) => self.pending.resolve(n, outcome).err(),
            None => Some(outcome),
        };
        match unmatched {
            None => {}
            Some(Err(err)) if id.is_null() => {
                // A peer that skips a message over its size limit cannot
                // tell whose it was, but rpcpeer names the limit: the calls
                // whose frames were longer are the ones it will never answer.
                if let Some(limit) = size_limit_named(&err.message) {
                    self.pending.fail_longer_than(limit, &err);
                }
                static UNREADABLE: LogLimit = LogLimit::new();
                // With a hook, the program is told and says what it
                // means to its user: the log need not say it too.
                let warn = match &self.hooks.null_id {
                    Some(hook) => {
                        hook(&err);
                        None
                    }
                    None => UNREADABLE.allow(),
                };
                let err = excerpt_of(&err);
                match warn {
                    Some(more) => {
                        tracing::warn!("the peer could not read one of our messages: {err}{more}")
                    }
                    None => tracing::debug!("the peer could not read one of our messages: {err}"),
                }
                // Often the last word before the peer hangs up (a frame over
                // its limit): the calls that fail then say so.
                self.close_reason =
                    Some(format!("the peer could not read our message: {err}").into());
            }
            // Ids are ours, from one counter: a lower one was a call of ours
            // whose caller stopped waiting (a timeout, a dropped future).
            Some(_) if id.as_u64().is_some_and(|n| n <= self.sent_up_to) => {
                tracing::debug!(%id, "late reply to a call given up (timed out or dropped), ignored")
            }
            Some(_) => self.stray_answer(&id, ""),
        }
    }

    /// A caller gave up on request `id`: forget it, and give the notice
    /// that tells the peer (`cancel_method`) when one is to be sent.
    pub(crate) fn caller_gone(&mut self, id: u64, cancel_method: Option<&str>) -> Option<String> {
        if !self.pending.forget(id) {
            // Answered already, or not seen yet: then its reply channel is
            // closed before this notice was sent (see `CancelOnDrop`), and
            // `request` skips the call when it arrives.
            return None;
        }
        cancel_method.map(|method| crate::cancel::notice(self.speak, method, id))
    }

    /// Every waiting caller fails with the close reason.
    pub(crate) fn fail_all(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.fail_all(&self.ending());
    }

    /// Why the connection ended, for whoever asks once it has.
    pub(crate) fn ending(&self) -> Ending {
        Ending {
            why: self.close_reason.clone().unwrap_or_else(|| ENDED.into()),
            peer_close: self.peer_close.clone(),
        }
    }
}

/// The limit in a peer's refusal of a message for its size, worded as
/// rpcpeer words it: `… exceeds the limit of N bytes`.
fn size_limit_named(message: &str) -> Option<usize> {
    let (_, rest) = message.split_once("exceeds the limit of ")?;
    let (digits, unit) = rest.split_once(' ')?;
    unit.starts_with("bytes")
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_limit_is_read_from_rpcpeers_wording_only() {
        for (message, limit) in [
            (
                "Invalid Request: message of 2000 bytes exceeds the limit of 1024 bytes",
                Some(1024),
            ),
            (
                "Invalid Request: message exceeds the limit of 64 bytes",
                Some(64),
            ),
            ("Parse error: expected value at line 1 column 1", None),
            ("message exceeds the limit of many bytes", None),
            ("a batch of 2000 entries exceeds the limit of 1024", None),
        ] {
            assert_eq!(size_limit_named(message), limit, "{message}");
        }
    }
}

//! Calls being answered, polled on the connection's own task: a panic becomes -32603, a cancel drops the handler.
//!
//! A handler is not a task of its own: the driver polls its future next to
//! the transport, so a reply that is ready at once is written in the same
//! turn as the request was read, with no task allocated and no wake-up sent
//! to another thread. Cancelling a call is dropping its future.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll, Waker};

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use crate::context::CallToken;
use crate::error::ErrorObject;
use crate::handler::{BoxFuture, Reply};
use crate::log_limit::LogLimit;
use crate::message::{encode_outcome, encode_response, write_response, Id, Version};
use crate::parts::Part;
use crate::router::Concurrency;
use crate::scheduler::{Weighed, Weight};

/// One incoming call: its handler's future until it ends, then its reply.
pub(crate) struct Entry {
    state: State,
}

enum State {
    Working(Call),
    /// The reply to write (`None`: nothing, as for a notification).
    Done(Option<String>),
}

/// A handler that has not finished yet.
struct Call {
    /// `None` for a notification.
    id: Option<Id>,
    version: Version,
    method: Arc<str>,
    work: BoxFuture<Reply>,
    /// The call's token slot, shared with the handler's `Context` (made
    /// only when it took one, or when its access is checked again when it
    /// starts); cancelled when the call is cancelled or dropped before it
    /// finished.
    token: Option<CallToken>,
}

impl Call {
    /// Polls the handler; its reply once it has finished.
    fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Reply> {
        // Spec §5.1 -32603: a handler's panic is caught here, where the
        // request's id is still known, so the caller gets an answer and the
        // connection keeps serving.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| self.work.as_mut().poll(cx)));
        let reply = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(reply)) => reply,
            Err(panic) => {
                log_panic(&self.method, panic.as_ref());
                Reply::from(ErrorObject::internal_error())
            }
        };
        // Finished: its token must not be cancelled when the call is dropped.
        self.token = None;
        log_failed_notification(self.id.as_ref(), &self.method, &reply);
        Poll::Ready(reply)
    }
}

/// A notification's error has nowhere to go but the log.
fn log_failed_notification(id: Option<&Id>, method: &str, reply: &Reply) {
    if let (None, Err(err)) = (id, reply.result()) {
        failed_notification(method, err);
    }
}

/// Logs a notification's error.
// NB: cold, and kept out of `log_failed_notification`, which is asked after
// every call.
#[cold]
#[inline(never)]
fn failed_notification(method: &str, err: &ErrorObject) {
    tracing::debug!(method = %method, "notification failed: {err}");
}

/// Logs a handler's panic. A peer can call a method that panics as often
/// as it likes: one line per period at error, the rest at debug, counted in
/// the next line.
pub(crate) fn log_panic(method: &str, payload: &(dyn std::any::Any + Send)) {
    static PANICKED: LogLimit = LogLimit::new();
    let msg = panic_message(payload);
    match PANICKED.allow() {
        Some(more) => tracing::error!(method = %method, "handler panicked: {msg}{more}"),
        None => tracing::debug!(method = %method, "handler panicked: {msg}"),
    }
}

/// What a panic said, for the log (the wire only ever gets -32603).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// Ends a batch's reply array; `None` when nothing was written (spec §6:
/// nothing at all when every entry was a notification).
fn close_array(array: &mut String) -> Option<String> {
    if array.is_empty() {
        return None;
    }
    array.push(']');
    Some(std::mem::take(array))
}

/// Starts the next element of a batch's reply array.
fn open_item(array: &mut String) {
    array.push(if array.is_empty() { '[' } else { ',' });
}

impl Drop for Call {
    fn drop(&mut self) {
        // A call that finished has handed its token back (`Entry::poll`);
        // one dropped before that was cancelled or torn down, and work the
        // handler spawned with the token must learn it.
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

impl Entry {
    /// A call whose handler runs when the entry is polled.
    pub(crate) fn working(
        id: Option<Id>,
        version: Version,
        method: Arc<str>,
        work: BoxFuture<Reply>,
        token: Option<CallToken>,
    ) -> Self {
        Self {
            state: State::Working(Call {
                id,
                version,
                method,
                work,
                token,
            }),
        }
    }

    /// Runs the handler inside `span` from now on (see `observe`); a
    /// disabled span changes nothing.
    pub(crate) fn instrument(&mut self, span: tracing::Span) {
        if span.is_disabled() {
            return;
        }
        if let State::Working(call) = &mut self.state {
            // `pending()` is a placeholder of no size: no allocation.
            let work = std::mem::replace(&mut call.work, Box::pin(std::future::pending()));
            call.work = Box::pin(tracing::Instrument::instrument(work, span));
        }
    }

    /// An entry whose handler gave `reply` with no future (a
    /// [`SyncFn`](crate::SyncFn) run as its call was read).
    pub(crate) fn answered(id: Option<&Id>, version: Version, method: &str, reply: &Reply) -> Self {
        log_failed_notification(id, method, reply);
        Self::done(id.map(|id| encode_outcome(version, id, reply.result())))
    }

    /// An entry answered before it ran (rejected, unknown method, busy).
    pub(crate) fn done(reply: Option<String>) -> Self {
        Self {
            state: State::Done(reply),
        }
    }

    /// The id this entry answers, while its handler still runs.
    fn working_id(&self) -> Option<&Id> {
        match &self.state {
            State::Working(call) => call.id.as_ref(),
            State::Done(_) => None,
        }
    }

    /// Polls the handler; `Ready` once the reply is known.
    pub(crate) fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<()> {
        let State::Working(call) = &mut self.state else {
            return Poll::Ready(());
        };
        let reply = ready!(call.poll(cx));
        let reply = call
            .id
            .as_ref()
            .map(|id| encode_outcome(call.version, id, reply.result()));
        self.state = State::Done(reply);
        Poll::Ready(())
    }

    /// Polls the handler of a batch entry whose entries before it are all
    /// written; once it has finished, its reply is appended to `array`
    /// (with no string of its own when it finishes here).
    fn poll_into(&mut self, cx: &mut TaskContext<'_>, array: &mut String) -> Poll<()> {
        match &mut self.state {
            State::Done(None) => {}
            State::Done(reply @ Some(_)) => {
                if let Some(reply) = reply.take() {
                    open_item(array);
                    array.push_str(&reply);
                }
            }
            State::Working(call) => {
                let reply = ready!(call.poll(cx));
                if let Some(id) = &call.id {
                    open_item(array);
                    write_response(array, call.version, id, reply.result());
                }
                self.state = State::Done(None);
            }
        }
        Poll::Ready(())
    }

    /// Cancels the call if it still runs and answers `id`: its future is
    /// dropped (which cancels its token) and its reply becomes -32800.
    fn cancel(&mut self, id: &Id) -> bool {
        if self.working_id() != Some(id) {
            return false;
        }
        if let State::Working(call) = &self.state {
            let reply = encode_response(call.version, id, Err(&ErrorObject::request_cancelled()));
            self.state = State::Done(Some(reply));
        }
        true
    }

    /// Ends the call if it still runs: its future is dropped (which
    /// cancels its token) and a request is answered `err`.
    fn fail(&mut self, err: &ErrorObject) {
        if let State::Working(call) = &self.state {
            let reply = call
                .id
                .as_ref()
                .map(|id| encode_response(call.version, id, Err(err)));
            self.state = State::Done(reply);
        }
    }

    /// Answered already: nothing left to run.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// The bytes of the reply it holds: none while it runs.
    pub(crate) fn held(&self) -> usize {
        match &self.state {
            State::Done(Some(reply)) => reply.len(),
            State::Done(None) | State::Working(_) => 0,
        }
    }

    pub(crate) fn take_reply(&mut self) -> Option<String> {
        match &mut self.state {
            State::Done(reply) => reply.take(),
            State::Working(_) => None,
        }
    }
}

/// What one frame asked for: a single call or a batch (spec §6), whose
/// entries all run at once and are answered in one array.
pub(crate) struct Work {
    shape: Shape,
    /// The bytes of the frame it was read from, for the bounds on what a
    /// connection holds.
    bytes: usize,
    /// For a batch cut into parts, which part this is (see `parts`).
    part: Option<Part>,
}

enum Shape {
    One(Entry),
    Batch {
        entries: Vec<Entry>,
        /// The reply array, written as entries finish.
        array: String,
        /// After the first poll, the entries still running.
        parked: Option<Parked>,
    },
}

/// A batch's entries that did not finish at their first poll, each polled
/// from then on only when it is woken: polling every entry at each wake-up
/// would cost a batch of waiting calls its length squared.
struct Parked {
    /// Entries before this one are in the reply array; from it on, each
    /// keeps its reply until all have finished.
    from: usize,
    running: FuturesUnordered<ParkedEntry>,
}

/// A running batch entry, away from its place in the batch.
struct ParkedEntry {
    index: usize,
    entry: Option<Entry>,
    /// The waker of its last poll, so that a cancel can have it polled again.
    waker: Option<Waker>,
}

impl Future for ParkedEntry {
    /// Its place in the batch, and the entry, finished.
    type Output = (usize, Entry);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(entry) = this.entry.as_mut() else {
            return Poll::Pending;
        };
        match entry.poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready((this.index, this.entry.take().unwrap_or(Entry::done(None))))
            }
            Poll::Pending => {
                this.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Work {
    /// A single call, read from a frame of `bytes`.
    pub(crate) fn one(entry: Entry, bytes: usize) -> Self {
        Work {
            shape: Shape::One(entry),
            bytes,
            part: None,
        }
    }

    /// A batch's entries, to run at once and answer in one array.
    pub(crate) fn batch(entries: Vec<Entry>, bytes: usize) -> Self {
        // Room for a typical small reply per entry, so the array seldom grows.
        let array = String::with_capacity(entries.len() * 64);
        Work {
            shape: Shape::Batch {
                entries,
                array,
                parked: None,
            },
            bytes,
            part: None,
        }
    }

    /// The entries of one part of a batch cut into parts: each keeps its
    /// reply, to be placed in the batch's array, and the batch is charged
    /// the frame's bytes (see `parts`).
    pub(crate) fn part(entries: Vec<Entry>, part: Part) -> Self {
        Work {
            shape: Shape::Batch {
                entries,
                array: String::new(),
                parked: None,
            },
            bytes: 0,
            part: Some(part),
        }
    }

    /// What ended work gives back, given the frame its poll made.
    fn answer(&mut self, frame: Option<String>) -> Answer {
        let Some(part) = self.part else {
            return Answer::Frame(frame);
        };
        let replies = match &mut self.shape {
            Shape::One(entry) => vec![entry.take_reply()],
            Shape::Batch { entries, .. } => entries.iter_mut().map(Entry::take_reply).collect(),
        };
        Answer::Part(part, replies)
    }

    /// The bytes of the frame it was read from.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Polls every entry; `Ready` with the frame to write (if any) once all
    /// have finished.
    pub(crate) fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<String>> {
        // A part's entries keep their replies, and it writes no array.
        let keep = self.part.is_some();
        match &mut self.shape {
            Shape::One(entry) => entry.poll(cx).map(|()| entry.take_reply()),
            Shape::Batch {
                entries,
                array,
                parked,
            } => {
                if parked.is_none() {
                    // NB: replies go into the array in request order (spec §6
                    // allows any, but peers and the spec's own examples expect
                    // this one): an entry finished behind one still running
                    // keeps its reply until the entries before it are written.
                    let mut first_pending = None;
                    for (i, entry) in entries.iter_mut().enumerate() {
                        let polled = if first_pending.is_some() || keep {
                            entry.poll(cx)
                        } else {
                            entry.poll_into(cx, array)
                        };
                        if polled.is_pending() && first_pending.is_none() {
                            first_pending = Some(i);
                        }
                    }
                    let Some(from) = first_pending else {
                        return Poll::Ready(close_array(array));
                    };
                    let running = FuturesUnordered::new();
                    for (index, entry) in entries.iter_mut().enumerate().skip(from) {
                        if !entry.is_done() {
                            running.push(ParkedEntry {
                                index,
                                entry: Some(std::mem::replace(entry, Entry::done(None))),
                                waker: None,
                            });
                        }
                    }
                    *parked = Some(Parked { from, running });
                }
                let Some(waiting) = parked.as_mut() else {
                    return Poll::Pending;
                };
                while let Poll::Ready(Some((index, entry))) = waiting.running.poll_next_unpin(cx) {
                    entries[index] = entry;
                }
                if !waiting.running.is_empty() {
                    return Poll::Pending;
                }
                let from = waiting.from;
                *parked = None;
                if keep {
                    return Poll::Ready(None);
                }
                for entry in &mut entries[from..] {
                    if let Some(reply) = entry.take_reply() {
                        open_item(array);
                        array.push_str(&reply);
                    }
                }
                Poll::Ready(close_array(array))
            }
        }
    }

    /// Cancels the running call that answers `id`, if this work has one.
    pub(crate) fn cancel(&mut self, id: &Id) -> bool {
        match &mut self.shape {
            Shape::One(entry) => entry.cancel(id),
            Shape::Batch {
                entries, parked, ..
            } => {
                if entries.iter_mut().any(|entry| entry.cancel(id)) {
                    return true;
                }
                let Some(waiting) = parked else {
                    return false;
                };
                for parked in waiting.running.iter_mut() {
                    if parked.entry.as_mut().is_some_and(|entry| entry.cancel(id)) {
                        // Its -32800 is ready: the set must poll it again.
                        if let Some(waker) = parked.waker.take() {
                            waker.wake();
                        }
                        return true;
                    }
                }
                false
            }
        }
    }

    /// Ends every call still running with `err`; what answers them all
    /// (and the replies already made).
    pub(crate) fn fail(mut self, err: &ErrorObject) -> Answer {
        match &mut self.shape {
            Shape::One(entry) => entry.fail(err),
            Shape::Batch {
                entries, parked, ..
            } => {
                // Back in their places, then answered like the rest.
                if let Some(waiting) = parked.take() {
                    for mut entry in waiting.running {
                        if let Some(taken) = entry.entry.take() {
                            entries[entry.index] = taken;
                        }
                    }
                }
                entries.iter_mut().for_each(|e| e.fail(err));
            }
        }
        self.settle()
    }

    /// What answers work that has nothing left to run (every entry failed,
    /// or cancelled before it started).
    pub(crate) fn settle(mut self) -> Answer {
        // Every entry is done, so one poll gives the frame.
        let mut cx = TaskContext::from_waker(Waker::noop());
        let frame = match self.poll(&mut cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => None,
        };
        self.answer(frame)
    }

    /// Waiting work with nothing left to run: every call in it was
    /// cancelled before it started.
    pub(crate) fn is_settled(&self) -> bool {
        match &self.shape {
            Shape::One(entry) => entry.is_done(),
            Shape::Batch {
                entries, parked, ..
            } => parked.is_none() && entries.iter().all(Entry::is_done),
        }
    }
}

impl Weighed for Work {
    fn weight(&self) -> Weight {
        let calls = match &self.shape {
            Shape::One(_) => 1,
            Shape::Batch { entries, .. } => entries.len(),
        };
        Weight {
            calls,
            bytes: self.bytes,
        }
    }
}

/// Joins the replies of a batch's entries into one array, or `None` when
/// every entry was a notification (spec §6: then nothing is returned).
pub(crate) fn join_batch(replies: Vec<Option<String>>) -> Option<String> {
    // Sized once: a hundred replies would otherwise grow the array several
    // times over.
    let size: usize = replies.iter().flatten().map(|r| r.len() + 1).sum();
    if size == 0 {
        return None;
    }
    let mut out = String::with_capacity(size + 1);
    for reply in replies.iter().flatten() {
        out.push(if out.is_empty() { '[' } else { ',' });
        out.push_str(reply);
    }
    out.push(']');
    Some(out)
}

/// Started work, as the driver's set of running futures holds it.
pub(crate) struct Running {
    kind: Concurrency,
    work: Work,
    /// The waker of the last poll that returned `Pending`, so that a cancel
    /// can have the set poll this work again.
    waker: Option<Waker>,
}

impl Running {
    pub(crate) fn new(kind: Concurrency, work: Work) -> Self {
        Self {
            kind,
            work,
            waker: None,
        }
    }

    /// Work whose first poll, made outside the set, returned `Pending`
    /// with `waker`: a cancel before the set polls it must still wake it.
    pub(crate) fn waiting(kind: Concurrency, work: Work, waker: &Waker) -> Self {
        Self {
            kind,
            work,
            waker: Some(waker.clone()),
        }
    }

    /// Cancels the call answering `id` in this work and has it polled again,
    /// so its -32800 goes out and its slot frees up.
    pub(crate) fn cancel(&mut self, id: &Id) -> bool {
        let cancelled = self.work.cancel(id);
        if cancelled {
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
        cancelled
    }
}

/// What ended work gives back.
pub(crate) enum Answer {
    /// The frame to write, if any.
    Frame(Option<String>),
    /// A part of a batch cut into parts: each of its entries' replies.
    Part(Part, Vec<Option<String>>),
}

/// Work that has ended.
pub(crate) struct Finished {
    /// The kind it was scheduled as.
    pub(crate) kind: Concurrency,
    pub(crate) answer: Answer,
    /// The bytes it was charged.
    pub(crate) bytes: usize,
}

impl Running {
    /// See [`Work::fail`].
    pub(crate) fn fail(self, err: &ErrorObject) -> Answer {
        self.work.fail(err)
    }
}

impl Future for Running {
    type Output = Finished;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.work.poll(cx) {
            Poll::Ready(frame) => Poll::Ready(Finished {
                kind: this.kind,
                answer: this.work.answer(frame),
                bytes: this.work.bytes(),
            }),
            Poll::Pending => {
                // Stored only for work that waits, so a call answered at
                // once costs no waker clone.
                match &mut this.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

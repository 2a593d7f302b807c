//! The peer's calls to us on one connection: admitted, scheduled, and polled on the connection's own task.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use crate::config::Config;
use crate::context::Connection;
use crate::dispatch::{admit, batch_too_long, long_batch_reply, Admitted, Env, Start};
use crate::error::{ErrorObject, Unreadable};
use crate::message::{parse_within, Frame, Id, Message, Rejected};
use crate::method_cache::MethodCache;
use crate::outbox::Outbox;
use crate::outgoing::Outgoing;
use crate::parts::{Cuts, Gathering};
use crate::peer::Peer;
use crate::router::{Concurrency, Router};
use crate::running::{join_batch, Answer, Entry, Finished, Running, Work};
use crate::scheduler::{Scheduler, Weight};
use crate::session::Session;

/// Every call of the peer's that this connection has read and not yet answered.
pub(crate) struct Calls<S> {
    router: Router<S>,
    /// What this connection has looked up in `router`.
    methods: MethodCache<S>,
    /// Handed to handlers: the peer (to call it back), the session, the
    /// router's state and authenticator.
    connection: Arc<Connection<S>>,
    /// Which calls may start, and which wait.
    scheduler: Scheduler<Work>,
    /// Started by the scheduler, not polled yet: polled once at once, so a
    /// call answered without waiting never enters `running`.
    starting: VecDeque<Running>,
    /// Calls whose handlers wait on something.
    running: FuturesUnordered<Running>,
    /// The bytes of the frames whose calls run now, and of the batches cut
    /// into parts until they are answered (with the replies they hold from
    /// when they were read).
    running_bytes: usize,
    /// Batches cut into parts, until their last part has ended.
    gathering: Gathering,
    max_queued: usize,
    max_incoming_bytes: usize,
    max_batch_len: usize,
    max_depth: usize,
    cancel_method: Option<String>,
}

impl<S: Send + Sync + 'static> Calls<S> {
    pub(crate) fn new(router: Router<S>, peer: Peer, session: Session, config: &Config) -> Self {
        Self {
            connection: Connection::new(&router, peer, session),
            router,
            methods: MethodCache::new(),
            scheduler: Scheduler::new(config.max_in_flight),
            starting: VecDeque::new(),
            running: FuturesUnordered::new(),
            running_bytes: 0,
            gathering: Gathering::default(),
            max_queued: config.max_queued,
            max_incoming_bytes: config.max_incoming_bytes,
            max_batch_len: config.max_batch_len,
            max_depth: config.max_depth,
            cancel_method: config.cancel_method.clone(),
        }
    }

    pub(crate) fn session(&self) -> &Session {
        &self.connection.session
    }

    /// The handle to this connection's peer that handlers get.
    pub(crate) fn peer(&self) -> &Peer {
        &self.connection.peer
    }

    /// Whether more calls may be read: the queue has fewer than
    /// `max_queued` calls (a batch counts its entries), and the calls read
    /// and not yet answered hold fewer than `max_incoming_bytes`.
    pub(crate) fn has_room(&self) -> bool {
        self.busy().is_none()
    }

    /// What is held, when it is too much to take more.
    fn busy(&self) -> Option<Weight> {
        let waiting = self.scheduler.waiting();
        let held = Weight {
            calls: waiting.calls,
            bytes: waiting.bytes + self.running_bytes,
        };
        (held.calls >= self.max_queued || held.bytes >= self.max_incoming_bytes).then_some(held)
    }

    /// Calls started and not finished.
    pub(crate) fn running(&self) -> usize {
        self.scheduler.running()
    }

    /// Nothing waits and nothing runs.
    pub(crate) fn is_idle(&self) -> bool {
        self.scheduler.is_idle()
    }

    /// Reads one frame: calls are scheduled, and those that may start are
    /// polled at once; answers go to our callers.
    pub(crate) fn on_frame(
        &mut self,
        text: &str,
        cx: &mut TaskContext<'_>,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) {
        crate::observe::frame_in(self.peer().connection_id(), text);
        match parse_within(text, self.max_depth) {
            Frame::Single(item) => {
                if let Some((kind, entry)) = self.admit(item, Read::Alone, outgoing, outbox) {
                    // NB: what `start` and then `poll_started` would do,
                    // without the queue in between.
                    if self.may_run_now(outbox) && self.scheduler.try_start(kind) {
                        self.run_now(kind, entry, text.len(), cx, outgoing, outbox);
                    } else {
                        self.schedule(kind, Work::one(entry, text.len()));
                    }
                }
            }
            Frame::Batch(items) => self.on_batch(items, text.len(), outgoing, outbox),
        }
        self.pump();
        // NB: before the next frame is read: a call that answers at once
        // (most do) is done with before the next one is scheduled, so an
        // in-order notification after it need not queue.
        self.poll_started(cx, outgoing, outbox);
    }

    /// Whether a call read now may run as it is read, if the scheduler's
    /// rules let it start: only when no call started before it still waits
    /// to be polled (those go first) and the outbox has room.
    fn may_run_now(&self, outbox: &Outbox) -> bool {
        self.starting.is_empty() && outbox.has_room()
    }

    /// One path for every incoming message, alone or in a batch: a call
    /// comes back to be scheduled; anything else is dealt with here.
    fn admit(
        &mut self,
        item: Result<Message<'_>, Rejected>,
        read: Read,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) -> Option<(Concurrency, Entry)> {
        let in_batch = !matches!(read, Read::Alone);
        let full = self.busy();
        if let Ok(Message::Notification(n)) = &item {
            // NB: before any bound: a report is no call, and goes to the
            // caller now, in the order read (see `progress`).
            if n.method == crate::progress::METHOD && outgoing.take_report(n.params) {
                return None;
            }
        }
        // NB: the tests `on_frame` makes before it runs a call at once;
        // a batch's entry is tested as if alone, as its part is scheduled
        // by its own rule.
        let start = match read {
            _ if !self.may_run_now(outbox) => Start::LATER,
            Read::Alone | Read::InBatch { after_work: false } => Start::alone(&self.scheduler),
            Read::InBatch { after_work: true } => Start::LATER,
        };
        let env = Env {
            router: &self.router,
            connection: &self.connection,
            cancel_method: self.cancel_method.as_deref(),
            start,
        };
        match admit(&env, Some(&mut self.methods), item, full) {
            Admitted::Call(kind, version, entry) => {
                outgoing.follow(version);
                Some((kind, entry))
            }
            Admitted::Response(resp) => {
                outgoing.answer(resp.id, resp.outcome);
                None
            }
            Admitted::Cancel(version, id) => {
                outgoing.follow(version);
                self.cancel(id, outgoing, outbox);
                None
            }
            Admitted::Unreadable(rejected) => self.unreadable(rejected, in_batch, outgoing, outbox),
            Admitted::Answered(reply) => answered(reply, in_batch, outbox),
            Admitted::Dropped => None,
        }
    }

    /// A message that is no call and cannot be read: answered if it may be.
    // NB: cold, and kept out of `admit`, whose path for a well-formed call
    // then lies together.
    #[cold]
    #[inline(never)]
    fn unreadable(
        &mut self,
        mut rejected: Rejected,
        in_batch: bool,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) -> Option<(Concurrency, Entry)> {
        // NB: an answer of the peer's that we cannot read fails the
        // call of ours it answers, at once, and the program learns
        // of it from that call's error. It is not answered under
        // its id: ids are each side's own, so a -32600 under it
        // would reach the peer as the answer to its own call of that
        // id, if one waits. One under an id we gave a call that no
        // longer waits (a late answer) is refused with a null id for
        // the same reason; any other keeps its id (spec §5).
        if let Some(what) = &rejected.response {
            if outgoing.invalid_answer(&rejected.id, what) {
                return None;
            }
            if (rejected.id.as_u64()).is_some_and(|n| self.peer().issued(n)) {
                rejected.id = Id::null();
            }
        }
        let why = match rejected.error.code {
            ErrorObject::PARSE_ERROR => Unreadable::NotJson,
            _ => Unreadable::Invalid,
        };
        outgoing.unreadable(why, &rejected.error);
        answered(rejected.reply()?, in_batch, outbox)
    }

    /// A batch read: its calls are scheduled, each part by its rule.
    // NB: kept out of `on_frame`, whose path for a single message then lies
    // together.
    #[inline(never)]
    fn on_batch(
        &mut self,
        items: Vec<Result<Message<'_>, Rejected>>,
        bytes: usize,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) {
        // NB: an array of answers only is not held to the limit: it
        // answers our own batch, which may be longer, and costs no more than
        // the calls of ours it resolves.
        let calls = || {
            !items
                .iter()
                .all(|item| matches!(item, Ok(Message::Response(_))))
        };
        if items.len() > self.max_batch_len && calls() {
            let err = batch_too_long(items.len(), self.max_batch_len);
            outgoing.unreadable(Unreadable::Invalid, &err);
            if let Some(reply) = long_batch_reply(&items, &err) {
                outbox.push(reply);
            }
            return;
        }
        let mut after_work = false;
        let mut entries: Vec<(Concurrency, Entry)> = items
            .into_iter()
            .filter_map(|item| {
                let read = Read::InBatch { after_work };
                let (kind, entry) = self.admit(item, read, outgoing, outbox)?;
                after_work |= !entry.is_done();
                Some((kind, entry))
            })
            .collect();
        if entries.iter().all(|(_, entry)| entry.is_done()) {
            // Nothing to run (only responses, or entries refused busy,
            // rejected or of unknown methods):
            // answered now, like a single request. Queued, a batch refused
            // busy would take a place past the bound, and a peer could grow
            // the queue without limit while we read on for the reply to a
            // call of ours. Through `answer`: an entry run as it was read
            // (`SyncFn`) may have sent notifications, which go first.
            let replies = entries.iter_mut().map(|(_, entry)| entry.take_reply());
            answer(join_batch(replies.collect()), outgoing, outbox);
            return;
        }
        // NB: the replies of the entries answered as they were read are
        // held until the batch is answered, so they are charged with its
        // frame: an invalid entry of 2 bytes (`1,`) holds an error of about
        // 90, and without this a peer could hold some 50 times the bound.
        let bytes = bytes + entries.iter().map(|(_, e)| e.held()).sum::<usize>();
        // Spec §6: the entries may run in any order, so concurrent ones
        // run at once, as one job (they take one handler slot); an entry
        // with a stricter rule is a job of its own (see `parts`).
        let len = entries.len();
        let (parts, answered) = match crate::parts::cut(entries) {
            Cuts::Whole(kind, entries) => {
                self.schedule(kind, Work::batch(entries, bytes));
                return;
            }
            Cuts::Parts(parts, answered) => (parts, answered),
        };
        // NB: the batch, not its parts, is charged the frame (and the
        // replies above), from now until it is answered: its ended parts
        // hold their replies.
        self.running_bytes += bytes;
        for (part, kind, entries) in self.gathering.open(len, bytes, parts, answered) {
            self.schedule(kind, Work::part(entries, part));
        }
    }

    /// Starts `work` if it may start now, else queues it.
    fn schedule(&mut self, kind: Concurrency, work: Work) {
        // NB: `pump` ran after every change, so the scheduler may be asked.
        if self.scheduler.try_start(kind) {
            self.start(kind, work);
        } else {
            self.scheduler.submit(kind, work);
        }
    }

    /// Hands every job that may start now to be polled.
    fn pump(&mut self) {
        while let Some((kind, work)) = self.scheduler.next() {
            self.start(kind, work);
        }
    }

    /// `work`, started by the scheduler, goes to be polled.
    fn start(&mut self, kind: Concurrency, work: Work) {
        self.running_bytes += work.bytes();
        self.starting.push_back(Running::new(kind, work));
    }

    fn finished(&mut self, done: Finished, outgoing: &mut Outgoing, outbox: &mut Outbox) {
        self.scheduler.finished(done.kind);
        self.ended(done.answer, done.bytes, outgoing, outbox);
        self.pump();
    }

    /// Work has ended, charged `bytes` while it ran: its frame is written,
    /// or for a part of a batch, kept until the batch's last part has ended.
    fn ended(&mut self, done: Answer, bytes: usize, outgoing: &mut Outgoing, outbox: &mut Outbox) {
        if let Some((frame, bytes)) = self.gathered(done, bytes) {
            self.running_bytes = self.running_bytes.saturating_sub(bytes);
            answer(frame, outgoing, outbox);
        }
    }

    /// What ended work answers, with the bytes to give back: its own frame,
    /// or for a part of a batch, `None` until the batch's last part has
    /// ended and then the batch's.
    fn gathered(&mut self, done: Answer, bytes: usize) -> Option<(Option<String>, usize)> {
        match done {
            Answer::Frame(frame) => Some((frame, bytes)),
            Answer::Part(part, replies) => self.gathering.ended(part, replies),
        }
    }

    /// The peer cancels one of its requests: the call of `id` ends, if it
    /// has not yet. Without a readable id, that is only logged.
    // NB: kept out of `admit`, whose path for a call then lies together.
    #[inline(never)]
    fn cancel(&mut self, id: Option<Id>, outgoing: &mut Outgoing, outbox: &mut Outbox) {
        let Some(id) = id else {
            tracing::debug!("cancel notification without a readable id, ignored");
            return;
        };
        // NB: newest first, for calls that share an id (see
        // `cancel::incoming`): `starting` holds calls newer than any that
        // runs, newest at the back; `FuturesUnordered` iterates newest first.
        let started = self
            .starting
            .iter_mut()
            .rev()
            .chain(self.running.iter_mut());
        if let Some(work) = crate::cancel::incoming(&id, &mut self.scheduler, started) {
            // NB: it never ran, so it was charged nothing: the scheduler
            // gave back what it weighed waiting.
            self.ended(work.settle(), 0, outgoing, outbox);
        }
        // A call taken out of the queue may have held others back.
        self.pump();
    }

    /// Polls the calls started and not polled yet, while the outbox has
    /// room; `true` when there were any.
    fn poll_started(
        &mut self,
        cx: &mut TaskContext<'_>,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) -> bool {
        let mut progress = false;
        // NB: a started call is polled right here, on the connection's
        // task: a handler that answers at once puts its reply in the outbox
        // before the driver writes, so the replies to every request read in
        // one go leave in one write call.
        while outbox.has_room() {
            let Some(mut run) = self.starting.pop_front() else {
                break;
            };
            match Pin::new(&mut run).poll(cx) {
                Poll::Ready(done) => self.finished(done, outgoing, outbox),
                Poll::Pending => self.running.push(run),
            }
            progress = true;
        }
        progress
    }

    /// The first poll of a single call the scheduler has just counted as
    /// started: one that finishes at once (most do) never becomes `Work`.
    fn run_now(
        &mut self,
        kind: Concurrency,
        mut entry: Entry,
        bytes: usize,
        cx: &mut TaskContext<'_>,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) {
        if entry.poll(cx).is_pending() {
            self.running_bytes += bytes;
            let work = Work::one(entry, bytes);
            self.running.push(Running::waiting(kind, work, cx.waker()));
            return;
        }
        // NB: no `pump`: the scheduler is back where it was before this
        // call, when nothing waiting could start.
        self.scheduler.finished(kind);
        answer(entry.take_reply(), outgoing, outbox);
    }

    /// Polls the calls started and not polled yet, then those that were
    /// woken, while the outbox has room; `true` when any started or finished.
    pub(crate) fn poll(
        &mut self,
        cx: &mut TaskContext<'_>,
        outgoing: &mut Outgoing,
        outbox: &mut Outbox,
    ) -> bool {
        let mut progress = self.poll_started(cx, outgoing, outbox);
        // NB: an empty set is not polled, which would register the task's
        // waker there for nothing: a call that answers at once (most do)
        // never enters it, and one pushed later is polled on the next round.
        while outbox.has_room() && !self.running.is_empty() {
            match self.running.poll_next_unpin(cx) {
                Poll::Ready(Some(done)) => {
                    self.finished(done, outgoing, outbox);
                    progress = true;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        progress
    }

    /// Ends every call, running or waiting, with `err` written to each
    /// request that has no answer yet: for a shutdown that cannot wait any
    /// longer, where a caller must still learn what became of its call.
    pub(crate) fn fail_all(&mut self, err: &ErrorObject, outbox: &mut Outbox) {
        let running = std::mem::take(&mut self.running);
        let answers = running
            .into_iter()
            .chain(self.starting.drain(..))
            .map(|run| run.fail(err))
            .chain(
                self.scheduler
                    .drain_waiting()
                    .into_iter()
                    .map(|work| work.fail(err)),
            )
            .collect::<Vec<_>>();
        // NB: every part of a batch cut into parts has ended once all that
        // run or wait are failed, so each such batch is answered here, in
        // one array.
        for answer in answers {
            if let Some((Some(frame), _)) = self.gathered(answer, 0) {
                outbox.push(frame);
            }
        }
        self.abort();
    }

    /// Drops every call: each is cancelled, and its token if it made one.
    pub(crate) fn abort(&mut self) {
        self.running.clear();
        self.starting.clear();
        self.scheduler.clear();
        self.gathering.clear();
        self.running_bytes = 0;
    }
}

/// Writes a call's answer, if it has one, after what its handler sent
/// while it ran (queued): a caller sees a call's notifications (its
/// progress reports) before its answer, never after.
fn answer(reply: Option<String>, outgoing: &mut Outgoing, outbox: &mut Outbox) {
    if let Some(reply) = reply {
        outgoing.take_queued(outbox);
        outbox.push(reply);
    }
}

/// How a message was read: alone, or as one of a batch's entries.
#[derive(Clone, Copy)]
enum Read {
    Alone,
    /// `after_work`: an entry before it in the batch has a handler still to
    /// run. The batch polls its entries in order, so a handler run as it is
    /// read would pass that one: it waits for the batch too.
    InBatch {
        after_work: bool,
    },
}

/// A message answered without running anything: in a batch, one of the
/// array's entries; alone, it needs no turn (and must not take a queue
/// place while busy).
fn answered(reply: String, in_batch: bool, outbox: &mut Outbox) -> Option<(Concurrency, Entry)> {
    if in_batch {
        return Some((Concurrency::Concurrent, Entry::done(Some(reply))));
    }
    outbox.push(reply);
    None
}

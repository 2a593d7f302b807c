//! The per-connection loop: read frames, dispatch calls, resolve replies, write frames, shut down in order.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::{FutureExt, Sink, Stream};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::dispatch::{join_batch, Call};
use crate::error::{Error, ErrorObject};
use crate::handler::BoxFuture;
use crate::message::{
    encode_notification, encode_request, encode_response, parse, Frame, Id, Message, Rejected,
    Version,
};
use crate::peer::{Command, Control, Peer, PeerChannels};
use crate::pending::PendingTable;
use crate::router::{Concurrency, Router};
use crate::session::Session;

/// A work item that has not started yet.
struct Job {
    seq: u64,
    kind: Concurrency,
    ids: Ids,
    work: BoxFuture<Option<String>>,
}

/// The request ids a job answers, to find it by `$/cancelRequest`.
enum Ids {
    None,
    One(Id, Version),
    Many(Vec<Id>),
}

/// What a finished job hands back to the driver.
struct Finished {
    seq: u64,
    kind: Concurrency,
    ids: Ids,
    reply: Option<String>,
}

enum Phase {
    /// Reading, dispatching, writing.
    Open,
    /// No more reading; running handlers may finish until the deadline.
    Draining,
    /// Nothing runs any more; write what is left, flush and close the
    /// transport, also before the deadline.
    Closing,
}

/// Drives one connection: the only owner of its state (pending calls, ids,
/// running handlers, the transport). Spawn it, or `.await` it; it completes
/// when the connection is closed.
///
/// ```
/// use rpcpeer::{Driver, ErrorObject, Router, transport::memory_pair};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let (a, b) = memory_pair();
/// let mut router = Router::new();
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
///
/// let (_server, server_driver) = Driver::new(a, router);
/// tokio::spawn(server_driver);
/// let (client, client_driver) = Driver::new(b, Router::new());
/// tokio::spawn(client_driver);
///
/// let pong: String = client.request("ping", ()).await?;
/// assert_eq!(pong, "pong");
/// client.close().await;
/// # Ok(()) }
/// ```
pub struct Driver<T, S = ()> {
    transport: T,
    router: Router<S>,
    config: Config,
    peer: Peer,
    session: Session,
    channels: PeerChannels,
    pending: PendingTable,
    running: JoinSet<Finished>,
    /// Incoming requests that can still be cancelled, by id.
    cancellable: HashMap<Id, (u64, CancellationToken)>,
    /// Jobs waiting for a slot, in arrival order (concurrent and exclusive).
    ready: VecDeque<Job>,
    /// In-order jobs waiting for the previous one to finish.
    serial: VecDeque<Job>,
    serial_busy: bool,
    exclusive_running: bool,
    next_seq: u64,
    outbox: VecDeque<String>,
    unflushed: bool,
    phase: Phase,
    /// Set when shutdown starts: bounds both the drain and the last flush,
    /// so a peer that stopped reading cannot hold the connection open.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The version our own messages use: the peer's last, unless configured.
    speak: Version,
    /// Why the connection ended, when it was not a clean close.
    failure: Option<io::Error>,
    /// What our pending calls are told when they fail: the transport's
    /// error, the peer's last complaint about our messages, or a local close.
    close_reason: Option<Arc<str>>,
}

impl<T, S> Driver<T, S>
where
    T: Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Unpin,
    S: Send + Sync + 'static,
{
    /// A driver for `transport` with the default [`Config`], and the
    /// [`Peer`] handle to call the other side.
    pub fn new(transport: T, router: Router<S>) -> (Peer, Self) {
        Self::with_config(transport, router, Config::default())
    }

    /// A driver with its own limits and timeouts.
    pub fn with_config(transport: T, router: Router<S>, config: Config) -> (Peer, Self) {
        Self::with_session(transport, router, config, Session::new())
    }

    /// A driver whose handlers share `session` (for state set before the
    /// first message, such as the remote address).
    pub fn with_session(
        transport: T,
        router: Router<S>,
        config: Config,
        session: Session,
    ) -> (Peer, Self) {
        let (peer, channels) = Peer::new(config.command_queue, config.request_timeout);
        let driver = Self {
            transport,
            router,
            speak: config.version.unwrap_or(Version::V2),
            config,
            peer: peer.clone(),
            session,
            channels,
            pending: PendingTable::default(),
            running: JoinSet::new(),
            cancellable: HashMap::new(),
            ready: VecDeque::new(),
            serial: VecDeque::new(),
            serial_busy: false,
            exclusive_running: false,
            next_seq: 0,
            outbox: VecDeque::new(),
            unflushed: false,
            phase: Phase::Open,
            deadline: None,
            failure: None,
            close_reason: None,
        };
        (peer, driver)
    }

    /// This connection's session store.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs the connection to its end.
    ///
    /// # Errors
    /// [`Error::Transport`] when reading or writing failed, or a frame could
    /// not be read (after answering it with -32700). A peer that hangs up
    /// cleanly, or [`Peer::close`], gives `Ok`.
    ///
    /// # Cancel safety
    /// Dropping the future drops the connection: running handlers are
    /// cancelled and every pending call fails with [`Error::Closed`].
    pub async fn run(self) -> Result<(), Error> {
        self.await
    }

    fn outbox_has_room(&self) -> bool {
        self.outbox.len() < self.config.max_outbox
    }

    fn queued(&self) -> usize {
        self.ready.len() + self.serial.len()
    }

    fn may_read(&self) -> bool {
        // NB: reading stops only when nothing of ours waits for a reply;
        // otherwise a handler waiting on a callback to the peer would never
        // see its answer (the deadlock of ruff#28390 and quarkus-ls#338).
        // NB: nor on a full outbox while we wait for replies: two peers that
        // both stopped reading until their output drained would wait on each
        // other forever. Twice the outbox bound is the hard stop that keeps
        // memory bounded against a peer that floods and never reads.
        if !matches!(self.phase, Phase::Open) || self.outbox.len() >= 2 * self.config.max_outbox {
            return false;
        }
        !self.pending.is_empty()
            || (self.queued() < self.config.max_queued && self.outbox_has_room())
    }

    fn on_frame(&mut self, text: &str) {
        match parse(text) {
            Frame::Single(Ok(message)) => self.on_message(message),
            Frame::Single(Err(rejected)) => {
                tracing::debug!(error = %rejected.error, "rejected a message");
                self.outbox.push_back(rejected.reply());
            }
            Frame::Batch(items) => self.on_batch(items),
        }
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Response(resp) => self.on_response(resp.id, resp.outcome),
            Message::Request(req) => {
                if self.queued() >= self.config.max_queued {
                    let busy = busy(self.queued());
                    self.outbox
                        .push_back(encode_response(req.version, &req.id, Err(&busy)));
                    return;
                }
                let call = self.prepare(req.version, Some(req.id), req.method, req.params);
                self.submit_call(call);
            }
            Message::Notification(n) => {
                self.follow(n.version);
                if self.config.cancel_method.as_deref() == Some(n.method.as_str()) {
                    self.on_cancel_request(n.params.as_deref());
                    return;
                }
                if self.queued() >= self.config.max_queued {
                    // No reply can say "busy" to a notification; the log must.
                    tracing::warn!(method = %n.method, "queue full while waiting for a reply: notification dropped");
                    return;
                }
                let call = self.prepare(n.version, None, n.method, n.params);
                self.submit_call(call);
            }
        }
    }

    /// A call from the peer, ready to start; the peer's version is followed.
    fn prepare(
        &mut self,
        version: Version,
        id: Option<Id>,
        method: String,
        params: Option<Box<serde_json::value::RawValue>>,
    ) -> Call {
        self.follow(version);
        Call::prepare(
            &self.router,
            version,
            id,
            method,
            params,
            &self.peer,
            &self.session,
        )
    }

    /// Follows the version the peer writes in, unless one is configured.
    fn follow(&mut self, version: Version) {
        if self.config.version.is_none() {
            self.speak = version;
        }
    }

    fn on_response(
        &mut self,
        id: Id,
        outcome: Result<Box<serde_json::value::RawValue>, ErrorObject>,
    ) {
        let unmatched = match id.as_u64() {
            Some(n) => self.pending.resolve(n, outcome).err(),
            None => Some(outcome),
        };
        if let Some(outcome) = unmatched {
            match outcome {
                Err(err) if id.is_null() => {
                    tracing::warn!("the peer could not read one of our messages: {err}");
                    // Often the last word before the peer hangs up (a frame
                    // over its limit): the calls that fail then say so.
                    self.close_reason =
                        Some(format!("the peer could not read our message: {err}").into());
                }
                _ => {
                    tracing::warn!(%id, "response to no request of ours (or one already given up), dropped")
                }
            }
        }
    }

    fn on_batch(&mut self, items: Vec<Result<Message, Rejected>>) {
        if items.len() > self.config.max_batch_len {
            let err = ErrorObject::invalid_request(format!(
                "a batch of {} entries exceeds the limit of {}",
                items.len(),
                self.config.max_batch_len
            ));
            self.outbox
                .push_back(encode_response(Version::V2, &Id::null(), Err(&err)));
            return;
        }
        let full = self.queued() >= self.config.max_queued;
        let mut ids = Vec::new();
        let mut tokens = Vec::new();
        let mut work: Vec<BoxFuture<Option<String>>> = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Ok(Message::Response(resp)) => self.on_response(resp.id, resp.outcome),
                Err(rejected) => work.push(Box::pin(std::future::ready(Some(rejected.reply())))),
                Ok(Message::Request(req)) if full => {
                    let reply = encode_response(req.version, &req.id, Err(&busy(self.queued())));
                    work.push(Box::pin(std::future::ready(Some(reply))));
                }
                Ok(Message::Notification(n)) if full => {
                    tracing::warn!(method = %n.method, "queue full while waiting for a reply: notification dropped");
                }
                Ok(Message::Request(req)) => {
                    let call = self.prepare(req.version, Some(req.id), req.method, req.params);
                    if let Some(id) = &call.id {
                        ids.push(id.clone());
                        tokens.push((id.clone(), call.cancel_token().clone()));
                    }
                    work.push(Box::pin(call.run()));
                }
                Ok(Message::Notification(n))
                    if self.config.cancel_method.as_deref() == Some(n.method.as_str()) =>
                {
                    self.follow(n.version);
                    self.on_cancel_request(n.params.as_deref());
                }
                Ok(Message::Notification(n)) => {
                    let call = self.prepare(n.version, None, n.method, n.params);
                    work.push(Box::pin(call.run()));
                }
            }
        }
        if work.is_empty() {
            return;
        }
        let seq = self.seq();
        for (id, token) in tokens {
            self.cancellable.insert(id, (seq, token));
        }
        // Spec §6: the entries may run in any order, so they all run at once
        // (a batch counts as one handler slot).
        let job = Job {
            seq,
            kind: Concurrency::Concurrent,
            ids: Ids::Many(ids),
            work: Box::pin(async move { join_batch(futures::future::join_all(work).await) }),
        };
        self.submit(job);
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn submit_call(&mut self, call: Call) {
        let seq = self.seq();
        let ids = match &call.id {
            Some(id) => {
                if self.config.cancel_method.is_some() {
                    self.cancellable
                        .insert(id.clone(), (seq, call.cancel_token().clone()));
                }
                Ids::One(id.clone(), call.version)
            }
            None => Ids::None,
        };
        let job = Job {
            seq,
            kind: call.concurrency,
            ids,
            work: Box::pin(call.run()),
        };
        self.submit(job);
    }

    fn submit(&mut self, job: Job) {
        // The common case: nothing waits ahead of it and there is room.
        if job.kind == Concurrency::Concurrent
            && self.ready.is_empty()
            && !self.exclusive_running
            && self.running.len() < self.config.max_in_flight
        {
            self.start(job);
            return;
        }
        match job.kind {
            Concurrency::InOrder => self.serial.push_back(job),
            _ => self.ready.push_back(job),
        }
        self.pump();
    }

    /// Starts every queued job that may start now.
    fn pump(&mut self) {
        loop {
            if self.exclusive_running {
                return;
            }
            // The first exclusive job waiting in `ready` is a barrier: no
            // in-order job that arrived after it starts before it has run
            // (concurrent ones queue behind it in `ready` anyway).
            let barrier = self
                .ready
                .iter()
                .find(|j| j.kind == Concurrency::Exclusive)
                .map(|j| j.seq);
            let room = self.running.len() < self.config.max_in_flight;
            let serial_may_start = !self.serial_busy
                && room
                && self
                    .serial
                    .front()
                    .is_some_and(|j| barrier.is_none_or(|b| j.seq < b));
            if serial_may_start {
                if let Some(job) = self.serial.pop_front() {
                    self.serial_busy = true;
                    self.start(job);
                    continue;
                }
            }
            let Some(head) = self.ready.front() else {
                return;
            };
            let may_start = match head.kind {
                // Waits for everything running and every in-order job that came before it.
                Concurrency::Exclusive => {
                    self.running.is_empty() && self.serial.front().is_none_or(|j| j.seq > head.seq)
                }
                _ => room,
            };
            if !may_start {
                return;
            }
            if let Some(job) = self.ready.pop_front() {
                if job.kind == Concurrency::Exclusive {
                    self.exclusive_running = true;
                }
                self.start(job);
            }
        }
    }

    fn start(&mut self, job: Job) {
        let Job {
            seq,
            kind,
            ids,
            work,
        } = job;
        self.running.spawn(async move {
            // `Call::run` already turns a handler's panic into -32603; this
            // catches one in encoding or batching, so the driver always
            // learns that the job ended and its slot is freed.
            let reply = AssertUnwindSafe(work)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("a job panicked outside its handler");
                    None
                });
            Finished {
                seq,
                kind,
                ids,
                reply,
            }
        });
    }

    fn on_finished(&mut self, finished: Result<Finished, JoinError>) {
        let Ok(finished) = finished else {
            // Only aborted jobs (shutdown past its deadline) end this way.
            return;
        };
        match &finished.ids {
            Ids::None => {}
            Ids::One(id, _) => self.forget_cancellable(id, finished.seq),
            Ids::Many(ids) => {
                for id in ids {
                    self.forget_cancellable(id, finished.seq);
                }
            }
        }
        match finished.kind {
            Concurrency::InOrder => self.serial_busy = false,
            Concurrency::Exclusive => self.exclusive_running = false,
            Concurrency::Concurrent => {}
        }
        if let Some(reply) = finished.reply {
            self.outbox.push_back(reply);
        }
        self.pump();
    }

    fn forget_cancellable(&mut self, id: &Id, seq: u64) {
        // A later request may reuse the id; only remove our own entry.
        if self.cancellable.get(id).is_some_and(|(s, _)| *s == seq) {
            self.cancellable.remove(id);
        }
    }

    /// The peer cancels one of its requests: a running handler sees its
    /// token cancelled; a queued one is answered -32800 without running.
    fn on_cancel_request(&mut self, params: Option<&serde_json::value::RawValue>) {
        let Some(id) = params.and_then(cancel_target) else {
            tracing::debug!("cancel notification without a readable id, ignored");
            return;
        };
        let Some((seq, token)) = self.cancellable.get(&id) else {
            return; // already answered, or never seen
        };
        let seq = *seq;
        token.cancel();
        // A queued single request is answered at once; a running one (or a
        // batch, which runs its entries to completion) answers -32800 itself.
        let queued = [&mut self.ready, &mut self.serial]
            .into_iter()
            .find_map(|queue| {
                let pos = queue
                    .iter()
                    .position(|j| j.seq == seq && matches!(j.ids, Ids::One(..)))?;
                queue.remove(pos)
            });
        if let Some(Job {
            ids: Ids::One(id, version),
            ..
        }) = queued
        {
            let reply = encode_response(version, &id, Err(&ErrorObject::request_cancelled()));
            self.outbox.push_back(reply);
            self.cancellable.remove(&id);
            self.pump();
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let open = matches!(self.phase, Phase::Open);
        match cmd {
            Command::Request {
                id,
                method,
                params,
                reply,
            } => {
                // NB: a caller that gave up before we got here (a dropped
                // future, a timeout while the queue was full) must not leave
                // a call pending forever: nothing of ours would ever be
                // "not pending" again, and reading would ignore its bounds.
                // `CancelOnDrop` closes the channel before it says so.
                if reply.is_closed() {
                    return;
                }
                if !open {
                    let _ = reply.send(Err(crate::pending::Failure::Closed(
                        self.close_reason.clone(),
                    )));
                    return;
                }
                self.pending.insert(id, reply);
                self.outbox.push_back(encode_request(
                    self.speak,
                    &Id::from(id),
                    &method,
                    params.as_deref(),
                ));
            }
            Command::Notify { method, params } => {
                if matches!(self.phase, Phase::Closing) {
                    tracing::debug!(%method, "connection closing: notification not sent");
                    return;
                }
                self.outbox
                    .push_back(encode_notification(self.speak, &method, params.as_deref()));
            }
            Command::Batch(entries) => {
                let mut frame = Vec::with_capacity(entries.len());
                for entry in entries {
                    match entry.call {
                        Some((_, reply)) if reply.is_closed() => {}
                        Some((id, reply)) if open => {
                            self.pending.insert(id, reply);
                            frame.push(Some(encode_request(
                                self.speak,
                                &Id::from(id),
                                &entry.method,
                                entry.params.as_deref(),
                            )));
                        }
                        Some((_, reply)) => {
                            let _ = reply.send(Err(crate::pending::Failure::Closed(
                                self.close_reason.clone(),
                            )));
                        }
                        None if open => frame.push(Some(encode_notification(
                            self.speak,
                            &entry.method,
                            entry.params.as_deref(),
                        ))),
                        None => {}
                    }
                }
                if let Some(text) = join_batch(frame) {
                    self.outbox.push_back(text);
                }
            }
        }
    }

    /// A caller gave up on one of our requests: forget it and tell the peer.
    fn on_caller_gone(&mut self, id: u64) {
        if !self.pending.forget(id) {
            // Answered already, or not seen yet: then its reply channel is
            // closed before this notice was sent (see `CancelOnDrop`), and
            // `on_command` skips the call when it arrives.
            return;
        }
        if let (Some(method), Phase::Open) = (&self.config.cancel_method, &self.phase) {
            let params = serde_json::value::to_raw_value(&serde_json::json!({ "id": id })).ok();
            self.outbox
                .push_back(encode_notification(self.speak, method, params.as_deref()));
        }
    }

    /// Stop reading, fail our pending calls, let handlers finish until the deadline.
    fn begin_shutdown(&mut self) {
        if matches!(self.phase, Phase::Open) {
            self.pending.fail_all(self.close_reason.as_ref());
            self.phase = Phase::Draining;
            self.start_deadline();
        }
    }

    fn start_deadline(&mut self) {
        if self.deadline.is_none() {
            let at = Instant::now() + self.config.drain_timeout;
            self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
        }
    }

    /// The connection is gone: cancel everything now.
    fn abort(&mut self) {
        self.pending.fail_all(self.close_reason.as_ref());
        for (_, (_, token)) in self.cancellable.drain() {
            token.cancel();
        }
        self.running.abort_all();
        self.ready.clear();
        self.serial.clear();
        self.phase = Phase::Closing;
        self.start_deadline();
    }

    fn on_read_error(&mut self, err: io::Error) {
        self.close_reason = Some(err.to_string().into());
        if err.kind() == io::ErrorKind::InvalidData {
            // Framing is lost (oversized or unreadable frame): say why, then
            // close after what is running has answered. Spec §5.1: -32700, id null.
            let reply = ErrorObject::parse_error(&err);
            self.outbox
                .push_back(encode_response(Version::V2, &Id::null(), Err(&reply)));
            self.begin_shutdown();
        } else {
            self.abort();
        }
        self.failure = Some(err);
    }

    /// Writes queued frames; `Ok(true)` when something moved.
    fn poll_write(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<bool>> {
        let mut moved = false;
        while !self.outbox.is_empty() {
            match Pin::new(&mut self.transport).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => break,
            }
            if let Some(frame) = self.outbox.pop_front() {
                Pin::new(&mut self.transport).start_send(frame)?;
                self.unflushed = true;
                moved = true;
            }
        }
        // NB: one flush for everything written in this turn; under load many
        // replies share one write call.
        if self.unflushed {
            match Pin::new(&mut self.transport).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(moved))
    }

    /// Moves the shutdown along; `Ready` when the driver is done.
    fn poll_shutdown(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let expired = self
            .deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready());
        if matches!(self.phase, Phase::Draining) {
            if self.running.is_empty() && self.ready.is_empty() && self.serial.is_empty() {
                self.phase = Phase::Closing;
            } else if expired {
                tracing::debug!(
                    running = self.running.len(),
                    "drain deadline passed: cancelling handlers"
                );
                self.abort();
            }
        }
        if matches!(self.phase, Phase::Closing) {
            if self.outbox.is_empty() && !self.unflushed {
                return match Pin::new(&mut self.transport).poll_close(cx) {
                    Poll::Ready(result) => Poll::Ready(result),
                    // Everything was written; only the polite close (a
                    // WebSocket close handshake, say) is left undone.
                    Poll::Pending if expired => Poll::Ready(Ok(())),
                    Poll::Pending => Poll::Pending,
                };
            }
            if expired {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the peer did not read our last {} frames within the drain timeout",
                        self.outbox.len()
                    ),
                )));
            }
        }
        Poll::Pending
    }
}

fn busy(queued: usize) -> ErrorObject {
    ErrorObject::new(
        ErrorObject::SERVER_BUSY,
        format!("Server busy: {queued} calls are queued on this connection; retry later"),
    )
}

/// The id in `$/cancelRequest` params: `{"id": …}` (LSP) or `[…]`.
fn cancel_target(params: &serde_json::value::RawValue) -> Option<Id> {
    #[derive(serde::Deserialize)]
    struct ByName {
        id: Id,
    }
    serde_json::from_str::<ByName>(params.get())
        .map(|p| p.id)
        .or_else(|_| serde_json::from_str::<(Id,)>(params.get()).map(|p| p.0))
        .ok()
}

impl<T, S> Future for Driver<T, S>
where
    T: Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Unpin,
    S: Send + Sync + 'static,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let mut progress = false;

            // NB: in this order: replies and our own calls go out before new
            // input is read, so output is served first under load.
            while let Poll::Ready(Some(control)) = this.channels.control.poll_recv(cx) {
                match control {
                    Control::CallerGone(id) => this.on_caller_gone(id),
                    Control::Close => {
                        this.close_reason
                            .get_or_insert_with(|| "closed on this side".into());
                        this.begin_shutdown();
                    }
                }
                progress = true;
            }
            while this.outbox_has_room() {
                match this.running.poll_join_next(cx) {
                    Poll::Ready(Some(finished)) => {
                        this.on_finished(finished);
                        progress = true;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            while this.outbox_has_room() && !matches!(this.phase, Phase::Closing) {
                match this.channels.commands.poll_recv(cx) {
                    Poll::Ready(Some(cmd)) => {
                        this.on_command(cmd);
                        progress = true;
                    }
                    // The driver holds a Peer itself, so this does not happen.
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            // NB: reading never waits on a handler: a frame is parsed and
            // dispatched (spawned or queued) right here.
            while this.may_read() {
                match Pin::new(&mut this.transport).poll_next(cx) {
                    Poll::Ready(Some(Ok(text))) => this.on_frame(&text),
                    Poll::Ready(Some(Err(err))) => this.on_read_error(err),
                    Poll::Ready(None) => this.begin_shutdown(),
                    Poll::Pending => break,
                }
                progress = true;
            }
            match this.poll_write(cx) {
                Poll::Ready(Ok(moved)) => progress |= moved,
                Poll::Ready(Err(err)) => {
                    tracing::debug!("write failed: {err}");
                    this.abort();
                    this.finish();
                    return Poll::Ready(Err(Error::Transport(err)));
                }
                Poll::Pending => {}
            }
            match this.poll_shutdown(cx) {
                Poll::Ready(result) => {
                    this.finish();
                    return Poll::Ready(match (result, this.failure.take()) {
                        (Err(err), _) | (Ok(()), Some(err)) => Err(Error::Transport(err)),
                        (Ok(()), None) => Ok(()),
                    });
                }
                Poll::Pending if !progress => return Poll::Pending,
                Poll::Pending => {}
            }
        }
    }
}

impl<T, S> Driver<T, S> {
    fn finish(&mut self) {
        self.channels.done.cancel();
    }
}

impl<T, S> Drop for Driver<T, S> {
    fn drop(&mut self) {
        // Whatever way the driver ends (completed, dropped, its task
        // aborted), nobody may wait on it forever.
        self.pending.fail_all(self.close_reason.as_ref());
        self.channels.done.cancel();
    }
}

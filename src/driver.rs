//! The per-connection loop: read frames, dispatch calls, resolve replies, write frames, shut down in order.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::stream::FuturesUnordered;
use futures::{Sink, Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::dispatch::{admit, Admitted, Env};
use crate::error::{Error, ErrorObject};
use crate::message::{
    encode_notification, encode_request, encode_response, parse, Frame, Id, Message, Rejected,
    Version,
};
use crate::outbox::Outbox;
use crate::peer::{Command, Control, Peer, PeerChannels};
use crate::pending::PendingTable;
use crate::router::{Concurrency, Router};
use crate::running::{join_batch, Entry, Running, Work};
use crate::scheduler::Scheduler;
use crate::session::Session;

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
    /// Which incoming calls may start, and which wait.
    scheduler: Scheduler<Work>,
    /// Started by the scheduler, not polled yet: polled once at once, so a
    /// call answered without waiting never enters `running`.
    starting: std::collections::VecDeque<Running>,
    /// Calls whose handlers wait on something, polled by this task.
    running: FuturesUnordered<Running>,
    outbox: Outbox,
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
            peer: peer.clone(),
            session,
            channels,
            pending: PendingTable::default(),
            scheduler: Scheduler::new(config.max_in_flight),
            starting: std::collections::VecDeque::new(),
            running: FuturesUnordered::new(),
            outbox: Outbox::default(),
            phase: Phase::Open,
            deadline: None,
            failure: None,
            close_reason: None,
            config,
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
        self.scheduler.queued()
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
            Frame::Single(item) => {
                if let Some((kind, entry)) = self.admit(item, false) {
                    self.scheduler.submit(kind, Work::One(entry));
                }
            }
            Frame::Batch(items) => self.on_batch(items),
        }
        self.pump();
    }

    /// One path for every incoming message, alone or in a batch: a call
    /// comes back to be scheduled; anything else is dealt with here.
    fn admit(
        &mut self,
        item: Result<Message<'_>, Rejected>,
        in_batch: bool,
    ) -> Option<(Concurrency, Entry)> {
        let queued = self.queued();
        let full = (queued >= self.config.max_queued).then_some(queued);
        let env = Env {
            router: &self.router,
            peer: &self.peer,
            session: &self.session,
            cancel_method: self.config.cancel_method.as_deref(),
        };
        match admit(&env, item, full) {
            Admitted::Call(kind, version, entry) => {
                self.follow(version);
                Some((kind, entry))
            }
            Admitted::Response(resp) => {
                self.on_response(resp.id, resp.outcome);
                None
            }
            Admitted::Cancel(version, id) => {
                self.follow(version);
                match id {
                    Some(id) => self.on_cancel_request(&id),
                    None => tracing::debug!("cancel notification without a readable id, ignored"),
                }
                None
            }
            // In a batch it is one of the array's entries; alone it needs
            // no turn (and must not take a queue place while busy).
            Admitted::Answered(reply) if in_batch => {
                Some((Concurrency::Concurrent, Entry::done(Some(reply))))
            }
            Admitted::Answered(reply) => {
                self.outbox.push(reply);
                None
            }
            Admitted::Dropped => None,
        }
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

    fn on_batch(&mut self, items: Vec<Result<Message<'_>, Rejected>>) {
        if items.len() > self.config.max_batch_len {
            let err = ErrorObject::invalid_request(format!(
                "a batch of {} entries exceeds the limit of {}",
                items.len(),
                self.config.max_batch_len
            ));
            self.outbox
                .push(encode_response(Version::V2, &Id::null(), Err(&err)));
            return;
        }
        let entries: Vec<Entry> = items
            .into_iter()
            .filter_map(|item| self.admit(item, true).map(|(_, entry)| entry))
            .collect();
        if !entries.is_empty() {
            // Spec §6: the entries may run in any order, so they all run at
            // once, as one concurrent job (a batch takes one handler slot).
            self.scheduler
                .submit(Concurrency::Concurrent, Work::Batch(entries));
        }
    }

    /// Hands every job that may start now to be polled.
    fn pump(&mut self) {
        while let Some((kind, work)) = self.scheduler.next() {
            self.starting.push_back(Running::new(kind, work));
        }
    }

    fn on_finished(&mut self, kind: Concurrency, reply: Option<String>) {
        self.scheduler.finished(kind);
        if let Some(reply) = reply {
            self.outbox.push(reply);
        }
        self.pump();
    }

    /// The peer cancels one of its requests.
    fn on_cancel_request(&mut self, id: &Id) {
        let started = self.running.iter_mut().chain(self.starting.iter_mut());
        if let Some(reply) = crate::cancel::incoming(id, &mut self.scheduler, started) {
            self.outbox.push(reply);
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
                self.outbox.push(encode_request(
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
                    .push(encode_notification(self.speak, &method, params.as_deref()));
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
                    self.outbox.push(text);
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
            self.outbox
                .push(crate::cancel::notice(self.speak, method, id));
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
        // Dropping a call cancels it, and its token if it made one.
        self.running.clear();
        self.starting.clear();
        self.scheduler.clear();
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
                .push(encode_response(Version::V2, &Id::null(), Err(&reply)));
            self.begin_shutdown();
        } else {
            self.abort();
        }
        self.failure = Some(err);
    }

    /// Moves the shutdown along; `Ready` when the driver is done.
    fn poll_shutdown(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let expired = self
            .deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready());
        if matches!(self.phase, Phase::Draining) {
            if self.scheduler.is_idle() {
                self.phase = Phase::Closing;
            } else if expired {
                tracing::debug!(
                    running = self.scheduler.running(),
                    "drain deadline passed: cancelling handlers"
                );
                self.abort();
            }
        }
        if matches!(self.phase, Phase::Closing) {
            if self.outbox.is_settled() {
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
                        "the peer did not read our last {} frames ({} bytes) within the drain timeout",
                        self.outbox.len(),
                        self.outbox.bytes()
                    ),
                )));
            }
        }
        Poll::Pending
    }
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
            // NB: a call started in this turn is polled right here, on
            // this task: a handler that answers at once puts its reply in
            // the outbox before the write below, so the replies to every
            // request read in one go leave in one write call.
            while this.outbox_has_room() {
                let Some(mut run) = this.starting.pop_front() else {
                    break;
                };
                match Pin::new(&mut run).poll(cx) {
                    Poll::Ready((kind, reply)) => this.on_finished(kind, reply),
                    Poll::Pending => this.running.push(run),
                }
                progress = true;
            }
            while this.outbox_has_room() {
                match this.running.poll_next_unpin(cx) {
                    Poll::Ready(Some((kind, reply))) => {
                        this.on_finished(kind, reply);
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
            match this.outbox.poll_write(&mut this.transport, cx) {
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

//! The handle that calls the other side: requests, notifications, batches, close.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::doorbell::Doorbell;
use crate::error::Error;
use crate::params::Params;
use crate::pending::{Ending, Failure, ReplySender};
use crate::progress::{ProgressCall, ReportSink};
use crate::transport::CloseFrame;

/// What a [`Peer`] asks of its driver. The driver alone owns the pending
/// table, so none of this needs a lock.
pub(crate) enum Command {
    Request {
        id: u64,
        method: String,
        params: Option<Box<RawValue>>,
        reply: ReplySender,
        /// Where the call's progress reports go, when it asked for them.
        reports: Option<ReportSink>,
    },
    Notify {
        method: String,
        params: Option<Box<RawValue>>,
    },
    Batch(Vec<BatchEntry>),
}

impl Command {
    /// The bytes it holds until the driver has written it.
    fn bytes(&self) -> usize {
        let params = |p: &Option<Box<RawValue>>| p.as_ref().map_or(0, |p| p.get().len());
        match self {
            Command::Request {
                method, params: p, ..
            }
            | Command::Notify { method, params: p } => method.len() + params(p),
            Command::Batch(entries) => entries
                .iter()
                .map(|e| e.method.len() + params(&e.params))
                .sum(),
        }
    }
}

/// A command on its way to the driver, with the share of the command
/// queue's byte bound it holds until the driver takes it.
pub(crate) struct Queued {
    pub(crate) command: Command,
    _room: OwnedSemaphorePermit,
}

/// What must reach the driver even when its command queue is full: these
/// travel on an unbounded channel that the driver always drains first.
/// Each caller sends at most a few, so it stays small.
pub(crate) enum Control {
    /// A caller stopped waiting for the reply to this id.
    CallerGone(u64),
    /// Close the connection gracefully, saying why when there is a frame.
    // NB: boxed, so that a `Control` is 16 bytes: tokio's channel allocates
    // its first block of 32 slots when it is made, on every connection.
    Close(Option<Box<CloseFrame>>),
}

const _: () = assert!(std::mem::size_of::<Control>() <= 16);

pub(crate) struct BatchEntry {
    pub(crate) method: String,
    pub(crate) params: Option<Box<RawValue>>,
    /// `None` for a notification.
    pub(crate) call: Option<(u64, ReplySender)>,
}

struct Shared {
    // Boxed: tokio's channel allocates its first block of 32 slots when it
    // is made, so an idle connection pays for 32 boxes, not 32 commands.
    commands: mpsc::Sender<Box<Queued>>,
    /// One permit per byte the queued commands may hold.
    room: Arc<Semaphore>,
    max_bytes: u32,
    control: mpsc::UnboundedSender<Control>,
    /// Rung after each message put in `commands` or `control`.
    doorbell: Arc<Doorbell>,
    next_id: AtomicU64,
    timeout: Option<Duration>,
    done: CancellationToken,
    /// The close frame the peer's stream ended with, set by the driver as
    /// soon as it has read it (a drain may follow before `done`).
    peer_close: Arc<OnceLock<Arc<CloseFrame>>>,
    /// Made by [`Peer::detached`]: there never was a connection.
    detached: bool,
    /// This connection's number in the process, for logs.
    connection: u64,
}

/// How a call failed, as far as sending it elsewhere is concerned.
pub(crate) enum CallError {
    /// Never written to this connection, which was ending: it can go out on
    /// another connection without being run twice.
    NotSent(Error),
    /// Anything else, a call written and then lost included.
    Failed(Error),
}

impl CallError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            CallError::NotSent(err) | CallError::Failed(err) => err,
        }
    }
}

impl From<Error> for CallError {
    fn from(err: Error) -> Self {
        CallError::Failed(err)
    }
}

/// A cloneable handle to the peer at the other end of one connection: call
/// its methods, push it notifications, close the connection.
///
/// The same type serves both sides: a server's handlers get it through
/// [`Context::peer`](crate::Context::peer), a client gets it from
/// [`Driver::new`](crate::Driver::new).
///
/// Dropping every handle does not close the connection: the other side may
/// still call this side's methods, which the driver serves until either
/// side closes, the transport ends or the driver's future is dropped. To
/// end it, call [`Peer::close`].
///
/// ```
/// use rpcpeer::{ErrorObject, Router, testing::connected_pair};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let mut server = Router::new();
/// server.method("add", |(a, b): (i64, i64)| async move { Ok::<_, ErrorObject>(a + b) });
/// let (client, _server) = connected_pair(Router::new(), server);
///
/// let sum: i64 = client.request("add", (2, 3)).await?;
/// assert_eq!(sum, 5);
/// client.notify("log", ["done"]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
}

/// The receiving ends that the driver keeps, but for the command queue's
/// (which [`Outgoing`](crate::outgoing::Outgoing) reads).
pub(crate) struct PeerChannels {
    pub(crate) control: mpsc::UnboundedReceiver<Control>,
    /// Rung by the handles when they queue a command or a control message.
    pub(crate) doorbell: Arc<Doorbell>,
    done: CancellationToken,
    peer_close: Arc<OnceLock<Arc<CloseFrame>>>,
}

impl Shared {
    /// Queues `control` for the driver; a closed queue means the driver is
    /// gone, and what the message was about with it.
    fn control(&self, control: Control) {
        if self.control.send(control).is_ok() {
            self.doorbell.ring();
        }
    }
}

impl PeerChannels {
    /// The driver has stopped: every `Peer` sees it.
    pub(crate) fn end(&self) {
        self.done.cancel();
    }

    /// The peer's stream ended with `frame`.
    pub(crate) fn peer_closed_with(&self, frame: Arc<CloseFrame>) {
        let _ = self.peer_close.set(frame);
    }
}

impl Peer {
    pub(crate) fn new(
        queue: usize,
        max_bytes: usize,
        timeout: Option<Duration>,
    ) -> (Self, PeerChannels, mpsc::Receiver<Box<Queued>>) {
        Self::with_connection(queue, max_bytes, timeout, true)
    }

    fn with_connection(
        queue: usize,
        max_bytes: usize,
        timeout: Option<Duration>,
        connected: bool,
    ) -> (Self, PeerChannels, mpsc::Receiver<Box<Queued>>) {
        let (commands, commands_rx) = mpsc::channel(queue);
        let max_bytes = u32::try_from(max_bytes).unwrap_or(u32::MAX).max(1);
        let (control, control_rx) = mpsc::unbounded_channel();
        let done = CancellationToken::new();
        let peer_close = Arc::new(OnceLock::new());
        let doorbell = Arc::new(Doorbell::default());
        let peer = Self {
            shared: Arc::new(Shared {
                commands,
                room: Arc::new(Semaphore::new(max_bytes as usize)),
                max_bytes,
                control,
                doorbell: doorbell.clone(),
                next_id: AtomicU64::new(1),
                timeout,
                done: done.clone(),
                peer_close: peer_close.clone(),
                detached: !connected,
                connection: crate::observe::next_connection(),
            }),
        };
        let channels = PeerChannels {
            control: control_rx,
            doorbell,
            done,
            peer_close,
        };
        (peer, channels, commands_rx)
    }

    /// A peer with no connection behind it: every call fails with
    /// [`Error::Closed`]. Handlers run over one-shot transports (HTTP) get one.
    pub fn detached() -> Self {
        let (peer, channels, _) = Self::with_connection(1, 1, None, false);
        channels.done.cancel();
        peer
    }

    /// Calls `method` and waits for the reply, decoded into `R`.
    ///
    /// `params` must serialize to an array (a tuple, a `Vec`) or an object (a
    /// struct, a map); `()` sends no params (see [`Params`], which also
    /// carries params that are JSON text already). For the result as JSON
    /// text, ask for `R = Box<RawValue>`.
    ///
    /// # Errors
    /// - [`Error::Remote`] when the peer answers with an error object.
    /// - [`Error::InvalidReply`] when its answer is no valid response.
    /// - [`Error::Closed`] when the connection ends before the reply; its
    ///   reason says whether the call had been sent.
    /// - [`Error::Timeout`] when [`Config::request_timeout`](crate::Config::request_timeout)
    ///   (30 s by default) passes first; the call is then forgotten (a late
    ///   reply is ignored) and the peer told to cancel it.
    /// - [`Error::EncodeParams`] / [`Error::DecodeReply`] when serde fails either way.
    ///
    /// # Cancel safety
    /// Dropping the future before the reply forgets the call and tells the
    /// peer with a `$/cancelRequest` notification (see
    /// [`Config::cancel_method`](crate::Config::cancel_method)).
    pub async fn request<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<R, Error> {
        let params = to_params(method, &params)?;
        let raw = self.call(method, params, self.shared.timeout).await?;
        decode(method, &raw)
    }

    /// [`Peer::request`] with its own timeout instead of the connection's.
    ///
    /// # Errors
    /// As [`Peer::request`].
    ///
    /// # Cancel safety
    /// As [`Peer::request`].
    pub async fn request_with_timeout<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
        timeout: Duration,
    ) -> Result<R, Error> {
        let params = to_params(method, &params)?;
        let raw = self.call(method, params, Some(timeout)).await?;
        decode(method, &raw)
    }

    async fn call(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, Error> {
        self.attempt(method, params, timeout)
            .await
            .map_err(CallError::into_error)
    }

    /// The connection's request timeout.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.shared.timeout
    }

    /// One call on this connection, saying whether it was never sent.
    pub(crate) async fn attempt(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, CallError> {
        let id = self.next_id();
        let attempt = self.attempt_as(id, method, params, timeout, None);
        if !crate::observe::spans_wanted() {
            return attempt.await;
        }
        let span = crate::observe::outgoing(method, Some(id), self.shared.connection);
        attempt.instrument(span).await
    }

    /// Whether `id` is one this side has given a call of its own.
    pub(crate) fn issued(&self, id: u64) -> bool {
        id < self.shared.next_id.load(Ordering::Relaxed)
    }

    /// The id of a new call of ours on this connection.
    pub(crate) fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Calls `method` with progress reports: see [`ProgressCall`]. `params`
    /// are by name (a struct, a map) or none, and get the call's
    /// `workDoneToken`, as LSP's work done progress has it; the peer's
    /// handler sends `$/progress` notifications under that token (a
    /// [`Progress`](crate::progress::Progress) does).
    ///
    /// Nothing is sent until the [`ProgressCall`] is first polled.
    pub fn request_with_progress<T, R>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> ProgressCall<T, R>
    where
        T: DeserializeOwned,
        R: DeserializeOwned + Send + 'static,
    {
        ProgressCall::start(self, method, &params)
    }

    /// A call whose progress reports go to `reports`, decoded into `R`,
    /// with no timeout: the caller's counts from the last report.
    pub(crate) async fn request_with_reports<R: DeserializeOwned>(
        &self,
        id: u64,
        method: &str,
        params: Box<RawValue>,
        reports: ReportSink,
    ) -> Result<R, Error> {
        let attempt = self.attempt_as(id, method, Some(params), None, Some(reports));
        let raw = if crate::observe::spans_wanted() {
            let span = crate::observe::outgoing(method, Some(id), self.shared.connection);
            attempt.instrument(span).await
        } else {
            attempt.await
        };
        decode(method, &raw.map_err(CallError::into_error)?)
    }

    async fn attempt_as(
        &self,
        id: u64,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Option<Duration>,
        reports: Option<ReportSink>,
    ) -> Result<Box<RawValue>, CallError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Request {
            id,
            method: method.to_owned(),
            params,
            reply,
            reports,
        };
        self.send(method, cmd).await?;
        let mut guard = CancelOnDrop {
            ids: vec![id],
            waiting: rx,
            shared: &self.shared,
        };
        if self.shared.commands.is_closed() {
            guard.ids.clear();
            return settled(method, &mut guard.waiting);
        }
        let outcome = match timeout {
            None => (&mut guard.waiting).await,
            Some(after) => match tokio::time::timeout(after, &mut guard.waiting).await {
                Ok(outcome) => outcome,
                // The guard still holds the id: the driver forgets the call
                // and tells the peer to stop.
                Err(_) => {
                    return Err(CallError::Failed(Error::Timeout {
                        method: method.to_owned(),
                        after,
                    }))
                }
            },
        };
        guard.ids.clear();
        into_result(method, outcome)
    }

    /// Sends a notification, waiting while the outgoing queue is full.
    ///
    /// # Errors
    /// [`Error::Closed`] when the connection is gone; [`Error::EncodeParams`]
    /// when the params do not serialize to an array or object.
    ///
    /// # Cancel safety
    /// Dropping the future before it returns may or may not send the notification.
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let params = to_params(method, &params)?;
        self.notify_attempt(method, params)
            .await
            .map_err(CallError::into_error)
    }

    /// A notification on this connection, saying whether it was never sent.
    pub(crate) async fn notify_attempt(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(), CallError> {
        let cmd = Command::Notify {
            method: method.to_owned(),
            params,
        };
        if !crate::observe::spans_wanted() {
            return self.send(method, cmd).await;
        }
        let span = crate::observe::outgoing(method, None, self.shared.connection);
        self.send(method, cmd).instrument(span).await
    }

    /// Sends a notification now or not at all: for pushing to many peers,
    /// where one slow reader must not hold up the rest.
    ///
    /// # Errors
    /// [`Error::Full`] when the outgoing queue is full, [`Error::Closed`] when
    /// the connection is gone, [`Error::EncodeParams`] as for `notify`.
    pub fn try_notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let params = to_params(method, &params)?;
        let cmd = Command::Notify {
            method: method.to_owned(),
            params,
        };
        let full = || Error::Full {
            method: method.to_owned(),
        };
        let room = match Arc::clone(&self.shared.room).try_acquire_many_owned(self.share(&cmd)) {
            Ok(room) => room,
            Err(TryAcquireError::NoPermits) => return Err(full()),
            Err(TryAcquireError::Closed) => return Err(self.gone(method)),
        };
        let queued = Queued {
            command: cmd,
            _room: room,
        };
        self.shared
            .commands
            .try_send(Box::new(queued))
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => full(),
                mpsc::error::TrySendError::Closed(_) => self.gone(method),
            })?;
        self.shared.doorbell.ring();
        Ok(())
    }

    /// Sends every entry of `batch` as one JSON array and waits for all the
    /// replies. The answers come back in the order the requests were added
    /// (notifications have none), whatever order the peer sent them in.
    ///
    /// # Errors
    /// The outer error: [`Error::EncodeParams`] for an entry whose params did
    /// not serialize, [`Error::Closed`] when the batch could not be sent. Each
    /// answer has the errors of [`Peer::request`].
    ///
    /// # Cancel safety
    /// Dropping the future cancels the requests that have no reply yet.
    pub async fn batch(&self, batch: Batch) -> Result<Vec<Result<Box<RawValue>, Error>>, Error> {
        if let Some(err) = batch.error {
            return Err(err);
        }
        let mut entries = Vec::with_capacity(batch.entries.len());
        let mut waiting = Vec::new();
        for (method, params, is_request) in batch.entries {
            let call = is_request.then(|| {
                let id = self.next_id();
                let (tx, rx) = oneshot::channel();
                waiting.push((id, method.clone(), rx));
                (id, tx)
            });
            entries.push(BatchEntry {
                method,
                params,
                call,
            });
        }
        self.send("batch", Command::Batch(entries))
            .await
            .map_err(CallError::into_error)?;
        if self.shared.commands.is_closed() {
            return Ok(waiting
                .into_iter()
                .map(|(_, method, mut rx)| settled(&method, &mut rx).map_err(CallError::into_error))
                .collect());
        }
        let (ids, methods): (Vec<u64>, Vec<String>) =
            waiting.iter().map(|(id, m, _)| (*id, m.clone())).unzip();
        let mut guard = CancelOnDrop {
            ids: ids.clone(),
            waiting: waiting.into_iter().map(|(_, _, rx)| rx).collect::<Vec<_>>(),
            shared: &self.shared,
        };
        // One deadline for the whole batch, not one per entry in turn.
        let deadline = self
            .shared
            .timeout
            .map(|after| (tokio::time::Instant::now() + after, after));
        let mut answers = Vec::with_capacity(ids.len());
        for ((id, method), rx) in ids.into_iter().zip(methods).zip(guard.waiting.iter_mut()) {
            let outcome = match deadline {
                None => rx.await,
                Some((at, after)) => match tokio::time::timeout_at(at, rx).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        answers.push(Err(Error::Timeout { method, after }));
                        continue;
                    }
                },
            };
            guard.ids.retain(|pending| *pending != id);
            answers.push(into_result(&method, outcome).map_err(CallError::into_error));
        }
        Ok(answers)
    }

    /// Closes the connection gracefully: stop reading, let running handlers
    /// finish (up to [`Config::drain_timeout`](crate::Config::drain_timeout)),
    /// fail our pending calls with [`Error::Closed`], flush, close.
    /// Returns once the driver has stopped, so the driver must be running
    /// elsewhere (spawned, or joined with this future).
    ///
    /// Awaited in one of this connection's own handlers, it returns once
    /// the close is asked for, without waiting: the close lets that handler
    /// finish, and its answer goes out before the connection closes.
    ///
    /// NB: awaiting this *in place of* the driver (the driver not spawned,
    /// and nothing else polling it) never returns: nothing runs the close.
    /// To run a driver until a stop signal and then close it gracefully,
    /// await [`Driver::run_until`](crate::Driver::run_until) instead.
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the close once it has been asked for.
    pub async fn close(&self) {
        self.close_saying(None).await;
    }

    /// Closes the connection gracefully, as [`Peer::close`] does, saying
    /// why in a close frame: a WebSocket peer gets `frame`'s code and
    /// reason instead of 1000 (normal closure). Over a transport that has
    /// no close frames (see [`CloseFrames`](crate::transport::CloseFrames)),
    /// or a driver not built with
    /// [`DriverBuilder::close_frames`](crate::DriverBuilder::close_frames),
    /// this is [`Peer::close`]. Either way our own calls still pending fail
    /// with [`Error::Closed`], whose reason names the frame.
    ///
    /// ```
    /// # #[cfg(feature = "ws")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rpcpeer::{ws_server::WsServer, CloseFrame, Context, Driver, Error, ErrorObject, Router};
    ///
    /// // A server that hangs up on whoever calls `logout`, saying why.
    /// let mut server = Router::new();
    /// server.method("logout", |cx: Context| async move {
    ///     let peer = cx.peer().clone();
    ///     tokio::spawn(async move {
    ///         let frame = CloseFrame::new(4001, "logged out").expect("a valid close frame");
    ///         peer.close_with(frame).await
    ///     });
    ///     Ok::<_, ErrorObject>(())
    /// });
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let url = format!("ws://{}/", listener.local_addr()?);
    /// tokio::spawn(WsServer::new(server).serve(listener));
    ///
    /// let ws = rpcpeer::ws::connect(&url, &Default::default()).await?;
    /// let (client, driver) = Driver::builder(ws, Router::new()).close_frames().build();
    /// tokio::spawn(driver);
    /// client.request::<()>("logout", ()).await?;
    /// client.closed().await;
    /// // Calls pending when the server closed, and calls made since, say why.
    /// match client.request::<()>("whoami", ()).await {
    ///     Err(Error::Closed { peer_close: Some(frame), .. }) => {
    ///         assert_eq!((frame.code(), frame.reason()), (4001, "logged out"));
    ///     }
    ///     other => panic!("expected the server's close frame, got {other:?}"),
    /// }
    /// # Ok(()) }
    /// # #[cfg(not(feature = "ws"))]
    /// # fn main() {}
    /// ```
    ///
    /// # Cancel safety
    /// As [`Peer::close`].
    pub async fn close_with(&self, frame: CloseFrame) {
        self.close_saying(Some(frame)).await;
    }

    async fn close_saying(&self, frame: Option<CloseFrame>) {
        // NB: not through the command queue, which the driver stops reading
        // while the peer does not read our output: closing such a peer is
        // when this matters most. An error means the driver is gone already.
        self.shared.control(Control::Close(frame.map(Box::new)));
        // NB: asked by one of this connection's own handlers, the close waits
        // for that handler to finish: waiting here would wait for itself,
        // until the drain timeout cut it short.
        if crate::polling::handlers_of(self.connection_id()) {
            return;
        }
        self.closed().await;
    }

    /// Closes the connection gracefully (as [`Peer::close`]) once `signal`
    /// completes, unless it has ended before. (A server that runs each
    /// driver itself says this in one call:
    /// [`Driver::run_until`](crate::Driver::run_until).)
    ///
    /// The signal is watched by a task of its own (spawned on the current
    /// Tokio runtime), not by the connection's: joined with the driver it
    /// would be polled again at every wake-up of a busy connection.
    pub fn close_when(&self, signal: impl Future<Output = ()> + Send + 'static) {
        let peer = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal => peer.close().await,
                () = peer.closed() => {}
            }
        });
    }

    /// Completes when the connection's driver has stopped.
    pub async fn closed(&self) {
        self.shared.done.cancelled().await;
    }

    /// The close frame the peer sent, as soon as the driver has read it (a
    /// drain of running calls may follow before the connection has ended):
    /// a WebSocket peer's code and reason, read by a driver built with
    /// [`DriverBuilder::close_frames`](crate::DriverBuilder::close_frames).
    /// A program that only waits for pushes (and so has no call to fail
    /// with [`Error::Closed`]) learns from it why the peer closed.
    pub fn peer_close_frame(&self) -> Option<CloseFrame> {
        self.shared
            .peer_close
            .get()
            .map(|frame| CloseFrame::clone(frame))
    }

    /// Whether the connection's driver has stopped (always, for a
    /// [detached](Peer::detached) peer).
    pub fn is_closed(&self) -> bool {
        self.shared.done.is_cancelled()
    }

    /// This connection's number, unique in the process: the `connection`
    /// field of the spans its calls run in, both ways (a
    /// [detached](Peer::detached) peer has one of its own too).
    ///
    /// ```
    /// use rpcpeer::{Router, testing::connected_pair};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (a, b) = connected_pair(Router::new(), Router::new());
    /// assert_ne!(a.connection_id(), b.connection_id()); // one number per end
    /// assert_eq!(a.connection_id(), a.clone().connection_id());
    /// # }
    /// ```
    pub fn connection_id(&self) -> u64 {
        self.shared.connection
    }

    /// Whether this peer never had a connection: a handler run for a
    /// one-shot HTTP request (or by [`Router::handle_text`](crate::Router::handle_text))
    /// gets one. Nothing can be pushed to it, so it cannot join a
    /// [`Group`](crate::group::Group).
    pub fn is_detached(&self) -> bool {
        self.shared.detached
    }

    async fn send(&self, method: &str, cmd: Command) -> Result<(), CallError> {
        let closed = || CallError::NotSent(self.gone(method));
        let room = Arc::clone(&self.shared.room)
            .acquire_many_owned(self.share(&cmd))
            .await
            .map_err(|_| closed())?;
        let queued = Queued {
            command: cmd,
            _room: room,
        };
        self.shared
            .commands
            .send(Box::new(queued))
            .await
            .map_err(|_| closed())?;
        self.shared.doorbell.ring();
        Ok(())
    }

    /// The error of a call that found the driver gone.
    fn gone(&self, method: &str) -> Error {
        if self.shared.detached {
            return Error::closed(
                method,
                "not sent: this peer has no connection to call back on (a one-shot request, such as HTTP POST)",
            );
        }
        let peer_close = self.peer_close_frame();
        let reason = match &peer_close {
            Some(frame) => {
                format!("not sent: the connection had already ended (the peer's {frame})")
            }
            None => "not sent: the connection had already ended".to_owned(),
        };
        Error::Closed {
            method: method.to_owned(),
            reason,
            peer_close,
        }
    }
    /// The permits `cmd` takes: its bytes, but never more than the whole
    /// bound, so that a command larger than the bound goes alone.
    fn share(&self, cmd: &Command) -> u32 {
        u32::try_from(cmd.bytes())
            .unwrap_or(u32::MAX)
            .min(self.shared.max_bytes)
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Several calls to send as one JSON-RPC batch with [`Peer::batch`].
///
/// ```
/// use rpcpeer::Batch;
///
/// let mut batch = Batch::new();
/// batch.request("sum", [1, 2, 4]).notify("notify_hello", [7]).request("get_data", ());
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Default)]
pub struct Batch {
    entries: Vec<(String, Option<Box<RawValue>>, bool)>,
    error: Option<Error>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a request; its answer will be in the result of [`Peer::batch`].
    pub fn request(&mut self, method: &str, params: impl Serialize) -> &mut Self {
        self.push(method, &params, true)
    }

    /// Adds a notification.
    pub fn notify(&mut self, method: &str, params: impl Serialize) -> &mut Self {
        self.push(method, &params, false)
    }

    fn push(&mut self, method: &str, params: &impl Serialize, is_request: bool) -> &mut Self {
        match to_params(method, params) {
            Ok(params) => self.entries.push((method.to_owned(), params, is_request)),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// How many entries the batch has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

type ReplyReceiver = oneshot::Receiver<Result<Box<RawValue>, Failure>>;

/// Reply channels that a caller can close while it still holds them.
trait Waiting {
    fn close(&mut self);
}

impl Waiting for ReplyReceiver {
    fn close(&mut self) {
        oneshot::Receiver::close(self);
    }
}

impl Waiting for Vec<ReplyReceiver> {
    fn close(&mut self) {
        self.iter_mut().for_each(oneshot::Receiver::close);
    }
}

/// Tells the driver about calls whose caller stopped waiting.
struct CancelOnDrop<'a, W: Waiting> {
    ids: Vec<u64>,
    /// The reply channels, closed before the driver is told: a call the
    /// driver has not taken from its queue yet is then seen as abandoned
    /// when it is, and never sent.
    waiting: W,
    shared: &'a Shared,
}

impl<W: Waiting> Drop for CancelOnDrop<'_, W> {
    fn drop(&mut self) {
        self.waiting.close();
        for id in self.ids.drain(..) {
            // A closed channel means the driver is gone and the call with it.
            self.shared.control(Control::CallerGone(id));
        }
    }
}

/// Serializes params as [`Params`] does: an array or an object, or nothing
/// for `()` and `None`. Anything else is refused here rather than sent and
/// refused by the peer.
pub(crate) fn to_params(
    method: &str,
    params: &impl Serialize,
) -> Result<Option<Box<RawValue>>, Error> {
    match Params::new(params) {
        Ok(params) => Ok(params.map(Params::into_raw)),
        Err(source) => Err(Error::EncodeParams {
            method: method.to_owned(),
            source,
        }),
    }
}

fn decode<R: DeserializeOwned>(method: &str, raw: &RawValue) -> Result<R, Error> {
    serde_json::from_str(raw.get()).map_err(|source| Error::DecodeReply {
        method: method.to_owned(),
        source,
    })
}

/// The outcome of a call sent to a driver that has since dropped its
/// command queue: it answered (or failed) every call it took before that,
/// so the outcome is there now or never comes.
///
/// NB: checked after every send, because a send can complete after the
/// driver is gone: a sender that got its queue slot before the driver
/// dropped the receiver pushes the call after the receiver drained the
/// queue, and nothing would ever drop its reply channel (until every `Peer`
/// is gone). The check is one atomic load; the token `done` would take a lock.
fn settled(method: &str, rx: &mut ReplyReceiver) -> Result<Box<RawValue>, CallError> {
    match rx.try_recv() {
        Ok(outcome) => into_result(method, Ok(outcome)),
        Err(_) => Err(CallError::NotSent(Error::closed(
            method,
            "not sent: the connection ended before the call left its queue",
        ))),
    }
}

fn into_result(
    method: &str,
    outcome: Result<Result<Box<RawValue>, Failure>, oneshot::error::RecvError>,
) -> Result<Box<RawValue>, CallError> {
    match outcome {
        Ok(Ok(raw)) => Ok(raw),
        Ok(Err(Failure::Remote(source))) => Err(CallError::Failed(Error::Remote {
            method: method.to_owned(),
            source,
        })),
        Ok(Err(Failure::Invalid(what))) => Err(CallError::Failed(Error::InvalidReply {
            method: method.to_owned(),
            what,
        })),
        Ok(Err(Failure::NotSent(ending))) => {
            Err(CallError::NotSent(closed(method, "not sent", ending)))
        }
        Ok(Err(Failure::Lost(ending))) => Err(CallError::Failed(closed(
            method,
            "sent, then the connection was lost before the reply",
            ending,
        ))),
        // NB: the sender was dropped unanswered, which only happens to a
        // call still in the driver's queue when the driver ended: a call it
        // took is answered, failed `Lost` (`fail_all`, also on drop) or
        // failed `NotSent`.
        Err(_) => Err(CallError::NotSent(Error::closed(
            method,
            "not sent: the connection ended before the call left its queue",
        ))),
    }
}

/// [`Error::Closed`] for a call that the connection's end failed.
fn closed(method: &str, fate: &str, ending: Ending) -> Error {
    Error::Closed {
        method: method.to_owned(),
        reason: format!("{fate}: {}", ending.why),
        peer_close: ending.peer_close.as_deref().cloned(),
    }
}

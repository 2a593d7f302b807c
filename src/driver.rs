//! The per-connection loop: in what order one poll reads frames, dispatches calls, resolves replies and writes.
//!
//! How a connection ends is `shutdown`; what its input says besides frames, `input`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::{Sink, Stream};
use tokio::time::Sleep;

use crate::builder::DriverBuilder;
use crate::calls::Calls;
use crate::config::Config;
use crate::error::Error;
use crate::handles::Handles;
use crate::idle::Idle;
use crate::outbox::Outbox;
use crate::outgoing::{Hooks, Outgoing};
use crate::peer::{Control, Peer};
use crate::polling::Polling;
use crate::router::Router;
use crate::session::Session;
use crate::stall::WriteStall;
use crate::transport::CloseHooks;

use self::shutdown::Phase;

mod input;
mod shutdown;

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
    /// Set when the transport has close frames and the builder asked for them.
    close_frames: Option<CloseHooks<T>>,
    config: Config,
    /// The peer's calls to us.
    calls: Calls<S>,
    /// What our `Peer` handles queue for us.
    handles: Handles,
    /// Our own calls to the peer.
    outgoing: Outgoing,
    outbox: Outbox,
    phase: Phase,
    /// Set when shutdown starts: bounds both the drain and the last flush,
    /// so a peer that stopped reading cannot hold the connection open.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The write timeout, against a peer that stopped reading.
    write_stall: WriteStall,
    /// With an idle timeout: fires when no message moved for that long.
    idle: Option<Idle>,
    /// Why the connection ended, when it was not a clean close.
    failure: Option<io::Error>,
    /// The transport said its input is over (an end, or an error after
    /// which nothing can be read): nothing is left to read before the end.
    input_ended: bool,
    /// Our side of the transport is closed: only the peer's close is awaited.
    closed: bool,
}

impl<T, S, F> Driver<T, S>
where
    T: Stream<Item = io::Result<F>> + Sink<String, Error = io::Error> + Unpin,
    F: AsRef<str>,
    S: Send + Sync + 'static,
{
    /// A driver for `transport` with the default [`Config`], and the
    /// [`Peer`] handle to call the other side. For anything else (a config,
    /// a session, close frames), [`Driver::builder`].
    pub fn new(transport: T, router: Router<S>) -> (Peer, Self) {
        Self::builder(transport, router).build()
    }

    /// Builds a driver with options: see [`DriverBuilder`].
    pub fn builder(transport: T, router: Router<S>) -> DriverBuilder<T, S> {
        DriverBuilder::new(transport, router)
    }

    /// This connection's session store.
    pub fn session(&self) -> &Session {
        self.calls.session()
    }

    /// Runs the connection to its end.
    ///
    /// # Errors
    /// [`Error::Transport`] when reading or writing failed, or a frame could
    /// not be read (after answering it with -32700). A peer that hangs up
    /// cleanly, or [`Peer::close`], gives `Ok`. A message the transport
    /// skipped for its size is no error: it is answered with -32600 and
    /// reading goes on; nor is one that is not UTF-8 (-32700).
    ///
    /// # Cancel safety
    /// Dropping the future drops the connection: running handlers are
    /// cancelled and every pending call fails with [`Error::Closed`].
    pub fn run(self) -> impl Future<Output = Result<(), Error>> {
        // NB: not an `async fn`, whose state would hold the driver more than
        // once (its argument, the future it awaits): every open connection
        // would pay for the copies.
        self
    }

    /// Runs the connection until it ends or `signal` completes; from the
    /// signal on, closes it gracefully (as [`Peer::close`]: stop reading,
    /// fail our pending calls, let running handlers answer until
    /// [`Config::drain_timeout`], flush, close) and runs it to its end. A
    /// server hands each connection its stop signal this way.
    ///
    /// The signal is watched by a task of its own (see
    /// [`Peer::close_when`]), so it is not polled at every wake-up of a
    /// busy connection.
    ///
    /// ```
    /// use rpcpeer::{Driver, ErrorObject, Router, transport::memory_pair};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpcpeer::Error> {
    /// let (a, b) = memory_pair();
    /// let mut router = Router::new();
    /// router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let (_, server) = Driver::new(a, router);
    /// let server = tokio::spawn(server.run_until(async move {
    ///     let _ = stopped.await;
    /// }));
    ///
    /// let (client, client_driver) = Driver::new(b, Router::new());
    /// tokio::spawn(client_driver);
    /// assert_eq!(client.request::<String>("ping", ()).await?, "pong");
    /// let _ = stop.send(());
    /// // The server's side closes gracefully, and the client sees it.
    /// server.await.expect("the server's task")?;
    /// client.closed().await;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Driver::run`].
    ///
    /// # Cancel safety
    /// As [`Driver::run`].
    pub fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Error>> {
        // NB: not an `async fn`: its state would hold the driver three times
        // (the argument, its local copy, the future awaited), some 2.5 KiB
        // more on every idle WebSocket connection. The signal is handed over
        // at the first poll, as an `async fn` would.
        let mut driver = self;
        let mut signal = Some(signal);
        std::future::poll_fn(move |cx| {
            if let Some(signal) = signal.take() {
                driver.calls.peer().close_when(signal);
            }
            Pin::new(&mut driver).poll(cx)
        })
    }

    fn may_read(&self) -> bool {
        // NB: reading stops only when nothing of ours waits for a reply;
        // otherwise a handler waiting on a callback to the peer would never
        // see its answer (the deadlock of ruff#28390 and quarkus-ls#338).
        // NB: nor on a full outbox while we wait for replies: two peers that
        // both stopped reading until their output drained would wait on each
        // other forever. Twice the outbox bound is the hard stop that keeps
        // memory bounded against a peer that floods and never reads.
        if !matches!(self.phase, Phase::Open) || self.outbox.is_overfull() {
            return false;
        }
        self.outgoing.is_waiting() || (self.calls.has_room() && self.outbox.has_room())
    }

    /// Handles every control message queued; whether there was one.
    fn take_control(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let mut took = false;
        while let Some(control) = self.handles.next_control(cx) {
            took = true;
            match control {
                Control::CallerGone(id) => {
                    let open = matches!(self.phase, Phase::Open);
                    let cancel_method = self.config.cancel_method.as_deref().filter(|_| open);
                    if let Some(notice) = self.outgoing.caller_gone(id, cancel_method) {
                        self.outbox.push(notice);
                    }
                }
                Control::Close(frame) => {
                    self.close_saying(frame.map(|frame| *frame));
                    self.begin_shutdown();
                }
            }
        }
        took
    }

    /// Writes the queued commands into the outbox while it has room and the
    /// connection is not closing; whether there was one.
    fn take_commands(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let mut took = false;
        while self.outbox.has_room()
            && !matches!(self.phase, Phase::Closing)
            && self
                .handles
                .next_command(cx, &mut self.outgoing, &mut self.outbox)
        {
            took = true;
        }
        took
    }
}

// No bound on the transport: the builder needs none until the driver runs.
impl<T, S: Send + Sync + 'static> Driver<T, S> {
    pub(crate) fn from_parts(
        transport: T,
        router: Router<S>,
        config: Config,
        session: Session,
        close_frames: Option<CloseHooks<T>>,
        hooks: Hooks,
    ) -> (Peer, Self) {
        let (peer, channels, commands) = Peer::new(
            config.command_queue,
            config.max_command_bytes,
            config.request_timeout,
        );
        let driver = Self {
            transport,
            close_frames,
            calls: Calls::new(router, peer.clone(), session, &config),
            handles: Handles::new(channels),
            outgoing: Outgoing::new(commands, config.version, config.max_incoming_bytes, hooks),
            outbox: Outbox::new(
                config.max_outbox,
                config.max_outbox_bytes,
                peer.connection_id(),
            ),
            phase: Phase::Open,
            deadline: None,
            write_stall: WriteStall::default(),
            idle: config.idle_timeout.map(Idle::new),
            failure: None,
            input_ended: false,
            closed: false,
            config,
        };
        (peer, driver)
    }
}

impl<T, S, F> Future for Driver<T, S>
where
    T: Stream<Item = io::Result<F>> + Sink<String, Error = io::Error> + Unpin,
    F: AsRef<str>,
    S: Send + Sync + 'static,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _polling = Polling::enter(this.calls.peer().connection_id());
        // NB: a transport that answered Pending has this task's waker: a
        // later round of this same poll would find nothing new there, so it
        // is not asked again (each ask costs atomics and a waker
        // registration). Not across polls: every poll asks it again. One
        // stopped by a bound instead (`may_read`) is asked again, since a
        // round may have lifted the bound.
        let mut input_idle = false;
        loop {
            let mut progress = false;

            // NB: the two queues of the `Peer` handles are looked into only
            // after their doorbell rang, and then until each is empty (see
            // `Handles`).
            this.handles.answer(cx);
            // NB: in this order: control first (a close or a caller that gave
            // up must get through a full command queue), then replies and
            // our own calls, so output is served before new input is read.
            progress |= this.take_control(cx);
            progress |= this.calls.poll(cx, &mut this.outgoing, &mut this.outbox);
            // NB: a handler polled just now may have queued a notification:
            // taken here, it leaves in this turn's write. The waker is
            // registered already, so a look at the flag is enough.
            if this.handles.look_again() {
                progress |= this.take_control(cx);
            }
            progress |= this.take_commands(cx);
            // NB: reading never waits on a handler: a frame is parsed and
            // its calls queued, or started and polled once, right here; those
            // that answer at once leave in this turn's write call.
            let mut read = false;
            while !input_idle && this.may_read() {
                match Pin::new(&mut this.transport).poll_next(cx) {
                    Poll::Ready(Some(Ok(text))) => {
                        this.calls
                            .on_frame(text.as_ref(), cx, &mut this.outgoing, &mut this.outbox)
                    }
                    Poll::Ready(Some(Err(err))) => this.on_read_error(err),
                    Poll::Ready(None) => this.on_end_of_input(cx),
                    Poll::Pending => {
                        input_idle = true;
                        break;
                    }
                }
                read = true;
            }
            // NB: what was read needs no other round: its calls were
            // polled as it was read, and their replies are written below.
            let held_back = !this.outbox.has_room();
            let moved = match this.outbox.poll_write(&mut this.transport, cx) {
                Poll::Ready(Ok(moved)) => moved,
                Poll::Ready(Err(err)) => {
                    tracing::debug!("write failed: {err}");
                    return this.cut_off(format!("write failed: {err}"), err);
                }
                Poll::Pending => false,
            };
            // NB: a write is worth another round only when the outbox was
            // full: its bound held back replies, our commands and reading.
            // Every source that answered Pending wakes this task itself.
            // With one request at a time, that round was all the work
            // between a reply's write and the wait for the next request,
            // whose round trip included it.
            progress |= moved && held_back;
            // NB: a peer that stops reading must not hold the connection,
            // its handlers and its outbox forever: once nothing has moved
            // for the write timeout, it is cut off without a drain.
            let full = !this.outbox.has_room();
            if this
                .write_stall
                .stalled(full, moved, this.config.write_timeout, cx)
            {
                let err = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the peer read nothing for {:?} while {} frames ({} bytes) waited",
                        this.config.write_timeout,
                        this.outbox.len(),
                        this.outbox.bytes()
                    ),
                );
                tracing::warn!("closing the connection: {err}");
                return this.cut_off(err.to_string(), err);
            }
            progress |= this.close_if_idle(read || moved, cx);
            match this.poll_shutdown(cx) {
                Poll::Ready(result) => return Poll::Ready(this.ended(result)),
                Poll::Pending if !progress => return Poll::Pending,
                Poll::Pending => {}
            }
        }
    }
}

impl<T, S> Driver<T, S> {
    fn finish(&mut self) {
        self.handles.end();
    }
}

impl<T, S> Drop for Driver<T, S> {
    fn drop(&mut self) {
        // Whatever way the driver ends (completed, dropped, its task
        // aborted), nobody may wait on it forever.
        self.outgoing.fail_all();
        self.handles.end();
    }
}

//! A client that reconnects with capped backoff and runs a hook after each (re)connection.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::builder::DriverBuilder;
use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::handler::BoxFuture;
use crate::peer::{to_params, CallError, Peer};
use crate::router::Router;
use crate::transport::{CloseFrame, CloseFrames, Transport};

/// How long to wait between connection attempts: `initial`, doubled after
/// each failure up to `max`; after a connection that worked, back to `initial`.
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::reconnect::{Backoff, Reconnect};
///
/// // 50 ms, 100 ms, 200 ms, … up to 5 s; give up after 10 failures in a row.
/// let settings = Reconnect::new().backoff(Backoff {
///     initial: Duration::from_millis(50),
///     max: Duration::from_secs(5),
///     max_attempts: Some(10),
/// });
/// # let _ = settings;
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first wait (default 100 ms).
    pub initial: Duration,
    /// The longest wait (default 10 s).
    pub max: Duration,
    /// Failed attempts in a row after which the client gives up and closes
    /// (default `None`: never). An attempt fails when connecting fails,
    /// when the `on_connect` hook returns an error, or (with
    /// [`spawn_with_close_frames`](Reconnect::spawn_with_close_frames))
    /// when the server ends the connection with a close code that refuses
    /// it; calls then fail with [`Error::Closed`] whose reason gives the
    /// last attempt's error.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

impl Backoff {
    fn delay(&self, failures: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(self.max)
    }
}

type Hook = Arc<dyn Fn(Peer) -> BoxFuture<Result<(), Error>> + Send + Sync>;

type StopOn = Arc<dyn Fn(&CloseFrame) -> bool + Send + Sync>;

/// Settings of a [`ReconnectingPeer`]; [`Reconnect::spawn`] starts it.
///
/// ```
/// use rpcpeer::reconnect::{Backoff, Reconnect};
/// use rpcpeer::{transport::memory_pair, Driver, ErrorObject, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let mut server = Router::new();
/// server.method("join", |_name: (String,)| async { Ok::<_, ErrorObject>(true) });
/// server.method("sum", |xs: Vec<i64>| async move { Ok::<_, ErrorObject>(xs.iter().sum::<i64>()) });
///
/// // Each attempt opens a new connection: here an in-memory one to a new
/// // server driver; over TCP, `rpcpeer::stream::connect_tcp(addr, framing)`.
/// let connect = move || {
///     let (ours, theirs) = memory_pair();
///     tokio::spawn(Driver::new(theirs, server.clone()).1);
///     async move { Ok(ours) }
/// };
/// let client = Reconnect::new()
///     .backoff(Backoff { max_attempts: Some(20), ..Backoff::default() })
///     // Runs after every (re)connection, before any call goes out on it.
///     .on_connect(|peer| async move { peer.request::<bool>("join", ["ada"]).await.map(drop) })
///     .spawn(connect);
/// let sum: i64 = client.request("sum", [1, 2, 3]).await?;
/// assert_eq!(sum, 6);
/// client.close();
/// # Ok(()) }
/// ```
pub struct Reconnect<S = ()> {
    router: Router<S>,
    config: Config,
    backoff: Backoff,
    on_connect: Option<Hook>,
    stop_on: Option<StopOn>,
}

impl Default for Reconnect<()> {
    fn default() -> Self {
        Self::new()
    }
}

impl Reconnect<()> {
    /// A client that serves no methods, with default settings.
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            config: Config::default(),
            backoff: Backoff::default(),
            on_connect: None,
            stop_on: None,
        }
    }
}

impl<S: Send + Sync + 'static> Reconnect<S> {
    /// The methods this client serves to the other side, on every connection.
    pub fn router<S2: Send + Sync + 'static>(self, router: Router<S2>) -> Reconnect<S2> {
        Reconnect {
            router,
            config: self.config,
            backoff: self.backoff,
            on_connect: self.on_connect,
            stop_on: self.stop_on,
        }
    }

    /// The settings of every connection.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// How long to wait between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs after each connection and reconnection, before the connection is
    /// handed to callers: log in again, re-join rooms. An error closes that
    /// connection and counts as a failed attempt; when the client gives up
    /// (see [`Backoff::max_attempts`]), the last such error is in the reason
    /// its calls fail with.
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Peer) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |peer| Box::pin(hook(peer))));
        self
    }

    /// Stops the client, rather than reconnecting, when the server ends a
    /// connection with a close frame that `stop` picks: a code that says a
    /// new connection would be refused too, such as an application's
    /// "banned". Calls then fail with [`Error::Closed`], whose reason
    /// names the frame. Only a client started with
    /// [`spawn_with_close_frames`](Self::spawn_with_close_frames) reads
    /// close frames ([`spawn`](Self::spawn) logs a warning that this is
    /// set for nothing).
    pub fn stop_on(mut self, stop: impl Fn(&CloseFrame) -> bool + Send + Sync + 'static) -> Self {
        self.stop_on = Some(Arc::new(stop));
        self
    }

    /// Starts connecting with `connect` in a background task.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn spawn<C, Fut, T, F>(self, connect: C) -> ReconnectingPeer
    where
        C: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: Transport<F>,
        F: AsRef<str> + 'static,
    {
        if self.stop_on.is_some() {
            tracing::warn!(
                "Reconnect::stop_on has no effect with spawn: only spawn_with_close_frames reads close frames"
            );
        }
        self.start(connect, |builder| builder)
    }

    /// [`spawn`](Self::spawn) over a transport with close frames (a
    /// WebSocket: see [`CloseFrames`]). Each connection's driver is built
    /// with [`DriverBuilder::close_frames`], so:
    /// - [`Peer::close_with`] sends its code and reason, and the server's
    ///   close frame reaches [`Error::Closed`] and
    ///   [`ReconnectingPeer::last_close_frame`];
    /// - a connection the server ends with a code other than 1000 (normal),
    ///   1001 (going away), 1005 (no code) or 1012 (restarting) counts as a
    ///   failed attempt, unless it worked (a call of
    ///   [`ReconnectingPeer::request`] was answered on it, or it stayed open
    ///   for [`Backoff::max`]): the next one waits longer, and
    ///   [`Backoff::max_attempts`] failures in a row stop the client. A
    ///   server that refuses the client (1008, "policy violation", or a code
    ///   of its own) is not reconnected to at full speed forever;
    /// - [`stop_on`](Self::stop_on) can stop the client at the first such
    ///   close.
    ///
    /// ```
    /// use rpcpeer::reconnect::Reconnect;
    ///
    /// # async fn run() {
    /// let client = Reconnect::new()
    ///     // 4001 is this application's "banned": do not come back.
    ///     .stop_on(|frame| frame.code() == 4001)
    ///     .spawn_with_close_frames(|| async {
    ///         rpcpeer::ws::connect("ws://127.0.0.1:7071/", &Default::default()).await
    ///     });
    /// # let _ = client;
    /// # }
    /// ```
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn spawn_with_close_frames<C, Fut, T, F>(self, connect: C) -> ReconnectingPeer
    where
        C: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: Transport<F> + CloseFrames,
        F: AsRef<str> + 'static,
    {
        self.start(connect, DriverBuilder::close_frames)
    }

    fn start<C, Fut, T, F>(
        self,
        connect: C,
        build: fn(DriverBuilder<T, S>) -> DriverBuilder<T, S>,
    ) -> ReconnectingPeer
    where
        C: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: Transport<F>,
        F: AsRef<str> + 'static,
    {
        let (state_tx, state) = watch::channel(State::Connecting);
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared::default());
        tokio::spawn(supervise(
            self,
            connect,
            build,
            state_tx,
            stop.clone(),
            shared.clone(),
        ));
        ReconnectingPeer {
            state,
            stop,
            shared,
        }
    }
}

#[derive(Clone)]
enum State {
    Connecting,
    /// The connection numbered `.0` (the first is 1).
    Connected(u64, Peer),
    /// Why, and the server's close frame when one stopped it.
    Stopped(Arc<str>, Option<CloseFrame>),
}

/// What the supervisor and the callers share.
#[derive(Default)]
struct Shared {
    /// How many connections have been made so far.
    connections: AtomicU64,
    /// The highest-numbered connection that a caller found ending (it
    /// refused a call unsent) before the supervisor noticed.
    ending: AtomicU64,
    /// Wakes the supervisor when `ending` rises.
    ending_changed: Notify,
    /// The close frame the server ended the last connection with.
    last_close: Mutex<Option<CloseFrame>>,
    /// The highest-numbered connection on which a call was answered.
    answered: AtomicU64,
}

impl Shared {
    /// A caller found connection `number` ending.
    fn found_ending(&self, number: u64) {
        self.ending.fetch_max(number, Ordering::SeqCst);
        self.ending_changed.notify_one();
    }

    /// Completes once a caller has found connection `number` ending.
    async fn ending(&self, number: u64) {
        // NB: `notify_one` keeps a permit when nobody waits, so a rise
        // between the check and the wait is not missed.
        while self.ending.load(Ordering::SeqCst) < number {
            self.ending_changed.notified().await;
        }
    }
}

/// A peer that comes back after the connection drops.
///
/// - Calls made while it is reconnecting wait for the new connection, and so
///   do calls that reached a connection already ending (closing, or closed
///   before the client noticed): they were never written to it, so they go
///   out on the next one.
/// - Calls that were written and pending when the link dropped fail with
///   [`Error::Closed`] (its reason says the connection was lost after the
///   call was sent) and are never resent: the peer may or may not have run
///   them.
/// - Each call's [`Config::request_timeout`] counts on the connection that
///   took it; the wait for a connection is bounded by
///   [`Backoff::max_attempts`] instead.
///
/// ```
/// use rpcpeer::reconnect::Reconnect;
/// use rpcpeer::{transport::memory_pair, Driver, ErrorObject, Router};
/// use tokio::sync::mpsc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let mut server = Router::new();
/// server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
/// // The server's side of each connection, to hang up on the client.
/// let (accepted, mut server_sides) = mpsc::unbounded_channel();
/// let client = Reconnect::new().spawn(move || {
///     let (ours, theirs) = memory_pair();
///     let (server_side, driver) = Driver::new(theirs, server.clone());
///     tokio::spawn(driver);
///     let _ = accepted.send(server_side);
///     async move { Ok(ours) }
/// });
/// assert_eq!(client.request::<String>("ping", ()).await?, "pong");
///
/// // The server hangs up; the next call goes out on a new connection.
/// let first = client.peer().await?;
/// server_sides.recv().await.expect("the first connection").close().await;
/// first.closed().await;
/// assert_eq!(client.request::<String>("ping", ()).await?, "pong");
/// assert_eq!(client.connections(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReconnectingPeer {
    state: watch::Receiver<State>,
    stop: CancellationToken,
    shared: Arc<Shared>,
}

impl ReconnectingPeer {
    /// The current connection's peer, waiting for one while reconnecting.
    ///
    /// # Errors
    /// [`Error::Closed`] once the client was closed or gave up (see
    /// [`Backoff::max_attempts`]); its reason says which.
    ///
    /// # Cancel safety
    /// Dropping the future has no effect on the client.
    pub async fn peer(&self) -> Result<Peer, Error> {
        self.current("(connect)", 0).await.map(|(_, peer)| peer)
    }

    /// The current connection and its number, once it is numbered above
    /// `after` (a connection found ending is not handed out again).
    async fn current(&self, method: &str, after: u64) -> Result<(u64, Peer), Error> {
        let mut state = self.state.clone();
        let found = state
            .wait_for(|s| match s {
                State::Connecting => false,
                State::Connected(number, _) => *number > after,
                State::Stopped(..) => true,
            })
            .await
            .map(|s| s.clone());
        match found {
            Ok(State::Connected(number, peer)) => Ok((number, peer)),
            Ok(State::Stopped(why, peer_close)) => Err(Error::Closed {
                method: method.to_owned(),
                reason: format!("not sent: {why}"),
                peer_close,
            }),
            // The supervisor is gone (its runtime shut down).
            _ => Err(Error::closed(
                method,
                "not sent: the reconnecting client's task stopped",
            )),
        }
    }

    /// [`Peer::request`] on the current connection, or on the next one when
    /// the current one turns out to be ending before the call was written.
    ///
    /// # Errors
    /// As [`Peer::request`] and [`ReconnectingPeer::peer`].
    ///
    /// # Cancel safety
    /// As [`Peer::request`].
    pub async fn request<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<R, Error> {
        let mut after = 0;
        loop {
            let (number, peer) = self.current(method, after).await?;
            // Encoded again for each connection: a call refused unsent has
            // given its params away, and most calls are never refused.
            let params = to_params(method, &params)?;
            match peer.attempt(method, params, peer.timeout()).await {
                Ok(raw) => {
                    self.shared.answered.fetch_max(number, Ordering::Relaxed);
                    return serde_json::from_str(raw.get()).map_err(|source| Error::DecodeReply {
                        method: method.to_owned(),
                        source,
                    });
                }
                Err(CallError::NotSent(err)) => {
                    tracing::debug!(%method, number, "connection ending, the call waits for the next: {err}");
                    self.shared.found_ending(number);
                    after = number;
                }
                Err(CallError::Failed(err)) => return Err(err),
            }
        }
    }

    /// [`Peer::notify`] on the current connection, or on the next one when
    /// the current one is found gone before the notification was queued.
    ///
    /// # Errors
    /// As [`Peer::notify`] and [`ReconnectingPeer::peer`].
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let mut after = 0;
        loop {
            let (number, peer) = self.current(method, after).await?;
            let params = to_params(method, &params)?;
            match peer.notify_attempt(method, params).await {
                Err(CallError::NotSent(_)) => {
                    self.shared.found_ending(number);
                    after = number;
                }
                done => return done.map_err(CallError::into_error),
            }
        }
    }

    /// How many connections have been made so far (the first one included).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The close frame the server sent when it ended the last connection
    /// that has ended; `None` before any has, when it ended without one,
    /// or when the client was not started with
    /// [`Reconnect::spawn_with_close_frames`]. A client that only waits
    /// for pushes learns from it why the server hung up.
    pub fn last_close_frame(&self) -> Option<CloseFrame> {
        (self.shared.last_close.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops reconnecting and closes the current connection.
    pub fn close(&self) {
        self.stop.cancel();
    }
}

/// Whether a connection the server ended with `frame` is as good as a
/// failed attempt: any close but a normal end, a server going away or
/// restarting (RFC 6455 §7.4.1, and IANA's 1012).
fn refuses(frame: &CloseFrame) -> bool {
    !matches!(frame.code(), 1000 | 1001 | 1005 | 1012)
}

async fn supervise<S, C, Fut, T, F>(
    settings: Reconnect<S>,
    connect: C,
    build: fn(DriverBuilder<T, S>) -> DriverBuilder<T, S>,
    state: watch::Sender<State>,
    stop: CancellationToken,
    shared: Arc<Shared>,
) where
    S: Send + Sync + 'static,
    C: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
    T: Transport<F>,
    F: AsRef<str> + 'static,
{
    let mut failures = 0u32;
    // What went wrong with the last failed attempt, for the give-up reason,
    // and the server's close frame when it was one.
    let mut last_failure = String::new();
    let mut last_frame = None;
    loop {
        if failures > 0 {
            if settings
                .backoff
                .max_attempts
                .is_some_and(|max| failures >= max)
            {
                let why = format!(
                    "gave up reconnecting after {failures} failed attempts; the last one: {last_failure}"
                );
                tracing::warn!("{why}");
                state.send_replace(State::Stopped(why.into(), last_frame));
                return;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(settings.backoff.delay(failures)) => {}
            }
        }
        let transport = tokio::select! {
            () = stop.cancelled() => break,
            transport = connect() => transport,
        };
        let transport = match transport {
            Ok(transport) => transport,
            Err(err) => {
                failures += 1;
                tracing::debug!(failures, "connection attempt failed: {err}");
                last_failure = format!("could not connect: {err}");
                last_frame = None;
                continue;
            }
        };
        let (peer, driver) = build(
            Driver::builder(transport, settings.router.clone()).config(settings.config.clone()),
        )
        .build();
        let driver = tokio::spawn(driver);
        if let Some(hook) = &settings.on_connect {
            let hooked = tokio::select! {
                // A close while the hook waits on the peer must not leave
                // callers waiting for a connection that will not come.
                () = stop.cancelled() => {
                    peer.close().await;
                    break;
                }
                hooked = hook(peer.clone()) => hooked,
            };
            if let Err(err) = hooked {
                // NB: often the server refusing a login by closing: its
                // frame says whether to come back.
                let frame = ended_with(&shared, &peer);
                if let Some(why) = stops(&settings, frame.as_ref()) {
                    peer.close().await;
                    state.send_replace(State::Stopped(why.into(), frame));
                    return;
                }
                tracing::warn!("the on_connect hook failed, reconnecting: {err}");
                peer.close().await;
                failures += 1;
                last_failure = format!("the on_connect hook failed: {err}");
                last_frame = frame;
                continue;
            }
        }
        let number = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let connected_at = tokio::time::Instant::now();
        state.send_replace(State::Connected(number, peer.clone()));
        tokio::select! {
            _ = driver => {}
            // NB: a connection that stopped reading may drain its own
            // handlers for a while (its drain timeout) before its driver
            // ends; callers it refused wait for the next connection, so the
            // next one is made now. The old driver finishes on its own task.
            () = shared.ending(number) => {}
            () = stop.cancelled() => {
                peer.close().await;
                break;
            }
        }
        let frame = ended_with(&shared, &peer);
        if let Some(why) = stops(&settings, frame.as_ref()) {
            state.send_replace(State::Stopped(why.into(), frame));
            return;
        }
        if let Some(frame) = frame.filter(refuses) {
            tracing::debug!("the server closed the connection with {frame}, reconnecting");
            state.send_replace(State::Connecting);
            // NB: a connection that worked (a call answered on it, or open
            // as long as the longest wait) ends the failures in a row: this
            // close is the first of a new run.
            let worked = shared.answered.load(Ordering::Relaxed) >= number
                || connected_at.elapsed() >= settings.backoff.max;
            failures = if worked { 1 } else { failures + 1 };
            last_failure = format!("the server closed the connection with {frame}");
            last_frame = Some(frame);
            continue;
        }
        tracing::debug!("connection lost, reconnecting");
        state.send_replace(State::Connecting);
        failures = 0;
        // The first attempt after a working connection waits `initial` too,
        // so a server that accepts and drops at once is not hammered.
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(settings.backoff.initial) => {}
        }
    }
    state.send_replace(State::Stopped(
        "the reconnecting client was closed".into(),
        None,
    ));
}

/// The close frame the server ended `peer`'s connection with, if any,
/// kept as the client's last. NB: known once the driver has read it; a
/// connection found ending before that counts as ended without one.
fn ended_with(shared: &Shared, peer: &Peer) -> Option<CloseFrame> {
    let frame = peer.peer_close_frame();
    *shared
        .last_close
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = frame.clone();
    frame
}

/// Why the client stops at `frame`, when [`Reconnect::stop_on`] picks it.
fn stops<S>(settings: &Reconnect<S>, frame: Option<&CloseFrame>) -> Option<String> {
    let frame = frame.filter(|frame| settings.stop_on.as_ref().is_some_and(|stop| stop(frame)))?;
    let why = format!(
        "the server closed the connection with {frame}, a close that stops the client (stop_on)"
    );
    tracing::info!("{why}");
    Some(why)
}

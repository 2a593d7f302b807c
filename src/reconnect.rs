//! A client that reconnects with capped backoff and runs a hook after each (re)connection.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::handler::BoxFuture;
use crate::peer::Peer;
use crate::router::Router;
use crate::transport::Transport;

/// How long to wait between connection attempts: `initial`, doubled after
/// each failure up to `max`; after a connection that worked, back to `initial`.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first wait (default 100 ms).
    pub initial: Duration,
    /// The longest wait (default 10 s).
    pub max: Duration,
    /// Failed attempts in a row after which the client gives up and closes
    /// (default `None`: never).
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

/// Settings of a [`ReconnectingPeer`]; [`Reconnect::spawn`] starts it.
///
/// ```no_run
/// use rpcpeer::reconnect::{Backoff, Reconnect};
/// use rpcpeer::stream::{connect_tcp, Framing};
///
/// # #[tokio::main] async fn main() -> Result<(), rpcpeer::Error> {
/// let client = Reconnect::new()
///     .backoff(Backoff { max_attempts: Some(20), ..Backoff::default() })
///     // Runs after every (re)connection, before any call goes out on it.
///     .on_connect(|peer| async move { peer.request::<bool>("join", ["ada"]).await.map(drop) })
///     .spawn(|| connect_tcp("127.0.0.1:7070", Framing::Newline));
/// let sum: i64 = client.request("sum", [1, 2, 3]).await?;
/// # Ok(()) }
/// ```
pub struct Reconnect<S = ()> {
    router: Router<S>,
    config: Config,
    backoff: Backoff,
    on_connect: Option<Hook>,
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
    /// connection and counts as a failed attempt.
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Peer) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |peer| Box::pin(hook(peer))));
        self
    }

    /// Starts connecting with `connect` in a background task.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn spawn<C, Fut, T>(self, connect: C) -> ReconnectingPeer
    where
        C: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: Transport,
    {
        let (state_tx, state) = watch::channel(State::Connecting);
        let stop = CancellationToken::new();
        let connections = Arc::new(AtomicU64::new(0));
        tokio::spawn(supervise(
            self,
            connect,
            state_tx,
            stop.clone(),
            connections.clone(),
        ));
        ReconnectingPeer {
            state,
            stop,
            connections,
        }
    }
}

#[derive(Clone)]
enum State {
    Connecting,
    Connected(Peer),
    Stopped(Arc<str>),
}

/// A peer that comes back after the connection drops. Calls made while
/// it is reconnecting wait for the new connection; calls that were pending
/// when the link dropped fail with [`Error::Closed`] and are never resent
/// (the peer may or may not have run them).
#[derive(Clone)]
pub struct ReconnectingPeer {
    state: watch::Receiver<State>,
    stop: CancellationToken,
    connections: Arc<AtomicU64>,
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
        self.current("(connect)").await
    }

    async fn current(&self, method: &str) -> Result<Peer, Error> {
        let mut state = self.state.clone();
        let found = state
            .wait_for(|s| !matches!(s, State::Connecting))
            .await
            .map(|s| s.clone());
        match found {
            Ok(State::Connected(peer)) => Ok(peer),
            Ok(State::Stopped(why)) => Err(Error::closed(method, format!("not sent: {why}"))),
            // The supervisor is gone (its runtime shut down).
            _ => Err(Error::closed(
                method,
                "not sent: the reconnecting client's task stopped",
            )),
        }
    }

    /// [`Peer::request`] on the current connection.
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
        self.current(method).await?.request(method, params).await
    }

    /// [`Peer::notify`] on the current connection.
    ///
    /// # Errors
    /// As [`Peer::notify`] and [`ReconnectingPeer::peer`].
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        self.current(method).await?.notify(method, params).await
    }

    /// How many connections have been made so far (the first one included).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Stops reconnecting and closes the current connection.
    pub fn close(&self) {
        self.stop.cancel();
    }
}

async fn supervise<S, C, Fut, T>(
    settings: Reconnect<S>,
    connect: C,
    state: watch::Sender<State>,
    stop: CancellationToken,
    connections: Arc<AtomicU64>,
) where
    S: Send + Sync + 'static,
    C: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
    T: Transport,
{
    let mut failures = 0u32;
    loop {
        if failures > 0 {
            if settings
                .backoff
                .max_attempts
                .is_some_and(|max| failures >= max)
            {
                let why = format!("gave up reconnecting after {failures} failed attempts");
                state.send_replace(State::Stopped(why.into()));
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
                continue;
            }
        };
        let (peer, driver) =
            Driver::with_config(transport, settings.router.clone(), settings.config.clone());
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
                tracing::warn!("the on_connect hook failed, reconnecting: {err}");
                peer.close().await;
                failures += 1;
                continue;
            }
        }
        connections.fetch_add(1, Ordering::Relaxed);
        state.send_replace(State::Connected(peer.clone()));
        tokio::select! {
            _ = driver => {}
            () = stop.cancelled() => {
                peer.close().await;
                break;
            }
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
    state.send_replace(State::Stopped("the reconnecting client was closed".into()));
}

//! A port's accept loop: a cap on open connections (503 past it), and a graceful stop that lets the work in flight finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::refuse::refuse_connection;
use crate::server::{serve_io, Graceful};
use crate::{Config, Service};

/// How many connections (WebSocket and HTTP alike) a [`Server`] holds open
/// at once unless told otherwise: 10,000. Each holds a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// At most one warning about refused connections per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How long accepting pauses after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Where a [`Server`] takes its connections from: a bound socket that hands
/// out byte streams and the address of their other end.
///
/// Implemented for tokio's [`TcpListener`] (with `TCP_NODELAY` set on each
/// connection: JSON messages are small and latency-bound); implement it
/// for a listener of your own, such as one that ends TLS before handing
/// the stream over.
///
/// ```
/// use std::{io, net::SocketAddr};
/// use rpcpeer_ws::{http, Config, Listener, Server, ServerIo, Service, WsTransport};
///
/// /// Takes connections from this machine only; others are dropped unanswered.
/// struct LoopbackOnly(tokio::net::TcpListener);
///
/// impl Listener for LoopbackOnly {
///     type Io = tokio::net::TcpStream;
///
///     async fn accept(&self) -> io::Result<(Self::Io, SocketAddr)> {
///         loop {
///             let (tcp, remote) = self.0.accept().await?;
///             if remote.ip().is_loopback() {
///                 return Ok((tcp, remote));
///             }
///         }
///     }
/// }
///
/// #[derive(Clone)]
/// struct Quiet;
///
/// impl Service for Quiet {
///     async fn websocket(&self, _ws: WsTransport<ServerIo>, _: http::Extensions, _: SocketAddr) {}
///
///     async fn http(&self, _req: http::Request<String>, _: SocketAddr) -> http::Response<String> {
///         http::Response::new(String::new())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", listener.local_addr()?);
/// tokio::spawn(Server::new(Config::default()).serve(LoopbackOnly(listener), Quiet));
/// rpcpeer_ws::connect(&url, &Config::default()).await?;
/// # Ok(()) }
/// ```
pub trait Listener {
    /// An accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection.
    ///
    /// # Errors
    /// Errors of accepting; the server logs them and accepts on.
    ///
    /// # Cancel safety
    /// Must be cancel safe: a dropped future loses no connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (tcp, remote) = TcpListener::accept(self).await?;
        // A failure only costs some latency.
        let _ = crate::tcp_tuning::tune(&tcp);
        Ok((tcp, remote))
    }
}

/// Serves a [`Service`] on a listener: every accepted connection through
/// [`serve_connection`](crate::serve_connection)'s HTTP and WebSocket
/// split, at most [`max_connections`](Self::max_connections) of them at
/// once, until a stop signal; then it stops gracefully.
///
/// - Past the connection cap, each new connection is answered `503 Service
///   Unavailable` and closed (see [`refuse_connection`](crate::refuse_connection));
///   refusals are logged at warn, at most one line per 10 s with the count
///   of those in between.
/// - A failed accept is logged and accepting goes on, after a short pause
///   so that a lasting failure (a full descriptor table) cannot spin.
/// - Stopping: no more accepting (the listener is dropped, so new
///   connections are refused by the system); [`Stopping`] tells the
///   service's WebSocket conversations, which end by themselves (an
///   upgrade that completes after the stop starts none); an HTTP request
///   being answered finishes and its response says `Connection: close`;
///   an idle keep-alive connection is dropped. The serving future returns
///   once all of that is done.
///
/// ```
/// use std::net::SocketAddr;
/// use rpcpeer_ws::{http, Server, ServerIo, Service, WsTransport};
///
/// #[derive(Clone)]
/// struct Hello;
///
/// impl Service for Hello {
///     async fn websocket(&self, _ws: WsTransport<ServerIo>, _: http::Extensions, _: SocketAddr) {}
///
///     async fn http(&self, _req: http::Request<String>, _: SocketAddr) -> http::Response<String> {
///         http::Response::new("hello\n".to_owned())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let stop = tokio::sync::oneshot::channel::<()>();
/// let server = Server::new(rpcpeer_ws::Config::default()).max_connections(1_000);
/// let serving = tokio::spawn(server.serve_with_shutdown(listener, Hello, async move {
///     let _ = stop.1.await;
/// }));
/// // Until the signal: then it stops accepting, lets work in flight finish, and returns.
/// let _ = stop.0.send(());
/// serving.await??;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    config: Config,
    max_connections: usize,
    stop: CancellationToken,
}

impl Server {
    /// A server whose connections have the limits and timers of `config`
    /// (its clones share one body budget), and at most
    /// [`DEFAULT_MAX_CONNECTIONS`] open at once.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            stop: CancellationToken::new(),
        }
    }

    /// How many connections may be open at once, WebSocket conversations
    /// and HTTP keep-alive connections alike (default
    /// [`DEFAULT_MAX_CONNECTIONS`]; at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// The signal of this server's stop, for the service to hand its
    /// WebSocket conversations so that they close when it comes.
    pub fn stopping(&self) -> Stopping {
        Stopping(self.stop.child_token())
    }

    /// Serves connections for as long as the future is polled.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures to come.
    ///
    /// # Cancel safety
    /// Dropping the future drops the listener: no more connections are
    /// accepted. Those accepted run on tasks of their own and carry on,
    /// with no stop to tell them to end.
    pub async fn serve<L: Listener, S: Service>(self, listener: L, service: S) -> io::Result<()> {
        self.serve_with_shutdown(listener, service, std::future::pending())
            .await
    }

    /// Serves connections until `shutdown` completes, then stops gracefully
    /// (see [`Server`]) and returns once every connection has ended.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures to come.
    ///
    /// # Cancel safety
    /// As [`serve`](Self::serve).
    pub async fn serve_with_shutdown<L: Listener, S: Service>(
        self,
        listener: L,
        service: S,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let mut refusals = Refusals::default();
        let mut accept_errors = AcceptErrors::default();
        let connections = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            let (io, remote) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // One connection's failure, or a full descriptor table:
                    // log it, pause so a lasting one cannot spin, go on.
                    Err(err) => {
                        accept_errors.failed(&err);
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                        continue;
                    }
                },
            };
            // NB: counted by their tasks, which end with the connection (a
            // WebSocket conversation included, see `serve_connection`).
            if connections.len() >= max {
                refusals.refused(remote, max);
                tokio::spawn(refuse_connection(
                    io,
                    format!("the server is at its limit of {max} connections; try again later"),
                ));
                continue;
            }
            refusals.accepting(max);
            let graceful = Graceful {
                stop: self.stop.clone(),
                busy: TaskTracker::new(),
            };
            connections.spawn(connection(
                io,
                remote,
                self.config.clone(),
                service.clone(),
                graceful,
            ));
        }
        drop(listener);
        self.stop.cancel();
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

/// One accepted connection's task: [`serve_io`] until it ends, or until
/// the server stops and the connection has nothing it must finish.
async fn connection<I, S>(io: I, remote: SocketAddr, config: Config, service: S, graceful: Graceful)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service,
{
    // NB: made here rather than passed in: a future passed in would be kept
    // twice in this one's state (as the argument, and pinned), and it holds
    // the whole WebSocket conversation.
    let connection = serve_io(io, remote, config, service, graceful.clone());
    tokio::pin!(connection);
    tokio::select! {
        result = &mut connection => {
            if let Err(err) = result {
                tracing::debug!(%remote, "connection ended: {err}");
            }
            return;
        }
        () = graceful.stop.cancelled() => {}
    }
    // NB: an idle keep-alive connection is dropped now; one that is
    // answering a request finishes it, one that carries a WebSocket
    // conversation waits for its end.
    if !graceful.busy.is_empty() {
        if let Err(err) = connection.await {
            tracing::debug!(%remote, "connection ended: {err}");
        }
    }
}

/// Tells a [`Server`]'s service that the server is stopping: a WebSocket
/// conversation should then end gracefully (finish what is in flight, send
/// its close frame), since the server waits for it.
///
/// ```
/// use rpcpeer_ws::{Config, Server};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = Server::new(Config::default());
/// // Handed to the service before serving starts: each conversation
/// // watches it (`stopping.stopped().await`) to end gracefully.
/// let stopping = server.stopping();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # #[derive(Clone)]
/// # struct Quiet;
/// # impl rpcpeer_ws::Service for Quiet {
/// #     async fn websocket(&self, _: rpcpeer_ws::WsTransport<rpcpeer_ws::ServerIo>, _: rpcpeer_ws::http::Extensions, _: std::net::SocketAddr) {}
/// #     async fn http(&self, _: rpcpeer_ws::http::Request<String>, _: std::net::SocketAddr) -> rpcpeer_ws::http::Response<String> {
/// #         rpcpeer_ws::http::Response::new(String::new())
/// #     }
/// # }
/// assert!(!stopping.is_stopping());
/// server.serve_with_shutdown(listener, Quiet, async {}).await?;
/// assert!(stopping.is_stopping());
/// stopping.stopped().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Stopping(CancellationToken);

impl Stopping {
    /// Whether the server has begun to stop.
    pub fn is_stopping(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes when the server begins to stop (at once if it has).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.clone().cancelled_owned()
    }
}

/// Events logged at warn without flooding the log: one line per
/// [`WARN_EVERY`] at most, telling how many there were since the last.
#[derive(Default)]
struct Throttled {
    /// Counted since the last line about them.
    unreported: u64,
    /// When that line was written.
    last_line: Option<Instant>,
}

impl Throttled {
    /// Counts one; when a line is due, how many it tells of.
    fn count(&mut self) -> Option<u64> {
        self.unreported += 1;
        let now = Instant::now();
        if (self.last_line).is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// Refused connections: a flood of connections at a full server writes one
/// line per [`WARN_EVERY`].
#[derive(Default)]
struct Refusals(Throttled);

impl Refusals {
    fn refused(&mut self, remote: SocketAddr, max: usize) {
        match self.0.count() {
            None => {}
            Some(1) => tracing::warn!(
                %remote,
                "refused a connection (503): all {max} places are taken (max_connections)"
            ),
            Some(n) => tracing::warn!(
                %remote,
                "refused {n} connections (503), the last one now: all {max} places are taken (max_connections)"
            ),
        }
    }

    /// A connection got a place: report refusals no line has told of yet.
    fn accepting(&mut self, max: usize) {
        let n = std::mem::take(&mut self.0.unreported);
        if n > 0 {
            tracing::warn!(
                "accepting again, after refusing {n} more connections (503) while all {max} places were taken (max_connections)"
            );
        }
    }
}

/// Accept errors: out of file descriptors, the listener fails every
/// [`ACCEPT_PAUSE`] until one is freed, and writes one line per
/// [`WARN_EVERY`].
#[derive(Default)]
struct AcceptErrors(Throttled);

impl AcceptErrors {
    fn failed(&mut self, err: &io::Error) {
        match self.0.count() {
            None => {}
            Some(1) => tracing::warn!("accept failed: {err}"),
            Some(n) => tracing::warn!(
                "accept failed {n} times in the last {WARN_EVERY:?}, the last: {err}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;
    use crate::{ServerIo, WsTransport};

    /// A service whose conversation keeps 8 KiB across an await.
    #[derive(Clone)]
    struct Heavy;

    const HEAVY: usize = 8 * 1024;

    impl Service for Heavy {
        async fn websocket(&self, ws: WsTransport<ServerIo>, _: http::Extensions, _: SocketAddr) {
            let kept = [1u8; HEAVY];
            tokio::task::yield_now().await;
            std::hint::black_box((kept, ws));
        }

        async fn http(&self, _: http::Request<String>, _: SocketAddr) -> http::Response<String> {
            http::Response::new(String::new())
        }
    }

    /// Every connection's task is allocated whole when it is spawned, and
    /// it stays until the connection ends: a conversation kept twice in it
    /// (captured, then pinned; or awaited beside a copy) once made an idle
    /// WebSocket connection cost 11 KiB instead of 3.
    #[test]
    fn a_connection_task_holds_its_conversation_once() {
        let (io, _other_end) = tokio::io::duplex(64);
        let remote = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let task = connection(io, remote, Config::default(), Heavy, Graceful::default());
        let size = std::mem::size_of_val(&task);
        assert!(
            size < HEAVY + 4096,
            "a connection's task is {size} bytes for a conversation of {HEAVY}"
        );
    }
}

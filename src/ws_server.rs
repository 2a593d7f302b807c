//! A router served over WebSocket and plain HTTP on one port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rpcpeer_ws::http::{header, HeaderValue, Request, Response};
use rpcpeer_ws::{ServerIo, Service, WsTransport};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::RemoteAddr;
use crate::config::Config;
use crate::driver::Driver;
use crate::http::{respond, HttpOptions};
use crate::peer::Peer;
use crate::router::Router;
use crate::session::Session;

type ConnectHook = Arc<dyn Fn(&Peer, &Session, SocketAddr) + Send + Sync>;

/// How many connections (WebSocket and HTTP alike) a [`WsServer`] holds open
/// at once unless told otherwise: 10,000. An idle WebSocket peer costs some
/// 15 KiB, so this many is about 150 MiB, and each holds a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long a [`WsServer`]'s WebSocket peer may go with no message either
/// way and nothing in flight before it is closed, unless told otherwise:
/// 5 minutes (see [`Config::idle_timeout`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// At most one warning about refused connections per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves a [`Router`] on one TCP port: WebSocket connections (any path)
/// become peers that both serve and call, and plain HTTP requests are
/// answered by [`http::respond`](crate::http::respond).
///
/// Its limits, each with a builder method: messages and HTTP bodies of at
/// most 16 MiB ([`ws_config`](Self::ws_config), `max_message_len`); at most
/// [`DEFAULT_MAX_CONNECTIONS`] connections open at once
/// ([`max_connections`](Self::max_connections)); WebSocket peers closed
/// after [`DEFAULT_IDLE_TIMEOUT`] with no message and nothing in flight
/// ([`idle_timeout`](Self::idle_timeout)).
///
/// ```no_run
/// use rpcpeer::{ws_server::WsServer, ErrorObject, Router};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let mut router = Router::new();
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") }).safe();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7071").await?;
/// // Until Ctrl-C: then stop accepting, close every peer gracefully, return.
/// WsServer::new(router)
///     .serve_with_shutdown(listener, async { let _ = tokio::signal::ctrl_c().await; })
///     .await
/// # }
/// ```
pub struct WsServer<S> {
    service: RouterService<S>,
    max_connections: usize,
    idle_timeout: Option<Duration>,
}

struct RouterService<S> {
    router: Router<S>,
    config: Config,
    ws: rpcpeer_ws::Config,
    http: HttpOptions,
    on_connect: Option<ConnectHook>,
    stop: CancellationToken,
    peers: TaskTracker,
    /// HTTP requests being answered, or the WebSocket conversation, on one
    /// connection (each connection's clone gets its own), so a stop lets
    /// them finish.
    requests: TaskTracker,
}

impl<S> Clone for RouterService<S> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
            config: self.config.clone(),
            ws: self.ws.clone(),
            http: self.http.clone(),
            on_connect: self.on_connect.clone(),
            stop: self.stop.clone(),
            peers: self.peers.clone(),
            requests: self.requests.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> WsServer<S> {
    /// A server for `router` with default settings.
    pub fn new(router: Router<S>) -> Self {
        Self {
            service: RouterService {
                router,
                config: Config::default(),
                ws: rpcpeer_ws::Config::default(),
                http: HttpOptions::default(),
                on_connect: None,
                stop: CancellationToken::new(),
                peers: TaskTracker::new(),
                requests: TaskTracker::new(),
            },
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
        }
    }

    /// The settings of each WebSocket peer's connection.
    pub fn config(mut self, config: Config) -> Self {
        self.service.config = config;
        self
    }

    /// The settings of the port: which protocols it speaks
    /// ([`Protocols`](rpcpeer_ws::Protocols): WebSocket, HTTP, or both, the
    /// default), the message and HTTP body size limit, keep-alive, and the
    /// HTTP head and body timeouts and body budget (see
    /// [`rpcpeer_ws::Config`] for each default and what happens past it).
    /// Its `idle_timeout` is not used: [`idle_timeout`](Self::idle_timeout)
    /// sets the server's.
    ///
    /// ```
    /// use rpcpeer::{ws::{Config, Protocols}, ws_server::WsServer, Router};
    ///
    /// let server = WsServer::new(Router::new()).ws_config(Config {
    ///     protocols: Protocols::WebSocketOnly,
    ///     ..Config::default()
    /// });
    /// # let _ = server;
    /// ```
    pub fn ws_config(mut self, ws: rpcpeer_ws::Config) -> Self {
        self.service.ws = ws;
        self
    }

    /// How many connections may be open at once, WebSocket peers and HTTP
    /// keep-alive connections alike (default [`DEFAULT_MAX_CONNECTIONS`]; at
    /// least 1). Past it, each new connection is answered `503 Service
    /// Unavailable` and closed; refusals are logged at warn, at most one
    /// line per 10 s with the count of those in between.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a WebSocket peer may go with no message read or written and
    /// nothing in flight before it is closed (default
    /// [`DEFAULT_IDLE_TIMEOUT`]; `None`: never). Pings and pongs do not
    /// count; a call that runs longer than this is no idleness. It replaces
    /// the [`Config::idle_timeout`] of [`config`](Self::config).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// What the HTTP side allows beyond same-origin `POST`s (JSONP, CORS
    /// origins) and its batch limit; see [`HttpOptions`]. Its
    /// `allowed_origins` are also the web pages of other origins that may
    /// open a WebSocket here: by default, only this server's own pages may.
    pub fn http_options(mut self, http: HttpOptions) -> Self {
        self.service.http = http;
        self
    }

    /// Runs when a WebSocket peer connects, before its first message is read:
    /// keep its [`Peer`] to push to it later, or fill its session. To act
    /// when it disconnects, spawn a task that awaits [`Peer::closed`].
    pub fn on_connect(
        mut self,
        hook: impl Fn(&Peer, &Session, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.service.on_connect = Some(Arc::new(hook));
        self
    }

    /// Accepts connections for as long as the future is polled. A failed
    /// accept is logged and accepting goes on.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures to come.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Accepts connections until `shutdown` completes; then stops accepting,
    /// closes every WebSocket peer gracefully (see [`Peer::close`]), lets
    /// HTTP requests being answered finish (their responses say
    /// `Connection: close`), drops idle keep-alive connections, and returns
    /// once all of that is done. A failed accept is logged and accepting goes on.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures to come.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut service = self.service;
        service.config = service.config.idle_timeout(self.idle_timeout);
        let max_connections = self.max_connections;
        let mut refusals = Refusals::default();
        let connections = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            let (tcp, remote) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // One connection's failure, or a full descriptor table:
                    // log it, pause so a lasting one cannot spin, go on.
                    Err(err) => {
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // NB: counted by their tasks, which end with the connection (a
            // WebSocket conversation included, see `serve_connection`).
            if connections.len() >= max_connections {
                refusals.refused(remote, max_connections);
                tokio::spawn(rpcpeer_ws::refuse_connection(
                    tcp,
                    format!(
                        "the server is at its limit of {max_connections} connections; try again later"
                    ),
                ));
                continue;
            }
            refusals.accepting(max_connections);
            let mut service = service.clone();
            service.requests = TaskTracker::new();
            let (stop, requests, ws) = (
                service.stop.clone(),
                service.requests.clone(),
                service.ws.clone(),
            );
            connections.spawn(async move {
                let connection = rpcpeer_ws::serve_connection(tcp, remote, ws, service);
                tokio::pin!(connection);
                tokio::select! {
                    result = &mut connection => {
                        if let Err(err) = result {
                            tracing::debug!(%remote, "connection ended: {err}");
                        }
                        return;
                    }
                    () = stop.cancelled() => {}
                }
                // NB: an idle keep-alive connection is dropped now; one whose
                // request is being answered finishes it, and a WebSocket
                // conversation runs until its peer's graceful close.
                if !requests.is_empty() {
                    if let Err(err) = connection.await {
                        tracing::debug!(%remote, "connection ended: {err}");
                    }
                }
            });
        }
        service.stop.cancel();
        service.peers.close();
        connections.close();
        service.peers.wait().await;
        connections.wait().await;
        Ok(())
    }
}

/// Refused connections, logged at warn without flooding the log: a flood of
/// connections at a full server writes one line per [`WARN_EVERY`].
#[derive(Default)]
struct Refusals {
    /// Refused since the last line about them.
    unreported: u64,
    /// When that line was written.
    last_line: Option<Instant>,
}

impl Refusals {
    fn refused(&mut self, remote: SocketAddr, max: usize) {
        self.unreported += 1;
        let now = Instant::now();
        if self
            .last_line
            .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            return;
        }
        self.last_line = Some(now);
        match std::mem::take(&mut self.unreported) {
            1 => tracing::warn!(
                %remote,
                "refused a connection (503): all {max} places are taken (max_connections)"
            ),
            n => tracing::warn!(
                %remote,
                "refused {n} connections (503), the last one now: all {max} places are taken (max_connections)"
            ),
        }
    }

    /// A connection got a place: report refusals no line has told of yet.
    fn accepting(&mut self, max: usize) {
        let n = std::mem::take(&mut self.unreported);
        if n > 0 {
            tracing::warn!(
                "accepting again, after refusing {n} more connections (503) while all {max} places were taken (max_connections)"
            );
        }
    }
}

impl<S: Send + Sync + 'static> Service for RouterService<S> {
    /// An upgrade from a web page of another origin is refused unless
    /// [`HttpOptions::allowed_origins`] lists it. With an authenticator on
    /// the router, an upgrade carrying `Authorization` or `?token=` is
    /// accepted only if they log in; the connection starts with that
    /// identity in its session.
    async fn handshake(
        &self,
        head: &rpcpeer_ws::http::request::Parts,
        remote: SocketAddr,
    ) -> Result<rpcpeer_ws::http::Extensions, Response<String>> {
        if let Some(refusal) = self.http.upgrade_origin_refusal(head) {
            return Err(refusal);
        }
        let mut accepted = rpcpeer_ws::http::Extensions::new();
        if self.router.auth().is_none() {
            return Ok(accepted);
        }
        let session = Session::new();
        session.insert(RemoteAddr(remote));
        let token = form_urlencoded::parse(head.uri.query().unwrap_or_default().as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, token)| token.into_owned());
        crate::http::authenticate(&self.router, &head.headers, token, &session).await?;
        accepted.insert(session);
        Ok(accepted)
    }

    async fn websocket(
        &self,
        ws: WsTransport<ServerIo>,
        mut accepted: rpcpeer_ws::http::Extensions,
        remote: SocketAddr,
    ) {
        if self.stop.is_cancelled() {
            return;
        }
        // The conversation runs within its connection's future, which a
        // stop must not drop: the peer is closed gracefully instead.
        let _conversation = self.requests.token();
        let session = accepted.remove::<Session>().unwrap_or_else(|| {
            let session = Session::new();
            session.insert(RemoteAddr(remote));
            session
        });
        let (peer, driver) = Driver::with_session(
            ws,
            self.router.clone(),
            self.config.clone(),
            session.clone(),
        );
        if let Some(hook) = &self.on_connect {
            hook(&peer, &session, remote);
        }
        let stop = self.stop.clone();
        peer.close_when(async move { stop.cancelled().await });
        // NB: tracked so that a graceful stop waits for the peer's close.
        if let Err(err) = self.peers.track_future(driver).await {
            tracing::debug!(%remote, "WebSocket peer ended: {err}");
        }
    }

    async fn http(&self, req: Request<String>, remote: SocketAddr) -> Response<String> {
        let _answering = self.requests.token();
        let session = Session::new();
        session.insert(RemoteAddr(remote));
        let mut response = respond(&self.router, req, &session, &self.http).await;
        if self.stop.is_cancelled() {
            // Tells the client (and hyper) that this connection ends here.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

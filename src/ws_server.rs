//! A router served over WebSocket and plain HTTP on one port (feature `ws`): what joins a connection to a [`Driver`], and a request to [`respond`](crate::http::respond).
//!
//! No sockets here: the accept loop, the connection cap and the graceful
//! stop are [`rpcpeer_ws::Server`]'s.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rpcpeer_ws::http::{Request, Response};
use rpcpeer_ws::{Listener, ServerIo, Service, Stopping, WsTransport};

use crate::auth::RemoteAddr;
use crate::config::Config;
use crate::driver::Driver;
use crate::http::{respond_to, shutting_down, HttpOptions, NotText};
use crate::peer::Peer;
use crate::router::Router;
use crate::session::Session;
use crate::transport::CloseFrame;

type ConnectHook = Arc<dyn Fn(&Peer, &Session, SocketAddr) + Send + Sync>;

/// How many connections (WebSocket and HTTP alike) a [`WsServer`] holds open
/// at once unless told otherwise: 10,000. An idle WebSocket peer costs some
/// 12 KiB, so this many is about 120 MiB, and each holds a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = rpcpeer_ws::DEFAULT_MAX_CONNECTIONS;

/// How long a [`WsServer`]'s WebSocket peer may go with no message either
/// way and nothing in flight before it is closed, unless told otherwise:
/// 5 minutes (see [`Config::idle_timeout`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Serves a [`Router`] on one port (a TCP listener, or any
/// [`rpcpeer_ws::Listener`]): WebSocket connections (any path)
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
/// ```
/// use rpcpeer::{ws_server::WsServer, Driver, ErrorObject, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut router = Router::new();
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") }).safe();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", listener.local_addr()?);
/// // Until `stop` (a server would wait for Ctrl-C): then stop accepting,
/// // close every peer gracefully, and return.
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(WsServer::new(router).serve_with_shutdown(listener, async {
///     let _ = stopped.await;
/// }));
///
/// let transport = rpcpeer::ws::connect(&url, &Default::default()).await?;
/// let (client, driver) = Driver::new(transport, Router::new());
/// tokio::spawn(driver);
/// assert_eq!(client.request::<String>("ping", ()).await?, "pong");
/// let _ = stop.send(());
/// server.await??;
/// client.closed().await;
/// # Ok(()) }
/// ```
pub struct WsServer<S> {
    router: Router<S>,
    config: Config,
    ws: rpcpeer_ws::Config,
    http: HttpOptions,
    on_connect: Option<ConnectHook>,
    max_connections: usize,
    idle_timeout: Option<Duration>,
    console: Option<Arc<str>>,
}

/// One port's answers: each WebSocket connection a [`Driver`] for the
/// router, each HTTP request [`respond`]'s answer.
struct RouterService<S> {
    router: Router<S>,
    config: Config,
    http: HttpOptions,
    on_connect: Option<ConnectHook>,
    stopping: Stopping,
    /// The path the console page is served at, when it is on.
    console: Option<Arc<str>>,
}

impl<S> Clone for RouterService<S> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
            config: self.config.clone(),
            http: self.http.clone(),
            on_connect: self.on_connect.clone(),
            stopping: self.stopping.clone(),
            console: self.console.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> WsServer<S> {
    /// A server for `router` with default settings.
    pub fn new(router: Router<S>) -> Self {
        Self {
            router,
            config: Config::default(),
            ws: rpcpeer_ws::Config::default(),
            http: HttpOptions::default(),
            on_connect: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            console: None,
        }
    }

    /// The settings of each WebSocket peer's connection.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The settings of the port: which protocols it speaks
    /// ([`Protocols`](rpcpeer_ws::Protocols): WebSocket, HTTP, or both, the
    /// default), the message and HTTP body size limit, keep-alive, and the
    /// HTTP head and body timeouts and body budget (see
    /// [`rpcpeer_ws::Config`] for each default and what happens past it).
    /// Leave its `idle_timeout` off (the default): if set, it closes a
    /// connection whose peer sends nothing for that long, even one that
    /// only listens to pushes, on top of the server's own
    /// [`idle_timeout`](Self::idle_timeout), which counts messages both
    /// ways and spares a peer with calls in flight.
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
        self.ws = ws;
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
        self.http = http;
        self
    }

    /// Serves a console in the browser at `path` (such as `"/"`): a `GET`
    /// of it that accepts `text/html` gets one page, embedded in the
    /// library and fetching nothing from elsewhere, which connects back
    /// here over WebSocket. It lists the methods `rpc.discover` describes
    /// (switch [`Router::introspection`] on) with a params form from their
    /// schemas and a raw JSON editor; sends requests, notifications and
    /// batches; shows results, errors and pushed notifications; and lets
    /// the person answer the server's own requests. Off by default. Other
    /// requests to `path` (`POST`, a `GET` asking for JSON) are JSON-RPC as
    /// before.
    ///
    /// The page's WebSocket passes the `Origin` check because it comes
    /// from this server's own origin; pages of other origins are still
    /// refused unless [`HttpOptions::allowed_origins`] lists them. Anyone
    /// who can reach the port can use the page: serve it where that is
    /// wanted (a loopback address, behind authentication).
    ///
    /// ```
    /// use rpcpeer::{introspection::Service, ws_server::WsServer, Router};
    ///
    /// let mut router = Router::new();
    /// router.introspection(Service::new("calculator", "1.0.0"));
    /// let server = WsServer::new(router).console("/");
    /// # let _ = server;
    /// ```
    pub fn console(mut self, path: impl Into<String>) -> Self {
        let path: String = path.into();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        self.console = Some(path.into());
        self
    }

    /// Runs when a WebSocket peer connects, before its first message is read:
    /// keep its [`Peer`] to push to it later, or fill its session. To act
    /// when it disconnects, spawn a task that awaits [`Peer::closed`].
    pub fn on_connect(
        mut self,
        hook: impl Fn(&Peer, &Session, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// Accepts connections from `listener` (such as a
    /// `tokio::net::TcpListener`) for as long as the future is polled. A
    /// failed accept is logged and accepting goes on.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures to come.
    pub async fn serve(self, listener: impl Listener) -> io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Accepts connections from `listener` until `shutdown` completes; then
    /// stops accepting, closes every WebSocket peer gracefully (see
    /// [`Driver::run_until`]), lets HTTP requests being answered finish
    /// (their responses say `Connection: close`; one still running after
    /// [`Config::drain_timeout`](crate::Config::drain_timeout) is answered
    /// `503` with -32003, as a call on a connection is), drops idle keep-alive
    /// connections, and returns once all of that is done. A failed accept
    /// is logged and accepting goes on.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures to come.
    pub async fn serve_with_shutdown(
        self,
        listener: impl Listener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let server = rpcpeer_ws::Server::new(self.ws).max_connections(self.max_connections);
        let service = RouterService {
            router: self.router,
            config: self.config.idle_timeout(self.idle_timeout),
            http: self.http,
            on_connect: self.on_connect,
            stopping: server.stopping(),
            console: self.console,
        };
        server
            .serve_with_shutdown(listener, service, shutdown)
            .await
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
        if let Some(refusal) = self
            .http
            .host_refusal(head.version, &head.uri, &head.headers)
        {
            return Err(refusal);
        }
        if let Some(refusal) = self.http.upgrade_origin_refusal(head) {
            return Err(refusal);
        }
        let mut accepted = rpcpeer_ws::http::Extensions::new();
        if self.router.auth().is_none() {
            return Ok(accepted);
        }
        let session = Session::new();
        session.insert(RemoteAddr(remote));
        let token = rpcpeer_ws::target::query_pairs(head.uri.query().unwrap_or_default())
            .find(|(name, _)| name == "token")
            .map(|(_, token)| token.into_owned());
        crate::http::authenticate(&self.router, &head.headers, token, &session).await?;
        accepted.insert(session);
        Ok(accepted)
    }

    // NB: not an `async fn`: its state would keep the transport it was
    // given beside the driver that took it over, and an `async` block
    // awaiting the driver would hold it twice; a `map` over the driver's
    // future holds it once, for as long as the connection lasts.
    fn websocket(
        &self,
        ws: WsTransport<ServerIo>,
        mut accepted: rpcpeer_ws::http::Extensions,
        remote: SocketAddr,
    ) -> impl Future<Output = ()> + Send {
        let session = accepted.remove::<Session>().unwrap_or_else(|| {
            let session = Session::new();
            session.insert(RemoteAddr(remote));
            session
        });
        let (peer, driver) = Driver::builder(ws, self.router.clone())
            .config(self.config.clone())
            .session(session.clone())
            .close_frames()
            .build();
        if let Some(hook) = &self.on_connect {
            hook(&peer, &session, remote);
        }
        // NB: the server waits for this conversation when it stops, so the
        // stop must close the peer; with 1001, as RFC 6455 §7.4.1 has it for
        // a server going down (`run_until` would close with 1000).
        let stopped = self.stopping.stopped();
        tokio::spawn(async move {
            tokio::select! {
                () = stopped => peer.close_with(CloseFrame::server_stopping()).await,
                () = peer.closed() => {}
            }
        });
        driver.map(move |ended| {
            if let Err(err) = ended {
                tracing::debug!(%remote, "WebSocket peer ended: {err}");
            }
        })
    }

    async fn http(&self, req: Request<String>, remote: SocketAddr) -> Response<String> {
        // NB: before the console page too, which a rebinding page would
        // otherwise load as its own.
        if let Some(refused) = self
            .http
            .host_refusal(req.version(), req.uri(), req.headers())
        {
            return refused;
        }
        let mut page_path = false;
        if let Some(path) = self.console.as_deref() {
            if let Some(page) = crate::console::page(path, &req) {
                return page;
            }
            page_path = req.uri().path() == path;
        }
        let session = Session::new();
        session.insert(RemoteAddr(remote));
        // NB: a graceful stop gives a running call the drain timeout, as
        // on a WebSocket; past it the call is answered -32003, not left
        // to be cut with no answer at all when the server exits.
        let (stopped, drain) = (self.stopping.stopped(), self.config.drain_timeout);
        let mut response = tokio::select! {
            response = respond_to(&self.router, &req, &session, &self.http) => response,
            () = async move {
                stopped.await;
                tokio::time::sleep(drain).await;
            } => shutting_down(&req, drain, &self.http),
        };
        if page_path {
            crate::console::not_the_page(&mut response);
        }
        response
    }

    /// The transport's own refusals (a body over the limit, say) carry the
    /// CORS headers too, or a page of an allowed origin could not read them.
    fn refusal_headers(
        &self,
        request: &rpcpeer_ws::http::HeaderMap,
        answer: &mut rpcpeer_ws::http::HeaderMap,
    ) {
        self.http.cors(request, answer);
    }

    /// Answered as any other request, so that credentials, `Origin` and
    /// the media type are checked as usual; a `POST` then gets a parse
    /// error (RFC 8259 §8.1: JSON text is UTF-8).
    async fn not_text(
        &self,
        req: Request<std::string::FromUtf8Error>,
        remote: SocketAddr,
    ) -> Response<String> {
        let (mut parts, why) = req.into_parts();
        parts.extensions.insert(NotText(why));
        self.http(Request::from_parts(parts, String::new()), remote)
            .await
    }
}

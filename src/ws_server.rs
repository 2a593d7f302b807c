//! A router served over WebSocket and plain HTTP on one port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rpcpeer_ws::http::{header, HeaderValue, Request, Response};
use rpcpeer_ws::{ServerIo, Service, WsTransport};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::driver::Driver;
use crate::http::{respond, HttpOptions};
use crate::peer::Peer;
use crate::router::Router;
use crate::session::Session;

type ConnectHook = Arc<dyn Fn(&Peer, &Session, SocketAddr) + Send + Sync>;

/// Serves a [`Router`] on one TCP port: WebSocket connections (any path)
/// become peers that both serve and call, and plain HTTP requests are
/// answered by [`http::respond`](crate::http::respond).
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
}

struct RouterService<S> {
    router: Router<S>,
    config: Config,
    ws: rpcpeer_ws::Config,
    http: HttpOptions,
    on_connect: Option<ConnectHook>,
    stop: CancellationToken,
    peers: TaskTracker,
    /// HTTP requests being answered on one connection (each connection's
    /// clone gets its own), so a stop lets them finish.
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

    /// What the HTTP side allows beyond same-origin `POST`s (JSONP, CORS
    /// origins) and its batch limit; see [`HttpOptions`].
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
        let service = self.service;
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
                // request is being answered finishes it (WebSocket peers are
                // closed by their own task).
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

impl<S: Send + Sync + 'static> Service for RouterService<S> {
    async fn websocket(&self, ws: WsTransport<ServerIo>, remote: SocketAddr) {
        if self.stop.is_cancelled() {
            return;
        }
        let session = Session::new();
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

    async fn http(&self, req: Request<String>, _remote: SocketAddr) -> Response<String> {
        let _answering = self.requests.token();
        let mut response = respond(&self.router, req, &Session::new(), &self.http).await;
        if self.stop.is_cancelled() {
            // Tells the client (and hyper) that this connection ends here.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

//! One port for WebSocket and plain HTTP: hyper reads each request, upgrades go to `Service::websocket`, the rest to `Service::http`.

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{
    header::{
        CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
        UPGRADE,
    },
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode,
};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{
    body::Body, body::Incoming, server::conn::http1, service::service_fn, upgrade::Upgraded,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{from_upgraded, Config, Role, WsTransport};

/// The stream under a server-side [`WsTransport`]: the TCP connection as
/// hyper hands it over after the upgrade.
pub type ServerIo = TokioIo<Upgraded>;

/// What a server does with each WebSocket conversation and each plain HTTP
/// request; [`serve_connection`] calls it.
pub trait Service: Clone + Send + Sync + 'static {
    /// Runs one WebSocket conversation to its end (the crate spawns it).
    fn websocket(
        &self,
        ws: WsTransport<ServerIo>,
        remote: SocketAddr,
    ) -> impl Future<Output = ()> + Send;

    /// Answers one plain HTTP request (any method, any path). The body has
    /// already been read, is at most [`Config::max_message_len`] bytes and is
    /// valid UTF-8.
    fn http(
        &self,
        req: http::Request<String>,
        remote: SocketAddr,
    ) -> impl Future<Output = http::Response<String>> + Send;
}

/// Serves one accepted TCP connection with hyper's HTTP/1.1 server.
///
/// - A WebSocket upgrade request (RFC 6455 §4.2.1) on any path is answered
///   with `101 Switching Protocols`, and [`Service::websocket`] runs on the
///   upgraded stream, on a task of its own.
/// - Any other request has its body read, up to [`Config::max_message_len`]
///   bytes (larger: `413`, before the rest is read), checked for UTF-8
///   (`400` if not) and handed to [`Service::http`], whose response is sent.
///   Keep-alive connections carry any number of such requests.
///
/// The future ends when the connection does: after the last HTTP exchange,
/// or once the WebSocket conversation has run to its end, so whoever tracks
/// this future (a `TaskTracker` for graceful stop) tracks the conversation too.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_ws::{http, Config, ServerIo, Service, WsTransport};
///
/// #[derive(Clone)]
/// struct Echo;
///
/// impl Service for Echo {
///     async fn websocket(&self, mut ws: WsTransport<ServerIo>, _remote: SocketAddr) {
///         while let Some(Ok(text)) = ws.next().await {
///             if ws.send(text).await.is_err() {
///                 break;
///             }
///         }
///     }
///
///     async fn http(&self, req: http::Request<String>, _remote: SocketAddr) -> http::Response<String> {
///         http::Response::new(req.into_body())
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
/// loop {
///     let (tcp, remote) = listener.accept().await?;
///     tokio::spawn(rpcpeer_ws::serve_connection(tcp, remote, Config::default(), Echo));
/// }
/// # }
/// ```
///
/// # Errors
/// - The kind of the I/O error when the connection fails while hyper reads a
///   request or writes a response, including a peer that hangs up in the
///   middle of a request (a peer that hangs up between requests is a normal
///   end).
/// - [`io::ErrorKind::TimedOut`] when a request's headers take longer than
///   hyper's header read timeout (30 s).
/// - [`io::ErrorKind::Other`] when [`Service::websocket`] panicked.
///
/// # Cancel safety
/// Dropping the future closes the connection, unless it has been upgraded: a
/// running WebSocket conversation is on its own task and carries on.
pub async fn serve_connection<S: Service>(
    tcp: TcpStream,
    remote: SocketAddr,
    config: Config,
    service: S,
) -> io::Result<()> {
    // Latency matters more than packet count for small JSON messages; a
    // failure only costs some latency.
    let _ = tcp.set_nodelay(true);
    let config = Arc::new(config);
    let (conversations, mut spawned) = mpsc::unbounded_channel();
    let route = service_fn(move |req| {
        let (config, service, conversations) =
            (config.clone(), service.clone(), conversations.clone());
        async move { Ok::<_, Infallible>(route(req, remote, &config, &service, &conversations).await) }
    });
    let served = http1::Builder::new()
        // The timer turns on hyper's header read timeout, which stops a
        // client that trickles its headers from holding the connection.
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(tcp), route)
        .with_upgrades()
        .await;
    // NB: `route` (and with it every sender) is dropped once the connection
    // future is done, so this loop ends after the last conversation.
    while let Some(conversation) = spawned.recv().await {
        if let Err(err) = conversation.await {
            if err.is_panic() {
                return Err(io::Error::other(format!(
                    "the WebSocket service for {remote} panicked"
                )));
            }
        }
    }
    served.map_err(|err| {
        let kind = std::error::Error::source(&err)
            .and_then(|source| source.downcast_ref::<io::Error>())
            .map_or(
                if err.is_timeout() {
                    io::ErrorKind::TimedOut
                } else {
                    io::ErrorKind::Other
                },
                io::Error::kind,
            );
        io::Error::new(kind, format!("HTTP connection from {remote} failed: {err}"))
    })
}

/// Answers one request: an upgrade, or a plain request for the service.
async fn route<S: Service>(
    req: Request<Incoming>,
    remote: SocketAddr,
    config: &Arc<Config>,
    service: &S,
    conversations: &mpsc::UnboundedSender<JoinHandle<()>>,
) -> Response<Full<Bytes>> {
    if has_token(req.headers(), UPGRADE, "websocket") {
        return upgrade(req, remote, config, service, conversations);
    }
    let max = config.max_message_len;
    let (parts, body) = req.into_parts();
    // NB: a declared length over the limit is refused before any of the body
    // is read; `Limited` below catches chunked bodies as they grow.
    if body.size_hint().lower() > u64::try_from(max).unwrap_or(u64::MAX) {
        return too_large(max);
    }
    let body = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<LengthLimitError>() => return too_large(max),
        Err(err) => {
            let mut response = plain(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {err}\n"),
            );
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let Ok(body) = String::from_utf8(body.into()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the request body is not UTF-8 text\n",
        );
    };
    let response = service.http(Request::from_parts(parts, body), remote).await;
    response.map(|body| Full::new(Bytes::from(body)))
}

/// Checks an upgrade request (RFC 6455 §4.2.1), spawns the conversation and
/// returns the `101` that hyper must send before it hands the stream over.
fn upgrade<S: Service>(
    mut req: Request<Incoming>,
    remote: SocketAddr,
    config: &Arc<Config>,
    service: &S,
    conversations: &mpsc::UnboundedSender<JoinHandle<()>>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade must be a GET request\n",
        );
    }
    if !has_token(req.headers(), CONNECTION, "upgrade") {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs `Connection: Upgrade`\n",
        );
    }
    // RFC 6455 §4.4: an unsupported version gets 426 and the versions we speak.
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is supported\n",
        );
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs `Sec-WebSocket-Key`\n",
        );
    };
    let Ok(accept) = HeaderValue::try_from(derive_accept_key(key.as_bytes())) else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode Sec-WebSocket-Accept\n",
        );
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let (config, service) = (config.clone(), service.clone());
    let conversation = tokio::spawn(async move {
        // An error means the connection died before the 101 went out: there
        // is no conversation to run.
        if let Ok(upgraded) = on_upgrade.await {
            let ws = from_upgraded(TokioIo::new(upgraded), Role::Server, &config).await;
            service.websocket(ws, remote).await;
        }
    });
    // The receiver lives until every sender is gone, so this cannot fail.
    let _ = conversations.send(conversation);

    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Whether a comma-separated header such as `Connection: keep-alive, Upgrade`
/// holds `token`, compared without regard to case.
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

fn too_large(max: usize) -> Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the {max} byte limit\n"),
    );
    // NB: the rest of the body is still on the wire, unread; closing is the
    // only way not to take it for the next request.
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

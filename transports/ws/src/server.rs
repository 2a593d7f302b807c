//! One port for WebSocket and plain HTTP: hyper reads each request, upgrades go to `Service::websocket`, the rest to `Service::http`.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use futures::FutureExt;
use http::{
    header::{
        CONNECTION, CONTENT_TYPE, HOST, RETRY_AFTER, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
        SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
    },
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version,
};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn, upgrade::Upgraded};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_io_timeout::TimeoutStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::{
    sync::CancellationToken,
    task::{task_tracker::TaskTrackerToken, TaskTracker},
};

use crate::body::{self, BodyError};
use crate::heads::{self, Heads};
use crate::linger::{Linger, Lingering};
use crate::{from_upgraded, Config, Protocols, Role, WsTransport};

/// The stream under a server-side [`WsTransport`]: the TCP connection as
/// hyper hands it over after the upgrade.
///
/// ```
/// use futures::SinkExt;
/// use rpcpeer_ws::{ServerIo, WsTransport};
///
/// /// What a [`Service`](rpcpeer_ws::Service)'s conversations are given.
/// async fn greet(mut ws: WsTransport<ServerIo>) -> std::io::Result<()> {
///     ws.send(r#"{"jsonrpc":"2.0","method":"hello"}"#.to_owned()).await
/// }
/// # let _ = greet;
/// ```
pub type ServerIo = TokioIo<Upgraded>;

/// What a server does with each WebSocket conversation and each plain HTTP
/// request; [`serve_connection`] calls it.
///
/// ```
/// use std::net::SocketAddr;
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_ws::{http, Config, Server, ServerIo, Service, WsTransport};
///
/// /// Echoes WebSocket messages, and HTTP request bodies.
/// #[derive(Clone)]
/// struct Echo;
///
/// impl Service for Echo {
///     async fn websocket(&self, mut ws: WsTransport<ServerIo>, _: http::Extensions, _: SocketAddr) {
///         while let Some(Ok(text)) = ws.next().await {
///             if ws.send(text.to_string()).await.is_err() {
///                 break;
///             }
///         }
///     }
///
///     async fn http(&self, req: http::Request<String>, _: SocketAddr) -> http::Response<String> {
///         http::Response::new(req.into_body())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", listener.local_addr()?);
/// tokio::spawn(Server::new(Config::default()).serve(listener, Echo));
///
/// let mut ws = rpcpeer_ws::connect(&url, &Config::default()).await?;
/// ws.send("hello".to_owned()).await?;
/// assert_eq!(ws.next().await.transpose()?.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
pub trait Service: Clone + Send + Sync + 'static {
    /// Decides whether to accept a WebSocket upgrade request that is
    /// otherwise valid, before the `101` is sent: to check its credentials
    /// (`Authorization`, a query token) or its `Origin`. `Err(response)`
    /// is sent instead of the `101` and no conversation starts; `Ok`
    /// carries what [`Service::websocket`] is to know of the handshake.
    /// The default accepts every upgrade.
    fn handshake(
        &self,
        head: &http::request::Parts,
        remote: SocketAddr,
    ) -> impl Future<Output = Result<http::Extensions, http::Response<String>>> + Send {
        let _ = (head, remote);
        async { Ok(http::Extensions::new()) }
    }

    /// Runs one WebSocket conversation to its end (on the connection's future);
    /// `accepted` is what [`Service::handshake`] returned.
    fn websocket(
        &self,
        ws: WsTransport<ServerIo>,
        accepted: http::Extensions,
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

    /// Answers a plain HTTP request whose body, read whole within the
    /// limits, is not UTF-8 (a body in another charset, or compressed): the
    /// request carries the error, which holds the bytes, in place of its
    /// text. The default answer is `400` with a `text/plain` line that says
    /// so; a protocol that has its own word for it (JSON-RPC's parse error)
    /// can say that instead.
    fn not_text(
        &self,
        req: http::Request<std::string::FromUtf8Error>,
        remote: SocketAddr,
    ) -> impl Future<Output = http::Response<String>> + Send {
        let _ = remote;
        let response = not_utf8(req.body().utf8_error());
        async { response }
    }

    /// Adds headers to an answer the server gives a plain HTTP request on
    /// its own, before the request reaches [`Service::http`]: a limit's
    /// refusal (`413`, `408`, `503`) or a malformed request's `400`.
    /// `request` is the request's headers. A service that lets browser
    /// pages of other origins call it adds its CORS headers here, or the
    /// page sees only a network error instead of the status. The default
    /// adds nothing.
    fn refusal_headers(&self, request: &http::HeaderMap, answer: &mut http::HeaderMap) {
        let _ = (request, answer);
    }
}

/// Serves one accepted TCP connection with hyper's HTTP/1.1 server.
///
/// - A WebSocket upgrade request (RFC 6455 §4.2.1) on any path is answered
///   with `101 Switching Protocols`, and [`Service::websocket`] runs on the
///   upgraded stream, within this future (no task of its own).
/// - Any other request has its body read, up to [`Config::max_message_len`]
///   bytes (larger: `413`, before the rest is read), checked for UTF-8
///   and handed to [`Service::http`] (or, when it is not UTF-8, to
///   [`Service::not_text`]), whose response is sent.
///   Keep-alive connections carry any number of such requests.
/// - [`Config::protocols`] can turn either off: plain requests then get
///   `426`, or upgrade requests `400`.
///
/// Every limit of the HTTP side (head and body timeouts, the body budget
/// shared by all connections, the transfer codings taken) is listed in the
/// [crate docs](crate#limits-of-the-server-side); a request refused by one
/// of them gets a `text/plain` answer that names it, and its connection is
/// closed, since the rest of its body is still on the wire unread: in
/// stages, so that a client still sending that body reads the answer (see
/// the crate docs).
///
/// The future ends when the connection does: after the last HTTP exchange
/// (after a refusal, once the client has stopped sending, at most 5 s on),
/// or once the WebSocket conversation has run to its end, so whoever tracks
/// this future (a `TaskTracker` for graceful stop) tracks the conversation too.
/// [`Server`](crate::Server) runs this for every connection it accepts,
/// under its connection cap and graceful stop.
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
///     async fn websocket(&self, mut ws: WsTransport<ServerIo>, _: http::Extensions, _remote: SocketAddr) {
///         while let Some(Ok(text)) = ws.next().await {
///             if ws.send(text.to_string()).await.is_err() {
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
/// // One Config for every connection: its clones share one body budget.
/// let config = Config::default();
/// loop {
///     let (tcp, remote) = listener.accept().await?;
///     tokio::spawn(rpcpeer_ws::serve_connection(tcp, remote, config.clone(), Echo));
/// }
/// # }
/// ```
///
/// # Errors
/// - The kind of the I/O error when the connection fails while hyper reads a
///   request or writes a response, including a peer that hangs up in the
///   middle of a request (a peer that hangs up between requests is a normal
///   end).
/// - [`io::ErrorKind::TimedOut`] when a request's head takes longer than
///   [`Config::http_header_timeout`], idle keep-alive time included.
/// - [`io::ErrorKind::Other`] when [`Service::websocket`] panicked.
///
/// # Cancel safety
/// Dropping the future closes the connection, and ends its WebSocket
/// conversation if it was upgraded.
pub async fn serve_connection<S: Service>(
    tcp: TcpStream,
    remote: SocketAddr,
    config: Config,
    service: S,
) -> io::Result<()> {
    // A failure only costs some latency.
    let _ = crate::tcp_tuning::tune(&tcp);
    serve_io(tcp, remote, config, service, Graceful::default()).await
}

/// How a connection takes part in the graceful stop of the
/// [`Server`](crate::Server) that accepted it.
#[derive(Clone, Default)]
pub(crate) struct Graceful {
    /// Cancelled when the server stops (never, for a connection served on
    /// its own).
    pub(crate) stop: CancellationToken,
    /// What a stop lets finish on this connection: the request being
    /// answered, the WebSocket conversation.
    pub(crate) busy: TaskTracker,
}

/// [`serve_connection`] over any byte stream.
pub(crate) async fn serve_io<I, S>(
    io: I,
    remote: SocketAddr,
    config: Config,
    service: S,
    graceful: Graceful,
) -> io::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service,
{
    let header_timeout = config.http_header_timeout;
    // NB: hyper writes an answer before it reads the next request, so a
    // client that pipelines requests and reads nothing stops it at a write
    // that never ends, where no read timeout of hyper's applies.
    let mut io = Box::pin(TimeoutStream::new(io));
    let write_timeout = Some(config.write_timeout).filter(|limit| !limit.is_zero());
    io.as_mut().set_write_timeout_pinned(write_timeout);
    let config = Arc::new(config);
    let upgrading = Upgrading::default();
    let linger = Linger::default();
    let (io, heads) = heads::watch(Lingering::new(io, linger.clone()));
    let watched = Watched { heads, linger };
    let route = service_fn({
        let (config, service, upgrading, graceful) = (
            config.clone(),
            service.clone(),
            upgrading.clone(),
            graceful.clone(),
        );
        move |req| {
            let (config, service, upgrading, watched, graceful) = (
                config.clone(),
                service.clone(),
                upgrading.clone(),
                watched.clone(),
                graceful.clone(),
            );
            async move {
                let answer = route(
                    req, remote, &config, &service, &upgrading, &watched, &graceful,
                );
                Ok::<_, Infallible>(answer.await)
            }
        }
    });
    let served = http1::Builder::new()
        // The timer turns on hyper's header read timeout, which stops a
        // client that trickles its headers, or idles, from holding the
        // connection.
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), route)
        .with_upgrades()
        .await;
    // The conversation runs here rather than on a task of its own: an idle
    // WebSocket peer then costs one task, and this future's state holds
    // either hyper's connection or the conversation, never both.
    let pending = upgrading
        .pending
        .lock()
        .map_or(None, |mut pending| pending.take());
    if let Some(Pending {
        on_upgrade,
        accepted,
        _busy,
    }) = pending
    {
        // An error means the connection died before the 101 went out: there
        // is no conversation to run. A server that stopped meanwhile starts
        // none either.
        if let Ok(upgraded) = on_upgrade.await {
            if graceful.stop.is_cancelled() {
                return Ok(());
            }
            let ws = from_upgraded(TokioIo::new(upgraded), Role::Server, &config).await;
            let conversation = service.websocket(ws, accepted, remote);
            if AssertUnwindSafe(conversation).catch_unwind().await.is_err() {
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

/// Answers one request: an upgrade, a refusal, or a plain request for the
/// service.
async fn route<S: Service>(
    req: Request<Incoming>,
    remote: SocketAddr,
    config: &Arc<Config>,
    service: &S,
    upgrading: &Upgrading,
    watched: &Watched,
    graceful: &Graceful,
) -> Response<Full<Bytes>> {
    // The request target as it was on the wire, for the usual origin form.
    let target = match (req.uri().scheme(), req.uri().path_and_query()) {
        (None, Some(path)) => path.as_str().to_owned(),
        _ => req.uri().to_string(),
    };
    let head = watched.heads.next(req.method().as_str(), &target);
    let refuse = |mut answer: Response<Full<Bytes>>, request: &HeaderMap| {
        service.refusal_headers(request, answer.headers_mut());
        watched.linger.input_left_unread();
        answer
    };
    if head.is_some_and(|head| head.length_and_encoding) {
        // RFC 9112 §6.3: a likely request smuggling attempt.
        let answer = closing(plain(
            StatusCode::BAD_REQUEST,
            "a request must not carry both Content-Length and Transfer-Encoding\n",
        ));
        return refuse(answer, req.headers());
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without a Host, or any with
    // several, is answered 400 (the origin checks read it).
    let hosts = req.headers().get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && req.version() >= Version::HTTP_11) {
        let answer = closing(plain(
            StatusCode::BAD_REQUEST,
            format!("an HTTP/1.1 request needs exactly one Host header, not {hosts}\n"),
        ));
        return refuse(answer, req.headers());
    }
    if has_token(req.headers(), UPGRADE, "websocket") {
        if config.protocols == Protocols::HttpOnly {
            return closing(plain(
                StatusCode::BAD_REQUEST,
                "WebSocket is turned off on this port: it serves plain HTTP only\n",
            ));
        }
        let response = upgrade(req, remote, service, upgrading, graceful).await;
        // NB: after an upgrade request the head watcher stops (the bytes
        // would be WebSocket's), so a refused one must end the connection.
        return if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            response
        } else {
            closing(response)
        };
    }
    if config.protocols == Protocols::WebSocketOnly {
        let mut response = closing(plain(
            StatusCode::UPGRADE_REQUIRED,
            "this port serves WebSocket only: send a WebSocket upgrade request\n",
        ));
        // RFC 9110 §7.8: who sends Upgrade lists it in Connection too.
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade, close"));
        return response;
    }
    if let Some(coding) = unknown_coding(req.headers()) {
        let answer = closing(plain(
            StatusCode::BAD_REQUEST,
            format!(
                "transfer coding `{coding}` is not supported: only `chunked` is (send the body as it is)\n"
            ),
        ));
        return refuse(answer, req.headers());
    }
    let (parts, body) = req.into_parts();
    let (max, budget) = (config.max_message_len, &config.http_body_budget);
    let read = body::read(body, max, config.http_body_timeout, budget).await;
    let response = {
        // NB: held while the service answers, so that a graceful stop lets
        // this request finish rather than drop its connection.
        let _answering = graceful.busy.token();
        match read {
            Ok((body, _charge)) => service.http(Request::from_parts(parts, body), remote).await,
            // Read whole: the connection can go on.
            Err(BodyError::NotText(why)) => {
                service
                    .not_text(Request::from_parts(parts, why), remote)
                    .await
            }
            Err(err) => return refuse(refused(err), &parts.headers),
        }
    };
    let response = response.map(|body| Full::new(Bytes::from(body)));
    // The watcher lost track of this connection's framing (or never had
    // this request's head): the next request could not be checked, so there
    // is none. A server that is stopping serves no next request either, and
    // says so (hyper then ends the connection once this answer is out).
    if head.is_none() || watched.heads.is_lost() {
        // NB: requests pipelined after this one may be unread: answers
        // already written must not be lost to a reset.
        watched.linger.input_left_unread();
        closing(response)
    } else if graceful.stop.is_cancelled() {
        closing(response)
    } else {
        response
    }
}

/// The first transfer coding that is not `chunked`, or a second `chunked`
/// (hyper has already refused a list that does not end with `chunked`).
fn unknown_coding(headers: &HeaderMap) -> Option<String> {
    let mut chunked = 0;
    for coding in headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
    {
        let coding = String::from_utf8_lossy(coding.trim_ascii());
        // Parameters (`;q=…`) do not make a coding known.
        let name = coding.split(';').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("chunked") && chunked == 0 {
            chunked += 1;
        } else {
            return Some(coding.into_owned());
        }
    }
    None
}

/// The answer to a body that could not be read.
fn refused(err: BodyError) -> Response<Full<Bytes>> {
    let (status, text) = match err {
        BodyError::TooLarge(max) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the {max} byte limit\n"),
        ),
        BodyError::TimedOut(after) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {after:?}\n"),
        ),
        BodyError::Busy => {
            let mut response = closing(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is reading too many request bodies at once: retry later\n",
            ));
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        BodyError::Broken(err) => {
            // NB: hyper's own text is generic ("error reading a body from
            // connection"); what went wrong is in its source.
            let mut why = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                why.push_str(": ");
                why.push_str(&cause.to_string());
                source = cause.source();
            }
            (
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {why}\n"),
            )
        }
        // NB: `route` hands these to the service instead; this is the
        // service's default answer, for any other caller.
        BodyError::NotText(why) => return not_utf8(why.utf8_error()),
    };
    closing(plain(status, text))
}

/// An accepted upgrade whose conversation starts once hyper has sent the
/// `101` and let go of the connection.
struct Pending {
    on_upgrade: hyper::upgrade::OnUpgrade,
    accepted: http::Extensions,
    /// NB: taken before the 101 goes out, so that a stop from then on
    /// waits for the conversation instead of dropping the connection
    /// under it.
    _busy: TaskTrackerToken,
}

/// Where [`upgrade`] leaves the [`Pending`] conversation for
/// [`serve_connection`] (a connection is upgraded at most once).
#[derive(Clone, Default)]
struct Upgrading {
    pending: Arc<Mutex<Option<Pending>>>,
}

/// What the wrappers of a connection's stream tell the requests on it.
#[derive(Clone)]
struct Watched {
    /// Each request head's framing, as the watcher read it.
    heads: Heads,
    /// Turned on by a refusal, whose request's body is left unread.
    linger: Linger,
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and asks the service's
/// [`Service::handshake`], leaves the conversation to start in `upgrading`
/// and returns the `101` that hyper must send before it hands the stream
/// over.
async fn upgrade<S: Service>(
    req: Request<Incoming>,
    remote: SocketAddr,
    service: &S,
    upgrading: &Upgrading,
    graceful: &Graceful,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade must be a GET request\n",
        );
    }
    // RFC 6455 §4.2.1: HTTP/1.1 or later (an HTTP/1.0 client cannot keep
    // the connection for the conversation).
    if req.version() < Version::HTTP_11 {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "a WebSocket upgrade needs HTTP/1.1 or later, not {:?}\n",
                req.version()
            ),
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
        // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
        let headers = response.headers_mut();
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        // (hyper closes a connection whose upgrade it did not see
        // through, and writes its own `Connection: close`, so RFC 9110
        // §7.8's `upgrade` option cannot be listed beside it.)
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    }
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs `Sec-WebSocket-Key`\n",
        );
    };
    // RFC 6455 §4.2.1: the key is 16 bytes, base64-encoded.
    if data_encoding::BASE64
        .decode(key.as_bytes())
        .map(|k| k.len())
        != Ok(16)
    {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "`Sec-WebSocket-Key` must be 16 random bytes in base64, not {:?}\n",
                String::from_utf8_lossy(&key.as_bytes()[..key.len().min(64)])
            ),
        );
    }
    let Ok(accept) = HeaderValue::try_from(derive_accept_key(key.as_bytes())) else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode Sec-WebSocket-Accept\n",
        );
    };

    let (parts, body) = req.into_parts();
    let accepted = match service.handshake(&parts, remote).await {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal.map(|body| Full::new(Bytes::from(body))),
    };
    let mut req = Request::from_parts(parts, body);
    let on_upgrade = hyper::upgrade::on(&mut req);
    if let Ok(mut pending) = upgrading.pending.lock() {
        *pending = Some(Pending {
            on_upgrade,
            accepted,
            _busy: graceful.busy.token(),
        });
    }

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

/// Tells the client (and hyper) that the connection ends after this
/// response.
// NB: whenever a body is left unread on the wire, closing is the only way
// not to take it for the next request.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// [`Service::not_text`]'s default answer.
fn not_utf8<B: From<String>>(why: std::str::Utf8Error) -> Response<B> {
    plain(
        StatusCode::BAD_REQUEST,
        format!("the request body is not UTF-8 text: {why}\n"),
    )
}

/// A `text/plain` answer; its body a `String` for a [`Service`], or what
/// hyper sends.
fn plain<B: From<String>>(status: StatusCode, text: impl Into<String>) -> Response<B> {
    let mut response = Response::new(B::from(text.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

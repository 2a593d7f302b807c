//! WebSocket client and server that carry one JSON text per message, with plain HTTP on the same port.
//!
//! The crate knows nothing about JSON-RPC: a message is text, and a
//! connection is a [`WsTransport`], which is a
//! `Stream<Item = io::Result<Utf8Bytes>> + Sink<String, Error = io::Error>`:
//! an incoming message is yielded where it was read, as [`Utf8Bytes`]
//! (which derefs to `str`), an outgoing one is given as a `String`.
//!
//! - [`connect`] opens a client connection to a `ws://` (or, with the `tls`
//!   feature, `wss://`) URL.
//! - [`serve_connection`] serves one accepted TCP connection: a WebSocket
//!   upgrade on any path goes to [`Service::websocket`], any other request to
//!   [`Service::http`].
//! - [`Server`] runs the accept loop around it for a [`Listener`]: a cap on
//!   open connections and a graceful stop ([`Stopping`]).
//! - [`target`] decodes a plain HTTP request's path and query string.
//! - [`post`] sends one JSON text to an `http://` (or `https://`) URL and
//!   reads the answer: the client side of plain HTTP.
//! - [`from_upgraded`] mounts a transport on a stream that another HTTP stack
//!   (axum, hyper) has already upgraded.
//! - [`refuse_connection`] turns a connection away with `503 Service
//!   Unavailable`, for a server at its connection cap.
//!
//! ## Limits of the server side
//!
//! | limit | default | setting | past it |
//! |---|---|---|---|
//! | request body | 16 MiB | [`Config::max_message_len`] | `413`, before the body is read when its length is declared |
//! | request head, and idle time between keep-alive requests | 10 s | [`Config::http_header_timeout`] | the connection is closed |
//! | request body arrival | 30 s | [`Config::http_body_timeout`] | `408`, connection closed |
//! | a write that makes no progress (the client reads nothing) | 30 s | [`Config::write_timeout`] | the connection is closed |
//! | body bytes held at once, all connections | 64 MiB | [`Config::http_body_budget`] | `503` with `Retry-After`, connection closed |
//! | transfer codings | `chunked` only | none | `400`, connection closed |
//! | `Content-Length` with `Transfer-Encoding` | refused | none | `400`, connection closed |
//! | connections open at once, per [`Server`] | 10,000 | [`Server::max_connections`] | `503` with `Retry-After`, connection closed; logged at warn, one line per 10 s |
//!
//! A connection closed after such an answer is closed in stages (RFC 9112
//! §9.6): the server ends its side, then reads and drops whatever the client
//! still sends (the rest of a refused body) until the client closes too,
//! for at most 5 s, and 1 s without data. A client that writes its whole
//! body before it reads then reads the answer, where an abrupt close would
//! have made the kernel reset the connection under it ("broken pipe").

// No unwrap on anything a peer sends: errors are answered, not panicked on.
#![warn(clippy::unwrap_used)]

mod accept;
mod body;
mod heads;
mod linger;
mod post;
mod refuse;
mod server;
pub mod target;
mod tcp_tuning;
mod transport;

use std::{io, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig},
    WebSocketStream,
};

pub use accept::{Listener, Server, Stopping, DEFAULT_MAX_CONNECTIONS};
pub use body::BodyBudget;
pub use http;
pub use post::{post, PostAnswer};
pub use refuse::refuse_connection;
pub use server::{serve_connection, ServerIo, Service};
pub use tokio_tungstenite::tungstenite::{protocol::Role, Utf8Bytes};
pub use tokio_tungstenite::MaybeTlsStream;
pub use transport::WsTransport;

/// Which protocols [`serve_connection`] speaks on its port.
///
/// ```
/// use rpcpeer_ws::{Config, Protocols};
///
/// // A port for browsers' WebSocket connections only: plain HTTP gets 426.
/// let config = Config { protocols: Protocols::WebSocketOnly, ..Config::default() };
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocols {
    /// WebSocket upgrades and plain HTTP requests (the default).
    #[default]
    Both,
    /// WebSocket only: any other request is answered
    /// `426 Upgrade Required` (with `Upgrade: websocket`), and the
    /// connection is closed.
    WebSocketOnly,
    /// Plain HTTP only: a WebSocket upgrade request is answered
    /// `400 Bad Request` with a message saying so, and the connection is
    /// closed.
    HttpOnly,
}

/// Limits and timers of one WebSocket connection, and of the HTTP requests
/// that [`serve_connection`] reads (the `http_` fields and
/// [`protocols`](Self::protocols) only matter there).
///
/// ```
/// use std::time::Duration;
/// use rpcpeer_ws::Config;
///
/// // Messages up to 1 MiB; a ping every 10 s, dead after 5 s of silence.
/// let config = Config {
///     max_message_len: 1 << 20,
///     ping_interval: Some(Duration::from_secs(10)),
///     ping_timeout: Duration::from_secs(5),
///     ..Config::default()
/// };
/// assert_eq!(config.idle_timeout, None, "a client may well only listen");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest incoming message, and the largest plain HTTP request body,
    /// in bytes. Default: 16 MiB.
    ///
    /// A longer message is refused as soon as its frame header or its
    /// fragments announce the excess, before it is buffered whole; the
    /// connection is then closed with code 1009. Outgoing messages are not
    /// checked: the peer enforces its own limit.
    pub max_message_len: usize,
    /// How often to ping the peer. Default: `Some(30 s)`. `None` (or a zero
    /// duration) turns keep-alive off.
    ///
    /// Pings are sent while the transport is polled as a stream, which it
    /// must be anyway to receive the pongs. The same timer bounds the closing
    /// handshake: a peer that does not finish it within one interval plus
    /// [`ping_timeout`](Self::ping_timeout) is given up on.
    pub ping_interval: Option<Duration>,
    /// How long after a ping the peer may stay silent before it is declared
    /// dead. Default: 20 s.
    ///
    /// Any message counts as a sign of life, not only the pong. Also bounds
    /// [`WsTransport::close_with`] and the sending of a close frame when the
    /// connection fails.
    pub ping_timeout: Duration,
    /// How long the connection may go without an incoming message before it
    /// is closed (code 1001, and the stream yields
    /// [`io::ErrorKind::TimedOut`]). Only what the peer sends counts: a
    /// connection on which only this side writes is idle too. Default:
    /// `None`, never, since a client may well only listen. rpcpeer's
    /// `WsServer` leaves it as given and times idle peers out in its
    /// connection driver instead (`WsServer::idle_timeout`, 5 minutes),
    /// which counts messages both ways and no peer with calls in flight.
    /// `None` or a zero duration turns it off.
    ///
    /// Only text and binary messages restart the clock, not pings or pongs.
    /// A call that runs longer than this without a message from the peer
    /// ends with the connection, so set it above the longest such call.
    pub idle_timeout: Option<Duration>,
    /// What the server's port speaks: WebSocket, plain HTTP, or both.
    /// Default: [`Protocols::Both`].
    pub protocols: Protocols,
    /// How long a request's head (request line and headers) may take to
    /// arrive, counted from when the server starts waiting for it: when the
    /// connection opens, or, on a keep-alive connection, when the previous
    /// response has been sent; so it is also how long such a connection may
    /// sit idle. Default: 10 s. Past it the connection is
    /// closed, without a response.
    pub http_header_timeout: Duration,
    /// How long a request's body may take to arrive, counted from the end of
    /// its head. Default: 30 s. Past it the request is answered
    /// `408 Request Timeout` and the connection is closed; a body shorter
    /// than its `Content-Length` ends this way.
    pub http_body_timeout: Duration,
    /// The memory request bodies may hold at once on every connection served
    /// with clones of this `Config`. Default: 64 MiB
    /// ([`BodyBudget::DEFAULT`]). Past it: `503`, see [`BodyBudget`].
    pub http_body_budget: BodyBudget,
    /// How long a write of the server's may make no progress, the client
    /// reading nothing, before the connection is closed: HTTP answers and,
    /// after an upgrade, WebSocket frames. Default: 30 s. A client that
    /// sends requests and never reads the answers would otherwise hold its
    /// connection, and its place under [`Server::max_connections`],
    /// forever. A slow reader is no stalled one: each piece its kernel
    /// takes restarts the clock (its kernel takes more once the client has
    /// read much of its receive buffer: a client reading r bytes a second
    /// through a buffer of R bytes shows progress about every R / r
    /// seconds). A zero duration turns it off.
    pub write_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_len: 16 << 20,
            ping_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(20),
            idle_timeout: None,
            protocols: Protocols::Both,
            http_header_timeout: Duration::from_secs(10),
            http_body_timeout: Duration::from_secs(30),
            http_body_budget: BodyBudget::default(),
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// The tungstenite settings that enforce `max_message_len`.
    fn websocket(&self) -> WebSocketConfig {
        // NB: the frame limit matters as much as the message limit: without
        // it a single frame just under the message limit is still read whole
        // before anything checks it, and tungstenite's own default is 16 MiB.
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message_len))
            .max_frame_size(Some(self.max_message_len))
            .read_buffer_size(READ_BUFFER)
    }
}

/// tungstenite allocates its read buffer whole when a connection opens
/// (128 KiB by default), which made an idle connection cost 143 KiB. The
/// buffer still grows to hold a larger message; this only caps how much one
/// read call takes, and 4 KiB is some sixty small requests.
const READ_BUFFER: usize = 4 * 1024;

/// Opens a WebSocket connection to `url` (`ws://host:port/path`).
///
/// `wss://` URLs need the crate's `tls` feature (rustls with the webpki root
/// certificates). Nagle's algorithm is turned off: JSON-RPC messages are small
/// and latency-bound.
///
/// ```no_run
/// use futures::{SinkExt, StreamExt};
///
/// # async fn run() -> std::io::Result<()> {
/// let mut ws = rpcpeer_ws::connect("ws://127.0.0.1:9000/", &rpcpeer_ws::Config::default()).await?;
/// ws.send(r#"{"jsonrpc": "2.0", "method": "ping", "id": 1}"#.to_owned()).await?;
/// if let Some(reply) = ws.next().await {
///     println!("{}", reply?);
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// - [`io::ErrorKind::InvalidInput`] when `url` does not parse, has no host,
///   is not `ws://` or `wss://`, or is `wss://` without the `tls` feature.
/// - The kind of the underlying I/O error (such as `ConnectionRefused`) when
///   the TCP connection or the TLS handshake fails.
/// - [`io::ErrorKind::Other`] when the server answers the upgrade request
///   with anything but `101 Switching Protocols`.
///
/// # Cancel safety
/// Dropping the future abandons the attempt and closes whatever socket it had
/// opened; nothing is left running.
pub async fn connect(
    url: &str,
    config: &Config,
) -> io::Result<WsTransport<MaybeTlsStream<TcpStream>>> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad WebSocket URL `{url}`: {why}"),
        )
    };
    let request = url
        .into_client_request()
        .map_err(|err| invalid(&err.to_string()))?;
    match request.uri().scheme_str() {
        Some("ws") => {}
        Some("wss") if cfg!(feature = "tls") => {}
        Some("wss") => {
            return Err(invalid(
                "wss:// needs rpcpeer-ws built with its `tls` feature",
            ))
        }
        _ => return Err(invalid("the scheme must be ws:// or wss://")),
    }
    if request.uri().host().is_none_or(str::is_empty) {
        return Err(invalid("no host name"));
    }
    let (ws, _response) =
        tokio_tungstenite::connect_async_with_config(request, Some(config.websocket()), true)
            .await
            .map_err(|err| {
                let err = transport::io_error(err);
                io::Error::new(
                    err.kind(),
                    format!("WebSocket connection to `{url}` failed: {err}"),
                )
            })?;
    // NB: tungstenite has set TCP_NODELAY already (or failed to, which
    // only costs some latency).
    let _ = match ws.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp_tuning::tune(tcp),
        #[cfg(feature = "tls")]
        MaybeTlsStream::Rustls(tls) => tcp_tuning::tune(tls.get_ref().0),
        _ => Ok(()),
    };
    Ok(WsTransport::new(ws, config))
}

/// Mounts a transport on a stream whose WebSocket handshake is already done,
/// such as the `Upgraded` stream an axum or hyper handler gets after sending
/// `101 Switching Protocols`.
///
/// `role` is [`Role::Server`] on the side that answered the upgrade and
/// [`Role::Client`] on the side that asked for it; it decides who masks frames
/// (RFC 6455 §5.3).
///
/// # Cancel safety
/// The future completes at its first poll; dropping it before that drops `io`.
pub async fn from_upgraded<S>(io: S, role: Role, config: &Config) -> WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = WebSocketStream::from_raw_socket(io, role, Some(config.websocket())).await;
    WsTransport::new(ws, config)
}

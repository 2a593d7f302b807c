//! Symmetric JSON-RPC peers: both ends of a connection serve methods and call
//! the other's, over any stream of text frames.
//!
//! The data path, in the order a frame travels:
//!
//! 1. A transport yields one JSON text per frame ([`transport::Transport`];
//!    `rpcpeer::stream` and `rpcpeer::ws` make them from sockets).
//! 2. The [`Driver`] reads it and [`message::parse`]s it into requests,
//!    notifications, responses or a batch, classified by their keys.
//! 3. A response resolves one of our own pending calls ([`Peer::request`]).
//!    A request or notification is looked up in the [`Router`]; its handler
//!    decodes the params once and its future is started at once (or queued,
//!    per its [`Concurrency`]), polled on the connection's own task. The read
//!    loop never waits on a handler.
//! 4. The finished handler's reply is encoded in the version the request was
//!    written in.
//! 5. The driver writes every ready reply back through the transport, one
//!    flush per turn.
//!
//! ```
//! use rpcpeer::{Context, ErrorObject, Router, testing::connected_pair};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Subtract { minuend: i64, subtrahend: i64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rpcpeer::Error> {
//! let mut server = Router::new();
//! server.method("subtract", |p: Subtract| async move {
//!     Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
//! });
//! // A handler can call back the peer that called it.
//! server.method("greet", |cx: Context| async move {
//!     // A failed call back becomes the handler's error through `?`.
//!     let name: String = cx.peer().request("name", ()).await?;
//!     Ok::<_, ErrorObject>(format!("hello, {name}"))
//! });
//!
//! let mut client = Router::new();
//! client.method("name", || async { Ok::<_, ErrorObject>("ada") });
//!
//! let (client, _server) = connected_pair(client, server);
//! assert_eq!(client.request::<i64>("subtract", [42, 23]).await?, 19);
//! assert_eq!(client.request::<String>("greet", ()).await?, "hello, ada");
//! # Ok(()) }
//! ```

// No unwrap on anything a peer sends: errors are answered, not panicked on.
#![warn(clippy::unwrap_used)]

pub mod auth;
mod calls;
mod cancel;
mod config;
mod context;
mod dispatch;
mod driver;
mod error;
mod excerpt;
mod fields;
pub mod group;
mod handler;
#[cfg(feature = "ws")]
pub mod http;
pub mod introspection;
mod log_limit;
pub mod message;
pub mod middleware;
mod observe;
mod outbox;
mod outgoing;
mod peer;
mod pending;
pub mod reconnect;
mod router;
mod running;
mod scheduler;
#[cfg(feature = "schemars")]
mod schema;
mod session;
pub mod testing;
pub mod transport;
#[cfg(feature = "ws")]
pub mod ws_server;

pub use config::Config;
pub use context::{Context, Incoming};
pub use driver::Driver;
pub use error::{Error, ErrorObject};
pub use handler::{BoxFuture, Handler, IntoReply, Outcome, Signature};
pub use message::{Id, Version};
pub use peer::{Batch, Peer};
pub use router::{Concurrency, MethodConfig, MethodInfo, Router};
/// The JSON Schema crate that [`Router::method_with_schema`] reads types with.
#[cfg(feature = "schemars")]
pub use schemars;
pub use session::Session;

/// Newline and Content-Length framing over TCP, Unix sockets, stdio and child processes.
#[cfg(feature = "stream")]
pub use rpcpeer_stream as stream;

/// WebSocket client and server, with HTTP on the same port.
#[cfg(feature = "ws")]
pub use rpcpeer_ws as ws;

/// The README's examples, compiled as doctests so they cannot go stale.
#[cfg(all(doctest, feature = "stream"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

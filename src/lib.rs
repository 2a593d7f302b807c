//! Symmetric JSON-RPC peers: both ends of a connection serve methods and call
//! the other's, over any stream of text frames.
//!
//! The data path, in the order a frame travels:
//!
//! 1. A transport yields one JSON text per frame ([`transport::Transport`];
//!    `rpcpeer::stream` and `rpcpeer::ws` make them from sockets).
//! 2. The [`Driver`] reads it and parses it into requests, notifications,
//!    responses or a batch, classified by their keys.
//! 3. A response resolves one of our own pending calls ([`Peer::request`]).
//!    A request or notification is looked up in the [`Router`]; its handler
//!    decodes the params once and its future is started at once (or queued,
//!    per its [`Concurrency`]), polled on the connection's own task; a
//!    [`sync_fn`] handler that may start at once just runs. The read loop
//!    never waits on a handler.
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
//!
//! ## Features
//!
//! The core has no feature of its own to turn on; each feature adds to it
//! (on docs.rs each item says which it needs):
//!
//! | feature | gives |
//! |---|---|
//! | (none) | the core: [`Router`], [`Driver`], [`Peer`], [`group`], [`reconnect`], [`introspection`], over any [`transport::Transport`] (the in-memory [`transport::memory_pair`] included) |
//! | `schemars` | `Router::method_with_schema`: params and result schemas for introspection, from types that derive `schemars::JsonSchema` |
//! | `stream` | `rpcpeer::stream`: newline and Content-Length framing over TCP, Unix sockets, stdio, child processes |
//! | `ws` | `rpcpeer::ws` (WebSocket client and server), `ws_server::WsServer`, `http::respond`, and close frames for [`Peer::close_with`] |
//! | `tls` | `wss://` for the WebSocket client |
//! | `xmlrpc` | XML-RPC on the HTTP side: `http::respond` answers `POST`s sent as `text/xml` from the same methods (`rpcpeer::xmlrpc`) |
//! | `time` | `types::DateTime`: a date-time param or result, ISO 8601 in JSON, `dateTime.iso8601` in XML-RPC |
//! | `redis` | `rooms::Rooms::redis`: rooms whose members are spread over several processes, through a Redis server |
//! | `macros` | [`api`]: one trait per side gives a typed router registration and a typed client |
//! | `testing` | `rpcpeer::testing::connected_pair`: two peers joined in memory, for tests |
//! | `cli` (default) | the `rpcpeer` binary; turn default features off in a library |

// No unwrap on anything a peer sends: errors are answered, not panicked on.
#![warn(clippy::unwrap_used)]
// docs.rs labels each item with the feature it needs (see Cargo.toml).
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to items of every feature (`http`, `ws_server`,
// `method_with_schema`, `Rooms::redis`, `api`); with one of those features
// off, those links have no target, and are left as text rather than dropped.
#![cfg_attr(
    not(all(
        feature = "ws",
        feature = "schemars",
        feature = "redis",
        feature = "macros"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod auth;
mod builder;
mod calls;
mod cancel;
mod checked_raw;
mod config;
#[cfg(feature = "ws")]
mod console;
mod context;
// NB: only a transport of rpcpeer-stream keeps a skipped message's bytes.
#[cfg_attr(not(feature = "stream"), allow(dead_code))]
mod cut;
mod dispatch;
mod doorbell;
mod driver;
mod envelope;
mod error;
mod excerpt;
mod fields;
pub mod group;
mod handler;
mod handles;
#[cfg(feature = "ws")]
#[cfg_attr(docsrs, doc(cfg(feature = "ws")))]
pub mod http;
mod idle;
pub mod introspection;
#[cfg(any(feature = "time", feature = "xmlrpc"))]
mod iso8601;
mod left_out;
mod log_limit;
// The parser and encoders are internals: public only under a feature that
// is no part of the API, for the fuzz targets, property tests and benchmarks.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod message;
#[cfg(not(feature = "internals"))]
mod message;
mod method_cache;
pub mod middleware;
mod observe;
mod outbox;
mod outgoing;
mod params;
mod parts;
mod peer;
mod pending;
mod polling;
pub mod progress;
pub mod reconnect;
pub mod rooms;
mod router;
mod running;
mod scheduler;
#[cfg(feature = "schemars")]
mod schema;
mod session;
mod stall;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod transport;
#[cfg(feature = "macros")]
mod typed;
pub mod types;
#[cfg(feature = "ws")]
#[cfg_attr(docsrs, doc(cfg(feature = "ws")))]
pub mod ws_server;
#[cfg(feature = "xmlrpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "xmlrpc")))]
pub mod xmlrpc;

pub use builder::DriverBuilder;
pub use config::Config;
pub use context::{Context, Incoming};
pub use driver::Driver;
pub use error::{Error, ErrorObject, Unreadable};
pub use handler::{
    sync_fn, AtOnce, BoxFuture, Deferred, FromCall, Handler, HandlerFn, IntoReply, NoParams,
    Outcome, Reply, Signature, SyncFn, SyncHandlerFn,
};
pub use message::{Id, Version};
pub use params::{Params, ParamsError};
pub use peer::{Batch, Peer};
pub use router::{Concurrency, MethodConfig, MethodInfo, Router};
/// The JSON Schema crate that [`Router::method_with_schema`] reads types
/// with (feature `schemars`).
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub use schemars;
pub use session::Session;
pub use transport::{CloseFrame, CloseFrameError};

/// One trait per side of a connection: the methods that side serves.
///
/// On a trait whose methods are `async fn`s taking `&self`, the attribute
/// writes:
///
/// - the trait, each method returning a `Send` future (implement it with
///   plain `async fn`s), and three provided methods: `register(self,
///   &mut router)` (one instance for every connection), `into_router(self)`,
///   and `register_per_connection(&mut router, make)` (one instance per
///   connection, made from the [`Peer`] at its other end, for an
///   implementation that keeps a client of the other side);
/// - `TraitClient`, over a [`Peer`]: one async method per trait method,
///   a request when it returns something (a value that serializes, or
///   `Result<T, E>` with `E: Into<ErrorObject>`; the client gets `T` or an
///   [`Error`]), a notification when it returns nothing;
/// - the wire names as constants on the client (`TraitClient::SHOW_MESSAGE`,
///   and `TraitClient::METHODS`, all of them).
///
/// A method may take the call's [`Context`] (written `Context`, without a
/// state type: the implementation is the state) anywhere among its params; it
/// does not travel. Through it a method calls back the peer that called,
/// typed (`OtherClient::new(cx.peer().clone())`), and sees the caller give
/// up: dropping a client's future sends `$/cancelRequest`, which drops the
/// handler's future (its work stops at its next `.await`), cancels
/// [`Context::cancellation`] for work it spawned, and answers the call -32800.
///
/// A method that returns something may also take a
/// [`Progress<T>`](progress::Progress) (written `Progress<T>`), its end of
/// the caller's progress reports: each `report(value)` reaches the caller
/// before the answer. Its client method is not `async`: it returns a
/// [`ProgressCall<T, R>`](progress::ProgressCall), a stream of the reports
/// that `.await`s to the answer. The caller's token travels as the params'
/// `workDoneToken` (LSP's work done progress), so such a method takes its
/// params by name.
///
/// Params are decoded into a struct of the method's params, which accepts
/// them by position or by name; the client sends them by position unless
/// told otherwise. Attributes:
///
/// - on the trait, `#[rpcpeer::api(schema)]`: registers with
///   `Router::method_with_schema` (feature `schemars`), so `rpc.discover`
///   describes each param and result (their types derive `JsonSchema`);
///   `#[rpcpeer::api(params = "name")]` (or `"transparent"`): the client
///   sends every method's params that way unless the method says otherwise;
/// - on a method, `#[rpc(...)]` with any of: `name = "textDocument/hover"` (the
///   wire name, by default the Rust name); `params = "position"`, `"name"`
///   or `"transparent"` (the method's one param is the params, as LSP
///   wants, so its type must serialize as a JSON object or array, as
///   params are: a struct, a tuple, a `Vec`; a number, `bool`, `char` or
///   `String` is refused at compile time, and an alias of one, or another
///   type that serializes as a scalar, fails each call with
///   `Error::EncodeParams`; a method without params sends none, like LSP's
///   `shutdown`); `concurrency = "concurrent"`, `"in_order"` or `"exclusive"`
///   (see [`Concurrency`]; notifications are in order unless told
///   otherwise, requests concurrent); `own_task` (see
///   [`MethodConfig::own_task`]).
///
/// Generic methods, borrowed params and methods without `&self` are refused
/// with an error naming the method, and so are Rust names the expansion
/// takes for itself: `register`, `register_per_connection`, `into_router`
/// (the trait's), `new`, `peer` and `methods` (the client's `new`, `peer`
/// and `METHODS`), and `clone` and `to_owned` (which would shadow the
/// client's `Clone`). Such a method keeps its wire name with `#[rpc(name =
/// "new")]` under another Rust name.
///
/// The return type is read as written: `Result<T, E>` (any path whose last
/// segment is `Result`) answers `Err` as a JSON-RPC error, anything else is
/// a value answered as a success. A macro cannot see through a type alias,
/// so a `Result` behind one (`type RpcResult<T> = Result<T, ErrorObject>`)
/// is refused at compile time, at the return type, rather than answering
/// its `Err` as `{"result": {"Err": ..}}`: spell it `Result<T, E>` in the
/// trait.
///
/// ```
/// use rpcpeer::{testing::connected_pair, Context, Error, ErrorObject, Router};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Edit { pub line: u32, pub text: String }
///
/// /// What the editor serves.
/// #[rpcpeer::api]
/// pub trait Editor {
///     /// Shows a message to the user.
///     #[rpc(name = "window/showMessage")]
///     async fn show_message(&self, text: String);
///     /// Applies an edit; `false` when the document changed meanwhile.
///     async fn apply_edit(&self, edit: Edit) -> Result<bool, ErrorObject>;
/// }
///
/// /// What the language server serves.
/// #[rpcpeer::api]
/// pub trait LanguageServer {
///     /// Renames the word at `line`, through the editor that asked.
///     async fn rename(&self, line: u32, to: String, cx: Context) -> Result<bool, ErrorObject>;
/// }
///
/// struct Server;
///
/// impl LanguageServer for Server {
///     async fn rename(&self, line: u32, to: String, cx: Context) -> Result<bool, ErrorObject> {
///         // Calls back the editor that called, typed.
///         let editor = EditorClient::new(cx.peer().clone());
///         editor.show_message(format!("renaming to {to}")).await?;
///         Ok(editor.apply_edit(Edit { line, text: to }).await?)
///     }
/// }
///
/// #[derive(Default)]
/// struct MyEditor { shown: std::sync::Mutex<Vec<String>> }
///
/// impl Editor for MyEditor {
///     async fn show_message(&self, text: String) {
///         self.shown.lock().unwrap().push(text);
///     }
///     async fn apply_edit(&self, edit: Edit) -> Result<bool, ErrorObject> {
///         Ok(edit.line < 100)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let (to_server, _to_editor) = connected_pair(MyEditor::default().into_router(), Server.into_router());
/// let server = LanguageServerClient::new(to_server);
/// assert!(server.rename(7, "total".into()).await?);
/// assert_eq!(EditorClient::SHOW_MESSAGE, "window/showMessage");
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use rpcpeer_macros::api;

/// What the code `#[rpcpeer::api]` writes names; no part of the API.
#[cfg(feature = "macros")]
#[doc(hidden)]
pub mod __private {
    pub use crate::typed::{
        answerable, decodable, described, plain, stateless, CheckPlain, PerConnection, Plain,
        PlainValue, ResultBehindAlias, ReturnType,
    };
    pub use serde;
}

/// Newline and Content-Length framing over TCP, Unix sockets, stdio and
/// child processes (feature `stream`).
#[cfg(feature = "stream")]
#[cfg_attr(docsrs, doc(cfg(feature = "stream")))]
pub use rpcpeer_stream as stream;

/// WebSocket client and server, with HTTP on the same port (feature `ws`).
#[cfg(feature = "ws")]
#[cfg_attr(docsrs, doc(cfg(feature = "ws")))]
pub use rpcpeer_ws as ws;

/// The README's examples, compiled as doctests so they cannot go stale.
#[cfg(all(doctest, feature = "stream"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

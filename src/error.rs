//! The two error types: [`ErrorObject`] travels on the wire, [`Error`] stays local.

use std::fmt;
use std::io;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::transport::CloseFrame;

/// An error object as it travels on the wire (JSON-RPC 2.0 §5.1).
///
/// Handlers return it (or anything that converts into it) to answer a request
/// with an error; [`Error::Remote`] carries the one a peer sent back.
///
/// ```
/// use rpcpeer::ErrorObject;
///
/// let err = ErrorObject::new(-32001, "authentication required").with_data(["login"]);
/// assert_eq!(
///     serde_json::to_string(&err).unwrap(),
///     r#"{"code":-32001,"message":"authentication required","data":["login"]}"#
/// );
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct ErrorObject {
    /// The error code: the spec reserves -32768..=-32000, applications use any other integer.
    pub code: i64,
    /// A short description of the error.
    pub message: String,
    /// Extra information, kept as raw JSON so that a peer's error can be passed
    /// on byte for byte. `None` means the member is absent (not `null`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub data: Option<Box<RawValue>>,
}

/// `Some` whenever the key is present, even as `null`: a plain `Option` would
/// turn `"data": null` into an absent member and change the peer's error.
impl PartialEq for ErrorObject {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.data.as_deref().map(RawValue::get) == other.data.as_deref().map(RawValue::get)
    }
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// The codes rpcpeer itself answers with. In the spec's server range
/// (-32000..=-32099) it keeps -32000..=-32049 for its own; applications
/// are free to use -32050..=-32099 (and anything outside -32768..=-32000).
impl ErrorObject {
    /// Invalid JSON was received (spec §5.1).
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object (spec §5.1).
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available (spec §5.1).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters (spec §5.1).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error, also the answer for a handler that panicked (spec §5.1).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The connection has more requests queued than its limit allows (server error range).
    pub const SERVER_BUSY: i64 = -32000;
    /// The method needs an authenticated caller and this one is not, or
    /// its credentials were rejected (server error range; see
    /// [`MethodConfig::authenticated`](crate::MethodConfig::authenticated)).
    pub const UNAUTHORIZED: i64 = -32001;
    /// The connection closed before the handler finished: the drain
    /// timeout passed while shutting down (server error range).
    pub const SHUTTING_DOWN: i64 = -32003;
    /// The method needs a connection to push to or call back, and the call
    /// came without one: a one-shot HTTP request joining a
    /// [`Group`](crate::group::Group), say (server error range). `?` on
    /// [`Error::NoConnection`] gives this code.
    pub const NO_CONNECTION: i64 = -32004;
    /// The caller is authenticated but lacks the role the method needs
    /// (server error range; see [`MethodConfig::role`](crate::MethodConfig::role)).
    pub const FORBIDDEN: i64 = -32005;
    /// Too many failed logins from this connection or address: the attempt
    /// was refused without checking it; `data.retry_after` says in how many
    /// seconds to try again (server error range; see
    /// [`LoginLimits`](crate::auth::LoginLimits)).
    pub const TOO_MANY_LOGINS: i64 = -32006;
    /// The request was cancelled by the caller (LSP's `RequestCancelled`).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// The handler ran past its method's limit
    /// ([`MethodConfig::timeout`](crate::MethodConfig::timeout)) and was
    /// cancelled (server error range).
    pub const HANDLER_TIMEOUT: i64 = -32002;

    /// An error with this code and message, without `data`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Sets `data` to `data` serialized as JSON.
    ///
    /// A value that cannot be serialized (a map with non-string keys, say)
    /// leaves a string saying so in `data` rather than losing the error.
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = Some(
            serde_json::value::to_raw_value(&data).unwrap_or_else(|err| {
                let text = format!("error data could not be serialized: {err}");
                serde_json::value::to_raw_value(&text).unwrap_or_else(|_| null())
            }),
        );
        self
    }

    /// -32700: the text is not valid JSON.
    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::new(Self::PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// -32600: the JSON is not a valid request.
    pub fn invalid_request(detail: impl fmt::Display) -> Self {
        Self::new(Self::INVALID_REQUEST, format!("Invalid Request: {detail}"))
    }

    /// -32601: no handler for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            Self::METHOD_NOT_FOUND,
            format!("Method not found: `{}`", crate::excerpt::excerpt(method)),
        )
    }

    /// -32602: the params do not fit the method.
    pub fn invalid_params(detail: impl fmt::Display) -> Self {
        Self::new(Self::INVALID_PARAMS, format!("Invalid params: {detail}"))
    }

    /// -32603 with a generic message: the details stay in the server's log.
    pub fn internal_error() -> Self {
        Self::new(Self::INTERNAL_ERROR, "Internal error")
    }

    /// -32800: the caller cancelled the request before it finished.
    pub fn request_cancelled() -> Self {
        Self::new(Self::REQUEST_CANCELLED, "Request cancelled")
    }

    /// -32002: `method`'s handler did not finish within `limit` and was cancelled.
    pub fn handler_timeout(method: &str, limit: Duration) -> Self {
        Self::new(
            Self::HANDLER_TIMEOUT,
            format!("Timeout: `{method}` did not finish within its limit of {limit:?} and was cancelled"),
        )
    }
}

impl Error {
    pub(crate) fn closed(method: &str, reason: impl Into<String>) -> Self {
        Error::Closed {
            method: method.to_owned(),
            reason: reason.into(),
            peer_close: None,
        }
    }
}

/// So that a handler can use `?` on its own calls to the peer: the peer's
/// error object is passed on as it came, any other failure is -32603 with
/// a message that says what failed. Except the spec's own codes for a bad
/// call (-32700, -32600, -32601, -32602), which say what was wrong with
/// the call being answered: the peer's refusal of ours becomes -32603,
/// naming the method we called, so that the caller does not take it for
/// the answer to its own call (its method not found, its params invalid).
impl From<Error> for ErrorObject {
    fn from(err: Error) -> Self {
        match err {
            Error::Remote { method, source }
                if matches!(
                    source.code,
                    ErrorObject::PARSE_ERROR
                        | ErrorObject::INVALID_REQUEST
                        | ErrorObject::METHOD_NOT_FOUND
                        | ErrorObject::INVALID_PARAMS
                ) =>
            {
                ErrorObject::new(
                    ErrorObject::INTERNAL_ERROR,
                    format!(
                        "Internal error: our call of `{}` was refused: {} (code {})",
                        crate::excerpt::excerpt(&method),
                        source.message,
                        source.code
                    ),
                )
            }
            Error::Remote { source, .. } => source,
            Error::NoConnection => ErrorObject::new(ErrorObject::NO_CONNECTION, err.to_string()),
            other => ErrorObject::new(
                ErrorObject::INTERNAL_ERROR,
                format!("Internal error: {other}"),
            ),
        }
    }
}

pub(crate) fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// Why a call made through a [`Peer`](crate::Peer) failed, or why a
/// [`Driver`](crate::Driver) stopped. Never serialized.
///
/// ```
/// use rpcpeer::{testing::connected_pair, Error, ErrorObject, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut server = Router::new();
/// server.method("divide", |(a, b): (i64, i64)| async move {
///     if b == 0 {
///         return Err(ErrorObject::invalid_params("division by zero"));
///     }
///     Ok(a / b)
/// });
/// let (client, _server) = connected_pair(Router::new(), server);
///
/// match client.request::<i64>("divide", (1, 0)).await {
///     Err(Error::Remote { method, source }) => {
///         assert_eq!(method, "divide");
///         assert_eq!(source.code, ErrorObject::INVALID_PARAMS);
///     }
///     other => panic!("expected the peer's error, got {other:?}"),
/// }
/// // An answer that is not what the caller asked for.
/// let wrong = client.request::<String>("divide", (4, 2)).await;
/// assert!(matches!(wrong, Err(Error::DecodeReply { .. })));
/// // Params must be an array or an object.
/// let scalar = client.request::<i64>("divide", 4).await;
/// assert!(matches!(scalar, Err(Error::EncodeParams { .. })));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered with an error object.
    #[error("the peer answered `{method}` with an error: {source}")]
    Remote {
        /// The method that was called.
        method: String,
        /// The error object as the peer sent it.
        #[source]
        source: ErrorObject,
    },
    /// The peer's answer, under this call's id, is no valid response: it
    /// has neither `result` nor `error`, or both, a `jsonrpc` other than
    /// `"2.0"`, or a member other than `id` twice (a repeated `id` names no
    /// call); or it was too large to read, and its last or first bytes
    /// named this call. It is not answered: a -32600 under that id would
    /// reach the peer as the answer to its own call of that id.
    #[error("the peer's answer to `{method}` is not a valid response: {what}")]
    InvalidReply {
        /// The method that was called.
        method: String,
        /// What is wrong with the answer.
        what: String,
    },
    /// The connection closed (or was closed) before the reply arrived.
    #[error("the connection closed before `{method}` got a reply ({reason})")]
    Closed {
        /// The method that was called, or the notification that could not be sent.
        method: String,
        /// Why, always said: whether the call was sent at all (`not sent: …`,
        /// or `sent, then the connection was lost: …`), then the cause: the
        /// peer closed the connection, the transport's error, the peer's
        /// complaint about one of our messages (a frame over its size limit,
        /// say), a close asked for on this side (which is also how a server's
        /// shutdown and a group's slow-member disconnection close), or a
        /// [`ReconnectingPeer`](crate::reconnect::ReconnectingPeer) that gave
        /// up (with its last attempt's error) or was closed.
        reason: String,
        /// The close frame the peer ended the connection with (its code and
        /// reason are in `reason` too), over a transport that has them: a
        /// WebSocket whose driver was built with
        /// [`DriverBuilder::close_frames`](crate::DriverBuilder::close_frames).
        peer_close: Option<CloseFrame>,
    },
    /// No reply arrived within the request timeout
    /// ([`Config::request_timeout`](crate::Config::request_timeout), 30 s by
    /// default); the call was forgotten (a late reply is ignored) and the
    /// peer told to cancel it.
    #[error("`{method}` got no reply within {after:?}")]
    Timeout {
        /// The method that was called.
        method: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The params could not be serialized, or are not an array or an object.
    #[error("could not encode the params of `{method}`: {source}")]
    EncodeParams {
        /// The method that was called.
        method: String,
        /// What was wrong with them.
        #[source]
        source: crate::params::ParamsError,
    },
    /// The reply did not decode into the type the caller asked for.
    #[error("could not decode the reply to `{method}`: {source}")]
    DecodeReply {
        /// The method that was called.
        method: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A progress report did not decode into the type the caller asked for
    /// (see [`ProgressCall`](crate::progress::ProgressCall)); the call and
    /// its other reports go on.
    #[error("could not decode a progress report of `{method}`: {source}")]
    DecodeReport {
        /// The method that was called.
        method: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// Progress reports of `method` were dropped because the caller read
    /// them too slowly: those waiting held
    /// [`Config::max_incoming_bytes`](crate::Config::max_incoming_bytes).
    /// The call and its later reports go on.
    #[error("{lost} progress reports of `{method}` were dropped: the caller read them too slowly")]
    ReportsLost {
        /// The method that was called.
        method: String,
        /// How many were dropped since the last report read.
        lost: u64,
    },
    /// The outgoing queue is full (only from the `try_` methods, which never wait).
    #[error("the outgoing queue is full; `{method}` was not sent")]
    Full {
        /// The method that was not sent.
        method: String,
    },
    /// Reading or writing the transport failed.
    #[error("transport failed: {0}")]
    Transport(#[from] io::Error),
    /// The peer has no connection (see [`Peer::is_detached`](crate::Peer::is_detached)),
    /// so nothing can be pushed to it: a group refuses it. Becomes
    /// [`ErrorObject::NO_CONNECTION`] on the wire.
    #[error("groups need a connection (WebSocket or TCP) to push to; this call came without one (a one-shot HTTP request)")]
    NoConnection,
}

/// Why a message of the peer's could not be read, as
/// [`DriverBuilder::on_unreadable`](crate::DriverBuilder::on_unreadable)
/// is told with the error it was answered.
///
/// ```
/// use rpcpeer::Unreadable;
///
/// // A program that sent one request and waits for its answer: a message
/// // too large to look at was most likely that answer; a line of stray
/// // output, or a malformed call of the peer's, need not have been.
/// fn lost_the_answer(why: Unreadable) -> bool {
///     why == Unreadable::TooLarge
/// }
/// assert!(!lost_the_answer(Unreadable::NotJson));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreadable {
    /// Over the transport's size limit, and skipped unread: the byte-stream
    /// framings read on after it (-32600). (A WebSocket message over its
    /// limit ends the connection instead: [`Fatal`](Self::Fatal).)
    TooLarge,
    /// Not JSON, or not UTF-8 (-32700).
    NotJson,
    /// JSON, but no valid request or response: a member missing, of the
    /// wrong type or given twice, nested too deep, an empty batch, a batch
    /// of calls over the limit (-32600).
    Invalid,
    /// Unreadable in a way that ends the connection: the framing is lost
    /// (a broken Content-Length header), or a WebSocket message was over
    /// its limit. Answered if it can be, then the connection closes.
    Fatal,
}

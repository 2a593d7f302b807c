//! The demo service: the method table that `rpcpeer serve` answers on every transport.

mod auth;
mod callback;
mod chat;
mod math;
mod values;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rpcpeer::introspection::Service;
use rpcpeer::rooms::Rooms;
use rpcpeer::schemars::{JsonSchema, Schema, SchemaGenerator};
use rpcpeer::{Context, ErrorObject, Router};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The demo's own error codes, in the upper half of the spec's server range
/// (-32050..=-32099): the core keeps -32000..=-32049 for its own
/// (`ErrorObject::SERVER_BUSY`, `UNAUTHORIZED` for `whoami` without login,
/// `TOO_MANY_LOGINS` for a throttled `login`,
/// `NO_CONNECTION` for chat and callback over one-shot HTTP, …).
pub(crate) mod codes {
    /// `login` with a name and password that `--user` did not give.
    pub(crate) const LOGIN_FAILED: i64 = -32050;
    /// `postMessage` from a connection that has not called `join`.
    pub(crate) const NOT_JOINED: i64 = -32051;
    /// `callback` could not get an answer from the caller (as opposed to
    /// getting an error object, which is passed on as it came).
    pub(crate) const CALLBACK_FAILED: i64 = -32052;
    /// `postMessage` or `members` while the Redis that `serve --redis`
    /// names is unreachable (a post still reached this server's members).
    pub(crate) const ROOM_UNREACHABLE: i64 = -32053;
}

/// Names one persistent connection (TCP, WebSocket). `serve` puts it in the
/// connection's session before the first message; HTTP requests have none,
/// which is how the chat and callback methods tell they cannot work there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnId(pub(crate) u64);

/// What every demo handler can reach through `Context::state`.
pub(crate) struct Demo {
    /// The chat's rooms (across servers with `serve --redis`).
    chat: Rooms,
}

/// The context every demo handler gets.
pub(crate) type Cx = Context<Demo>;

/// The chat's rooms within this process.
pub(crate) fn local_rooms() -> Rooms {
    Rooms::new(chat::room_options())
}

/// The chat's rooms, shared through Redis with every server that names it.
pub(crate) fn redis_rooms(
    config: rpcpeer::rooms::RedisConfig,
) -> Result<Rooms, rpcpeer::rooms::RoomError> {
    Rooms::redis(chat::room_options(), config)
}

/// Builds the demo's method table, its chat in `chat`.
pub(crate) fn router(users: HashMap<String, String>, chat: Rooms) -> Router<Demo> {
    let mut router = Router::with_state(Demo { chat });
    math::register(&mut router);
    values::register(&mut router);
    chat::register(&mut router);
    auth::register(&mut router, Arc::new(users));
    callback::register(&mut router);
    // `system.describe` and `rpc.discover`, describing every method above.
    router.introspection(
        Service::new("rpcpeer demo", env!("CARGO_PKG_VERSION"))
            .id("urn:rpcpeer:demo")
            .summary("The demo peer of rpcpeer")
            .description(
                "The demo peer of rpcpeer: arithmetic, dates and bytes, chat, authentication, callbacks and introspection.",
            ),
    );
    router
}

/// The connection a call came in on, or the error for a one-shot (HTTP) call.
fn connection(cx: &Cx) -> Result<ConnId, ErrorObject> {
    cx.session().get::<ConnId>().ok_or_else(|| {
        ErrorObject::new(
            ErrorObject::NO_CONNECTION,
            format!(
                "`{}` needs a persistent connection (TCP or WebSocket), not a one-shot HTTP request",
                cx.method()
            ),
        )
    })
}

/// Any JSON value, kept as the exact text the peer sent (so `echo` and
/// `callback` give back big integers and number formats unchanged).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Raw(pub(crate) Box<RawValue>);

impl JsonSchema for Raw {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "AnyValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        true.into()
    }
}

/// For `#[serde(deserialize_with = "present")]`: `Some` whenever the member
/// is there, even as `null`, so that `"data": null` stays apart from no
/// `data` at all.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Raw>, D::Error> {
    Raw::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rpcpeer::Session;
    use serde_json::Value;

    #[tokio::test]
    async fn the_demo_document_fits_the_openrpc_meta_schema() {
        let router = super::router(HashMap::new(), super::local_rooms());
        let reply = router
            .handle_text(
                r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#,
                &Session::new(),
            )
            .await
            .expect("a reply");
        let mut reply: Value = serde_json::from_str(&reply).expect("JSON");
        let document = reply["result"].take();
        assert!(document["methods"].is_array(), "{reply}");
        openrpc_check::validate(&document).unwrap_or_else(|e| panic!("{e}"));
    }
}

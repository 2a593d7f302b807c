//! callback: the server calls the calling peer back on the same connection and relays its answer.

use rpcpeer::{Error, ErrorObject, Params, Router};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{codes, connection, Cx, Demo, Raw};

/// Registers this module's methods.
pub(super) fn register(router: &mut Router<Demo>) {
    router
        .method_with_schema("callback", |p: Callback, cx: Cx| async move {
            connection(&cx)?;
            let params = match p.params.map(|Raw(raw)| Params::from_raw(raw)).transpose() {
                Ok(params) => params.flatten(),
                Err(err) => return Err(ErrorObject::invalid_params(format!("`callback`: {err}"))),
            };
            match cx.peer().request::<Box<RawValue>>(&p.method, params).await {
                Ok(result) => Ok(Raw(result)),
                // The peer's own error object, code, message and data as they came.
                Err(Error::Remote { source, .. }) => Err(source),
                Err(err) => Err(ErrorObject::new(
                    codes::CALLBACK_FAILED,
                    format!("`callback` got no answer from you: {err}"),
                )),
            }
        })
        .doc("Calls `method` with `params` on the calling peer, over the same connection, and returns its result, or its error object as it came.");
}

/// Params of `callback`.
#[derive(Deserialize, rpcpeer::schemars::JsonSchema)]
struct Callback {
    /// The method to call on the calling peer.
    method: String,
    /// The params to call it with: an array or an object.
    #[serde(default)]
    params: Option<Raw>,
}

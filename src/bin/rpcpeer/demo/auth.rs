//! Authentication through the library: the `--user` accounts as an `Authenticator`, and login and whoami.

use std::collections::HashMap;
use std::sync::Arc;

use rpcpeer::auth::{AuthError, Credentials, Identity, LoginError};
use rpcpeer::{Concurrency, ErrorObject, Router};
use serde::Deserialize;

use super::{codes, Cx, Demo};

/// Registers this module's methods, and the `--user` accounts as the
/// router's authenticator (for `login`, the WebSocket handshake and HTTP
/// `Authorization: Basic`).
pub(super) fn register(router: &mut Router<Demo>, users: Arc<HashMap<String, String>>) {
    router.authenticator(move |credentials: Credentials| {
        let users = users.clone();
        async move {
            match credentials {
                Credentials::Password { user, password }
                    if users
                        .get(&user)
                        .is_some_and(|known| same(known.as_bytes(), password.as_bytes())) =>
                {
                    Ok(Identity::new(user))
                }
                // The demo hands out no tokens.
                _ => Err(AuthError::Rejected),
            }
        }
    });
    router
        .method_with_schema("login", |p: Login, cx: Cx| async move {
            let credentials = Credentials::Password {
                user: p.username,
                password: p.password,
            };
            match cx.login(credentials).await {
                Ok(_) => Ok(true),
                Err(LoginError::Failed(AuthError::Rejected)) => Err(ErrorObject::new(
                    codes::LOGIN_FAILED,
                    "Login failed: unknown user or wrong password",
                )),
                // Throttled: -32006, saying when to retry.
                Err(err) => Err(err.into()),
            }
        })
        // NB: exclusive: calls pipelined after it see the caller logged in,
        // calls pipelined before it do not.
        .concurrency(Concurrency::Exclusive)
        .doc("Logs this connection in with an account given to `serve --user NAME:PASSWORD`; returns true. \
              After 5 failures on a connection (20 from an address) within a minute, refused with -32006 until the minute ends.");
    router
        .method_with_schema("whoami", |cx: Cx| async move {
            cx.identity()
                .map(|identity| identity.user)
                .ok_or_else(ErrorObject::internal_error)
        })
        .authenticated()
        .doc("Returns the name this connection logged in under; without login, error -32001 (authentication required).");
}

/// Params of `login`.
#[derive(Deserialize, rpcpeer::schemars::JsonSchema)]
struct Login {
    /// An account name given with `--user`.
    username: String,
    /// Its password.
    password: String,
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guessed password was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

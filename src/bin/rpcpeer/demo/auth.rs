//! Session-backed authentication: login and whoami.

use rpcpeer::{Concurrency, ErrorObject, Router};
use serde::Deserialize;

use super::{codes, Cx, Demo};

/// The name a connection logged in under, kept in its session.
#[derive(Debug, Clone)]
struct User(String);

/// Registers this module's methods.
pub(super) fn register(router: &mut Router<Demo>) {
    router
        .method("login", |p: Login, cx: Cx| async move {
            let known = cx
                .state()
                .users
                .get(&p.username)
                .is_some_and(|password| same(password.as_bytes(), p.password.as_bytes()));
            if !known {
                return Err(ErrorObject::new(
                    codes::LOGIN_FAILED,
                    "Login failed: unknown user or wrong password",
                ));
            }
            cx.session().insert(User(p.username));
            Ok(true)
        })
        // NB: exclusive: calls pipelined after it see the caller logged in,
        // calls pipelined before it do not.
        .concurrency(Concurrency::Exclusive)
        .doc("Logs this connection in with an account given to `serve --user NAME:PASSWORD`; returns true.");
    router
        .method("whoami", |cx: Cx| async move {
            match cx.session().get::<User>() {
                Some(User(name)) => Ok(name),
                None => Err(ErrorObject::new(
                    ErrorObject::UNAUTHORIZED,
                    "Authentication required: call `login` first",
                )),
            }
        })
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

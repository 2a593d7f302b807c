//! The chat room: join, postMessage, and the handleMessage / userLeft notifications pushed to the other members.

use std::sync::{Arc, Mutex, PoisonError};

use rpcpeer::group::{Group, Member, SlowMember};
use rpcpeer::{Concurrency, ErrorObject, Router};
use serde::Deserialize;

use super::{codes, connection, Cx, Demo};

/// How many pushes a member may fall behind before its oldest are dropped.
/// A member that does not read loses messages; it never holds up the
/// sender or the other members.
const BACKLOG: usize = 256;

/// The room every connection joins: a broadcast group.
pub(crate) fn room() -> Group {
    Group::new(BACKLOG, SlowMember::DropOldest)
}

/// A connection's place in the room, kept in its session.
#[derive(Clone)]
struct Joined {
    member: Member,
    /// Shared with the task that announces the departure, so a rename
    /// (`join` again) is the name others see leave.
    name: Arc<Mutex<String>>,
}

impl Joined {
    fn name(&self) -> String {
        self.name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Registers this module's methods.
pub(super) fn register(router: &mut Router<Demo>) {
    router
        .method_with_schema("join", |p: Join, cx: Cx| async move {
            connection(&cx)?;
            if p.name.trim().is_empty() {
                return Err(ErrorObject::invalid_params(
                    "`join`: the name must not be empty",
                ));
            }
            if let Some(joined) = cx.session().get::<Joined>() {
                *joined.name.lock().unwrap_or_else(PoisonError::into_inner) = p.name;
                return Ok(true);
            }
            let room = cx.state().chat.clone();
            let joined = Joined {
                member: room.join(cx.peer().clone())?,
                name: Arc::new(Mutex::new(p.name)),
            };
            cx.session().insert(joined.clone());
            // The member leaves by itself when its connection closes; the
            // others hear of it from here.
            tokio::spawn(async move {
                joined.member.left().await;
                if let Err(err) = room.notify("userLeft", [joined.name()]) {
                    tracing::warn!("chat: cannot announce a departure: {err}");
                }
            });
            Ok(true)
        })
        // NB: exclusive, so that a post pipelined right after it finds the
        // caller joined, as it would if each call had waited for its answer.
        .concurrency(Concurrency::Exclusive)
        .doc("Joins the chat under this name (again: renames). The other members get handleMessage [name, text] for each post and userLeft [name] when a member disconnects.");
    router
        .method_with_schema("postMessage", |p: Post, cx: Cx| async move {
            connection(&cx)?;
            let Some(joined) = cx.session().get::<Joined>() else {
                return Err(ErrorObject::new(
                    codes::NOT_JOINED,
                    "`postMessage` needs `join` first: the chat does not know your name",
                ));
            };
            joined
                .member
                .notify_others("handleMessage", (joined.name(), p.text))
                .map_err(|err| ErrorObject::new(ErrorObject::INTERNAL_ERROR, err.to_string()))?;
            Ok(1)
        })
        // NB: in order, so one member's messages reach the others in the
        // order they were posted.
        .concurrency(Concurrency::InOrder)
        .doc("Sends text to every other member of the chat as the notification handleMessage [name, text]; returns 1. Needs join first.");
}

/// Params of `join`.
#[derive(Deserialize, rpcpeer::schemars::JsonSchema)]
struct Join {
    /// The name the other members see.
    name: String,
}

/// Params of `postMessage`.
#[derive(Deserialize, rpcpeer::schemars::JsonSchema)]
struct Post {
    /// The message.
    text: String,
}

//! The chat: join, postMessage, members, and the handleMessage / userLeft notifications pushed to the other members of the room.

use rpcpeer::group::SlowMember;
use rpcpeer::rooms::{RoomError, RoomMember, RoomOptions};
use rpcpeer::{Concurrency, ErrorObject, Router};
use serde::{Deserialize, Serialize};

use super::{codes, connection, Cx, Demo};

/// How many pushes a member may fall behind before its oldest are dropped.
/// A member that does not read loses messages; it never holds up the
/// sender or the other members.
const BACKLOG: usize = 256;

/// The room `join` puts a connection in when it names none.
const LOBBY: &str = "lobby";

/// How the chat's rooms are made: a departure is announced to the others
/// as `userLeft [name]` (the member's metadata is its name).
pub(crate) fn room_options() -> RoomOptions {
    RoomOptions::new(BACKLOG, SlowMember::DropOldest).announce_departures("userLeft")
}

/// A connection's place in its room, kept in its session.
#[derive(Clone)]
struct Joined(RoomMember);

impl Joined {
    fn name(&self) -> String {
        serde_json::from_str(self.0.meta().get()).unwrap_or_default()
    }
}

/// A room error as the caller sees it.
fn room_error(err: RoomError) -> ErrorObject {
    match err {
        RoomError::LocalOnly { .. } => ErrorObject::new(codes::ROOM_UNREACHABLE, err.to_string()),
        RoomError::Unreachable { .. } => ErrorObject::new(codes::ROOM_UNREACHABLE, err.to_string()),
        other => other.into(),
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
                if p.room.as_deref().is_some_and(|room| room != joined.0.room()) {
                    return Err(ErrorObject::invalid_params(
                        "`join`: this connection is in another room already, and a connection is in one room: join this one on a connection of its own (`join` with the same room, or none, renames)",
                    ));
                }
                // A rename: the room's member list and the departure show it.
                joined.0.set_meta(&p.name).await.map_err(room_error)?;
                return Ok(true);
            }
            let room = p.room.as_deref().unwrap_or(LOBBY);
            if room.is_empty() {
                return Err(ErrorObject::invalid_params(
                    "`join`: the room's name must not be empty",
                ));
            }
            // The member leaves by itself when its connection closes, and
            // the room announces it (userLeft) on every node.
            let member = cx.state().chat.join(room, cx.peer().clone(), &p.name).await?;
            cx.session().insert(Joined(member));
            Ok(true)
        })
        // NB: exclusive, so that a post pipelined right after it finds the
        // caller joined, as it would if each call had waited for its answer.
        .concurrency(Concurrency::Exclusive)
        .doc("Joins a chat room (default lobby) under this name (again: renames). The room's other members, on every server sharing its Redis, get handleMessage [name, text] for each post and userLeft [name] when a member leaves.");
    router
        .method_with_schema("postMessage", |p: Post, cx: Cx| async move {
            connection(&cx)?;
            let Some(joined) = cx.session().get::<Joined>() else {
                return Err(not_joined("postMessage"));
            };
            joined
                .0
                .notify_others("handleMessage", (joined.name(), p.text))
                .await
                .map_err(room_error)?;
            Ok(1)
        })
        // NB: in order, so one member's messages reach the others in the
        // order they were posted.
        .concurrency(Concurrency::InOrder)
        .doc("Sends text to every other member of the room as the notification handleMessage [name, text]; returns 1. Needs join first.");
    router
        .method("members", |cx: Cx| async move {
            connection(&cx)?;
            let Some(joined) = cx.session().get::<Joined>() else {
                return Err(not_joined("members"));
            };
            let members = cx.state().chat.members(joined.0.room()).await.map_err(room_error)?;
            let mut members: Vec<MemberName> = members
                .into_iter()
                .map(|m| MemberName {
                    name: serde_json::from_str(m.meta.get()).unwrap_or_default(),
                    node: m.node,
                })
                .collect();
            members.sort_by(|a, b| (&a.name, &a.node).cmp(&(&b.name, &b.node)));
            Ok(members)
        })
        .doc("The members of the caller's room, on every server sharing its Redis: [{name, node}], sorted by name. Needs join first.");
}

fn not_joined(method: &str) -> ErrorObject {
    ErrorObject::new(
        codes::NOT_JOINED,
        format!("`{method}` needs `join` first: the chat does not know your name"),
    )
}

/// Params of `join`.
#[derive(Deserialize, rpcpeer::schemars::JsonSchema)]
struct Join {
    /// The name the other members see.
    name: String,
    /// The room (default `lobby`); made by its first member.
    #[serde(default)]
    room: Option<String>,
}

/// Params of `postMessage`.
#[derive(Deserialize, rpcpeer::schemars::JsonSchema)]
struct Post {
    /// The message.
    text: String,
}

/// One member, as `members` lists it.
#[derive(Serialize, rpcpeer::schemars::JsonSchema)]
struct MemberName {
    /// The name it joined under.
    name: String,
    /// The server it is connected to (`serve --node`; empty without Redis).
    node: String,
}

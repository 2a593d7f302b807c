//! A chat-style push service over WebSocket: `join` a room under a name,
//! `postMessage` to it; everyone else gets `handleMessage [name, text]`,
//! and `userLeft [name]` when someone disconnects.
//!
//! Run `cargo run --example chat_server`, then `cargo run --example
//! chat_client -- ada` and `cargo run --example chat_client -- bob` in two
//! more terminals, and type.

use rpcpeer::group::{Group, Member, SlowMember};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Context, ErrorObject, Router};

/// Who this connection is in the room.
#[derive(Clone)]
struct Joined {
    name: String,
    member: Member,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7080".into());
    // A member may fall 256 messages behind before its oldest are dropped.
    let room = Group::new(256, SlowMember::DropOldest);

    let mut router = Router::with_state(room);
    router
        .method(
            "join",
            |(name,): (String,), cx: Context<Group>| async move {
                if let Some(joined) = cx.session().get::<Joined>() {
                    return Err(ErrorObject::new(
                        -32010,
                        format!("already joined as {}", joined.name),
                    ));
                }
                // A one-shot HTTP call has no connection: -32004.
                let member = cx.state().join(cx.peer().clone())?;
                // Announce the departure however it happens (leave or disconnect).
                let (room, who, left) = (cx.state().clone(), name.clone(), member.clone());
                tokio::spawn(async move {
                    left.left().await;
                    let _ = room.notify("userLeft", [who]);
                });
                cx.session().insert(Joined { name, member });
                Ok::<_, ErrorObject>(true)
            },
        )
        .doc("Joins the room under `name`.");
    router
        .method(
            "postMessage",
            |(text,): (String,), cx: Context<Group>| async move {
                let Some(me) = cx.session().get::<Joined>() else {
                    return Err(ErrorObject::new(-32011, "join the room first: join [name]"));
                };
                me.member
                    .notify_others("handleMessage", (&me.name, text))
                    .map_err(|e| ErrorObject::new(-32603, e.to_string()))?;
                Ok::<_, ErrorObject>(1)
            },
        )
        .doc("Sends `text` to everyone else in the room.");

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("chat on ws://{}/", listener.local_addr()?);
    WsServer::new(router)
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

//! Rooms within one process: made on first join, listed with their members' metadata, announced, dropped when empty.

mod common;

use std::time::Duration;

use common::within;
use rpcpeer::group::SlowMember;
use rpcpeer::rooms::{RoomMember, RoomOptions, Rooms};
use rpcpeer::stream::{connect_tcp, Framing, TcpListener};
use rpcpeer::{Driver, Peer, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A member on a TCP connection of its own: the membership, what its
/// client receives, and the client's handle (dropping it closes the
/// connection).
async fn member(
    rooms: &Rooms,
    room: &str,
    name: &str,
) -> (RoomMember, mpsc::UnboundedReceiver<(String, Value)>, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let mut router = Router::new();
    router.fallback(move |params, cx| {
        let params = params.map_or(Value::Null, |p| {
            serde_json::from_str(p.get()).expect("JSON")
        });
        let _ = tx.send((cx.method().to_owned(), params));
        async { Ok(serde_json::value::to_raw_value(&()).expect("null")) }
    });
    let (client, driver) = Driver::new(
        connect_tcp(addr, Framing::Newline).await.expect("connect"),
        router,
    );
    tokio::spawn(driver);
    let (transport, _) = listener.accept().await.expect("accept");
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    (
        rooms.join(room, peer, name).await.expect("join"),
        rx,
        client,
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    within("a notification", rx.recv())
        .await
        .expect("connected")
}

#[tokio::test]
async fn rooms_are_made_on_first_join_announce_members_and_are_dropped_when_empty() {
    let rooms = Rooms::new(
        RoomOptions::new(64, SlowMember::DropOldest)
            .announce_joins("joined")
            .announce_departures("left"),
    );
    assert!(rooms.local_rooms().is_empty());
    let (ann, mut ann_rx, ann_client) = member(&rooms, "tea", "ann").await;
    assert_eq!(rooms.local_rooms(), ["tea"]);
    let (ben, mut ben_rx, _ben_client) = member(&rooms, "tea", "ben").await;
    let (_cy, _cy_rx, _cy_client) = member(&rooms, "coffee", "cy").await;
    assert_eq!(
        next(&mut ann_rx).await,
        ("joined".to_owned(), json!(["ben"]))
    );

    let mut names: Vec<Value> = rooms
        .members("tea")
        .await
        .expect("members")
        .iter()
        .map(|m| serde_json::from_str(m.meta.get()).expect("JSON"))
        .collect();
    names.sort_by_key(Value::to_string);
    assert_eq!(names, [json!("ann"), json!("ben")]);

    ann.notify_others("msg", ["hello"]).await.expect("push");
    assert_eq!(
        next(&mut ben_rx).await,
        ("msg".to_owned(), json!(["hello"]))
    );
    rooms
        .notify("coffee", "msg", ["to coffee"])
        .await
        .expect("push");

    // A rename shows in the list and in the departure.
    ben.set_meta("benedict").await.expect("rename");
    ben.leave();
    assert_eq!(
        next(&mut ann_rx).await,
        ("left".to_owned(), json!(["benedict"]))
    );
    // ann's connection closes: the room is empty and goes.
    ann_client.close().await;
    within("the empty room to go", async {
        while rooms.local_rooms() != ["coffee"] {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Nothing reached ann but what was meant for her.
    if let Ok((method, params)) = ann_rx.try_recv() {
        panic!("ann also got {method} {params}");
    }
    drop(ann);
}

/// A room's name is bounded: it becomes Redis keys and log lines. Over the
/// bound every entry point refuses it, and a handler's `?` answers -32602.
#[tokio::test]
async fn a_room_name_over_the_limit_is_refused_everywhere() {
    use rpcpeer::rooms::{RoomError, MAX_ROOM_NAME_LEN};
    let rooms = Rooms::new(RoomOptions::new(8, SlowMember::DropOldest));
    let long = "r".repeat(MAX_ROOM_NAME_LEN + 1);
    let (peer, _other) = rpcpeer::testing::connected_pair(Router::new(), Router::new());
    let refusals = [
        rooms.join(&long, peer, "ada").await.map(drop),
        rooms.notify(&long, "msg", ["hi"]).await,
        rooms.members(&long).await.map(drop),
    ];
    for refused in refusals {
        let err = refused.expect_err("a name over the limit");
        assert!(
            matches!(err, RoomError::NameTooLong { len } if len == MAX_ROOM_NAME_LEN + 1),
            "{err}"
        );
        let answer = rpcpeer::ErrorObject::from(err);
        assert_eq!(answer.code, rpcpeer::ErrorObject::INVALID_PARAMS);
        assert_eq!(
            answer.message,
            format!(
                "Invalid params: a room name holds at most {MAX_ROOM_NAME_LEN} bytes, not {}",
                MAX_ROOM_NAME_LEN + 1
            )
        );
    }
    // At the limit, a name is a room like any other.
    let at_limit = "r".repeat(MAX_ROOM_NAME_LEN);
    assert!(rooms.members(&at_limit).await.expect("listed").is_empty());
}

//! WebSocket and HTTP on one port: interop with jsonrpsee both ways,
//! reconnection, broadcast groups, keep-alive, limits, HTTP POST and GET.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{closing_router, within};
use futures::{SinkExt, StreamExt};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::{BatchRequestBuilder, ObjectParams};
use jsonrpsee::rpc_params;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::ws_client::WsClientBuilder;
use rpcpeer::group::{Group, MemberId, SlowMember};
use rpcpeer::http::HttpOptions;
use rpcpeer::reconnect::{Backoff, Reconnect};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Context, Driver, Error, ErrorObject, Peer, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

async fn ws_server<S: Send + Sync + 'static>(server: WsServer<S>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener));
    addr
}

async fn ws_client<S: Send + Sync + 'static>(addr: SocketAddr, router: Router<S>) -> Peer {
    ws_client_at(&format!("ws://{addr}/"), router).await
}

/// A peer serving `router`, connected to the WebSocket server at `url`.
async fn ws_client_at<S: Send + Sync + 'static>(url: &str, router: Router<S>) -> Peer {
    let transport = rpcpeer::ws::connect(url, &Default::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::new(transport, router);
    tokio::spawn(driver);
    peer
}

#[tokio::test]
async fn a_jsonrpsee_client_calls_an_rpcpeer_server() {
    let addr = ws_server(WsServer::new(common::spec_router())).await;
    let client = WsClientBuilder::default()
        .build(format!("ws://{addr}"))
        .await
        .unwrap();

    let by_position: i64 = client
        .request("subtract", rpc_params![42, 23])
        .await
        .unwrap();
    assert_eq!(by_position, 19);
    let mut named = ObjectParams::new();
    named.insert("subtrahend", 23).unwrap();
    named.insert("minuend", 42).unwrap();
    let by_name: i64 = client.request("subtract", named).await.unwrap();
    assert_eq!(by_name, 19);

    let mut batch = BatchRequestBuilder::new();
    batch.insert("sum", rpc_params![1, 2, 4]).unwrap();
    batch.insert("subtract", rpc_params![42, 23]).unwrap();
    batch.insert("foobar", rpc_params![]).unwrap();
    let answers = client.batch_request::<i64>(batch).await.unwrap();
    let answers: Vec<_> = answers
        .iter()
        .map(|a| a.as_ref().map(|n| *n).map_err(|e| e.code()))
        .collect();
    assert_eq!(answers, [Ok(7), Ok(19), Err(-32601)]);

    let err = client
        .request::<i64, _>("subtract", rpc_params!["x", 1])
        .await
        .unwrap_err();
    match err {
        jsonrpsee::core::ClientError::Call(obj) => {
            assert_eq!(obj.code(), -32602);
            assert!(obj.message().contains("minuend"), "{}", obj.message());
        }
        other => panic!("expected a call error, got {other}"),
    }
    client
        .notification("update", rpc_params![1, 2, 3])
        .await
        .unwrap();
    let data: Value = client.request("get_data", rpc_params![]).await.unwrap();
    assert_eq!(data, json!(["hello", 5]));
}

#[tokio::test]
async fn an_rpcpeer_client_calls_a_jsonrpsee_server() {
    let server = jsonrpsee::server::Server::builder()
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let mut module = jsonrpsee::RpcModule::new(());
    module
        .register_method("add", |params, _, _| {
            let (a, b): (i64, i64) = params.parse()?;
            Ok::<_, ErrorObjectOwned>(a + b)
        })
        .unwrap();
    module
        .register_method("fail", |_, _, _| {
            Err::<(), _>(ErrorObjectOwned::owned(
                -32099,
                "nope",
                Some(json!({"why": "testing"})),
            ))
        })
        .unwrap();
    let handle = server.start(module);

    let peer = ws_client(addr, Router::new()).await;
    assert_eq!(
        within("add", peer.request::<i64>("add", (2, 3)))
            .await
            .unwrap(),
        5
    );
    match within("fail", peer.request::<Value>("fail", ()))
        .await
        .unwrap_err()
    {
        Error::Remote { source, method } => {
            assert_eq!(method, "fail");
            assert_eq!(source.code, -32099);
            assert_eq!(source.message, "nope");
            assert_eq!(source.data.unwrap().get(), r#"{"why":"testing"}"#);
        }
        other => panic!("expected a remote error, got {other}"),
    }
    let mut batch = rpcpeer::Batch::new();
    batch
        .request("add", (1, 1))
        .request("nope", ())
        .request("add", (2, 2));
    let answers = within("batch", peer.batch(batch)).await.unwrap();
    assert_eq!(answers[0].as_ref().unwrap().get(), "2");
    assert!(matches!(&answers[1], Err(Error::Remote { source, .. }) if source.code == -32601));
    assert_eq!(answers[2].as_ref().unwrap().get(), "4");
    handle.stop().unwrap();
}

#[tokio::test]
async fn both_sides_call_each_other_over_websocket() {
    let mut server = Router::new();
    server.method("greet", |cx: Context| async move {
        let name: String = cx
            .peer()
            .request("name", ())
            .await
            .map_err(|e| ErrorObject::new(-32000, e.to_string()))?;
        cx.peer()
            .notify("greeted", [&name])
            .await
            .map_err(|e| ErrorObject::new(-32000, e.to_string()))?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    let addr = ws_server(WsServer::new(server)).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut client = Router::with_state(tx);
    client.method("name", || async { Ok::<_, ErrorObject>("ada") });
    client.notification(
        "greeted",
        |(n,): (String,), cx: Context<mpsc::UnboundedSender<String>>| async move {
            let _ = cx.state().send(n);
        },
    );
    let peer = ws_client_at(&format!("ws://{addr}/any/path"), client).await;
    assert_eq!(
        within("greet", peer.request::<String>("greet", ()))
            .await
            .unwrap(),
        "hello, ada"
    );
    assert_eq!(within("greeted", rx.recv()).await.as_deref(), Some("ada"));
}

#[tokio::test]
async fn a_reconnecting_client_runs_its_hook_again_and_never_resends() {
    #[derive(Default)]
    struct Counts {
        joins: AtomicUsize,
        holds: AtomicUsize,
    }
    let counts = Arc::new(Counts::default());
    let mut server = Router::with_state(counts.clone());
    server.method(
        "join",
        |(_name,): (String,), cx: Context<Arc<Counts>>| async move {
            cx.state().joins.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>(true)
        },
    );
    server.method("hold", |cx: Context<Arc<Counts>>| async move {
        cx.state().holds.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    server.method("joins", |cx: Context<Arc<Counts>>| async move {
        Ok::<_, ErrorObject>(cx.state().joins.load(Ordering::SeqCst))
    });
    server.method("kick", |cx: Context<Arc<Counts>>| async move {
        // Close this connection once the answer is out.
        let peer = cx.peer().clone();
        tokio::spawn(async move { peer.close().await });
        Ok::<_, ErrorObject>(true)
    });
    let config = rpcpeer::Config::default().drain_timeout(Duration::from_millis(100));
    let addr = ws_server(WsServer::new(server).config(config)).await;

    let client = Reconnect::new()
        .backoff(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            max_attempts: Some(50),
        })
        .on_connect(|peer| async move { peer.request::<bool>("join", ["ada"]).await.map(drop) })
        .spawn(move || async move {
            rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default()).await
        });

    let hold = tokio::spawn({
        let client = client.clone();
        async move { client.request::<Value>("hold", ()).await }
    });
    while counts.holds.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    assert!(within("kick", client.request::<bool>("kick", ()))
        .await
        .unwrap());
    // The call that was running when the server closed the link fails,
    // clearly: the server answers it "shutting down" after its drain timeout.
    let err = within("hold", hold).await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Remote { method, source }
            if method == "hold" && source.code == ErrorObject::SHUTTING_DOWN),
        "{err}"
    );

    // New calls go out on the new connection, after the hook re-joined.
    let joins = within("joins after reconnect", async {
        loop {
            match client.request::<usize>("joins", ()).await {
                Ok(n) => break n,
                Err(Error::Closed { .. }) => tokio::task::yield_now().await,
                Err(other) => panic!("{other}"),
            }
        }
    })
    .await;
    assert_eq!(joins, 2);
    assert_eq!(client.connections(), 2);
    assert_eq!(
        counts.holds.load(Ordering::SeqCst),
        1,
        "the held call was resent"
    );
    client.close();
}

/// Waits of 1 to 10 ms between attempts, giving up after `max_attempts`.
fn quick(max_attempts: Option<u32>) -> Backoff {
    Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(10),
        max_attempts,
    }
}

/// A server that closes every WebSocket connection as it is made, with
/// `code` and `reason`, counting them in `count`.
fn closing_every_connection(
    code: u16,
    reason: &'static str,
    count: Arc<AtomicUsize>,
) -> WsServer<()> {
    WsServer::new(Router::new()).on_connect(move |peer, _, _| {
        count.fetch_add(1, Ordering::SeqCst);
        let peer = peer.clone();
        let frame = rpcpeer::CloseFrame::new(code, reason).expect("a valid frame");
        tokio::spawn(async move { peer.close_with(frame).await });
    })
}

/// A reconnecting WebSocket client of `addr` that reads close frames.
fn reconnecting_ws(addr: SocketAddr, settings: Reconnect) -> rpcpeer::reconnect::ReconnectingPeer {
    settings.spawn_with_close_frames(move || async move {
        rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default()).await
    })
}

/// What a call made on a client that stopped fails with.
async fn stopped_reason(client: &rpcpeer::reconnect::ReconnectingPeer) -> String {
    within("the client stops", async {
        loop {
            match client.request::<Value>("ping", ()).await {
                Err(Error::Closed { reason, .. }) if reason.contains("not sent") => break reason,
                // The ping that met a closing connection, or one answered
                // in between: try again until the client has stopped.
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_close_code_picked_by_stop_on_stops_the_reconnecting_client() {
    let addr = ws_server(WsServer::new(closing_router("ban", 4001, "banned"))).await;
    let client = reconnecting_ws(
        addr,
        Reconnect::new()
            .backoff(quick(None))
            .stop_on(|frame| frame.code() == 4001),
    );
    assert_eq!(client.request::<String>("ping", ()).await.unwrap(), "pong");
    assert!(client.request::<bool>("ban", ()).await.unwrap());

    let reason = stopped_reason(&client).await;
    assert!(reason.contains("close code 4001: banned"), "{reason}");
    assert_eq!(client.connections(), 1, "the client came back");
    let frame = client.last_close_frame().expect("the server's frame");
    assert_eq!((frame.code(), frame.reason()), (4001, "banned"));
}

/// A server that closes every connection at once with 1008 ("policy
/// violation") is a failed attempt each time: the client backs off and
/// gives up after `max_attempts`, saying why, where it used to reconnect
/// every `initial` forever.
#[tokio::test]
async fn a_server_that_refuses_each_connection_makes_the_client_give_up() {
    let refused = Arc::new(AtomicUsize::new(0));
    let server = closing_every_connection(1008, "not allowed", refused.clone());
    let addr = ws_server(server).await;
    let client = reconnecting_ws(addr, Reconnect::new().backoff(quick(Some(3))));

    let reason = stopped_reason(&client).await;
    assert!(
        reason.contains("gave up reconnecting after 3 failed attempts")
            && reason.contains("close code 1008: not allowed"),
        "{reason}"
    );
    assert_eq!(refused.load(Ordering::SeqCst), 3);
    assert_eq!(
        client.last_close_frame().map(|frame| frame.code()),
        Some(1008)
    );
}

/// A server that refuses the client's login by closing, while the client's
/// `on_connect` hook waits on its call: `stop_on` sees that close too, and
/// the client stops at the first connection.
#[tokio::test]
async fn stop_on_sees_a_close_made_while_the_on_connect_hook_runs() {
    let server = closing_every_connection(4001, "banned", Arc::default());
    let addr = ws_server(server).await;
    let client = reconnecting_ws(
        addr,
        Reconnect::new()
            .backoff(quick(None))
            .on_connect(|peer| async move { peer.request::<Value>("login", ()).await.map(drop) })
            .stop_on(|frame| frame.code() == 4001),
    );
    let err = within("the client stops", client.request::<Value>("ping", ()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed { reason, peer_close: Some(frame), .. }
            if reason.contains("close code 4001: banned") && frame.code() == 4001),
        "{err:?}"
    );
    assert_eq!(
        client.last_close_frame().map(|frame| frame.code()),
        Some(4001)
    );
}

/// A connection that worked (calls answered on it) ends a run of failed
/// attempts: a server that ends each session with a refusing close after
/// serving it is not given up on, where closes right after connecting are.
#[tokio::test]
async fn connections_that_worked_before_a_refusing_close_are_no_failures_in_a_row() {
    let router = closing_router("expire", 4000, "session expired");
    let addr = ws_server(WsServer::new(router)).await;
    let client = reconnecting_ws(
        addr,
        Reconnect::new().backoff(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_secs(60),
            max_attempts: Some(2),
        }),
    );
    for session in 1..=4u64 {
        let pong = within("ping", async {
            loop {
                match client.request::<String>("ping", ()).await {
                    Ok(pong) => break pong,
                    Err(Error::Closed { reason, .. }) if reason.contains("gave up") => {
                        panic!("session {session}: {reason}")
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
        .await;
        assert_eq!(pong, "pong");
        assert_eq!(client.connections(), session);
        assert!(within("expire", client.request::<bool>("expire", ()))
            .await
            .unwrap());
        within("the session to end", async {
            while client.last_close_frame().is_none() || client.connections() == session {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

type Joined = mpsc::UnboundedSender<(MemberId, Peer)>;

/// A room: `join` adds the caller to the group; the test pushes.
fn room_router(room: Group, joined: Joined) -> Router<(Group, Joined)> {
    let mut router = Router::with_state((room, joined));
    router.method("join", |cx: Context<(Group, Joined)>| async move {
        let member = cx.state().0.join(cx.peer().clone())?;
        let _ = cx.state().1.send((member.id(), cx.peer().clone()));
        Ok::<_, ErrorObject>(true)
    });
    router
}

/// Joins with a raw WebSocket that never reads again, so the server's
/// writes to it back up.
async fn join_and_never_read(addr: SocketAddr) -> impl Drop {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"jsonrpc":"2.0","method":"join","id":1}"#,
    ))
    .await
    .unwrap();
    struct Holder<T>(#[allow(dead_code)] T);
    impl<T> Drop for Holder<T> {
        fn drop(&mut self) {}
    }
    Holder(ws)
}

async fn fast_member(addr: SocketAddr) -> (Peer, mpsc::UnboundedReceiver<u32>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut router = Router::with_state(tx);
    router.notification(
        "push",
        |(i, _blob): (u32, String), cx: Context<mpsc::UnboundedSender<u32>>| async move {
            let _ = cx.state().send(i);
        },
    );
    let peer = ws_client(addr, router).await;
    assert!(peer.request::<bool>("join", ()).await.unwrap());
    (peer, rx)
}

#[tokio::test]
async fn a_slow_group_member_does_not_hold_up_the_rest() {
    let room = Group::new(8, SlowMember::DropOldest);
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    let addr = ws_server(WsServer::new(room_router(room.clone(), joined_tx))).await;
    let _slow = join_and_never_read(addr).await;
    within("slow join", joined.recv()).await;
    let (_fast, mut received) = fast_member(addr).await;
    within("fast join", joined.recv()).await;

    // 64 KiB a push, 300 pushes: far more than the slow member's socket,
    // outbox and queue can hold, so its forwarding really is stuck.
    let blob = "x".repeat(64 * 1024);
    for i in 0..300u32 {
        assert_eq!(room.notify("push", (i, &blob)).unwrap(), 2);
        assert_eq!(within("fast member's push", received.recv()).await, Some(i));
    }
    // Dropping its oldest pushes, the slow member is still in the room.
    assert_eq!(room.len(), 2);
}

#[tokio::test]
async fn a_slow_group_member_can_be_disconnected_instead() {
    let room = Group::new(8, SlowMember::Disconnect);
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    let addr = ws_server(
        WsServer::new(room_router(room.clone(), joined_tx))
            .config(rpcpeer::Config::default().drain_timeout(Duration::from_millis(50))),
    )
    .await;
    let _slow = join_and_never_read(addr).await;
    let (slow_id, slow_peer) = within("slow join", joined.recv()).await.unwrap();
    let (_fast, mut received) = fast_member(addr).await;
    within("fast join", joined.recv()).await;
    let blob = "x".repeat(64 * 1024);
    let mut i = 0u32;
    while room.contains(slow_id) {
        room.notify("push", (i, &blob)).unwrap();
        assert_eq!(within("fast member's push", received.recv()).await, Some(i));
        i += 1;
        assert!(i < 10_000, "the slow member was never disconnected");
    }
    assert_eq!(room.len(), 1);
    // Its connection really closes, although it never reads what is queued.
    within("the slow member's connection to close", slow_peer.closed()).await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_declared_dead() {
    let (result_tx, mut result_rx) = mpsc::unbounded_channel();
    let server = WsServer::new(Router::new())
        .ws_config(rpcpeer::ws::Config {
            ping_interval: Some(Duration::from_millis(50)),
            ping_timeout: Duration::from_millis(100),
            ..Default::default()
        })
        .on_connect(move |peer, _, _| {
            // A call the silent client will never answer.
            let peer = peer.clone();
            let result_tx = result_tx.clone();
            tokio::spawn(async move {
                let _ = result_tx.send(peer.request::<Value>("hello", ()).await);
            });
        });
    let addr = ws_server(server).await;
    // Connected, then never polled again: no pongs, no replies.
    let (_silent, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let result = within("the dead peer's pending call", result_rx.recv())
        .await
        .unwrap();
    assert!(matches!(result, Err(Error::Closed { .. })), "{result:?}");
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_others_are_served() {
    let addr = ws_server(
        WsServer::new(common::spec_router()).ws_config(rpcpeer::ws::Config {
            max_message_len: 1024,
            ..Default::default()
        }),
    )
    .await;
    let (mut big, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    // Far over the limit, so most of it is still unread when the server
    // refuses it: the client must still see the close code, not a reset.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","method":"sum","params":[{}1],"id":1}}"#,
        "1,".repeat(4_000_000)
    );
    big.send(tokio_tungstenite::tungstenite::Message::text(huge))
        .await
        .unwrap();
    let mut closed_with = None;
    while let Some(Ok(msg)) = within("the close", big.next()).await {
        assert!(
            !matches!(msg, tokio_tungstenite::tungstenite::Message::Text(ref t) if t.contains("result"))
        );
        if let tokio_tungstenite::tungstenite::Message::Close(frame) = msg {
            closed_with = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
        }
    }
    // RFC 6455: a message over the limit is fatal to its connection; the
    // close reason names the limit.
    let (code, reason) = closed_with.expect("a close frame");
    assert_eq!(code, 1009);
    assert!(
        reason.ends_with("exceeds the limit of 1024 bytes"),
        "{reason}"
    );
    let other = ws_client(addr, Router::new()).await;
    assert_eq!(
        within("sum", other.request::<i64>("sum", [1, 2]))
            .await
            .unwrap(),
        3
    );
}

/// A WebSocket client transport whose messages may be 1,024 bytes at
/// most, connected to a bare tungstenite server on 127.0.0.1 that runs
/// `script` on the connection.
async fn limited_client<F, Fut>(
    script: F,
) -> rpcpeer::ws::WsTransport<rpcpeer::ws::MaybeTlsStream<tokio::net::TcpStream>>
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        script(tokio_tungstenite::accept_async(tcp).await.unwrap()).await;
    });
    let config = rpcpeer::ws::Config {
        max_message_len: 1024,
        ..Default::default()
    };
    rpcpeer::ws::connect(&format!("ws://{addr}/"), &config)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_message_over_the_limit_is_why_the_connection_ended() {
    // A server that answers with a message over the client's limit: the
    // client closes (1009), and both its pending call and its driver say
    // it was that message, not the write of the answer to it that fails
    // on a connection already closing.
    let transport = limited_client(|mut ws| async move {
        let _ = ws.next().await;
        let big = tokio_tungstenite::tungstenite::Message::text("x".repeat(2048));
        let _ = ws.send(big).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let (peer, driver) = Driver::builder(transport, Router::new())
        .close_frames()
        .build();
    let driver = tokio::spawn(driver);
    let over = "exceeds the limit of 1024 bytes";
    match within("the call", peer.request::<Value>("echo", ())).await {
        Err(Error::Closed { reason, .. }) => assert!(reason.contains(over), "{reason}"),
        other => panic!("expected Error::Closed, got {other:?}"),
    }
    match within("the driver", driver).await.unwrap() {
        Err(Error::Transport(err)) => assert!(err.to_string().contains(over), "{err}"),
        other => panic!("expected the read error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_program_is_told_of_what_it_cannot_read_over_websocket() {
    // A binary message that is not UTF-8 costs that message only (not
    // JSON); one over the limit ends the connection (fatal).
    let transport = limited_client(|mut ws| async move {
        use tokio_tungstenite::tungstenite::Message;
        let _ = ws.send(Message::binary(vec![b'"', 0xff, b'"'])).await;
        // Its -32700 answer first: the connection went on.
        let answer = ws.next().await;
        assert!(
            matches!(&answer, Some(Ok(Message::Text(t))) if t.contains("-32700")),
            "{answer:?}"
        );
        let _ = ws.send(Message::text("x".repeat(2048))).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let (told, mut heard) = mpsc::unbounded_channel();
    let (_peer, driver) = Driver::builder(transport, Router::new())
        .on_unreadable(move |why, err| {
            let _ = told.send((why, err.code));
        })
        .build();
    let ended = within("the driver", driver).await;
    match ended {
        Err(Error::Transport(err)) => {
            assert!(
                err.to_string().contains("exceeds the limit of 1024 bytes"),
                "{err}"
            );
        }
        other => panic!("expected the read error, got {other:?}"),
    }
    let mut kinds = Vec::new();
    while let Ok(told) = heard.try_recv() {
        kinds.push(told);
    }
    assert_eq!(
        kinds,
        [
            (rpcpeer::Unreadable::NotJson, -32700),
            (rpcpeer::Unreadable::Fatal, -32700)
        ]
    );
}

/// Opens a WebSocket peer, or says why the server refused it.
async fn try_ws_client(addr: SocketAddr) -> Result<Peer, String> {
    let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
        .await
        .map_err(|err| err.to_string())?;
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    Ok(peer)
}

/// Whether a refusal is the server's 503.
fn is_503(refusal: &str) -> bool {
    refusal.contains("HTTP 503")
}

#[tokio::test]
async fn a_server_at_its_connection_cap_answers_503_until_one_closes() {
    let addr = ws_server(WsServer::new(common::spec_router()).max_connections(2)).await;
    let first = ws_client(addr, Router::new()).await;
    let second = ws_client(addr, Router::new()).await;
    for peer in [&first, &second] {
        assert_eq!(
            within("sum", peer.request::<i64>("sum", [1, 2]))
                .await
                .unwrap(),
            3
        );
    }
    // The third, WebSocket or plain HTTP, is turned away.
    match within("the third", try_ws_client(addr)).await {
        Err(refusal) => assert!(is_503(&refusal), "{refusal}"),
        Ok(_) => panic!("a third connection got in"),
    }
    let (status, _, body) = http(
        addr,
        "POST",
        "/",
        Some("application/json"),
        r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":1}"#,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("limit of 2 connections"), "{body}");
    // Those already in are not disturbed.
    assert_eq!(
        within("sum", second.request::<i64>("sum", [3, 4]))
            .await
            .unwrap(),
        7
    );

    within("the close", first.close()).await;
    // The server frees the place when its side of the connection has
    // ended, a moment after the client's: until then, a 503.
    let third = within("a place", async {
        loop {
            match try_ws_client(addr).await {
                Ok(peer) => break peer,
                Err(refusal) if is_503(&refusal) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(refusal) => panic!("{refusal}"),
            }
        }
    })
    .await;
    assert_eq!(
        within("sum", third.request::<i64>("sum", [5, 6]))
            .await
            .unwrap(),
        11
    );
}

/// Opens a WebSocket to `addr` as a browser page of `origin` would, and
/// calls `sum`: its answer, or the status and body of the refusal.
async fn sum_from_origin(addr: SocketAddr, origin: Option<&str>) -> Result<i64, (u16, String)> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Error as WsError, Message};
    let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let mut ws = match within("the handshake", tokio_tungstenite::connect_async(request)).await {
        Ok((ws, _)) => ws,
        Err(WsError::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            return Err((
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        Err(err) => panic!("the handshake failed otherwise: {err}"),
    };
    let call = r#"{"jsonrpc":"2.0","method":"sum","params":[2,3],"id":1}"#;
    ws.send(Message::text(call)).await.unwrap();
    loop {
        match within("the answer", ws.next()).await {
            Some(Ok(Message::Text(reply))) => {
                let reply: Value = serde_json::from_str(&reply).unwrap();
                return Ok(reply["result"].as_i64().expect("a result"));
            }
            Some(Ok(_)) => continue,
            other => panic!("no answer: {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_upgrades_from_other_origins_pages_are_refused_unless_allowed() {
    let addr = ws_server(WsServer::new(common::spec_router())).await;
    // Not a browser: no Origin, nothing to check.
    assert_eq!(sum_from_origin(addr, None).await, Ok(5));
    // A page of this server, however the scheme is written.
    assert_eq!(
        sum_from_origin(addr, Some(&format!("http://{addr}"))).await,
        Ok(5)
    );
    let port = addr.port();
    assert_eq!(
        sum_from_origin(addr, Some(&format!("HTTP://127.0.0.1:{port}"))).await,
        Ok(5)
    );
    // Anyone else's page, including this host under another name or port,
    // and pages with an opaque origin.
    for origin in [
        "https://evil.example".to_string(),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_string(),
    ] {
        let (status, body) = sum_from_origin(addr, Some(&origin))
            .await
            .expect_err(&origin);
        assert_eq!(status, 403, "{origin}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], -32600, "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(origin.as_str()), "{message}");
    }

    // A listed origin gets in; the rest are still refused.
    let allowed = ws_server(
        WsServer::new(common::spec_router()).http_options(HttpOptions {
            allowed_origins: vec!["https://app.example".into()],
            ..HttpOptions::default()
        }),
    )
    .await;
    assert_eq!(
        sum_from_origin(allowed, Some("https://APP.example")).await,
        Ok(5)
    );
    let (status, _) = sum_from_origin(allowed, Some("https://evil.example"))
        .await
        .expect_err("not listed");
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_idle_websocket_peer_is_closed_but_not_one_waiting_on_a_long_call() {
    let mut router = common::spec_router();
    router.method("nap", |(ms,): (u64,)| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ErrorObject>(ms)
    });
    let addr =
        ws_server(WsServer::new(router).idle_timeout(Some(Duration::from_millis(200)))).await;
    let (mut silent, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let mut closed = false;
    while let Some(Ok(msg)) = within("the close", silent.next()).await {
        closed |= msg.is_close();
    }
    assert!(closed, "an idle peer gets a close frame");

    // A call three times the idle timeout long: in flight, so not idle.
    let (peer, _driver) = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
        .await
        .map(|transport| rpcpeer::Driver::new(transport, Router::new()))
        .map(|(peer, driver)| (peer, tokio::spawn(driver)))
        .unwrap();
    let slept: u64 = within("a long call", peer.request("nap", [600]))
        .await
        .unwrap();
    assert_eq!(slept, 600);
}

/// Sends `request` on a fresh connection and reads the reply to its end:
/// (status, head, body), the head with its header names lowercased and
/// each of its lines ending in CRLF.
async fn exchange(addr: SocketAddr, request: impl AsRef<[u8]>) -> (u16, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_ref()).await.unwrap();
    let mut raw = String::new();
    within("HTTP reply", tcp.read_to_string(&mut raw))
        .await
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let head = head
        .split("\r\n")
        .map(|line| match line.split_once(": ") {
            Some((name, value)) => format!("{}: {value}\r\n", name.to_ascii_lowercase()),
            None => format!("{line}\r\n"),
        })
        .collect();
    (status, head, body.to_owned())
}

/// One HTTP/1.1 exchange on a fresh connection: (status, content type, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(kind) = content_type {
        request += &format!("Content-Type: {kind}\r\n");
    }
    request += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let (status, head, body) = exchange(addr, request).await;
    let kind = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-type: ")
                .map(str::to_ascii_lowercase)
        })
        .unwrap_or_default();
    (status, kind, body)
}

/// A request without a body: (status, head, body) as [`exchange`] gives them.
async fn http_head(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange(addr, request).await
}

#[tokio::test]
async fn http_post_answers_single_calls_batches_and_notifications() {
    let addr = ws_server(WsServer::new(common::spec_router())).await;
    let json = Some("application/json");
    let (status, kind, body) = http(
        addr,
        "POST",
        "/",
        json,
        r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#,
    )
    .await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":19,"id":1}"#);

    let batch = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"update","params":[1]},{"jsonrpc":"2.0","method":"nope","id":2}]"#;
    let (status, _, body) = http(addr, "POST", "/", json, batch).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body[0]["result"], 3);
    assert_eq!(body[1]["error"]["code"], -32601);
    assert_eq!(body.as_array().unwrap().len(), 2);

    let (status, _, body) = http(
        addr,
        "POST",
        "/",
        json,
        r#"{"jsonrpc":"2.0","method":"update","params":[1]}"#,
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));

    // JSON-RPC errors are HTTP 200: HTTP worked, the call did not.
    let (status, _, body) = http(addr, "POST", "/", json, "{oops").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32700
    );

    let (status, _, body) = http(addr, "POST", "/", Some("text/plain"), "{}").await;
    assert_eq!(status, 415);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32600
    );
    let (status, _, _) = http(addr, "PUT", "/", json, "{}").await;
    assert_eq!(status, 405);
}

/// A POST of `body` (bytes, so not always UTF-8) with `headers` (each
/// line ending in CRLF): (status, head, body).
async fn post_bytes(addr: SocketAddr, headers: &str, body: &[u8]) -> (u16, String, String) {
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    exchange(addr, request).await
}

#[tokio::test]
async fn http_post_of_a_body_that_is_not_utf8_is_a_parse_error() {
    // JSON text is UTF-8 (RFC 8259 §8.1): anything else is not JSON, which
    // is -32700, as for any other body that does not parse.
    let addr = ws_server(WsServer::new(common::spec_router())).await;
    let json = "Content-Type: application/json\r\n";
    let (status, head, body) = post_bytes(
        addr,
        json,
        b"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\xff\"],\"id\":1}",
    )
    .await;
    assert_eq!(status, 200, "{head}{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700,
            "message": "Parse error: the body is not UTF-8 (invalid utf-8 sequence of 1 bytes from index 44)"}})
    );
    // Sent in another charset, which the error names.
    let (status, _, body) = post_bytes(
        addr,
        "Content-Type: application/json; charset=\"ISO-8859-1\"\r\n",
        b"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"caf\xe9\"],\"id\":1}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["error"]["message"],
        "Parse error: the body is not UTF-8 (invalid utf-8 sequence of 1 bytes from index 47); \
         it was sent as charset=ISO-8859-1, and JSON is read as UTF-8 only (RFC 8259 §8.1)",
        "{body}"
    );

    // A compressed body: no coding is decoded, and 415 says which would
    // do (RFC 9110 §15.5.16), whatever the bytes.
    let gzip = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00];
    let (status, head, body) =
        post_bytes(addr, &format!("{json}Content-Encoding: gzip\r\n"), &gzip).await;
    assert_eq!(status, 415, "{body}");
    assert!(head.contains("accept-encoding: identity\r\n"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], -32600);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Content-Encoding: gzip, which this server does not decode"),
        "{message}"
    );
    let sum = br#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    let (status, _, body) = post_bytes(addr, &format!("{json}Content-Encoding: br\r\n"), sum).await;
    assert_eq!(status, 415, "{body}");
    // `identity` is no coding at all.
    let (status, _, body) =
        post_bytes(addr, &format!("{json}Content-Encoding: identity\r\n"), sum).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"jsonrpc":"2.0","result":3,"id":1}"#)
    );

    // The media type is still checked first: a form post is not JSON-RPC.
    let (status, _, body) = post_bytes(
        addr,
        "Content-Type: application/x-www-form-urlencoded\r\n",
        b"\xff",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32600
    );
}

#[tokio::test]
async fn http_get_calls_safe_methods_only() {
    let mut router = common::spec_router();
    router
        .method("echo", |p: EchoParams| async move {
            Ok::<_, ErrorObject>(p.value)
        })
        .safe();
    let addr = ws_server(WsServer::new(router).http_options(HttpOptions {
        jsonp: true,
        ..HttpOptions::default()
    }))
    .await;

    let (status, kind, body) = http(addr, "GET", "/echo?value=hello+world", None, "").await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert_eq!(
        body,
        r#"{"jsonrpc":"2.0","result":"hello world","id":null}"#
    );
    let (_, _, body) = http(addr, "GET", "/echo?value=%5B1%2C2%5D", None, "").await;
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":[1,2],"id":null}"#);

    // `subtract` is not marked safe: GET is refused, with a reason.
    let (status, _, body) = http(addr, "GET", "/subtract?minuend=1&subtrahend=2", None, "").await;
    assert_eq!(status, 405);
    assert!(body.contains("POST"), "{body}");
    let (status, _, _) = http(addr, "GET", "/nope", None, "").await;
    assert_eq!(status, 404);

    // A 405 lists what its path takes (RFC 9110 §15.5.6): POST anywhere,
    // GET and HEAD at a safe method's path only.
    for (method, path, allow) in [
        ("GET", "/subtract?minuend=1&subtrahend=2", "POST"),
        ("GET", "/", "POST"),
        ("PUT", "/subtract", "POST"),
        ("PUT", "/echo", "GET, HEAD, POST"),
    ] {
        let (status, head, _) = http_head(addr, method, path).await;
        assert_eq!(status, 405, "{method} {path}: {head}");
        assert!(
            head.contains(&format!("\r\nallow: {allow}\r\n")),
            "{method} {path}: {head}"
        );
    }
    // HEAD is served wherever GET is, without the content (§9.3.2).
    let (status, head, body) = http_head(addr, "HEAD", "/echo?value=1").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert_eq!(body, "", "{head}");

    let (status, kind, body) = http(addr, "GET", "/echo?value=1&callback=show", None, "").await;
    assert_eq!((status, kind.as_str()), (200, "application/javascript"));
    assert_eq!(body, r#"show({"jsonrpc":"2.0","result":1,"id":null});"#);
    let (status, _, _) = http(addr, "GET", "/echo?value=1&callback=alert(1)", None, "").await;
    assert_eq!(status, 400);
}

#[derive(serde::Deserialize)]
struct EchoParams {
    value: Value,
}

/// A server whose `slow` method (safe for GET) says when it has started, and
/// that stops gracefully when `stop` is notified.
struct Stoppable {
    addr: SocketAddr,
    started: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn stoppable_slow_server() -> Stoppable {
    let started = Arc::new(tokio::sync::Notify::new());
    let mut router = Router::with_state(started.clone());
    router
        .method("slow", |cx: Context<Arc<tokio::sync::Notify>>| async move {
            cx.state().notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, ErrorObject>("finished")
        })
        .safe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let server = tokio::spawn({
        let stop = stop.clone();
        WsServer::new(router).serve_with_shutdown(listener, async move { stop.notified().await })
    });
    Stoppable {
        addr,
        started,
        stop,
        server,
    }
}

#[tokio::test]
async fn a_graceful_stop_lets_http_requests_in_flight_finish() {
    let Stoppable {
        addr,
        started,
        stop,
        server,
    } = stoppable_slow_server().await;
    let request = tokio::spawn(http(addr, "GET", "/slow", None, ""));
    within("the slow call to start", started.notified()).await;
    stop.notify_one();
    let (status, _, body) = within("the slow reply", request).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"jsonrpc":"2.0","result":"finished","id":null}"#)
    );
    within("the server to stop", server).await.unwrap().unwrap();
    // Stopped: new connections are refused.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_graceful_stop_lets_websocket_calls_finish_and_closes_cleanly() {
    let Stoppable {
        addr,
        started,
        stop,
        server,
    } = stoppable_slow_server().await;
    let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::builder(transport, Router::new())
        .close_frames()
        .build();
    let driver = tokio::spawn(driver);
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.request::<String>("slow", ()).await }
    });
    within("the slow call to start", started.notified()).await;
    stop.notify_one();
    // NB: once the server has stopped reading (it stops at the signal, and
    // the call runs for 100 ms): this message is never read. The server
    // must read it away before it closes, or its socket is reset.
    tokio::time::sleep(Duration::from_millis(30)).await;
    peer.notify("late", ()).await.unwrap();
    assert_eq!(
        within("the slow reply", call).await.unwrap().unwrap(),
        "finished"
    );
    within("the server to stop", server).await.unwrap().unwrap();
    let ended = within("the client's driver to end", driver).await.unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    // RFC 6455 §7.4.1: 1001, the server going away.
    let frame = peer.peer_close_frame().expect("a close frame");
    assert_eq!(
        (frame.code(), frame.reason()),
        (1001, "the server is stopping")
    );
}

#[tokio::test]
async fn an_http_call_still_running_past_the_drain_timeout_is_answered_shutting_down() {
    let started = Arc::new(tokio::sync::Notify::new());
    let mut router = Router::with_state(started.clone());
    router.method(
        "forever",
        |cx: Context<Arc<tokio::sync::Notify>>| async move {
            cx.state().notify_one();
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>("never")
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let server = tokio::spawn({
        let stop = stop.clone();
        WsServer::new(router)
            .config(rpcpeer::Config::default().drain_timeout(Duration::from_millis(200)))
            .serve_with_shutdown(listener, async move { stop.notified().await })
    });
    let request = tokio::spawn(http(
        addr,
        "POST",
        "/",
        Some("application/json"),
        r#"{"jsonrpc":"2.0","method":"forever","id":7}"#,
    ));
    within("the call to start", started.notified()).await;
    // A batch, after a byte order mark: each call is answered, and the
    // notification is not.
    let batch = tokio::spawn(http(
        addr,
        "POST",
        "/",
        Some("application/json"),
        "\u{feff}[{\"jsonrpc\":\"2.0\",\"method\":\"forever\",\"id\":8},\
         {\"jsonrpc\":\"2.0\",\"method\":\"forever\"}]",
    ));
    within("the batch to start", started.notified()).await;
    stop.notify_one();
    let (status, _, body) = within("an answer", request).await.unwrap();
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], -32003, "{body}");
    assert_eq!(body["id"], 7, "{body}");
    let (status, _, body) = within("the batch's answer", batch).await.unwrap();
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body[0]["error"]["code"], -32003, "{body}");
    assert_eq!(body[0]["id"], 8, "{body}");
    within("the server to stop", server).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_console_path_says_it_serves_the_page_to_those_that_accept_html() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(WsServer::new(Router::new()).console("/").serve(listener));
    // Not a browser: the JSON-RPC answer, which varies with `Accept` too,
    // and lists GET among the path's methods.
    let (status, head, _) = http_head(addr, "GET", "/").await;
    assert_eq!(status, 405, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("allow: get, head, post"), "{head}");
    assert!(head.contains("vary: accept"), "{head}");
}

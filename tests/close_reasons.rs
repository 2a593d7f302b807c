//! Every `Error::Closed` says why: sent or not, and what ended the connection (a WebSocket peer's close frame included).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{connect, connect_with, serve, within};
use futures::{SinkExt, StreamExt};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{
    CloseFrame, CloseFrameError, Config, Context, Driver, Error, ErrorObject, Router, Session,
};
use rpcpeer_stream::Framing;
use serde_json::Value;
use tokio::sync::Notify;

fn reason(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Closed { reason, .. }) => reason,
        other => panic!("expected Error::Closed, got {other:?}"),
    }
}

/// A raw server that reads one frame, then runs `then` on the connection.
async fn one_frame_server<F, Fut>(framing: Framing, then: F) -> std::net::SocketAddr
where
    F: FnOnce(rpcpeer_stream::Framed<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut framed = rpcpeer_stream::framed(socket, framing, 1 << 20);
        let _ = framed.next().await;
        then(framed).await;
    });
    addr
}

#[tokio::test]
async fn a_peer_that_hangs_up_fails_the_pending_call_saying_so() {
    let addr = one_frame_server(Framing::Newline, |framed| async move { drop(framed) }).await;
    let (peer, driver) = connect(addr, Framing::Newline, Router::new()).await;
    let err = within("the call", peer.request::<Value>("anything", ()))
        .await
        .unwrap_err();
    let text = err.to_string();
    let why = reason(Err::<(), _>(err));
    assert!(
        why.starts_with("sent, then the connection was lost before the reply: "),
        "{why}"
    );
    assert!(why.contains("the peer closed"), "{why}");
    assert_eq!(
        text,
        format!("the connection closed before `anything` got a reply ({why})")
    );

    within("driver end", driver).await.unwrap().unwrap();
    let why = reason(peer.request::<Value>("later", ()).await);
    assert_eq!(why, "not sent: the connection had already ended");
    let why = reason(peer.notify("later", ()).await);
    assert_eq!(why, "not sent: the connection had already ended");
    let why = reason(peer.try_notify("later", ()));
    assert_eq!(why, "not sent: the connection had already ended");
}

#[tokio::test]
async fn a_transport_error_is_the_reason_of_the_call_it_cost() {
    // The reply breaks Content-Length framing: the client's read fails.
    let addr = one_frame_server(Framing::ContentLength, |framed| async move {
        let mut socket = framed.into_inner();
        let _ =
            tokio::io::AsyncWriteExt::write_all(&mut socket, b"Content-Length: many\r\n\r\n").await;
        // Held open: the read error alone ends the connection.
        std::future::pending::<()>().await;
    })
    .await;
    let (peer, driver) = connect(addr, Framing::ContentLength, Router::new()).await;
    let why = reason(within("the call", peer.request::<Value>("anything", ())).await);
    let Err(Error::Transport(err)) = within("driver end", driver).await.unwrap() else {
        panic!("the driver should end with the transport's error");
    };
    assert!(
        why.starts_with("sent, then the connection was lost before the reply: "),
        "{why}"
    );
    assert!(why.contains(&err.to_string()), "{why} lacks {err}");
}

/// Closing on this side: a call written before fails as lost, a call made
/// while running handlers drain is not sent, one made after the end says
/// the connection had ended; each says why.
#[tokio::test]
async fn closing_on_this_side_says_so_to_every_call() {
    let held = Arc::new(Notify::new());
    let mut server = Router::with_state(held.clone());
    server.method("hold", |cx: Context<Arc<Notify>>| async move {
        cx.state().notify_one();
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    server.method("stall_me", |cx: Context<Arc<Notify>>| async move {
        let peer = cx.peer().clone();
        tokio::spawn(async move { peer.request::<Value>("stall", ()).await });
        Ok::<_, ErrorObject>(true)
    });
    let addr = serve(server, Framing::Newline).await;
    let stalled = Arc::new(Notify::new());
    let mut client = Router::with_state(stalled.clone());
    client.method("stall", |cx: Context<Arc<Notify>>| async move {
        cx.state().notify_one();
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    let config = Config::default().drain_timeout(Duration::from_millis(200));
    let (peer, _driver) = connect_with(addr, Framing::Newline, client, config).await;
    assert!(within("stall_me", peer.request::<bool>("stall_me", ()))
        .await
        .unwrap());
    within("stall running", stalled.notified()).await;
    let hold = tokio::spawn({
        let peer = peer.clone();
        async move { peer.request::<Value>("hold", ()).await }
    });
    within("hold running", held.notified()).await;

    // The close is asked for (its first poll) before the next call is made.
    let mut closing = Box::pin(peer.close());
    assert!(futures::poll!(&mut closing).is_pending());
    let why = reason(within("during the drain", peer.request::<Value>("late", ())).await);
    assert_eq!(
        why,
        "not sent: the connection was closing: closed on this side"
    );
    let why = reason(within("hold", hold).await.unwrap());
    assert_eq!(
        why,
        "sent, then the connection was lost before the reply: closed on this side"
    );

    within("the close", closing).await;
    let why = reason(peer.request::<Value>("after", ()).await);
    assert_eq!(why, "not sent: the connection had already ended");
}

/// A handler answering a one-shot request (HTTP POST, `handle_text`) has no
/// connection to call back on, and is told so.
#[tokio::test]
async fn calling_back_without_a_connection_says_there_is_none() {
    let mut router = Router::new();
    router.method("callback", |cx: Context| async move {
        let answer: Value = cx.peer().request("ask", ()).await?;
        Ok::<_, ErrorObject>(answer)
    });
    let reply = router
        .handle_text(
            r#"{"jsonrpc":"2.0","method":"callback","id":1}"#,
            &Session::new(),
        )
        .await
        .unwrap();
    assert!(
        reply.contains("not sent: this peer has no connection to call back on"),
        "{reply}"
    );
}

// ------------------------------------------------ WebSocket close frames

/// A raw WebSocket server that reads one message, leaves it unanswered and
/// closes with `code` and `reason`.
async fn closing_ws_server(code: u16, reason: &'static str) -> String {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
        let _ = ws.next().await;
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        let _ = ws.close(Some(frame)).await;
        while let Some(Ok(_)) = ws.next().await {}
    });
    url
}

#[tokio::test]
async fn a_websocket_peers_close_frame_reaches_error_closed() {
    let url = closing_ws_server(4001, "session expired").await;
    let ws = rpcpeer::ws::connect(&url, &Default::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::builder(ws, Router::new()).close_frames().build();
    let driver = tokio::spawn(driver);

    let err = within("the call", peer.request::<Value>("anything", ()))
        .await
        .unwrap_err();
    let Error::Closed {
        reason,
        peer_close: Some(frame),
        ..
    } = err
    else {
        panic!("expected Error::Closed with the peer's close frame, got {err:?}");
    };
    assert_eq!((frame.code(), frame.reason()), (4001, "session expired"));
    assert_eq!(
        reason,
        "sent, then the connection was lost before the reply: \
         the peer closed the connection (close code 4001: session expired)"
    );
    within("driver end", driver).await.unwrap().unwrap();

    // A call made once the connection is gone is told too.
    let err = peer.request::<Value>("later", ()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Closed { peer_close: Some(frame), .. } if frame.code() == 4001),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the peer's close code 4001"),
        "{err}"
    );
}

/// A call whose write is refused because the peer's close frame is in (a
/// WebSocket takes no more after it) fails with that frame too, and the
/// peer shows it at once: it is why the write failed.
#[tokio::test]
async fn a_call_that_meets_the_close_frame_on_its_way_out_carries_it() {
    let server = common::closing_router("ban", 4001, "banned");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(WsServer::new(server).serve(listener));

    for _ in 0..20 {
        let ws = rpcpeer::ws::connect(&url, &Default::default())
            .await
            .unwrap();
        let (peer, driver) = Driver::builder(ws, Router::new()).close_frames().build();
        tokio::spawn(driver);
        assert!(within("ban", peer.request::<bool>("ban", ()))
            .await
            .unwrap());
        // Sent as the close frame comes in: written before it, or refused.
        let err = within("ping", peer.request::<Value>("ping", ()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Closed { peer_close: Some(frame), .. } if frame.code() == 4001),
            "{err:?}"
        );
        let frame = peer.peer_close_frame().expect("the peer's frame");
        assert_eq!(frame.reason(), "banned");
    }
}

/// A peer that sends its close frame and drops its socket at once, with
/// our second call unread, makes the kernel reset the connection: the
/// frame still reaches the calls and the peer.
#[tokio::test]
async fn a_close_frame_followed_by_a_reset_still_reaches_the_calls() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (first_read, read) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
        let _ = ws.next().await;
        let _ = first_read.send(());
        // The second call arrives meanwhile, and stays unread.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let frame = WsCloseFrame {
            code: 4001.into(),
            reason: "banned".into(),
        };
        let _ = ws.send(Message::Close(Some(frame))).await;
        drop(ws);
    });
    let ws = rpcpeer::ws::connect(&url, &Default::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::builder(ws, Router::new()).close_frames().build();
    tokio::spawn(driver);
    let call = |method: &'static str| {
        let peer = peer.clone();
        tokio::spawn(async move { peer.request::<Value>(method, ()).await })
    };
    let first = call("first");
    within("the server reads the first call", read)
        .await
        .unwrap();
    let second = call("second");
    for call in [first, second] {
        let err = within("a call", call).await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::Closed { peer_close: Some(frame), .. } if frame.code() == 4001),
            "{err:?}"
        );
    }
    assert_eq!(
        peer.peer_close_frame().map(|frame| frame.code()),
        Some(4001)
    );
}

#[tokio::test]
async fn without_close_frames_a_websocket_peers_close_says_only_that_it_closed() {
    let url = closing_ws_server(4001, "session expired").await;
    let ws = rpcpeer::ws::connect(&url, &Default::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::new(ws, Router::new());
    tokio::spawn(driver);
    let err = within("the call", peer.request::<Value>("anything", ()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed { peer_close: None, reason, .. } if reason.ends_with("the peer closed the connection")),
        "{err:?}"
    );
}

#[tokio::test]
async fn close_with_sends_its_code_and_reason_to_a_websocket_peer() {
    use tokio_tungstenite::tungstenite::Message;
    let mut router = Router::new();
    router.method("logout", |cx: Context| async move {
        let peer = cx.peer().clone();
        // Spawned: a close waits for running handlers, this one included.
        tokio::spawn(async move {
            let frame = CloseFrame::new(4002, "logged out").expect("a valid frame");
            peer.close_with(frame).await
        });
        Ok::<_, ErrorObject>(true)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(WsServer::new(router).serve(listener));

    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text(
        r#"{"jsonrpc":"2.0","method":"logout","id":1}"#,
    ))
    .await
    .unwrap();
    let mut answered = false;
    loop {
        match within("the server's close", ws.next()).await {
            Some(Ok(Message::Text(reply))) => {
                assert_eq!(reply.as_str(), r#"{"jsonrpc":"2.0","result":true,"id":1}"#);
                answered = true;
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4002);
                assert_eq!(frame.reason.as_str(), "logged out");
                break;
            }
            other => panic!("expected the reply, then a close frame; got {other:?}"),
        }
    }
    assert!(answered, "the call was answered before the close");
}

#[test]
fn only_close_codes_an_endpoint_may_send_make_a_close_frame() {
    for code in [1000, 1001, 1003, 1007, 1013, 3000, 4999] {
        assert!(CloseFrame::new(code, "").is_ok(), "{code}");
    }
    for code in [0, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000] {
        assert_eq!(CloseFrame::new(code, ""), Err(CloseFrameError::Code(code)));
    }
    assert_eq!(
        CloseFrame::new(1000, "x".repeat(124)),
        Err(CloseFrameError::ReasonTooLong(124))
    );
    assert!(CloseFrame::new(1000, "x".repeat(123)).is_ok());
}

/// A transport with close frames whose input is quiet until it is closed,
/// and then always ready: a peer that floods after our close, over a
/// transport that takes no part in tokio's budget.
struct FloodAfterClose {
    closed: bool,
}

impl futures::Stream for FloodAfterClose {
    type Item = std::io::Result<String>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.closed {
            true => std::task::Poll::Ready(Some(Ok(r#"{"jsonrpc":"2.0","method":"spam"}"#.into()))),
            false => std::task::Poll::Pending,
        }
    }
}

impl futures::Sink<String> for FloodAfterClose {
    type Error = std::io::Error;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn start_send(self: std::pin::Pin<&mut Self>, _: String) -> std::io::Result<()> {
        Ok(())
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.closed = true;
        std::task::Poll::Ready(Ok(()))
    }
}

impl rpcpeer::transport::CloseFrames for FloodAfterClose {
    fn set_close_frame(&mut self, _: u16, _: &str) -> std::io::Result<()> {
        Ok(())
    }

    fn peer_close_frame(&self) -> Option<(u16, String)> {
        None
    }
}

/// After its close frame a driver reads until the peer's, for at most 1 s:
/// a peer that floods instead cannot hold it longer, even on a
/// current-thread runtime, which fires timers only between tasks. (On a
/// thread of its own, so that a driver that never yields fails the test
/// rather than hanging it.)
#[test]
fn a_peer_that_floods_after_our_close_cannot_hold_the_driver() {
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (peer, driver) = Driver::builder(FloodAfterClose { closed: false }, Router::new())
                .close_frames()
                .build();
            let driver = tokio::spawn(driver);
            peer.close().await;
            let _ = done.send(driver.await.expect("the driver's task").is_ok());
        });
    });
    let ended = ended.recv_timeout(Duration::from_secs(20));
    assert_eq!(ended, Ok(true), "the driver did not end after its close");
}

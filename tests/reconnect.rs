//! The reconnecting client over TCP on 127.0.0.1: where a call goes when the link drops, and why it gives up.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{serve, within};
use futures::StreamExt;
use rpcpeer::reconnect::{Backoff, Reconnect, ReconnectingPeer};
use rpcpeer::stream::{connect_tcp, Framing};
use rpcpeer::{Config, Context, Error, ErrorObject, Router};
use serde_json::Value;
use tokio::sync::Notify;

/// `ping`, and `kick`, which answers and then closes its connection.
fn kicking_router() -> Router {
    let mut router = Router::new();
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    router.method("kick", |cx: Context| async move {
        let peer = cx.peer().clone();
        tokio::spawn(async move { peer.close().await });
        Ok::<_, ErrorObject>(true)
    });
    router
}

fn quick_backoff(max_attempts: Option<u32>) -> Backoff {
    Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(20),
        max_attempts,
    }
}

fn client_of(addr: std::net::SocketAddr) -> ReconnectingPeer {
    Reconnect::new()
        .backoff(quick_backoff(None))
        .spawn(move || connect_tcp(addr, Framing::Newline))
}

/// The race of issue #8: a call made once the old connection has ended, but
/// before the client has noticed, used to go to the dead connection and fail
/// though it was never written. It must wait for the new connection instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_just_after_the_link_dropped_goes_to_the_new_connection() {
    let addr = serve(kicking_router(), Framing::Newline).await;
    let client = client_of(addr);
    for round in 0..100 {
        let old = within("the current connection", client.peer())
            .await
            .unwrap();
        assert!(within("kick", old.request::<bool>("kick", ()))
            .await
            .unwrap());
        // The old connection is gone; the client may not have noticed yet.
        within("the old connection's end", old.closed()).await;
        let pong = within("ping", client.request::<String>("ping", ())).await;
        assert_eq!(
            pong.unwrap_or_else(|err| panic!("round {round}: {err}")),
            "pong"
        );
    }
    client.close();
}

/// The reason of a `Closed` error, or a panic naming what came instead.
fn closed_reason(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Closed { reason, .. }) => reason,
        other => panic!("expected Error::Closed, got {other:?}"),
    }
}

/// A call written before the link dropped is not resent; its error says it
/// was sent and then lost.
#[tokio::test]
async fn a_call_written_before_the_link_dropped_fails_as_lost_and_is_not_resent() {
    let holds = Arc::new(AtomicUsize::new(0));
    let mut server = Router::with_state(holds.clone());
    server.method("hold", |cx: Context<Arc<AtomicUsize>>| async move {
        cx.state().fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let listener = rpcpeer::stream::TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn({
        let holds = holds.clone();
        async move {
            // The first connection reads `hold` and hangs up unanswered.
            let (mut first, _) = listener.accept().await.unwrap();
            let frame = first.next().await.unwrap().unwrap();
            assert!(frame.contains("hold"), "{frame}");
            holds.fetch_add(1, Ordering::SeqCst);
            drop(first);
            while let Ok((transport, _)) = listener.accept().await {
                tokio::spawn(rpcpeer::Driver::new(transport, server.clone()).1);
            }
        }
    });
    let client = client_of(addr);

    let err = within("hold", client.request::<Value>("hold", ()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Closed { ref method, .. } if method == "hold"),
        "{err}"
    );
    let reason = closed_reason(Err::<(), _>(err));
    assert!(
        reason.starts_with("sent, then the connection was lost before the reply"),
        "{reason}"
    );
    assert_eq!(
        within("ping", client.request::<String>("ping", ()))
            .await
            .unwrap(),
        "pong"
    );
    assert_eq!(holds.load(Ordering::SeqCst), 1, "`hold` was resent");
    client.close();
}

/// When the client gives up, its calls say why, with the `on_connect`
/// hook's last error (here, the server refusing the password).
#[tokio::test]
async fn giving_up_says_the_on_connect_hooks_last_error() {
    let mut server = Router::new();
    server.method("login", |(password,): (String,)| async move {
        if password == "secret" {
            Ok(true)
        } else {
            Err(ErrorObject::new(-32002, "wrong password"))
        }
    });
    let addr = serve(server, Framing::Newline).await;
    let client = Reconnect::new()
        .backoff(quick_backoff(Some(3)))
        .on_connect(|peer| async move { peer.request::<bool>("login", ["guess"]).await.map(drop) })
        .spawn(move || connect_tcp(addr, Framing::Newline));

    let err = within("the call", client.request::<Value>("anything", ()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Closed { ref method, .. } if method == "anything"),
        "{text}"
    );
    assert!(
        text.contains("gave up reconnecting after 3 failed attempts"),
        "{text}"
    );
    assert!(text.contains("the on_connect hook failed"), "{text}");
    assert!(text.contains("wrong password"), "{text}");
    // The same for every later caller, and for `peer()`.
    let text = within("peer", client.peer()).await.unwrap_err().to_string();
    assert!(text.contains("wrong password"), "{text}");
}

/// When connecting itself fails, the give-up reason has the connect error.
#[tokio::test]
async fn giving_up_says_why_connecting_failed() {
    // A port that was just free: nothing listens there now.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = tokio::net::TcpStream::connect(addr)
        .await
        .expect_err("nothing should listen on the port")
        .to_string();
    let client = Reconnect::new()
        .backoff(quick_backoff(Some(2)))
        .spawn(move || connect_tcp(addr, Framing::Newline));
    let text = within("the call", client.request::<Value>("anything", ()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("gave up reconnecting after 2 failed attempts"),
        "{text}"
    );
    assert!(text.contains("could not connect"), "{text}");
    assert!(text.contains(&refused), "{text} lacks {refused}");
}

/// A closed client says so.
#[tokio::test]
async fn a_closed_client_says_it_was_closed() {
    let addr = serve(kicking_router(), Framing::Newline).await;
    let client = client_of(addr);
    within("connected", client.peer()).await.unwrap();
    client.close();
    let reason = closed_reason(within("ping", client.request::<String>("ping", ())).await);
    assert!(
        reason.contains("the reconnecting client was closed"),
        "{reason}"
    );
}

/// A connection whose own handlers are still draining (the server hung up
/// while it ran one) takes no new calls; those go out on a new connection
/// at once, without waiting for the drain to end.
#[tokio::test]
async fn calls_refused_by_a_draining_connection_go_out_on_a_new_one() {
    let mut server = kicking_router();
    // Has the client run `stall` (which never ends), then answers.
    server.method("stall_me", |cx: Context| async move {
        let peer = cx.peer().clone();
        tokio::spawn(async move { peer.request::<Value>("stall", ()).await });
        Ok::<_, ErrorObject>(true)
    });
    let addr = serve(server, Framing::Newline).await;
    let stalled = Arc::new(Notify::new());
    let mut router = Router::with_state(stalled.clone());
    router.method("stall", |cx: Context<Arc<Notify>>| async move {
        cx.state().notify_one();
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    // Far longer than the test may take: only the new connection can answer.
    let config = Config::default().drain_timeout(Duration::from_secs(3600));
    let client = Reconnect::new()
        .router(router)
        .config(config)
        .backoff(quick_backoff(None))
        .spawn(move || connect_tcp(addr, Framing::Newline));

    let old = within("connected", client.peer()).await.unwrap();
    assert!(within("stall_me", old.request::<bool>("stall_me", ()))
        .await
        .unwrap());
    within("stall running", stalled.notified()).await;
    assert!(within("kick", old.request::<bool>("kick", ()))
        .await
        .unwrap());
    // Until the old connection has read the server's end of stream, a call
    // may still be written to it (and then lost); from then on it refuses.
    within("the old connection draining", async {
        loop {
            let reason = closed_reason(old.request::<String>("ping", ()).await);
            if reason.starts_with("not sent") {
                assert!(
                    reason.contains("the peer closed the connection"),
                    "{reason}"
                );
                break;
            }
        }
    })
    .await;
    assert!(!old.is_closed(), "the old connection should still drain");
    assert_eq!(
        within(
            "ping on the new connection",
            client.request::<String>("ping", ())
        )
        .await
        .unwrap(),
        "pong"
    );
    assert_eq!(client.connections(), 2);
    client.close();
}

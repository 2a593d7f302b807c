//! Time limits: our calls to the peer (`Config::request_timeout`) and the peer's calls to our handlers (`MethodConfig::timeout`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{connect, serve_with, within, Wire};
use rpcpeer::transport::{memory_pair, MemoryTransport};
use rpcpeer::{Config, Context, Driver, Error, ErrorObject, Peer, Router};
use rpcpeer_stream::Framing;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// Without any setting, a call the peer never answers fails after 30 s
/// instead of waiting for ever.
#[tokio::test(start_paused = true)]
async fn a_call_the_peer_never_answers_times_out_after_30_s_by_default() {
    assert_eq!(
        Config::default().get_request_timeout(),
        Some(Duration::from_secs(30))
    );
    let (ours, _silent) = memory_pair();
    let (peer, driver) = Driver::new(ours, Router::new());
    tokio::spawn(driver);
    // Virtual time: an hour passes at once if nothing else happens.
    let err = tokio::time::timeout(Duration::from_secs(3600), peer.request::<Value>("x", ()))
        .await
        .expect("the call was still waiting after an hour")
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { ref method, after } if method == "x" && after == Duration::from_secs(30)),
        "{err}"
    );
}

/// A handler that calls its caller back, and a caller that never answers:
/// the callback times out, the handler answers with the error, its slot is
/// freed (one slot only here) and a late reply is ignored.
#[tokio::test]
async fn a_callback_the_caller_never_answers_times_out_and_the_connection_serves_on() {
    let mut server = Router::new();
    server.method("callback", |cx: Context| async move {
        let answer: Value = cx.peer().request("ask", ()).await?;
        Ok::<_, ErrorObject>(answer)
    });
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let config = Config::default()
        .request_timeout(Some(Duration::from_millis(100)))
        .max_in_flight(1);
    let addr = serve_with(
        server,
        Framing::Newline,
        config,
        rpcpeer_stream::DEFAULT_MAX_FRAME_LEN,
    )
    .await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;

    wire.send(r#"{"jsonrpc":"2.0","method":"callback","id":1}"#)
        .await;
    let ask = wire.recv().await;
    assert_eq!(ask["method"], "ask", "{ask}");
    // Never answered: the next two frames are the notice that cancels it
    // and the reply to `callback`, in either order.
    let (first, second) = (wire.recv().await, wire.recv().await);
    let (cancel, reply) = if first["method"] == "$/cancelRequest" {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(cancel["method"], "$/cancelRequest", "{cancel}");
    assert_eq!(cancel["params"]["id"], ask["id"], "{cancel}");
    assert_eq!(reply["id"], 1, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`ask` got no reply within 100ms"),
        "{reply}"
    );

    // The late answer is ignored; the one slot serves the next call.
    let late = json!({"jsonrpc": "2.0", "result": "too late", "id": ask["id"]});
    wire.send(&late.to_string()).await;
    let pong = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#)
        .await;
    assert_eq!(pong, json!({"jsonrpc": "2.0", "result": "pong", "id": 2}));
}

struct Signals {
    /// Fired by the watcher of `slow`'s cancellation token.
    token_fired: Notify,
    /// Fired when the `spin` task's future is dropped (the task was aborted).
    task_dropped: Notify,
}

/// Notifies when dropped.
struct OnDrop(Arc<Signals>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.task_dropped.notify_one();
    }
}

/// A method over its limit is answered -32002 naming it and the limit, its
/// token fires (or its task is aborted), and other calls go on.
#[tokio::test]
async fn a_handler_over_its_time_limit_is_answered_and_cancelled() {
    let signals = Arc::new(Signals {
        token_fired: Notify::new(),
        task_dropped: Notify::new(),
    });
    let mut server = Router::with_state(signals.clone());
    server
        .method("slow", |cx: Context<Arc<Signals>>| async move {
            let token = cx.cancellation().clone();
            let signals = cx.state().clone();
            tokio::spawn(async move {
                token.cancelled().await;
                signals.token_fired.notify_one();
            });
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        })
        .timeout(Duration::from_millis(100));
    server
        .method("spin", |cx: Context<Arc<Signals>>| async move {
            let _guard = OnDrop(cx.state().clone());
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        })
        .own_task()
        .timeout(Duration::from_millis(100));
    server
        .method("quick", || async { Ok::<_, ErrorObject>("done") })
        .timeout(Duration::from_secs(60));
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let addr = serve_with(
        server,
        Framing::Newline,
        Config::default(),
        rpcpeer_stream::DEFAULT_MAX_FRAME_LEN,
    )
    .await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;

    let slow = tokio::spawn({
        let peer = peer.clone();
        async move { peer.request::<Value>("slow", ()).await }
    });
    let spin = tokio::spawn({
        let peer = peer.clone();
        async move { peer.request::<Value>("spin", ()).await }
    });
    // Others are served while those run, and a limit that is not reached
    // changes nothing.
    assert_eq!(
        within("ping", peer.request::<String>("ping", ()))
            .await
            .unwrap(),
        "pong"
    );
    assert_eq!(
        within("quick", peer.request::<String>("quick", ()))
            .await
            .unwrap(),
        "done"
    );

    for (method, call) in [("slow", slow), ("spin", spin)] {
        let err = within(method, call).await.unwrap().unwrap_err();
        let Error::Remote { source, .. } = &err else {
            panic!("{method}: expected an error reply, got {err}");
        };
        assert_eq!(source.code, ErrorObject::HANDLER_TIMEOUT, "{err}");
        assert_eq!(source.code, -32002);
        assert!(
            source.message.contains(&format!("`{method}`")) && source.message.contains("100ms"),
            "{err}"
        );
    }
    within("slow's token", signals.token_fired.notified()).await;
    within("spin's task aborted", signals.task_dropped.notified()).await;
    assert_eq!(
        within("ping after", peer.request::<String>("ping", ()))
            .await
            .unwrap(),
        "pong"
    );
}

/// A server that answers `ping`, and closes once idle for `idle`.
fn ping_server(transport: MemoryTransport, idle: Duration) -> (Peer, Driver<MemoryTransport, ()>) {
    let mut server = Router::new();
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    Driver::builder(transport, server)
        .config(Config::default().idle_timeout(Some(idle)))
        .build()
}

/// `Config::idle_timeout` counts from the last message either way: a
/// connection that just answered stays open, and one quiet for the whole
/// period closes (virtual time, so the instants are exact).
#[tokio::test(start_paused = true)]
async fn the_idle_timeout_counts_from_the_last_message() {
    let idle = Duration::from_millis(200);
    let (ours, theirs) = memory_pair();
    let (_server, driver) = ping_server(ours, idle);
    let server = tokio::spawn(driver);
    let (client, client_driver) = Driver::new(theirs, Router::new());
    tokio::spawn(client_driver);

    for _ in 0..3 {
        // Three quarters of the period, then a message: never idle.
        tokio::time::sleep(idle * 3 / 4).await;
        let pong: String = client.request("ping", ()).await.unwrap();
        assert_eq!(pong, "pong");
        assert!(!server.is_finished(), "closed while in use");
    }
    // Then silence: closed within the period after the last message.
    let ended = tokio::time::timeout(idle + Duration::from_millis(1), server)
        .await
        .expect("still open a whole period after the last message");
    assert!(ended.unwrap().is_ok(), "an idle connection closes cleanly");
}

/// A connection with a message waiting before its driver first ran is busy
/// from its first turn on, and still closes once idle: its idle timer is
/// set going on that turn too.
#[tokio::test(start_paused = true)]
async fn a_connection_busy_from_its_first_turn_still_closes_when_idle() {
    use futures::{SinkExt, StreamExt};

    let idle = Duration::from_millis(200);
    let (ours, mut theirs) = memory_pair();
    theirs
        .send(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#.to_owned())
        .await
        .unwrap();
    let (_server, driver) = ping_server(ours, idle);
    let server = tokio::spawn(driver);
    let reply = theirs.next().await.unwrap().unwrap();
    assert!(reply.contains(r#""result":"pong""#), "{reply}");
    let ended = tokio::time::timeout(idle + Duration::from_millis(1), server)
        .await
        .expect("still open a whole period after the last message");
    assert!(ended.unwrap().is_ok(), "an idle connection closes cleanly");
    assert_eq!(theirs.next().await.transpose().unwrap(), None);
}

/// A driver whose first turn finds its task's budget spent still closes
/// once idle: tokio's sleep registers nothing on such a poll, so the driver
/// must not take the timer as set going.
#[tokio::test(start_paused = true)]
async fn an_idle_timer_first_polled_without_budget_still_closes_the_connection() {
    use std::future::Future;
    use std::task::Poll;

    let idle = Duration::from_millis(200);
    let (ours, _theirs) = memory_pair();
    let (_server, driver) = ping_server(ours, idle);
    let mut driver = Box::pin(driver);
    let mut first = true;
    let server = tokio::spawn(std::future::poll_fn(move |cx| {
        if std::mem::take(&mut first) {
            while let Poll::Ready(spent) = tokio::task::coop::poll_proceed(cx) {
                spent.made_progress();
            }
        }
        driver.as_mut().poll(cx)
    }));
    let ended = tokio::time::timeout(idle + Duration::from_millis(1), server)
        .await
        .expect("still open a whole period after it started");
    assert!(ended.unwrap().is_ok(), "an idle connection closes cleanly");
}

/// An idle timer that fires while the connection is busy (its wake-up and
/// a message arrive together) is set going again: once the peer falls
/// quiet, the driver is still woken to close the connection. The driver is
/// polled by hand, with a waker that counts, to see whether it would be
/// woken at all.
#[tokio::test(start_paused = true)]
async fn an_idle_timer_that_fires_during_a_busy_turn_is_set_going_again() {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context as TaskContext, Wake, Waker};

    use futures::{SinkExt, StreamExt};

    struct Wakes(AtomicUsize);
    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let idle = Duration::from_millis(200);
    let (ours, mut theirs) = memory_pair();
    let (_server, driver) = ping_server(ours, idle);
    let mut driver = pin!(driver);
    let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = TaskContext::from_waker(&waker);

    // Quiet: the timer is set for 200 ms, and fires.
    assert!(driver.as_mut().poll(&mut cx).is_pending());
    tokio::time::advance(idle + Duration::from_millis(1)).await;
    assert!(
        wakes.0.load(Ordering::SeqCst) > 0,
        "the idle timer woke nobody"
    );
    // A message is there when the driver runs: a busy turn.
    theirs
        .send(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#.to_owned())
        .await
        .unwrap();
    assert!(driver.as_mut().poll(&mut cx).is_pending());
    let reply = theirs.next().await.unwrap().unwrap();
    assert!(reply.contains(r#""result":"pong""#), "{reply}");

    // Then quiet for a whole period: the driver must be woken.
    let before = wakes.0.load(Ordering::SeqCst);
    tokio::time::advance(idle + Duration::from_millis(1)).await;
    assert!(
        wakes.0.load(Ordering::SeqCst) > before,
        "the idle timer was not set going again after firing on a busy turn"
    );
    let ended = tokio::time::timeout(idle, driver)
        .await
        .expect("the idle connection did not close");
    assert!(ended.is_ok(), "an idle connection closes cleanly");
}

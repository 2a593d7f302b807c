//! Scheduling, abandoned calls, slow group members, reconnect and batch
//! deadlines: situations found by a concurrency review, each of which once failed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use rpcpeer::transport::{memory_pair, MemoryTransport};
use rpcpeer::{Concurrency, Config, Context, Driver, ErrorObject, Peer, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

async fn recv(w: &mut MemoryTransport) -> Value {
    let text = within("frame", w.next()).await.unwrap().unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Frames up to "marker": a request "slow" may be absent, or followed by its cancel.
async fn assert_sent_then_cancelled(w: &mut MemoryTransport) {
    let mut sent = false;
    loop {
        let f = recv(w).await;
        match f["method"].as_str() {
            Some("slow") => sent = true,
            Some("$/cancelRequest") => sent = false,
            Some("marker") => break,
            _ => {}
        }
    }
    assert!(!sent, "the dropped call was sent and never cancelled");
}

#[derive(Default)]
struct St {
    log: Mutex<Vec<&'static str>>,
    gate: Notify,
    started: Notify,
    done: Notify,
}

/// An in-order notification pipelined after an exclusive call does not run
/// before it ("later calls wait for it").
#[tokio::test]
async fn an_in_order_call_waits_for_an_earlier_exclusive_one() {
    let st = Arc::new(St::default());
    let mut router = Router::with_state(st.clone());
    router
        .method("e1", |cx: Context<Arc<St>>| async move {
            cx.state().log.lock().unwrap().push("e1");
            cx.state().started.notify_one();
            cx.state().gate.notified().await;
            Ok::<_, ErrorObject>(())
        })
        .concurrency(Concurrency::Exclusive);
    router.method("c", |cx: Context<Arc<St>>| async move {
        cx.state().log.lock().unwrap().push("c");
        Ok::<_, ErrorObject>(())
    });
    router
        .method("e2", |cx: Context<Arc<St>>| async move {
            cx.state().log.lock().unwrap().push("e2");
            Ok::<_, ErrorObject>(())
        })
        .concurrency(Concurrency::Exclusive);
    router.notification("n", |cx: Context<Arc<St>>| async move {
        cx.state().log.lock().unwrap().push("n");
        cx.state().done.notify_one();
    });
    let (a, mut w) = memory_pair();
    let (_peer, driver) = Driver::new(a, router);
    tokio::spawn(driver);
    for f in [
        r#"{"jsonrpc":"2.0","method":"e1","id":1}"#,
        r#"{"jsonrpc":"2.0","method":"c","id":2}"#,
        r#"{"jsonrpc":"2.0","method":"e2","id":3}"#,
        r#"{"jsonrpc":"2.0","method":"n"}"#,
    ] {
        w.send(f.to_owned()).await.unwrap();
    }
    within("e1 starts", st.started.notified()).await;
    st.gate.notify_one();
    for _ in 0..3 {
        recv(&mut w).await;
    }
    within("n runs", st.done.notified()).await;
    let log = st.log.lock().unwrap().clone();
    let e2 = log.iter().position(|s| *s == "e2").unwrap();
    let n = log.iter().position(|s| *s == "n").unwrap();
    assert!(e2 < n, "n (sent after exclusive e2) ran first: {log:?}");
}

/// A request future dropped right after it was queued, before the driver
/// took the command: the call must not be sent (or, if sent, be cancelled).
#[tokio::test]
async fn a_call_dropped_before_the_driver_saw_it_is_never_sent() {
    let (a, mut w) = memory_pair();
    let (peer, driver) = Driver::new(a, Router::new());
    tokio::spawn(driver);
    // Poll once: the command is queued, then the future is dropped.
    assert!(peer.request::<Value>("slow", ()).now_or_never().is_none());
    peer.notify("marker", ()).await.unwrap();
    assert_sent_then_cancelled(&mut w).await;
}

/// `work`: a handler that takes a few turns, so that calls pile up.
fn work_router() -> Router {
    let mut router = Router::new();
    router.method("work", || async {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        Ok::<_, ErrorObject>(1)
    });
    router
}

/// An abandoned call must not stay pending: a pending call makes the driver
/// read past its queue bound, so a pipelining client would be refused
/// "server busy" instead of being slowed down.
#[tokio::test]
async fn an_abandoned_call_does_not_turn_back_pressure_into_busy_errors() {
    let router = work_router();
    let config = Config::default().max_in_flight(1).max_queued(1);
    let (a, mut w) = memory_pair();
    let (peer, driver) = Driver::builder(a, router).config(config).build();
    tokio::spawn(driver);
    // A handler (or anyone) gives up on a call at the wrong moment.
    assert!(peer.request::<Value>("cb", ()).now_or_never().is_none());
    for id in 0..20 {
        let f = json!({"jsonrpc":"2.0","method":"work","id":id}).to_string();
        w.send(f).await.unwrap();
    }
    let mut busy = 0;
    let mut n = 0;
    while n < 20 {
        let r = recv(&mut w).await;
        if r.get("method").is_some() {
            continue; // the `cb` request, if it was sent
        }
        n += 1;
        if r.get("error").is_some() {
            busy += 1;
        }
    }
    assert_eq!(busy, 0, "{busy} of 20 pipelined requests were refused busy");
}

/// The same pipelining without an abandoned call: none is refused.
#[tokio::test]
async fn pipelining_past_the_queue_gets_no_busy_errors() {
    let router = work_router();
    let config = Config::default().max_in_flight(1).max_queued(1);
    let (a, mut w) = memory_pair();
    let (_peer, driver) = Driver::builder(a, router).config(config).build();
    tokio::spawn(driver);
    for id in 0..20 {
        let f = json!({"jsonrpc":"2.0","method":"work","id":id}).to_string();
        w.send(f).await.unwrap();
    }
    for _ in 0..20 {
        let r = recv(&mut w).await;
        assert!(r.get("error").is_none(), "{r}");
    }
}

/// The realistic trigger: `request_timeout` fires while the command still
/// waits in the driver's queue (the outbox is full because the peer is slow).
#[tokio::test(start_paused = true)]
async fn a_request_that_times_out_in_the_command_queue_is_never_sent() {
    let (a, mut w) = memory_pair();
    let config = Config::default()
        .max_outbox(1)
        .request_timeout(Some(Duration::from_millis(50)));
    let (peer, driver) = Driver::builder(a, Router::new()).config(config).build();
    tokio::spawn(driver);
    // 64 frames fill the memory pair, one more fills the outbox.
    for _ in 0..66 {
        peer.notify("fill", ()).await.unwrap();
    }
    let err = peer.request::<Value>("slow", ()).await.unwrap_err();
    assert!(matches!(err, rpcpeer::Error::Timeout { .. }), "{err}");
    // The peer reads again.
    for _ in 0..66 {
        assert_eq!(recv(&mut w).await["method"], "fill");
    }
    peer.notify("marker", ()).await.unwrap();
    assert_sent_then_cancelled(&mut w).await;
}

/// SlowMember::Disconnect: a member that lags while its send waits (a burst
/// of pushes) is disconnected, not silently trimmed.
#[tokio::test]
async fn a_burst_past_a_stuck_member_disconnects_it() {
    disconnect_case(true).await;
}

/// The same pushes one at a time disconnect the member too.
#[tokio::test]
async fn pushes_one_at_a_time_past_a_stuck_member_disconnect_it() {
    disconnect_case(false).await;
}

async fn disconnect_case(burst: bool) {
    use rpcpeer::group::{Group, SlowMember};
    let (a, _w) = memory_pair(); // never read
    let config = Config::default().max_outbox(1).command_queue(1);
    let (peer, driver) = Driver::builder(a, Router::new()).config(config).build();
    tokio::spawn(driver);
    // 64 frames in the pair, 1 in the outbox, 1 in the command queue.
    for _ in 0..66 {
        peer.notify("fill", ()).await.unwrap();
    }
    let room = Group::new(2, SlowMember::Disconnect);
    let member = room.join(peer.clone()).unwrap();
    room.notify("p", [0]).unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await; // forwarder now waits on its send
    }
    for i in 1..=10 {
        room.notify("p", [i]).unwrap(); // a burst: 10 behind, capacity 2
        if !burst {
            tokio::task::yield_now().await;
        }
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !room.contains(member.id()),
        "a member 10 pushes behind (capacity 2, Disconnect) is still in the group"
    );
}

/// `ReconnectingPeer::close` while the on_connect hook waits releases callers.
#[tokio::test]
async fn close_during_on_connect_releases_callers() {
    use rpcpeer::reconnect::Reconnect;
    let joined = Arc::new(Notify::new());
    let j = joined.clone();
    let client = Reconnect::new()
        .on_connect(|peer| async move { peer.request::<Value>("join", ()).await.map(drop) })
        .spawn(move || {
            let j = j.clone();
            async move {
                let (a, mut b) = memory_pair();
                // A server that reads `join` and never answers it.
                tokio::spawn(async move {
                    while b.next().await.is_some() {
                        j.notify_one();
                    }
                });
                Ok::<_, std::io::Error>(a)
            }
        });
    within("join sent", joined.notified()).await; // the hook is running
    client.close();
    let r = tokio::time::timeout(Duration::from_secs(5), client.peer()).await;
    assert!(r.is_ok(), "peer() still waiting 5 s after close()");
}

/// A batch's timeout covers the whole batch, not each entry in turn.
#[tokio::test(start_paused = true)]
async fn a_batch_has_one_deadline_for_all_its_entries() {
    let (a, _w) = memory_pair(); // answers nothing
    let config = Config::default().request_timeout(Some(Duration::from_secs(1)));
    let (peer, driver) = Driver::builder(a, Router::new()).config(config).build();
    tokio::spawn(driver);
    let mut batch = rpcpeer::Batch::new();
    for _ in 0..10 {
        batch.request("x", ());
    }
    let t0 = tokio::time::Instant::now();
    let answers = peer.batch(batch).await.unwrap();
    assert!(answers
        .iter()
        .all(|a| matches!(a, Err(rpcpeer::Error::Timeout { .. }))));
    assert!(
        t0.elapsed() <= Duration::from_secs(2),
        "batch with a 1 s timeout took {:?}",
        t0.elapsed()
    );
}

/// `max_queued(0)` is taken as the smallest queue, and calls are still read.
#[tokio::test]
async fn max_queued_zero_still_reads() {
    let mut router = Router::new();
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let (a, mut w) = memory_pair();
    let (_peer, driver) = Driver::builder(a, router)
        .config(Config::default().max_queued(0))
        .build();
    tokio::spawn(driver);
    w.send(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#.to_owned())
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), w.next()).await;
    assert!(r.is_ok(), "no answer to a ping with max_queued(0)");
}

#[derive(Default)]
struct Hold {
    running: std::sync::atomic::AtomicBool,
    started: Notify,
    gate: Notify,
}

/// A method on its own task keeps its turn: an exclusive one must not start
/// while another call runs, even though it runs on a task of its own.
#[tokio::test]
async fn an_exclusive_method_on_its_own_task_waits_for_its_turn() {
    use std::sync::atomic::Ordering::SeqCst;
    let st = Arc::new(Hold::default());
    let mut router = Router::with_state(st.clone());
    router.method("hold", |cx: Context<Arc<Hold>>| async move {
        cx.state().running.store(true, SeqCst);
        cx.state().started.notify_one();
        cx.state().gate.notified().await;
        cx.state().running.store(false, SeqCst);
        Ok::<_, ErrorObject>(())
    });
    router
        .method("solo", |cx: Context<Arc<Hold>>| async move {
            // What an exclusive call must never see: another call running.
            Ok::<_, ErrorObject>(cx.state().running.load(SeqCst))
        })
        .concurrency(Concurrency::Exclusive)
        .own_task();
    let (a, mut w) = memory_pair();
    let (_peer, driver) = Driver::new(a, router);
    tokio::spawn(driver);
    w.send(r#"{"jsonrpc":"2.0","method":"hold","id":1}"#.to_owned())
        .await
        .unwrap();
    within("hold starts", st.started.notified()).await;
    w.send(r#"{"jsonrpc":"2.0","method":"solo","id":2}"#.to_owned())
        .await
        .unwrap();
    // Answered at once, without a turn: once its reply is back, `solo` has
    // been read (and, were it started early, its task spawned before this
    // test task is woken on this one-thread runtime).
    w.send(r#"{"jsonrpc":"2.0","id":3}"#.to_owned())
        .await
        .unwrap();
    let invalid = recv(&mut w).await;
    assert_eq!(invalid["id"], 3, "{invalid}");
    st.gate.notify_one();
    let mut replies = [recv(&mut w).await, recv(&mut w).await];
    replies.sort_by_key(|r| r["id"].as_u64());
    assert_eq!(
        replies[1]["result"], false,
        "the exclusive `solo` ran while `hold` was running: {replies:?}"
    );
}

/// While a handler waits for its call back, the driver reads past its
/// queue bound and answers "busy". A batch refused that way must be
/// answered at once like a single request: queued, it would hold its
/// replies in memory past the bound, and a peer sending batches could
/// grow the queue without limit.
#[tokio::test]
async fn a_batch_refused_busy_is_answered_at_once_not_queued_past_the_bound() {
    let mut router = Router::new();
    router.method("ask", |cx: Context| async move {
        cx.peer().request::<Value>("cb", ()).await.ok();
        Ok::<_, ErrorObject>(())
    });
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let config = Config::default().max_in_flight(1).max_queued(1);
    let (a, mut w) = memory_pair();
    let (_peer, driver) = Driver::builder(a, router).config(config).build();
    tokio::spawn(driver);
    w.send(r#"{"jsonrpc":"2.0","method":"ask","id":1}"#.to_owned())
        .await
        .unwrap();
    let cb = recv(&mut w).await;
    assert_eq!(cb["method"], "cb", "{cb}");
    // `ask` holds the one slot and `ping` fills the queue.
    w.send(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#.to_owned())
        .await
        .unwrap();
    for id in 10..13 {
        let batch = json!([{"jsonrpc":"2.0","method":"ping","id":id}]).to_string();
        w.send(batch).await.unwrap();
    }
    w.send(r#"{"jsonrpc":"2.0","method":"ping","id":"single"}"#.to_owned())
        .await
        .unwrap();
    let first = recv(&mut w).await;
    assert!(
        first.is_array(),
        "the busy batches were queued past the bound; first reply: {first}"
    );
    assert_eq!(first[0]["error"]["code"], -32000, "{first}");
}

/// Sends a request that is answered as soon as it is read, and checks that
/// no answer comes: the connection stopped reading at its bound.
async fn assert_stopped_reading(w: &mut MemoryTransport, what: &str) {
    send(
        w,
        r#"{"jsonrpc":"2.0","method":"echo","params":["ping"],"id":"p"}"#,
    )
    .await;
    settle().await;
    assert!(
        w.next().now_or_never().is_none(),
        "read past the bound {what}"
    );
}

/// The ids of a batch's replies, in the order they stand in its array.
fn ids_of(answer: &Value) -> Vec<Value> {
    let replies = answer.as_array().expect("a batch's reply array");
    replies.iter().map(|r| r["id"].clone()).collect()
}

/// Starts a driver of `router` on one end of a memory pair; its peer and
/// the other end.
fn driven<S: Send + Sync + 'static>(router: Router<S>, config: Config) -> (Peer, MemoryTransport) {
    let (a, w) = memory_pair();
    let (peer, driver) = Driver::builder(a, router).config(config).build();
    tokio::spawn(driver);
    (peer, w)
}

/// Starts `hold` h1 (id 1), which waits at the gate.
async fn hold_h1(w: &mut MemoryTransport, steps: &Steps) {
    send(
        w,
        r#"{"jsonrpc":"2.0","method":"hold","params":["h1"],"id":1}"#,
    )
    .await;
    within("h1 starts", steps.started.notified()).await;
}

/// `cb` answers what its caller's `ping` answers; `c` answers 41.
fn calling_back_server() -> Router {
    let mut server = Router::new();
    server.method("cb", |cx: Context| async move {
        let n: i64 = cx.peer().request("ping", ()).await?;
        Ok::<_, ErrorObject>(n)
    });
    server.method("c", || async { Ok::<_, ErrorObject>(41) });
    server
}

/// Sends `batch` from a client whose `ping` calls `c` of `server` before
/// it answers (`c` + 1); the batch's results, as JSON text.
async fn batch_with_callbacks(
    server: Router,
    config: Config,
    batch: rpcpeer::Batch,
) -> Vec<String> {
    let mut client = Router::new();
    client.method("ping", |cx: Context| async move {
        let n: i64 = cx.peer().request("c", ()).await?;
        Ok::<_, ErrorObject>(n + 1)
    });
    let (a, b) = memory_pair();
    let (_server, driver) = Driver::builder(a, server).config(config).build();
    tokio::spawn(driver);
    let (peer, driver) = Driver::new(b, client);
    tokio::spawn(driver);
    let replies = within("the batch", peer.batch(batch)).await.unwrap();
    replies
        .into_iter()
        .map(|r| r.unwrap().get().to_owned())
        .collect()
}

/// Sends one frame to the driver.
async fn send(w: &mut MemoryTransport, text: &str) {
    w.send(text.to_owned()).await.unwrap();
}

/// Lets the driver, on this one-thread runtime, read what was sent.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// A log of starts and ends, and a gate each call of "hold" waits at.
#[derive(Default)]
struct Steps {
    log: Mutex<Vec<String>>,
    gate: Notify,
    started: Notify,
}

impl Steps {
    /// Logs its start, waits at the gate, logs its end.
    async fn step(&self, tag: &str) {
        self.log.lock().unwrap().push(format!("{tag} start"));
        self.started.notify_one();
        self.gate.notified().await;
        self.log.lock().unwrap().push(format!("{tag} end"));
    }
}

/// `hold` (concurrent) logs its start, waits at the gate, logs its end;
/// so does the notification `apply` (in order); `alone` (exclusive) only
/// logs; `echo` answers its param.
fn steps_router(steps: Arc<Steps>) -> Router<Arc<Steps>> {
    let mut router = Router::with_state(steps);
    router.method("echo", |(text,): (String,)| async move {
        Ok::<_, ErrorObject>(text)
    });
    router.method(
        "hold",
        |(tag,): (String,), cx: Context<Arc<Steps>>| async move {
            cx.state().step(&tag).await;
            Ok::<_, ErrorObject>(())
        },
    );
    router
        .method(
            "alone",
            |(tag,): (String,), cx: Context<Arc<Steps>>| async move {
                cx.state().log.lock().unwrap().push(tag);
                Ok::<_, ErrorObject>(())
            },
        )
        .concurrency(Concurrency::Exclusive);
    router.notification(
        "apply",
        |(tag,): (String,), cx: Context<Arc<Steps>>| async move { cx.state().step(&tag).await },
    );
    router
}

/// Spec §6 lets a batch run its own entries in any order, not drop the
/// rules of its entries against the calls outside it: a batched exclusive
/// call waits for what runs, and a batched in-order notification for the
/// in-order notification sent before it.
#[tokio::test]
async fn a_batched_call_keeps_its_rule_against_the_calls_outside_the_batch() {
    let steps = Arc::new(Steps::default());
    let (_peer, mut w) = driven(steps_router(steps.clone()), Config::default());
    let log = || steps.log.lock().unwrap().clone();

    // An exclusive call in a batch, while a call outside it runs.
    hold_h1(&mut w, &steps).await;
    send(
        &mut w,
        r#"[{"jsonrpc":"2.0","method":"alone","params":["x1"],"id":2}]"#,
    )
    .await;
    // NB: the test's runtime has one thread: the driver reads the batch
    // while this task yields (and anything that would answer it, even an
    // unknown method, waits behind the exclusive call).
    settle().await;
    assert_eq!(log(), ["h1 start"], "x1 ran beside h1");
    steps.gate.notify_one();
    assert_eq!(recv(&mut w).await["id"], 1);
    assert_eq!(recv(&mut w).await[0]["id"], 2);
    assert_eq!(log(), ["h1 start", "h1 end", "x1"]);

    // An in-order notification in a batch, after one sent alone.
    steps.log.lock().unwrap().clear();
    send(
        &mut w,
        r#"{"jsonrpc":"2.0","method":"apply","params":["n1"]}"#,
    )
    .await;
    within("n1 starts", steps.started.notified()).await;
    send(&mut w, r#"[{"jsonrpc":"2.0","method":"apply","params":["n2"]},{"jsonrpc":"2.0","method":"alone","params":["x2"],"id":4}]"#).await;
    settle().await;
    assert_eq!(log(), ["n1 start"], "the batch ran beside n1");
    steps.gate.notify_one();
    within("n2 starts", steps.started.notified()).await;
    steps.gate.notify_one();
    let answer = recv(&mut w).await;
    assert_eq!(answer[0]["id"], 4, "{answer}");
    let order = log();
    assert_eq!(&order[..2], ["n1 start", "n1 end"], "{order:?}");
    assert_eq!(order.len(), 5, "{order:?}");
}

/// An exclusive entry keeps its rule only while it runs: the batch's
/// entries after it, and the calls they make back, are not held until the
/// whole batch ends. `cb` asks the client, which asks us in turn before
/// it answers.
#[tokio::test]
async fn a_batched_exclusive_call_does_not_hold_the_calls_after_it() {
    let mut server = calling_back_server();
    server
        .method("login", || async { Ok::<_, ErrorObject>(true) })
        .concurrency(Concurrency::Exclusive);
    let mut batch = rpcpeer::Batch::new();
    batch.request("login", ()).request("cb", ());
    let replies = batch_with_callbacks(server, Config::default(), batch).await;
    assert_eq!(replies, ["true", "42"]);
}

/// An in-order entry holds the in-order calls after the batch only while
/// it runs, not while a slow concurrent entry beside it does.
#[tokio::test]
async fn a_batched_in_order_call_does_not_hold_later_ones_for_the_whole_batch() {
    let steps = Arc::new(Steps::default());
    let mut router = steps_router(steps.clone());
    router.notification(
        "note",
        |(tag,): (String,), cx: Context<Arc<Steps>>| async move {
            cx.state().log.lock().unwrap().push(tag);
        },
    );
    let (_peer, mut w) = driven(router, Config::default());
    let log = || steps.log.lock().unwrap().clone();
    send(&mut w, r#"[{"jsonrpc":"2.0","method":"hold","params":["h1"],"id":1},{"jsonrpc":"2.0","method":"note","params":["n1"]}]"#).await;
    within("h1 starts", steps.started.notified()).await;
    send(
        &mut w,
        r#"{"jsonrpc":"2.0","method":"note","params":["n2"]}"#,
    )
    .await;
    settle().await;
    assert_eq!(log(), ["h1 start", "n1", "n2"], "n2 waited for h1");
    steps.gate.notify_one();
    let answer = recv(&mut w).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(answer[0]["id"], 1, "{answer}");
}

/// A handler that runs as its call is read (`SyncFn`) keeps its rule in a
/// batch too: an exclusive one does not run beside a call that runs.
#[tokio::test]
async fn a_batched_sync_exclusive_call_waits_for_what_runs() {
    let steps = Arc::new(Steps::default());
    let mut router = steps_router(steps.clone());
    router
        .method(
            "now",
            rpcpeer::sync_fn(|cx: Context<Arc<Steps>>| {
                cx.state().log.lock().unwrap().push("now".to_owned());
                Ok::<_, ErrorObject>(())
            }),
        )
        .concurrency(Concurrency::Exclusive);
    let (_peer, mut w) = driven(router, Config::default());
    let log = || steps.log.lock().unwrap().clone();
    hold_h1(&mut w, &steps).await;
    send(&mut w, r#"[{"jsonrpc":"2.0","method":"now","id":2},{"jsonrpc":"2.0","method":"alone","params":["x"],"id":3}]"#).await;
    settle().await;
    assert_eq!(log(), ["h1 start"], "the batch ran beside h1");
    steps.gate.notify_one();
    assert_eq!(recv(&mut w).await["id"], 1);
    let answer = recv(&mut w).await;
    assert_eq!(answer[0]["id"], 2, "{answer}");
    assert_eq!(answer[1]["id"], 3, "{answer}");
    assert_eq!(log(), ["h1 start", "h1 end", "now", "x"]);
}

/// `hold` (exclusive) never ends; `ping` answers at once.
fn parted_router() -> Router {
    let mut router = Router::new();
    router
        .method("hold", || async {
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(true)
        })
        .concurrency(Concurrency::Exclusive);
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    router
}

const PARTED: &str = r#"[{"jsonrpc":"2.0","method":"ping","id":1},{"jsonrpc":"2.0","method":"hold","id":2},{"jsonrpc":"2.0","method":"ping","id":3}]"#;

/// A batch cut at its exclusive entry still gets one reply array, in
/// request order, when that entry is cancelled and the part after it runs.
#[tokio::test]
async fn a_batch_cut_into_parts_is_answered_in_one_array_after_a_cancel() {
    let (_peer, mut w) = driven(parted_router(), Config::default());
    send(&mut w, PARTED).await;
    settle().await;
    send(
        &mut w,
        r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}"#,
    )
    .await;
    let answer = recv(&mut w).await;
    let ids = ids_of(&answer);
    assert_eq!(ids, [1, 2, 3], "{answer}");
    assert_eq!(answer[0]["result"], "pong", "{answer}");
    assert_eq!(answer[1]["error"]["code"], -32800, "{answer}");
    assert_eq!(answer[2]["result"], "pong", "{answer}");
}

/// A batch cut into parts whose parts still run or wait when the drain
/// deadline passes is answered in one array: each entry that ran keeps its
/// answer, the rest say they were cut off.
#[tokio::test]
async fn a_batch_cut_into_parts_is_answered_in_one_array_at_the_drain_deadline() {
    let config = Config::default().drain_timeout(Duration::from_millis(100));
    let (peer, mut w) = driven(parted_router(), config);
    send(&mut w, PARTED).await;
    settle().await;
    within("the close", peer.close()).await;
    let mut frames = Vec::new();
    while let Some(Ok(text)) = within("a frame", w.next()).await {
        frames.push(serde_json::from_str::<Value>(&text).unwrap());
    }
    assert_eq!(frames.len(), 1, "{frames:?}");
    let answer = &frames[0];
    let ids = ids_of(answer);
    assert_eq!(ids, [1, 2, 3], "{answer}");
    assert_eq!(answer[0]["result"], "pong", "{answer}");
    assert_eq!(answer[1]["error"]["code"], -32003, "{answer}");
    assert_eq!(answer[2]["error"]["code"], -32003, "{answer}");
}

/// A driven `steps_router` with a 16 KiB `max_incoming_bytes`, its
/// in-order notification `n1` running and held at the gate.
async fn bounded_behind_n1(steps: &Arc<Steps>) -> (Peer, MemoryTransport) {
    let config = Config::default().max_incoming_bytes(16 * 1024);
    let (peer, mut w) = driven(steps_router(steps.clone()), config);
    send(
        &mut w,
        r#"{"jsonrpc":"2.0","method":"apply","params":["n1"]}"#,
    )
    .await;
    within("n1 starts", steps.started.notified()).await;
    (peer, w)
}

/// A batch cut into parts is charged its whole frame until it is answered:
/// the parts that have ended hold their replies until then. Before, each
/// part gave its share back as it ended, and a connection read on past its
/// `max_incoming_bytes` while batches behind a waiting in-order entry
/// piled up.
#[tokio::test]
async fn a_batch_cut_into_parts_holds_its_bytes_until_answered() {
    let steps = Arc::new(Steps::default());
    let (_peer, mut w) = bounded_behind_n1(&steps).await;
    let text = "x".repeat(4000);
    for batch in 0..4 {
        let mut entries: Vec<Value> = (0..3)
            .map(|i| json!({"jsonrpc":"2.0","method":"echo","params":[text],"id":batch * 10 + i}))
            .collect();
        entries.push(json!({"jsonrpc":"2.0","method":"apply","params":[format!("b{batch}")]}));
        send(&mut w, &Value::from(entries).to_string()).await;
    }
    assert_stopped_reading(&mut w, "while the batches waited").await;
    // From here on, each in-order entry is let through as it starts.
    steps.gate.notify_one();
    let opener = tokio::spawn({
        let steps = steps.clone();
        async move {
            loop {
                steps.started.notified().await;
                steps.gate.notify_one();
            }
        }
    });
    let mut batches = Vec::new();
    let mut ping = 0;
    for _ in 0..5 {
        let answer = recv(&mut w).await;
        match answer.as_array() {
            Some(replies) => batches.push((replies.len(), replies[0]["id"].clone())),
            None if answer["id"] == "p" => ping += 1,
            None => panic!("unexpected {answer}"),
        }
    }
    opener.abort();
    assert_eq!(ping, 1);
    assert_eq!(
        batches,
        [
            (3, json!(0)),
            (3, json!(10)),
            (3, json!(20)),
            (3, json!(30))
        ]
    );
}

/// The concurrent entries of a batch cut into parts share one handler
/// slot, as a whole batch does: a part each would let a batch of callbacks
/// take every slot, leaving none for the calls its caller makes back.
#[tokio::test]
async fn a_batch_cut_into_parts_takes_one_slot_for_its_concurrent_entries() {
    let mut server = calling_back_server();
    server.notification("note", || async {});
    let mut batch = rpcpeer::Batch::new();
    for _ in 0..3 {
        batch.request("cb", ()).notify("note", ());
    }
    let config = Config::default().max_in_flight(2);
    let replies = batch_with_callbacks(server, config, batch).await;
    assert_eq!(replies, ["42", "42", "42"]);
}

/// A batched exclusive call cancelled while it waits for its turn is
/// answered -32800 at once and holds nothing back, as one sent alone.
#[tokio::test]
async fn a_cancelled_batched_exclusive_call_leaves_the_queue() {
    let steps = Arc::new(Steps::default());
    let router = steps_router(steps.clone());
    let (_peer, mut w) = driven(router, Config::default());
    hold_h1(&mut w, &steps).await;
    send(
        &mut w,
        r#"[{"jsonrpc":"2.0","method":"alone","params":["x"],"id":2}]"#,
    )
    .await;
    send(
        &mut w,
        r#"{"jsonrpc":"2.0","method":"echo","params":["e"],"id":3}"#,
    )
    .await;
    send(
        &mut w,
        r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}"#,
    )
    .await;
    let cancelled = recv(&mut w).await;
    assert_eq!(cancelled[0]["error"]["code"], -32800, "{cancelled}");
    assert_eq!(recv(&mut w).await["id"], 3, "the call after it ran");
    steps.gate.notify_one();
    assert_eq!(recv(&mut w).await["id"], 1);
    assert_eq!(steps.log.lock().unwrap().clone(), ["h1 start", "h1 end"]);
}

/// A batch whose first part is cancelled while it waits stays charged
/// until the batch is answered: once, that part carried the batch's
/// charge, its bytes left the count with it, and a connection read batches
/// past its bound.
#[tokio::test]
async fn a_batch_whose_first_part_is_cancelled_still_holds_its_bytes() {
    let steps = Arc::new(Steps::default());
    let (_peer, mut w) = bounded_behind_n1(&steps).await;
    let text = "x".repeat(4000);
    for batch in 0..8 {
        let frame = json!([
            {"jsonrpc":"2.0","method":"alone","params":["a"],"id":format!("x{batch}")},
            {"jsonrpc":"2.0","method":"echo","params":[text],"id":batch},
            {"jsonrpc":"2.0","method":"apply","params":[format!("b{batch}")]},
        ]);
        send(&mut w, &frame.to_string()).await;
        let cancel =
            json!({"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":format!("x{batch}")}});
        send(&mut w, &cancel.to_string()).await;
    }
    assert_stopped_reading(&mut w, "while the batches waited").await;
}

/// A batch of the entries `head` and 1,000 invalid ones (`1`): each of
/// those is two bytes of the frame and an error reply of about 90, held
/// until the batch is answered.
fn with_invalid_tail(head: &str) -> String {
    format!("[{head}{}]", ",1".repeat(1000))
}

/// The replies a batch holds from when it is read are charged with its
/// frame. Before, a connection with a 16 KiB `max_incoming_bytes` read on
/// while each batch of 2 KiB held 90 KiB of errors: some 50 times the
/// bound, in both kinds of batch (one job, and cut into parts).
#[tokio::test]
async fn the_replies_a_batch_holds_count_against_the_bound() {
    for cut_into_parts in [false, true] {
        let steps = Arc::new(Steps::default());
        let config = Config::default().max_incoming_bytes(16 * 1024);
        let (_peer, mut w) = driven(steps_router(steps.clone()), config);
        for batch in 0..4 {
            let head = if cut_into_parts {
                // An in-order entry, waiting behind the first batch's.
                json!({"jsonrpc":"2.0","method":"apply","params":[format!("b{batch}")]})
            } else {
                // A concurrent request that waits at the gate.
                json!({"jsonrpc":"2.0","method":"hold","params":[format!("b{batch}")],"id":batch})
            };
            let frame = if cut_into_parts {
                let echo = json!({"jsonrpc":"2.0","method":"echo","params":["e"],"id":batch});
                with_invalid_tail(&format!("{head},{echo}"))
            } else {
                with_invalid_tail(&head.to_string())
            };
            send(&mut w, &frame).await;
        }
        within("the first batch starts", steps.started.notified()).await;
        let what = format!("while held replies piled up (parts: {cut_into_parts})");
        assert_stopped_reading(&mut w, &what).await;
    }
}

//! Handlers that await nothing (`sync_fn`), over TCP on 127.0.0.1: every
//! shape answers as an `async` one would, a call still waits its turn, a
//! panic is still -32603.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{serve, within, Wire};
use rpcpeer::{sync_fn, Concurrency, Context, ErrorObject, Router};
use rpcpeer_stream::Framing;
use serde_json::{json, Value};
use tokio::sync::Notify;

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<String>>,
    started: Notify,
    gate: Notify,
}

impl Log {
    fn push(&self, what: &str) {
        self.seen.lock().unwrap().push(what.to_owned());
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(serde::Deserialize)]
struct Greet {
    name: String,
}

fn router(log: &Arc<Log>) -> Router<Arc<Log>> {
    let mut router = Router::with_state(log.clone());
    router.method("ping", sync_fn(|| Ok::<_, ErrorObject>("pong")));
    router.method(
        "double",
        sync_fn(|(x,): (i64,)| Ok::<_, ErrorObject>(2 * x)),
    );
    router.method(
        "whoami",
        sync_fn(|cx: Context<Arc<Log>>| Ok::<_, ErrorObject>(cx.method().to_string())),
    );
    router.method(
        "greet",
        sync_fn(|p: Greet, cx: Context<Arc<Log>>| {
            cx.state().push(&p.name);
            Ok::<_, ErrorObject>(format!("hi {}", p.name))
        }),
    );
    router.method(
        "refuse",
        sync_fn(|| Err::<(), _>(ErrorObject::new(-32001, "refused on purpose"))),
    );
    router.notification(
        "note",
        sync_fn(|(what,): (String,), cx: Context<Arc<Log>>| cx.state().push(&what)),
    );
    router.method(
        "boom",
        sync_fn(|| -> Result<(), ErrorObject> { panic!("`boom` panics on purpose") }),
    );
    router
        .method(
            "mark",
            sync_fn(|cx: Context<Arc<Log>>| {
                cx.state().push("mark");
                Ok::<_, ErrorObject>("marked")
            }),
        )
        .concurrency(Concurrency::Concurrent);
    router
        .method("gate", |cx: Context<Arc<Log>>| async move {
            cx.state().push("gate");
            cx.state().started.notify_one();
            cx.state().gate.notified().await;
            Ok::<_, ErrorObject>("opened")
        })
        .concurrency(Concurrency::Exclusive);
    router
        .method(
            "alone",
            sync_fn(|cx: Context<Arc<Log>>| {
                cx.state().push("alone");
                Ok::<_, ErrorObject>(std::thread::current().name().map(str::to_owned))
            }),
        )
        .own_task();
    router
        .method("timed", sync_fn(|| Ok::<_, ErrorObject>(1)))
        .timeout(Duration::from_secs(5));
    router.method(
        "told",
        sync_fn(|cx: Context<Arc<Log>>| {
            cx.peer().try_notify("progress", ["before the answer"])?;
            Ok::<_, ErrorObject>("answered")
        }),
    );
    router.method(
        "seen",
        sync_fn(|cx: Context<Arc<Log>>| Ok::<_, ErrorObject>(cx.state().seen())),
    );
    // An `async` handler that finishes on its first poll.
    router.method(
        "put",
        |(what,): (String,), cx: Context<Arc<Log>>| async move {
            cx.state().push(&what);
            Ok::<_, ErrorObject>(())
        },
    );
    router
}

/// A server of [`router`] on 127.0.0.1, its log, and a client connected to it.
async fn start(framing: Framing) -> (Arc<Log>, Wire) {
    let log = Arc::new(Log::default());
    let addr = serve(router(&log), framing).await;
    (log, Wire::connect(addr, framing).await)
}

#[tokio::test]
async fn every_shape_answers_as_an_async_handler_would() {
    let (log, mut wire) = start(Framing::Newline).await;
    let cases = [
        (
            r#"{"jsonrpc":"2.0","method":"ping","id":1}"#,
            json!({"jsonrpc":"2.0","result":"pong","id":1}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"double","params":[21],"id":2}"#,
            json!({"jsonrpc":"2.0","result":42,"id":2}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"whoami","id":"w"}"#,
            json!({"jsonrpc":"2.0","result":"whoami","id":"w"}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"greet","params":{"name":"ada"},"id":3}"#,
            json!({"jsonrpc":"2.0","result":"hi ada","id":3}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"refuse","id":4}"#,
            json!({"jsonrpc":"2.0","error":{"code":-32001,"message":"refused on purpose"},"id":4}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"timed","id":5}"#,
            json!({"jsonrpc":"2.0","result":1,"id":5}),
        ),
        // JSON-RPC 1.0: answered in its own form.
        (
            r#"{"method":"double","params":[2],"id":6}"#,
            json!({"result":4,"error":null,"id":6}),
        ),
    ];
    for (call, want) in cases {
        assert_eq!(wire.call(call).await, want, "for {call}");
    }
    // Params that do not fit: -32602 naming the problem, the handler not run.
    let wrong = wire
        .call(r#"{"jsonrpc":"2.0","method":"double","params":["x"],"id":7}"#)
        .await;
    assert_eq!(wrong["error"]["code"], -32602, "{wrong}");
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`double`"),
        "{wrong}"
    );
    let extra = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","params":[1],"id":8}"#)
        .await;
    assert_eq!(extra["error"]["code"], -32602, "{extra}");
    let missing = wire
        .call(r#"{"jsonrpc":"2.0","method":"greet","params":{},"id":9}"#)
        .await;
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    // A notification runs and is not answered; a batch answers its requests.
    wire.send(r#"{"jsonrpc":"2.0","method":"note","params":["noted"]}"#)
        .await;
    let batch = wire
        .call(
            r#"[{"jsonrpc":"2.0","method":"double","params":[1],"id":10},
                {"jsonrpc":"2.0","method":"note","params":["in a batch"]},
                {"jsonrpc":"2.0","method":"nope","id":11}]"#,
        )
        .await;
    let mut batch = batch
        .as_array()
        .expect("a batch's answer is an array")
        .clone();
    batch.sort_by_key(|reply| reply["id"].as_i64());
    assert_eq!(batch[0], json!({"jsonrpc":"2.0","result":2,"id":10}));
    assert_eq!(batch[1]["error"]["code"], -32601);
    assert_eq!(batch.len(), 2);
    assert_eq!(log.seen(), ["ada", "noted", "in a batch"]);
    // `own_task`: run on a task of its own, and answered all the same.
    let alone = wire
        .call(r#"{"jsonrpc":"2.0","method":"alone","id":12}"#)
        .await;
    assert_eq!(alone["id"], 12, "{alone}");
    assert!(alone.get("result").is_some(), "{alone}");
    assert_eq!(log.seen().last().map(String::as_str), Some("alone"));
}

/// A sync call read while an exclusive call runs waits for it, as the rule
/// says, rather than running as it is read.
#[tokio::test]
async fn a_sync_call_still_waits_its_turn() {
    let (log, mut wire) = start(Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"gate","id":1}"#)
        .await;
    within("`gate` starts", log.started.notified()).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"mark","id":2}"#)
        .await;
    wire.send(r#"{"jsonrpc":"2.0","method":"note","params":["note"]}"#)
        .await;
    wire.send(r#"[{"jsonrpc":"2.0","method":"greet","params":{"name":"batch"},"id":3}]"#)
        .await;
    // Answered at once, unscheduled: once it is back, everything sent
    // before it has been read.
    let invalid = wire.call(r#"{"jsonrpc":"2.0","id":99}"#).await;
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    assert_eq!(log.seen(), ["gate"], "a call ran past the exclusive one");
    log.gate.notify_one();
    let mut replies: Vec<Value> = Vec::new();
    for _ in 0..3 {
        replies.push(wire.recv().await);
    }
    assert_eq!(
        replies[0],
        json!({"jsonrpc":"2.0","result":"opened","id":1})
    );
    assert!(
        replies.contains(&json!({"jsonrpc":"2.0","result":"marked","id":2})),
        "{replies:?}"
    );
    assert!(
        replies.contains(&json!([{"jsonrpc":"2.0","result":"hi batch","id":3}])),
        "{replies:?}"
    );
    // Nothing else was answered: the next frame is this call's.
    let ping = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":4}"#)
        .await;
    assert_eq!(ping["id"], 4, "{ping}");
    let mut seen = log.seen();
    seen[1..].sort();
    assert_eq!(seen, ["gate", "batch", "mark", "note"]);
}

#[tokio::test]
async fn a_sync_handler_that_panics_is_answered_and_the_connection_goes_on() {
    let (log, mut wire) = start(Framing::ContentLength).await;
    let boom = wire
        .call(r#"{"jsonrpc":"2.0","method":"boom","id":1}"#)
        .await;
    assert_eq!(boom["error"]["code"], -32603, "{boom}");
    assert_eq!(boom["id"], 1);
    // As a notification: nothing to answer, and nothing torn down.
    wire.send(r#"{"jsonrpc":"2.0","method":"boom"}"#).await;
    // Behind an exclusive call, it runs from a future: the same answer.
    wire.send(r#"{"jsonrpc":"2.0","method":"gate","id":2}"#)
        .await;
    within("`gate` starts", log.started.notified()).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"boom","id":3}"#)
        .await;
    log.gate.notify_one();
    assert_eq!(wire.recv().await["id"], 2);
    let late = wire.recv().await;
    assert_eq!(
        (late["id"].clone(), late["error"]["code"].clone()),
        (json!(3), json!(-32603)),
        "{late}"
    );
    let ping = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":4}"#)
        .await;
    assert_eq!(ping["result"], "pong");
}

/// What a handler sends before its answer goes out before it, alone or in
/// a batch that is answered as it is read.
#[tokio::test]
async fn notifications_sent_by_a_sync_handler_go_before_its_answer() {
    let (_, mut wire) = start(Framing::Newline).await;
    for call in [
        r#"{"jsonrpc":"2.0","method":"told","id":1}"#,
        r#"[{"jsonrpc":"2.0","method":"told","id":2}]"#,
    ] {
        wire.send(call).await;
        let first = wire.recv().await;
        assert_eq!(first["method"], "progress", "for {call}: {first}");
        let answer = wire.recv().await;
        let answer = answer
            .as_array()
            .map_or(answer.clone(), |batch| batch[0].clone());
        assert_eq!(answer["result"], "answered", "for {call}: {answer}");
    }
}

/// A batch runs its entries in order when nothing makes them wait: a sync
/// entry after an `async` one that finishes at once sees what it did,
/// whether the connection is idle or not.
#[tokio::test]
async fn a_sync_entry_of_a_batch_does_not_pass_the_entries_before_it() {
    let (_, mut wire) = start(Framing::Newline).await;
    let batch = wire
        .call(
            r#"[{"jsonrpc":"2.0","method":"put","params":["first"],"id":1},
                {"jsonrpc":"2.0","method":"seen","id":2}]"#,
        )
        .await;
    let seen = batch
        .as_array()
        .and_then(|replies| replies.iter().find(|reply| reply["id"] == 2))
        .cloned();
    assert_eq!(
        seen.map(|reply| reply["result"].clone()),
        Some(json!(["first"])),
        "{batch}"
    );
}

//! Two real peers over TCP on 127.0.0.1: both directions, concurrency, ordering, cancellation, failures.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{add_sync, connect, connect_with, serve, serve_with, within, Wire, FRAMINGS};
use rpcpeer::{Batch, Concurrency, Config, Context, Driver, Error, ErrorObject, Router, Version};
use rpcpeer_stream::Framing;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Barrier, Notify};

fn remote(err: Error) -> ErrorObject {
    ErrorObject::new(-32000, err.to_string())
}

#[tokio::test]
async fn replies_come_back_out_of_order_on_one_connection() {
    let release = Arc::new(Notify::new());
    let mut router = Router::with_state(release);
    router.method("wait", |cx: Context<Arc<Notify>>| async move {
        cx.state().notified().await;
        Ok::<_, ErrorObject>("waited")
    });
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    router.notification("release", |cx: Context<Arc<Notify>>| async move {
        cx.state().notify_one()
    });

    for framing in FRAMINGS {
        let addr = serve(router.clone(), framing).await;
        let mut wire = Wire::connect(addr, framing).await;
        wire.send(r#"{"jsonrpc":"2.0","method":"wait","id":1}"#)
            .await;
        wire.send(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#)
            .await;
        // The second request is answered while the first still runs.
        assert_eq!(
            wire.recv().await,
            json!({"jsonrpc":"2.0","result":"pong","id":2})
        );
        wire.send(r#"{"jsonrpc":"2.0","method":"release"}"#).await;
        assert_eq!(
            wire.recv().await,
            json!({"jsonrpc":"2.0","result":"waited","id":1})
        );
    }
}

#[tokio::test]
async fn batch_entries_all_run_at_the_same_time() {
    // Each handler waits until all five are inside: run one at a time and
    // the first never returns, so this cannot pass by luck.
    let barrier = Arc::new(Barrier::new(5));
    let mut router = Router::with_state(barrier);
    router.method(
        "rendezvous",
        |(n,): (u32,), cx: Context<Arc<Barrier>>| async move {
            cx.state().wait().await;
            Ok::<_, ErrorObject>(n)
        },
    );
    for framing in FRAMINGS {
        let addr = serve(router.clone(), framing).await;
        let mut wire = Wire::connect(addr, framing).await;
        let batch: Vec<Value> = (0..5)
            .map(|n| json!({"jsonrpc":"2.0","method":"rendezvous","params":[n],"id":n}))
            .collect();
        let reply = wire.call(&serde_json::to_string(&batch).unwrap()).await;
        let results: Vec<Value> = reply
            .as_array()
            .expect("an array")
            .iter()
            .map(|r| r["result"].clone())
            .collect();
        assert_eq!(results, (0..5).map(|n| json!(n)).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_server_handler_calls_the_client_back_during_a_request() {
    let mut server = Router::new();
    server.method("greet", |cx: Context| async move {
        let name: String = cx.peer().request("name", ()).await.map_err(remote)?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    let mut client = Router::new();
    client.method("name", || async { Ok::<_, ErrorObject>("ada") });
    for framing in FRAMINGS {
        let addr = serve(server.clone(), framing).await;
        let (peer, _driver) = connect(addr, framing, client.clone()).await;
        let greeting: String = within("greet", peer.request("greet", ())).await.unwrap();
        assert_eq!(greeting, "hello, ada");
    }
}

#[tokio::test]
async fn the_server_pushes_notifications_to_the_client() {
    let mut server = Router::new();
    server.method("subscribe", |(n,): (u32,), cx: Context| async move {
        for i in 0..n {
            cx.peer().notify("tick", [i]).await.map_err(remote)?;
        }
        Ok::<_, ErrorObject>(n)
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut client = Router::with_state(tx);
    client.notification(
        "tick",
        |(i,): (u32,), cx: Context<mpsc::UnboundedSender<u32>>| async move {
            let _ = cx.state().send(i);
        },
    );
    let addr = serve(server, Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, client).await;
    assert_eq!(peer.request::<u32>("subscribe", [3]).await.unwrap(), 3);
    for want in 0..3 {
        assert_eq!(within("tick", rx.recv()).await, Some(want));
    }
}

#[tokio::test]
async fn a_handlers_notifications_reach_the_wire_before_its_reply() {
    // Each notification is queued for the connection while the handler
    // runs, and the reply is ready the moment the handler returns: if the
    // reply were written first, the caller would see its progress after
    // the answer. Inline, awaiting between reports, and on a task of its own.
    let mut server = Router::new();
    server.method("inline", |(n,): (u32,), cx: Context| async move {
        for i in 0..n {
            cx.peer().notify("tick", [i]).await.map_err(remote)?;
        }
        Ok::<_, ErrorObject>(n)
    });
    server.method("yielding", |(n,): (u32,), cx: Context| async move {
        for i in 0..n {
            cx.peer().notify("tick", [i]).await.map_err(remote)?;
            tokio::task::yield_now().await;
        }
        Ok::<_, ErrorObject>(n)
    });
    server
        .method("own_task", |(n,): (u32,), cx: Context| async move {
            for i in 0..n {
                cx.peer().notify("tick", [i]).await.map_err(remote)?;
            }
            Ok::<_, ErrorObject>(n)
        })
        .own_task();
    for framing in FRAMINGS {
        let addr = serve(server.clone(), framing).await;
        let mut wire = Wire::connect(addr, framing).await;
        for (id, method) in ["inline", "yielding", "own_task"].into_iter().enumerate() {
            // Past the command queue's 32 places, so the handler also
            // waits for room while its reports are taken.
            let n = 40;
            let call = json!({"jsonrpc":"2.0","method":method,"params":[n],"id":id});
            wire.send(&call.to_string()).await;
            for i in 0..n {
                assert_eq!(
                    wire.recv().await,
                    json!({"jsonrpc":"2.0","method":"tick","params":[i]}),
                    "{method} over {framing:?}: report {i}"
                );
            }
            assert_eq!(
                wire.recv().await,
                json!({"jsonrpc":"2.0","result":n,"id":id}),
                "{method} over {framing:?}: the reply comes last"
            );
        }
    }
}

#[tokio::test]
async fn pending_calls_fail_at_once_when_the_connection_drops() {
    // A server that reads one request and hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut framed = rpcpeer_stream::framed(socket, Framing::Newline, 1 << 20);
        let _ = futures::StreamExt::next(&mut framed).await;
    });
    let (peer, driver) = connect(addr, Framing::Newline, Router::new()).await;
    let err = within("the dropped call", peer.request::<Value>("anything", ()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Closed { ref method, .. } if method == "anything"),
        "{err}"
    );
    assert!(err.to_string().contains("closed"), "{err}");
    // Calls after the drop fail too, and the driver has ended.
    within("driver end", driver).await.unwrap().unwrap();
    let err = peer.request::<Value>("later", ()).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_error_and_the_connection_goes_on() {
    let mut router = Router::new();
    router.method("boom", || async {
        if true {
            panic!("deliberate test panic");
        }
        Ok::<_, ErrorObject>(())
    });
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"boom","id":1}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32603);
    assert_eq!(reply["id"], 1);
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#)
        .await;
    assert_eq!(reply, json!({"jsonrpc":"2.0","result":"pong","id":2}));
}

#[tokio::test]
async fn one_zero_requests_and_notifications_are_answered_in_their_own_form() {
    let seen = Arc::new(AtomicUsize::new(0));
    let mut router = Router::with_state(seen.clone());
    router.method(
        "echo",
        |(x,): (Value,)| async move { Ok::<_, ErrorObject>(x) },
    );
    router.method("fail", || async { Err::<(), _>(ErrorObject::new(7, "no")) });
    router.notification(
        "record",
        |_: Value, cx: Context<Arc<AtomicUsize>>| async move {
            cx.state().fetch_add(1, Ordering::SeqCst);
        },
    );
    router.method("push", |cx: Context<Arc<AtomicUsize>>| async move {
        cx.peer()
            .notify("handleMessage", ("user1", "hi"))
            .await
            .map_err(remote)?;
        Ok::<_, ErrorObject>(1)
    });
    add_sync(&mut router);
    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;

    let text = {
        wire.send(r#"{"method": "echo", "params": ["Hello JSON-RPC"], "id": 1}"#)
            .await;
        wire.recv_text().await.unwrap()
    };
    assert_eq!(text, r#"{"result":"Hello JSON-RPC","error":null,"id":1}"#);
    let reply = wire
        .call(r#"{"method": "fail", "params": [], "id": 2}"#)
        .await;
    assert_eq!(
        reply,
        json!({"result": null, "error": {"code": 7, "message": "no"}, "id": 2})
    );
    let reply = wire
        .call(r#"{"method": "nope", "params": [], "id": 3}"#)
        .await;
    assert_eq!(reply["result"], Value::Null);
    assert_eq!(reply["error"]["code"], -32601);
    // `"jsonrpc": "1.0"`, which some 1.0 clients write: read as 1.0.
    let reply = wire
        .call(r#"{"jsonrpc": "1.0", "method": "fail", "params": [], "id": 4}"#)
        .await;
    assert_eq!(
        reply,
        json!({"result": null, "error": {"code": 7, "message": "no"}, "id": 4})
    );
    // Invalid, but without a "jsonrpc" member: still refused in 1.0 form.
    for (text, id) in [
        (r#"{"method": 5, "params": [1], "id": 5}"#, json!(5)),
        (r#"{"method": null, "params": [1], "id": "s"}"#, json!("s")),
        (r#"{"params": [1], "id": 6}"#, json!(6)),
    ] {
        let reply = wire.call(text).await;
        let refused = json!({"result": null, "error": reply["error"].clone(), "id": id});
        assert_eq!(reply, refused, "{text}");
        assert_eq!(reply["error"]["code"], -32600, "{text}");
    }

    // Batches are a 2.0 feature: an entry without `"jsonrpc": "2.0"` is no
    // valid 2.0 request, refused -32600 under its id, in 2.0 form, and the
    // others run.
    let reply = wire
        .call(r#"[{"method": "echo", "params": ["b1"], "id": 10}, {"jsonrpc": "2.0", "method": "echo", "params": ["b2"], "id": 11}]"#)
        .await;
    assert_eq!(reply[0]["jsonrpc"], "2.0", "{reply}");
    assert_eq!(
        (&reply[0]["error"]["code"], &reply[0]["id"]),
        (&json!(-32600), &json!(10)),
        "{reply}"
    );
    assert!(reply[0].get("result").is_none(), "{reply}");
    assert_eq!(
        reply[1],
        json!({"jsonrpc": "2.0", "result": "b2", "id": 11})
    );

    // A 1.0 notification: id null, no reply, but the handler ran.
    wire.send(r#"{"method": "record", "params": [1], "id": null}"#)
        .await;
    wire.expect_no_reply().await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // Pushed to a peer that spoke 1.0: the 1.0 notification form.
    wire.send(r#"{"method": "push", "params": [], "id": 4}"#)
        .await;
    let mut frames = [wire.recv().await, wire.recv().await];
    frames.sort_by_key(|f| f.get("method").is_none());
    assert_eq!(
        frames[0],
        json!({"method": "handleMessage", "params": ["user1", "hi"], "id": null})
    );
    assert_eq!(frames[1], json!({"result": 1, "error": null, "id": 4}));
}

#[tokio::test]
async fn a_peer_set_to_one_zero_calls_out_in_one_zero() {
    let mut server = Router::new();
    server.method("version", |cx: Context| async move {
        Ok::<_, ErrorObject>(format!("{:?}", cx.version()))
    });
    let addr = serve(server, Framing::Newline).await;
    let config = Config::default().version(Some(Version::V1));
    let (peer, _driver) = connect_with(addr, Framing::Newline, Router::new(), config).await;
    assert_eq!(peer.request::<String>("version", ()).await.unwrap(), "V1");
}

#[tokio::test]
async fn notifications_apply_in_order_while_requests_overlap() {
    #[derive(Default)]
    struct Log {
        applied: Mutex<Vec<u32>>,
        release: Notify,
    }
    let mut router = Router::with_state(Log::default());
    router.notification("append", |(i,): (u32,), cx: Context<Log>| async move {
        // Different amounts of work per update: run them concurrently and
        // they finish out of order.
        for _ in 0..(i * 7 % 5) {
            tokio::task::yield_now().await;
        }
        cx.state().applied.lock().unwrap().push(i);
    });
    router.method("hold", |cx: Context<Log>| async move {
        cx.state().release.notified().await;
        Ok::<_, ErrorObject>(true)
    });
    router.notification("release", |cx: Context<Log>| async move {
        cx.state().release.notify_waiters()
    });
    router
        .method("applied", |cx: Context<Log>| async move {
            Ok::<_, ErrorObject>(cx.state().applied.lock().unwrap().clone())
        })
        .concurrency(Concurrency::Exclusive);

    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    for i in 0..100u32 {
        if i % 10 == 0 {
            // Requests that stay running while the updates go through.
            wire.send(&format!(r#"{{"jsonrpc":"2.0","method":"hold","id":{i}}}"#))
                .await;
        }
        wire.send(&format!(
            r#"{{"jsonrpc":"2.0","method":"append","params":[{i}]}}"#
        ))
        .await;
    }
    wire.send(r#"{"jsonrpc":"2.0","method":"release"}"#).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"applied","id":"log"}"#)
        .await;
    let mut log = None;
    for _ in 0..11 {
        let reply = wire.recv().await;
        if reply["id"] == "log" {
            log = Some(reply["result"].clone());
        }
    }
    assert_eq!(log.expect("the log"), json!((0..100).collect::<Vec<u32>>()));
}

#[tokio::test]
async fn dropping_an_outgoing_call_cancels_it_on_the_other_side() {
    let cancelled = Arc::new(Notify::new());
    let mut server = Router::with_state(cancelled.clone());
    server.method("forever", |cx: Context<Arc<Notify>>| async move {
        // Work spawned outside the handler sees the token too.
        let token = cx.cancellation().clone();
        let signal = cx.state().clone();
        tokio::spawn(async move {
            token.cancelled().await;
            signal.notify_one();
        });
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    let addr = serve(server, Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let call = peer.request::<Value>("forever", ());
    // Give up on the call: the future is dropped before any reply.
    assert!(tokio::time::timeout(Duration::from_millis(50), call)
        .await
        .is_err());
    within("the server-side cancellation", cancelled.notified()).await;
}

#[tokio::test]
async fn an_incoming_cancel_answers_request_cancelled() {
    let mut router = Router::new();
    router.method("forever", || async {
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    add_sync(&mut router);
    let addr = serve(router, Framing::ContentLength).await;
    let mut wire = Wire::connect(addr, Framing::ContentLength).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"forever","id":7}"#)
        .await;
    wire.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}"#)
        .await;
    let reply = wire.recv().await;
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["error"]["code"], -32800);

    // A cancel for a request that already finished changes nothing.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":8}"#)
        .await;
    assert_eq!(reply["result"], "pong");
    wire.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":8}}"#)
        .await;
    wire.expect_no_reply().await;

    // Sent as a request, it is no method, and the error says how to send it.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":8},"id":9}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32601, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "Method not found: `$/cancelRequest`: it is a notification here, sent without an id"
    );
}

#[tokio::test]
async fn a_request_timeout_fails_the_call_and_cancels_it() {
    let cancelled = Arc::new(Notify::new());
    let mut server = Router::with_state(cancelled.clone());
    server.method("forever", |cx: Context<Arc<Notify>>| async move {
        let token = cx.cancellation().clone();
        let signal = cx.state().clone();
        tokio::spawn(async move {
            token.cancelled().await;
            signal.notify_one();
        });
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    let addr = serve(server, Framing::Newline).await;
    let config = Config::default().request_timeout(Some(Duration::from_millis(50)));
    let (peer, _driver) = connect_with(addr, Framing::Newline, Router::new(), config).await;
    let err = within("timeout", peer.request::<Value>("forever", ()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    within("the server-side cancellation", cancelled.notified()).await;
}

#[tokio::test]
async fn a_callback_gets_through_while_the_server_is_busy() {
    // One handler slot and a queue of one: the callback's handler takes the
    // slot, the queue fills with the client's other requests, and the
    // server must still read the callback's reply.
    let mut server = Router::new();
    server.method("greet", |cx: Context| async move {
        let name: String = cx.peer().request("name", ()).await.map_err(remote)?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let gate = Arc::new(Notify::new());
    let mut client = Router::with_state(gate.clone());
    client.method("name", |cx: Context<Arc<Notify>>| async move {
        // Answer only once the server is flooded.
        cx.state().notified().await;
        Ok::<_, ErrorObject>("ada")
    });
    let config = Config::default().max_in_flight(1).max_queued(1);
    let addr = serve_with(server, Framing::Newline, config, 1 << 20).await;
    let (peer, _driver) = connect(addr, Framing::Newline, client).await;

    let greet = tokio::spawn({
        let peer = peer.clone();
        async move { peer.request::<String>("greet", ()).await }
    });
    let pings: Vec<_> = (0..50)
        .map(|_| {
            let peer = peer.clone();
            tokio::spawn(async move { peer.request::<String>("ping", ()).await })
        })
        .collect();
    gate.notify_one();
    assert_eq!(within("greet", greet).await.unwrap().unwrap(), "hello, ada");
    for ping in pings {
        match within("ping", ping).await.unwrap() {
            Ok(pong) => assert_eq!(pong, "pong"),
            Err(Error::Remote { source, .. }) => assert_eq!(source.code, ErrorObject::SERVER_BUSY),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
}

#[tokio::test]
async fn thousands_of_pipelined_requests_all_get_answers() {
    let mut router = Router::new();
    router.method("double", |(n,): (u64,)| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(n * 2)
    });
    // Small limits, so the queue is full most of the time.
    let config = Config::default()
        .max_in_flight(4)
        .max_queued(8)
        .max_outbox(16);
    let addr = serve_with(router, Framing::Newline, config, 1 << 20).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let calls = (0..5000u64).map(|n| {
        let peer = peer.clone();
        async move { (n, peer.request::<u64>("double", [n]).await) }
    });
    let answers = within("5000 calls", futures::future::join_all(calls)).await;
    for (n, answer) in answers {
        assert_eq!(answer.unwrap(), n * 2);
    }
}

#[tokio::test]
async fn a_batch_call_gives_answers_in_the_callers_order() {
    let addr = serve(common::spec_router(), Framing::ContentLength).await;
    let (peer, _driver) = connect(addr, Framing::ContentLength, Router::new()).await;
    let mut batch = Batch::new();
    batch
        .request("sum", [1, 2, 4])
        .notify("notify_hello", [7])
        .request("subtract", [42, 23])
        .request("foo.get", json!({"name": "myself"}))
        .request("get_data", ());
    let answers = within("batch", peer.batch(batch)).await.unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0].as_ref().unwrap().get(), "7");
    assert_eq!(answers[1].as_ref().unwrap().get(), "19");
    assert!(matches!(&answers[2], Err(Error::Remote { source, .. }) if source.code == -32601));
    assert_eq!(answers[3].as_ref().unwrap().get(), r#"["hello",5]"#);
}

#[tokio::test]
async fn wrong_params_name_the_param_and_what_was_expected() {
    let addr = serve(common::spec_router(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"subtract","params":["x", 1],"id":1}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602);
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("subtract") && message.contains("minuend") && message.contains("i64"),
        "{message}"
    );

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend": 1},"id":2}"#)
        .await;
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("subtrahend"), "{message}");

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"subtract","params":[1, 2, 3],"id":3}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602);
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("too many"), "{message}");
    // A number beyond f64 is a serde syntax error, but not a count problem.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"subtract","params":[1e400, 2],"id":4}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602);
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("out of range") && !message.contains("too many"),
        "{message}"
    );
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"subtract","params":[1],"id":5}"#)
        .await;
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("missing param `subtrahend` (position 1)"),
        "{message}"
    );

    let reply = wire.call(r#"[1]"#).await;
    let message = reply[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("batch entry must be an object"),
        "{message}"
    );
    assert!(!message.contains("Envelope"), "{message}");

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"get_data","params":[1],"id":4}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602);
}

#[tokio::test]
async fn a_param_left_out_at_the_end_is_none_only_for_an_option() {
    #[derive(serde::Deserialize)]
    struct Echo {
        value: Value,
    }
    let mut router = Router::new();
    router.method(
        "echo",
        |p: Echo| async move { Ok::<_, ErrorObject>(p.value) },
    );
    router.method("pair", |(a, b): (Value, Option<i64>)| async move {
        Ok::<_, ErrorObject>(json!([a, b]))
    });
    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    // NB: `null` would fit a `Value`; a param left out is not `null`.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"echo","params":[],"id":1}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("missing param `value` (position 0)"),
        "{message}"
    );
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"pair","params":[],"id":2}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    // An `Option` left out is `None`, and `null` given is a value.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"pair","params":["a"],"id":3}"#)
        .await;
    assert_eq!(reply["result"], json!(["a", null]), "{reply}");
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"echo","params":[null],"id":4}"#)
        .await;
    assert_eq!(reply["result"], Value::Null, "{reply}");
    assert!(reply.get("error").is_none(), "{reply}");
}

#[tokio::test]
async fn a_message_over_the_limit_is_skipped_and_answered_and_the_connection_goes_on() {
    for framing in FRAMINGS {
        let addr = serve_with(common::spec_router(), framing, Config::default(), 1024).await;
        let mut big = Wire::connect(addr, framing).await;
        let mut other = Wire::connect(addr, framing).await;
        let huge = format!(
            r#"{{"jsonrpc":"2.0","method":"sum","params":[{}],"id":1}}"#,
            "1,".repeat(2000) + "1"
        );
        big.send(&huge).await;
        let reply = big.recv().await;
        let expected = match framing {
            Framing::Newline => {
                "Invalid Request: message exceeds the limit of 1024 bytes".to_owned()
            }
            Framing::ContentLength => format!(
                "Invalid Request: message of {} bytes exceeds the limit of 1024 bytes",
                huge.len()
            ),
        };
        // Under its id, read from its last bytes: its caller learns why.
        assert_eq!(
            reply,
            json!({"jsonrpc":"2.0","error":{"code":-32600,"message":expected},"id":1}),
            "{framing}"
        );
        // `params` first: `method` and the id are read back from the end.
        let params_first = format!(
            r#"{{"params":[{}],"jsonrpc":"2.0","method":"sum","id":"p"}}"#,
            "1,".repeat(2000) + "1"
        );
        big.send(&params_first).await;
        let reply = big.recv().await;
        assert_eq!(
            (&reply["error"]["code"], &reply["id"]),
            (&json!(-32600), &json!("p")),
            "{framing}: {reply}"
        );
        let reply = big
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2}"#)
            .await;
        assert_eq!(reply["result"], 3, "{framing}: the same connection goes on");
        let reply = other
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":3}"#)
            .await;
        assert_eq!(reply["result"], 7, "{framing}");
    }
}

/// Spec §5: a response is not answered, and one over the limit that answers
/// no call of ours is dropped like any other such response.
#[tokio::test]
async fn a_stray_response_over_the_limit_gets_no_answer() {
    for framing in FRAMINGS {
        let addr = serve_with(common::spec_router(), framing, Config::default(), 1024).await;
        let mut wire = Wire::connect(addr, framing).await;
        let huge = format!(
            r#"{{"jsonrpc":"2.0","result":"{}","id":5}}"#,
            "r".repeat(4000)
        );
        wire.send(&huge).await;
        // The first line back answers the next request, not the response.
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2}"#)
            .await;
        assert_eq!(
            reply,
            json!({"jsonrpc":"2.0","result":3,"id":2}),
            "{framing}"
        );
    }
}

/// A reply over the receiver's frame limit is skipped unread, but its last
/// bytes name its id: the call it answers fails at once, saying why, even
/// with no request timeout, and the connection goes on.
#[tokio::test]
async fn a_reply_over_the_limit_fails_its_call_at_once() {
    for framing in FRAMINGS {
        let mut server = Router::new();
        server.method("big", |(n,): (usize,)| async move {
            Ok::<_, ErrorObject>("b".repeat(n))
        });
        server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
        let addr = serve(server, framing).await;
        let transport = rpcpeer_stream::connect_tcp(addr, framing)
            .await
            .unwrap()
            .with_max_frame_len(1024);
        let (peer, driver) = Driver::builder(transport, Router::new())
            .config(Config::default().request_timeout(None))
            .build();
        tokio::spawn(driver);
        match within("the big call", peer.request::<String>("big", (100_000,))).await {
            Err(Error::InvalidReply { method, what }) => {
                assert_eq!(method, "big", "{framing}");
                assert!(what.starts_with("too large to read"), "{framing}: {what}");
                assert!(what.contains("limit of 1024 bytes"), "{framing}: {what}");
            }
            other => panic!("{framing}: expected Error::InvalidReply, got {other:?}"),
        }
        let pong = within("the next call", peer.request::<String>("ping", ())).await;
        assert_eq!(pong.unwrap(), "pong", "{framing}");
    }
}

/// The case of a language server's 79 MB reply to a cancelled request:
/// a body many times the limit, arriving in pieces, skipped without being
/// held, then the next message served.
#[tokio::test]
async fn a_body_far_over_the_limit_is_skipped_as_it_arrives() {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let addr = serve_with(
        common::spec_router(),
        Framing::ContentLength,
        Config::default(),
        1024,
    )
    .await;
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let len = 8 << 20;
    let send = tokio::spawn(async move {
        writer
            .write_all(format!("Content-Length: {len}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..len / chunk.len() {
            writer.write_all(&chunk).await.unwrap();
        }
        let next = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2}"#;
        writer
            .write_all(format!("Content-Length: {}\r\n\r\n{next}", next.len()).as_bytes())
            .await
            .unwrap();
        writer
    });
    let mut replies = rpcpeer_stream::framed(
        tokio::io::join(&mut reader, tokio::io::sink()),
        Framing::ContentLength,
        1 << 20,
    );
    let first: Value = serde_json::from_str(
        &within("the refusal", replies.next())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["error"]["code"], -32600, "{first}");
    assert_eq!(
        first["error"]["message"],
        format!("Invalid Request: message of {len} bytes exceeds the limit of 1024 bytes")
    );
    let second: Value = serde_json::from_str(
        &within("the next reply", replies.next())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(second["result"], 3, "{second}");
    assert_eq!(second["id"], 2);
    drop(within("the sender", send).await.unwrap());
}

#[tokio::test]
async fn a_connection_without_a_message_for_its_idle_timeout_is_closed() {
    let listener = rpcpeer_stream::TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .unwrap()
        .with_idle_timeout(Some(Duration::from_millis(200)));
    let addr = listener.local_addr().unwrap();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((transport, _)) = listener.accept().await {
            let (_peer, driver) = rpcpeer::Driver::new(transport, common::spec_router());
            let ended_tx = ended_tx.clone();
            tokio::spawn(async move {
                let _ = ended_tx.send(driver.await);
            });
        }
    });
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#)
        .await;
    assert_eq!(reply["result"], 3);
    // Then nothing: the server hangs up.
    assert_eq!(
        wire.recv_text().await,
        None,
        "the idle connection is closed"
    );
    let ended = within("the server's driver", ended.recv()).await.unwrap();
    match ended {
        Err(Error::Transport(err)) => {
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}")
        }
        other => panic!("expected the idle timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn stray_responses_and_garbage_leave_the_connection_usable() {
    let addr = serve(common::spec_router(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","result":5,"id":12345}"#)
        .await;
    let reply = wire.call("this is not json").await;
    assert_eq!(reply["error"]["code"], -32700);
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":{"no":1}}"#)
        .await;
    assert_eq!(
        reply,
        json!({"jsonrpc":"2.0","error":reply["error"].clone(),"id":null})
    );
    assert_eq!(reply["error"]["code"], -32600);
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":18446744073709551615}"#)
        .await;
    assert_eq!(reply["result"], 3);
    assert_eq!(reply["id"], json!(18446744073709551615u64));
}

#[tokio::test]
async fn an_exclusive_method_runs_alone() {
    #[derive(Default)]
    struct Gauge {
        running: AtomicUsize,
        peak_during_exclusive: AtomicUsize,
    }
    let mut router = Router::with_state(Gauge::default());
    router.method("work", |cx: Context<Gauge>| async move {
        cx.state().running.fetch_add(1, Ordering::SeqCst);
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        cx.state().running.fetch_sub(1, Ordering::SeqCst);
        Ok::<_, ErrorObject>(())
    });
    router
        .method("alone", |cx: Context<Gauge>| async move {
            cx.state().running.fetch_add(1, Ordering::SeqCst);
            for _ in 0..20 {
                let now = cx.state().running.load(Ordering::SeqCst);
                cx.state()
                    .peak_during_exclusive
                    .fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
            cx.state().running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>(cx.state().peak_during_exclusive.load(Ordering::SeqCst))
        })
        .concurrency(Concurrency::Exclusive);
    let addr = serve(router, Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let mut calls = Vec::new();
    for i in 0..30 {
        let peer = peer.clone();
        let method = if i == 15 { "alone" } else { "work" };
        calls.push(tokio::spawn(async move {
            peer.request::<Value>(method, ()).await
        }));
    }
    let results = within("calls", futures::future::join_all(calls)).await;
    assert_eq!(
        results[15].as_ref().unwrap().as_ref().unwrap(),
        &json!(1),
        "something ran beside the exclusive call"
    );
}

#[tokio::test]
async fn closing_fails_our_pending_calls_and_lets_handlers_finish() {
    let mut server = Router::new();
    server.method("slow", || async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, ErrorObject>("done")
    });
    let addr = serve(server, Framing::Newline).await;
    let (peer, driver) = connect(addr, Framing::Newline, Router::new()).await;
    let slow = tokio::spawn({
        let peer = peer.clone();
        async move { peer.request::<String>("slow", ()).await }
    });
    // Let the request leave before closing.
    tokio::task::yield_now().await;
    within("close", peer.close()).await;
    assert!(peer.is_closed());
    let result = within("slow", slow).await.unwrap();
    assert!(
        matches!(result, Err(Error::Closed { .. }) | Ok(_)),
        "{result:?}"
    );
    within("driver", driver).await.unwrap().unwrap();
}

/// A handler that closes its own connection is not left waiting for the
/// close, which waits for it: its answer goes out, then the connection
/// closes, long before the drain timeout would have cut the handler short.
#[tokio::test]
async fn a_handler_that_closes_its_own_connection_still_answers() {
    let mut server = Router::new();
    server.method("bye", |cx: Context| async move {
        cx.peer().close().await;
        Ok::<_, ErrorObject>("bye")
    });
    server
        .method("bye_on_own_task", |cx: Context| async move {
            cx.peer().close().await;
            Ok::<_, ErrorObject>("bye from a thread")
        })
        .own_task();
    let config = Config::default().drain_timeout(Duration::from_secs(600));
    let addr = serve_with(server, Framing::Newline, config, 1 << 20).await;
    for (method, answer) in [("bye", "bye"), ("bye_on_own_task", "bye from a thread")] {
        let (peer, driver) = connect(addr, Framing::Newline, Router::new()).await;
        let said = within(method, peer.request::<String>(method, ())).await;
        assert_eq!(said.unwrap(), answer);
        within("the server's close", peer.closed()).await;
        within("driver", driver).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_dropped_connection_cancels_running_handlers() {
    let cancelled = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let mut server = Router::with_state((started.clone(), cancelled.clone()));
    server.method(
        "forever",
        |cx: Context<(Arc<Notify>, Arc<Notify>)>| async move {
            // Dropped with the handler's future, so it fires on cancellation.
            struct OnDrop(Arc<Notify>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.notify_one();
                }
            }
            let _guard = OnDrop(cx.state().1.clone());
            cx.state().0.notify_one();
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        },
    );
    let config = Config::default().drain_timeout(Duration::from_millis(100));
    let addr = serve_with(server, Framing::Newline, config, 1 << 20).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"forever","id":1}"#)
        .await;
    within("handler start", started.notified()).await;
    drop(wire);
    within("handler cancellation", cancelled.notified()).await;
}

/// An application's own error type, mapped to error objects by `From`.
#[derive(Debug)]
enum ShopError {
    OutOfStock { item: String, left: u32 },
}

impl From<ShopError> for ErrorObject {
    fn from(err: ShopError) -> Self {
        match err {
            ShopError::OutOfStock { item, left } => {
                ErrorObject::new(-32050, format!("{item} is out of stock"))
                    .with_data(json!({ "left": left }))
            }
        }
    }
}

#[tokio::test]
async fn handler_errors_fallback_request_ids_and_sessions() {
    #[derive(Clone)]
    struct Cart(Vec<String>);
    let mut router = Router::new();
    router.method("buy", |(item,): (String,)| async move {
        Err::<(), _>(ShopError::OutOfStock { item, left: 0 })
    });
    router.method("add", |(item,): (String,), cx: Context| async move {
        let mut cart = cx.session().get::<Cart>().unwrap_or(Cart(Vec::new()));
        cart.0.push(item);
        cx.session().insert(cart.clone());
        Ok::<_, ErrorObject>(cart.0)
    });
    router.method("my_id", |cx: Context| async move {
        Ok::<_, ErrorObject>(cx.id().map(|id| id.to_string()))
    });
    router.fallback(|params, cx: Context| async move {
        let echoed = json!({ "method": cx.method(), "params": params.map(|p| p.get().to_owned()) });
        Ok(serde_json::value::to_raw_value(&echoed).unwrap())
    });
    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"buy","params":["tea"],"id":1}"#)
        .await;
    assert_eq!(
        reply["error"],
        json!({"code": -32050, "message": "tea is out of stock", "data": {"left": 0}})
    );

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"my_id","id":"abc"}"#)
        .await;
    assert_eq!(reply["result"], r#""abc""#);

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"anything.else","params":[1],"id":2}"#)
        .await;
    assert_eq!(
        reply["result"],
        json!({"method": "anything.else", "params": "[1]"})
    );

    // The session is per connection: a second connection starts empty.
    wire.call(r#"{"jsonrpc":"2.0","method":"add","params":["tea"],"id":3}"#)
        .await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"add","params":["milk"],"id":4}"#)
        .await;
    assert_eq!(reply["result"], json!(["tea", "milk"]));
    let mut other = Wire::connect(addr, Framing::Newline).await;
    let reply = other
        .call(r#"{"jsonrpc":"2.0","method":"add","params":["jam"],"id":5}"#)
        .await;
    assert_eq!(reply["result"], json!(["jam"]));
}

#[tokio::test]
async fn a_call_refused_for_its_size_says_why() {
    let addr = serve_with(
        common::spec_router(),
        Framing::Newline,
        Config::default(),
        1024,
    )
    .await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let big: Vec<i64> = vec![1; 2000];
    let (refused, small) = within("both calls", async {
        tokio::join!(
            peer.request::<i64>("sum", big),
            peer.request::<i64>("sum", [1, 2])
        )
    })
    .await;
    // The server skipped it unread, so only its size tells which call it
    // was: the one longer than the limit the refusal names.
    let err = refused.unwrap_err();
    let Error::Remote { source, method } = &err else {
        panic!("expected the peer's refusal, got {err}");
    };
    assert_eq!(method, "sum");
    assert_eq!(source.code, ErrorObject::INVALID_REQUEST);
    assert!(
        source.message.ends_with("exceeds the limit of 1024 bytes"),
        "{err}"
    );
    assert_eq!(small.unwrap(), 3, "the call within the limit is answered");
    assert_eq!(
        within("a call after", peer.request::<i64>("sum", [3, 4]))
            .await
            .unwrap(),
        7,
        "the connection goes on"
    );
}

#[tokio::test]
async fn a_batch_refused_for_its_size_fails_each_of_its_calls() {
    let addr = serve_with(
        common::spec_router(),
        Framing::ContentLength,
        Config::default(),
        1024,
    )
    .await;
    let (peer, _driver) = connect(addr, Framing::ContentLength, Router::new()).await;
    let mut batch = Batch::new();
    // Each entry is small; the array is not.
    for _ in 0..40 {
        batch.request("sum", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
    let answers = within("the batch", peer.batch(batch)).await.unwrap();
    assert_eq!(answers.len(), 40);
    for answer in answers {
        match answer {
            Err(Error::Remote { source, .. }) => {
                assert_eq!(source.code, ErrorObject::INVALID_REQUEST, "{source}");
            }
            other => panic!("expected the peer's refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_handler_uses_question_mark_on_its_calls_back() {
    let mut server = Router::new();
    server.method("relay", |(method,): (String,), cx: Context| async move {
        // The peer's error object passes through `?` as it came.
        let answer: Value = cx.peer().request(&method, ()).await?;
        Ok::<_, ErrorObject>(answer)
    });
    let mut client = Router::new();
    client.method("fails", || async {
        Err::<(), _>(ErrorObject::new(-32077, "client says no").with_data([1]))
    });
    let addr = serve(server, Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, client).await;
    match within("relay", peer.request::<Value>("relay", ["fails"]))
        .await
        .unwrap_err()
    {
        Error::Remote { source, .. } => {
            assert_eq!(
                source,
                ErrorObject::new(-32077, "client says no").with_data([1])
            );
        }
        other => panic!("expected the relayed error, got {other}"),
    }
}

/// Signals when dropped: it lives in a handler's future, so it fires when
/// that future is dropped.
struct OnDrop(Arc<Notify>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn an_incoming_cancel_drops_the_handler_and_cancels_its_token() {
    let started = Arc::new(Notify::new());
    let dropped = Arc::new(Notify::new());
    let token_cancelled = Arc::new(Notify::new());
    let state = [started.clone(), dropped.clone(), token_cancelled.clone()];
    let mut server = Router::with_state(state);
    server.method("forever", |cx: Context<[Arc<Notify>; 3]>| async move {
        let [started, dropped, told] = cx.state().clone();
        let _guard = OnDrop(dropped);
        // Work spawned outside the handler learns of the cancel only
        // through the token.
        let token = cx.cancellation().clone();
        tokio::spawn(async move {
            token.cancelled().await;
            told.notify_one();
        });
        started.notify_one();
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    let addr = serve(server, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"forever","id":"a"}"#)
        .await;
    within("handler start", started.notified()).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"a"}}"#)
        .await;
    let reply = wire.recv().await;
    assert_eq!(reply["id"], "a");
    assert_eq!(reply["error"]["code"], -32800);
    within("the handler's future dropped", dropped.notified()).await;
    within("the handler's token cancelled", token_cancelled.notified()).await;
}

#[tokio::test]
async fn a_finished_handler_does_not_cancel_its_token() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut server = Router::with_state(tx);
    server.method(
        "keep",
        |cx: Context<mpsc::UnboundedSender<tokio_util::sync::CancellationToken>>| async move {
            let _ = cx.state().send(cx.cancellation().clone());
            Ok::<_, ErrorObject>("done")
        },
    );
    let addr = serve(server, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"keep","id":1}"#)
        .await;
    assert_eq!(reply["result"], "done");
    let token = within("the token", rx.recv()).await.expect("a token");
    assert!(
        !token.is_cancelled(),
        "a handler that answered was not cancelled"
    );
}

/// A blocking hand-over between two handlers.
type Hand = (
    Mutex<std::sync::mpsc::Sender<()>>,
    Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_on_its_own_task_does_not_hold_up_its_connection() {
    // `crunch` blocks its thread until `release` has run. On the
    // connection's task it would block the connection, and `release`
    // could never be read: the call would answer "never released".
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let mut server = Router::with_state((Mutex::new(tx), rx));
    server
        .method("crunch", |cx: Context<Hand>| async move {
            let rx = cx.state().1.clone();
            let released = rx
                .lock()
                .map(|rx| rx.recv_timeout(Duration::from_secs(10)).is_ok())
                .unwrap_or(false);
            Ok::<_, ErrorObject>(if released {
                "released"
            } else {
                "never released"
            })
        })
        .own_task();
    server.method("release", |cx: Context<Hand>| async move {
        let sent = cx
            .state()
            .0
            .lock()
            .map(|tx| tx.send(()).is_ok())
            .unwrap_or(false);
        Ok::<_, ErrorObject>(sent)
    });
    let addr = serve(server, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"crunch","id":1}"#)
        .await;
    wire.send(r#"{"jsonrpc":"2.0","method":"release","id":2}"#)
        .await;
    let mut replies = [wire.recv().await, wire.recv().await];
    replies.sort_by_key(|r| r["id"].as_u64());
    assert_eq!(replies[0]["result"], "released");
    assert_eq!(replies[1]["result"], true);
}

#[test]
fn a_call_on_its_own_thread_cancelled_before_the_thread_starts_it_never_runs() {
    // One blocking thread, held by other work: the call waits for it, and
    // is cancelled meanwhile. Once the thread is free, the call must not
    // run; the next one, behind it on that same thread, must.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let ran = Arc::new(AtomicUsize::new(0));
        let mut server = Router::with_state(ran.clone());
        server
            .method("work", |cx: Context<Arc<AtomicUsize>>| async move {
                cx.state().fetch_add(1, Ordering::SeqCst);
                Ok::<_, ErrorObject>("done")
            })
            .own_task();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let held = tokio::task::spawn_blocking(move || gate.recv().is_ok());
        let addr = serve(server, Framing::Newline).await;
        let mut wire = Wire::connect(addr, Framing::Newline).await;
        wire.send(r#"{"jsonrpc":"2.0","method":"work","id":1}"#)
            .await;
        wire.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
            .await;
        let reply = wire.recv().await;
        assert_eq!(reply["id"], 1, "{reply}");
        assert_eq!(reply["error"]["code"], -32800, "{reply}");
        release.send(()).expect("the held thread waits");
        assert!(within("the held thread", held).await.expect("no panic"));
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"work","id":2}"#)
            .await;
        assert_eq!(reply["result"], "done", "{reply}");
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "the cancelled call ran once its thread was free"
        );
    });
}

#[tokio::test]
async fn a_panic_on_its_own_task_is_answered_and_the_connection_serves_on() {
    let mut server = Router::new();
    server
        .method("boom", || async {
            panic!("on purpose");
            #[allow(unreachable_code)]
            Ok::<_, ErrorObject>(())
        })
        .own_task();
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let addr = serve(server, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"boom","id":1}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32603);
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#)
        .await;
    assert_eq!(reply["result"], "pong");
}

#[tokio::test]
async fn a_dropped_connection_cancels_a_notification_handlers_token() {
    let cancelled = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let mut server = Router::with_state((started.clone(), cancelled.clone()));
    server.notification(
        "watch",
        |cx: Context<(Arc<Notify>, Arc<Notify>)>| async move {
            let token = cx.cancellation().clone();
            let told = cx.state().1.clone();
            tokio::spawn(async move {
                token.cancelled().await;
                told.notify_one();
            });
            cx.state().0.notify_one();
            std::future::pending::<()>().await;
        },
    );
    let config = Config::default().drain_timeout(Duration::from_millis(100));
    let addr = serve_with(server, Framing::Newline, config, 1 << 20).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"watch"}"#).await;
    within("handler start", started.notified()).await;
    drop(wire);
    within("the notification's token cancelled", cancelled.notified()).await;
}

#[tokio::test]
async fn close_when_closes_gracefully_once_the_signal_fires() {
    // A call in flight when the signal fires still gets its answer; then
    // the connection ends and both sides see it.
    let release = Arc::new(Notify::new());
    let mut server = Router::with_state(release.clone());
    server.method("wait", |cx: Context<Arc<Notify>>| async move {
        cx.state().notified().await;
        Ok::<_, ErrorObject>("answered")
    });
    let (client, server) = rpcpeer::testing::connected_pair(Router::new(), server);
    let stop = Arc::new(Notify::new());
    let signal = stop.clone();
    server.close_when(async move { signal.notified().await });

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<String>("wait", ()).await }
    });
    // The call must be running on the server before the stop.
    let ping = within("a round trip", client.request::<Value>("rpc.none", ())).await;
    assert!(ping.is_err(), "an unknown method is refused");
    stop.notify_one();
    release.notify_one();
    let answer = within("the call in flight", call).await.expect("the task");
    assert_eq!(answer.expect("an answer"), "answered");
    within("the server's end", server.closed()).await;
    within("the client's end", client.closed()).await;
}

#[tokio::test]
async fn run_until_lets_the_call_in_flight_answer_then_ends_the_driver() {
    // The driver itself is what the server awaits: no task of the caller's
    // runs it, and it still ends after the signal.
    let release = Arc::new(Notify::new());
    let mut router = Router::with_state(release.clone());
    router.method("wait", |cx: Context<Arc<Notify>>| async move {
        cx.state().notified().await;
        Ok::<_, ErrorObject>("answered")
    });
    let (a, b) = rpcpeer::transport::memory_pair();
    let (_server, server) = Driver::new(a, router);
    let stop = Arc::new(Notify::new());
    let signal = stop.clone();
    let server = tokio::spawn(server.run_until(async move { signal.notified().await }));
    let (client, client_driver) = Driver::new(b, Router::new());
    tokio::spawn(client_driver);

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request::<String>("wait", ()).await }
    });
    // The call must be running on the server before the stop.
    let ping = within("a round trip", client.request::<Value>("rpc.none", ())).await;
    assert!(ping.is_err(), "an unknown method is refused");
    stop.notify_one();
    release.notify_one();
    let answer = within("the call in flight", call).await.expect("the task");
    assert_eq!(answer.expect("an answer"), "answered");
    within("the server's driver to end", server)
        .await
        .expect("the task")
        .expect("a clean close");
    within("the client's end", client.closed()).await;
}

#[tokio::test]
async fn a_batch_answers_in_request_order_when_a_later_entry_finishes_first() {
    let release = Arc::new(Notify::new());
    let mut router = Router::with_state(release);
    router.method("slow", |cx: Context<Arc<Notify>>| async move {
        cx.state().notified().await;
        Ok::<_, ErrorObject>("slow")
    });
    router.method("fast", || async { Ok::<_, ErrorObject>("fast") });
    router.method("release", |cx: Context<Arc<Notify>>| async move {
        cx.state().notify_one();
        Ok::<_, ErrorObject>(())
    });
    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(
        r#"[{"jsonrpc":"2.0","method":"slow","id":1},{"jsonrpc":"2.0","method":"fast","id":2},{"jsonrpc":"2.0","method":"nope","id":3}]"#,
    )
    .await;
    // `fast` and the unknown method are answered while `slow` still waits.
    let released = wire
        .call(r#"{"jsonrpc":"2.0","method":"release","id":4}"#)
        .await;
    assert_eq!(released["id"], 4);
    let batch = wire.recv().await;
    let ids: Vec<Value> = batch
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3)], "{batch}");
    assert_eq!(batch[0]["result"], "slow");
    assert_eq!(batch[2]["error"]["code"], -32601);
}

#[tokio::test]
async fn a_handler_that_panics_before_its_future_exists_is_answered() {
    let mut server = Router::new();
    server.method("eager", |p: Vec<i64>| {
        // Checked before the `async` block: the panic comes while the
        // call is being prepared, not while it runs.
        assert!(!p.is_empty(), "eager wants params");
        async move { Ok::<_, ErrorObject>(p.len()) }
    });
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let addr = serve(server, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"eager","params":[],"id":1}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#)
        .await;
    assert_eq!(reply["result"], "pong");
}

#[tokio::test]
async fn params_nested_past_the_depth_limit_are_refused_and_the_connection_goes_on() {
    let config = Config::default().max_depth(64);
    let addr = serve_with(common::spec_router(), Framing::Newline, config, 1 << 20).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let reply = wire
        .call(&format!(
            r#"{{"jsonrpc":"2.0","method":"sum","params":{deep},"id":1}}"#
        ))
        .await;
    // Refused under its own id: the message is read in full all the same.
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["id"], 1, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("64 levels"), "{message}");
    // Within the limit, the same shape is read (and answered by the method).
    let ok = format!("[{}1{}]", "[".repeat(10), "]".repeat(10));
    let reply = wire
        .call(&format!(
            r#"{{"jsonrpc":"2.0","method":"sum","params":{ok},"id":2}}"#
        ))
        .await;
    assert_eq!(reply["id"], 2, "{reply}");
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
}

#[tokio::test]
async fn a_handler_taking_ignored_any_accepts_any_params_or_none() {
    // Such params are not read again (`handler::ignored_any`): whatever
    // the message brought, and nothing, is taken.
    let config = Config::default().max_depth(400);
    let mut server = Router::new();
    server.method("any", |_: serde::de::IgnoredAny| async {
        Ok::<_, ErrorObject>("taken")
    });
    let addr = serve_with(server, Framing::Newline, config, 1 << 20).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let members = [
        format!(r#","params":{deep}"#),
        r#","params":{"a":[1,{"b":null}],"c":"\u00e9"}"#.to_owned(),
        r#","params":[]"#.to_owned(),
        String::new(),
    ];
    for (id, params) in members.iter().enumerate() {
        let reply = wire
            .call(&format!(
                r#"{{"jsonrpc":"2.0","method":"any"{params},"id":{id}}}"#
            ))
            .await;
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["result"], "taken", "{reply}");
    }
    // Params that are no array or object are still refused, before any
    // handler (spec §4.2).
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"any","params":5,"id":9}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
}

#[tokio::test]
async fn a_huge_method_name_or_bad_params_are_not_echoed_whole() {
    let addr = serve(common::spec_router(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let name = "m".repeat(100_000);
    let reply = wire
        .call(&format!(r#"{{"jsonrpc":"2.0","method":"{name}","id":1}}"#))
        .await;
    assert_eq!(reply["error"]["code"], -32601, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.len() < 300 && message.contains("100000 bytes in all"),
        "{message}"
    );
    let reply = wire
        .call(&format!(
            r#"{{"jsonrpc":"2.0","method":"sum","params":"{name}","id":2}}"#
        ))
        .await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.len() < 300, "{message}");
}

/// Calls still running when the drain timeout of a closing connection
/// passes are answered with an error that says so (before, the connection
/// just closed), a batch's finished entries keeping their answers.
#[tokio::test]
async fn calls_cut_off_by_the_drain_deadline_are_answered_before_the_close() {
    let mut router = Router::new();
    router.method("hold", || async {
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(true)
    });
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let listener = rpcpeer_stream::TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = Config::default().drain_timeout(Duration::from_millis(200));
    let server = tokio::spawn(async move {
        let (transport, _) = listener.accept().await.expect("accept");
        let (peer, driver) = Driver::builder(transport, router).config(config).build();
        (peer, tokio::spawn(driver))
    });
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"hold","id":1}"#)
        .await;
    wire.send(
        r#"[{"jsonrpc":"2.0","method":"ping","id":2},{"jsonrpc":"2.0","method":"hold","id":3}]"#,
    )
    .await;
    wire.send(r#"{"method":"hold","params":[],"id":4}"#).await;
    // Frames are read in order: once this is answered, so were the calls
    // before it read and started.
    let pong = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":"p"}"#)
        .await;
    assert_eq!(pong["result"], "pong", "{pong}");
    let (peer, driver) = server.await.expect("server");
    peer.close().await;

    let mut replies = Vec::new();
    while let Some(text) = wire.recv_text().await {
        replies.push(serde_json::from_str::<Value>(&text).expect("json"));
    }
    let single = replies
        .iter()
        .find(|r| r["id"] == 1)
        .expect("hold answered");
    assert_eq!(single["error"]["code"], -32003, "{single}");
    let message = single["error"]["message"].as_str().unwrap();
    assert!(message.contains("drain timeout"), "{message}");
    let v1 = replies
        .iter()
        .find(|r| r["id"] == 4)
        .expect("1.0 hold answered");
    assert_eq!(v1["error"]["code"], -32003, "{v1}");
    assert!(
        v1.get("jsonrpc").is_none(),
        "answered in its own 1.0 form: {v1}"
    );
    let batch = replies
        .iter()
        .find_map(Value::as_array)
        .expect("the batch answered");
    assert_eq!(batch[0], json!({"jsonrpc":"2.0","result":"pong","id":2}));
    assert_eq!(batch[1]["error"]["code"], -32003, "{batch:?}");
    let ended = within("the driver", driver).await.expect("task");
    assert!(ended.is_ok(), "{ended:?}");
}

/// A handler's `?` on its own call passes the peer's error on, but not as
/// if it answered the caller's call: the spec's codes for a bad call
/// (-32601 for a callback the caller lacks) become -32603 naming it.
#[tokio::test]
async fn a_callback_the_caller_lacks_is_not_its_method_not_found() {
    let mut server = Router::new();
    server.method("hello", |cx: Context| async move {
        let name: String = cx.peer().request("name", ()).await?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    server.method("relay", |cx: Context| async move {
        cx.peer().request::<()>("fail", ()).await?;
        Ok::<_, ErrorObject>(())
    });
    let mut client = Router::new();
    client.method("fail", || async { Err::<(), _>(ErrorObject::new(7, "no")) });
    let (client, _server) = rpcpeer::testing::connected_pair(client, server);
    match client.request::<String>("hello", ()).await {
        Err(Error::Remote { method, source }) => {
            assert_eq!(method, "hello");
            assert_eq!(source.code, ErrorObject::INTERNAL_ERROR, "{source:?}");
            assert_eq!(
                source.message,
                "Internal error: our call of `name` was refused: Method not found: `name` (code -32601)"
            );
        }
        other => panic!("expected -32603, got {other:?}"),
    }
    // An application's error still passes on as it came.
    match client.request::<()>("relay", ()).await {
        Err(Error::Remote { source, .. }) => {
            assert_eq!((source.code, source.message.as_str()), (7, "no"));
        }
        other => panic!("expected the client's own error, got {other:?}"),
    }
}

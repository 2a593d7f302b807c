//! Time limits: our calls to the peer (`Config::request_timeout`).

mod common;

use std::time::Duration;

use common::{serve_with, Wire};
use rpcpeer::transport::memory_pair;
use rpcpeer::{Config, Context, Driver, Error, ErrorObject, Router};
use rpcpeer_stream::Framing;
use serde_json::{json, Value};

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

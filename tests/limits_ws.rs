//! The connection limits over WebSocket, as `memory_bounds.rs` and `peer.rs` check them over TCP:
//! nesting depth, a batch's entries against the queue, a peer's text cut short, and a peer that
//! stops reading.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::within;
use futures::{SinkExt, StreamExt};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Config, Context, ErrorObject, Router};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(router: Router, config: Config) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(WsServer::new(router).config(config).serve(listener));
    addr
}

async fn connect(addr: SocketAddr) -> Socket {
    connect_async(format!("ws://{addr}/")).await.unwrap().0
}

/// Sends `text` and returns the next text message as JSON.
async fn call(ws: &mut Socket, text: &str) -> Value {
    ws.send(Message::text(text)).await.unwrap();
    loop {
        match within("a reply", ws.next()).await {
            Some(Ok(Message::Text(reply))) => return serde_json::from_str(&reply).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no reply: {other:?}"),
        }
    }
}

fn router() -> Router {
    let mut router = Router::new();
    router.method("sum", |xs: Vec<i64>| async move {
        Ok::<_, ErrorObject>(xs.iter().sum::<i64>())
    });
    router.method("hold", |cx: Context| async move {
        // Waits on a call back the raw client never answers.
        let _: Result<Value, _> = cx.peer().request("never", ()).await;
        Ok::<_, ErrorObject>(true)
    });
    router.method("big", || async { Ok::<_, ErrorObject>("x".repeat(10_000)) });
    router
}

#[tokio::test]
async fn a_message_nested_past_the_limit_is_refused_as_what_it_is_and_the_connection_goes_on() {
    let addr = serve(router(), Config::default().max_depth(32)).await;
    let mut ws = connect(addr).await;
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    let reply = call(
        &mut ws,
        &format!(r#"{{"jsonrpc":"2.0","method":"sum","params":{deep},"id":1}}"#),
    )
    .await;
    // Refused under its own id: its caller learns why at once.
    assert_eq!(
        (&reply["error"]["code"], &reply["id"]),
        (&json!(-32600), &json!(1)),
        "{reply}"
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("32 levels"),
        "{reply}"
    );
    // A notification as deep gets no reply (spec §4.1), and invalid JSON as
    // deep is a parse error: the next answers are the parse error's, then
    // the call's.
    let notification = format!(r#"{{"jsonrpc":"2.0","method":"sum","params":{deep}}}"#);
    ws.send(Message::text(notification)).await.unwrap();
    let unclosed = call(&mut ws, &"[".repeat(1000)).await;
    assert_eq!(
        (&unclosed["error"]["code"], &unclosed["id"]),
        (&json!(-32700), &Value::Null),
        "{unclosed}"
    );
    let reply = call(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2}"#,
    )
    .await;
    assert_eq!(
        (&reply["result"], &reply["id"]),
        (&json!(3), &json!(2)),
        "{reply}"
    );
}

#[tokio::test]
async fn a_batch_counts_its_entries_against_the_queue() {
    let addr = serve(router(), Config::default().max_in_flight(1).max_queued(5)).await;
    let mut ws = connect(addr).await;
    let callback = call(&mut ws, r#"{"jsonrpc":"2.0","method":"hold","id":0}"#).await;
    assert_eq!(callback["method"], "never", "{callback}");
    let batch: Vec<String> = (1..=5)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","method":"hold","id":{i}}}"#))
        .collect();
    ws.send(Message::text(format!("[{}]", batch.join(","))))
        .await
        .unwrap();
    let busy = call(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":"s"}"#,
    )
    .await;
    assert_eq!(busy["error"]["code"], -32000, "{busy}");
    assert!(
        busy["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 calls"),
        "{busy}"
    );
}

#[tokio::test]
async fn a_huge_method_name_is_not_echoed_whole() {
    let addr = serve(router(), Config::default()).await;
    let mut ws = connect(addr).await;
    let name = "m".repeat(100_000);
    let reply = call(
        &mut ws,
        &format!(r#"{{"jsonrpc":"2.0","method":"{name}","id":1}}"#),
    )
    .await;
    assert_eq!(reply["error"]["code"], -32601, "{reply}");
    assert!(
        reply["error"]["message"].as_str().unwrap().len() < 300,
        "{reply}"
    );
}

/// A WebSocket peer that sends and never reads is cut off once the
/// outbox has held its bytes for the write timeout.
#[tokio::test]
async fn a_peer_that_never_reads_is_cut_off() {
    let config = Config::default()
        .max_outbox_bytes(64 * 1024)
        .write_timeout(Duration::from_millis(300));
    let addr = serve(router(), config).await;
    let mut ws = connect(addr).await;
    let request = r#"{"jsonrpc":"2.0","method":"big","id":1}"#;
    // Replies of 10 KB each; socket buffers take a few MB, then the outbox
    // fills, then the server stops reading and, after the timeout, closes.
    let ended = within("the server cutting off a peer that does not read", async {
        loop {
            if let Err(err) = ws.send(Message::text(request)).await {
                return err;
            }
        }
    })
    .await;
    let text = ended.to_string();
    assert!(
        text.contains("reset") || text.contains("closed") || text.contains("Broken pipe"),
        "{text}"
    );
}

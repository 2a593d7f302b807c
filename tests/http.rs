//! HTTP on the WebSocket server's port, against what a hostile client or web page does:
//! media types, transfer codings, slow and oversized bodies, the body budget, batch
//! limits, CORS, groups, and turning either protocol off. Raw sockets on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::within;
use futures::{SinkExt, StreamExt};
use rpcpeer::group::{Group, Member, SlowMember};
use rpcpeer::http::HttpOptions;
use rpcpeer::ws::{BodyBudget, Config as WsConfig, Protocols};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Context, Driver, ErrorObject, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn serve<S: Send + Sync + 'static>(server: WsServer<S>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener));
    addr
}

/// Timeouts short enough for a test to see them pass.
fn short_timeouts() -> WsConfig {
    WsConfig {
        http_header_timeout: Duration::from_millis(200),
        http_body_timeout: Duration::from_millis(200),
        ..WsConfig::default()
    }
}

/// One HTTP response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }
}

/// A raw HTTP/1.1 connection: exact bytes out, responses in.
struct Http {
    io: BufReader<TcpStream>,
}

impl Http {
    async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        Self {
            io: BufReader::new(tcp),
        }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io.get_mut().write_all(bytes.as_ref()).await.unwrap();
    }

    /// The next response, or `None` when the server closes first.
    async fn response(&mut self) -> Option<Reply> {
        within("an HTTP response", async {
            let mut line = String::new();
            match self.io.read_line(&mut line).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let status = line.split(' ').nth(1)?.parse().ok()?;
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                self.io.read_line(&mut line).await.ok()?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':')?;
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            self.io.read_exact(&mut body).await.ok()?;
            Some(Reply {
                status,
                headers,
                body: String::from_utf8(body).unwrap(),
            })
        })
        .await
    }

    /// Sends `request` and reads its response, which must come.
    async fn exchange(&mut self, request: impl AsRef<[u8]>) -> Reply {
        self.send(request).await;
        self.response().await.expect("a response before the close")
    }

    /// Whether the server has closed the connection (a hang fails the test).
    async fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        within(
            "the server to close the connection",
            self.io.read_to_end(&mut rest),
        )
        .await
        .map_or(true, |_| rest.is_empty())
    }
}

/// A `POST /` with `body`, `Content-Length` and these extra header lines.
fn post(headers: &str, body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const JSON: &str = "Content-Type: application/json\r\n";
const SUM: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

#[tokio::test]
async fn post_bodies_must_be_sent_as_json() {
    let addr = serve(WsServer::new(common::spec_router())).await;
    for refused in [
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: text/plain+json\r\n",
        "Content-Type: text/plain;charset=UTF-8\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
        "",
    ] {
        let reply = Http::connect(addr).await.exchange(post(refused, SUM)).await;
        assert_eq!(reply.status, 415, "{refused:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let error = reply.json();
        assert_eq!(error["error"]["code"], -32600, "{refused:?}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Content-Type: application/json"),
            "{message}"
        );
    }
    for accepted in [
        "Content-Type: application/json\r\n",
        "Content-Type: application/json; charset=UTF-8\r\n",
        "Content-Type: APPLICATION/JSON-RPC\r\n",
        "Content-Type: application/jsonrequest\r\n",
    ] {
        let reply = Http::connect(addr)
            .await
            .exchange(post(accepted, SUM))
            .await;
        assert_eq!(reply.status, 200, "{accepted:?}");
        assert_eq!(reply.json()["result"], 3);
    }
    // RFC 8259 §8.1: a byte order mark before the JSON may be ignored.
    let reply = Http::connect(addr)
        .await
        .exchange(post(JSON, &format!("\u{feff}{SUM}")))
        .await;
    assert_eq!(reply.json()["result"], 3, "{}", reply.body);
}

#[tokio::test]
async fn only_the_chunked_transfer_coding_is_taken() {
    let addr = serve(WsServer::new(common::spec_router())).await;
    let chunked = |coding: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Transfer-Encoding: {coding}\r\n\r\n{:x}\r\n{SUM}\r\n0\r\n\r\n",
            SUM.len()
        )
    };
    for coding in ["gzip, chunked", "deflate,chunked", "chunked, chunked"] {
        let mut http = Http::connect(addr).await;
        let reply = http.exchange(chunked(coding)).await;
        assert_eq!(reply.status, 400, "{coding}: {}", reply.body);
        assert!(reply.body.contains("transfer coding"), "{}", reply.body);
        assert!(http.is_closed().await, "{coding}");
    }
    let reply = Http::connect(addr).await.exchange(chunked("chunked")).await;
    assert_eq!((reply.status, &reply.json()["result"]), (200, &json!(3)));
}

#[tokio::test]
async fn content_length_beside_transfer_encoding_is_refused() {
    let addr = serve(WsServer::new(common::spec_router())).await;
    for (first, second) in [
        ("Content-Length: 5", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "content-length: 5"),
    ] {
        let mut http = Http::connect(addr).await;
        let reply = http
            .exchange(format!(
                "POST / HTTP/1.1\r\nHost: t\r\n{JSON}{first}\r\n{second}\r\n\r\n0\r\n\r\n"
            ))
            .await;
        assert_eq!(reply.status, 400, "{first} + {second}");
        assert!(reply.body.contains("both"), "{}", reply.body);
        assert!(http.is_closed().await);
    }
    // Also behind a good chunked request on the same connection, where a
    // smuggled request would hide.
    let mut http = Http::connect(addr).await;
    http.send(format!(
        "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Transfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{SUM}\r\n0\r\nX-Trailer: 1\r\n\r\n\
         POST / HTTP/1.1\r\nHost: t\r\n{JSON}Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n",
        SUM.len()
    ))
    .await;
    assert_eq!(http.response().await.unwrap().status, 200);
    assert_eq!(http.response().await.unwrap().status, 400);
    assert!(http.is_closed().await);
}

#[tokio::test]
async fn pipelined_requests_of_every_framing_are_all_answered() {
    let addr = serve(WsServer::new(common::spec_router())).await;
    let mut http = Http::connect(addr).await;
    // A body that looks like a head must not be taken for one.
    let tricky = r#"{"jsonrpc":"2.0","method":"sum","params":[7],"id":"x"}"#;
    let lookalike =
        "\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    http.send(format!(
        "{}POST / HTTP/1.1\r\nHost: t\r\n{JSON}Transfer-Encoding: chunked\r\n\r\n2\r\n{{\"\r\n{:x}\r\n{}\r\n0\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n{}",
        post(JSON, lookalike),
        tricky.len() - 2,
        &tricky[2..],
        post(JSON, SUM),
    ))
    .await;
    let statuses: Vec<u16> = [
        http.response().await.unwrap(),
        http.response().await.unwrap(),
        http.response().await.unwrap(),
        http.response().await.unwrap(),
    ]
    .iter()
    .map(|r| r.status)
    .collect();
    assert_eq!(statuses, [200, 200, 404, 200]);
    // Still open and in step.
    let reply = http.exchange(post(JSON, SUM)).await;
    assert_eq!(reply.json()["result"], 3);
}

/// Past 1,024 requests read ahead, the server loses track of the heads it
/// must check: it answers the ones read, the last with `Connection: close`,
/// and closes cleanly (lingering, so no answer is lost to a reset).
#[tokio::test]
async fn pipelining_past_the_heads_followed_ends_the_connection_cleanly() {
    let addr = serve(WsServer::new(common::spec_router())).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let requests = post(JSON, SUM).repeat(5000);
    let sender = tokio::spawn(async move {
        // The server may close before all of it is sent.
        let _ = write.write_all(requests.as_bytes()).await;
        write
    });
    let mut received = Vec::new();
    let ended = within("the server to close", read.read_to_end(&mut received)).await;
    assert!(ended.is_ok(), "the connection was reset: {ended:?}");
    let text = String::from_utf8(received).unwrap();
    let answered = text.matches("HTTP/1.1 200 OK").count();
    assert!(answered >= 1024, "{answered} answered");
    assert_eq!(text.matches("HTTP/1.1 ").count(), answered, "only 200s");
    let last = text.rsplit("HTTP/1.1 ").next().unwrap_or_default();
    assert!(last.contains("connection: close"), "{last}");
    assert_eq!(text.matches("connection: close").count(), 1);
    drop(sender.await);
}

#[tokio::test]
async fn slow_or_idle_heads_lose_the_connection() {
    let addr = serve(WsServer::new(common::spec_router()).ws_config(short_timeouts())).await;
    let mut trickled = Http::connect(addr).await;
    trickled.send("POST / HTTP/1.1\r\nHost: t\r\nConte").await;
    assert!(trickled.is_closed().await);
    // Idle after an answer: closed too.
    let mut idle = Http::connect(addr).await;
    assert_eq!(idle.exchange(post(JSON, SUM)).await.status, 200);
    assert!(idle.is_closed().await);
}

#[tokio::test]
async fn slow_bodies_get_408_and_lose_the_connection() {
    let addr = serve(WsServer::new(common::spec_router()).ws_config(short_timeouts())).await;
    // Shorter than its Content-Length.
    let mut short = Http::connect(addr).await;
    let reply = short
        .exchange(format!(
            "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Content-Length: 100\r\n\r\n{{\"jsonrpc\""
        ))
        .await;
    assert_eq!(reply.status, 408, "{}", reply.body);
    assert!(short.is_closed().await);
    // A chunked body whose last chunk never comes.
    let mut chunked = Http::connect(addr).await;
    let reply = chunked
        .exchange(format!(
            "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n"
        ))
        .await;
    assert_eq!(reply.status, 408);
    assert!(chunked.is_closed().await);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_as_soon_as_the_excess_is_known() {
    let config = WsConfig {
        max_message_len: 1024,
        ..WsConfig::default()
    };
    let addr = serve(WsServer::new(common::spec_router()).ws_config(config)).await;
    // Declared: refused before a byte of the body is sent.
    let mut declared = Http::connect(addr).await;
    let reply = declared
        .exchange(format!(
            "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Content-Length: 1025\r\n\r\n"
        ))
        .await;
    assert_eq!(reply.status, 413);
    assert!(reply.body.contains("1024"), "{}", reply.body);
    assert!(declared.is_closed().await);
    // Chunked: counted as it comes.
    let mut chunked = Http::connect(addr).await;
    let chunk = format!("200\r\n{}\r\n", " ".repeat(0x200));
    let reply = chunked
        .exchange(format!(
            "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Transfer-Encoding: chunked\r\n\r\n{chunk}{chunk}{chunk}"
        ))
        .await;
    assert_eq!(reply.status, 413);
    assert!(chunked.is_closed().await);
}

/// Waits until `budget` holds at least `bytes` (the server has read that
/// much of some body). Not a timing assertion: only a hang fails.
async fn until_held(budget: &BodyBudget, bytes: usize) {
    within("the server to read the body", async {
        while budget.in_use() < bytes {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn bodies_in_flight_share_one_budget_and_give_it_back() {
    let budget = BodyBudget::new(4096);
    let config = WsConfig {
        max_message_len: 4096,
        http_body_budget: budget.clone(),
        ..WsConfig::default()
    };
    let addr = serve(WsServer::new(common::spec_router()).ws_config(config)).await;
    // A body of 3,000 bytes, two thirds sent, then held back.
    let body = format!("{SUM}{}", " ".repeat(3000 - SUM.len()));
    let mut slow = Http::connect(addr).await;
    slow.send(format!(
        "POST / HTTP/1.1\r\nHost: t\r\n{JSON}Content-Length: 3000\r\n\r\n{}",
        &body[..2000]
    ))
    .await;
    until_held(&budget, 2000).await;
    // Another body that does not fit beside it is refused at once.
    let mut other = Http::connect(addr).await;
    let reply = other.exchange(post(JSON, &body)).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(other.is_closed().await);
    // The first one completes, and its share comes back.
    slow.send(&body[2000..]).await;
    let reply = slow.response().await.unwrap();
    assert_eq!((reply.status, &reply.json()["result"]), (200, &json!(3)));
    assert_eq!(budget.in_use(), 0);
    // One keep-alive connection, request after request: nothing is pinned.
    let mut keep = Http::connect(addr).await;
    for _ in 0..20 {
        assert_eq!(keep.exchange(post(JSON, &body)).await.status, 200);
        assert_eq!(budget.in_use(), 0);
    }
}

/// Entries that are all answered at once by one call: none of them runs.
#[derive(Default)]
struct Counted {
    calls: AtomicUsize,
}

fn counting_router(counted: Arc<Counted>) -> Router<Arc<Counted>> {
    let mut router = Router::with_state(counted);
    router.method("count", |_: Value, cx: Context<Arc<Counted>>| async move {
        cx.state().calls.fetch_add(1, Ordering::Relaxed);
        Ok::<_, ErrorObject>(true)
    });
    router
}

fn batch(method: &str, n: usize) -> String {
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"jsonrpc": "2.0", "method": method, "params": [i, n], "id": i}))
        .collect();
    Value::Array(entries).to_string()
}

#[tokio::test]
async fn the_batch_limit_and_its_error_are_the_same_over_http_and_websocket() {
    let counted = Arc::new(Counted::default());
    let router = counting_router(counted.clone());
    let addr = serve(WsServer::new(router.clone())).await;
    let too_long = batch("count", 1025);
    let over_http = Http::connect(addr)
        .await
        .exchange(post(JSON, &too_long))
        .await;
    assert_eq!(over_http.status, 200);
    let mut ws = rpcpeer::ws::connect(&format!("ws://{addr}/"), &WsConfig::default())
        .await
        .unwrap();
    ws.send(too_long).await.unwrap();
    let over_websocket = within("the WebSocket reply", ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(over_websocket, over_http.body);
    assert_eq!(
        over_http.json(),
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: a batch of 1025 entries exceeds the limit of 1024"}, "id": null})
    );
    assert_eq!(counted.calls.load(Ordering::Relaxed), 0, "none ran");
    // At the limit: every entry runs.
    let reply = Http::connect(addr)
        .await
        .exchange(post(JSON, &batch("count", 1024)))
        .await;
    assert_eq!(reply.json().as_array().unwrap().len(), 1024);
    assert_eq!(counted.calls.load(Ordering::Relaxed), 1024);
    // The limit is HttpOptions'.
    let small = serve(WsServer::new(router.clone()).http_options(HttpOptions {
        max_batch_len: 2,
        ..HttpOptions::default()
    }))
    .await;
    let reply = Http::connect(small)
        .await
        .exchange(post(JSON, &batch("count", 3)))
        .await;
    assert_eq!(reply.json()["error"]["code"], -32600);
}

#[tokio::test]
async fn a_long_batch_of_waiting_calls_is_polled_a_bounded_number_of_times_per_call() {
    let n = 1024;
    let (router, chain) = common::chain_router(n);
    let addr = serve(WsServer::new(router)).await;
    let reply = Http::connect(addr)
        .await
        .exchange(post(JSON, &batch("chain", n)))
        .await;
    let results: Vec<Value> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].clone())
        .collect();
    assert_eq!(results, (0..n).map(|i| json!(i)).collect::<Vec<_>>());
    // Each call is polled when it starts and when it is woken; polling all
    // of them at every wake-up would be some n²/2 = 500,000 polls.
    let polls = chain.polls.load(Ordering::Relaxed);
    assert!(polls <= 4 * n, "{polls} polls for {n} calls");
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let preflight = |origin: &str| {
        format!(
            "OPTIONS / HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n"
        )
    };
    let with_origin = |origin: &str| post(&format!("{JSON}Origin: {origin}\r\n"), SUM);

    let closed = serve(WsServer::new(common::spec_router())).await;
    let mut http = Http::connect(closed).await;
    let reply = http.exchange(preflight("http://page.example")).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let reply = http.exchange(with_origin("http://page.example")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);

    let open = serve(
        WsServer::new(common::spec_router()).http_options(HttpOptions {
            allowed_origins: vec!["http://app.example:8080".into()],
            ..HttpOptions::default()
        }),
    )
    .await;
    let mut http = Http::connect(open).await;
    let reply = http.exchange(preflight("http://app.example:8080")).await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://app.example:8080")
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("POST, GET")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("Content-Type, Authorization")
    );
    let reply = http.exchange(with_origin("http://app.example:8080")).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://app.example:8080")
    );
    assert_eq!(reply.header("vary"), Some("Origin"));
    let reply = http.exchange(preflight("http://other.example")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let reply = http.exchange(with_origin("http://other.example")).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);

    // The transport's own refusals carry them too: a page of an allowed
    // origin reads its 413, rather than a bare network error.
    let small = serve(
        WsServer::new(common::spec_router())
            .ws_config(WsConfig {
                max_message_len: 16,
                ..WsConfig::default()
            })
            .http_options(HttpOptions {
                allowed_origins: vec!["http://app.example:8080".into()],
                ..HttpOptions::default()
            }),
    )
    .await;
    let mut http = Http::connect(small).await;
    let reply = http
        .exchange(post(
            &format!("{JSON}Origin: http://app.example:8080\r\n"),
            SUM,
        ))
        .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://app.example:8080")
    );
    assert_eq!(reply.header("vary"), Some("Origin"));
}

/// A chat room's methods, written as an application would, with no check of
/// its own for HTTP: the library's `Group::join` does it.
#[derive(Clone)]
struct Joined(Member);

fn room_router(room: Group) -> Router<Group> {
    let mut router = Router::with_state(room);
    router.method(
        "login",
        |(name,): (String,), cx: Context<Group>| async move {
            cx.session().insert(name);
            Ok::<_, ErrorObject>(true)
        },
    );
    router.method("join", |cx: Context<Group>| async move {
        let member = cx.state().join(cx.peer().clone())?;
        cx.session().insert(Joined(member));
        Ok::<_, ErrorObject>(true)
    });
    router.method(
        "postMessage",
        |(text,): (String,), cx: Context<Group>| async move {
            let Some(Joined(member)) = cx.session().get::<Joined>() else {
                return Err(ErrorObject::new(-32010, "join first"));
            };
            member
                .notify_others("handleMessage", [text])
                .map_err(ErrorObject::from)
        },
    );
    router
}

#[tokio::test]
async fn http_calls_cannot_join_groups() {
    let room = Group::new(16, SlowMember::DropOldest);
    let addr = serve(WsServer::new(room_router(room.clone()))).await;
    let reply = Http::connect(addr)
        .await
        .exchange(post(
            JSON,
            r#"[{"jsonrpc":"2.0","method":"login","params":["eve"],"id":1},
                {"jsonrpc":"2.0","method":"join","id":2},
                {"jsonrpc":"2.0","method":"postMessage","params":["hi"],"id":3}]"#,
        ))
        .await;
    let replies = reply.json();
    assert_eq!(replies[0]["result"], true);
    assert_eq!(replies[1]["error"]["code"], ErrorObject::NO_CONNECTION);
    assert_eq!(replies[1]["error"]["code"], -32004);
    let message = replies[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("need a connection"), "{message}");
    assert!(message.contains("WebSocket or TCP"), "{message}");
    assert_eq!(replies[2]["error"]["code"], -32010);
    assert!(room.is_empty());
    // Over WebSocket, the same call joins.
    let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &WsConfig::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    assert!(within("join", peer.request::<bool>("join", ()))
        .await
        .unwrap());
    assert_eq!(room.len(), 1);
}

#[tokio::test]
async fn a_websocket_only_port_refuses_plain_http() {
    let addr = serve(WsServer::new(common::spec_router()).ws_config(WsConfig {
        protocols: Protocols::WebSocketOnly,
        ..WsConfig::default()
    }))
    .await;
    let mut http = Http::connect(addr).await;
    let reply = http.exchange(post(JSON, SUM)).await;
    assert_eq!(reply.status, 426, "{}", reply.body);
    assert_eq!(reply.header("upgrade"), Some("websocket"));
    assert!(reply.body.contains("WebSocket only"), "{}", reply.body);
    assert!(http.is_closed().await);
    let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &WsConfig::default())
        .await
        .unwrap();
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    assert_eq!(
        within("sum", peer.request::<i64>("sum", [1, 2]))
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn an_http_only_port_refuses_websocket_upgrades() {
    let addr = serve(WsServer::new(common::spec_router()).ws_config(WsConfig {
        protocols: Protocols::HttpOnly,
        ..WsConfig::default()
    }))
    .await;
    let err = within(
        "the refused upgrade",
        rpcpeer::ws::connect(&format!("ws://{addr}/"), &WsConfig::default()),
    )
    .await
    .expect_err("no WebSocket here");
    assert!(err.to_string().contains("400"), "{err}");
    let mut http = Http::connect(addr).await;
    let reply = http
        .exchange(
            "GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("plain HTTP only"), "{}", reply.body);
    assert!(http.is_closed().await);
    let reply = Http::connect(addr).await.exchange(post(JSON, SUM)).await;
    assert_eq!(reply.json()["result"], 3);
}

#[tokio::test]
async fn malformed_requests_get_an_answer_or_a_close_and_the_server_goes_on() {
    let addr = serve(WsServer::new(common::spec_router()).ws_config(short_timeouts())).await;
    let long_header = format!("X-Long: {}\r\n", "a".repeat(20_000));
    let requests: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nab".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n".to_vec(),
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n\xff\xfe"
            .to_vec(),
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
        format!("POST / HTTP/1.1\r\n{long_header}{JSON}Content-Length: 2\r\n\r\n[]").into_bytes(),
        b"GET /%ff%fe?%zz=%%&callback=( HTTP/1.1\r\n\r\n".to_vec(),
        b"OPTIONS * HTTP/1.1\r\nOrigin: x\r\nAccess-Control-Request-Method: PUT\r\n\r\n".to_vec(),
    ];
    for request in &requests {
        let mut http = Http::connect(addr).await;
        http.send(request).await;
        // An answer or a close (a hang fails), never a dead server.
        let _ = http.response().await;
    }
    let reply = Http::connect(addr).await.exchange(post(JSON, SUM)).await;
    assert_eq!(reply.json()["result"], 3);
}

//! Authentication over real sockets: every way in (login method, WebSocket handshake, HTTP
//! headers, credentials in params) and every way it must refuse, with the handler never run.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{within, Wire};
use futures::{SinkExt, StreamExt};
use rpcpeer::auth::{AuthError, Credentials, Identity, LoginLimits, RemoteAddr};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{sync_fn, Concurrency, Context, Driver, ErrorObject, Router, Session};
use rpcpeer_stream::{Framing, TcpListener};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// How often each thing happened.
#[derive(Default)]
struct Counts {
    /// Calls the authenticator answered.
    checked: AtomicUsize,
    /// Handler runs of the methods that need a caller.
    ran: AtomicUsize,
}

impl Counts {
    fn checked(&self) -> usize {
        self.checked.load(Ordering::SeqCst)
    }

    fn ran(&self) -> usize {
        self.ran.load(Ordering::SeqCst)
    }
}

type Cx = Context<Arc<Counts>>;

/// ada/secret (role admin) and bob/pw; the token `t0k` is ada's.
fn router(counts: &Arc<Counts>) -> Router<Arc<Counts>> {
    let mut router = Router::with_state(counts.clone());
    let checked = counts.clone();
    router.authenticator(move |credentials: Credentials| {
        checked.checked.fetch_add(1, Ordering::SeqCst);
        async move {
            match credentials {
                Credentials::Password { user, password }
                    if user == "ada" && password == "secret" =>
                {
                    Ok(Identity::new("ada").with_role("admin"))
                }
                Credentials::Password { user, password } if user == "bob" && password == "pw" => {
                    Ok(Identity::new("bob"))
                }
                Credentials::Token(token) if token == "t0k" => {
                    Ok(Identity::new("ada").with_role("admin"))
                }
                _ => Err(AuthError::Rejected),
            }
        }
    });
    router
        .method(
            "login",
            |(user, password): (String, String), cx: Cx| async move {
                let identity = cx.login(Credentials::Password { user, password }).await?;
                Ok::<_, ErrorObject>(identity.user)
            },
        )
        .concurrency(Concurrency::Exclusive);
    router
        .method("secret", |cx: Cx| async move {
            cx.state().ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>(cx.identity().map(|id| id.user))
        })
        .authenticated()
        .safe();
    router
        .method("add", |(n,): (i64,), cx: Cx| async move {
            cx.state().ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>(n + 1)
        })
        .authenticated();
    router
        .method("admin", |cx: Cx| async move {
            cx.state().ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>("done")
        })
        .role("admin");
    router
        .notification("note", |cx: Cx| async move {
            cx.state().ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>(())
        })
        .authenticated();
    router.method("public", || async { Ok::<_, ErrorObject>("open") });
    router
        .method("sync", || async { Ok::<_, ErrorObject>(()) })
        .concurrency(Concurrency::Exclusive);
    router
}

/// Serves `router` over newline-framed TCP, each connection's session
/// knowing its remote address (as `rpcpeer serve` does).
async fn serve_tcp<S: Send + Sync + 'static>(router: Router<S>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((transport, remote)) = listener.accept().await {
            let session = Session::new();
            session.insert(RemoteAddr(remote));
            let (_peer, driver) = Driver::builder(transport, router.clone())
                .session(session)
                .build();
            tokio::spawn(driver);
        }
    });
    addr
}

async fn serve_ws<S: Send + Sync + 'static>(router: Router<S>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(WsServer::new(router).serve(listener));
    addr
}

fn code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

fn login(id: u32, user: &str, password: &str) -> String {
    json!({"jsonrpc": "2.0", "method": "login", "params": [user, password], "id": id}).to_string()
}

#[tokio::test]
async fn a_login_method_lets_the_connection_call_what_needs_a_caller() {
    let counts = Arc::new(Counts::default());
    let addr = serve_tcp(router(&counts)).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"secret","id":1}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`secret`") && message.contains("log in first"),
        "{reply}"
    );
    assert_eq!(counts.ran(), 0, "the handler ran without a caller");

    let reply = wire.call(&login(2, "ada", "wrong")).await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"secret","id":3}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");

    assert_eq!(
        wire.call(&login(4, "ada", "secret")).await,
        json!({"jsonrpc":"2.0","result":"ada","id":4})
    );
    assert_eq!(
        wire.call(r#"{"jsonrpc":"2.0","method":"secret","id":5}"#)
            .await,
        json!({"jsonrpc":"2.0","result":"ada","id":5})
    );
    assert_eq!(counts.ran(), 1);
    // The login belongs to that connection only.
    let mut other = Wire::connect(addr, Framing::Newline).await;
    let reply = other
        .call(r#"{"jsonrpc":"2.0","method":"secret","id":1}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    assert_eq!(counts.ran(), 1);
}

#[tokio::test]
async fn a_caller_without_the_role_is_forbidden() {
    let counts = Arc::new(Counts::default());
    let addr = serve_tcp(router(&counts)).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"admin","id":1}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    wire.call(&login(2, "bob", "pw")).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"admin","id":3}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::FORBIDDEN, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`admin`") && m.contains("bob")),
        "{reply}"
    );
    assert_eq!(counts.ran(), 0);
    let mut ada = Wire::connect(addr, Framing::Newline).await;
    ada.call(&login(1, "ada", "secret")).await;
    assert_eq!(
        ada.call(r#"{"jsonrpc":"2.0","method":"admin","id":2}"#)
            .await,
        json!({"jsonrpc":"2.0","result":"done","id":2})
    );
    assert_eq!(counts.ran(), 1);
}

#[tokio::test]
async fn refused_notifications_never_run_and_a_refused_batch_item_leaves_the_rest() {
    let counts = Arc::new(Counts::default());
    let addr = serve_tcp(router(&counts)).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"note","params":[]}"#)
        .await;
    wire.expect_no_reply().await;
    assert_eq!(counts.ran(), 0, "a refused notification ran");

    let reply = wire
        .call(
            r#"[{"jsonrpc":"2.0","method":"secret","id":1},
                {"jsonrpc":"2.0","method":"public","id":2},
                {"jsonrpc":"2.0","method":"note"}]"#,
        )
        .await;
    let replies = reply.as_array().expect("a batch reply");
    assert_eq!(replies.len(), 2, "{reply}");
    assert_eq!(code(&replies[0]), ErrorObject::UNAUTHORIZED, "{reply}");
    assert_eq!(replies[1], json!({"jsonrpc":"2.0","result":"open","id":2}));
    assert_eq!(counts.ran(), 0);
}

/// The answer with `id` in a batch's answer.
fn entry(reply: &Value, id: u64) -> &Value {
    let entries = reply
        .as_array()
        .unwrap_or_else(|| panic!("not a batch answer: {reply}"));
    let found = entries.iter().find(|entry| entry["id"] == id);
    found.unwrap_or_else(|| panic!("no answer with id {id}: {reply}"))
}

/// A caller is looked at when the call starts: a call read after a logout
/// that runs before it is refused, whether the logout is an earlier entry
/// of its batch (awaiting nothing, so run as it is read, or `async`, run
/// when the batch starts) or an exclusive call read before it.
#[tokio::test]
async fn a_logout_that_runs_first_refuses_the_calls_read_after_it() {
    let counts = Arc::new(Counts::default());
    let mut router = router(&counts);
    router
        .method("logout", |cx: Cx| async move {
            Ok::<_, ErrorObject>(cx.logout().is_some())
        })
        .concurrency(Concurrency::Exclusive);
    router.method(
        "logout_now",
        sync_fn(|cx: Cx| Ok::<_, ErrorObject>(cx.logout().is_some())),
    );
    let addr = serve_tcp(router).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let logged_in = json!({"jsonrpc":"2.0","result":"ada","id":1});

    // Logged in, `secret` runs, and a logout after it in the batch does not
    // reach back.
    assert_eq!(wire.call(&login(1, "ada", "secret")).await, logged_in);
    let reply = wire
        .call(
            r#"[{"jsonrpc":"2.0","method":"secret","id":2},
                {"jsonrpc":"2.0","method":"logout_now","id":3}]"#,
        )
        .await;
    assert_eq!(entry(&reply, 2)["result"], "ada", "{reply}");
    assert_eq!(entry(&reply, 3)["result"], true, "{reply}");
    assert_eq!(counts.ran(), 1);

    for logout in ["logout_now", "logout"] {
        assert_eq!(wire.call(&login(1, "ada", "secret")).await, logged_in);
        let batch = format!(
            r#"[{{"jsonrpc":"2.0","method":"{logout}","id":2}},
                {{"jsonrpc":"2.0","method":"secret","id":3}}]"#
        );
        let reply = wire.call(&batch).await;
        assert_eq!(entry(&reply, 2)["result"], true, "{logout}: {reply}");
        assert_eq!(
            code(entry(&reply, 3)),
            ErrorObject::UNAUTHORIZED,
            "{logout}: {reply}"
        );
    }
    assert_eq!(counts.ran(), 1, "`secret` ran for a caller logged out");

    // Two frames in one write: `secret` is read while the exclusive logout
    // has yet to run.
    assert_eq!(wire.call(&login(1, "ada", "secret")).await, logged_in);
    wire.send_raw(
        concat!(
            r#"{"jsonrpc":"2.0","method":"logout","id":2}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"secret","id":3}"#,
            "\n"
        )
        .as_bytes(),
    )
    .await;
    let first = wire.recv().await;
    assert_eq!(first, json!({"jsonrpc":"2.0","result":true,"id":2}));
    let second = wire.recv().await;
    assert_eq!(code(&second), ErrorObject::UNAUTHORIZED, "{second}");
    assert_eq!(counts.ran(), 1, "`secret` ran for a caller logged out");
}

#[tokio::test]
async fn a_1_0_call_is_refused_in_1_0_form() {
    let counts = Arc::new(Counts::default());
    let addr = serve_tcp(router(&counts)).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire.call(r#"{"method":"secret","params":[],"id":7}"#).await;
    assert_eq!(reply["result"], Value::Null, "{reply}");
    assert_eq!(reply["id"], 7, "{reply}");
    assert!(reply.get("jsonrpc").is_none(), "{reply}");
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    assert_eq!(counts.ran(), 0);
}

#[tokio::test]
async fn failed_logins_are_cut_off_per_connection_without_asking_the_authenticator() {
    let counts = Arc::new(Counts::default());
    let addr = serve_tcp(router(&counts)).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    for id in 0..5 {
        let reply = wire.call(&login(id, "ada", "guess")).await;
        assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    }
    // Even the right password: the connection has used its attempts.
    let reply = wire.call(&login(5, "ada", "secret")).await;
    assert_eq!(code(&reply), ErrorObject::TOO_MANY_LOGINS, "{reply}");
    assert!(
        reply["error"]["data"]["retry_after"]
            .as_u64()
            .is_some_and(|s| s > 0),
        "{reply}"
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("connection") && m.contains("retry in")),
        "{reply}"
    );
    assert_eq!(counts.checked(), 5);
    // Another connection from the same address still may (5 < 20).
    let mut other = Wire::connect(addr, Framing::Newline).await;
    assert_eq!(
        other.call(&login(1, "ada", "secret")).await["result"],
        "ada"
    );
}

#[tokio::test]
async fn failed_logins_are_cut_off_per_address_across_connections() {
    let counts = Arc::new(Counts::default());
    let mut router = router(&counts);
    router.login_limits(LoginLimits {
        per_connection: 5,
        per_address: 8,
        ..LoginLimits::default()
    });
    let addr = serve_tcp(router).await;
    let mut first = Wire::connect(addr, Framing::Newline).await;
    for id in 0..5 {
        assert_eq!(
            code(&first.call(&login(id, "ada", "guess")).await),
            ErrorObject::UNAUTHORIZED
        );
    }
    let mut second = Wire::connect(addr, Framing::Newline).await;
    for id in 0..3 {
        assert_eq!(
            code(&second.call(&login(id, "ada", "guess")).await),
            ErrorObject::UNAUTHORIZED
        );
    }
    let reply = second.call(&login(3, "ada", "secret")).await;
    assert_eq!(code(&reply), ErrorObject::TOO_MANY_LOGINS, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("address")),
        "{reply}"
    );
    assert_eq!(counts.checked(), 8);
}

/// A raw HTTP/1.1 exchange on a fresh connection: status, headers (lower
/// case names) and body.
async fn http(addr: SocketAddr, request: String) -> (u16, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    within("an HTTP response", tcp.read_to_end(&mut raw))
        .await
        .expect("read");
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn post(auth: Option<&str>, body: &str) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn get(auth: Option<&str>, path: &str) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\r\n")
}

/// `Basic` of ada:secret, bob:pw and ada:wrong.
const ADA: &str = "Basic YWRhOnNlY3JldA==";
const BOB: &str = "Basic Ym9iOnB3";
const WRONG: &str = "Basic YWRhOndyb25n";

#[tokio::test]
async fn http_post_and_get_authenticate_by_header() {
    let counts = Arc::new(Counts::default());
    let addr = serve_ws(router(&counts)).await;
    let secret = r#"{"jsonrpc":"2.0","method":"secret","id":1}"#;

    let (status, _, body) = http(addr, post(Some(ADA), secret)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"jsonrpc":"2.0","result":"ada","id":1}"#)
    );
    let (status, _, body) = http(addr, post(Some("Bearer t0k"), secret)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"jsonrpc":"2.0","result":"ada","id":1}"#)
    );
    let (status, _, body) = http(addr, get(Some(BOB), "/secret")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"jsonrpc":"2.0","result":"bob","id":null}"#)
    );
    assert_eq!(counts.ran(), 3);

    // No credentials: the call runs unauthenticated and is refused.
    let (status, _, body) = http(addr, post(None, secret)).await;
    assert_eq!(status, 200);
    assert!(body.contains("-32001"), "{body}");
    let (status, _, body) = http(addr, get(None, "/secret")).await;
    assert_eq!(status, 200);
    assert!(body.contains("-32001"), "{body}");
    // Wrong credentials: 401, and nothing runs.
    let (status, head, body) = http(addr, post(Some(WRONG), secret)).await;
    assert_eq!(status, 401, "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(body.contains("-32001"), "{body}");
    let (status, _, _) = http(addr, get(Some("Bearer nope"), "/secret")).await;
    assert_eq!(status, 401);
    let (status, _, body) = http(addr, post(Some("Digest x"), secret)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(counts.ran(), 3);
}

#[tokio::test]
async fn fifty_wrong_logins_in_one_http_batch_are_cut_off_by_the_throttle() {
    let counts = Arc::new(Counts::default());
    let addr = serve_ws(router(&counts)).await;
    let batch: Vec<Value> = (0..50)
        .map(|id| serde_json::from_str(&login(id, "ada", &format!("guess{id}"))).expect("JSON"))
        .collect();
    let (status, _, body) = http(addr, post(None, &Value::Array(batch).to_string())).await;
    assert_eq!(status, 200);
    let replies: Vec<Value> = serde_json::from_str(&body).expect("a batch reply");
    let count = |c: i64| replies.iter().filter(|r| code(r) == c).count();
    assert_eq!(count(ErrorObject::UNAUTHORIZED), 5, "{body}");
    assert_eq!(count(ErrorObject::TOO_MANY_LOGINS), 45, "{body}");
    assert_eq!(counts.checked(), 5);
    // The address has 15 of its 20 left; past them, a header login gets 429.
    for _ in 0..15 {
        assert_eq!(http(addr, post(Some(WRONG), "{}")).await.0, 401);
    }
    let (status, head, body) = http(addr, post(Some(ADA), "{}")).await;
    assert_eq!(status, 429, "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    assert!(body.contains("-32006"), "{body}");
    assert_eq!(counts.checked(), 20);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `url`, with `Authorization` if given; the HTTP
/// status of a refused handshake.
async fn ws(url: &str, auth: Option<&str>) -> Result<Ws, u16> {
    let mut request = url.into_client_request().expect("a request");
    if let Some(auth) = auth {
        request
            .headers_mut()
            .insert("authorization", auth.parse().expect("a header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("handshake failed otherwise: {err}"),
    }
}

async fn ws_call(ws: &mut Ws, text: &str) -> Value {
    ws.send(Message::text(text)).await.expect("send");
    loop {
        match within("a WebSocket reply", ws.next()).await {
            Some(Ok(Message::Text(reply))) => {
                return serde_json::from_str(&reply).expect("JSON reply")
            }
            Some(Ok(_)) => continue,
            other => panic!("no reply: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_websocket_handshake_authenticates_by_header_or_query_token() {
    let counts = Arc::new(Counts::default());
    let addr = serve_ws(router(&counts)).await;
    let secret = r#"{"jsonrpc":"2.0","method":"secret","id":1}"#;

    let mut by_header = ws(&format!("ws://{addr}/"), Some(ADA))
        .await
        .expect("accepted");
    assert_eq!(ws_call(&mut by_header, secret).await["result"], "ada");
    let mut by_token = ws(&format!("ws://{addr}/?token=t0k"), None)
        .await
        .expect("accepted");
    assert_eq!(ws_call(&mut by_token, secret).await["result"], "ada");
    assert_eq!(counts.ran(), 2);

    assert_eq!(
        ws(&format!("ws://{addr}/"), Some(WRONG)).await.err(),
        Some(401)
    );
    assert_eq!(
        ws(&format!("ws://{addr}/?token=nope"), None).await.err(),
        Some(401)
    );

    // No credentials: connected, but refused until it logs in.
    let mut anonymous = ws(&format!("ws://{addr}/"), None).await.expect("accepted");
    let reply = ws_call(&mut anonymous, secret).await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    assert_eq!(counts.ran(), 2);
    assert_eq!(
        ws_call(&mut anonymous, &login(2, "bob", "pw")).await["result"],
        "bob"
    );
    assert_eq!(ws_call(&mut anonymous, secret).await["result"], "bob");
}

#[tokio::test]
async fn credentials_in_params_are_checked_and_stripped_when_turned_on() {
    let counts = Arc::new(Counts::default());
    let mut router = router(&counts);
    router.credentials_in_params(true);
    let addr = serve_tcp(router).await;

    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"add","params":["ada","wrong",41],"id":1}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    // The caller learns how its params were read.
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "`add` needs a login, and its leading params, read as credentials, were refused: "
        ),
        "{reply}"
    );
    assert_eq!(counts.ran(), 0);
    assert_eq!(
        wire.call(r#"{"jsonrpc":"2.0","method":"add","params":["ada","secret",41],"id":2}"#)
            .await,
        json!({"jsonrpc":"2.0","result":42,"id":2})
    );
    // Logged in now: later calls carry their own params only.
    assert_eq!(
        wire.call(r#"{"jsonrpc":"2.0","method":"add","params":[1],"id":3}"#)
            .await,
        json!({"jsonrpc":"2.0","result":2,"id":3})
    );
    // Through the throttle like any login.
    let mut other = Wire::connect(addr, Framing::Newline).await;
    for id in 0..5 {
        other
            .call(
                &json!({"jsonrpc":"2.0","method":"secret","params":["ada","x"],"id":id})
                    .to_string(),
            )
            .await;
    }
    let reply = other
        .call(r#"{"jsonrpc":"2.0","method":"secret","params":["ada","secret"],"id":9}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::TOO_MANY_LOGINS, "{reply}");
    assert_eq!(counts.ran(), 2);

    // Off (the default): the strings are params like any other.
    let counts = Arc::new(Counts::default());
    let addr = serve_tcp(self::router(&counts)).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"add","params":["ada","secret",41],"id":1}"#)
        .await;
    assert_eq!(code(&reply), ErrorObject::UNAUTHORIZED, "{reply}");
    assert_eq!(counts.checked(), 0);
}

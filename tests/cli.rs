//! The `rpcpeer` binary end to end: `serve` on port 0 driven by raw frames (both framings), WebSocket, HTTP and the client subcommands, then SIGTERM.

#[path = "common/binary.rs"]
mod binary;

#[cfg(unix)]
use binary::background;
use binary::{ended, rpcpeer, stderr, stdout, within, BIN};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rpcpeer::stream::{connect_tcp, Framed, Framing};
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Every TCP framing `serve --framing` takes.
const FRAMINGS: [Framing; 2] = [Framing::Newline, Framing::ContentLength];

/// The next line of a child's output; the output must not end first.
async fn next_line<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>, what: &str) -> String {
    within(what, lines.next_line())
        .await
        .expect("read a child's output")
        .unwrap_or_else(|| panic!("the output ended before {what}"))
}

/// A running `rpcpeer serve`, killed if a test fails before it stops it.
struct Server {
    child: Child,
    tcp: String,
    ws: String,
    framing: Framing,
}

impl Server {
    /// Starts `serve` on port 0 with two accounts and waits for its two `listening on` lines.
    async fn start(framing: Framing) -> Self {
        Self::launch(framing, &[], Stdio::null(), &[]).await
    }

    /// [`Server::start`] with its stderr going to `stderr`.
    async fn start_with_stderr(framing: Framing, stderr: Stdio) -> Self {
        Self::launch(framing, &[], stderr, &[]).await
    }

    /// [`Server::start`] with more arguments.
    async fn start_with(framing: Framing, more: &[&str]) -> Self {
        Self::launch(framing, more, Stdio::null(), &[]).await
    }

    /// Starts `serve` with `more` arguments, its stderr going to `stderr`
    /// and `env` set.
    async fn launch(framing: Framing, more: &[&str], stderr: Stdio, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .args(["serve", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
            .args(["--framing", framing.as_str()])
            .args(["--user", "alice:secret", "--user", "bob:hunter2"])
            .args(more)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn rpcpeer serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = next_line(&mut lines, "a `listening on` line").await;
        let second = next_line(&mut lines, "a second `listening on` line").await;
        let tcp = first
            .strip_prefix("listening on tcp://")
            .unwrap_or_else(|| panic!("first line: {first}"))
            .to_owned();
        let ws = second
            .strip_prefix("listening on ")
            .filter(|url| {
                (url.starts_with("ws://127.0.0.1:") || url.starts_with("http://127.0.0.1:"))
                    && url.ends_with('/')
            })
            .unwrap_or_else(|| panic!("second line: {second}"))
            .to_owned();
        assert!(tcp.starts_with("127.0.0.1:"), "{tcp}");
        Self {
            child,
            tcp,
            ws,
            framing,
        }
    }

    /// A new raw TCP connection in the server's framing.
    async fn wire(&self) -> Wire {
        Wire {
            io: connect_tcp(self.tcp.as_str(), self.framing)
                .await
                .expect("connect to serve"),
        }
    }

    /// `host:port` of the WebSocket/HTTP listener.
    fn http_addr(&self) -> &str {
        self.ws
            .trim_start_matches("ws://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
    }

    /// SIGTERM, then the exit status, and how long it took to come.
    async fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let pid = self.child.id().expect("still running").to_string();
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = within("serve to exit after SIGTERM", self.child.wait())
            .await
            .expect("wait for serve");
        (status, started.elapsed())
    }
}

/// A raw connection: exact frames out, frames in.
struct Wire {
    io: Framed<TcpStream>,
}

impl Wire {
    /// Sends `text` as one frame.
    async fn send(&mut self, text: &str) {
        self.io.send(text.to_owned()).await.expect("send a frame");
    }

    /// The next frame; the server must not close first.
    async fn recv_text(&mut self) -> String {
        within("a frame", self.io.next())
            .await
            .expect("the server closed the connection")
            .expect("read a frame")
    }

    /// The next frame as JSON.
    async fn recv(&mut self) -> Value {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Sends `text` and returns the next frame as JSON.
    async fn call(&mut self, text: &str) -> Value {
        self.send(text).await;
        self.recv().await
    }

    /// Sends `text` and returns the next frame's exact text.
    async fn call_text(&mut self, text: &str) -> String {
        self.send(text).await;
        self.recv_text().await
    }

    /// Proves nothing else arrived first: the next frame is this request's answer.
    async fn expect_nothing_before_next_reply(&mut self) {
        let reply = self
            .call(r#"{"jsonrpc":"2.0","method":"get_data","id":"probe"}"#)
            .await;
        assert_eq!(reply["id"], "probe", "something arrived unasked: {reply}");
    }
}

/// The `result` of a reply that must not be an error.
fn result(reply: &Value) -> &Value {
    assert!(reply.get("error").is_none(), "an error: {reply}");
    &reply["result"]
}

#[tokio::test]
async fn every_row_of_the_table_over_tcp_in_both_framings() {
    for framing in FRAMINGS {
        let server = Server::start(framing).await;
        let mut wire = server.wire().await;
        let ok = |result: Value, id: Value| json!({"jsonrpc": "2.0", "result": result, "id": id});
        let cases = [
            (
                r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#,
                ok(json!(19), json!(1)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":2}"#,
                ok(json!(19), json!(2)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"subtract","params":[23,42],"id":3}"#,
                ok(json!(-19), json!(3)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"subtract","params":[1.5,1],"id":4}"#,
                ok(json!(0.5), json!(4)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":5}"#,
                ok(json!(7), json!(5)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":6}"#,
                ok(json!(0), json!(6)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"get_data","id":"7"}"#,
                ok(json!(["hello", 5]), json!("7")),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"echo","params":[{"a":[1,null]}],"id":8}"#,
                ok(json!({"a": [1, null]}), json!(8)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"echo","params":{"value":"x"},"id":9}"#,
                ok(json!("x"), json!(9)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"sleep","params":[5],"id":10}"#,
                ok(json!(5), json!(10)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"fail","params":{"code":-32050,"message":"custom","data":{"why":[1]}},"id":11}"#,
                json!({"jsonrpc":"2.0","error":{"code":-32050,"message":"custom","data":{"why":[1]}},"id":11}),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"fail","params":{"code":7,"message":"no data"},"id":12}"#,
                json!({"jsonrpc":"2.0","error":{"code":7,"message":"no data"},"id":12}),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"fail","params":{"code":7,"message":"null data","data":null},"id":13}"#,
                json!({"jsonrpc":"2.0","error":{"code":7,"message":"null data","data":null},"id":13}),
            ),
        ];
        for (request, want) in cases {
            assert_eq!(wire.call(request).await, want, "{framing}: {request}");
        }

        // Integers stay integers, on the wire itself.
        let text = wire
            .call_text(r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#)
            .await;
        assert!(text.contains(r#""result":19,"#), "{text}");
        // echo gives back the exact text of numbers, and ids come back exactly.
        let text = wire
            .call_text(r#"{"jsonrpc":"2.0","method":"echo","params":[12345678901234567890123],"id":18446744073709551615}"#)
            .await;
        assert!(text.contains("12345678901234567890123"), "{text}");
        assert!(text.contains(r#""id":18446744073709551615"#), "{text}");

        // panic: -32603, and the connection goes on.
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"panic","id":"p"}"#)
            .await;
        assert_eq!(reply["error"]["code"], -32603, "{reply}");
        assert_eq!(reply["id"], "p");
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[2,3],"id":"after"}"#)
            .await;
        assert_eq!(result(&reply), &json!(5));

        // The notifications are accepted and answered with nothing.
        for name in ["update", "notify_hello", "notify_sum"] {
            wire.send(&format!(
                r#"{{"jsonrpc":"2.0","method":"{name}","params":[1,2,3]}}"#
            ))
            .await;
        }
        wire.expect_nothing_before_next_reply().await;

        // Errors the spec defines; the connection stays usable after each.
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"nope","id":1}"#)
            .await;
        assert_eq!(reply["error"]["code"], -32601);
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,"#)
            .await;
        assert_eq!(reply["error"]["code"], -32700);
        assert_eq!(reply["id"], Value::Null);
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":{}}"#)
            .await;
        assert_eq!(reply["error"]["code"], -32600);
        assert_eq!(reply["id"], Value::Null);
        let reply = wire
            .call(r#"{"jsonrpc":"2.0","method":"subtract","params":["x",1],"id":2}"#)
            .await;
        assert_eq!(reply["error"]["code"], -32602);
        // A stray response is ignored.
        wire.send(r#"{"jsonrpc":"2.0","result":1,"id":987654}"#)
            .await;
        wire.expect_nothing_before_next_reply().await;

        // 1.0 in, 1.0 out: no "jsonrpc", both members, the same codes.
        let reply = wire
            .call(r#"{"method":"subtract","params":[42,23],"id":5}"#)
            .await;
        assert_eq!(reply, json!({"result": 19, "error": null, "id": 5}));
        let reply = wire.call(r#"{"method":"nope","params":[],"id":6}"#).await;
        assert_eq!(reply["error"]["code"], -32601);
        assert_eq!(reply["result"], Value::Null);
        assert!(reply.get("jsonrpc").is_none(), "{reply}");
        // A 1.0 request with a null id is a notification.
        wire.send(r#"{"method":"sum","params":[1],"id":null}"#)
            .await;
        wire.expect_nothing_before_next_reply().await;

        let (status, _) = server.terminate().await;
        assert!(status.success(), "{status}");
    }
}

#[tokio::test]
async fn login_then_whoami_and_the_error_without_it() {
    let server = Server::start(Framing::Newline).await;
    let mut wire = server.wire().await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"whoami","id":1}"#)
        .await;
    let code = reply["error"]["code"].as_i64().expect("an error code");
    assert!((-32099..=-32000).contains(&code), "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains("authentication required"),
        "{reply}"
    );
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"login","params":["alice","wrong"],"id":2}"#)
        .await;
    assert!(reply["error"]["code"].is_i64(), "{reply}");
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"whoami","id":3}"#)
        .await;
    assert!(
        reply.get("error").is_some(),
        "a failed login logs nobody in: {reply}"
    );
    // Pipelined: the login is answered before the whoami sent after it runs.
    wire.send(r#"{"jsonrpc":"2.0","method":"login","params":{"username":"alice","password":"secret"},"id":4}"#)
        .await;
    wire.send(r#"{"jsonrpc":"2.0","method":"whoami","id":5}"#)
        .await;
    assert_eq!(
        wire.recv().await,
        json!({"jsonrpc":"2.0","result":true,"id":4})
    );
    assert_eq!(
        wire.recv().await,
        json!({"jsonrpc":"2.0","result":"alice","id":5})
    );
    // The login belongs to that connection only.
    let mut other = server.wire().await;
    let reply = other
        .call(r#"{"jsonrpc":"2.0","method":"whoami","id":1}"#)
        .await;
    assert!(reply.get("error").is_some(), "{reply}");
}

/// A connection is in one room: a second `join` naming another room is
/// refused (it used to answer `true` and leave the member where it was);
/// with the same room, or none, it renames.
#[tokio::test]
async fn chat_join_of_a_second_room_is_refused_and_a_rename_is_not() {
    let server = Server::start(Framing::Newline).await;
    let mut ann = server.wire().await;
    let call = |id: u64, params: Value| {
        json!({"jsonrpc": "2.0", "method": "join", "params": params, "id": id}).to_string()
    };
    let first = ann
        .call(&call(1, json!({"name": "ann", "room": "r1"})))
        .await;
    assert_eq!(result(&first), &json!(true));
    let other = ann
        .call(&call(2, json!({"name": "ann", "room": "r2"})))
        .await;
    assert_eq!(other["error"]["code"], -32602, "{other}");
    assert!(
        other["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("in another room already")),
        "{other}"
    );
    for (id, params) in [
        (3, json!({"name": "annie", "room": "r1"})),
        (4, json!({"name": "ann"})),
    ] {
        let renamed = ann.call(&call(id, params)).await;
        assert_eq!(result(&renamed), &json!(true));
    }
}

#[tokio::test]
async fn chat_pushes_reach_the_other_members_and_only_them() {
    for framing in FRAMINGS {
        let server = Server::start(framing).await;
        let (mut ann, mut ben, mut cat) = (
            server.wire().await,
            server.wire().await,
            server.wire().await,
        );
        let joined = json!({"jsonrpc":"2.0","result":true,"id":1});
        assert_eq!(
            ann.call(r#"{"jsonrpc":"2.0","method":"join","params":["ann"],"id":1}"#)
                .await,
            joined
        );
        // ben speaks 1.0, so his pushes come in 1.0 form.
        assert_eq!(
            ben.call(r#"{"method":"join","params":["ben"],"id":1}"#)
                .await,
            json!({"result": true, "error": null, "id": 1})
        );
        // cat never joins.
        let posted = ann
            .call(r#"{"jsonrpc":"2.0","method":"postMessage","params":["hello"],"id":2}"#)
            .await;
        assert_eq!(posted, json!({"jsonrpc":"2.0","result":1,"id":2}));
        assert_eq!(
            ben.recv().await,
            json!({"method": "handleMessage", "params": ["ann", "hello"], "id": null})
        );
        // ben answers in 2.0 now; pushes to him follow.
        let posted = ben
            .call(r#"{"jsonrpc":"2.0","method":"postMessage","params":["hi ann"],"id":"b"}"#)
            .await;
        assert_eq!(result(&posted), &json!(1));
        let push = ann.recv().await;
        assert_eq!(
            push,
            json!({"jsonrpc": "2.0", "method": "handleMessage", "params": ["ben", "hi ann"]})
        );
        assert!(
            push.get("id").is_none(),
            "a 2.0 push has no id member: {push}"
        );
        // The sender and the connection that never joined got nothing.
        ann.expect_nothing_before_next_reply().await;
        cat.expect_nothing_before_next_reply().await;

        // ben hangs up: ann hears of it, cat does not.
        drop(ben);
        assert_eq!(
            ann.recv().await,
            json!({"jsonrpc": "2.0", "method": "userLeft", "params": ["ben"]})
        );
        cat.expect_nothing_before_next_reply().await;
        let (status, _) = server.terminate().await;
        assert!(status.success(), "{status}");
    }
}

#[tokio::test]
async fn callback_calls_the_caller_back_on_the_same_connection() {
    for framing in FRAMINGS {
        let server = Server::start(framing).await;
        let mut wire = server.wire().await;

        // Relays the caller's result.
        wire.send(r#"{"jsonrpc":"2.0","method":"callback","params":{"method":"add","params":[1,2]},"id":"cb1"}"#)
            .await;
        let request = wire.recv().await;
        assert_eq!(request["method"], "add", "{request}");
        assert_eq!(request["params"], json!([1, 2]));
        let id = request["id"].clone();
        assert!(!id.is_null(), "a request, not a notification: {request}");
        wire.send(&json!({"jsonrpc":"2.0","result":{"sum":3},"id":id}).to_string())
            .await;
        assert_eq!(
            wire.recv().await,
            json!({"jsonrpc":"2.0","result":{"sum":3},"id":"cb1"})
        );

        // Relays the caller's error object as it came.
        wire.send(r#"{"jsonrpc":"2.0","method":"callback","params":{"method":"boom","params":{"x":1}},"id":"cb2"}"#)
            .await;
        let request = wire.recv().await;
        assert_eq!(request["params"], json!({"x": 1}));
        let error = json!({"code": 4242, "message": "no such luck", "data": ["d"]});
        wire.send(&json!({"jsonrpc":"2.0","error":error,"id":request["id"]}).to_string())
            .await;
        assert_eq!(
            wire.recv().await,
            json!({"jsonrpc":"2.0","error":error,"id":"cb2"})
        );
    }
}

#[tokio::test]
async fn describe_and_discover_cover_every_method() {
    let table = [
        "subtract",
        "sum",
        "get_data",
        "update",
        "notify_hello",
        "notify_sum",
        "echo",
        "sleep",
        "fail",
        "panic",
        "join",
        "postMessage",
        "members",
        "callback",
        "login",
        "whoami",
        "system.describe",
        "rpc.discover",
    ];
    let server = Server::start(Framing::Newline).await;
    let mut wire = server.wire().await;

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"system.describe","id":1}"#)
        .await;
    let description = result(&reply);
    assert!(description["name"].is_string(), "{description}");
    let procs = description["procs"].as_array().expect("procs");
    let names: Vec<&str> = procs.iter().filter_map(|p| p["name"].as_str()).collect();
    for method in table {
        assert!(names.contains(&method), "system.describe lacks {method}");
    }
    let types = ["bit", "num", "str", "arr", "obj", "any", "nil"];
    for proc in procs {
        for param in proc["params"].as_array().expect("params") {
            assert!(param["name"].is_string(), "{proc}");
            assert!(
                types.contains(&param["type"].as_str().unwrap_or("?")),
                "{proc}"
            );
        }
        assert!(
            types.contains(&proc["return"]["type"].as_str().unwrap_or("?")),
            "{proc}"
        );
    }
    let subtract = procs
        .iter()
        .find(|p| p["name"] == "subtract")
        .expect("subtract");
    assert_eq!(
        subtract["params"],
        json!([{"name": "minuend", "type": "num"}, {"name": "subtrahend", "type": "num"}])
    );
    assert_eq!(subtract["return"]["type"], "num");

    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":2}"#)
        .await;
    let doc = result(&reply);
    assert!(doc["openrpc"].is_string(), "{doc}");
    assert!(doc["info"]["title"].is_string(), "{doc}");
    assert!(doc["info"]["version"].is_string(), "{doc}");
    let methods = doc["methods"].as_array().expect("methods");
    for method in table {
        let entry = methods
            .iter()
            .find(|m| m["name"] == method)
            .unwrap_or_else(|| panic!("rpc.discover lacks {method}"));
        for param in entry["params"].as_array().expect("params") {
            assert!(
                param["name"].is_string() && param.get("schema").is_some(),
                "{entry}"
            );
        }
        // A notification has no result, which is how OpenRPC says it is one.
        if entry["x-notification"] == true {
            assert!(entry.get("result").is_none(), "{entry}");
        } else {
            assert!(entry["result"]["name"].is_string(), "{entry}");
            assert!(entry["result"].get("schema").is_some(), "{entry}");
        }
    }
    let subtract = methods
        .iter()
        .find(|m| m["name"] == "subtract")
        .expect("subtract");
    let param_names: Vec<&Value> = subtract["params"]
        .as_array()
        .expect("params")
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(param_names, [&json!("minuend"), &json!("subtrahend")]);
}

/// One HTTP/1.1 exchange on a fresh connection: (status, content type, body).
async fn http(addr: &str, head: &str, body: &str) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect for HTTP");
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("write HTTP");
    let mut response = String::new();
    within("an HTTP response", tcp.read_to_string(&mut response))
        .await
        .expect("read HTTP");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn websocket_and_http_serve_the_same_table() {
    let server = Server::start(Framing::Newline).await;

    let mut ws = rpcpeer::ws::connect(&server.ws, &rpcpeer::ws::Config::default())
        .await
        .expect("WebSocket connect");
    ws.send(r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#.to_owned())
        .await
        .expect("ws send");
    let reply = within("a WebSocket reply", ws.next())
        .await
        .expect("open")
        .expect("frame");
    assert_eq!(reply, r#"{"jsonrpc":"2.0","result":19,"id":1}"#);
    // The chat reaches across transports: a TCP member hears a WebSocket one.
    let mut tcp = server.wire().await;
    tcp.call(r#"{"jsonrpc":"2.0","method":"join","params":["tcp"],"id":1}"#)
        .await;
    for (request, id) in [
        (
            r#"{"jsonrpc":"2.0","method":"join","params":["web"],"id":2}"#,
            2,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"postMessage","params":["from the web"],"id":3}"#,
            3,
        ),
    ] {
        ws.send(request.to_owned()).await.expect("ws send");
        let reply: Value = serde_json::from_str(
            &within("a WebSocket reply", ws.next())
                .await
                .expect("open")
                .expect("frame"),
        )
        .expect("JSON");
        assert_eq!(reply["id"], id, "{reply}");
    }
    assert_eq!(
        tcp.recv().await,
        json!({"jsonrpc":"2.0","method":"handleMessage","params":["web","from the web"]})
    );

    let addr = server.http_addr();
    let (status, kind, body) = http(
        addr,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2,3],"id":1}"#,
    )
    .await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"jsonrpc":"2.0","result":6,"id":1})
    );
    // A JSON-RPC error is still HTTP 200.
    let (status, kind, body) = http(
        addr,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        r#"{"jsonrpc":"2.0","method":"nope","id":1}"#,
    )
    .await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert!(body.contains("-32601"), "{body}");
    // Nothing to answer: 204.
    let (status, _, body) = http(
        addr,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        r#"{"jsonrpc":"2.0","method":"update","params":[1]}"#,
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    // GET for a safe method, params from the query.
    let (status, _, body) = http(addr, "GET /subtract?minuend=42&subtrahend=23 HTTP/1.1", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["result"],
        19
    );
    // GET for one with side effects, another HTTP method, another media type.
    for (head, want) in [
        ("GET /login?username=a&password=b HTTP/1.1", 405),
        ("DELETE / HTTP/1.1", 405),
        ("POST / HTTP/1.1\r\nContent-Type: text/html", 415),
    ] {
        let (status, kind, body) = http(addr, head, "{}").await;
        assert_eq!(status, want, "{head}: {body}");
        assert_eq!(kind, "application/json", "{head}");
        let error: Value = serde_json::from_str(&body).expect("a JSON-RPC error body");
        assert!(error["error"]["code"].is_i64(), "{body}");
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection, the request written
/// exactly as given: (status, the whole head in lower case, body).
async fn raw_http(addr: &str, request: &str) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect for HTTP");
    tcp.write_all(request.as_bytes()).await.expect("write HTTP");
    let mut response = Vec::new();
    // The server closes after each of these answers.
    let _ = within("an HTTP response", tcp.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A JSON `POST` of `body` from a page of `origin`, closing after its answer.
fn post_from(origin: &str, body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nOrigin: {origin}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn the_http_side_refuses_what_a_web_page_or_a_smuggler_sends() {
    let server = Server::start(Framing::Newline).await;
    let addr = server.http_addr();
    let sum = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    // A form post or a body with no media type: 415, saying what to send.
    for head in [
        "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
        "POST / HTTP/1.1\r\nContent-Type: text/plain+json",
        "POST / HTTP/1.1",
    ] {
        let (status, _, body) = http(addr, head, sum).await;
        assert_eq!(status, 415, "{head}");
        let error: Value = serde_json::from_str(&body).expect("a JSON-RPC error");
        assert_eq!(error["error"]["code"], -32600);
        assert!(body.contains("application/json"), "{body}");
    }
    // Transfer codings other than chunked; Content-Length beside one.
    for (extra, what) in [
        ("Transfer-Encoding: gzip, chunked\r\n", "transfer coding"),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "both Content-Length and Transfer-Encoding",
        ),
    ] {
        let (status, _, body) = raw_http(
            addr,
            &format!("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{extra}\r\n0\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{extra}");
        assert!(body.contains(what), "{body}");
    }
    // Over the 16 MiB body limit: refused before the body is sent.
    let (status, _, _) = raw_http(
        addr,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 16777217\r\n\r\n",
    )
    .await;
    assert_eq!(status, 413);
    // A batch past 1,024 entries: one error, as over TCP.
    let batch = format!("[{}]", vec![sum; 1025].join(","));
    let (status, _, body) = http(
        addr,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        &batch,
    )
    .await;
    assert_eq!(status, 200);
    let mut wire = server.wire().await;
    let over_tcp = wire.call_text(&batch).await;
    assert_eq!(body, over_tcp);
    assert!(body.contains("exceeds the limit of 1024"), "{body}");
    // Log in, join, post in one HTTP batch: joining needs a connection.
    let (_, _, body) = http(
        addr,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        r#"[{"jsonrpc":"2.0","method":"login","params":["alice","secret"],"id":1},
            {"jsonrpc":"2.0","method":"join","params":["eve"],"id":2},
            {"jsonrpc":"2.0","method":"postMessage","params":["hi"],"id":3}]"#,
    )
    .await;
    let replies: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(replies[1]["error"]["code"], -32004, "{body}");
    assert_eq!(replies[2]["error"]["code"], -32004, "{body}");
    // CORS is off: a preflight is refused, and no answer allows an origin.
    let (status, head, _) = raw_http(
        addr,
        "OPTIONS / HTTP/1.1\r\nHost: localhost\r\nOrigin: http://page.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 403);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let (status, head, _) = raw_http(addr, &post_from("http://page.example", sum)).await;
    assert_eq!(status, 200);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

#[tokio::test]
async fn serve_on_loopback_answers_only_its_own_host_names() {
    // DNS rebinding: a page of attacker.example, its name pointed at
    // 127.0.0.1, calls the server as its own origin; only Host tells.
    let sum = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    let rebound = |host: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nOrigin: http://{host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{sum}",
            sum.len()
        )
    };
    let upgrade = |host: &str| {
        format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    let server = Server::start(Framing::Newline).await;
    let addr = server.http_addr();
    let port = addr.rsplit(':').next().expect("a port");
    let (status, _, body) = raw_http(addr, &rebound(&format!("attacker.example:{port}"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("attacker.example"), "{body}");
    let (status, _, _) = raw_http(addr, &upgrade(&format!("attacker.example:{port}"))).await;
    assert_eq!(status, 403);
    for host in [format!("localhost:{port}"), addr.to_owned()] {
        let (status, _, body) = raw_http(addr, &rebound(&host)).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    // A name given with --allow-host is answered.
    let named = Server::start_with(Framing::Newline, &["--allow-host", "my-laptop.local"]).await;
    let addr = named.http_addr();
    let port = addr.rsplit(':').next().expect("a port");
    let (status, _, body) = raw_http(addr, &rebound(&format!("my-laptop.local:{port}"))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn serve_can_turn_either_protocol_off_and_allow_origins() {
    let sum = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    let ws_only = Server::start_with(Framing::Newline, &["--ws-mode", "websocket"]).await;
    let (status, head, body) = raw_http(ws_only.http_addr(), &post_from("http://x", sum)).await;
    assert_eq!(status, 426, "{body}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    let mut ws = rpcpeer::ws::connect(&ws_only.ws, &rpcpeer::ws::Config::default())
        .await
        .expect("WebSocket connect");
    ws.send(sum.to_owned()).await.expect("ws send");
    let reply = within("a WebSocket reply", ws.next()).await;
    assert!(reply
        .expect("open")
        .expect("frame")
        .contains("\"result\":3"));

    let http_only = Server::start_with(
        Framing::Newline,
        &["--ws-mode", "http", "--allow-origin", "http://app.example"],
    )
    .await;
    assert!(http_only.ws.starts_with("http://"), "{}", http_only.ws);
    let url = format!("ws://{}/", http_only.http_addr());
    let refused = rpcpeer::ws::connect(&url, &rpcpeer::ws::Config::default()).await;
    assert!(refused.is_err(), "an upgrade on an HTTP-only port");
    let (status, head, body) =
        raw_http(http_only.http_addr(), &post_from("http://app.example", sum)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("access-control-allow-origin: http://app.example"),
        "{head}"
    );
}

const GET_DATA: &str = r#"{"jsonrpc":"2.0","method":"get_data","id":1}"#;

#[tokio::test]
async fn serve_refuses_connections_past_max_connections_until_one_closes() {
    let server = Server::start_with(Framing::Newline, &["--max-connections", "1"]).await;
    let mut first = server.wire().await;
    result(&first.call(GET_DATA).await);
    // The TCP port's one place is taken: the next is closed at once.
    let mut second = server.wire().await;
    assert!(
        !matches!(within("the refusal", second.io.next()).await, Some(Ok(_))),
        "a second TCP connection is refused"
    );
    // The WebSocket port has one place of its own: the next gets 503.
    let mut ws = rpcpeer::ws::connect(&server.ws, &rpcpeer::ws::Config::default())
        .await
        .expect("WebSocket connect");
    ws.send(GET_DATA.to_owned()).await.expect("ws send");
    within("a WebSocket reply", ws.next())
        .await
        .expect("open")
        .expect("frame");
    let (status, _, body) = http(
        server.http_addr(),
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        GET_DATA,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // So does `call` over HTTP, whose client (hyper) takes an answer sent
    // before its request for a broken connection: it must see the 503.
    let url = format!("http://{}/", server.http_addr());
    for _ in 0..3 {
        let out = rpcpeer(&["call", &url, "get_data"]).await;
        assert!(!out.status.success(), "{}", stdout(&out));
        assert!(stderr(&out).contains("HTTP 503"), "{}", stderr(&out));
    }

    // The first TCP connection closes: its place is free once the server
    // has seen it go, a moment after the client has.
    drop(first);
    within("a place for a new connection", async {
        loop {
            let mut next = server.wire().await;
            next.send(GET_DATA).await;
            if let Some(Ok(_)) = next.io.next().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (status, _) = server.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn serve_closes_connections_idle_for_idle_timeout() {
    let server = Server::start_with(Framing::ContentLength, &["--idle-timeout", "0.2"]).await;
    let mut tcp = server.wire().await;
    result(&tcp.call(GET_DATA).await);
    let mut ws = rpcpeer::ws::connect(&server.ws, &rpcpeer::ws::Config::default())
        .await
        .expect("WebSocket connect");
    // Then nothing: both are closed.
    assert!(
        !matches!(within("the TCP close", tcp.io.next()).await, Some(Ok(_))),
        "the idle TCP connection is closed"
    );
    assert!(
        !matches!(within("the WebSocket close", ws.next()).await, Some(Ok(_))),
        "the idle WebSocket connection is closed"
    );
    let frame = ws.close_frame().expect("closed with a close frame");
    assert_eq!(frame, (1000, "idle for 200ms".to_owned()));
    // `listen`, which only waits for pushes, says why it was closed.
    let listen = spawn_listen(&[&server.ws]);
    let out = within("listen to end", listen.wait_with_output())
        .await
        .expect("listen's output");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("(close code 1000: idle for 200ms)"), "{said}");
    // A call longer than the idle timeout is no idleness.
    let mut busy = server.wire().await;
    let reply = busy
        .call(r#"{"jsonrpc":"2.0","method":"sleep","params":[600],"id":"nap"}"#)
        .await;
    assert_eq!(result(&reply), &json!(600), "{reply}");
    let (status, _) = server.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn call_and_notify_print_results_and_fail_with_one_line() {
    for framing in FRAMINGS {
        let server = Server::start(framing).await;
        let url = format!("tcp://{}", server.tcp);
        let f = framing.as_str();
        let out = rpcpeer(&["call", "--framing", f, &url, "subtract", "42", "23"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "19\n");
        let out = rpcpeer(&[
            "call",
            "--framing",
            f,
            &url,
            "subtract",
            "minuend=42",
            "subtrahend=23",
        ])
        .await;
        assert_eq!(stdout(&out), "19\n");
        let out = rpcpeer(&[
            "call",
            "--framing",
            f,
            &url,
            "echo",
            r#"{"value":{"a":[1,"b"]}}"#,
        ])
        .await;
        assert_eq!(stdout(&out), "{\"a\":[1,\"b\"]}\n");
        let out = rpcpeer(&["call", "--framing", f, &url, "get_data"]).await;
        assert_eq!(stdout(&out), "[\"hello\",5]\n");
        // A date-time comes back in UTC, and says so (RFC 3339 wants the
        // offset).
        let at = "at=2026-11-30T09:18:03+02:00";
        let out = rpcpeer(&["call", "--framing", f, &url, "shiftDate", at, "days=2"]).await;
        assert_eq!(
            stdout(&out),
            "\"2026-12-02T07:18:03Z\"\n",
            "{}",
            stderr(&out)
        );

        // The peer's error: printed, exit 1.
        let out = rpcpeer(&[
            "call",
            "--framing",
            f,
            &url,
            "fail",
            "code=-32050",
            "message=broken",
        ])
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("-32050") && stderr(&out).contains("broken"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "");

        let out = rpcpeer(&["notify", "--framing", f, &url, "update", "[1,2]"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
        let (status, _) = server.terminate().await;
        assert!(status.success());
    }

    // Failures a user can cause: one line on stderr, a non-zero exit.
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let refused = format!("tcp://127.0.0.1:{closed_port}");
    for args in [
        vec!["call", "bogus://x", "sum"],
        vec!["call", &url, "sum", "[1,"],
        vec!["call", &url, "sum", "not-json"],
        vec!["call", &refused, "sum"],
        vec!["call", &url],
    ] {
        let out = rpcpeer(&args).await;
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn call_with_a_batch_file_prints_each_answer() {
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let dir = std::env::temp_dir().join(format!("rpcpeer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("batch.json");
    std::fs::write(
        &file,
        r#"[{"method":"subtract","params":[42,23],"id":1},
            {"method":"notify_hello","params":[7]},
            {"method":"fail","params":{"code":9,"message":"nine"},"id":"f"}]"#,
    )
    .expect("write batch");
    let path = file.to_string_lossy().into_owned();
    let out = rpcpeer(&["call", "--batch", &path, &url]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "an entry failed: {}",
        stderr(&out)
    );
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"id": 1, "result": 19}),
            json!({"id": "f", "error": {"code": 9, "message": "nine"}})
        ]
    );
    // Notifications only: nothing to print, not even an empty line.
    std::fs::write(&file, r#"[{"method":"notify_hello","params":[7]}]"#).expect("write batch");
    let out = rpcpeer(&["call", "--batch", &path, &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    // A file that is no batch is a usage error that says what is wrong.
    for (text, says) in [
        (
            r#"[{"method":"subtract","params":[1,1],"id":{}}]"#,
            "the id of `subtract` is {}: an id is a string, a number or null",
        ),
        (
            r#"[{"method":"subtract","params":[1,1],"id":true}]"#,
            "the id of `subtract` is true",
        ),
        ("{bad", "is not JSON: key must be a string"),
        (
            r#"{"method":"subtract"}"#,
            r#"is not a JSON array of {"method", "params", "id"} objects"#,
        ),
    ] {
        std::fs::write(&file, text).expect("write batch");
        let out = rpcpeer(&["call", "--batch", &path, &url]).await;
        assert_eq!(out.status.code(), Some(2), "{text}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{text}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{text}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A peer that answers every message it reads with `error` under a null
/// id, as a server does with a message it cannot parse (JSON-RPC 2.0 §5),
/// and keeps the connection open, or with `hang_up` closes it then; its URL.
async fn null_id_refuser(error: Value, hang_up: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    let reply = json!({"jsonrpc": "2.0", "error": error, "id": null}).to_string();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut io = rpcpeer::stream::framed(socket, Framing::Newline, 1 << 20);
                while let Some(Ok(_)) = io.next().await {
                    if io.send(reply.clone()).await.is_err() || hang_up {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn call_fails_at_once_with_the_error_a_peer_sends_under_a_null_id() {
    // Its one message is the only one that error can answer: `call` must
    // not wait out its timeout (then exit 3, "no reply") for an answer that
    // will never come.
    let url = null_id_refuser(json!({"code": -32700, "message": "Parse error"}), false).await;
    let out = rpcpeer(&["call", &url, "echo", "hi", "--timeout", "25"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim(), "error -32700: Parse error");
    assert_eq!(stdout(&out), "");
    // The same, then the hang-up: the refusal is the answer, not the close.
    let url = null_id_refuser(json!({"code": -32700, "message": "Parse error"}), true).await;
    for _ in 0..5 {
        let out = rpcpeer(&["call", &url, "echo", "hi", "--timeout", "25"]).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(stderr(&out).trim(), "error -32700: Parse error");
    }

    let url = null_id_refuser(json!({"code": -32600, "message": "Invalid Request"}), false).await;
    let dir = std::env::temp_dir().join(format!("rpcpeer-cli-null-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("batch.json");
    std::fs::write(
        &file,
        r#"[{"method":"echo","params":["a"],"id":1},{"method":"echo","params":["b"],"id":2}]"#,
    )
    .expect("write batch");
    let path = file.to_string_lossy().into_owned();
    let out = rpcpeer(&["call", "--batch", &path, &url, "--timeout", "25"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim(), "error -32600: Invalid Request");
    let _ = std::fs::remove_dir_all(dir);
}

/// A TCP peer that answers each request of one connection with the lines
/// `answer` makes of it, written as they are (not JSON, or over any limit,
/// if so made) in one write; the URL to reach it.
async fn answering_peer(answer: impl Fn(&Value) -> Vec<String> + Send + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            // What `call` sends besides its request (its own answers to what
            // it could not read, a cancel) gets nothing.
            let Ok(request) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if request.get("method").is_none() || request.get("id").is_none() {
                continue;
            }
            // One write, so that the lines arrive together.
            let text: String = answer(&request).iter().map(|l| format!("{l}\n")).collect();
            if write.write_all(text.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    url
}

#[tokio::test]
async fn call_fails_at_once_on_an_answer_that_is_no_response() {
    // A peer that answers under the call's id, but with neither `result`
    // nor `error`: `call` must say so, not wait out its timeout.
    let url =
        answering_peer(|call| vec![json!({"jsonrpc": "2.0", "id": call["id"]}).to_string()]).await;
    let out = rpcpeer(&["call", &url, "echo", "hi", "--timeout", "25"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(
            "the peer's answer to `echo` is not a valid response: neither `result` nor `error`"
        ),
        "{said}"
    );
    // One line: the message is not told again as one that cannot be read.
    assert_eq!(said.lines().count(), 1, "{said}");
}

#[tokio::test]
async fn call_fails_at_once_on_an_answer_too_large_to_read() {
    // The only message `call` waits for is its answer: one over its size
    // limit (16 MiB) was that answer, lost. `call` must say so, not wait
    // out its timeout and then say that no answer came.
    let url = answering_peer(|call| {
        let result = "x".repeat(17 << 20);
        vec![json!({"jsonrpc": "2.0", "result": result, "id": call["id"]}).to_string()]
    })
    .await;
    let out = rpcpeer(&["call", &url, "echo", "hi", "--timeout", "25"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(
            "the peer's answer to `echo` is not a valid response: too large to read \
             (message exceeds the limit of 16777216 bytes)"
        ),
        "{said}"
    );
}

#[tokio::test]
async fn call_skips_what_it_cannot_read_that_need_not_be_the_answer() {
    // Before its answer, a program's stray output (a log line on stdout,
    // plain or as JSON) and a malformed call of the peer's own: none of
    // them need be the answer. Said once, and the answer still taken.
    let url = answering_peer(|call| {
        vec![
            "starting up...".to_owned(),
            r#"{"level": "info", "msg": "ready"}"#.to_owned(),
            r#"{"jsonrpc": "2.0", "method": "log", "params": "hello"}"#.to_owned(),
            json!({"jsonrpc": "2.0", "result": call["params"][0], "id": call["id"]}).to_string(),
        ]
    })
    .await;
    let out = rpcpeer(&["call", &url, "echo", "hi", "--timeout", "25"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#""hi""#);
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains(
            "the peer sent a message that cannot be read, answered -32700: Parse error: "
        ),
        "{said}"
    );
}

#[tokio::test]
async fn call_says_why_a_websocket_peer_closed() {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    // A WebSocket server that reads one message, then closes with a code
    // and a reason of its own instead of answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("handshake");
        let _ = ws.next().await;
        let frame = CloseFrame {
            code: CloseCode::Library(4000),
            reason: "no echo here".into(),
        };
        let _ = ws.close(Some(frame)).await;
        while ws.next().await.is_some() {}
    });
    let out = rpcpeer(&["call", &url, "echo", "hi"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("ended before `echo` was answered"), "{said}");
    assert!(said.contains("close code 4000: no echo here"), "{said}");
}

/// Reads lines until one contains `what`.
async fn wait_for_line<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>, what: &str) -> String {
    loop {
        let line = next_line(lines, what).await;
        if line.contains(what) {
            return line;
        }
    }
}

/// The next line of a child's output, parsed as JSON.
async fn next_json<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> Value {
    let line = next_line(lines, "a JSON line").await;
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// `rpcpeer listen ARGS`, its stdout and stderr piped.
fn spawn_listen(args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("listen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn listen")
}

/// SIGINT to a running `listen`, which must then end cleanly.
async fn interrupt(mut listen: Child) {
    let pid = listen.id().expect("running").to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .expect("kill -INT");
    let status = within("listen to exit", listen.wait()).await.expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn listen_prints_each_pushed_notification_as_a_line() {
    let server = Server::start(Framing::ContentLength).await;
    let url = format!("tcp://{}", server.tcp);
    let mut listen = spawn_listen(&[
        "--framing",
        "content-length",
        &url,
        "--call",
        "join",
        "name=lis",
    ]);
    let mut err = BufReader::new(listen.stderr.take().expect("stderr")).lines();
    let line = wait_for_line(&mut err, "listening").await;
    assert!(line.contains("`join` answered true"), "{line}");
    let mut out = BufReader::new(listen.stdout.take().expect("stdout")).lines();

    let mut poster = server.wire().await;
    poster
        .call(r#"{"jsonrpc":"2.0","method":"join","params":["pat"],"id":1}"#)
        .await;
    poster
        .call(r#"{"jsonrpc":"2.0","method":"postMessage","params":["one"],"id":2}"#)
        .await;
    poster
        .call(r#"{"jsonrpc":"2.0","method":"postMessage","params":["two"],"id":3}"#)
        .await;
    drop(poster);
    assert_eq!(
        next_json(&mut out).await,
        json!({"jsonrpc":"2.0","method":"handleMessage","params":["pat","one"]})
    );
    assert_eq!(
        next_json(&mut out).await,
        json!({"jsonrpc":"2.0","method":"handleMessage","params":["pat","two"]})
    );
    assert_eq!(
        next_json(&mut out).await,
        json!({"jsonrpc":"2.0","method":"userLeft","params":["pat"]})
    );

    interrupt(listen).await;
}

#[tokio::test]
async fn listen_shows_a_message_it_cannot_read_and_listens_on() {
    // A peer that pushes a line that is not JSON, then a notification.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    let (answered, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let (read, mut write) = socket.into_split();
        let pushed = "not json\n{\"jsonrpc\":\"2.0\",\"method\":\"tick\",\"params\":[1]}\n";
        write.write_all(pushed.as_bytes()).await.expect("push");
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = answered.send(line);
        }
    });
    let mut listen = spawn_listen(&[&url]);
    let mut err = BufReader::new(listen.stderr.take().expect("stderr")).lines();
    let line = wait_for_line(&mut err, "cannot be read").await;
    assert!(
        line.contains(
            "the peer sent a message that cannot be read, answered -32700: Parse error: "
        ),
        "{line}"
    );
    let mut out = BufReader::new(listen.stdout.take().expect("stdout")).lines();
    assert_eq!(
        next_json(&mut out).await,
        json!({"jsonrpc":"2.0","method":"tick","params":[1]})
    );
    // The peer got the -32700 too, as the spec asks.
    let answer = within("the answer", heard.recv()).await.expect("an answer");
    let answer: Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    interrupt(listen).await;
}

/// Runs `rpcpeer shell URL` with `script` piped in, to its end; its HOME
/// (where its history goes) is a temporary one, not the real one.
async fn piped_shell(url: &str, script: impl AsRef<[u8]>) -> std::process::Output {
    piped_shell_once(url, script, async {}).await
}

/// [`piped_shell`], the script written once `ready` completes.
async fn piped_shell_once(
    url: &str,
    script: impl AsRef<[u8]>,
    ready: impl std::future::Future<Output = ()>,
) -> std::process::Output {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let home = std::env::temp_dir().join(format!("rpcpeer-shell-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&home).expect("temp HOME");
    let mut shell = Command::new(BIN)
        .args(["shell", url])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn shell");
    ready.await;
    let mut stdin = shell.stdin.take().expect("stdin");
    stdin
        .write_all(script.as_ref())
        .await
        .expect("write the script");
    drop(stdin);
    let out = within("the shell to finish", shell.wait_with_output())
        .await
        .expect("shell output");
    let _ = std::fs::remove_dir_all(home);
    out
}

#[tokio::test]
async fn shell_runs_piped_commands_in_order() {
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let script = "subtract 42 23\nsum minuend=1\n:notify update [1]\necho [\"x y\"]\n\
                  fail code=3 message=three\n:pending\n:quit\n";
    let out = piped_shell(&url, script).await;
    // Every line runs; the status says that two of them failed.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "rpcpeer: 2 commands of the input failed\n");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "19");
    assert!(lines[1].contains("-32602"), "{lines:?}");
    assert_eq!(lines[2], "sent");
    assert_eq!(lines[3], "\"x y\"");
    assert_eq!(lines[4], "error 3: three");
    assert!(lines[5].contains("no request"), "{lines:?}");
    assert_eq!(lines.len(), 6, "{lines:?}");

    // What the shell itself cannot run fails too: an unknown command, params
    // that do not parse, a `:reply` to no request.
    for line in [":nope", "subtract [1,", ":reply 7 true", ":notify"] {
        let out = piped_shell(&url, &format!("subtract 1 1\n{line}\n")).await;
        assert_eq!(out.status.code(), Some(1), "{line}: {}", stderr(&out));
        assert_eq!(stdout(&out).lines().next(), Some("0"), "{line}");
        assert_eq!(
            stderr(&out),
            "rpcpeer: 1 command of the input failed\n",
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_piped_shell_whose_peer_hangs_up_exits_3_on_any_line() {
    // A peer that closes the connection when called `bye`, and answers
    // anything else with an error.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let call: Value = serde_json::from_str(&line).unwrap_or_default();
                    if call["method"] == "bye" {
                        return;
                    }
                    if call.get("id").is_some() {
                        let no = json!({"jsonrpc": "2.0", "id": call["id"],
                            "error": {"code": -32601, "message": "Method not found"}});
                        let _ = write.write_all(format!("{no}\n").as_bytes()).await;
                    }
                }
            });
        }
    });
    // The hang-up on the last line, or on one with more after it.
    for script in ["bye\n", "bye\nsum 1\n"] {
        let out = piped_shell(&url, script).await;
        assert_eq!(out.status.code(), Some(3), "{script:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the peer closed the connection"),
            "{script:?}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn a_piped_shell_whose_peer_hangs_up_with_a_request_waiting_exits_3() {
    // A peer that asks the shell something, then hangs up once the shell
    // has called it: its request still waits for a `:reply`, so our driver
    // is draining, not done, when the script's line runs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    let (hung_up, mut hang_ups) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let hung_up = hung_up.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let ask = "{\"jsonrpc\":\"2.0\",\"method\":\"req\",\"id\":5}\n";
                let _ = write.write_all(ask.as_bytes()).await;
                // The shell's first call (its introspection) is the cue.
                let _ = BufReader::new(read).lines().next_line().await;
                drop(write);
                let _ = hung_up.send(());
            });
        }
    });
    for _ in 0..3 {
        // The line runs once the peer has gone.
        let hung_up = async {
            within("the hang-up", hang_ups.recv()).await;
        };
        let out = piped_shell_once(&url, "echo 1\n", hung_up).await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("the peer closed the connection"),
            "{}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn a_piped_shell_skips_a_line_that_is_not_utf8_and_runs_the_rest() {
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let out = piped_shell(&url, b"subtract 42 23\necho \xff\xfe\nsubtract 5 3\n").await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "rpcpeer: 1 command of the input failed\n");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        ["19", "a line of the input is not UTF-8: skipped", "2"],
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_piped_shell_shows_what_it_cannot_read_and_what_came_last() {
    // Before its answer to `ping`, the peer sends a line that is not JSON;
    // after it, a notification. The shell's input ends right after the
    // answer: both must still be shown.
    let url = answering_peer(|call| {
        let id = &call["id"];
        match call["method"].as_str() {
            Some("ping") => vec![
                "oops".to_owned(),
                json!({"jsonrpc": "2.0", "result": "pong", "id": id}).to_string(),
                json!({"jsonrpc": "2.0", "method": "tick", "params": [1]}).to_string(),
            ],
            _ => vec![
                json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "no"}, "id": id})
                    .to_string(),
            ],
        }
    })
    .await;
    let out = piped_shell(&url, "ping\n").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("\"pong\""), "{said}");
    assert!(
        said.contains("<- a message that cannot be read, answered -32700: Parse error: "),
        "{said}"
    );
    assert!(said.contains("<- tick [1]"), "{said}");
}

#[tokio::test]
async fn a_piped_shell_answers_the_peer_while_its_own_call_waits() {
    // `callback` makes the server call us back and waits for our answer
    // before it answers: the `:reply` that gives it is the next line, read
    // while the call still waits.
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let script = "callback method=ping params=[1]\nsubtract 5 3\n:reply 1 \"pong\"\n\
                  :pending\nsubtract 9 1\n:quit\n";
    let out = piped_shell(&url, script).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // The peer's request is shown by a thread of its own, anywhere.
    assert!(text.contains("<- request #1: ping [1]"), "{text}");
    let ours: Vec<&str> = text.lines().filter(|l| !l.starts_with("<-")).collect();
    // `subtract 5 3` was read ahead, and runs after the call it waited for.
    assert_eq!(
        ours,
        [
            "answered #1 (ping)",
            "\"pong\"",
            "2",
            "no request of the peer waits for an answer",
            "8"
        ],
        "{text}"
    );

    // No `:reply` before the input ends, or before `:quit`: the peer is told
    // so at once, rather than at its own 30 s timeout, and nothing after
    // `:quit` runs.
    for script in [
        "callback method=ping params=[1]\nsubtract 5 3\n",
        "callback method=ping params=[1]\n:quit\n:reply 1 \"late\"\nsubtract 5 3\n",
    ] {
        let out = piped_shell(&url, script).await;
        // The callback's error answer is a failed command.
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let text = stdout(&out);
        let ours: Vec<&str> = text.lines().filter(|l| !l.starts_with("<-")).collect();
        assert!(
            ours[0].contains("the shell's input ended without an answer"),
            "{script:?}: {text}"
        );
        let after: &[&str] = if script.contains(":quit") {
            &[]
        } else {
            &["2"]
        };
        assert_eq!(&ours[1..], after, "{script:?}: {text}");
    }
}

#[tokio::test]
async fn call_reaches_a_child_process_over_its_stdio() {
    // A one-shot peer: reads our request, answers id 1 (our first id).
    let exec = r#"sh -c "read line; printf '%s\n' '{\"jsonrpc\":\"2.0\",\"result\":\"from the child\",\"id\":1}'""#;
    let out = rpcpeer(&["call", "--exec", exec, "anything"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "\"from the child\"\n");

    let out = rpcpeer(&["call", "--exec", "/nonexistent/program", "x"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/program"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_child_that_dies_unanswered_is_reported_with_how_it_ended() {
    let out = rpcpeer(&["call", "--exec", "sh -c 'read line; exit 7'", "x"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ended with exit status: 7"),
        "{}",
        stderr(&out)
    );
    let out = rpcpeer(&["listen", "--exec", "sh -c 'kill -SEGV $$'"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("SIGSEGV"), "{}", stderr(&out));
}

#[cfg(unix)]
#[tokio::test]
async fn what_an_exec_program_started_ends_with_it() {
    // The program (`sh`, then `cat` in its place) starts a child of its own
    // and never answers: at the timeout, both must be gone, not only `cat`.
    let pidfile = std::env::temp_dir().join(format!("rpcpeer-grandchild-{}", std::process::id()));
    let exec = format!(
        "sh -c 'sleep 600 </dev/null >/dev/null 2>&1 & echo $! > {}; exec cat >/dev/null'",
        pidfile.display()
    );
    // NB: in the foreground of a terminal, the program would stay in
    // rpcpeer's group (see `an_exec_program_can_read_the_terminal_rpcpeer_runs_in`).
    let out = background(&["call", "--exec", &exec, "anything", "--timeout", "0.5"]).output();
    let out = within("rpcpeer to finish", out).await.expect("run rpcpeer");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let pid = std::fs::read_to_string(&pidfile).expect("the pid file");
    let _ = std::fs::remove_file(&pidfile);
    ended(pid.trim().parse().expect("a pid")).await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_exec_program_that_exits_is_over_though_its_child_holds_its_stdout() {
    // `sh` exits at once, unanswered; the `sleep` it started keeps its
    // stdout open. The program's end must end the call, not the timeout.
    let exec = "sh -c 'sleep 600 </dev/null 2>/dev/null & exit 0'";
    let out = background(&["call", "--exec", exec, "anything", "--timeout", "25"]).output();
    let out = within("rpcpeer to finish", out).await.expect("run rpcpeer");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the program ended with exit status: 0"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_to_a_shell_ends_its_exec_program_and_what_it_started() {
    let pidfile =
        std::env::temp_dir().join(format!("rpcpeer-shell-grandchild-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let exec = format!(
        "sh -c 'sleep 600 </dev/null >/dev/null 2>&1 & echo $! > {}; exec cat >/dev/null'",
        pidfile.display()
    );
    // The program never answers; the shell's input stays open.
    let mut shell = background(&["shell", "--exec", &exec])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn shell");
    let _input = shell.stdin.take();
    let pid = within("the program's child to start", async {
        loop {
            match std::fs::read_to_string(&pidfile) {
                Ok(pid) if pid.ends_with('\n') => break pid,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    let _ = std::fs::remove_file(&pidfile);
    let shell_pid = shell.id().expect("running").to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &shell_pid])
        .status()
        .await;
    assert!(sent.expect("kill -TERM").success());
    let out = within("the shell to end", shell.wait_with_output())
        .await
        .expect("output");
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    ended(pid.trim().parse().expect("a pid")).await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_exec_program_can_read_the_terminal_rpcpeer_runs_in() {
    // `call` in the foreground of a terminal (a pty, here), whose program
    // asks the user something on it, as `ssh` asks for a password. In a
    // process group of its own, the program would be stopped as soon as it
    // read the terminal, and the call would fail at its timeout.
    let program = r#"sh -c 'read line; read x </dev/tty; printf "%s\n" "{\"jsonrpc\":\"2.0\",\"result\":\"got $x\",\"id\":1}"'"#;
    let in_a_pty = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)";
    let mut run = Command::new("python3")
        .args([
            "-c",
            in_a_pty,
            BIN,
            "call",
            "--timeout",
            "10",
            "--exec",
            program,
            "ask",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    // What the user types, once the program asks.
    let mut typed = run.stdin.take().expect("stdin");
    typed.write_all(b"secret\n").await.expect("type");
    let out = within("the call to end", run.wait_with_output())
        .await
        .expect("output");
    drop(typed);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("\"got secret\""), "{}", stdout(&out));
}

#[cfg(unix)]
#[tokio::test]
async fn call_reaches_a_unix_socket() {
    use rpcpeer::{Driver, ErrorObject, Router};
    let path = std::env::temp_dir().join(format!("rpcpeer-cli-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = rpcpeer::stream::UnixListener::bind(&path, Framing::Newline).expect("bind unix");
    let mut router = Router::new();
    router.method("hello", || async { Ok::<_, ErrorObject>("unix") });
    tokio::spawn(async move {
        while let Ok((transport, _)) = listener.accept().await {
            tokio::spawn(Driver::new(transport, router.clone()).1);
        }
    });
    let url = format!("unix:{}", path.display());
    let out = rpcpeer(&["call", &url, "hello"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "\"unix\"\n");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_stderr_nobody_reads_never_stops_the_server() {
    // Each `panic` call logs a line at debug; a pipe holds 64 KiB, so a few
    // thousand calls fill it. Logging must drop lines then, not block the
    // server.
    let mut server = Server::launch(
        Framing::Newline,
        &[],
        Stdio::piped(),
        &[("RUST_LOG", "debug")],
    )
    .await;
    let _unread = server.child.stderr.take().expect("piped stderr");
    let mut wire = server.wire().await;
    for i in 0..3000 {
        let reply = wire
            .call(&format!(r#"{{"jsonrpc":"2.0","method":"panic","id":{i}}}"#))
            .await;
        assert_eq!(reply["error"]["code"], -32603, "{reply}");
    }
    let mut other = server.wire().await;
    let reply = other
        .call(r#"{"jsonrpc":"2.0","method":"echo","params":["still here"],"id":"e"}"#)
        .await;
    assert_eq!(result(&reply), &json!("still here"), "{reply}");
}

#[tokio::test]
async fn a_peer_that_makes_handlers_panic_over_and_over_does_not_flood_the_log() {
    let mut server = Server::start_with_stderr(Framing::Newline, Stdio::piped()).await;
    let stderr = server.child.stderr.take().expect("piped stderr");
    let mut wire = server.wire().await;
    for i in 0..50 {
        let reply = wire
            .call(&format!(r#"{{"jsonrpc":"2.0","method":"panic","id":{i}}}"#))
            .await;
        assert_eq!(reply["error"]["code"], -32603, "{reply}");
    }
    let (status, _) = server.terminate().await;
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    within(
        "serve's stderr to end",
        BufReader::new(stderr).read_to_string(&mut log),
    )
    .await
    .expect("read serve's stderr");
    // One line of the panic itself and one of the handler's, in 10 s.
    let panics = log.lines().filter(|line| line.contains("panic")).count();
    assert!(
        (1..=2).contains(&panics),
        "{panics} lines of panics:\n{log}"
    );
}

#[tokio::test]
async fn the_demo_sleep_is_bounded_so_every_call_ends() {
    let server = Server::start(Framing::Newline).await;
    let mut wire = server.wire().await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"sleep","params":[60001],"id":1}"#)
        .await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("at most 60000"), "{message}");
}

#[tokio::test]
async fn sigterm_lets_running_calls_finish_and_exits_despite_idle_connections() {
    let server = Server::start(Framing::Newline).await;
    let _idle_tcp = server.wire().await;
    let _idle_ws = rpcpeer::ws::connect(&server.ws, &rpcpeer::ws::Config::default())
        .await
        .expect("WebSocket connect");
    let mut busy = server.wire().await;
    busy.send(r#"{"jsonrpc":"2.0","method":"sleep","params":[1000],"id":"slow"}"#)
        .await;
    // The sleep has started once a later request on the same connection is answered.
    busy.expect_nothing_before_next_reply().await;

    let pid = server.child.id().expect("running").to_string();
    let mut server = server;
    let started = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert_eq!(
        busy.recv().await,
        json!({"jsonrpc":"2.0","result":1000,"id":"slow"}),
        "the running call finishes"
    );
    let status = within("serve to exit", server.child.wait())
        .await
        .expect("wait");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} to exit",
        started.elapsed()
    );
    // Stopped: nobody is listening any more.
    assert!(TcpStream::connect(server.tcp.as_str()).await.is_err());
}

#[tokio::test]
async fn a_second_signal_stops_serve_without_waiting_for_running_calls() {
    let mut server = Server::start_with_stderr(Framing::Newline, Stdio::piped()).await;
    let mut log = BufReader::new(server.child.stderr.take().expect("piped stderr")).lines();
    let mut busy = server.wire().await;
    busy.send(r#"{"jsonrpc":"2.0","method":"sleep","params":[60000],"id":"slow"}"#)
        .await;
    busy.expect_nothing_before_next_reply().await;

    let pid = server.child.id().expect("running").to_string();
    let interrupt = || async {
        let sent = Command::new("kill").args(["-INT", &pid]).status().await;
        assert!(sent.expect("kill -INT").success());
    };
    interrupt().await;
    // NB: two signals sent before the first is taken would count as one.
    while !next_line(&mut log, "the `stopping` line")
        .await
        .contains("stopping:")
    {}
    interrupt().await;
    let status = within("serve to exit", server.child.wait())
        .await
        .expect("wait");
    assert_eq!(status.code(), Some(130), "{status}");
    let mut rest = String::new();
    while let Ok(Some(line)) = log.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("interrupted again: exiting now"), "{rest}");
    // Cut, not drained: the sleep was neither finished nor answered -32003.
    let after = within("the connection to end", busy.io.next()).await;
    assert!(!matches!(after, Some(Ok(_))), "a reply came: {after:?}");
}

/// Runs `rpcpeer bench ARGS --json` to its end: the exit status and the one JSON line.
async fn bench(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    let out = rpcpeer(&all).await;
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{all:?}: {text}{}", stderr(&out));
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {text}"));
    for key in [
        "url",
        "method",
        "conns",
        "inflight",
        "batch",
        "notify",
        "seconds",
        "requests",
        "items",
        "rps",
        "items_per_s",
        "p50_us",
        "p90_us",
        "p99_us",
        "max_us",
        "bytes_sent",
        "bytes_received",
        "errors",
        "broken",
        "interrupted",
        "error_samples",
    ] {
        assert!(report.get(key).is_some(), "{all:?}: no `{key}` in {report}");
    }
    (out.status.code(), report)
}

/// A report's count under `key`.
fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not a count: {report}"))
}

/// Whether one of the report's error samples contains `text`.
fn sampled(report: &Value, text: &str) -> bool {
    report["error_samples"].as_array().is_some_and(|samples| {
        samples
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains(text)))
    })
}

/// The demo's `echo` answers `["hello"]` with `"hello"`, the one param.
const SHORT: [&str; 6] = ["--duration", "0.5", "--warmup", "0", "--conns", "2"];

#[tokio::test]
async fn bench_checks_every_reply_over_both_framings_and_websocket() {
    for framing in FRAMINGS {
        let server = Server::start(framing).await;
        let mut urls = vec![format!("tcp://{}", server.tcp)];
        if framing == Framing::Newline {
            urls.push(server.ws.clone());
        }
        for url in &urls {
            let mut args = vec![url.as_str()];
            // A WebSocket frames each message itself, and takes no --framing.
            if url.starts_with("tcp://") {
                args.extend(["--framing", framing.as_str()]);
            }
            args.extend(SHORT);
            args.extend(["--inflight", "8", "--expect", r#""hello""#]);
            let (code, report) = bench(&args).await;
            assert_eq!(code, Some(0), "{url}: {report}");
            assert_eq!(count(&report, "errors"), 0, "{url}: {report}");
            assert_eq!(report["error_samples"], json!([]));
            let requests = count(&report, "requests");
            assert!(requests > 0, "{url}: {report}");
            assert_eq!(count(&report, "items"), requests, "{url}: {report}");
            assert!(count(&report, "bytes_sent") > 0 && count(&report, "bytes_received") > 0);
            assert!(
                count(&report, "p50_us") <= count(&report, "max_us"),
                "{report}"
            );
            assert_eq!(report["url"], json!(url));
            assert_eq!(report["batch"], Value::Null);
        }

        // Each message a batch of 5: every item answered and checked.
        let url = format!("tcp://{}", server.tcp);
        let mut args = vec![url.as_str(), "--framing", framing.as_str()];
        args.extend(SHORT);
        args.extend(["--batch", "5", "--inflight", "4", "--expect", r#""hello""#]);
        let (code, report) = bench(&args).await;
        assert_eq!(code, Some(0), "{report}");
        let messages = count(&report, "requests");
        assert!(messages > 0, "{report}");
        assert_eq!(count(&report, "items"), 5 * messages, "{report}");
        assert_eq!(count(&report, "errors"), 0, "{report}");
        assert_eq!(report["batch"], json!(5));
        let (status, _) = server.terminate().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn bench_compares_numbers_by_value_and_fails_a_run_that_counted_nothing() {
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    // `sum [1,2,3]` answers 6; 6.0 is the same JSON number.
    let mut args = vec![
        url.as_str(),
        "--method",
        "sum",
        "--params",
        "[1,2,3]",
        "--expect",
        "6.0",
    ];
    args.extend(SHORT);
    let (code, report) = bench(&args).await;
    assert_eq!(code, Some(0), "{report}");
    assert!(count(&report, "requests") > 0, "{report}");

    // Over before a single reply could come back: nothing was measured,
    // and a script must not take that for a result.
    let (code, report) = bench(&[&url, "--duration", "0.000001", "--warmup", "0"]).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(count(&report, "requests"), 0, "{report}");
    assert_eq!(
        report["p50_us"],
        Value::Null,
        "no latency without a reply: {report}"
    );

    // --idle takes no load options.
    let out = rpcpeer(&["bench", &url, "--idle", "2", "--json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[tokio::test]
async fn bench_counts_wrong_results_and_error_replies_as_errors() {
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let cases: [(&[&str], &str); 4] = [
        // `["hello"]` is what was sent, not what echo answers.
        (&["--expect", r#"["hello"]"#], "is not the expected"),
        (
            &[
                "--method",
                "fail",
                "--params",
                r#"{"code":-32050,"message":"broken"}"#,
            ],
            "-32050",
        ),
        (&["--method", "no_such_method"], "-32601"),
        (&["--batch", "3", "--method", "no_such_method"], "-32601"),
    ];
    for (extra, why) in cases {
        let mut args = vec![url.as_str()];
        args.extend(SHORT);
        args.extend(extra);
        let (code, report) = bench(&args).await;
        assert_eq!(code, Some(1), "{extra:?}: {report}");
        assert!(count(&report, "errors") > 0, "{extra:?}: {report}");
        // A reply that failed a check is not counted as done.
        assert_eq!(count(&report, "requests"), 0, "{extra:?}: {report}");
        assert!(sampled(&report, why), "{extra:?}: no `{why}` in {report}");
    }
    // Notifications to a method the peer takes only as one (here, one it
    // does not know: a notification of it is dropped, a request -32601):
    // the probes must call another method, and then nothing fails.
    let notify = [url.as_str(), "--notify", "--method", "no_such_method"];
    let (code, report) = bench(&[&notify[..], &SHORT[..]].concat()).await;
    assert_eq!(code, Some(1), "{report}");
    assert!(sampled(&report, "-32601"), "{report}");
    let probed = [&notify[..], &SHORT[..], &["--probe", "get_data"][..]].concat();
    let (code, report) = bench(&probed).await;
    assert_eq!(code, Some(0), "{report}");
    assert!(count(&report, "requests") > 0, "{report}");

    // Usage and connection failures: one line, the CLI's exit codes.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "tcp://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        )
    };
    for (args, want) in [
        (vec!["bench", &refused], 3),
        (vec!["bench", &url, "--params", "5"], 2),
        (vec!["bench", &url, "--expect", "{"], 2),
        (vec!["bench", "bogus://x"], 2),
    ] {
        let out = rpcpeer(&args).await;
        assert_eq!(out.status.code(), Some(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim_end().lines().count(), 1, "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}");
    }
}

/// How a fake peer (not `serve`) answers `bench`.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Answers each request correctly, twice.
    Twice,
    /// Answers under a string id: `"7"` for `7`.
    WrongId,
    /// Reads everything, answers nothing.
    Silent,
    /// Answers ten requests, then hangs up.
    HangUp,
    /// Counts notifications (batched ones too) and answers each request
    /// with the count so far.
    Counting,
    /// Answers each request of a batch correctly, but each in a frame of
    /// its own rather than in one array.
    Unbatched,
}

/// What a fake peer saw on one connection, sent when the connection ends.
#[derive(Debug)]
struct Seen {
    notifications: u64,
    /// The count when the last request arrived.
    at_last_request: Option<u64>,
}

/// Starts a fake peer on 127.0.0.1 (newline framing); its URL, and what each connection saw.
async fn fake_peer(how: Peer) -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    let (seen_tx, seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut io = rpcpeer::stream::framed(socket, Framing::Newline, 1 << 20);
                let mut seen = Seen {
                    notifications: 0,
                    at_last_request: None,
                };
                let mut answered = 0;
                while let Some(Ok(frame)) = io.next().await {
                    let message: Value = serde_json::from_str(&frame).expect("bench sends JSON");
                    let items = match message {
                        Value::Array(items) => items,
                        one => vec![one],
                    };
                    let mut replies = Vec::new();
                    for item in items {
                        let Some(id) = item.get("id").cloned() else {
                            seen.notifications += 1;
                            continue;
                        };
                        seen.at_last_request = Some(seen.notifications);
                        let reply = |id: Value, result: Value| {
                            json!({"jsonrpc": "2.0", "result": result, "id": id}).to_string()
                        };
                        match how {
                            Peer::Twice => {
                                replies.push(reply(id.clone(), json!("hello")));
                                replies.push(reply(id, json!("hello")));
                            }
                            Peer::WrongId => {
                                replies.push(reply(json!(id.to_string()), json!("hello")))
                            }
                            Peer::Silent => {}
                            Peer::HangUp if answered == 10 => return,
                            Peer::HangUp => replies.push(reply(id, json!("hello"))),
                            Peer::Counting => replies.push(reply(id, json!(seen.notifications))),
                            Peer::Unbatched => replies.push(reply(id, json!("hello"))),
                        }
                        answered += 1;
                    }
                    for reply in replies {
                        if io.send(reply).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = seen_tx.send(seen);
            });
        }
    });
    (url, seen)
}

/// A peer that answers a batch with one frame per item is no faster than
/// one that answers it whole: each such frame is an error, and none counts
/// a batch (it used to count one batch, and its ten items, per frame).
#[tokio::test]
async fn bench_batch_answered_item_by_item_is_an_error_not_ten_batches() {
    let (url, _seen) = fake_peer(Peer::Unbatched).await;
    let mut args = vec![url.as_str(), "--batch", "10"];
    args.extend(SHORT);
    let (code, report) = bench(&args).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(count(&report, "requests"), 0, "{report}");
    assert_eq!(count(&report, "items"), 0, "{report}");
    assert!(count(&report, "errors") > 0, "{report}");
    // The latency is of the counted requests: none.
    assert_eq!(report["p50_us"], Value::Null, "{report}");
    assert!(
        sampled(
            &report,
            "a single reply where a batch reply of 10 items was due"
        ),
        "{report}"
    );
}

#[tokio::test]
async fn bench_cannot_be_fooled_by_second_answers_wrong_ids_silence_or_a_hang_up() {
    for (how, why) in [
        (Peer::Twice, "a second reply to id"),
        (Peer::WrongId, "which was never sent"),
        (Peer::Silent, "no reply within"),
        (Peer::HangUp, "requests unanswered"),
    ] {
        let (url, _seen) = fake_peer(how).await;
        let mut args = vec![url.as_str()];
        args.extend(SHORT);
        // `rpcpeer` gives up after 20 s: the run must end on its own well before.
        let (code, report) = bench(&args).await;
        // A connection that broke is a connection failure (3); a wrong
        // answer is a failed check (1).
        let expected = if let Peer::HangUp = how { 3 } else { 1 };
        assert_eq!(code, Some(expected), "{how:?}: {report}");
        assert_eq!(
            count(&report, "broken") > 0,
            matches!(how, Peer::HangUp),
            "{how:?}: {report}"
        );
        assert!(count(&report, "errors") > 0, "{how:?}: {report}");
        assert!(sampled(&report, why), "{how:?}: no `{why}` in {report}");
        if let Peer::Twice = how {
            // Each counted answer has a second one, counted as an error: a
            // peer cannot look twice as fast.
            assert!(count(&report, "requests") > 0, "{report}");
            assert!(
                count(&report, "errors") >= count(&report, "requests"),
                "{report}"
            );
        }
    }
}

#[tokio::test]
async fn bench_notify_counts_what_it_sent_and_the_fence_comes_last() {
    let (url, _seen) = fake_peer(Peer::Counting).await;
    let out = rpcpeer(&["bench", &url, "--notify", "--batch", "3"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "batches of notifications are refused"
    );
    assert!(
        stderr(&out).contains("--batch does not go with it"),
        "{}",
        stderr(&out)
    );
    for batch in [None] {
        let (url, mut seen) = fake_peer(Peer::Counting).await;
        let mut args = vec![
            url.as_str(),
            "--notify",
            "--duration",
            "0.3",
            "--warmup",
            "0",
        ];
        args.extend(["--conns", "2", "--inflight", "2"]);
        if let Some(b) = batch {
            args.extend(["--batch", b]);
        }
        let (code, report) = bench(&args).await;
        assert_eq!(code, Some(0), "{report}");
        assert_eq!(count(&report, "errors"), 0, "{report}");
        let per_message = batch.map_or(1, |b| b.parse().expect("a number"));
        let messages = count(&report, "requests");
        assert!(messages > 0, "{report}");
        assert_eq!(count(&report, "items"), per_message * messages, "{report}");
        let mut read = 0;
        for _ in 0..2 {
            let conn = within("a connection's end", seen.recv())
                .await
                .expect("one report per connection");
            // The fence was the last thing sent: the peer had read every
            // notification of its connection when it answered the fence.
            assert_eq!(conn.at_last_request, Some(conn.notifications), "{conn:?}");
            read += conn.notifications;
        }
        // With no warm-up, every notification sent is one the report counts.
        assert_eq!(read, count(&report, "items"), "{report}");
    }
}

#[tokio::test]
async fn bench_idle_holds_connections_until_stdin_ends() {
    let server = Server::start(Framing::Newline).await;
    for url in [format!("tcp://{}", server.tcp), server.ws.clone()] {
        let mut child = Command::new(BIN)
            .args(["bench", &url, "--idle", "5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn rpcpeer bench --idle");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        assert_eq!(
            next_line(&mut lines, "the holding line").await,
            "holding 5 idle connections"
        );
        // Still holding while the server answers others.
        let mut wire = server.wire().await;
        wire.expect_nothing_before_next_reply().await;
        assert!(
            child.try_wait().expect("poll the child").is_none(),
            "{url}: exited early"
        );
        drop(stdin);
        let status = within("bench --idle to exit", child.wait())
            .await
            .expect("wait");
        assert!(status.success(), "{url}: {status}");
    }
    // The server goes: the connections it held are lost, said at once.
    let mut child = Command::new(BIN)
        .args(["bench", &format!("tcp://{}", server.tcp), "--idle", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rpcpeer bench --idle");
    let _stdin = child.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    next_line(&mut lines, "the holding line").await;
    let (status, _) = server.terminate().await;
    assert!(status.success(), "{status}");
    let out = within("bench --idle to exit", child.wait_with_output())
        .await
        .expect("wait");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("closed 3 of the 3 idle connections"),
        "{said}"
    );
}

/// The Redis options of `serve` without `--redis` would be ignored, and a
/// presence TTL of 0 was taken as 30 ms: both are usage errors.
#[tokio::test]
async fn serve_refuses_redis_options_without_redis_and_a_zero_presence_ttl() {
    let out = rpcpeer(&["serve", "--tcp", "127.0.0.1:0", "--presence-ttl", "5"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--redis"), "{}", stderr(&out));
    let out = rpcpeer(&["serve", "--redis-prefix", "x", "--tcp", "127.0.0.1:0"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let zero = [
        "serve",
        "--redis",
        "redis://127.0.0.1:9",
        "--node",
        "a",
        "--presence-ttl",
        "0",
    ];
    let out = rpcpeer(&zero).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("greater than 0"), "{}", stderr(&out));
}

#[tokio::test]
async fn an_unknown_scheme_and_notify_with_a_batch_are_usage_errors() {
    // The message lists every scheme `call` takes, HTTP's included. No
    // connection is tried: the URL is refused before.
    let out = rpcpeer(&["call", "htp://127.0.0.1:9/", "sum", "1"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tcp://host:port") && stderr(&out).contains("http://host:port/path"),
        "{}",
        stderr(&out)
    );
    // A batch is `call`'s (it may mix calls and notifications): `notify`
    // neither offers nor takes --batch.
    let out = rpcpeer(&["notify", "--batch", "calls.json", "tcp://127.0.0.1:9"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--batch"), "{}", stderr(&out));
    let help = rpcpeer(&["notify", "--help"]).await;
    assert!(help.status.success(), "{}", stderr(&help));
    assert!(!stdout(&help).contains("--batch"), "{}", stdout(&help));
    // `bench --idle` sends nothing: a load option with it would be ignored.
    let out = rpcpeer(&["bench", "tcp://127.0.0.1:9", "--idle", "3", "--conns", "5"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--conns"), "{}", stderr(&out));
    // A name twice would be an object the peer refuses, or half-reads.
    let out = rpcpeer(&["call", "tcp://127.0.0.1:9", "subtract", "a=1", "a=2"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("`a` twice"), "{}", stderr(&out));
    // `--call` twice would be taken as more params of the first.
    let out = rpcpeer(&[
        "listen",
        "tcp://127.0.0.1:9",
        "--call",
        "a",
        "1",
        "--call",
        "b",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--call"), "{}", stderr(&out));
    // --exec names the peer: a URL as well is one too many, which `call`
    // would take as the method.
    for args in [
        &["call", "--exec", "cat", "tcp://127.0.0.1:9", "echo", "1"][..],
        &["listen", "--exec", "cat", "tcp://127.0.0.1:9"],
    ] {
        let out = rpcpeer(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("not both"), "{}", stderr(&out));
    }
    // Options that would be ignored, or never match.
    for args in [
        &["serve", "--max-connections", "0"][..],
        &["serve", "--node", "a"],
        &["serve", "--allow-origin", "not an origin"],
        &["serve", "--allow-origin", "http://localhost:8080/"],
        &["serve", "--allow-host", "localhost:7071"],
        &[
            "call",
            "--framing",
            "content-length",
            "ws://127.0.0.1:9/",
            "x",
        ],
        &["notify", "--framing", "newline", "http://127.0.0.1:9/", "x"],
        &["bench", "--framing", "content-length", "ws://127.0.0.1:9/"],
    ] {
        let out = rpcpeer(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn serve_on_a_taken_port_is_a_network_failure_and_a_bad_address_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let out = rpcpeer(&["serve", "--tcp", &addr, "--ws", "127.0.0.1:0"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on tcp://{addr}")),
        "{}",
        stderr(&out)
    );
    let out = rpcpeer(&["serve", "--tcp", "127.0.0.1:0", "--ws", "not an address"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot listen on ws://"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn bench_interrupted_while_its_requests_wait_reports_and_exits_130() {
    // A peer that reads and never answers: the requests in flight at the
    // interrupt are owed, not failed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("address"));
    let (read_some, mut got_load) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let _ = read_some.try_send(());
        }
    });
    let bench = Command::new(BIN)
        .args(["bench", "--json", &url, "--conns", "1", "--inflight", "4"])
        .args(["--duration", "60", "--warmup", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn bench");
    within("the load", got_load.recv()).await;
    let pid = bench.id().expect("running").to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().await;
    assert!(sent.expect("kill -INT").success());
    let out = within("bench to exit", bench.wait_with_output())
        .await
        .expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(text.trim()).expect("one JSON report");
    assert_eq!(
        (&report["interrupted"], &report["errors"]),
        (&json!(true), &json!(0)),
        "{report}"
    );
}

#[tokio::test]
async fn output_that_cannot_be_written_is_exit_74() {
    let server = Server::start(Framing::Newline).await;
    let url = format!("tcp://{}", server.tcp);
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    // NB: spawned, not `output()`, which pipes stdout whatever was set.
    let call = Command::new(BIN)
        .args(["call", &url, "get_data"])
        .stdout(full())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn call");
    let out = within("call", call.wait_with_output())
        .await
        .expect("call's output");
    assert_eq!(
        out.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write to stdout"));
    // `listen` too, at its first push, rather than stopping quietly.
    let mut listen = Command::new(BIN)
        .args(["listen", &url, "--call", "join", "name=full"])
        .stdout(full())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn listen");
    let mut err = BufReader::new(listen.stderr.take().expect("stderr")).lines();
    wait_for_line(&mut err, "listening").await;
    let mut poster = server.wire().await;
    poster
        .call(r#"{"jsonrpc":"2.0","method":"join","params":["pat"],"id":1}"#)
        .await;
    poster
        .call(r#"{"jsonrpc":"2.0","method":"postMessage","params":["hi"],"id":2}"#)
        .await;
    let status = within("listen to exit", listen.wait()).await.expect("wait");
    assert_eq!(status.code(), Some(74), "{status}");
}

#[tokio::test]
async fn a_sigterm_to_call_kills_its_exec_program_too_and_exits_143() {
    // The program writes its pid, then waits; `exec` keeps that pid.
    let pid_file = std::env::temp_dir().join(format!("rpcpeer-exec-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    let program = format!("sh -c 'echo $$ > {}; exec sleep 60'", pid_file.display());
    let call = Command::new(BIN)
        .args(["call", "--exec", &program, "ping"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn call");
    let pid = within("the program's pid", async {
        loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = std::fs::remove_file(&pid_file);
    let sent = Command::new("kill")
        .args(["-TERM", &call.id().expect("running").to_string()])
        .status()
        .await;
    assert!(sent.expect("kill -TERM").success());
    let out = within("call to exit", call.wait_with_output())
        .await
        .expect("output");
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Killed (the signal lands a moment later): gone, or a zombie nobody
    // has reaped yet. Left running, it would stay so for a minute.
    within("the --exec program to end", async {
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = (state.rsplit(')').next())
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|s| s != "Z" && s != "X");
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A stderr that cannot be written (a full disk, here `/dev/full`) does not
/// turn an error into a panic: the exit status still says what happened
/// (3, no connection), not 101.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_unwritable_stderr_does_not_make_an_error_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    // Port 9 (discard) on 127.0.0.1 has no listener here.
    let status = Command::new(BIN)
        .args(["call", "tcp://127.0.0.1:9", "echo", "x"])
        .stderr(Stdio::from(full))
        .stdout(Stdio::null())
        .status();
    let status = within("rpcpeer to finish", status).await.expect("run");
    assert_eq!(status.code(), Some(3), "{status}");
}

#[tokio::test]
async fn serve_out_of_descriptors_logs_its_accept_failures_without_flooding() {
    // A serve that may open 64 files, and 120 connections to it: the ones
    // past its descriptors fail to be accepted, every 50 ms until the test
    // ends, and the log says so once.
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", BIN])
        .args(["serve", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rpcpeer serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = next_line(&mut lines, "a `listening on` line").await;
    let tcp = first
        .strip_prefix("listening on tcp://")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_owned();
    let mut wire = connect_tcp(tcp.as_str(), Framing::Newline)
        .await
        .expect("connect");
    let mut held = Vec::new();
    for _ in 0..120 {
        held.push(TcpStream::connect(&tcp).await.expect("connect"));
    }
    // Many accepts fail while this runs; the connection made first still
    // gets its answer.
    for n in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let call = json!({"jsonrpc": "2.0", "method": "sum", "params": [n, 1], "id": n});
        wire.send(call.to_string()).await.expect("send");
        let reply = within("an answer", wire.next()).await.expect("a reply");
        let reply: Value = serde_json::from_str(&reply.expect("read")).expect("JSON");
        assert_eq!(reply["result"], n + 1, "{reply}");
    }
    drop(held);
    child.start_kill().expect("kill");
    let out = within("serve to end", child.wait_with_output())
        .await
        .expect("output");
    let log = stderr(&out);
    let failures = log.matches("accept failed").count();
    assert_eq!(failures, 1, "{log}");
    assert!(log.contains("Too many open files"), "{log}");
}

//! `rpcpeer bridge` end to end: a language server from npm and the project's own stdio example behind a WebSocket, a newline TCP client, refusals, and each side ending the other. Real sockets on 127.0.0.1.

#[path = "common/binary.rs"]
mod binary;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr};
use tokio_tungstenite::tungstenite::Message;

use binary::{background, ended, within};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running `rpcpeer bridge`, its log read line by line.
struct Bridge {
    _child: Child,
    url: String,
    log: Lines<BufReader<ChildStderr>>,
}

impl Bridge {
    async fn start(listen: &str, exec: &str, more: &[&str]) -> Self {
        let mut child = background(&["bridge", "--listen", listen, "--exec", exec])
            .args(more)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rpcpeer bridge");
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = within("the `listening on` line", out.next_line())
            .await
            .expect("stdout")
            .expect("a `listening on` line");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{line}"))
            .to_owned();
        let log = BufReader::new(child.stderr.take().expect("stderr")).lines();
        Self {
            _child: child,
            url,
            log,
        }
    }

    /// The pid of the next program the bridge starts, from its log.
    async fn started_pid(&mut self) -> u32 {
        loop {
            let line = within("the log line of a started program", self.log.next_line())
                .await
                .expect("the log")
                .expect("the log to go on");
            if let Some(rest) = line.split("(pid ").nth(1) {
                return rest.split(')').next().expect("pid").parse().expect("a pid");
            }
        }
    }

    /// A TCP connection to the bridge, and the pid of the program started
    /// for it.
    async fn tcp(&mut self) -> (tokio::net::TcpStream, u32) {
        let addr = self.url.trim_start_matches("tcp://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        (tcp, self.started_pid().await)
    }

    async fn ws(&self) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.url.as_str())
            .await
            .expect("connect to the bridge");
        ws
    }
}

/// The next text message, as JSON; `None` when the connection closed.
async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        match within("a message from the bridge", ws.next()).await {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("JSON from the bridge"))
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// The reply with `id`, answering the server's own requests with `null` on the way.
async fn reply(ws: &mut Ws, id: i64) -> Value {
    loop {
        let message = recv(ws)
            .await
            .unwrap_or_else(|| panic!("closed before reply {id}"));
        if message["id"] == id && message.get("method").is_none() {
            return message;
        }
        if message.get("method").is_some() && message.get("id").is_some() {
            let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": null});
            ws.send(Message::text(answer.to_string()))
                .await
                .expect("send");
        }
    }
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string()))
        .await
        .expect("send");
}

#[tokio::test]
async fn a_language_server_from_npm_answers_over_a_websocket() {
    let server = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/bridge/node_modules/.bin/vscode-json-languageserver"
    );
    assert!(
        std::path::Path::new(server).exists(),
        "install the language server first: `npm ci` in tests/bridge (.ci/test does it)"
    );
    let mut bridge = Bridge::start("ws://127.0.0.1:0/", &format!("{server} --stdio"), &[]).await;
    let mut ws = bridge.ws().await;
    let pid = bridge.started_pid().await;

    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"processId": null, "rootUri": null, "capabilities": {}}}),
    )
    .await;
    let init = reply(&mut ws, 1).await;
    assert!(init["result"]["capabilities"].is_object(), "{init}");
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    )
    .await;
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///project/a.json", "languageId": "json", "version": 1,
        "text": "{\"name\": \"rpcpeer\", \"nested\": {\"x\": 1}}"}}}),
    )
    .await;
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/documentSymbol",
        "params": {"textDocument": {"uri": "file:///project/a.json"}}}),
    )
    .await;
    let symbols = reply(&mut ws, 2).await;
    let names: Vec<&str> = symbols["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{symbols}"))
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"name") && names.contains(&"nested"),
        "{symbols}"
    );

    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}),
    )
    .await;
    assert_eq!(reply(&mut ws, 3).await["result"], Value::Null);
    send(&mut ws, json!({"jsonrpc": "2.0", "method": "exit"})).await;
    // The server exits; the bridge closes the WebSocket.
    while recv(&mut ws).await.is_some() {}
    ended(pid).await;
}

/// The project's stdio example (`examples/stdio_pair.rs`, whose `child`
/// serves `add` over Content-Length stdio), built when missing.
fn stdio_example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let example = profile.join("examples/stdio_pair");
    if !example.exists() {
        let target = profile.parent().expect("the target dir");
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", "stdio_pair"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target)
            .status()
            .expect("run cargo");
        assert!(built.success(), "cargo build --example stdio_pair");
    }
    example
}

#[tokio::test]
async fn the_stdio_example_answers_and_gets_nothing_that_is_not_json() {
    let exec = format!("{} child", stdio_example().display());
    let mut bridge = Bridge::start("ws://127.0.0.1:0/", &exec, &[]).await;
    let mut ws = bridge.ws().await;
    let pid = bridge.started_pid().await;

    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 1, "method": "add", "params": [40, 2]}),
    )
    .await;
    assert_eq!(reply(&mut ws, 1).await["result"], 42);

    for (bad, code) in [("this is not JSON", -32700), ("42", -32600)] {
        ws.send(Message::text(bad)).await.expect("send");
        let refused = recv(&mut ws).await.expect("a refusal");
        assert_eq!(refused["error"]["code"], code, "{refused}");
        assert!(refused["error"]["message"]
            .as_str()
            .expect("a message")
            .contains("not passed on"));
    }
    // Had the child got them, it would have answered each with an error of its own:
    // the next message is the reply to the next call.
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 2, "method": "add", "params": [1, 2]}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await.expect("a reply"),
        json!({"jsonrpc": "2.0", "result": 3, "id": 2})
    );

    // Closing the WebSocket ends the child.
    ws.close(None).await.expect("close");
    ended(pid).await;
}

/// The next line from the bridge; `None` when it closed the connection.
async fn next_line(lines: &mut Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>) -> Option<String> {
    within("a line from the bridge", lines.next_line())
        .await
        .expect("read")
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_and_the_child_exiting_closes_a_tcp_connection() {
    // `head -n 2` passes two lines back and exits, as a program that ends by itself.
    let mut bridge = Bridge::start(
        "tcp://127.0.0.1:0",
        "head -n 2",
        &["--child-framing", "newline", "--max-message-len", "64"],
    )
    .await;
    let (tcp, pid) = bridge.tcp().await;
    let (read, mut write) = tcp.into_split();
    let mut lines = BufReader::new(read).lines();

    write
        .write_all(format!("[{}]\n", "1,".repeat(40) + "1").as_bytes())
        .await
        .expect("write");
    let refused: Value =
        serde_json::from_str(&next_line(&mut lines).await.expect("a refusal")).expect("JSON");
    assert_eq!(refused["error"]["code"], -32600, "{refused}");

    write
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n{\"b\":2}\n")
        .await
        .expect("write");
    assert_eq!(
        next_line(&mut lines).await.as_deref(),
        Some(r#"{"jsonrpc":"2.0","method":"a"}"#)
    );
    assert_eq!(next_line(&mut lines).await.as_deref(), Some(r#"{"b":2}"#));
    // `head` has exited: the bridge closes the connection.
    assert_eq!(next_line(&mut lines).await, None);
    ended(pid).await;
}

#[tokio::test]
async fn a_half_closed_connection_closes_the_programs_stdin_and_still_gets_its_answers() {
    // `cat` echoes until its stdin ends; then the program says so, and exits.
    let mut bridge = Bridge::start(
        "tcp://127.0.0.1:0",
        r#"sh -c 'cat; echo "{\"stdin\":\"ended\"}"'"#,
        &["--child-framing", "newline"],
    )
    .await;
    let (tcp, pid) = bridge.tcp().await;
    let (read, mut write) = tcp.into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}\n")
        .await
        .expect("write");
    // A TCP half-close: nothing more comes from us, answers still may.
    write.shutdown().await.expect("shutdown");
    assert_eq!(
        next_line(&mut lines).await.as_deref(),
        Some(r#"{"jsonrpc":"2.0","method":"a","id":1}"#)
    );
    assert_eq!(
        next_line(&mut lines).await.as_deref(),
        Some(r#"{"stdin":"ended"}"#)
    );
    assert_eq!(next_line(&mut lines).await, None);
    // It exited by itself, not killed.
    let exit = loop {
        let line = within("the exit line", bridge.log.next_line())
            .await
            .expect("the log")
            .expect("the log to go on");
        if line.contains(&format!("pid {pid} exited")) {
            break line;
        }
    };
    assert!(exit.contains("exit status: 0"), "{exit}");
}

#[tokio::test]
async fn a_program_that_answers_as_it_reads_is_not_held_up_by_its_own_stdin() {
    // `cat` writes each message back as it reads it. With messages larger
    // than the pipes hold, the bridge must read the program's stdout while a
    // write to its stdin waits, or the two wait on each other.
    let mut bridge =
        Bridge::start("tcp://127.0.0.1:0", "cat", &["--child-framing", "newline"]).await;
    let (tcp, _) = bridge.tcp().await;
    let (read, mut write) = tcp.into_split();
    let mut lines = BufReader::new(read).lines();
    let message = format!("[\"{}\"]", "x".repeat(256 << 10));
    let line = format!("{message}\n");
    let writer = tokio::spawn(async move {
        for _ in 0..8 {
            write.write_all(line.as_bytes()).await.expect("write");
        }
        write
    });
    for n in 0..8 {
        let echoed = next_line(&mut lines)
            .await
            .unwrap_or_else(|| panic!("echo {n}"));
        assert!(echoed == message, "echo {n}: {} bytes", echoed.len());
    }
    writer.await.expect("the writer");
}

#[tokio::test]
async fn what_the_program_started_ends_with_its_connection() {
    // The program (`sh`, then `cat` in its place) starts a child of its own
    // and says its pid on stderr, which the bridge logs.
    let exec = "sh -c 'sleep 600 </dev/null >/dev/null 2>&1 & echo \"started $!\" >&2; exec cat'";
    let mut bridge =
        Bridge::start("tcp://127.0.0.1:0", exec, &["--child-framing", "newline"]).await;
    let (tcp, program) = bridge.tcp().await;
    let grandchild: u32 = loop {
        let line = within("the program's line", bridge.log.next_line())
            .await
            .expect("the log")
            .expect("the log to go on");
        if let Some(pid) = line.split("started ").nth(1) {
            break pid.trim().parse().expect("a pid");
        }
    };
    // The connection ends: `cat` sees its stdin end and exits, and what it
    // left running must be ended too.
    drop(tcp);
    ended(program).await;
    ended(grandchild).await;
}

#[tokio::test]
async fn what_the_bridge_refused_reaches_the_peer_even_when_the_program_ends_first() {
    // The program writes one line larger than the socket's buffers and
    // exits. While the peer does not read, the bridge's write of that line
    // waits, and the refusals of the peer's bad messages queue up behind it;
    // once the peer reads, the bridge sees the program's end and those
    // refusals at the same time, and must pass on all of them.
    let exec = r#"sh -c 'head -c 12000000 /dev/zero | tr "\0" x; echo'"#;
    let mut bridge =
        Bridge::start("tcp://127.0.0.1:0", exec, &["--child-framing", "newline"]).await;
    let (tcp, _) = bridge.tcp().await;
    let (read, mut write) = tcp.into_split();
    // NB: time for the program to write its line and the bridge to start
    // passing it on; sooner, the refusals would only go out earlier.
    tokio::time::sleep(Duration::from_millis(500)).await;
    const REFUSED: usize = 10;
    write
        .write_all("oops\n".repeat(REFUSED).as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lines = BufReader::new(read).lines();
    let (mut refusals, mut long) = (0, 0);
    while let Some(line) = next_line(&mut lines).await {
        if line.len() == 12_000_000 {
            long += 1;
            continue;
        }
        let refusal: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(refusal["error"]["code"], -32700, "{refusal}");
        refusals += 1;
    }
    assert_eq!((long, refusals), (1, REFUSED));
}

#[tokio::test]
async fn a_program_that_exits_closes_its_connection_though_its_child_holds_its_stdout() {
    // `sh` exits at once; the `sleep` it started keeps its stdout open.
    let exec = "sh -c 'sleep 600 </dev/null 2>/dev/null & exit 0'";
    let mut bridge =
        Bridge::start("tcp://127.0.0.1:0", exec, &["--child-framing", "newline"]).await;
    let (tcp, pid) = bridge.tcp().await;
    let (read, _write) = tcp.into_split();
    let mut lines = BufReader::new(read).lines();
    assert_eq!(
        next_line(&mut lines).await,
        None,
        "the connection is closed"
    );
    ended(pid).await;
}

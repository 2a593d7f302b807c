//! The naive comparison server for `benches/side_by_side.sh`: JSON-RPC 2.0 over TCP, one JSON text a line, written the obvious way with serde_json.
//!
//! `cargo run --release --example cmp_naive [ADDR]` (default `127.0.0.1:0`)
//! prints `listening on tcp://ADDR` and serves until killed.
//!
//! One task per connection reads a line, parses it into a
//! `serde_json::Value`, answers, and only then reads the next: requests run
//! in order, so `sleep` holds up everything behind it on its connection.
//! That is what a first attempt looks like, and the floor the library must
//! beat on CPU per request. Replies are gathered and written once per batch
//! of lines read, not once per line, so the baseline does not lose on
//! system calls only.
//!
//! Methods answer what `rpcpeer serve`'s demo answers: `echo [x]` (or
//! `{"value": x}`) gives `x`, `sleep [ms]` waits and gives `ms`; any other
//! method is -32601. Notifications get no reply, whatever their method.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    // Whoever reads stdout connects as soon as it sees this line.
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on tcp://{}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors, say: that connection is lost, not the server.
            Err(err) => {
                eprintln!("accept: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(err) = serve(socket).await {
                eprintln!("connection: {err}");
            }
        });
    }
}

async fn serve(socket: TcpStream) -> std::io::Result<()> {
    // Like rpcpeer's listener: a reply is written whole, so Nagle would only
    // hold back the last one of a batch.
    socket.set_nodelay(true)?;
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let mut out = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if let Some(reply) = answer(&line).await {
            serde_json::to_writer(&mut out, &reply)?;
            out.push(b'\n');
        }
        // Flush only when no complete line is waiting: one write per batch
        // of lines the last read brought in.
        if !out.is_empty() && !reader.buffer().contains(&b'\n') {
            write.write_all(&out).await?;
            out.clear();
        }
    }
}

/// The reply to one line: to a request, to a batch, or to garbage.
async fn answer(line: &str) -> Option<Answer> {
    let text = line.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str(text) {
        Err(_) => Some(Answer::One(Reply::error(
            Value::Null,
            -32700,
            "Parse error",
        ))),
        Ok(Value::Array(calls)) if calls.is_empty() => Some(Answer::One(Reply::error(
            Value::Null,
            -32600,
            "Invalid Request",
        ))),
        Ok(Value::Array(calls)) => {
            let mut replies = Vec::new();
            for call in calls {
                replies.extend(call_one(call).await);
            }
            (!replies.is_empty()).then_some(Answer::Batch(replies))
        }
        Ok(call) => call_one(call).await.map(Answer::One),
    }
}

/// One call's reply, or `None` for a notification.
async fn call_one(mut call: Value) -> Option<Reply> {
    let id = call.get_mut("id").map(Value::take);
    let Some(method) = call.get("method").and_then(Value::as_str) else {
        return Some(Reply::error(
            id.unwrap_or(Value::Null),
            -32600,
            "Invalid Request",
        ));
    };
    let outcome = match method {
        "echo" => echo(call.get_mut("params").map(Value::take)),
        "sleep" => match call.pointer("/params/0").and_then(Value::as_u64) {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Value::from(ms))
            }
            None => Err((-32602, "Invalid params")),
        },
        _ => Err((-32601, "Method not found")),
    };
    let id = id?;
    Some(match outcome {
        Ok(result) => Reply {
            jsonrpc: "2.0",
            result: Some(result),
            error: None,
            id,
        },
        Err((code, message)) => Reply::error(id, code, message),
    })
}

/// `echo`'s one param, by position or by name, as the demo takes it.
fn echo(params: Option<Value>) -> Result<Value, (i64, &'static str)> {
    match params {
        Some(Value::Array(mut values)) if values.len() == 1 => Ok(values.swap_remove(0)),
        Some(Value::Object(mut map)) if map.len() == 1 => {
            map.remove("value").ok_or((-32602, "Invalid params"))
        }
        _ => Err((-32602, "Invalid params")),
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    One(Reply),
    Batch(Vec<Reply>),
}

#[derive(Serialize)]
struct Reply {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
    id: Value,
}

#[derive(Serialize)]
struct ErrorBody {
    code: i64,
    message: &'static str,
}

impl Reply {
    fn error(id: Value, code: i64, message: &'static str) -> Self {
        Reply {
            jsonrpc: "2.0",
            result: None,
            error: Some(ErrorBody { code, message }),
            id,
        }
    }
}

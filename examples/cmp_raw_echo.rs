//! The raw echo servers for `benches/side_by_side.sh`: the practical limit of a JSON-RPC server, replies shaped without parsing any JSON.
//!
//! `cargo run --release --example cmp_raw_echo -- --tcp [ADDR]` serves
//! newline-framed TCP and prints `listening on tcp://ADDR`; `--ws [ADDR]`
//! serves WebSocket (tokio-tungstenite, any path) and prints
//! `listening on ws://ADDR/`. ADDR defaults to `127.0.0.1:0`. Both serve
//! until killed.
//!
//! With `--check-json` after ADDR, each message is first read whole by
//! serde_json (into `IgnoredAny`, its cheapest complete check), since the
//! JSON-RPC spec has every server answer a message that is not JSON with
//! -32700, notifications included; one that is not JSON gets that answer.
//! That is the least a conforming server does per message on top of the
//! framing: the comparison's floor for a server that reads JSON-RPC.
//!
//! Every message that has an `"id"` member gets
//! `{"jsonrpc":"2.0","result":"hello","id":ID}`, the answer of the demo's
//! `echo ["hello"]`, whatever the method; one without gets nothing, as a
//! notification. The id is found by scanning bytes for the first `"id"` key,
//! so an `"id"` key nested in the params would fool it: the load generator
//! sends none. Replies are gathered and written once per batch of messages
//! that are already in, like the naive server does.

use std::io::Write;
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use serde::de::IgnoredAny;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy)]
enum Mode {
    Tcp,
    Ws,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("--tcp") => Mode::Tcp,
        Some("--ws") => Mode::Ws,
        _ => {
            eprintln!("usage: cmp_raw_echo --tcp|--ws [ADDR]");
            std::process::exit(2);
        }
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let check_json = match args.next().as_deref() {
        None => false,
        Some("--check-json") => true,
        Some(other) => {
            eprintln!("cmp_raw_echo: unknown argument {other:?}");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    // Whoever reads stdout connects as soon as it sees this line.
    {
        let mut stdout = std::io::stdout().lock();
        match mode {
            Mode::Tcp => writeln!(stdout, "listening on tcp://{local}")?,
            Mode::Ws => writeln!(stdout, "listening on ws://{local}/")?,
        }
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
            let served = match mode {
                Mode::Tcp => serve_tcp(socket, check_json).await.map_err(Into::into),
                Mode::Ws => serve_ws(socket, check_json).await,
            };
            if let Err(err) = served {
                eprintln!("connection: {err}");
            }
        });
    }
}

async fn serve_tcp(mut socket: TcpStream, check_json: bool) -> std::io::Result<()> {
    // As every other server in the comparison: replies are written whole.
    socket.set_nodelay(true)?;
    let mut input: Vec<u8> = Vec::with_capacity(8192);
    let mut out = Vec::new();
    loop {
        if socket.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        // Answer every complete line this read brought in, then write once.
        let mut start = 0;
        while let Some(end) = input[start..].iter().position(|&b| b == b'\n') {
            let line = &input[start..start + end];
            if answer(line, check_json, &mut out) {
                out.push(b'\n');
            }
            start += end + 1;
        }
        input.drain(..start);
        if !out.is_empty() {
            socket.write_all(&out).await?;
            out.clear();
        }
    }
}

async fn serve_ws(socket: TcpStream, check_json: bool) -> Result<(), BoxError> {
    socket.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(socket).await?;
    while let Some(message) = ws.next().await {
        let mut message = message?;
        // Queue the replies to every frame already in, then flush once.
        loop {
            let text = match &message {
                Message::Text(text) => Some(text.as_bytes()),
                Message::Binary(bytes) => Some(&bytes[..]),
                // Pings are answered by tungstenite itself at the next flush.
                _ => None,
            };
            // NB: empty, so a notification allocates nothing.
            let mut out = Vec::new();
            if text.is_some_and(|text| answer(text, check_json, &mut out)) {
                // Checked, since a binary frame's id need not be UTF-8.
                ws.feed(Message::text(String::from_utf8(out)?)).await?;
            }
            match ws.next().now_or_never() {
                Some(Some(next)) => message = next?,
                Some(None) => {
                    ws.flush().await?;
                    return Ok(());
                }
                None => break,
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

/// Writes the answer to `message` into `out`, and says whether there is
/// one: an echo when it has an `"id"` member, none for a notification;
/// with `check`, a parse error when it is not JSON.
fn answer(message: &[u8], check: bool, out: &mut Vec<u8>) -> bool {
    if check && serde_json::from_slice::<IgnoredAny>(message).is_err() {
        out.extend_from_slice(PARSE_ERROR);
        return true;
    }
    let id = find_id(message);
    if let Some(id) = id {
        reply(out, id);
    }
    id.is_some()
}

const PARSE_ERROR: &[u8] =
    br#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#;

const REPLY_HEAD: &[u8] = br#"{"jsonrpc":"2.0","result":"hello","id":"#;

/// A reply's length without its id.
const REPLY_LEN: usize = REPLY_HEAD.len() + 1;

/// The demo's answer to `echo ["hello"]` for this id.
fn reply(out: &mut Vec<u8>, id: &[u8]) {
    // One allocation for a fresh buffer (the WebSocket echo's).
    out.reserve(REPLY_LEN + id.len());
    out.extend_from_slice(REPLY_HEAD);
    out.extend_from_slice(id);
    out.push(b'}');
}

/// The raw bytes of the value of the first `"id"` key: a string with its
/// quotes, or whatever else runs up to the next `,`, `}`, `]` or space.
fn find_id(message: &[u8]) -> Option<&[u8]> {
    let key = message.windows(4).position(|w| w == b"\"id\"")?;
    let rest = skip_space(&message[key + 4..]);
    let rest = skip_space(rest.strip_prefix(b":")?);
    let len = if rest.first() == Some(&b'"') {
        // A string id: up to the closing quote, stepping over escapes.
        let mut i = 1;
        loop {
            match rest.get(i)? {
                b'\\' => i += 2,
                b'"' => break i + 1,
                _ => i += 1,
            }
        }
    } else {
        rest.iter()
            .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
            .unwrap_or(rest.len())
    };
    (len > 0).then(|| &rest[..len])
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

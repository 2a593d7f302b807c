//! `rpcpeer bridge`: a stdio program on the network, one child per connection, messages passed both ways with the framing translated.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{Sink, SinkExt, Stream, StreamExt};
use rpcpeer::stream::{spawn_child, Framing, TcpListener, DEFAULT_MAX_FRAME_LEN};
use rpcpeer::ws::{Protocols, ServerIo, Service, WsTransport};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::client::split_words;
use crate::process_group::{own_group, Program};
use crate::serve::AcceptErrors;
use crate::{Failure, StopSignals};

/// How long a child may take to exit once its stdin is closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Arguments of `bridge`.
#[derive(Args)]
pub(crate) struct BridgeArgs {
    /// Where to accept connections: ws://host:port/ (WebSocket text frames)
    /// or tcp://host:port (one JSON text per line).
    #[arg(long, value_name = "URL")]
    listen: String,
    /// The program to start for each connection, spoken to over its
    /// stdin/stdout (split like a shell would: quotes and backslashes, no
    /// expansion). Its stderr goes to the log.
    #[arg(long, value_name = "COMMAND")]
    exec: String,
    /// Framing on the program's stdin/stdout: content-length (LSP) or newline.
    #[arg(long, default_value = "content-length", value_name = "FRAMING")]
    child_framing: Framing,
    /// The largest message, in bytes, either way; a larger one from the
    /// connection is refused (-32600, WebSocket: closed with 1009).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME_LEN)]
    max_message_len: usize,
}

/// What every connection's bridge needs.
struct Shared {
    program: Vec<String>,
    framing: Framing,
    max_message_len: usize,
    next: AtomicU64,
}

/// Runs the bridge until SIGINT or SIGTERM.
pub(crate) async fn run(args: BridgeArgs) -> Result<(), Failure> {
    let mut signals = StopSignals::watch();
    let program = split_words(&args.exec)?;
    if program.is_empty() {
        return Err(Failure::Usage("--exec needs a program to run".into()));
    }
    let shared = Arc::new(Shared {
        program,
        framing: args.child_framing,
        max_message_len: args.max_message_len.max(1),
        next: AtomicU64::new(1),
    });
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let serving = async move {
        if let Some(addr) = args.listen.strip_prefix("tcp://") {
            serve_tcp(addr, shared, stopped).await
        } else if let Some(rest) = args.listen.strip_prefix("ws://") {
            let addr = rest.split('/').next().unwrap_or_default();
            serve_ws(addr, shared, stopped).await
        } else {
            Err(Failure::Usage(format!(
                "--listen {}: use ws://host:port/ or tcp://host:port",
                args.listen
            )))
        }
    };
    tokio::select! {
        result = serving => result,
        _ = signals.recv() => {
            stop.cancel();
            Ok(())
        }
    }
}

async fn serve_tcp(
    addr: &str,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr, Framing::Newline)
        .await
        .map_err(|err| Failure::Connection(format!("cannot listen on {addr}: {err}")))?
        .with_max_frame_len(shared.max_message_len);
    let local = listener
        .local_addr()
        .map_err(|err| Failure::Connection(err.to_string()))?;
    announce(&format!("tcp://{local}"));
    let mut accept_errors = AcceptErrors::default();
    loop {
        match listener.accept().await {
            Ok((transport, remote)) => {
                tokio::spawn(bridge(transport, remote, shared.clone(), stop.clone()));
            }
            Err(err) => accept_errors.failed(&err).await,
        }
    }
}

/// Each WebSocket conversation bridged to a child of its own.
#[derive(Clone)]
struct Bridge {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Service for Bridge {
    async fn websocket(
        &self,
        ws: WsTransport<ServerIo>,
        _: rpcpeer::ws::http::Extensions,
        remote: SocketAddr,
    ) {
        bridge(ws, remote, self.shared.clone(), self.stop.clone()).await;
    }

    async fn http(
        &self,
        _: rpcpeer::ws::http::Request<String>,
        _: SocketAddr,
    ) -> rpcpeer::ws::http::Response<String> {
        // Not reached: the port is WebSocket-only, and answers 426 first.
        let mut response = rpcpeer::ws::http::Response::new(String::new());
        *response.status_mut() = rpcpeer::ws::http::StatusCode::UPGRADE_REQUIRED;
        response
    }
}

async fn serve_ws(addr: &str, shared: Arc<Shared>, stop: CancellationToken) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| Failure::Connection(format!("cannot listen on {addr}: {err}")))?;
    let local = listener
        .local_addr()
        .map_err(|err| Failure::Connection(err.to_string()))?;
    let config = rpcpeer::ws::Config {
        max_message_len: shared.max_message_len,
        protocols: Protocols::WebSocketOnly,
        // The program decides how long a conversation may be silent.
        idle_timeout: None,
        ..rpcpeer::ws::Config::default()
    };
    announce(&format!("ws://{local}/"));
    let service = Bridge {
        shared,
        stop: stop.clone(),
    };
    rpcpeer::ws::Server::new(config)
        .serve_with_shutdown(listener, service, stop.cancelled_owned())
        .await
        .map_err(|err| Failure::Connection(err.to_string()))
}

/// The `listening on` line, on stdout, flushed: what scripts and tests wait for.
fn announce(url: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {url}");
    let _ = stdout.flush();
}

/// Passes messages between `conn` and a new child until either ends, then
/// ends the other.
async fn bridge<T, F>(conn: T, remote: SocketAddr, shared: Arc<Shared>, stop: CancellationToken)
where
    T: Stream<Item = std::io::Result<F>> + Sink<String, Error = std::io::Error> + Unpin,
    // A line's `String`, a WebSocket message's bytes: text either way.
    F: std::ops::Deref<Target = str>,
{
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    let label = format!("connection {id} ({remote})");
    let mut command = Command::new(&shared.program[0]);
    let own = own_group(command.args(&shared.program[1..]).stderr(Stdio::piped()));
    let (child_io, mut child) = match spawn_child(&mut command, shared.framing) {
        Ok(spawned) => spawned,
        Err(err) => {
            tracing::warn!(
                "{label}: cannot start `{}`: {err}; closing the connection",
                shared.program[0]
            );
            let mut conn = conn;
            let _ = conn.close().await;
            return;
        }
    };
    let pid = child.id().unwrap_or_default();
    tracing::info!(
        "{label}: started `{}` (pid {pid})",
        shared.program.join(" ")
    );
    if let Some(stderr) = child.stderr.take() {
        let label = label.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "rpcpeer::bridge::child", "{label}: {}", excerpt(&line, 1000));
            }
        });
    }
    // Ends what the program started when the program exits or this
    // connection is over, however that comes (killed, the bridge stopping).
    let mut program = Program::watch(child, own);
    let child_io = child_io.with_max_frame_len(shared.max_message_len);
    let (mut to_child, mut from_child) = child_io.split();
    let (mut to_conn, mut from_conn) = conn.split();
    // The bridge's own answers (to what it refuses to pass on) go out with
    // the program's messages, through the one sink.
    let (refuse, mut refusals) = tokio::sync::mpsc::channel::<String>(16);
    // NB: the two directions run side by side, each waiting only on its own
    // writes. Were they one loop, a write to the program's full stdin
    // would stop its stdout from being read, and a program blocked writing
    // its stdout never reads its stdin again: each would wait on the other.
    let inbound = async {
        let why = loop {
            match from_conn.next().await {
                Some(Ok(text)) => match refusal(&text) {
                    None => {
                        if let Err(err) = to_child.send((*text).to_owned()).await {
                            break format!("writing to the program failed: {err}");
                        }
                    }
                    Some((code, why)) => {
                        tracing::warn!("{label}: refused a message, not passed on: {why}");
                        if refuse.send(error_reply(code, &why)).await.is_err() {
                            break "the connection failed".to_owned();
                        }
                    }
                },
                Some(Err(err)) if err.kind() == std::io::ErrorKind::FileTooLarge => {
                    let why = format!("a message over the limit, not passed on: {err}");
                    tracing::warn!("{label}: refused {why}");
                    if refuse.send(error_reply(-32600, &why)).await.is_err() {
                        break "the connection failed".to_owned();
                    }
                }
                Some(Err(err)) if err.kind() == std::io::ErrorKind::InvalidData => {
                    let why = format!("a message that is not UTF-8, not passed on: {err}");
                    tracing::warn!("{label}: refused {why}");
                    if refuse.send(error_reply(-32700, &why)).await.is_err() {
                        break "the connection failed".to_owned();
                    }
                }
                Some(Err(err)) => break format!("the connection failed: {err}"),
                None => {
                    // NB: a peer that only shut down its writing half (a TCP
                    // half-close) still gets the answers to what it sent: the
                    // program sees its stdin end, and what it writes is
                    // passed on until it closes its stdout, within its time
                    // to exit.
                    let _ = tokio::time::timeout(EXIT_GRACE, to_child.close()).await;
                    return (
                        true,
                        "the connection closed (or shut down its writing half)".to_owned(),
                    );
                }
            }
        };
        (false, why)
    };
    let outbound = async {
        let why = loop {
            let text = tokio::select! {
                message = from_child.next() => match message {
                    Some(Ok(text)) => text,
                    Some(Err(err)) => {
                        tracing::warn!("{label}: a message from the program was dropped: {err}");
                        if !matches!(err.kind(), std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::InvalidData) {
                            break format!("reading from the program failed: {err}");
                        }
                        continue;
                    }
                    None => break "the program closed its stdout".to_owned(),
                },
                Some(reply) = refusals.recv() => reply,
            };
            if let Err(err) = to_conn.send(text).await {
                return format!("the connection failed: {err}");
            }
        };
        // NB: the peer is still owed what the bridge refused before the
        // program's end; the select above may have seen the end first.
        while let Ok(reply) = refusals.try_recv() {
            if let Err(err) = to_conn.send(reply).await {
                return format!("the connection failed: {err}");
            }
        }
        why
    };
    let deadline;
    {
        tokio::pin!(inbound, outbound);
        let (peer_done, why) = tokio::select! {
            (peer_done, why) = &mut inbound => (peer_done, why),
            why = &mut outbound => (false, why),
            () = stop.cancelled() => (false, "the bridge is stopping".to_owned()),
        };
        tracing::info!("{label}: {why}; ending both sides");
        deadline = tokio::time::Instant::now() + EXIT_GRACE;
        if peer_done {
            tokio::select! {
                _ = tokio::time::timeout_at(deadline, &mut outbound) => {}
                () = stop.cancelled() => {}
            }
        }
    }
    // Closing its stdin asks the program to exit (a language server does);
    // one that does not is killed. A program that no longer reads cannot
    // hold this up past its time to exit.
    let _ = tokio::time::timeout_at(deadline, to_child.close()).await;
    drop((to_child, from_child));
    let _ = tokio::time::timeout(EXIT_GRACE, to_conn.close()).await;
    end(&mut program, &label, pid, deadline).await;
}

/// Waits for the program to exit, killing it at `deadline`.
async fn end(program: &mut Program, label: &str, pid: u32, deadline: tokio::time::Instant) {
    let status = match tokio::time::timeout_at(deadline, program.ended()).await {
        Ok(status) => status,
        Err(_) => {
            program.kill();
            program.ended().await
        }
    };
    match status {
        Some(status) => tracing::info!("{label}: pid {pid} exited: {status}"),
        None => tracing::warn!("{label}: pid {pid} ended, its exit status unread"),
    }
}

/// Why a message from the connection is not passed on, and the code to
/// answer it with: -32700 when it is not JSON, -32600 when it is JSON but
/// neither an object nor an array (no JSON-RPC message or batch).
fn refusal(text: &str) -> Option<(i64, String)> {
    match serde_json::from_str::<&RawValue>(text) {
        Err(err) => Some((-32700, format!("Parse error: not JSON ({err}); not passed on to the program"))),
        Ok(raw) if raw.get().starts_with(['{', '[']) => None,
        Ok(_) => Some((
            -32600,
            "Invalid Request: a JSON-RPC message is an object or an array; not passed on to the program".to_owned(),
        )),
    }
}

/// A JSON-RPC error reply with a null id (the message it answers has none we can read).
fn error_reply(code: i64, message: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": null})
        .to_string()
}

/// The first `max` bytes of `line`, cut on a character boundary.
fn excerpt(line: &str, max: usize) -> &str {
    let mut end = line.len().min(max);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

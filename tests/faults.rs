//! Faults a peer can cause, over TCP in both framings and over WebSocket:
//! each gets the right error or a clean close, never a panic or a hang, and
//! a second connection to the same server is served throughout.

mod common;

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{within, Wire, FRAMINGS};
use futures::{SinkExt, StreamExt};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Config, Context, Driver, Error, ErrorObject, Router, Unreadable};
use rpcpeer_stream::{Framing, TcpListener};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata};

// ---------------------------------------------------------------- the log

/// Every event logged on this thread while the guard lives. `tokio::test`
/// runs the server's tasks on the test's own thread, so this sees theirs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(Level, String)>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let guard = tracing::subscriber::set_default(logs.clone());
        (logs, guard)
    }

    /// The lines at `level` or more severe.
    fn at_least(&self, level: Level) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|(l, _)| *l <= level)
            .map(|(_, text)| text.clone())
            .collect()
    }

    fn containing(&self, what: &str) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|(_, text)| text.contains(what))
            .map(|(_, text)| text.clone())
            .collect()
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Line(String::new());
        event.record(&mut text);
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, text.0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }
}

// ---------------------------------------------------------------- servers

/// What the handlers report: which started, which were dropped unfinished
/// (and whether their token had fired by then).
#[derive(Clone)]
struct Probe {
    started: mpsc::UnboundedSender<String>,
    dropped: mpsc::UnboundedSender<(String, bool)>,
}

struct Reports {
    started: mpsc::UnboundedReceiver<String>,
    dropped: mpsc::UnboundedReceiver<(String, bool)>,
}

/// Sends its tag and whether the token had fired, when the handler's
/// future is dropped before it finished.
struct DropGuard {
    tag: String,
    token: tokio_util::sync::CancellationToken,
    dropped: mpsc::UnboundedSender<(String, bool)>,
    finished: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self
                .dropped
                .send((self.tag.clone(), self.token.is_cancelled()));
        }
    }
}

#[derive(serde::Deserialize)]
struct Typed {
    small: i64,
    ratio: f64,
    count: u8,
}

/// `sum` and `sync` (see `common`), and:
/// - `hold [tag]`: runs until cancelled (reported), never answers;
/// - `nap [ms, tag]`: answers `tag` after `ms` milliseconds;
/// - `typed {small: i64, ratio: f64, count: u8}`: answers `small`;
/// - `ask`: calls the caller's `name` and answers what it said.
fn router() -> (Router<Probe>, Reports) {
    let (started_tx, started) = mpsc::unbounded_channel();
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let probe = Probe {
        started: started_tx,
        dropped: dropped_tx,
    };
    let mut router = Router::with_state(probe);
    router.method("hold", |(tag,): (String,), cx: Context<Probe>| async move {
        let _guard = DropGuard {
            tag: tag.clone(),
            token: cx.cancellation().clone(),
            dropped: cx.state().dropped.clone(),
            finished: false,
        };
        let _ = cx.state().started.send(tag);
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    router.method(
        "nap",
        |(ms, tag): (u64, String), cx: Context<Probe>| async move {
            let mut guard = DropGuard {
                tag: tag.clone(),
                token: cx.cancellation().clone(),
                dropped: cx.state().dropped.clone(),
                finished: false,
            };
            let _ = cx.state().started.send(tag.clone());
            tokio::time::sleep(Duration::from_millis(ms)).await;
            guard.finished = true;
            Ok::<_, ErrorObject>(tag)
        },
    );
    router.method("typed", |p: Typed| async move {
        let _ = (p.ratio, p.count);
        Ok::<_, ErrorObject>(p.small)
    });
    router.method("sum", |xs: Vec<i64>| async move {
        Ok::<_, ErrorObject>(xs.iter().sum::<i64>())
    });
    router.method("ask", |cx: Context<Probe>| async move {
        Ok::<_, ErrorObject>(cx.peer().request::<String>("name", ()).await?)
    });
    common::add_sync(&mut router);
    (router, Reports { started, dropped })
}

/// Short enough that a drain never makes a test slow.
fn config() -> Config {
    Config::default().drain_timeout(Duration::from_millis(300))
}

/// A TCP server whose connections' ends come out of `ended`.
struct Tcp {
    addr: SocketAddr,
    framing: Framing,
    ended: mpsc::UnboundedReceiver<Result<(), Error>>,
    reports: Reports,
}

async fn tcp(framing: Framing) -> Tcp {
    tcp_with(framing, config()).await
}

async fn tcp_with(framing: Framing, config: Config) -> Tcp {
    let (router, reports) = router();
    let listener = TcpListener::bind("127.0.0.1:0", framing).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended_tx, ended) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((transport, _)) = listener.accept().await {
            let driver = Driver::builder(transport, router.clone())
                .config(config.clone())
                .build()
                .1;
            let ended_tx = ended_tx.clone();
            tokio::spawn(async move {
                let _ = ended_tx.send(driver.await);
            });
        }
    });
    Tcp {
        addr,
        framing,
        ended,
        reports,
    }
}

impl Tcp {
    async fn wire(&self) -> Wire {
        Wire::connect(self.addr, self.framing).await
    }

    /// How the next connection to end ended.
    async fn next_end(&mut self) -> Result<(), Error> {
        within("a connection's end", self.ended.recv())
            .await
            .expect("the server is gone")
    }

    /// A call on a fresh connection: the server still serves.
    async fn still_serves(&self) {
        let mut other = self.wire().await;
        let reply = other
            .call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":"other"}"#)
            .await;
        assert_eq!(reply, json!({"jsonrpc":"2.0","result":3,"id":"other"}));
    }
}

/// A WebSocket server (the library's `WsServer`); `peers` gives each
/// connection's `Peer` as it connects, to see when it has ended.
struct Ws {
    addr: SocketAddr,
    reports: Reports,
    peers: mpsc::UnboundedReceiver<rpcpeer::Peer>,
}

async fn ws() -> Ws {
    ws_with(config()).await
}

async fn ws_with(config: Config) -> Ws {
    let (router, reports) = router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (peers_tx, peers) = mpsc::unbounded_channel();
    let server = WsServer::new(router)
        .config(config)
        .on_connect(move |peer, _, _| {
            let _ = peers_tx.send(peer.clone());
        });
    tokio::spawn(server.serve(listener));
    Ws {
        addr,
        reports,
        peers,
    }
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Ws {
    /// A raw client, and the server's `Peer` for its connection.
    async fn connect(&mut self) -> (RawWs, rpcpeer::Peer) {
        let raw = self.raw().await;
        let peer = within("the server's peer", self.peers.recv())
            .await
            .unwrap();
        (raw, peer)
    }

    async fn raw(&self) -> RawWs {
        tokio_tungstenite::connect_async(format!("ws://{}/", self.addr))
            .await
            .unwrap()
            .0
    }

    /// A call on a fresh connection: the server still serves.
    async fn still_serves(&mut self) {
        let (mut other, _) = self.connect().await;
        let reply = ws_call(
            &mut other,
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":"other"}"#,
        )
        .await;
        assert_eq!(reply, json!({"jsonrpc":"2.0","result":3,"id":"other"}));
    }
}

/// What a raw WebSocket client saw next.
#[derive(Debug, PartialEq)]
enum Seen {
    Json(Value),
    /// A close frame: its code and reason.
    Close(u16, String),
    /// The stream ended (or failed) without a close frame.
    End,
}

async fn ws_next(ws: &mut RawWs) -> Seen {
    loop {
        match within("a WebSocket message", ws.next()).await {
            Some(Ok(Message::Text(text))) => {
                return Seen::Json(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(f) => Seen::Close(f.code.into(), f.reason.as_str().to_owned()),
                    None => Seen::Close(1005, String::new()),
                }
            }
            Some(Ok(Message::Binary(_))) => panic!("the server sent a binary message"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Seen::End,
        }
    }
}

async fn ws_recv(ws: &mut RawWs) -> Value {
    match ws_next(ws).await {
        Seen::Json(value) => value,
        other => panic!("expected a reply, got {other:?}"),
    }
}

async fn ws_send(ws: &mut RawWs, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

async fn ws_call(ws: &mut RawWs, text: &str) -> Value {
    ws_send(ws, text).await;
    ws_recv(ws).await
}

/// A text frame holding `bytes` as they are, UTF-8 or not.
fn raw_text_frame(bytes: &[u8]) -> Message {
    Message::Frame(Frame::message(
        bytes.to_vec(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// `body` as one frame of `framing`, written by hand.
fn frame(framing: Framing, body: &[u8]) -> Vec<u8> {
    match framing {
        Framing::Newline => [body, b"\n"].concat(),
        Framing::ContentLength => [
            format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
            body,
        ]
        .concat(),
    }
}

/// Asserts a -32700 with id null whose message contains `what`.
fn assert_parse_error(reply: &Value, what: &str) {
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(what), "`{message}` lacks `{what}`");
}

const SUM: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

fn sum_reply() -> Value {
    json!({"jsonrpc":"2.0","result":3,"id":1})
}

// ------------------------------------------------ peer gone mid-request

/// Over a byte stream the end of the peer's input may be a half-close, so
/// a running call gets the drain timeout to finish; the peer is gone, so it
/// runs out, and the call is cancelled: its future dropped, its token
/// fired. Nothing is logged at error level, and the server serves on.
#[tokio::test]
async fn a_tcp_peer_gone_mid_request_has_its_call_cancelled() {
    let (logs, _guard) = Logs::capture();
    for framing in FRAMINGS {
        let mut server = tcp(framing).await;
        let mut wire = server.wire().await;
        wire.send(r#"{"jsonrpc":"2.0","method":"hold","params":["gone"],"id":1}"#)
            .await;
        within("the call to start", server.reports.started.recv()).await;
        drop(wire);
        let dropped = within("the call to be dropped", server.reports.dropped.recv()).await;
        assert_eq!(dropped, Some(("gone".to_owned(), true)), "{framing}");
        // Its "shutting down" answer goes to a socket the peer has closed:
        // written into the void, or refused, whichever the kernel does first.
        match server.next_end().await {
            Ok(()) => {}
            Err(Error::Transport(err)) => assert!(
                matches!(
                    err.kind(),
                    std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::NotConnected
                ),
                "{framing}: {err}"
            ),
            Err(other) => panic!("{framing}: {other}"),
        }
        server.still_serves().await;
    }
    assert_eq!(logs.at_least(Level::ERROR), Vec::<String>::new());
}

/// A peer that resets its connection cannot read anything more: the call
/// is cancelled at once, and the connection ends with the reset as its
/// reason.
#[tokio::test]
async fn a_tcp_peer_that_resets_mid_request_has_its_call_cancelled_at_once() {
    let (logs, _guard) = Logs::capture();
    // A drain longer than any test: only the reset can end the call.
    let mut server = tcp_with(
        Framing::Newline,
        Config::default().drain_timeout(Duration::from_secs(600)),
    )
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    let mut tcp = socket.connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"{\"jsonrpc\":\"2.0\",\"method\":\"hold\",\"params\":[\"reset\"],\"id\":1}\n",
    )
    .await
    .unwrap();
    within("the call to start", server.reports.started.recv()).await;
    // A zero linger time makes the close a reset (RST, not FIN).
    tcp.set_zero_linger().unwrap();
    drop(tcp);
    let dropped = within("the call to be dropped", server.reports.dropped.recv()).await;
    assert_eq!(dropped, Some(("reset".to_owned(), true)));
    match server.next_end().await {
        Err(Error::Transport(err)) => {
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}")
        }
        other => panic!("expected the reset, got {other:?}"),
    }
    server.still_serves().await;
    assert_eq!(logs.at_least(Level::ERROR), Vec::<String>::new());
}

/// Over WebSocket the peer's end is always final: without a close frame
/// (the TCP connection dropped) or with one (RFC 6455 §5.5.1: nothing may
/// be sent after it), no answer could be delivered, so the running call is
/// cancelled at once, not after the drain timeout. A close frame is a clean
/// end; a dropped connection is reported (at debug) as what it is.
#[tokio::test]
async fn a_websocket_peer_gone_mid_request_has_its_call_cancelled_at_once() {
    let (logs, _guard) = Logs::capture();
    // A drain longer than any test: only the peer's end can end the call.
    let mut server = ws_with(Config::default().drain_timeout(Duration::from_secs(600))).await;

    let (mut raw, peer) = server.connect().await;
    ws_send(
        &mut raw,
        r#"{"jsonrpc":"2.0","method":"hold","params":["dropped"],"id":1}"#,
    )
    .await;
    within("the call to start", server.reports.started.recv()).await;
    drop(raw);
    let dropped = within("the call to be dropped", server.reports.dropped.recv()).await;
    assert_eq!(dropped, Some(("dropped".to_owned(), true)));
    within("the connection's end", peer.closed()).await;
    let ended = logs.containing("WebSocket peer ended");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(
        ended[0].contains("without a WebSocket close frame"),
        "{ended:?}"
    );

    let (mut raw, peer) = server.connect().await;
    ws_send(
        &mut raw,
        r#"{"jsonrpc":"2.0","method":"hold","params":["closed"],"id":1}"#,
    )
    .await;
    within("the call to start", server.reports.started.recv()).await;
    raw.close(None).await.unwrap();
    let dropped = within("the call to be dropped", server.reports.dropped.recv()).await;
    assert_eq!(dropped, Some(("closed".to_owned(), true)));
    // The server answered the close frame, and sent nothing else.
    assert!(matches!(ws_next(&mut raw).await, Seen::Close(..)));
    within("the connection's end", peer.closed()).await;
    // No second "ended" line: the driver ended without an error.
    assert_eq!(logs.containing("WebSocket peer ended").len(), 1);

    server.still_serves().await;
    assert_eq!(logs.at_least(Level::ERROR), Vec::<String>::new());
}

// ------------------------------------------------ half-closed streams

/// A client that shuts down its writing half after its requests still
/// reads: every request already sent is answered, then the server closes
/// (the graceful drain), and the connection ends without an error.
#[tokio::test]
async fn a_half_closed_tcp_stream_gets_every_answer_then_the_close() {
    for framing in FRAMINGS {
        // The default drain (5 s): far more than the calls need.
        let mut server = tcp_with(framing, Config::default()).await;
        let mut wire = server.wire().await;
        wire.send(r#"{"jsonrpc":"2.0","method":"nap","params":[50,"late"],"id":1}"#)
            .await;
        wire.send(r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2},{"jsonrpc":"2.0","method":"nap","params":[20,"b"],"id":3}]"#)
            .await;
        wire.send(r#"{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":4}"#)
            .await;
        wire.shutdown_write().await;
        let mut replies = Vec::new();
        while let Some(text) = wire.recv_text().await {
            replies.push(serde_json::from_str::<Value>(&text).unwrap());
        }
        replies.sort_by_key(|r| r.get("id").or(r[0].get("id")).map(Value::to_string));
        assert_eq!(
            replies,
            [
                json!({"jsonrpc":"2.0","result":"late","id":1}),
                json!([{"jsonrpc":"2.0","result":3,"id":2},{"jsonrpc":"2.0","result":"b","id":3}]),
                json!({"jsonrpc":"2.0","result":7,"id":4}),
            ],
            "{framing}: every answer, then the end"
        );
        server.next_end().await.unwrap();
        server.still_serves().await;
    }
}

// ------------------------------------------------ truncated frames

/// A Content-Length frame cut short by the end of the stream: the framing
/// cannot be finished, so the connection ends at once with an error that
/// says how many bytes were missing; nothing hangs waiting for them. The
/// peer, which only shut down its side, is told so before the close.
#[tokio::test]
async fn a_content_length_frame_cut_short_by_the_end_of_stream_ends_with_a_clear_error() {
    let mut server = tcp(Framing::ContentLength).await;
    let mut wire = server.wire().await;
    assert_eq!(wire.call(SUM).await, sum_reply());
    wire.send_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"")
        .await;
    wire.shutdown_write().await;
    let told: Value =
        serde_json::from_str(&wire.recv_text().await.expect("an answer")).expect("JSON");
    assert_eq!(
        told,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700,
            "message": "Parse error: stream ended 90 bytes short of a 100 byte frame body"}})
    );
    assert_eq!(wire.recv_text().await, None, "the connection is closed");
    match server.next_end().await {
        Err(Error::Transport(err)) => {
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
            assert_eq!(
                err.to_string(),
                "stream ended 90 bytes short of a 100 byte frame body"
            );
        }
        other => panic!("expected the truncated frame, got {other:?}"),
    }
    server.still_serves().await;
}

/// Newline framing: a last line without its `\n` is still a message when
/// the stream ends (as `printf` or `echo -n` would send it), so a complete
/// request is answered and a cut-off one is a parse error; then the
/// connection closes as for any end of input.
#[tokio::test]
async fn a_last_line_without_its_newline_is_read_as_a_message() {
    let mut server = tcp(Framing::Newline).await;
    let mut wire = server.wire().await;
    wire.send_raw(SUM.as_bytes()).await;
    wire.shutdown_write().await;
    assert_eq!(wire.recv().await, sum_reply());
    assert_eq!(wire.recv_text().await, None);
    server.next_end().await.unwrap();

    let mut wire = server.wire().await;
    wire.send_raw(br#"{"jsonrpc":"2.0","method":"sum","par"#)
        .await;
    wire.shutdown_write().await;
    assert_parse_error(&wire.recv().await, "EOF while parsing");
    assert_eq!(wire.recv_text().await, None);
    server.next_end().await.unwrap();
    server.still_serves().await;
}

/// JSON cut short inside a complete frame costs that frame only: -32700
/// with id null, and the connection goes on.
#[tokio::test]
async fn truncated_json_in_a_whole_frame_is_a_parse_error_and_the_connection_goes_on() {
    let cut = r#"{"jsonrpc":"2.0","method":"sum","params":[1,"#;
    for framing in FRAMINGS {
        let server = tcp(framing).await;
        let mut wire = server.wire().await;
        assert_parse_error(&wire.call(cut).await, "EOF while parsing");
        assert_eq!(wire.call(SUM).await, sum_reply(), "{framing}");
        server.still_serves().await;
    }
    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    assert_parse_error(&ws_call(&mut raw, cut).await, "EOF while parsing");
    assert_eq!(ws_call(&mut raw, SUM).await, sum_reply());
    server.still_serves().await;
}

// ------------------------------------------------ invalid UTF-8

/// Over a byte stream a message that is not UTF-8 still has its frame (its
/// line end, its length): -32700 with id null, saying so and where, and
/// the connection goes on.
#[tokio::test]
async fn a_tcp_message_that_is_not_utf8_is_a_parse_error_and_the_connection_goes_on() {
    let bad = b"{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[1],\"id\":\"\xff\"}";
    for framing in FRAMINGS {
        let mut server = tcp(framing).await;
        let mut wire = server.wire().await;
        wire.send_raw(&frame(framing, bad)).await;
        assert_parse_error(
            &wire.recv().await,
            "the message is not UTF-8 (invalid utf-8 sequence of 1 bytes from index 51)",
        );
        assert_eq!(wire.call(SUM).await, sum_reply(), "{framing}");
        // A multi-byte character cut short, then a good message in the
        // same write: both read.
        let mut bytes = frame(framing, b"[\"\xe2\x9c\"]");
        bytes.extend(frame(framing, SUM.as_bytes()));
        wire.send_raw(&bytes).await;
        assert_parse_error(&wire.recv().await, "not UTF-8");
        assert_eq!(wire.recv().await, sum_reply(), "{framing}");
        server.still_serves().await;
        drop(wire);
        server.next_end().await.unwrap();
    }
}

/// Over WebSocket a text message that is not UTF-8 breaks the protocol
/// (RFC 6455 §8.1): the connection is failed with close code 1007 and a
/// reason. Others are not touched.
#[tokio::test]
async fn a_websocket_text_message_that_is_not_utf8_closes_with_1007() {
    let mut server = ws().await;
    let (mut raw, peer) = server.connect().await;
    raw.send(raw_text_frame(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[1],\"id\":\"\xff\"}",
    ))
    .await
    .unwrap();
    assert_eq!(
        ws_next(&mut raw).await,
        Seen::Close(1007, "message is not valid UTF-8".to_owned())
    );
    within("the connection's end", peer.closed()).await;
    server.still_serves().await;
}

/// A binary WebSocket message is read as text when it is UTF-8 (some
/// clients send nothing else); one that is not is garbage like any other:
/// -32700, and the connection goes on (binary data breaks no rule of the
/// WebSocket protocol, so 1007 would be wrong).
#[tokio::test]
async fn a_binary_websocket_message_is_read_as_text_or_answered_parse_error() {
    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    raw.send(Message::binary(SUM.as_bytes().to_vec()))
        .await
        .unwrap();
    assert_eq!(ws_recv(&mut raw).await, sum_reply());
    raw.send(Message::binary(vec![0x82, 0xa1, 0x61, 0x01]))
        .await
        .unwrap();
    assert_parse_error(
        &ws_recv(&mut raw).await,
        "the message is not UTF-8 (invalid utf-8 sequence of 1 bytes from index 0)",
    );
    assert_eq!(ws_call(&mut raw, SUM).await, sum_reply());
    server.still_serves().await;
}

// ------------------------------------------------ garbage

/// Bytes from a fixed-seed generator: the same garbage on every run.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        // Not a line end: over newline framing it would be two messages.
        .map(|b| if b == b'\n' { b'x' } else { b })
        .collect()
}

/// Texts and bytes that are not JSON-RPC at all, each in a frame of its own.
fn junk() -> Vec<Vec<u8>> {
    let mut junk: Vec<Vec<u8>> = ["hello", "}{", "[1,2", "nul", "\"unterminated", "{\"a\":1}}"]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
    for seed in 1..=8 {
        junk.push(garbage(200, seed));
    }
    junk
}

/// Garbage in a frame costs that frame only: -32700 (id null) each time,
/// and the connection goes on.
#[tokio::test]
async fn garbage_is_a_parse_error_each_time_and_the_connection_goes_on() {
    for framing in FRAMINGS {
        let mut server = tcp(framing).await;
        let mut wire = server.wire().await;
        for bytes in junk() {
            wire.send_raw(&frame(framing, &bytes)).await;
            let reply = wire.recv().await;
            assert_eq!(reply["error"]["code"], -32700, "{framing}: {reply}");
            assert_eq!(reply["id"], Value::Null);
        }
        assert_eq!(wire.call(SUM).await, sum_reply(), "{framing}");
        server.still_serves().await;
        drop(wire);
        server.next_end().await.unwrap();
    }
    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    for bytes in junk() {
        // Text when it is UTF-8 (a text frame must be), binary otherwise.
        let msg = match String::from_utf8(bytes) {
            Ok(text) => Message::text(text),
            Err(err) => Message::binary(err.into_bytes()),
        };
        raw.send(msg).await.unwrap();
        let reply = ws_recv(&mut raw).await;
        assert_eq!(reply["error"]["code"], -32700, "{reply}");
        assert_eq!(reply["id"], Value::Null);
    }
    assert_eq!(ws_call(&mut raw, SUM).await, sum_reply());
    server.still_serves().await;
}

/// Bytes with no Content-Length header where one must be: the framing is
/// lost and cannot be found again in a byte stream, so the peer is told
/// why (-32700) and the connection closes; others are not touched.
#[tokio::test]
async fn bytes_without_content_length_framing_are_answered_then_the_connection_closes() {
    let mut server = tcp(Framing::ContentLength).await;
    let mut wire = server.wire().await;
    wire.send_raw(&garbage(64, 99)).await;
    let reply = wire.recv().await;
    assert_parse_error(&reply, "header");
    assert_eq!(wire.recv_text().await, None, "the connection is closed");
    match server.next_end().await {
        Err(Error::Transport(err)) => {
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}")
        }
        other => panic!("expected the lost framing, got {other:?}"),
    }
    server.still_serves().await;
}

// ------------------------------------------------ numbers too big

/// A number too big for the param's type is the param's fault: -32602,
/// naming the param (by name, or by position and name) and saying why.
#[tokio::test]
async fn numbers_too_big_for_their_type_are_invalid_params_naming_the_param() {
    let cases = [
        (
            r#""method":"sum","params":[1e400]"#,
            "`[0]`: number out of range",
        ),
        (
            r#""method":"sum","params":[1,9223372036854775808]"#,
            "`[1]`: invalid value: integer `9223372036854775808`, expected i64",
        ),
        (
            r#""method":"sum","params":[18446744073709551616]"#,
            "`[0]`: invalid type: floating point `1.8446744073709552e+19`, expected i64",
        ),
        (
            r#""method":"typed","params":{"small":-9223372036854775809,"ratio":1,"count":1}"#,
            "`small`",
        ),
        (
            r#""method":"typed","params":{"small":1,"ratio":1e400,"count":1}"#,
            "`ratio`: number out of range",
        ),
        (
            r#""method":"typed","params":{"small":1,"ratio":1,"count":256}"#,
            "`count`: invalid value: integer `256`, expected u8",
        ),
        (
            r#""method":"typed","params":[1,-1e309,1]"#,
            "`ratio` (position 1): number out of range",
        ),
    ];
    let check = |n: usize, reply: Value, framing: &str| {
        assert_eq!(reply["error"]["code"], -32602, "{framing}: {reply}");
        assert_eq!(reply["id"], n, "{framing}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(cases[n].1),
            "{framing}: `{message}` lacks `{}`",
            cases[n].1
        );
    };
    for framing in FRAMINGS {
        let server = tcp(framing).await;
        let mut wire = server.wire().await;
        for (n, (call, _)) in cases.iter().enumerate() {
            let reply = wire
                .call(&format!(r#"{{"jsonrpc":"2.0",{call},"id":{n}}}"#))
                .await;
            check(n, reply, framing.as_str());
        }
        assert_eq!(wire.call(SUM).await, sum_reply());
    }
    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    for (n, (call, _)) in cases.iter().enumerate() {
        let reply = ws_call(&mut raw, &format!(r#"{{"jsonrpc":"2.0",{call},"id":{n}}}"#)).await;
        check(n, reply, "WebSocket");
    }
    server.still_serves().await;
}

/// An id is the client's to choose (spec §4: a string, a number or null),
/// and the reply must carry the same one: a number no integer type holds
/// (1e400, 2^64, a fraction) is echoed byte for byte rather than refused or
/// rounded. A response with such an id answers nothing of ours: dropped.
#[tokio::test]
async fn ids_too_big_for_any_number_type_are_echoed_exactly() {
    let ids = ["1e400", "-1e400", "18446744073709551616", "1.5", "0.1e-999"];
    for framing in FRAMINGS {
        let server = tcp(framing).await;
        let mut wire = server.wire().await;
        for id in ids {
            wire.send(&format!(
                r#"{{"jsonrpc":"2.0","method":"sum","params":[1],"id":{id}}}"#
            ))
            .await;
            let reply = wire.recv_text().await.unwrap();
            assert_eq!(
                reply,
                format!(r#"{{"jsonrpc":"2.0","result":1,"id":{id}}}"#)
            );
        }
        wire.send(r#"{"jsonrpc":"2.0","result":1,"id":1e400}"#)
            .await;
        wire.expect_no_reply().await;
    }
    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    for id in ids {
        ws_send(
            &mut raw,
            &format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[1],"id":{id}}}"#),
        )
        .await;
        let Some(Ok(Message::Text(reply))) = within("a reply", raw.next()).await else {
            panic!("no reply");
        };
        assert_eq!(
            reply.as_str(),
            format!(r#"{{"jsonrpc":"2.0","result":1,"id":{id}}}"#)
        );
    }
    server.still_serves().await;
}

// ------------------------------------------------ duplicate ids in flight

/// Two requests in flight with one id: each is answered, with its own
/// result and that id (telling them apart is the client's affair). A
/// cancel for that id ends one of them, the one started last; a second
/// cancel ends the other.
/// One raw connection, TCP or WebSocket, for a conversation that must go
/// the same way over both.
trait Link {
    async fn send_text(&mut self, text: &str);
    async fn next_reply(&mut self) -> Value;
    async fn round_trip(&mut self, text: &str) -> Value {
        self.send_text(text).await;
        self.next_reply().await
    }
}

impl Link for Wire {
    async fn send_text(&mut self, text: &str) {
        Wire::send(self, text).await;
    }
    async fn next_reply(&mut self) -> Value {
        Wire::recv(self).await
    }
}

impl Link for RawWs {
    async fn send_text(&mut self, text: &str) {
        ws_send(self, text).await;
    }
    async fn next_reply(&mut self) -> Value {
        ws_recv(self).await
    }
}

/// Two calls with id 7 are both answered; of two running with id 8, a
/// cancel ends the one started last, then the other.
async fn calls_sharing_an_id(link: &mut impl Link, reports: &mut Reports) {
    let first = r#"{"jsonrpc":"2.0","method":"nap","params":[60,"first"],"id":7}"#;
    let second = r#"{"jsonrpc":"2.0","method":"nap","params":[10,"second"],"id":7}"#;
    let hold =
        |tag: &str| format!(r#"{{"jsonrpc":"2.0","method":"hold","params":["{tag}"],"id":8}}"#);
    let cancel = r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":8}}"#;
    let cancelled =
        json!({"jsonrpc":"2.0","error":{"code":-32800,"message":"Request cancelled"},"id":8});

    link.send_text(first).await;
    link.send_text(second).await;
    let mut results = [link.next_reply().await, link.next_reply().await].map(|r| {
        assert_eq!(r["id"], 7, "{r}");
        r["result"].as_str().unwrap().to_owned()
    });
    results.sort();
    assert_eq!(results, ["first", "second"]);
    for _ in results {
        within("start", reports.started.recv()).await;
    }
    for tag in ["older", "newer"] {
        link.send_text(&hold(tag)).await;
        assert_eq!(
            within("start", reports.started.recv()).await.as_deref(),
            Some(tag)
        );
    }
    for tag in ["newer", "older"] {
        assert_eq!(link.round_trip(cancel).await, cancelled);
        let dropped = within("the cancel", reports.dropped.recv()).await;
        assert_eq!(dropped, Some((tag.to_owned(), true)));
    }
}

#[tokio::test]
async fn requests_sharing_an_id_are_each_answered_and_a_cancel_ends_the_last_started() {
    let mut server = tcp(Framing::Newline).await;
    let mut wire = server.wire().await;
    calls_sharing_an_id(&mut wire, &mut server.reports).await;
    server.still_serves().await;

    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    calls_sharing_an_id(&mut raw, &mut server.reports).await;
    server.still_serves().await;
}

// ------------------------------------------------ responses nobody asked for

/// Responses that answer no request of ours (numbers, strings, errors,
/// one with id null): a peer may send nothing else, thousands of them.
fn strays(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!(r#"{{"jsonrpc":"2.0","result":{i},"id":{}}}"#, 1_000_000 + i),
            1 => format!(r#"{{"jsonrpc":"2.0","result":"x","id":"s{i}"}}"#),
            2 => format!(
                r#"{{"jsonrpc":"2.0","error":{{"code":-32000,"message":"no"}},"id":{}}}"#,
                1_000_000 + i
            ),
            _ => r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"stray"},"id":null}"#
                .to_owned(),
        })
        .collect()
}

const STRAYS: usize = 2_000;

/// Each stray is dropped and logged, but at warn at most once per 10 s a
/// kind (two kinds here) for the whole process: a peer cannot fill the log.
fn assert_log_not_flooded(logs: &Logs, sent: usize, since: std::time::Instant) {
    let lines = logs.containing("response to no request of ours");
    let unreadable = logs.containing("could not read one of our messages");
    assert_eq!(lines.len() + unreadable.len(), sent, "each stray is seen");
    let periods = 1 + since.elapsed().as_secs() / 10;
    let warnings = logs.at_least(Level::WARN);
    assert!(
        warnings.len() as u64 <= 2 * periods,
        "the log is flooded: {} warnings for {sent} strays",
        warnings.len()
    );
}

/// A peer that sends only responses, thousands of them: each is dropped,
/// nothing is kept of it, the log is not flooded, and the connection goes
/// on, a real answer among them reaching its caller.
#[tokio::test]
async fn a_peer_that_sends_only_responses_is_ignored_without_flooding_the_log() {
    let (logs, _guard) = Logs::capture();
    let since = std::time::Instant::now();
    let mut sent = 0;
    for framing in FRAMINGS {
        let server = tcp(framing).await;
        let mut wire = server.wire().await;
        for stray in strays(STRAYS) {
            wire.send(&stray).await;
        }
        sent += STRAYS;
        assert_eq!(wire.call(SUM).await, sum_reply(), "{framing}");

        // `ask` calls us back: strays before the real answer change nothing.
        wire.send(r#"{"jsonrpc":"2.0","method":"ask","id":"ask"}"#)
            .await;
        let request = wire.recv().await;
        assert_eq!(request["method"], "name", "{request}");
        for stray in strays(100) {
            wire.send(&stray).await;
        }
        sent += 100;
        let answer = json!({"jsonrpc":"2.0","result":"ada","id":request["id"]});
        let reply = wire.call(&answer.to_string()).await;
        assert_eq!(reply, json!({"jsonrpc":"2.0","result":"ada","id":"ask"}));
        server.still_serves().await;
    }
    let mut server = ws().await;
    let (mut raw, _) = server.connect().await;
    for stray in strays(STRAYS) {
        raw.feed(Message::text(stray)).await.unwrap();
    }
    raw.flush().await.unwrap();
    sent += STRAYS;
    assert_eq!(ws_call(&mut raw, SUM).await, sum_reply());
    server.still_serves().await;
    assert_log_not_flooded(&logs, sent, since);
}

// ------------------------------------------------ Error::Closed reasons

/// How a raw server ends the connection once it has read our request.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Closes it (TCP FIN; over WebSocket, a close frame).
    Close,
    /// Resets it (TCP RST; over WebSocket, no close frame either).
    Reset,
    /// Says it could not read our message (-32700, id null), then closes.
    Refuse,
}

/// A raw TCP server, newline framed, that reads one request and ends as
/// told.
async fn ending_tcp_server(ending: Ending) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut io = rpcpeer_stream::framed(socket, Framing::Newline, 1 << 20);
        let _ = io.next().await;
        match ending {
            Ending::Close => {}
            Ending::Reset => io.get_ref().set_zero_linger().unwrap(),
            Ending::Refuse => {
                let refusal = r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error: not what I expected"},"id":null}"#;
                let _ = io.send(refusal.to_owned()).await;
            }
        }
    });
    addr
}

/// The same over WebSocket.
async fn ending_ws_server(ending: Ending) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
        let _ = ws.next().await;
        match ending {
            Ending::Close => {
                let _ = ws.close(None).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
            Ending::Reset => ws.get_ref().set_zero_linger().unwrap(),
            Ending::Refuse => {
                let refusal = r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error: not what I expected"},"id":null}"#;
                let _ = ws.send(Message::text(refusal)).await;
                let _ = ws.close(None).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
        }
    });
    addr
}

/// The reason a pending call was given when its connection ended.
async fn closed_reason(peer: &rpcpeer::Peer) -> String {
    match within("the pending call", peer.request::<Value>("anything", ())).await {
        Err(Error::Closed { method, reason, .. }) => {
            assert_eq!(method, "anything");
            reason
        }
        other => panic!("expected Error::Closed, got {other:?}"),
    }
}

/// A call pending when its connection ends fails with `Error::Closed`,
/// whose reason says why: the peer closed it, reset it, or said it could
/// not read our message. (`tests/close_reasons.rs` has a TCP peer that
/// hangs up, a transport error, and a close on this side.)
#[tokio::test]
async fn pending_calls_fail_closed_with_a_reason_that_says_why() {
    let expected = |ending: Ending| match ending {
        Ending::Close => "the peer closed the connection",
        Ending::Reset => "Connection reset by peer",
        Ending::Refuse => {
            "the peer could not read our message: Parse error: not what I expected (code -32700)"
        }
    };
    for ending in [Ending::Reset, Ending::Refuse] {
        let addr = ending_tcp_server(ending).await;
        let transport = rpcpeer_stream::connect_tcp(addr, Framing::Newline)
            .await
            .unwrap();
        let (peer, driver) = Driver::new(transport, Router::new());
        tokio::spawn(driver);
        let reason = closed_reason(&peer).await;
        let want = expected(ending);
        assert!(
            reason.contains(want),
            "TCP {ending:?}: `{reason}` lacks `{want}`"
        );
    }
    for ending in [Ending::Close, Ending::Reset, Ending::Refuse] {
        let addr = ending_ws_server(ending).await;
        let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
            .await
            .unwrap();
        let (peer, driver) = Driver::new(transport, Router::new());
        tokio::spawn(driver);
        let reason = closed_reason(&peer).await;
        let want = expected(ending);
        assert!(
            reason.contains(want),
            "WebSocket {ending:?}: `{reason}` lacks `{want}`"
        );
    }
}

// ------------------------------------------------ answers that are no response

/// What a raw server sends for the requests it read: it is handed them,
/// in the order read, and gives the frames to send, one per line.
type Answer = fn(&[Value]) -> String;

/// A raw TCP server, newline framed, that answers as `answers` say: each
/// takes the next `n` requests it reads. Every message it reads goes to
/// the channel, which closes when the connection does.
async fn answering_tcp_server(
    answers: Vec<(usize, Answer)>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, read) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut io = rpcpeer_stream::framed(socket, Framing::Newline, 1 << 20);
        for (n, answer) in answers {
            let mut requests = Vec::new();
            while requests.len() < n {
                let Some(Ok(line)) = io.next().await else {
                    return;
                };
                let message: Value = serde_json::from_str(&line).unwrap();
                if message.get("method").is_some() {
                    requests.push(message.clone());
                }
                let _ = seen.send(message);
            }
            for frame in answer(&requests).lines() {
                io.send(frame.to_owned()).await.unwrap();
            }
        }
        while let Some(Ok(line)) = io.next().await {
            let _ = seen.send(serde_json::from_str(&line).unwrap());
        }
    });
    (addr, read)
}

/// The id of the request in `requests` that called `method`.
fn id_of(requests: &[Value], method: &str) -> Value {
    let request = requests.iter().find(|r| r["method"] == method);
    request.unwrap_or_else(|| panic!("no call of `{method}` in {requests:?}"))["id"].clone()
}

/// An answer of the peer's that cannot be read as a response (no `result`
/// or `error`, both, a `jsonrpc` other than "2.0", a member twice) fails the call
/// it answers at once, alone or in a batch, with `Error::InvalidReply`
/// saying what is wrong; before, the call waited out its whole timeout.
/// It is not answered: a -32600 under that id would reach the peer as the
/// answer to its own call of that id, if one waits. A malformed request of
/// the peer's (it has `params`) whose id is that of a call of ours fails
/// nothing and is answered -32600: that call gets its own answer. The
/// connection goes on throughout.
#[tokio::test]
async fn an_answer_that_is_no_response_fails_its_call_at_once() {
    let answers: Vec<(usize, Answer)> = vec![
        (1, |r| {
            json!({"jsonrpc": "2.0", "id": r[0]["id"]}).to_string()
        }),
        (1, |r| {
            json!({"jsonrpc": "1.5", "result": 1, "id": r[0]["id"]}).to_string()
        }),
        (1, |r| {
            format!(
                r#"{{"jsonrpc":"2.0","result":1,"result":2,"id":{}}}"#,
                r[0]["id"]
            )
        }),
        (2, |r| {
            json!([
                {"jsonrpc": "2.0", "id": id_of(r, "d")},
                {"jsonrpc": "2.0", "result": 7, "id": id_of(r, "e")},
            ])
            .to_string()
        }),
        // Two lines: a request without its method, under the id of our
        // call `f`, then the answer to `f`.
        (1, |r| {
            let id = &r[0]["id"];
            let request = json!({"jsonrpc": "2.0", "params": [1], "id": id});
            let answer = json!({"jsonrpc": "2.0", "result": "f", "id": id});
            format!("{request}\n{answer}")
        }),
        (1, |r| {
            let error = json!({"code": 1, "message": "x"});
            json!({"jsonrpc": "2.0", "result": 1, "error": error, "id": r[0]["id"]}).to_string()
        }),
        (1, |r| {
            json!({"jsonrpc": "2.0", "result": "done", "id": r[0]["id"]}).to_string()
        }),
    ];
    let (addr, mut seen) = answering_tcp_server(answers).await;
    let transport = rpcpeer_stream::connect_tcp(addr, Framing::Newline)
        .await
        .unwrap();
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);

    let invalid = |outcome: Result<Value, Error>, called: &str, wrong: &str| match outcome {
        Err(Error::InvalidReply { method, what }) => {
            assert_eq!(method, called);
            assert_eq!(what, wrong);
        }
        other => panic!("`{called}`: expected Error::InvalidReply, got {other:?}"),
    };
    let no_outcome = "neither `result` nor `error`";
    invalid(within("a", peer.request("a", ())).await, "a", no_outcome);
    let b = within("b", peer.request("b", ())).await;
    invalid(b, "b", r#"`jsonrpc` must be exactly "2.0""#);
    let c = within("c", peer.request("c", ())).await;
    invalid(c, "c", "duplicate member `result`");
    let (d, e) = within("d and e", async {
        tokio::join!(
            peer.request::<Value>("d", ()),
            peer.request::<Value>("e", ())
        )
    })
    .await;
    invalid(d, "d", no_outcome);
    assert_eq!(e.unwrap(), json!(7));
    let f = within("f", peer.request::<Value>("f", ())).await;
    assert_eq!(f.unwrap(), json!("f"));
    let g = within("g", peer.request("g", ())).await;
    invalid(g, "g", "both `result` and `error`");
    let done = within("done", peer.request::<Value>("done", ())).await;
    assert_eq!(done.unwrap(), json!("done"));

    peer.close().await;
    let (mut calls, mut refused) = (std::collections::HashMap::new(), Vec::new());
    while let Some(frame) = within("what the peer read", seen.recv()).await {
        // The answers to a batch (of answers) come as an array.
        let messages = match frame {
            Value::Array(messages) => messages,
            message => vec![message],
        };
        for message in messages {
            match message.get("method") {
                Some(method) => {
                    calls.insert(
                        message["id"].to_string(),
                        method.as_str().unwrap().to_owned(),
                    );
                }
                None => {
                    assert_eq!(message["error"]["code"], -32600, "{message}");
                    refused.push(message["id"].to_string());
                }
            }
        }
    }
    let mut refused: Vec<&str> = refused.iter().map(|id| calls[id].as_str()).collect();
    refused.sort();
    assert_eq!(refused, ["f"]);
    let mut called: Vec<&str> = calls.values().map(String::as_str).collect();
    called.sort();
    assert_eq!(called, ["a", "b", "c", "d", "done", "e", "f", "g"]);
}

// ------------------------------------------------ told of what could not be read

/// Both ends of a TCP connection on 127.0.0.1: the client's, and the
/// server's.
async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[tokio::test]
async fn the_program_is_told_of_each_message_it_could_not_read() {
    let (mut client, socket) = tcp_pair().await;
    let (told, mut heard) = mpsc::unbounded_channel();
    let mut router = Router::new();
    router.method("echo", |p: Value| async move { Ok::<_, ErrorObject>(p) });
    let transport = rpcpeer_stream::framed(socket, Framing::Newline, 1024);
    let (_peer, driver) = Driver::builder(transport, router)
        .on_unreadable(move |why, err| {
            let _ = told.send((why, err.clone()));
        })
        .build();
    tokio::spawn(driver);

    let mut sent = b"hello\n".to_vec();
    sent.extend_from_slice(format!("[\"{}\"]\n", "x".repeat(2000)).as_bytes());
    sent.extend_from_slice(b"\"caf\xe9\"\n");
    sent.extend_from_slice(br#"[1, {"jsonrpc": "2.0", "method": "echo", "params": [2], "id": 2}]"#);
    sent.extend_from_slice(b"\n");
    sent.extend_from_slice(br#"{"jsonrpc": "2.0", "method": "echo", "params": [9], "id": 9}"#);
    sent.extend_from_slice(b"\n");
    tokio::io::AsyncWriteExt::write_all(&mut client, &sent)
        .await
        .unwrap();
    // The last request's answer: everything before it has been read.
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(client));
    let mut answers = Vec::new();
    while !answers.iter().any(|a: &Value| a["id"] == 9) {
        let line = within("answers", lines.next_line()).await.unwrap().unwrap();
        answers.push(serde_json::from_str(&line).unwrap());
    }
    // Each unreadable message was answered, and the program was told of
    // each with the error it was answered: the batch's readable entry ran.
    let mut told = Vec::new();
    while let Ok((why, err)) = heard.try_recv() {
        told.push((why, err.code, err.message));
    }
    let kinds: Vec<(Unreadable, i64)> = told.iter().map(|(why, code, _)| (*why, *code)).collect();
    assert_eq!(
        kinds,
        [
            (Unreadable::NotJson, -32700),
            (Unreadable::TooLarge, -32600),
            (Unreadable::NotJson, -32700),
            (Unreadable::Invalid, -32600),
        ],
        "{told:?}"
    );
    assert!(told[1].2.contains("1024 bytes"), "{told:?}");
    assert!(told[2].2.contains("not UTF-8"), "{told:?}");
    assert_eq!(answers.len(), 5, "{answers:?}");
    assert_eq!(answers[3][1]["result"], json!([2]), "{answers:?}");
    for (answer, (_, code, message)) in answers.iter().zip(&told) {
        let answer = answer.get(0).unwrap_or(answer);
        assert_eq!(answer["error"]["code"], *code, "{answer}");
        assert_eq!(answer["error"]["message"], *message, "{answer}");
    }

    // Lost framing: told as fatal, answered, and the connection closes.
    let (mut client, socket) = tcp_pair().await;
    let (told, mut heard) = mpsc::unbounded_channel();
    let transport = rpcpeer_stream::framed(socket, Framing::ContentLength, 1024);
    let (_peer, driver) = Driver::builder(transport, Router::new())
        .on_unreadable(move |why, err| {
            let _ = told.send((why, err.code));
        })
        .build();
    let driver = tokio::spawn(driver);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"Content-Length: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = String::new();
    within(
        "the close",
        tokio::io::AsyncReadExt::read_to_string(&mut client, &mut rest),
    )
    .await
    .unwrap();
    assert!(rest.contains("-32700"), "{rest}");
    assert!(within("the driver", driver).await.unwrap().is_err());
    assert_eq!(heard.try_recv().ok(), Some((Unreadable::Fatal, -32700)));
}

#[tokio::test]
async fn an_array_of_answers_longer_than_the_batch_limit_is_taken() {
    // The batch limit bounds the calls a peer makes in one frame; an array
    // of answers only (to our own calls, a batch of ours perhaps longer)
    // is taken whole. One with a call in it is refused, and told; one of
    // notifications only is told but not answered (spec §6).
    let (client, socket) = tcp_pair().await;
    let (told, mut heard) = mpsc::unbounded_channel();
    let transport = rpcpeer_stream::framed(socket, Framing::Newline, 1 << 20);
    let (peer, driver) = Driver::builder(transport, Router::new())
        .config(Config::default().max_batch_len(2))
        .on_unreadable(move |why, err| {
            let _ = told.send((why, err.message.clone()));
        })
        .build();
    tokio::spawn(driver);
    let (read, mut write) = client.into_split();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(read));
    let answerer = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < 3 {
            let line = lines.next_line().await.unwrap().unwrap();
            let request: Value = serde_json::from_str(&line).unwrap();
            ids.push(request["id"].clone());
        }
        let answers: Vec<Value> = ids
            .iter()
            .map(|id| json!({"jsonrpc": "2.0", "result": id, "id": id}))
            .collect();
        let notifications = json!([
            {"jsonrpc": "2.0", "method": "a"},
            {"jsonrpc": "2.0", "method": "b"},
            {"jsonrpc": "2.0", "method": "c"}
        ]);
        let calls = json!([
            {"jsonrpc": "2.0", "method": "a"},
            {"jsonrpc": "2.0", "method": "b"},
            {"jsonrpc": "2.0", "method": "c", "id": 9}
        ]);
        // The next answer after the refusal must be the probe's.
        let probe = json!({"jsonrpc": "2.0", "method": "nope", "id": 10});
        let sent = format!(
            "{}\n{calls}\n{notifications}\n{probe}\n",
            Value::from(answers)
        );
        tokio::io::AsyncWriteExt::write_all(&mut write, sent.as_bytes())
            .await
            .unwrap();
        let refused = lines.next_line().await.unwrap().unwrap();
        let next = lines.next_line().await.unwrap().unwrap();
        (write, refused, next)
    });
    let (a, b, c) = within("three answers in one array", async {
        tokio::join!(
            peer.request::<u64>("x", ()),
            peer.request::<u64>("y", ()),
            peer.request::<u64>("z", ())
        )
    })
    .await;
    let mut got = [a.unwrap(), b.unwrap(), c.unwrap()];
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3]);
    let (_write, refused, next) = within("the refusal", answerer).await.unwrap();
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let next: Value = serde_json::from_str(&next).unwrap();
    assert_eq!(
        (&next["id"], &next["error"]["code"]),
        (&json!(10), &json!(-32601)),
        "{next}"
    );
    for _ in ["notifications", "calls"] {
        let (why, message) = heard.try_recv().unwrap();
        assert_eq!(why, Unreadable::Invalid);
        assert!(
            message.contains("a batch of 3 entries exceeds the limit of 2"),
            "{message}"
        );
    }
}

/// An answer we cannot read, under the id of a call of ours that no longer
/// waits (it timed out), is refused with a null id: under its id, the
/// refusal would reach the peer as the answer to its own call of that id.
/// One under an id we never gave keeps it.
#[tokio::test]
async fn a_late_unreadable_answer_is_refused_with_a_null_id() {
    let (client, socket) = tcp_pair().await;
    let transport = rpcpeer_stream::framed(socket, Framing::Newline, 1 << 20);
    let (peer, driver) = Driver::builder(transport, Router::new())
        .config(Config::default().request_timeout(Some(Duration::from_millis(50))))
        .build();
    tokio::spawn(driver);
    let (read, mut write) = client.into_split();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(read));
    let late = within("the call to time out", peer.request::<Value>("slow", ())).await;
    assert!(matches!(late, Err(Error::Timeout { .. })), "{late:?}");
    let call: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let id = &call["id"];
    let sent = format!(
        "{}\n{}\n",
        json!({"jsonrpc": "2.0", "id": id}),
        json!({"jsonrpc": "2.0", "id": "never-ours"})
    );
    tokio::io::AsyncWriteExt::write_all(&mut write, sent.as_bytes())
        .await
        .unwrap();
    for expected in [Value::Null, json!("never-ours")] {
        // NB: past the cancel of the call that timed out.
        let refusal = loop {
            let line = within("a refusal", lines.next_line())
                .await
                .unwrap()
                .unwrap();
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("method").is_none() {
                break message;
            }
        };
        assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
        assert_eq!(refusal["id"], expected, "{refusal}");
    }
}

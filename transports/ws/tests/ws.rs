//! WebSocket and HTTP on one port, driven by real sockets on 127.0.0.1.

use std::{future::Future, io, net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rpcpeer_ws::{
    connect, from_upgraded, http, serve_connection, Config, Role, ServerIo, Service, WsTransport,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_tungstenite::tungstenite::{protocol::frame::Frame, Message};

/// What the server's side of one conversation ended with.
#[derive(Debug)]
struct Outcome {
    /// `None` when the stream ended, else the error it yielded.
    error: Option<io::Error>,
    close_frame: Option<(u16, String)>,
}

#[derive(Clone, Copy)]
enum Mode {
    /// Echo every message until the stream ends.
    Echo,
    /// Echo every message, and each error as the text `error: …` (`Utf8Error:
    /// …` for one that wraps a `std::str::Utf8Error`), until the stream ends.
    EchoErrors,
    /// Close at once with this code and reason.
    CloseWith(u16, &'static str),
    /// Drop the transport at once, without a close frame.
    Drop,
}

#[derive(Clone)]
struct TestService {
    mode: Mode,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

impl Service for TestService {
    async fn websocket(
        &self,
        mut ws: WsTransport<ServerIo>,
        _: rpcpeer_ws::http::Extensions,
        _remote: SocketAddr,
    ) {
        let error = match self.mode {
            Mode::Echo => loop {
                match ws.next().await {
                    Some(Ok(text)) => {
                        if let Err(err) = ws.send(text.to_string()).await {
                            break Some(err);
                        }
                    }
                    Some(Err(err)) => break Some(err),
                    None => break None,
                }
            },
            Mode::EchoErrors => loop {
                let text = match ws.next().await {
                    Some(Ok(text)) => text.to_string(),
                    Some(Err(err))
                        if err.get_ref().is_some_and(|e| e.is::<std::str::Utf8Error>()) =>
                    {
                        format!("Utf8Error: {err}")
                    }
                    Some(Err(err)) => format!("error: {err}"),
                    None => break None,
                };
                if let Err(err) = ws.send(text).await {
                    break Some(err);
                }
            },
            Mode::CloseWith(code, reason) => ws.close_with(code, reason).await.err(),
            Mode::Drop => None,
        };
        let close_frame = ws.close_frame();
        drop(ws);
        let _ = self.outcomes.send(Outcome { error, close_frame });
    }

    async fn http(
        &self,
        req: http::Request<String>,
        _remote: SocketAddr,
    ) -> http::Response<String> {
        let answer = format!("{} {} {}", req.method(), req.uri().path(), req.body());
        http::Response::builder()
            .status(http::StatusCode::OK)
            .header("x-test", "yes")
            .body(answer)
            .expect("a valid response")
    }
}

struct Server {
    addr: SocketAddr,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
}

impl Server {
    async fn start(mode: Mode, config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (tx, outcomes) = mpsc::unbounded_channel();
        let service = TestService { mode, outcomes: tx };
        tokio::spawn(async move {
            while let Ok((tcp, remote)) = listener.accept().await {
                tokio::spawn(serve_connection(
                    tcp,
                    remote,
                    config.clone(),
                    service.clone(),
                ));
            }
        });
        Server { addr, outcomes }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    async fn outcome(&mut self) -> Outcome {
        within(self.outcomes.recv())
            .await
            .expect("the service reports its outcome")
    }
}

/// Fails the test instead of hanging when something never happens.
async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out after 10 s")
}

fn small(max_message_len: usize) -> Config {
    Config {
        max_message_len,
        ..Config::default()
    }
}

/// Reads raw frames until the close frame and returns its code.
async fn close_code<S>(raw: &mut tokio_tungstenite::WebSocketStream<S>) -> u16
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    close_frame(raw).await.0
}

/// Reads raw frames until the close frame and returns its code and reason.
async fn close_frame<S>(raw: &mut tokio_tungstenite::WebSocketStream<S>) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match within(raw.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frame.code.into(), frame.reason.as_str().to_owned())
            }
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn echo_round_trip_over_text_frames() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let mut ws = within(connect(&server.url("/any/path?x=1"), &Config::default()))
        .await
        .expect("connect");
    for text in [
        r#"{"jsonrpc":"2.0","method":"a","id":1}"#,
        "[]",
        "\"ünïcödé ✓\"",
    ] {
        within(ws.send(text.to_owned())).await.expect("send");
        let echo = within(ws.next()).await.expect("an echo").expect("no error");
        assert_eq!(echo, text);
    }
}

#[tokio::test]
async fn binary_frame_holding_utf8_is_read_as_text() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    within(raw.send(Message::binary(&b"{\"id\":7}"[..])))
        .await
        .expect("send");
    let echo = within(raw.next())
        .await
        .expect("an echo")
        .expect("no error");
    assert_eq!(echo, Message::text("{\"id\":7}"));
}

#[tokio::test]
async fn ping_is_answered_while_the_server_only_reads() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    within(raw.send(Message::Ping(Bytes::from_static(b"are you there"))))
        .await
        .expect("send");
    let pong = within(raw.next()).await.expect("a pong").expect("no error");
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"are you there")));
}

/// `tcp` after a WebSocket handshake of our own, byte by byte, for tests
/// that send frames no client library would.
async fn upgraded(mut tcp: TcpStream) -> TcpStream {
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("upgrade request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        within(tcp.read_exact(&mut byte)).await.expect("101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    tcp
}

#[tokio::test]
async fn a_peer_that_pings_and_never_reads_is_not_read_on() {
    // Each ping read queues a pong; with the pongs unwritten (the peer reads
    // nothing), reading on would pile them up in memory without end.
    let server = Server::start(Mode::Echo, Config::default()).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = within(socket.connect(server.addr)).await.expect("connect");
    let mut tcp = upgraded(tcp).await;
    // Masked pings (a zero mask) of 125 bytes, a thousand at a time.
    let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    ping.extend([b'p'; 125]);
    let pings = ping.repeat(1000);
    let limit = 64 << 20;
    let mut sent = 0;
    while sent < limit {
        match tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&pings)).await {
            Ok(result) => result.expect("write"),
            // The server stopped reading: what it owes us bounds what it holds.
            Err(_) => return,
        }
        sent += pings.len();
    }
    panic!("the server read {sent} bytes of pings while its pongs could not be written");
}

#[tokio::test]
async fn two_peers_that_both_write_more_than_the_other_reads_keep_reading() {
    // Both sides write faster than the socket drains and both ping, so each
    // often has a ping or a pong stuck behind its own data. A side that
    // stopped reading until that was out would leave the other's data stuck
    // too, and each would wait on the other.
    let config = Config {
        ping_interval: Some(Duration::from_millis(50)),
        ping_timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (a, b) = tokio::join!(
        TcpStream::connect(listener.local_addr().expect("addr")),
        listener.accept()
    );
    let a = from_upgraded(a.expect("connect"), Role::Client, &config).await;
    let b = from_upgraded(b.expect("accept").0, Role::Server, &config).await;
    const MESSAGES: usize = 400;
    let message = "x".repeat(64 << 10);
    let exchange = |ws: WsTransport<TcpStream>| {
        let message = message.clone();
        async move {
            let (mut sink, mut stream) = ws.split();
            let send = async {
                for _ in 0..MESSAGES {
                    sink.send(message.clone()).await.expect("send");
                }
            };
            let receive = async {
                for _ in 0..MESSAGES {
                    let got = stream.next().await.expect("a message").expect("no error");
                    assert_eq!(got.len(), message.len());
                }
            };
            tokio::join!(send, receive);
            // Kept open until both sides are done: a socket closed with
            // pings unread would reset the other's connection.
            (sink, stream)
        }
    };
    let (_a, _b) = tokio::time::timeout(
        Duration::from_secs(30),
        futures::future::join(exchange(a), exchange(b)),
    )
    .await
    .expect("each side read all the other wrote within 30 s");
}

#[tokio::test]
async fn invalid_utf8_binary_is_reported_and_the_connection_goes_on() {
    let server = Server::start(Mode::EchoErrors, Config::default()).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    within(raw.send(Message::binary(vec![b'{', 0xff, 0xfe, b'}'])))
        .await
        .expect("send");
    within(raw.send(Message::text("[1]"))).await.expect("send");
    // The error (wrapping the `Utf8Error`, which tells a reader that the
    // stream goes on), then the next message: the connection went on.
    for expected in [
        "Utf8Error: invalid utf-8 sequence of 1 bytes from index 1",
        "[1]",
    ] {
        let echo = within(raw.next())
            .await
            .expect("an echo")
            .expect("no error");
        assert_eq!(echo, Message::text(expected));
    }
}

#[tokio::test]
async fn invalid_utf8_text_frame_closes_with_1007() {
    let mut server = Server::start(Mode::Echo, Config::default()).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    // A text frame that lies about its content; `Message::Text` cannot hold it.
    let frame = Frame::message(
        vec![b'"', 0xc3, 0x28, b'"'],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    within(raw.send(Message::Frame(frame))).await.expect("send");
    assert_eq!(close_code(&mut raw).await, 1007);
    let err = server
        .outcome()
        .await
        .error
        .expect("the server stream yields an error");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn oversized_message_closes_with_1009_and_server_keeps_serving() {
    let mut server = Server::start(Mode::Echo, small(1024)).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    within(raw.send(Message::text("x".repeat(2000))))
        .await
        .expect("send");
    // RFC 6455 §7.4.1: 1009, and the reason says what the limit is.
    assert_eq!(
        close_frame(&mut raw).await,
        (
            1009,
            "message of 2000 bytes exceeds the limit of 1024 bytes".to_owned()
        )
    );
    let err = server
        .outcome()
        .await
        .error
        .expect("the server stream yields an error");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(
        err.to_string().contains("1024"),
        "the error names the limit: {err}"
    );

    let mut ws = within(connect(&server.url("/"), &Config::default()))
        .await
        .expect("connect again");
    within(ws.send("\"still here\"".to_owned()))
        .await
        .expect("send");
    assert_eq!(
        within(ws.next()).await.expect("an echo").expect("no error"),
        "\"still here\""
    );
}

#[tokio::test]
async fn oversized_fragmented_message_closes_with_1009() {
    let server = Server::start(Mode::Echo, small(1024)).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    // Each fragment fits the limit; only their sum does not.
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    within(raw.feed(Message::Frame(Frame::message(
        vec![b'x'; 800],
        OpCode::Data(Data::Text),
        false,
    ))))
    .await
    .expect("send");
    within(raw.send(Message::Frame(Frame::message(
        vec![b'x'; 800],
        OpCode::Data(Data::Continue),
        true,
    ))))
    .await
    .expect("send");
    let (code, reason) = close_frame(&mut raw).await;
    assert_eq!(code, 1009);
    assert!(
        reason.ends_with("exceeds the limit of 1024 bytes"),
        "{reason}"
    );
}

#[tokio::test]
async fn client_refuses_an_oversized_message_from_the_server() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let mut ws = within(connect(&server.url("/"), &small(1024)))
        .await
        .expect("connect");
    within(ws.send("y".repeat(2000)))
        .await
        .expect("outgoing messages are not limited");
    let err = within(ws.next())
        .await
        .expect("an item")
        .expect_err("the echo is too big");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("1024"), "{err}");
    assert!(
        within(ws.next()).await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn silent_peer_is_declared_dead() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(50)),
        ping_timeout: Duration::from_millis(50),
        ..Config::default()
    };
    let mut server = Server::start(Mode::Echo, config).await;
    // Never read, so tungstenite on this side never answers the pings.
    let (_raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    let err = server
        .outcome()
        .await
        .error
        .expect("the server stream yields an error");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("no pong"), "{err}");
}

#[tokio::test]
async fn a_protocol_error_closes_with_1002_naming_the_rule_broken() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let tcp = within(TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let mut tcp = upgraded(tcp).await;
    // A client's frame must be masked (RFC 6455 §5.1); this one is not.
    tcp.write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .expect("frame");
    let mut frame = [0u8; 2];
    within(tcp.read_exact(&mut frame))
        .await
        .expect("a close frame");
    assert_eq!(frame[0], 0x88, "{frame:?}");
    let mut payload = vec![0u8; usize::from(frame[1])];
    within(tcp.read_exact(&mut payload))
        .await
        .expect("its payload");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
    let reason = String::from_utf8_lossy(&payload[2..]).to_lowercase();
    assert!(reason.contains("unmasked"), "{reason}");
}

#[tokio::test]
async fn idle_peer_is_closed_with_1001() {
    let config = Config {
        idle_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let mut server = Server::start(Mode::Echo, config).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    let (code, reason) = close_frame(&mut raw).await;
    assert_eq!(code, 1001, "{reason}");
    assert_eq!(reason, "idle for 0.2 s");
    let err = server
        .outcome()
        .await
        .error
        .expect("the server stream yields an error");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

#[tokio::test]
async fn a_peer_trickling_a_message_it_never_ends_is_idle() {
    let config = Config {
        idle_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let mut server = Server::start(Mode::Echo, config).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    // The first fragment of a message whose last never comes; then pings,
    // which show the peer alive but are no message.
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    within(raw.send(Message::Frame(Frame::message(
        vec![b'['; 10],
        OpCode::Data(Data::Text),
        false,
    ))))
    .await
    .expect("send");
    let (mut tx, mut rx) = raw.split();
    let pinging = async move {
        while tx.send(Message::Ping(Bytes::new())).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let closed = async move {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    };
    let closed_with = tokio::select! {
        code = within(closed) => code,
        () = pinging => panic!("the server hung up without a close frame"),
    };
    assert_eq!(closed_with, Some(1001));
    let err = server
        .outcome()
        .await
        .error
        .expect("the server stream yields an error");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

/// On a paused clock, so exact: the clock moves only when every task
/// waits, straight to the next timer.
#[tokio::test(start_paused = true)]
async fn the_idle_clock_restarts_at_each_message() {
    let quiet = Config {
        ping_interval: None,
        ..Config::default()
    };
    let idle = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..quiet.clone()
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut client = from_upgraded(a, Role::Client, &quiet).await;
    let mut server = from_upgraded(b, Role::Server, &idle).await;
    for n in 0..3 {
        // 8 s each: 24 s in all, but never 10 s without a message.
        tokio::time::advance(Duration::from_secs(8)).await;
        client.send(format!("[{n}]")).await.expect("send");
        let text = server.next().await.expect("a message").expect("not idle");
        assert_eq!(text, format!("[{n}]"));
    }
    let (server_side, client_side) = tokio::join!(server.next(), client.next());
    let err = server_side.expect("an item").expect_err("idle");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(client_side.is_none(), "the client sees the close");
    assert_eq!(
        client.close_frame(),
        Some((1001, "idle for 10 s".to_owned()))
    );
}

#[tokio::test]
async fn refused_connections_get_503_with_the_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(rpcpeer_ws::refuse_connection(tcp, "full up".to_owned()));
        }
    });
    // A WebSocket client reads it as the answer to its upgrade request.
    match within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
            let body = response.body().as_deref().unwrap_or_default();
            assert_eq!(body, b"full up\n");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // An HTTP client too, with its request read and the connection closed.
    let response = raw_http(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nfull up\n"), "{response}");
}

#[tokio::test]
async fn responsive_peer_survives_several_pings() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(20)),
        ping_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let server = Server::start(Mode::Echo, config).await;
    let (mut raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    let mut pings = 0;
    while pings < 3 {
        match within(raw.next())
            .await
            .expect("a frame")
            .expect("no error")
        {
            Message::Ping(_) => pings += 1,
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    within(raw.send(Message::text("\"alive\"")))
        .await
        .expect("send");
    loop {
        match within(raw.next())
            .await
            .expect("a frame")
            .expect("no error")
        {
            Message::Ping(_) => {}
            other => break assert_eq!(other, Message::text("\"alive\"")),
        }
    }
}

#[tokio::test]
async fn client_close_reaches_the_server_with_code_and_reason() {
    let mut server = Server::start(Mode::Echo, Config::default()).await;
    let mut ws = within(connect(&server.url("/"), &Config::default()))
        .await
        .expect("connect");
    within(ws.close_with(4000, "client done"))
        .await
        .expect("close handshake");
    let outcome = server.outcome().await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.close_frame, Some((4000, "client done".to_owned())));
    assert_eq!(
        ws.close_frame().map(|(code, _)| code),
        Some(4000),
        "the server echoes the code back"
    );
    assert!(within(ws.next()).await.is_none());
}

#[tokio::test]
async fn server_close_reaches_the_client_with_code_and_reason() {
    let mut server = Server::start(Mode::CloseWith(4001, "server done"), Config::default()).await;
    let mut ws = within(connect(&server.url("/"), &Config::default()))
        .await
        .expect("connect");
    assert!(
        within(ws.next()).await.is_none(),
        "the stream ends after the close handshake"
    );
    assert_eq!(ws.close_frame(), Some((4001, "server done".to_owned())));
    let outcome = server.outcome().await;
    assert!(
        outcome.error.is_none(),
        "close_with failed: {:?}",
        outcome.error
    );
}

#[tokio::test]
async fn sink_close_sends_normal_closure() {
    let mut server = Server::start(Mode::Echo, Config::default()).await;
    let mut ws = within(connect(&server.url("/"), &Config::default()))
        .await
        .expect("connect");
    within(ws.close()).await.expect("close");
    assert!(
        within(ws.next()).await.is_none(),
        "the stream ends once the server answers"
    );
    let outcome = server.outcome().await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.close_frame, Some((1000, String::new())));
}

#[tokio::test]
async fn close_with_refuses_a_reserved_code() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let mut ws = within(connect(&server.url("/"), &Config::default()))
        .await
        .expect("connect");
    let err = within(ws.close_with(1006, ""))
        .await
        .expect_err("1006 is never sent");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// A drop without a close frame must end the stream, with an error or not,
/// but never leave it waiting.
fn assert_dropped(error: Option<&io::Error>) {
    if let Some(err) = error {
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            "{err}"
        );
    }
}

#[tokio::test]
async fn tcp_dropped_by_the_client_ends_the_server_stream() {
    let mut server = Server::start(Mode::Echo, Config::default()).await;
    let (raw, _) = within(tokio_tungstenite::connect_async(server.url("/")))
        .await
        .expect("connect");
    // Dropping a tokio-tungstenite stream closes the socket without a close frame.
    drop(raw);
    let outcome = server.outcome().await;
    assert_dropped(outcome.error.as_ref());
    assert_eq!(outcome.close_frame, None);
}

#[tokio::test]
async fn tcp_dropped_by_the_server_ends_the_client_stream() {
    let server = Server::start(Mode::Drop, Config::default()).await;
    let mut ws = within(connect(&server.url("/"), &Config::default()))
        .await
        .expect("connect");
    match within(ws.next()).await {
        None => {}
        Some(Err(err)) => assert_dropped(Some(&err)),
        Some(Ok(text)) => panic!("unexpected message {text}"),
    }
    assert!(within(ws.next()).await.is_none());
}

#[tokio::test]
async fn transports_over_an_already_upgraded_stream() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut client = from_upgraded(a, Role::Client, &Config::default()).await;
    let mut server = from_upgraded(b, Role::Server, &Config::default()).await;
    within(client.send("[1,2,3]".to_owned()))
        .await
        .expect("send");
    assert_eq!(
        within(server.next())
            .await
            .expect("a message")
            .expect("no error"),
        "[1,2,3]"
    );
    within(server.send("{}".to_owned())).await.expect("send");
    assert_eq!(
        within(client.next())
            .await
            .expect("a message")
            .expect("no error"),
        "{}"
    );
}

#[tokio::test]
async fn connect_rejects_bad_urls() {
    for url in ["not a url", "http://127.0.0.1:1/", "127.0.0.1:1"] {
        let err = connect(url, &Config::default()).await.expect_err(url);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{url}: {err}");
        assert!(
            err.to_string().contains(url),
            "the error names the URL: {err}"
        );
    }
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn wss_without_the_tls_feature_says_what_to_enable() {
    let err = connect("wss://127.0.0.1:1/", &Config::default())
        .await
        .expect_err("no TLS");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("`tls` feature"), "{err}");
}

#[tokio::test]
async fn connect_to_a_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let err = within(connect(&format!("ws://{addr}/"), &Config::default()))
        .await
        .expect_err("nobody listens");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

/// Opens a hyper client connection to the server.
async fn http_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = within(TcpStream::connect(addr)).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> (http::StatusCode, http::HeaderMap, String) {
    within(sender.ready())
        .await
        .expect("the connection is still open");
    let response = within(sender.send_request(req)).await.expect("a response");
    let (parts, body) = response.into_parts();
    let body = within(body.collect())
        .await
        .expect("the response body")
        .to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.into()).expect("UTF-8"),
    )
}

fn post(path: &str, body: impl Into<Bytes>) -> http::Request<Full<Bytes>> {
    http::Request::post(path)
        .header(http::header::HOST, "localhost")
        .body(Full::new(body.into()))
        .expect("a valid request")
}

#[tokio::test]
async fn http_posts_share_the_port_and_one_connection() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let mut sender = http_client(server.addr).await;
    let (status, headers, body) = exchange(&mut sender, post("/rpc", r#"{"id":1}"#)).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(
        headers.get("x-test").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    assert_eq!(body, r#"POST /rpc {"id":1}"#);
    // The same connection serves the next request: keep-alive works.
    let (status, _, body) = exchange(&mut sender, post("/other", r#"{"id":2}"#)).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(body, r#"POST /other {"id":2}"#);
    let get = http::Request::get("/status")
        .header(http::header::HOST, "localhost")
        .body(Full::default())
        .expect("a valid request");
    let (status, _, body) = exchange(&mut sender, get).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(body, "GET /status ");
}

#[tokio::test]
async fn http_body_that_is_not_utf8_gets_400() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let mut sender = http_client(server.addr).await;
    let (status, _, body) = exchange(&mut sender, post("/", vec![0xff, 0xfe])).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert!(body.contains("UTF-8"), "{body}");
}

#[tokio::test]
async fn broken_websocket_upgrade_gets_a_plain_error() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let mut sender = http_client(server.addr).await;
    let req = http::Request::get("/")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .body(Full::default())
        .expect("a valid request");
    let (status, _, body) = exchange(&mut sender, req).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert!(body.contains("Sec-WebSocket-Key"), "{body}");
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_cut_off() {
    let config = Config {
        write_timeout: Duration::from_secs(1),
        // Only the write timeout may close this connection.
        http_header_timeout: Duration::from_secs(600),
        ..Config::default()
    };
    let server = Server::start(Mode::Echo, config).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = within(socket.connect(server.addr)).await.expect("connect");
    let (mut reader, mut writer) = tcp.into_split();
    // Pipelined requests whose answers (the service echoes each body) are
    // far more than the socket buffers hold.
    let body = "x".repeat(64 * 1024);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let requests = 400;
    let all_answers = requests * body.len();
    let writing = tokio::spawn(async move {
        for _ in 0..requests {
            if writer.write_all(request.as_bytes()).await.is_err() {
                break;
            }
        }
        writer
    });
    // Longer than the timeout, reading nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match within(reader.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(
        received < all_answers,
        "the connection stayed open: {received} bytes of answers came"
    );
    writing.abort();
}

/// Sends raw bytes and reads the answer's head (status line and headers).
async fn raw_head(addr: SocketAddr, request: &str) -> String {
    let mut tcp = within(TcpStream::connect(addr)).await.expect("connect");
    within(tcp.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        within(tcp.read_exact(&mut byte)).await.expect("an answer");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test]
async fn a_broken_chunked_body_gets_400_saying_what_is_wrong() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let answer = raw_http(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // hyper's own words ("error reading a body") and the cause under them.
    assert!(answer.contains("chunk size"), "{answer}");
}

#[tokio::test]
async fn invalid_handshakes_and_hosts_get_400_and_a_426_says_what_to_upgrade_to() {
    let server = Server::start(Mode::Echo, Config::default()).await;
    let upgrade = |version: &str, key: &str, ws_version: &str| {
        format!(
            "GET / {version}\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {ws_version}\r\n\r\n"
        )
    };
    let good_key = "dGhlIHNhbXBsZSBub25jZQ==";
    // RFC 6455 §4.2.1: HTTP/1.1, and a key of 16 bytes in base64.
    let head = raw_head(server.addr, &upgrade("HTTP/1.0", good_key, "13")).await;
    assert!(head.starts_with("http/1.0 400"), "{head}");
    for key in ["abc", "dGhlIHNhbXBsZQ==", "not base64 at all!!!!!!!"] {
        let head = raw_head(server.addr, &upgrade("HTTP/1.1", key, "13")).await;
        assert!(head.starts_with("http/1.1 400"), "{key}: {head}");
    }
    // RFC 9110 §15.5.22: a 426 sends Upgrade.
    let head = raw_head(server.addr, &upgrade("HTTP/1.1", good_key, "8")).await;
    assert!(head.starts_with("http/1.1 426"), "{head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nsec-websocket-version: 13\r\n"), "{head}");
    let head = raw_head(server.addr, &upgrade("HTTP/1.1", good_key, "13")).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
    for hosts in ["", "Host: a\r\nHost: b\r\n"] {
        let request = format!("POST / HTTP/1.1\r\n{hosts}Content-Length: 2\r\n\r\n{{}}");
        let head = raw_head(server.addr, &request).await;
        assert!(head.starts_with("http/1.1 400"), "{hosts:?}: {head}");
    }
    let head = raw_head(
        server.addr,
        "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert!(head.starts_with("http/1.0 200"), "{head}");

    // A WebSocket-only port's 426 to a plain request lists `upgrade` in
    // Connection too (RFC 9110 §7.8).
    let ws_only = Server::start(
        Mode::Echo,
        Config {
            protocols: rpcpeer_ws::Protocols::WebSocketOnly,
            ..Config::default()
        },
    )
    .await;
    let head = raw_head(
        ws_only.addr,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert!(head.starts_with("http/1.1 426"), "{head}");
    assert!(
        head.contains("\r\nconnection: upgrade, close\r\n"),
        "{head}"
    );
}

/// Sends raw bytes and reads everything until the server closes.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = within(TcpStream::connect(addr)).await.expect("connect");
    within(tcp.write_all(request)).await.expect("write");
    let mut response = Vec::new();
    within(tcp.read_to_end(&mut response))
        .await
        .expect("read until the server closes");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn oversized_post_gets_413_before_the_body_is_sent() {
    let server = Server::start(Mode::Echo, small(1024)).await;
    // Only the headers: the answer must come without waiting for the body.
    let response = raw_http(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1025\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
    assert!(response.contains("1024 byte limit"), "{response}");
}

/// A client that writes its whole body before it reads, as most do, still
/// reads the `413`: the server drains the body it refused rather than
/// closing under it, which makes the kernel reset the connection (the
/// client's write then fails with "broken pipe", its answer unread).
#[tokio::test]
async fn oversized_post_sent_whole_still_gets_its_413() {
    let server = Server::start(Mode::Echo, small(1024)).await;
    // Far more than the socket buffers of both ends hold.
    let body = vec![b'x'; 32 << 20];
    for chunked in [false, true] {
        let mut tcp = within(TcpStream::connect(server.addr))
            .await
            .expect("connect");
        let head = if chunked {
            "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned()
        } else {
            format!(
                "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        };
        within(tcp.write_all(head.as_bytes()))
            .await
            .expect("write the head");
        for part in body.chunks(1 << 20) {
            if chunked {
                let size = format!("{:x}\r\n", part.len());
                within(tcp.write_all(size.as_bytes())).await.expect("size");
            }
            within(tcp.write_all(part))
                .await
                .expect("the whole body is taken, though refused");
            if chunked {
                within(tcp.write_all(b"\r\n")).await.expect("chunk end");
            }
        }
        let mut response = Vec::new();
        within(tcp.read_to_end(&mut response))
            .await
            .expect("read until the server closes");
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
        assert!(response.contains("1024 byte limit"), "{response}");
    }
}

/// Only a refusal lingers: the answer to a request that asked for
/// `Connection: close` ends the connection at once, so a client that keeps
/// its socket open holds none of the server's places. Bytes it sends after
/// are met with a reset; a lingering server would read and drop them.
#[tokio::test]
async fn a_connection_close_that_refuses_nothing_does_not_linger() {
    let server = Server::start(Mode::Echo, small(1024)).await;
    let mut tcp = within(TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let request =
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    within(tcp.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut response = Vec::new();
    within(tcp.read_to_end(&mut response))
        .await
        .expect("read until the server closes");
    assert!(response.starts_with(b"HTTP/1.1 200 "));
    // NB: the first write may land before the server drops its socket;
    // the reset it gets back fails a later one. A lingering server would
    // take them all, for seconds.
    let mut refused = None;
    for _ in 0..50 {
        if let Err(err) = tcp.write_all(b"more").await {
            refused = Some(err.kind());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        matches!(
            refused,
            Some(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn oversized_chunked_post_gets_413() {
    let server = Server::start(Mode::Echo, small(1024)).await;
    let mut request =
        b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        request.extend_from_slice(b"200\r\n");
        request.extend_from_slice(&[b'x'; 0x200]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let response = raw_http(server.addr, &request).await;
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
}

#[tokio::test]
async fn post_at_the_limit_is_accepted() {
    let server = Server::start(Mode::Echo, small(1024)).await;
    let mut sender = http_client(server.addr).await;
    let (status, _, body) = exchange(&mut sender, post("/", "z".repeat(1024))).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(body.len(), "POST / ".len() + 1024);
}

#[tokio::test]
async fn split_halves_work_on_separate_tasks() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(10)),
        ..Config::default()
    };
    let server = Server::start(Mode::Echo, config.clone()).await;
    let ws = within(connect(&server.url("/"), &config))
        .await
        .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            sink.send(format!("[{i}]")).await.expect("send");
        }
    });
    for i in 0..200 {
        let echo = within(stream.next())
            .await
            .expect("an echo")
            .expect("no error");
        assert_eq!(echo, format!("[{i}]"));
    }
    within(writer).await.expect("the writer finishes");
}

#[test]
fn transports_are_send_and_unpin() {
    fn assert_send_unpin<T: Send + Unpin>() {}
    assert_send_unpin::<WsTransport<ServerIo>>();
    assert_send_unpin::<WsTransport<rpcpeer_ws::MaybeTlsStream<TcpStream>>>();
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn failed_tls_handshake_is_an_error_not_a_panic() {
    // A plain TCP server that hangs up: rustls must get as far as the
    // handshake (which needs a crypto provider) and then report an error.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    let err = within(connect(
        &format!("wss://localhost:{}/", addr.port()),
        &Config::default(),
    ))
    .await
    .expect_err("no TLS server there");
    assert!(err.to_string().contains("wss://localhost"), "{err}");
}

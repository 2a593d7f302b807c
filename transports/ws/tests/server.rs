//! `Server`: the accept loop's connection cap and graceful stop, over real sockets on 127.0.0.1.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use rpcpeer_ws::{connect, http, Config, Server, ServerIo, Service, Stopping, WsTransport};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{oneshot, Notify},
    task::JoinHandle,
};

/// Echoes WebSocket messages until the peer leaves or the server stops
/// (then closes with 1001); answers `GET /slow` once `release` is notified.
#[derive(Clone)]
struct Slow {
    stopping: Stopping,
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl Service for Slow {
    async fn websocket(&self, mut ws: WsTransport<ServerIo>, _: http::Extensions, _: SocketAddr) {
        let stopped = self.stopping.stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => {
                    let _ = ws.close_with(1001, "the server is stopping").await;
                    return;
                }
                text = ws.next() => {
                    let Some(Ok(text)) = text else { return };
                    if ws.send(text.to_string()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn http(&self, req: http::Request<String>, _: SocketAddr) -> http::Response<String> {
        if req.uri().path() == "/slow" {
            self.started.notify_one();
            self.release.notified().await;
        }
        http::Response::new(format!("answered {}", req.uri().path()))
    }
}

/// A running server, its service's notifications, and its stop.
struct Running {
    addr: SocketAddr,
    started: Arc<Notify>,
    release: Arc<Notify>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
}

async fn start(max_connections: usize) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let server = Server::new(Config::default()).max_connections(max_connections);
    let service = Slow {
        stopping: server.stopping(),
        started: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
    };
    let (started, release) = (service.started.clone(), service.release.clone());
    let (stop, stopped) = oneshot::channel();
    let serving = tokio::spawn(server.serve_with_shutdown(listener, service, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        started,
        release,
        stop,
        serving,
    }
}

/// Fails the test instead of hanging when something never happens.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Writes `request` and reads until the server closes the connection.
async fn raw_http(tcp: &mut TcpStream, request: &[u8]) -> String {
    within("the write", tcp.write_all(request))
        .await
        .expect("write");
    let mut response = Vec::new();
    within("the server to close", tcp.read_to_end(&mut response))
        .await
        .expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_body_that_is_not_utf8_gets_the_default_400_and_the_connection_goes_on() {
    let running = start(4).await;
    let mut tcp = TcpStream::connect(running.addr).await.expect("connect");
    // Then a second request on the same connection: the first body was
    // read whole, so the next one can be read after it.
    let requests = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[\xff]\
GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let response = raw_http(&mut tcp, requests).await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(
        response.contains("content-type: text/plain; charset=utf-8"),
        "{response}"
    );
    assert!(
        response.contains(
            "the request body is not UTF-8 text: invalid utf-8 sequence of 1 bytes from index 1"
        ),
        "{response}"
    );
    assert!(response.ends_with("answered /after"), "{response}");
}

#[tokio::test]
async fn a_connection_past_the_cap_gets_503() {
    let running = start(1).await;
    let url = format!("ws://{}/", running.addr);
    let mut first = within("the first connection", connect(&url, &Config::default()))
        .await
        .expect("the first connection is served");
    within("the echo", first.send("[1]".to_owned()))
        .await
        .expect("send");
    let echo = within("the echo", first.next()).await;
    assert_eq!(echo.expect("an echo").expect("no error"), "[1]");

    let mut second = TcpStream::connect(running.addr).await.expect("connect");
    let response = raw_http(&mut second, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{response}"
    );
    assert!(response.contains("limit of 1 connections"), "{response}");
}

#[tokio::test]
async fn a_stop_lets_the_request_being_answered_finish_and_says_connection_close() {
    let running = start(10).await;
    let mut tcp = TcpStream::connect(running.addr).await.expect("connect");
    let request =
        tokio::spawn(
            async move { raw_http(&mut tcp, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await },
        );
    within("the request to start", running.started.notified()).await;
    running.stop.send(()).expect("the server is running");
    running.release.notify_one();
    let response = within("the answer", request)
        .await
        .expect("the client task");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{response}"
    );
    assert!(response.ends_with("answered /slow"), "{response}");
    within("the server to stop", running.serving)
        .await
        .expect("the server's task")
        .expect("a clean stop");
    assert!(
        TcpStream::connect(running.addr).await.is_err(),
        "a stopped server accepts no connection"
    );
}

#[tokio::test]
async fn a_stop_drops_an_idle_keep_alive_connection() {
    let running = start(10).await;
    let mut tcp = TcpStream::connect(running.addr).await.expect("connect");
    within(
        "the write",
        tcp.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"),
    )
    .await
    .expect("write");
    let mut answer = Vec::new();
    while !answer.ends_with(b"answered /fast") {
        let mut chunk = [0; 1024];
        let n = within("the answer", tcp.read(&mut chunk))
            .await
            .expect("read");
        assert!(n > 0, "closed before the answer: {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
    // Kept alive, idle: the stop ends it.
    running.stop.send(()).expect("the server is running");
    within("the server to stop", running.serving)
        .await
        .expect("the server's task")
        .expect("a clean stop");
    let mut rest = Vec::new();
    let read = within("the connection to end", tcp.read_to_end(&mut rest)).await;
    assert!(
        read.is_err() || rest.is_empty(),
        "nothing more is sent: {rest:?}"
    );
}

#[tokio::test]
async fn a_stop_waits_for_websocket_conversations_that_end_on_stopping() {
    let running = start(10).await;
    let url = format!("ws://{}/", running.addr);
    let mut ws = within("the connection", connect(&url, &Config::default()))
        .await
        .expect("connect");
    within("the echo", ws.send("[1]".to_owned()))
        .await
        .expect("send");
    let echo = within("the echo", ws.next()).await;
    assert_eq!(echo.expect("an echo").expect("no error"), "[1]");

    running.stop.send(()).expect("the server is running");
    assert!(
        within("the close", ws.next()).await.is_none(),
        "the conversation ends"
    );
    assert_eq!(
        ws.close_frame(),
        Some((1001, "the server is stopping".to_owned()))
    );
    within("the server to stop", running.serving)
        .await
        .expect("the server's task")
        .expect("a clean stop");
}

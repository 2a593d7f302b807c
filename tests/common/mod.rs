//! Shared test harness: servers on 127.0.0.1:0, raw wire clients, the spec's example router.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rpcpeer::{Config, Driver, ErrorObject, Peer, Router};
use rpcpeer_stream::{connect_tcp, Framed, Framing, TcpListener};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub const FRAMINGS: [Framing; 2] = [Framing::Newline, Framing::ContentLength];

/// The member of a JSON list (of methods, of params) with this `name`.
pub fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// `ping` (answering "pong"), and `method`, which answers `true` and then
/// closes its connection with a WebSocket close frame of `code` and
/// `reason`.
pub fn closing_router(method: &str, code: u16, reason: &'static str) -> Router {
    let mut router = Router::new();
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    router.method(method, move |cx: rpcpeer::Context| async move {
        let peer = cx.peer().clone();
        let frame = rpcpeer::CloseFrame::new(code, reason).expect("a valid close frame");
        tokio::spawn(async move { peer.close_with(frame).await });
        Ok::<_, ErrorObject>(true)
    });
    router
}

/// Turns a hang into a failure. Not a timing assertion: nothing here should
/// take more than a fraction of this.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 20 s (a hang or a deadlock)"))
}

/// Serves `router` on 127.0.0.1:0, one driver per connection.
pub async fn serve<S: Send + Sync + 'static>(router: Router<S>, framing: Framing) -> SocketAddr {
    serve_with(
        router,
        framing,
        Config::default(),
        rpcpeer_stream::DEFAULT_MAX_FRAME_LEN,
    )
    .await
}

pub async fn serve_with<S: Send + Sync + 'static>(
    router: Router<S>,
    framing: Framing,
    config: Config,
    max_frame_len: usize,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0", framing)
        .await
        .expect("bind 127.0.0.1:0")
        .with_max_frame_len(max_frame_len);
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((transport, _)) = listener.accept().await {
            let (_peer, driver) = Driver::builder(transport, router.clone())
                .config(config.clone())
                .build();
            tokio::spawn(driver);
        }
    });
    addr
}

/// A peer connected to `addr`, serving `router` itself.
pub async fn connect<S: Send + Sync + 'static>(
    addr: SocketAddr,
    framing: Framing,
    router: Router<S>,
) -> (Peer, JoinHandle<Result<(), rpcpeer::Error>>) {
    connect_with(addr, framing, router, Config::default()).await
}

pub async fn connect_with<S: Send + Sync + 'static>(
    addr: SocketAddr,
    framing: Framing,
    router: Router<S>,
    config: Config,
) -> (Peer, JoinHandle<Result<(), rpcpeer::Error>>) {
    let transport = connect_tcp(addr, framing).await.expect("connect");
    let (peer, driver) = Driver::builder(transport, router).config(config).build();
    (peer, tokio::spawn(driver))
}

/// A raw client: exact frames out, frames in.
pub struct Wire {
    io: Framed<TcpStream>,
}

impl Wire {
    pub async fn connect(addr: SocketAddr, framing: Framing) -> Self {
        Self {
            io: connect_tcp(addr, framing).await.expect("connect"),
        }
    }

    /// The server's end of an accepted connection.
    #[allow(dead_code)]
    pub fn accepted(io: Framed<TcpStream>) -> Self {
        Self { io }
    }

    pub async fn send(&mut self, text: &str) {
        self.io.send(text.to_owned()).await.expect("send");
    }

    /// Writes `bytes` as they are, framing and all: for frames no codec
    /// would write (cut short, not UTF-8, no framing at all).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        // Every frame `send` wrote has been flushed, so writing under the
        // codec keeps the byte order.
        let tcp = self.io.get_mut();
        tcp.write_all(bytes).await.expect("send raw bytes");
        tcp.flush().await.expect("flush");
    }

    /// Shuts down the writing half: the server reads the end of the
    /// stream, and this side can still read its answers.
    pub async fn shutdown_write(&mut self) {
        use tokio::io::AsyncWriteExt;
        self.io.get_mut().shutdown().await.expect("shutdown");
    }

    /// The next frame's text; `None` when the server closed the connection.
    pub async fn recv_text(&mut self) -> Option<String> {
        match within("waiting for a frame", self.io.next()).await {
            Some(Ok(text)) => Some(text),
            Some(Err(_)) | None => None,
        }
    }

    pub async fn recv(&mut self) -> Value {
        let text = self
            .recv_text()
            .await
            .expect("the server closed the connection");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {text}"))
    }

    /// Sends `text` and returns the one reply.
    pub async fn call(&mut self, text: &str) -> Value {
        self.send(text).await;
        self.recv().await
    }

    /// Proves that nothing was answered to what was sent before: `sync` is
    /// exclusive, so it runs after everything sent earlier has finished and
    /// its reply is queued behind any reply they produced.
    pub async fn expect_no_reply(&mut self) {
        self.send(r#"{"jsonrpc":"2.0","method":"sync","id":"sync"}"#)
            .await;
        let reply = self.recv().await;
        assert_eq!(
            reply["id"], "sync",
            "got a reply that should not exist: {reply}"
        );
    }
}

/// The methods the JSON-RPC 2.0 spec's examples call, plus `sync`.
pub fn spec_router() -> Router {
    #[derive(serde::Deserialize)]
    struct Subtract {
        minuend: i64,
        subtrahend: i64,
    }
    let mut router = Router::new();
    router.method("subtract", |p: Subtract| async move {
        Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
    });
    router.method("sum", |xs: Vec<i64>| async move {
        Ok::<_, ErrorObject>(xs.iter().sum::<i64>())
    });
    router.method("get_data", || async { Ok::<_, ErrorObject>(("hello", 5)) });
    router.notification("update", |_: Value| async {});
    router.notification("notify_hello", |_: Value| async {});
    router.notification("notify_sum", |_: Value| async {});
    add_sync(&mut router);
    router
}

/// `sync`: an exclusive no-op, see [`Wire::expect_no_reply`].
pub fn add_sync<S: Send + Sync + 'static>(router: &mut Router<S>) {
    router
        .method("sync", || async { Ok::<_, ErrorObject>(true) })
        .concurrency(rpcpeer::Concurrency::Exclusive);
}

/// Calls that finish one after the other, each woken alone, and a count of
/// how often their futures are polled.
pub struct Chain {
    pub polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// `links[i]` wakes call `i`.
    links: Vec<tokio::sync::Notify>,
}

/// A future that counts its polls.
struct Polled<F> {
    polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    inner: std::pin::Pin<Box<F>>,
}

impl<F: Future> Future for Polled<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.as_mut().poll(cx)
    }
}

/// A router whose `chain` `[i, n]` finishes after call `i + 1`, which wakes
/// it: the last first, the worst order for a batch that polls every entry
/// whenever one of them is woken. The `Chain` counts the polls.
pub fn chain_router(n: usize) -> (Router<std::sync::Arc<Chain>>, std::sync::Arc<Chain>) {
    let chain = std::sync::Arc::new(Chain {
        polls: std::sync::Arc::default(),
        links: (0..n).map(|_| tokio::sync::Notify::new()).collect(),
    });
    let mut router = Router::with_state(chain.clone());
    router.method(
        "chain",
        |(i, n): (usize, usize), cx: rpcpeer::Context<std::sync::Arc<Chain>>| {
            let polls = cx.state().polls.clone();
            Polled {
                polls,
                inner: Box::pin(async move {
                    let links = &cx.state().links;
                    if i + 1 < n {
                        links[i].notified().await;
                    }
                    if i > 0 {
                        links[i - 1].notify_one();
                    }
                    Ok::<_, ErrorObject>(i)
                }),
            }
        },
    );
    (router, chain)
}

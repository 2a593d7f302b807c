//! Three `rpcpeer serve --redis` processes and a `redis-server`, with chat clients on each: one room across the three, and a server killed with SIGKILL leaves it.

#[path = "common/redis_server.rs"]
mod redis_server;

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use redis_server::RedisServer;
use rpcpeer::stream::{connect_tcp, Framed, Framing};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_rpcpeer");

/// Turns a hang into a failure (nothing here should take a fraction of it).
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 20 s (a hang)"))
}

/// One `rpcpeer serve --redis … --node NAME`.
struct Serve {
    child: Child,
    tcp: String,
}

impl Serve {
    async fn start(redis: &RedisServer, node: &str) -> Self {
        // Short, so that a killed server's members leave quickly.
        Self::start_with_ttl(redis, node, "1").await
    }

    async fn start_with_ttl(redis: &RedisServer, node: &str, presence_ttl: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
            .args(["--redis", &redis.url(), "--node", node])
            .args(["--presence-ttl", presence_ttl])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn rpcpeer serve");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = within("a `listening on` line", lines.next_line())
            .await
            .expect("read serve's output")
            .expect("a first line");
        let tcp = first
            .strip_prefix("listening on tcp://")
            .unwrap_or_else(|| panic!("first line: {first}"))
            .to_owned();
        Self { child, tcp }
    }

    async fn client(&self) -> Client {
        Client {
            io: connect_tcp(self.tcp.as_str(), Framing::Newline)
                .await
                .expect("connect to serve"),
            next_id: 1,
            pushed: Vec::new(),
        }
    }

    async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .expect("run kill");
        assert!(sent.success(), "kill {signal} {pid} failed");
    }
}

/// A chat client on a raw newline-framed TCP connection.
struct Client {
    io: Framed<TcpStream>,
    next_id: u64,
    /// Notifications read while waiting for replies: (method, params).
    pushed: Vec<(String, Value)>,
}

impl Client {
    async fn recv(&mut self) -> Value {
        let text = within("a frame", self.io.next())
            .await
            .expect("the connection is open")
            .expect("a frame");
        serde_json::from_str(&text).expect("JSON")
    }

    /// Calls `method` and returns its reply, keeping notifications.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        self.io.send(request.to_string()).await.expect("send");
        loop {
            let frame = self.recv().await;
            if frame["id"] == id {
                return frame;
            }
            self.keep(frame);
        }
    }

    fn keep(&mut self, frame: Value) {
        let method = frame["method"]
            .as_str()
            .unwrap_or_else(|| panic!("not a notification: {frame}"));
        self.pushed
            .push((method.to_owned(), frame["params"].clone()));
    }

    /// Reads notifications until `n` of them are called `method`; returns
    /// their params.
    async fn pushes(&mut self, method: &str, n: usize) -> Vec<Value> {
        while self.pushed.iter().filter(|(m, _)| m == method).count() < n {
            let frame = self.recv().await;
            self.keep(frame);
        }
        let (wanted, rest) = std::mem::take(&mut self.pushed)
            .into_iter()
            .partition(|(m, _)| m == method);
        self.pushed = rest;
        wanted.into_iter().map(|(_, p)| p).collect::<Vec<_>>()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_share_one_chat_room_and_a_killed_one_leaves_it() {
    let redis = RedisServer::start();
    let mut a = Serve::start(&redis, "a").await;
    let mut b = Serve::start(&redis, "b").await;
    let mut c = Serve::start(&redis, "c").await;
    let mut ann = a.client().await;
    let mut ben = b.client().await;
    let mut cat = c.client().await;
    for (client, name) in [(&mut ann, "ann"), (&mut ben, "ben"), (&mut cat, "cat")] {
        assert_eq!(
            client.call("join", json!([name])).await["result"],
            true,
            "{name} joins"
        );
    }
    // Every server lists all three once its link is up and each server has
    // put its member in the room's presence.
    let everyone = json!([
        {"name": "ann", "node": "a"},
        {"name": "ben", "node": "b"},
        {"name": "cat", "node": "c"}
    ]);
    for client in [&mut ann, &mut ben, &mut cat] {
        within("all three members listed", async {
            while client.call("members", json!([])).await["result"] != everyone {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }

    // ann (on a) and ben (on b) take turns; each post is answered once
    // Redis has it, so this is the room's order.
    let mut order = Vec::new();
    for i in 0..5 {
        for (client, name) in [(&mut ann, "ann"), (&mut ben, "ben")] {
            let text = format!("{name} says {i}");
            let reply = client.call("postMessage", json!([text])).await;
            assert_eq!(reply["result"], 1, "{reply}");
            order.push(json!([name, text]));
        }
    }
    assert_eq!(
        cat.pushes("handleMessage", 10).await,
        order,
        "cat, on c, hears both in order"
    );
    let without =
        |name: &str| -> Vec<Value> { order.iter().filter(|p| p[0] != name).cloned().collect() };
    assert_eq!(ann.pushes("handleMessage", 5).await, without("ann"));
    assert_eq!(ben.pushes("handleMessage", 5).await, without("ben"));

    // b dies without a word: its member leaves everywhere within the TTL.
    b.signal("-KILL").await;
    assert_eq!(ann.pushes("userLeft", 1).await, [json!(["ben"])]);
    assert_eq!(cat.pushes("userLeft", 1).await, [json!(["ben"])]);
    let two = json!([{"name": "ann", "node": "a"}, {"name": "cat", "node": "c"}]);
    assert_eq!(ann.call("members", json!([])).await["result"], two);
    // Nobody heard anything twice: what comes before the next posts in the
    // room's order is all there was.
    for (client, name) in [(&mut ann, "ann"), (&mut cat, "cat")] {
        let reply = client
            .call("postMessage", json!([format!("{name} is still here")]))
            .await;
        assert_eq!(reply["result"], 1, "{name}: {reply}");
    }
    assert_eq!(
        ann.pushes("handleMessage", 1).await,
        [json!(["cat", "cat is still here"])]
    );
    assert_eq!(
        cat.pushes("handleMessage", 1).await,
        [json!(["ann", "ann is still here"])]
    );
    for (who, client) in [("ann", &ann), ("cat", &cat)] {
        assert!(
            client.pushed.is_empty(),
            "{who} got more: {:?}",
            client.pushed
        );
    }
    for serve in [&mut a, &mut c] {
        serve.signal("-TERM").await;
        let status = within("serve to exit", serve.child.wait())
            .await
            .expect("wait");
        assert!(status.success(), "{status}");
    }
}

/// A server stopped with SIGTERM has its members' departures announced to
/// the other servers before it exits, not when their presence expires (an
/// hour here, well past this test's patience).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_gracefully_announces_its_members_departures_at_once() {
    let redis = RedisServer::start();
    let mut a = Serve::start_with_ttl(&redis, "a", "3600").await;
    let mut b = Serve::start_with_ttl(&redis, "b", "3600").await;
    let mut ann = a.client().await;
    assert_eq!(ann.call("join", json!(["ann"])).await["result"], true);
    let mut on_b = Vec::new();
    for i in 0..10 {
        let mut client = b.client().await;
        let name = format!("b{i}");
        assert_eq!(client.call("join", json!([name])).await["result"], true);
        on_b.push(client);
    }
    within("all eleven members listed", async {
        loop {
            let listed = ann.call("members", json!([])).await["result"].clone();
            if listed.as_array().is_some_and(|all| all.len() == 11) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    b.signal("-TERM").await;
    let status = within("b to exit", b.child.wait()).await.expect("wait");
    assert!(status.success(), "{status}");
    let mut left: Vec<Value> = ann.pushes("userLeft", 10).await;
    left.sort_by_key(|params| params[0].as_str().map(str::to_owned));
    let expected: Vec<Value> = (0..10).map(|i| json!([format!("b{i}")])).collect();
    assert_eq!(left, expected);
    a.signal("-TERM").await;
    let status = within("a to exit", a.child.wait()).await.expect("wait");
    assert!(status.success(), "{status}");
}

/// A Redis that cannot be reached when the server starts is said at once,
/// at warn: the link starts down, so no change of state would say it.
#[tokio::test]
async fn an_unreachable_redis_at_start_is_logged() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(BIN)
        .args(["serve", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
        .args([
            "--redis",
            &format!("redis://127.0.0.1:{port}"),
            "--node",
            "x",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rpcpeer serve");
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let line = within("a warning about Redis", async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read stderr")
                .expect("serve is still running");
            if line.contains("redis") && line.contains("WARN") {
                break line;
            }
        }
    })
    .await;
    assert!(
        line.contains(&format!("cannot connect to redis://127.0.0.1:{port}")),
        "{line}"
    );
}

/// A server killed and started again under the same name numbers its new
/// members past the old ones: the dead members still leave, announced,
/// where a new member used to take a dead one's place in Redis and hide
/// its departure for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_under_its_name_does_not_hide_its_dead_members_departures() {
    let redis = RedisServer::start();
    let mut a = Serve::start_with_ttl(&redis, "a", "2").await;
    let mut c = Serve::start_with_ttl(&redis, "c", "2").await;
    let mut ann = a.client().await;
    assert_eq!(ann.call("join", json!(["ann"])).await["result"], true);
    let mut c1 = c.client().await;
    assert_eq!(c1.call("join", json!(["c1"])).await["result"], true);
    within("both listed", async {
        while ann.call("members", json!([])).await["result"]
            .as_array()
            .map_or(0, Vec::len)
            < 2
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    c.signal("-KILL").await;
    let _ = c.child.wait().await;
    let c_again = Serve::start_with_ttl(&redis, "c", "2").await;
    let mut zed = c_again.client().await;
    assert_eq!(zed.call("join", json!(["zed"])).await["result"], true);

    assert_eq!(ann.pushes("userLeft", 1).await, [json!(["c1"])]);
    let listed = ann.call("members", json!([])).await["result"].clone();
    assert_eq!(
        listed,
        json!([{"name": "ann", "node": "a"}, {"name": "zed", "node": "c"}])
    );
    a.signal("-TERM").await;
    let _ = a.child.wait().await;
}

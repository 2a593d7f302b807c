//! Rooms across nodes through a real Redis: three nodes on 127.0.0.1, each with members on TCP connections of their own, and a `redis-server` each test starts.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::within;
use redis_server::RedisServer;
use rpcpeer::group::SlowMember;
use rpcpeer::rooms::{LinkState, RedisConfig, RoomError, RoomMember, RoomOptions, Rooms};
use rpcpeer::stream::{connect_tcp, Framing, TcpListener};
use rpcpeer::{Config, Driver, Peer, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// What a member's client receives, (method, params), and the client's
/// handle, which keeps its connection open.
struct Inbox {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    _client: Peer,
}

/// One node: its rooms, and a TCP listener whose connections the test
/// joins to rooms.
struct Node {
    rooms: Rooms,
    addr: SocketAddr,
    accepted: mpsc::UnboundedReceiver<Peer>,
}

/// Rooms in which a member may fall far behind before anything is dropped:
/// the tests count every message, so nothing may be dropped for slowness.
fn roomy() -> RoomOptions {
    RoomOptions::new(50_000, SlowMember::DropOldest)
        .max_backlog_bytes(64 << 20)
        .announce_joins("joined")
        .announce_departures("left")
}

impl Node {
    async fn start(redis: &RedisServer, name: &str, options: RoomOptions) -> Self {
        Self::start_with(redis, name, options, |c| c, Config::default()).await
    }

    async fn start_with(
        redis: &RedisServer,
        name: &str,
        options: RoomOptions,
        tune: impl FnOnce(RedisConfig) -> RedisConfig,
        config: Config,
    ) -> Self {
        let rooms = Rooms::redis(
            options,
            tune(RedisConfig::new(&redis.url(), name).prefix("t")),
        )
        .expect("a redis URL");
        let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, accepted) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((transport, _)) = listener.accept().await {
                let (peer, driver) = Driver::builder(transport, Router::new())
                    .config(config.clone())
                    .build();
                tokio::spawn(driver);
                if tx.send(peer).is_err() {
                    return;
                }
            }
        });
        let node = Self {
            rooms,
            addr,
            accepted,
        };
        node.reaches(LinkState::Connected).await;
        node
    }

    /// Waits until the link to Redis is in `state`.
    async fn reaches(&self, state: LinkState) {
        let mut link = self.rooms.watch_link().expect("rooms through redis");
        within(
            &format!("{} to be {state}", self.rooms.node()),
            link.wait_for(|now| *now == state),
        )
        .await
        .expect("the link task runs");
    }

    /// A client connected over TCP whose connection joins `room` as `name`.
    async fn member(&mut self, room: &str, name: &str) -> (RoomMember, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut router = Router::new();
        router.fallback(move |params, cx| {
            let params = params.map_or(Value::Null, |p| {
                serde_json::from_str(p.get()).expect("JSON params")
            });
            let _ = tx.send((cx.method().to_owned(), params));
            async { Ok(serde_json::value::to_raw_value(&()).expect("null")) }
        });
        let transport = connect_tcp(self.addr, Framing::Newline)
            .await
            .expect("connect");
        let (client, driver) = Driver::new(transport, router);
        tokio::spawn(driver);
        let peer = within("the node to accept", self.accepted.recv())
            .await
            .expect("accepted");
        let member = self.rooms.join(room, peer, name).await.expect("join");
        (
            member,
            Inbox {
                rx,
                _client: client,
            },
        )
    }
}

/// A member whose connection never reads: its socket fills up, then its
/// connection's queues, then its backlog in the room.
impl Node {
    async fn silent_member(
        &mut self,
        room: &str,
        name: &str,
    ) -> (RoomMember, tokio::net::TcpStream) {
        let socket = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let peer = within("the node to accept", self.accepted.recv())
            .await
            .expect("accepted");
        let member = self.rooms.join(room, peer, name).await.expect("join");
        (member, socket)
    }
}

/// Every notification before the next one called `method`, which must come.
async fn until(inbox: &mut Inbox, method: &str) -> (Vec<(String, Value)>, Value) {
    let mut before = Vec::new();
    within(&format!("a `{method}` notification"), async {
        loop {
            let (got, params) = inbox.rx.recv().await.expect("the client is connected");
            if got == method {
                return (before, params);
            }
            before.push((got, params));
        }
    })
    .await
}

/// The ids of the connections subscribed to something.
async fn subscribers(redis: &RedisServer) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin(redis).await)
        .await
        .expect("CLIENT LIST");
    list.lines()
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

async fn admin(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// Drops one connection on Redis's side, as a network fault would.
async fn kill_client(redis: &RedisServer, id: &str) {
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin(redis).await)
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1, "no client {id} to kill");
}

/// The next notification called `method` (others are skipped).
async fn next(inbox: &mut Inbox, method: &str) -> Value {
    within(&format!("a `{method}` notification"), async {
        loop {
            let (got, params) = inbox.rx.recv().await.expect("the client is connected");
            if got == method {
                return params;
            }
        }
    })
    .await
}

/// The texts of the next `n` `msg` notifications.
async fn texts(inbox: &mut Inbox, n: usize) -> Vec<String> {
    let mut texts = Vec::with_capacity(n);
    while texts.len() < n {
        let params = next(inbox, "msg").await;
        texts.push(params[1].as_str().expect("a text").to_owned());
    }
    texts
}

/// Whatever arrived so far and is still waiting, without waiting more.
async fn drained(inbox: &mut Inbox) -> Vec<(String, Value)> {
    // Let anything in flight on loopback land first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rest = Vec::new();
    while let Ok(item) = inbox.rx.try_recv() {
        rest.push(item);
    }
    rest
}

async fn post(member: &RoomMember, text: &str) {
    member
        .notify_others("msg", (member.meta().get(), text))
        .await
        .unwrap_or_else(|err| panic!("post {text}: {err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_one_node_reaches_the_others_once_each_in_one_order() {
    let redis = RedisServer::start();
    let mut a = Node::start(&redis, "a", roomy()).await;
    let mut b = Node::start(&redis, "b", roomy()).await;
    let mut c = Node::start(&redis, "c", roomy()).await;
    let (ann, mut ann_in) = a.member("lobby", "ann").await;
    let (_amy, mut amy_in) = a.member("lobby", "amy").await;
    let (ben, mut ben_in) = b.member("lobby", "ben").await;
    let (_cat, mut cat_in) = c.member("lobby", "cat").await;

    // Every node lists every member, with its metadata and its node.
    let mut seen: Vec<(String, String)> = a
        .rooms
        .members("lobby")
        .await
        .expect("members")
        .into_iter()
        .map(|m| (m.node, serde_json::from_str(m.meta.get()).expect("a name")))
        .collect();
    seen.sort();
    let expected = [("a", "amy"), ("a", "ann"), ("b", "ben"), ("c", "cat")]
        .map(|(node, name)| (node.to_owned(), name.to_owned()));
    assert_eq!(seen, expected);
    assert_eq!(c.rooms.members("lobby").await.expect("members").len(), 4);

    // Two senders on two nodes at once.
    let from_ann = async {
        for i in 0..20 {
            post(&ann, &format!("ann{i}")).await;
        }
    };
    let from_ben = async {
        for i in 0..20 {
            post(&ben, &format!("ben{i}")).await;
        }
    };
    tokio::join!(from_ann, from_ben);

    let order = texts(&mut amy_in, 40).await;
    assert_eq!(
        texts(&mut cat_in, 40).await,
        order,
        "cat (node c) and amy (node a) disagree on the order"
    );
    let others = |me: &str| -> Vec<String> {
        order
            .iter()
            .filter(|t| !t.starts_with(me))
            .cloned()
            .collect()
    };
    assert_eq!(
        texts(&mut ann_in, 20).await,
        others("ann"),
        "the sender gets its own posts"
    );
    assert_eq!(texts(&mut ben_in, 20).await, others("ben"));
    assert_eq!(
        order.iter().collect::<HashSet<_>>().len(),
        40,
        "a post came twice: {order:?}"
    );
    for (who, inbox) in [
        ("amy", &mut amy_in),
        ("cat", &mut cat_in),
        ("ben", &mut ben_in),
    ] {
        let extra: Vec<_> = drained(inbox)
            .await
            .into_iter()
            .filter(|(m, _)| m == "msg")
            .collect();
        assert!(extra.is_empty(), "{who} got more: {extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_from_three_nodes_arrive_once_each_in_one_order() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(Node::start(&redis, name, roomy()).await);
    }
    let mut senders = Vec::new();
    let mut watchers = Vec::new();
    for node in &mut nodes {
        let name = node.rooms.node().to_owned();
        let (sender, inbox) = node.member("busy", &name).await;
        senders.push((sender, inbox));
        watchers.push(node.member("busy", &format!("{name}-watcher")).await);
    }
    const EACH: [usize; 3] = [3334, 3333, 3333];
    let posting = senders.iter().zip(EACH).map(|((sender, _), n)| async move {
        let name: String = serde_json::from_str(sender.meta().get()).expect("a name");
        for i in 0..n {
            post(sender, &format!("{name}/{i}")).await;
        }
    });
    within("10,000 posts", futures::future::join_all(posting)).await;

    // Every watcher (one per node) sees all 10,000 once, in one order.
    let order = texts(&mut watchers[0].1, 10_000).await;
    assert_eq!(
        order.iter().collect::<HashSet<_>>().len(),
        10_000,
        "a message came twice"
    );
    for (i, (_, inbox)) in watchers.iter_mut().enumerate().skip(1) {
        assert_eq!(
            texts(inbox, 10_000).await,
            order,
            "the watcher on node {i} saw another order"
        );
    }
    // Each sender sees the others' messages, in that order.
    for ((sender, inbox), n) in senders.iter_mut().zip(EACH) {
        let name: String = serde_json::from_str(sender.meta().get()).expect("a name");
        let others: Vec<String> = order
            .iter()
            .filter(|t| !t.starts_with(&format!("{name}/")))
            .cloned()
            .collect();
        assert_eq!(
            texts(inbox, 10_000 - n).await,
            others,
            "{name} saw another order"
        );
    }
    for (who, inbox) in watchers.iter_mut().map(|(m, i)| (m.meta(), i)) {
        let extra: Vec<_> = drained(inbox)
            .await
            .into_iter()
            .filter(|(m, _)| m == "msg")
            .collect();
        assert!(
            extra.is_empty(),
            "{who} got more than 10,000: {} more",
            extra.len()
        );
    }
}

/// A node that stays away long enough to notice its absence: the other
/// nodes' pushes in between have to come from the history.
fn slow_to_reconnect(config: RedisConfig) -> RedisConfig {
    config.reconnect_backoff(Duration::from_millis(600), Duration::from_secs(1))
}

/// Node a's subscription is dropped; node b posts `count` messages while a
/// is down, then "after" once a is back. Returns what amy, on a, received
/// from the drop on, and b's sender.
async fn posts_while_a_is_cut_off(
    redis: &RedisServer,
    count: usize,
    tune: fn(RedisConfig) -> RedisConfig,
) -> (Vec<(String, Value)>, Node, Node) {
    posts_while_cut_off_with(redis, count, tune, roomy()).await
}

/// [`posts_while_a_is_cut_off`], node a's rooms made with `options`.
async fn posts_while_cut_off_with(
    redis: &RedisServer,
    count: usize,
    tune: fn(RedisConfig) -> RedisConfig,
    options: RoomOptions,
) -> (Vec<(String, Value)>, Node, Node) {
    let mut a = Node::start_with(
        redis,
        "a",
        options,
        |c| tune(slow_to_reconnect(c)),
        Config::default(),
    )
    .await;
    let (_amy, mut amy_in) = a.member("r", "amy").await;
    let subscribed = subscribers(redis).await;
    assert_eq!(
        subscribed.len(),
        1,
        "node a alone is subscribed: {subscribed:?}"
    );
    let mut b = Node::start_with(redis, "b", roomy(), tune, Config::default()).await;
    let (ben, _ben_in) = b.member("r", "ben").await;
    post(&ben, "before").await;
    assert_eq!(texts(&mut amy_in, 1).await, ["before"]);

    kill_client(redis, &subscribed[0]).await;
    a.reaches(LinkState::Down).await;
    for i in 0..count {
        post(&ben, &format!("gap{i}")).await;
    }
    a.reaches(LinkState::Connected).await;
    post(&ben, "after").await;
    let mut got = Vec::new();
    loop {
        let (before, params) = until(&mut amy_in, "msg").await;
        got.extend(before);
        let done = params[1] == "after";
        got.push(("msg".to_owned(), params));
        if done {
            break;
        }
    }
    got.extend(drained(&mut amy_in).await);
    (got, a, b)
}

fn msgs(got: &[(String, Value)]) -> Vec<&str> {
    got.iter()
        .filter(|(m, _)| m == "msg")
        .map(|(_, p)| p[1].as_str().expect("a text"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_subscription_is_filled_from_the_history() {
    let redis = RedisServer::start();
    let (got, _a, _b) = posts_while_a_is_cut_off(&redis, 50, |c| c).await;
    let expected: Vec<String> = (0..50)
        .map(|i| format!("gap{i}"))
        .chain(["after".to_owned()])
        .collect();
    assert_eq!(msgs(&got), expected);
    assert!(
        !got.iter().any(|(m, _)| m == "rpcpeer.resync"),
        "the history covered the gap, yet: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_longer_than_the_history_tells_members_to_resynchronise() {
    let redis = RedisServer::start();
    let (got, _a, _b) = posts_while_a_is_cut_off(&redis, 20, |c| c.history_len(5)).await;
    let resync = got
        .iter()
        .position(|(m, _)| m == "rpcpeer.resync")
        .unwrap_or_else(|| panic!("no resync notification: {got:?}"));
    assert_eq!(got[resync].1, json!({"room": "r", "missed": 15}));
    // Then what the history still held, and what came after.
    assert_eq!(
        msgs(&got[resync..]),
        ["gap15", "gap16", "gap17", "gap18", "gap19", "after"]
    );
    assert!(msgs(&got[..resync]).is_empty(), "{got:?}");
}

/// A gap the history holds, but longer than a member may fall behind: pushed
/// at once, the room's policy would drop its oldest part and the resync
/// notice first, with nothing said. The members are told to resynchronise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_longer_than_a_member_may_fall_behind_tells_members_to_resynchronise() {
    let redis = RedisServer::start();
    let small = RoomOptions::new(10, SlowMember::DropOldest);
    let (got, _a, _b) = posts_while_cut_off_with(&redis, 30, |c| c, small).await;
    let resync = got
        .iter()
        .position(|(m, _)| m == "rpcpeer.resync")
        .unwrap_or_else(|| panic!("no resync notification: {got:?}"));
    assert_eq!(got[resync].1, json!({"room": "r", "missed": 30}));
    assert_eq!(msgs(&got[resync..]), ["after"]);
    assert!(msgs(&got[..resync]).is_empty(), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_local_delivery_goes_on_then_members_resynchronise() {
    let mut redis = RedisServer::start();
    let quick =
        |c: RedisConfig| c.reconnect_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let mut a = Node::start_with(&redis, "a", roomy(), quick, Config::default()).await;
    let mut b = Node::start_with(&redis, "b", roomy(), quick, Config::default()).await;
    let mut c = Node::start_with(&redis, "c", roomy(), quick, Config::default()).await;
    let (ann, mut ann_in) = a.member("lobby", "ann").await;
    let (_amy, mut amy_in) = a.member("lobby", "amy").await;
    let (ben, mut ben_in) = b.member("lobby", "ben").await;
    let (_cat, mut cat_in) = c.member("lobby", "cat").await;
    post(&ann, "one").await;
    for inbox in [&mut amy_in, &mut ben_in, &mut cat_in] {
        assert_eq!(texts(inbox, 1).await, ["one"]);
    }

    redis.kill();
    for node in [&a, &b, &c] {
        node.reaches(LinkState::Down).await;
    }
    // Local delivery goes on; the push says it went no further.
    match ann.notify_others("msg", ("ann", "local")).await {
        Err(RoomError::LocalOnly { delivered: 1, .. }) => {}
        other => panic!("a push while Redis is down: {other:?}"),
    }
    assert_eq!(texts(&mut amy_in, 1).await, ["local"]);
    assert!(matches!(
        a.rooms.members("lobby").await,
        Err(RoomError::Unreachable { .. })
    ));

    redis.restart();
    for node in [&a, &b, &c] {
        node.reaches(LinkState::Connected).await;
    }
    // Redis lost the room: every member is told to resynchronise, and
    // nobody on another node got the local-only push.
    for (who, inbox) in [
        ("ann", &mut ann_in),
        ("amy", &mut amy_in),
        ("ben", &mut ben_in),
        ("cat", &mut cat_in),
    ] {
        let (before, resync) = until(inbox, "rpcpeer.resync").await;
        assert_eq!(resync, json!({"room": "lobby", "missed": null}), "{who}");
        assert!(msgs(&before).is_empty(), "{who} got {before:?}");
    }
    post(&ben, "two").await;
    for (who, inbox) in [
        ("ann", &mut ann_in),
        ("amy", &mut amy_in),
        ("cat", &mut cat_in),
    ] {
        assert_eq!(texts(inbox, 1).await, ["two"], "{who}");
    }
    // Presence is back too: each node put its members back.
    let members = within("presence to come back", async {
        loop {
            let members = c.rooms.members("lobby").await.expect("members");
            if members.len() == 4 {
                return members;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        members
            .iter()
            .map(|m| m.node.as_str())
            .collect::<HashSet<_>>()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_member_on_one_node_never_slows_the_room() {
    let redis = RedisServer::start();
    let options = || RoomOptions::new(1024, SlowMember::DropOldest).max_backlog_bytes(256 << 10);
    // Node a's connections hold little: its silent member backs up fast.
    let small = Config::default()
        .max_outbox_bytes(64 << 10)
        .max_command_bytes(64 << 10);
    let mut a = Node::start_with(&redis, "a", options(), |c| c, small).await;
    let mut b = Node::start(&redis, "b", options()).await;
    let mut c = Node::start(&redis, "c", options()).await;
    let (_sid, _socket) = a.silent_member("r", "sid").await;
    let (_amy, mut amy_in) = a.member("r", "amy").await;
    let (_cat, mut cat_in) = c.member("r", "cat").await;
    let (ben, _ben_in) = b.member("r", "ben").await;

    // 19 MiB in all: more than sid's socket buffers (loopback's autotuning
    // stops near 10 MiB) and its queues hold.
    let filler = "x".repeat(16 << 10);
    within("1,200 posts", async {
        for i in 0..1200 {
            post(&ben, &format!("{i}:{filler}")).await;
        }
    })
    .await;
    let expected: Vec<String> = (0..1200).map(|i| format!("{i}:{filler}")).collect();
    assert!(
        texts(&mut amy_in, 1200).await == expected,
        "amy, beside the silent member, missed posts"
    );
    assert!(
        texts(&mut cat_in, 1200).await == expected,
        "cat missed posts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_swept_while_its_node_was_cut_off_is_not_told_it_left() {
    let redis = RedisServer::start();
    let ttl = |c: RedisConfig| c.presence_ttl(Duration::from_millis(600));
    let mut a = Node::start_with(&redis, "a", roomy(), ttl, Config::default()).await;
    let mut b = Node::start_with(&redis, "b", roomy(), ttl, Config::default()).await;
    let (ada, mut ada_in) = a.member("r", "ada").await;
    let (_ben, mut ben_in) = b.member("r", "ben").await;
    next(&mut ada_in, "joined").await;
    // What another node's sweep does to a member whose presence expired
    // while its node was cut off from Redis: removed, and its `l` event
    // numbered, kept and published.
    let sweep = redis::Script::new(
        r#"
        local info = redis.call('HGET', KEYS[4], ARGV[1])
        redis.call('ZREM', KEYS[3], ARGV[1])
        redis.call('HDEL', KEYS[4], ARGV[1])
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
        local event = '{"k":"l","who":' .. info .. '}'
        redis.call('XADD', KEYS[2], seq .. '-0', 'd', event)
        redis.call('PUBLISH', ARGV[2], epoch .. ' ' .. seq .. ' ' .. event)
        return seq
        "#,
    );
    let _: i64 = sweep
        .key("t:room:r:seq")
        .key("t:room:r:log")
        .key("t:room:r:presence")
        .key("t:room:r:who")
        .arg(format!("{}@a", ada.id().get()))
        .arg("t:room:r")
        .invoke_async(&mut admin(&redis).await)
        .await
        .expect("the sweep");
    // Ben is told she left, then, once node a's refresh puts her back,
    // that she joined.
    assert_eq!(next(&mut ben_in, "left").await[0], "ada");
    assert_eq!(next(&mut ben_in, "joined").await[0], "ada");
    // Ada never left: she is not told she did.
    let got = drained(&mut ada_in).await;
    assert!(
        !got.iter().any(|(method, _)| method == "left"),
        "ada was told she left: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departure_while_the_link_is_down_is_registered_once_it_is_back() {
    let redis = RedisServer::start();
    let mut a = Node::start_with(&redis, "a", roomy(), slow_to_reconnect, Config::default()).await;
    let (zed, _zed_in) = a.member("side", "zed").await;
    let presence = || async {
        let count: i64 = redis::cmd("ZCARD")
            .arg("t:room:side:presence")
            .query_async(&mut admin(&redis).await)
            .await
            .expect("ZCARD");
        count
    };
    assert_eq!(presence().await, 1);
    let subscribed = subscribers(&redis).await;
    kill_client(&redis, &subscribed[0]).await;
    a.reaches(LinkState::Down).await;
    // Zed leaves while nobody can tell Redis; no node has members left in
    // the room, so no sweep would ever remove him.
    zed.leave();
    a.reaches(LinkState::Connected).await;
    within("zed's presence to go", async {
        while presence().await != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A rename made while the node cannot reach Redis fails (the other nodes
/// were not told), but stands on its own node; the next refresh, once the
/// link is back, tells the others: the member list and the departure then
/// agree on the new name everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_made_while_redis_is_unreachable_reaches_the_others_once_it_is_back() {
    let redis = RedisServer::start();
    let mut a = Node::start_with(
        &redis,
        "a",
        roomy(),
        |c| slow_to_reconnect(c).presence_ttl(Duration::from_secs(3)),
        Config::default(),
    )
    .await;
    let (bob, _bob_in) = a.member("r", "bob").await;
    let subscribed = subscribers(&redis).await;
    assert_eq!(subscribed.len(), 1, "node a alone: {subscribed:?}");
    let mut b = Node::start(&redis, "b", roomy()).await;
    let (_ben, mut ben_in) = b.member("r", "ben").await;
    let named = |members: &[rpcpeer::group::MemberInfo], node: &str| {
        let found = members.iter().find(|m| m.node == node).expect("listed");
        found.meta.get().to_owned()
    };
    kill_client(&redis, &subscribed[0]).await;
    a.reaches(LinkState::Down).await;
    let err = bob
        .set_meta("robert")
        .await
        .expect_err("redis is unreachable");
    assert!(matches!(err, RoomError::Unreachable { .. }), "{err}");
    assert_eq!(bob.meta().get(), r#""robert""#, "renamed on its own node");

    a.reaches(LinkState::Connected).await;
    b.reaches(LinkState::Connected).await;
    within("b to list the new name", async {
        while named(&b.rooms.members("r").await.expect("members"), "a") != r#""robert""# {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    bob.leave();
    assert_eq!(next(&mut ben_in, "left").await, json!(["robert"]));
}

/// Two nodes given one name by mistake number their members apart: both
/// members are listed, and each hears the other's posts (with numbers from
/// 1 on both, the second member took the first one's place in Redis, and
/// a post's sender skipped the other node's member as if it were itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_given_one_name_keep_their_members_apart() {
    let redis = RedisServer::start();
    let mut first = Node::start(&redis, "a", roomy()).await;
    let mut second = Node::start(&redis, "a", roomy()).await;
    let (amy, mut amy_in) = first.member("r", "amy").await;
    let (abe, mut abe_in) = second.member("r", "abe").await;
    assert_ne!(amy.id(), abe.id());
    within("both members listed", async {
        while first.rooms.members("r").await.expect("members").len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    post(&amy, "from amy").await;
    assert_eq!(texts(&mut abe_in, 1).await, ["from amy"]);
    post(&abe, "from abe").await;
    assert_eq!(texts(&mut amy_in, 1).await, ["from abe"]);
}

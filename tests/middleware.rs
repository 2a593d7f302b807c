//! Tower layers around incoming calls (`Router::layer` and `connection_layer`), over TCP.

mod common;

use std::future::ready;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use common::{add_sync, connect, serve, within, Wire};
use rpcpeer::middleware::{BoxError, Call, Reply};
use rpcpeer::stream::Framing;
use rpcpeer::{BoxFuture, Context, Error, ErrorObject, Router};
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};
use tower::{Layer, Service, ServiceBuilder};

const NL: Framing = Framing::Newline;

/// The error object a call was answered with.
fn remote(result: Result<Value, Error>) -> ErrorObject {
    match result {
        Err(Error::Remote { source, .. }) => source,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

/// Adds `stall`, which never answers; the receiver hears when its call's
/// cancellation token fires.
fn add_stall(router: &mut Router) -> tokio::sync::oneshot::Receiver<()> {
    let (cancelled_tx, cancelled) = tokio::sync::oneshot::channel::<()>();
    let cancelled_tx = Arc::new(Mutex::new(Some(cancelled_tx)));
    router.method("stall", move |cx: Context| {
        let cancelled_tx = cancelled_tx.clone();
        async move {
            // Work spawned with the call's token learns that it was dropped.
            let token = cx.cancellation().clone();
            tokio::spawn(async move {
                token.cancelled().await;
                if let Some(tx) = cancelled_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            });
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        }
    });
    cancelled
}

/// Calls `stall` (see `add_stall`): a timeout answers it, naming the
/// method, and fires its token.
async fn stall_times_out(client: &rpcpeer::Peer, cancelled: tokio::sync::oneshot::Receiver<()>) {
    let err = remote(within("stall", client.request::<Value>("stall", ())).await);
    assert_eq!(err.code, ErrorObject::HANDLER_TIMEOUT);
    assert!(err.message.contains("`stall`"), "{}", err.message);
    within("the handler's token", cancelled)
        .await
        .expect("the token fired");
}

#[tokio::test]
async fn a_timeout_layer_answers_handler_timeout_and_cancels_the_handler() {
    let mut router = Router::new();
    let cancelled = add_stall(&mut router);
    router.notification("stall_note", || async {
        std::future::pending::<()>().await;
    });
    add_sync(&mut router);
    router.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
        200,
    )));
    let addr = serve(router, NL).await;

    let (client, _driver) = connect(addr, NL, Router::new()).await;
    stall_times_out(&client, cancelled).await;

    // A notification over the limit is dropped unanswered; the connection goes on.
    let mut wire = Wire::connect(addr, NL).await;
    wire.send(r#"{"jsonrpc":"2.0","method":"stall_note"}"#)
        .await;
    wire.expect_no_reply().await;
}

/// A handler that counts how many of its calls run at once and waits for
/// the test to let each one finish.
struct Gate {
    running: AtomicUsize,
    most: AtomicUsize,
    finished: AtomicUsize,
    open: Semaphore,
    changed: Notify,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            open: Semaphore::new(0),
            changed: Notify::new(),
        })
    }

    fn route(self: &Arc<Self>, router: &mut Router) {
        let gate = self.clone();
        router.method("work", move || {
            let gate = gate.clone();
            async move {
                let now = gate.running.fetch_add(1, Ordering::SeqCst) + 1;
                gate.most.fetch_max(now, Ordering::SeqCst);
                gate.changed.notify_waiters();
                gate.open.acquire().await.expect("open").forget();
                gate.running.fetch_sub(1, Ordering::SeqCst);
                gate.finished.fetch_add(1, Ordering::SeqCst);
                gate.changed.notify_waiters();
                Ok::<_, ErrorObject>(now)
            }
        });
    }

    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        within(what, async {
            loop {
                let changed = self.changed.notified();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_concurrency_limit_holds_across_connections() {
    let gate = Gate::new();
    let mut router = Router::new();
    gate.route(&mut router);
    router.layer(tower::limit::ConcurrencyLimitLayer::new(2));
    let addr = serve(router, NL).await;

    let (a, _da) = connect(addr, NL, Router::new()).await;
    let (b, _db) = connect(addr, NL, Router::new()).await;
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let peer = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { peer.request::<usize>("work", ()).await })
        })
        .collect();
    gate.until("two calls running", |g| {
        g.running.load(Ordering::SeqCst) >= 2
    })
    .await;
    // One call let through at a time: whatever else has arrived by then
    // waits in the layer, so no more than two ever run.
    for n in 1..=10 {
        gate.open.add_permits(1);
        gate.until("the next call finished", |g| {
            g.finished.load(Ordering::SeqCst) == n
        })
        .await;
        let running = gate.running.load(Ordering::SeqCst);
        assert!(running <= 2, "{running} calls run at once");
    }
    for call in calls {
        let running = within("a call", call).await.expect("task").expect("answer");
        assert!(running <= 2, "{running} calls ran at once");
    }
    assert_eq!(gate.most.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn load_shed_over_a_concurrency_limit_answers_server_busy() {
    let gate = Gate::new();
    let mut router = Router::new();
    gate.route(&mut router);
    router.layer(ServiceBuilder::new().load_shed().concurrency_limit(1));
    let addr = serve(router, NL).await;

    let (client, _driver) = connect(addr, NL, Router::new()).await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.request::<usize>("work", ()).await }
    });
    gate.until("the first call running", |g| {
        g.running.load(Ordering::SeqCst) == 1
    })
    .await;
    let err = remote(within("the second call", client.request::<Value>("work", ())).await);
    assert_eq!(err.code, ErrorObject::SERVER_BUSY);
    assert!(err.message.contains("`work`"), "{}", err.message);
    gate.open.add_permits(1);
    let first = within("the first call", first).await.expect("task");
    assert_eq!(first.expect("answer"), 1);
}

#[tokio::test]
async fn a_logging_layer_sees_every_call_including_batch_items_and_notifications() {
    // (method, id) of every call the layer saw.
    type Seen = Vec<(String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let mut router = Router::new();
    router.method(
        "echo",
        |(x,): (Value,)| async move { Ok::<_, ErrorObject>(x) },
    );
    router.notification("note", |_: Value| async {});
    add_sync(&mut router);
    let log = seen.clone();
    router.layer(tower::util::MapRequestLayer::new(move |call: Call| {
        let id = call.id().map(ToString::to_string);
        log.lock().unwrap().push((call.method().to_owned(), id));
        call
    }));
    let addr = serve(router, NL).await;

    let mut wire = Wire::connect(addr, NL).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"echo","params":["one"],"id":1}"#)
        .await;
    assert_eq!(reply["result"], "one");
    wire.send(r#"{"jsonrpc":"2.0","method":"note","params":[1]}"#)
        .await;
    let batch = wire
        .call(
            r#"[{"jsonrpc":"2.0","method":"echo","params":["two"],"id":2},
                {"jsonrpc":"2.0","method":"note","params":[2]},
                {"jsonrpc":"2.0","method":"missing","id":3},
                {"jsonrpc":"2.0","method":"echo","params":["four"],"id":4}]"#,
        )
        .await;
    assert_eq!(batch[0]["result"], "two");
    assert_eq!(batch[1]["error"]["code"], ErrorObject::METHOD_NOT_FOUND);
    assert_eq!(batch[2]["result"], "four");
    // `sync` runs alone, after everything sent before it has finished.
    wire.expect_no_reply().await;

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let id = |n: &str| Some(n.to_owned());
    let mut expected = vec![
        ("echo".to_owned(), id("1")),
        ("note".to_owned(), None),
        ("echo".to_owned(), id("2")),
        ("note".to_owned(), None),
        ("missing".to_owned(), id("3")),
        ("echo".to_owned(), id("4")),
        ("sync".to_owned(), id("\"sync\"")),
    ];
    expected.sort();
    assert_eq!(seen, expected);
}

/// A layer of the application's own: refuses some methods itself.
#[derive(Clone)]
struct Refuse;

struct Refusing<S>(S);

impl<S> Layer<S> for Refuse {
    type Service = Refusing<S>;

    fn layer(&self, inner: S) -> Refusing<S> {
        Refusing(inner)
    }
}

impl<S> Service<Call> for Refusing<S>
where
    S: Service<Call, Response = Reply, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        match call.method() {
            "secret" => Box::pin(ready(Err(ErrorObject::new(-32050, "not for you").into()))),
            "broken" => Box::pin(ready(Err(std::io::Error::other("disk on fire").into()))),
            "answered" => Box::pin(ready(Ok(Reply::error(ErrorObject::new(
                -32051,
                "answered by the layer",
            ))))),
            _ => Box::pin(self.0.call(call)),
        }
    }
}

/// A layer that notes `name` in `order` for each call it passes on.
fn noting(
    order: &Arc<Mutex<Vec<&'static str>>>,
    name: &'static str,
) -> tower::util::MapRequestLayer<impl Fn(Call) -> Call + Clone + Send + Sync + 'static> {
    let order = order.clone();
    tower::util::MapRequestLayer::new(move |call: Call| {
        order.lock().unwrap().push(name);
        call
    })
}

#[tokio::test]
async fn a_layers_errors_become_error_objects_and_later_layers_wrap_earlier_ones() {
    let order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let mut router = Router::new();
    for method in ["secret", "broken", "answered", "open"] {
        router.method(method, || async { Ok::<_, ErrorObject>("ran") });
    }
    router.layer(noting(&order, "inner"));
    router.layer(Refuse);
    router.layer(noting(&order, "outer"));
    let addr = serve(router, NL).await;
    let (client, _driver) = connect(addr, NL, Router::new()).await;

    let err = remote(client.request::<Value>("secret", ()).await);
    assert_eq!((err.code, err.message.as_str()), (-32050, "not for you"));
    let err = remote(client.request::<Value>("broken", ()).await);
    assert_eq!(err.code, ErrorObject::INTERNAL_ERROR);
    assert!(
        !err.message.contains("fire"),
        "details stay in the log: {}",
        err.message
    );
    let err = remote(client.request::<Value>("answered", ()).await);
    assert_eq!(err.code, -32051);
    assert_eq!(
        client.request::<Value>("open", ()).await.unwrap(),
        json!("ran")
    );
    // Each refused call passed the outer layer only; the last one all three.
    assert_eq!(
        *order.lock().unwrap(),
        ["outer", "outer", "outer", "outer", "inner"]
    );
}

/// Serves `router`, then starts `per_peer` calls of `work` over each of
/// two connections, each call on a task of its own.
async fn work_over_two_connections(
    router: Router,
    per_peer: usize,
) -> Vec<tokio::task::JoinHandle<Result<usize, Error>>> {
    let addr = serve(router, NL).await;
    let (a, _) = connect(addr, NL, Router::new()).await;
    let (b, _) = connect(addr, NL, Router::new()).await;
    (0..per_peer)
        .flat_map(|_| [a.clone(), b.clone()])
        .map(|peer| tokio::spawn(async move { peer.request::<usize>("work", ()).await }))
        .collect()
}

/// Lets the gate's calls finish one at a time, checking after each that
/// no more than `most` run at once; then that every call was answered and
/// that `most` did run at once.
async fn drain(
    gate: &Gate,
    calls: Vec<tokio::task::JoinHandle<Result<usize, Error>>>,
    most: usize,
) {
    for n in 1..=calls.len() {
        gate.open.add_permits(1);
        gate.until("the next call finished", |g| {
            g.finished.load(Ordering::SeqCst) == n
        })
        .await;
        let running = gate.running.load(Ordering::SeqCst);
        assert!(running <= most, "{running} calls run at once");
    }
    for call in calls {
        let running = within("a call", call).await.expect("task").expect("answer");
        assert!(running <= most, "{running} calls ran at once");
    }
    assert_eq!(gate.most.load(Ordering::SeqCst), most);
}

#[tokio::test]
async fn a_connection_layers_limit_counts_the_calls_of_each_connection_apart() {
    let gate = Gate::new();
    let mut router = Router::new();
    gate.route(&mut router);
    router.connection_layer(tower::limit::ConcurrencyLimitLayer::new(1));
    let calls = work_over_two_connections(router, 3).await;
    // One call of each connection runs; a limit shared by both would have
    // let only one through.
    gate.until("a call of each connection running", |g| {
        g.running.load(Ordering::SeqCst) >= 2
    })
    .await;
    drain(&gate, calls, 2).await;
}

#[tokio::test]
async fn under_connection_layers_the_routers_limit_still_counts_every_connection() {
    let gate = Gate::new();
    let mut router = Router::new();
    gate.route(&mut router);
    router.layer(tower::limit::ConcurrencyLimitLayer::new(1));
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    router.connection_layer(tower::util::MapRequestLayer::new(move |call: Call| {
        count.fetch_add(1, Ordering::SeqCst);
        call
    }));
    let calls = work_over_two_connections(router, 3).await;
    gate.until("one call running", |g| {
        g.running.load(Ordering::SeqCst) >= 1
    })
    .await;
    drain(&gate, calls, 1).await;
    assert_eq!(seen.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_call_goes_through_its_connections_layers_then_the_routers() {
    let order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let mut router = Router::new();
    for method in ["secret", "broken", "open"] {
        router.method(method, || async { Ok::<_, ErrorObject>("ran") });
    }
    router.layer(noting(&order, "router"));
    router.connection_layer(Refuse);
    router.connection_layer(noting(&order, "connection"));
    let addr = serve(router, NL).await;
    let (client, _driver) = connect(addr, NL, Router::new()).await;

    // A connection layer's errors are answered as the router's are.
    let err = remote(within("secret", client.request::<Value>("secret", ())).await);
    assert_eq!((err.code, err.message.as_str()), (-32050, "not for you"));
    let err = remote(within("broken", client.request::<Value>("broken", ())).await);
    assert_eq!(err.code, ErrorObject::INTERNAL_ERROR);
    let open = within("open", client.request::<Value>("open", ())).await;
    assert_eq!(open.unwrap(), json!("ran"));
    // The refused calls stopped in the connection's layers.
    assert_eq!(
        *order.lock().unwrap(),
        ["connection", "connection", "connection", "router"]
    );
}

#[tokio::test]
async fn a_connection_layers_timeout_cancels_a_handler_under_the_routers_layers() {
    let mut router = Router::new();
    let cancelled = add_stall(&mut router);
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    router.layer(tower::limit::ConcurrencyLimitLayer::new(8));
    router.connection_layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
        200,
    )));
    let addr = serve(router, NL).await;

    let (client, _driver) = connect(addr, NL, Router::new()).await;
    stall_times_out(&client, cancelled).await;
    // The router's limit got its capacity back: the connection goes on.
    let pong = within("ping", client.request::<Value>("ping", ())).await;
    assert_eq!(pong.unwrap(), json!("pong"));
}

//! `#[rpcpeer::api]`: two sides, each serving its trait and calling the other's through the generated client, over TCP on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{connect, serve, within, Wire};
use rpcpeer::{Concurrency, Context, Error, ErrorObject, Peer, Router};
use rpcpeer_stream::Framing;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// A place in a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Zero-based line.
    pub line: u32,
    /// Zero-based column.
    pub character: u32,
}

/// An error of the application's, turned into an error object on the wire.
#[derive(Debug)]
pub struct NotFound(String);

impl From<NotFound> for ErrorObject {
    fn from(err: NotFound) -> Self {
        ErrorObject::new(-32050, format!("no symbol named {}", err.0))
    }
}

/// What the editor serves: the server calls these.
#[rpcpeer::api]
pub trait Editor {
    /// Shows a message.
    #[rpc(name = "window/showMessage", params = "name")]
    async fn show_message(&self, text: String);

    /// Where the cursor is.
    #[rpc(name = "editor/cursor")]
    async fn cursor(&self) -> Position;
}

/// What the language server serves.
#[rpcpeer::api]
pub trait LanguageServer {
    /// The word at a position, after asking the editor for its cursor.
    #[rpc(name = "textDocument/hover", params = "transparent")]
    async fn hover(&self, at: Position, cx: Context) -> Result<Option<String>, ErrorObject>;

    /// Looks a symbol up; unknown ones are an application error.
    async fn find(&self, name: String, limit: u32) -> Result<Vec<Position>, NotFound>;

    /// How many calls this instance answered (per connection).
    async fn calls(&self) -> usize;

    /// Never answers; work it spawned hears when the caller gives up.
    async fn wait_forever(&self, cx: Context) -> Result<(), ErrorObject>;

    /// Changes state: runs alone.
    #[rpc(concurrency = "exclusive")]
    async fn reset(&self) -> Result<(), ErrorObject>;

    /// Logs a line; in order, like every notification.
    #[rpc(name = "$/log", concurrency = "in_order")]
    async fn log(&self, line: String);
}

/// One language server per connection, holding the editor's client.
struct Server {
    editor: EditorClient,
    calls: AtomicUsize,
    cancelled: mpsc::UnboundedSender<&'static str>,
    logged: mpsc::UnboundedSender<String>,
}

impl LanguageServer for Server {
    async fn hover(&self, at: Position, cx: Context) -> Result<Option<String>, ErrorObject> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // The per-connection instance's client and the context's peer reach
        // the same editor.
        let cursor = EditorClient::new(cx.peer().clone()).cursor().await?;
        self.editor
            .show_message(format!("hover at {}:{}", at.line, at.character))
            .await?;
        Ok((cursor == at).then(|| "the word under the cursor".to_owned()))
    }

    async fn find(&self, name: String, limit: u32) -> Result<Vec<Position>, NotFound> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if name != "main" {
            return Err(NotFound(name));
        }
        Ok((0..limit)
            .map(|line| Position { line, character: 3 })
            .collect())
    }

    async fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    async fn wait_forever(&self, cx: Context) -> Result<(), ErrorObject> {
        // The handler's own future is dropped when the call is cancelled;
        // work it spawned learns of it through the token.
        let _ = self.cancelled.send("waiting");
        let token = cx.cancellation().clone();
        let cancelled = self.cancelled.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            let _ = cancelled.send("cancelled");
        });
        std::future::pending::<()>().await;
        Ok(())
    }

    async fn reset(&self) -> Result<(), ErrorObject> {
        self.calls.store(0, Ordering::Relaxed);
        Ok(())
    }

    async fn log(&self, line: String) {
        let _ = self.logged.send(line);
    }
}

struct MyEditor {
    cursor: Position,
    shown: mpsc::UnboundedSender<String>,
}

impl Editor for MyEditor {
    async fn show_message(&self, text: String) {
        let _ = self.shown.send(text);
    }

    async fn cursor(&self) -> Position {
        self.cursor.clone()
    }
}

struct Harness {
    cancelled: mpsc::UnboundedReceiver<&'static str>,
    logged: mpsc::UnboundedReceiver<String>,
    addr: std::net::SocketAddr,
}

async fn start_server() -> Harness {
    let (cancel_tx, cancelled) = mpsc::unbounded_channel();
    let (log_tx, logged) = mpsc::unbounded_channel();
    let mut router = Router::new();
    Server::register_per_connection(&mut router, move |peer: &Peer| Server {
        editor: EditorClient::new(peer.clone()),
        calls: AtomicUsize::new(0),
        cancelled: cancel_tx.clone(),
        logged: log_tx.clone(),
    });
    common::add_sync(&mut router);
    let addr = serve(router, Framing::ContentLength).await;
    Harness {
        cancelled,
        logged,
        addr,
    }
}

/// An editor connected to the server at `addr`, and what it is shown.
async fn editor(
    addr: std::net::SocketAddr,
) -> (LanguageServerClient, mpsc::UnboundedReceiver<String>) {
    let (shown, seen) = mpsc::unbounded_channel();
    let mut router = Router::new();
    MyEditor {
        cursor: Position {
            line: 4,
            character: 2,
        },
        shown,
    }
    .register(&mut router);
    let (peer, _driver) = connect(addr, Framing::ContentLength, router).await;
    (LanguageServerClient::new(peer), seen)
}

#[tokio::test]
async fn each_side_calls_the_other_through_its_generated_client() {
    let harness = start_server().await;
    let (server, mut shown) = editor(harness.addr).await;

    let at = Position {
        line: 4,
        character: 2,
    };
    let word = within("hover", server.hover(at)).await.unwrap();
    assert_eq!(word.as_deref(), Some("the word under the cursor"));
    let elsewhere = Position {
        line: 9,
        character: 0,
    };
    assert_eq!(
        within("hover", server.hover(elsewhere)).await.unwrap(),
        None
    );
    // The server's notifications, in the order it sent them.
    for expected in ["hover at 4:2", "hover at 9:0"] {
        let text = within("a shown message", shown.recv()).await;
        assert_eq!(text.as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn results_and_application_errors_come_back_typed() {
    let harness = start_server().await;
    let server = editor(harness.addr).await.0;

    let found = within("find", server.find("main".into(), 2)).await.unwrap();
    assert_eq!(
        found,
        [
            Position {
                line: 0,
                character: 3
            },
            Position {
                line: 1,
                character: 3
            }
        ]
    );
    match within("find", server.find("nothing".into(), 1)).await {
        Err(Error::Remote { method, source }) => {
            assert_eq!(method, "find");
            assert_eq!(source.code, -32050);
            assert_eq!(source.message, "no symbol named nothing");
        }
        other => panic!("expected the application's error, got {other:?}"),
    }
    // A plain return type is a request too.
    assert_eq!(within("calls", server.calls()).await.unwrap(), 2);
    within("reset", server.reset()).await.unwrap();
    assert_eq!(within("calls", server.calls()).await.unwrap(), 0);
}

#[tokio::test]
async fn each_connection_gets_its_own_implementation() {
    let harness = start_server().await;
    let first = editor(harness.addr).await.0;
    let second = editor(harness.addr).await.0;
    within("find", first.find("main".into(), 1)).await.unwrap();
    within("find", first.find("main".into(), 1)).await.unwrap();
    within("find", second.find("main".into(), 1)).await.unwrap();
    assert_eq!(within("calls", first.calls()).await.unwrap(), 2);
    assert_eq!(within("calls", second.calls()).await.unwrap(), 1);
}

#[tokio::test]
async fn notifications_arrive_in_the_order_sent() {
    let mut harness = start_server().await;
    let server = editor(harness.addr).await.0;
    for i in 0..50 {
        server.log(format!("line {i}")).await.unwrap();
    }
    for i in 0..50 {
        let line = within("a log line", harness.logged.recv()).await;
        assert_eq!(line, Some(format!("line {i}")));
    }
}

#[tokio::test]
async fn dropping_the_callers_future_cancels_the_handler() {
    let mut harness = start_server().await;
    let server = editor(harness.addr).await.0;
    let mut call = Box::pin(server.wait_forever());
    tokio::select! {
        answer = &mut call => panic!("wait_forever answered: {answer:?}"),
        started = within("the handler's start", harness.cancelled.recv()) => {
            assert_eq!(started, Some("waiting"));
        }
    }
    // Gives up: the client's future is dropped while the call runs.
    drop(call);
    let seen = within("the handler's token", harness.cancelled.recv()).await;
    assert_eq!(seen, Some("cancelled"));
}

#[tokio::test]
async fn the_wire_carries_the_declared_names_and_param_styles() {
    let mut harness = start_server().await;
    let mut wire = Wire::connect(harness.addr, Framing::ContentLength).await;

    // Transparent: the params are the position itself. The server calls
    // back the raw client, which sees the exact frames.
    wire.send(r#"{"jsonrpc":"2.0","method":"textDocument/hover","params":{"line":1,"character":1},"id":1}"#).await;
    let cursor = wire.recv().await;
    assert_eq!(cursor["method"], "editor/cursor");
    assert!(cursor.get("params").is_none(), "no params: {cursor}");
    wire.send(
        &json!({"jsonrpc": "2.0", "id": cursor["id"], "result": {"line": 1, "character": 1}})
            .to_string(),
    )
    .await;
    // The notification is queued before the handler answers, but the
    // answer may be written first.
    let (first, second) = (wire.recv().await, wire.recv().await);
    let (shown, answer) = if first.get("method").is_some() {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(
        shown,
        json!({"jsonrpc": "2.0", "method": "window/showMessage", "params": {"text": "hover at 1:1"}})
    );
    assert_eq!(answer["result"], "the word under the cursor");

    // The handler takes params by position and by name alike.
    let by_position = wire
        .call(r#"{"jsonrpc":"2.0","method":"find","params":["main",1],"id":2}"#)
        .await;
    assert_eq!(by_position["result"], json!([{"line": 0, "character": 3}]));
    let by_name = wire
        .call(r#"{"jsonrpc":"2.0","method":"find","params":{"limit":1,"name":"main"},"id":3}"#)
        .await;
    assert_eq!(by_name["result"], by_position["result"]);
    let wrong = wire
        .call(r#"{"jsonrpc":"2.0","method":"find","params":["main"],"id":4}"#)
        .await;
    assert_eq!(wrong["error"]["code"], ErrorObject::INVALID_PARAMS);
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "the message names the missing param: {wrong}"
    );

    // A cancel from the caller answers the call -32800 and fires the token.
    wire.send(r#"{"jsonrpc":"2.0","method":"wait_forever","id":5}"#)
        .await;
    assert_eq!(
        within("the handler's start", harness.cancelled.recv()).await,
        Some("waiting")
    );
    wire.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":5}}"#)
        .await;
    let cancelled = wire.recv().await;
    assert_eq!(cancelled["id"], 5);
    assert_eq!(cancelled["error"]["code"], ErrorObject::REQUEST_CANCELLED);
    assert_eq!(
        within("the handler's token", harness.cancelled.recv()).await,
        Some("cancelled")
    );
}

#[test]
fn the_router_knows_each_methods_settings_and_the_client_its_names() {
    let mut router = Router::new();
    let (cancelled, _) = mpsc::unbounded_channel();
    let (logged, _) = mpsc::unbounded_channel();
    Server::register_per_connection(&mut router, move |peer: &Peer| Server {
        editor: EditorClient::new(peer.clone()),
        calls: AtomicUsize::new(0),
        cancelled: cancelled.clone(),
        logged: logged.clone(),
    });
    let reset = router.method_info("reset").unwrap();
    assert_eq!(reset.concurrency(false), Concurrency::Exclusive);
    assert_eq!(reset.doc(), Some("Changes state: runs alone."));
    let log = router.method_info("$/log").unwrap();
    assert!(log.is_notification());
    assert_eq!(log.concurrency(true), Concurrency::InOrder);
    let find = router.method_info("find").unwrap();
    assert_eq!(find.param_names(), ["name", "limit"]);
    assert!(!find.is_notification());

    assert_eq!(LanguageServerClient::HOVER, "textDocument/hover");
    assert_eq!(EditorClient::SHOW_MESSAGE, "window/showMessage");
    assert_eq!(
        LanguageServerClient::METHODS,
        [
            "textDocument/hover",
            "find",
            "calls",
            "wait_forever",
            "reset",
            "$/log"
        ]
    );
    let names: Vec<_> = router.methods().iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        [
            "$/log",
            "calls",
            "find",
            "reset",
            "textDocument/hover",
            "wait_forever"
        ]
    );
}

/// A trait in LSP's style throughout: every method's one param is its
/// params, and the lifecycle methods have none.
#[rpcpeer::api(params = "transparent")]
pub trait Lifecycle {
    /// Opens the document at a position; answers where it opened.
    #[rpc(name = "lifecycle/open")]
    async fn open(&self, at: Position) -> Position;

    /// Answers `null`, as LSP's `shutdown` does.
    async fn shutdown(&self) -> Result<(), ErrorObject>;

    /// A notification without params, as LSP's `exit`.
    async fn exit(&self);
}

struct Document {
    exited: mpsc::UnboundedSender<()>,
}

impl Lifecycle for Document {
    async fn open(&self, at: Position) -> Position {
        at
    }

    async fn shutdown(&self) -> Result<(), ErrorObject> {
        Ok(())
    }

    async fn exit(&self) {
        let _ = self.exited.send(());
    }
}

#[tokio::test]
async fn a_transparent_trait_may_have_methods_without_params() {
    let (exited, mut exits) = mpsc::unbounded_channel();
    let addr = serve(Document { exited }.into_router(), Framing::ContentLength).await;

    // On the wire: the one param is the params, and none means none.
    let mut wire = Wire::connect(addr, Framing::ContentLength).await;
    let opened = wire
        .call(r#"{"jsonrpc":"2.0","method":"lifecycle/open","params":{"line":2,"character":5},"id":1}"#)
        .await;
    assert_eq!(opened["result"], json!({"line": 2, "character": 5}));
    let shutdown = wire
        .call(r#"{"jsonrpc":"2.0","method":"shutdown","id":2}"#)
        .await;
    assert_eq!(shutdown, json!({"jsonrpc": "2.0", "id": 2, "result": null}));

    // Through the client, which sends no params for them.
    let (peer, _driver) = connect(addr, Framing::ContentLength, Router::new()).await;
    let client = LifecycleClient::new(peer);
    let at = Position {
        line: 7,
        character: 0,
    };
    assert_eq!(within("open", client.open(at.clone())).await.unwrap(), at);
    within("shutdown", client.shutdown()).await.unwrap();
    within("exit", client.exit()).await.unwrap();
    assert_eq!(within("the exit", exits.recv()).await, Some(()));
}

/// Names a user may well choose that the generated code also uses: none
/// may change what the trait means.
mod names_the_expansion_uses {
    use super::*;
    use rpcpeer::progress::Progress;

    /// Named like the struct the expansion decodes `set`'s params into.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct SetParams {
        value: u32,
    }

    /// Named like a type parameter of the expansion.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct S(u32);

    /// Named like the struct the client encodes named params with.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Named {
        who: String,
    }

    /// A trait named like a type parameter, whose params are named like
    /// the expansion's own bindings.
    #[rpcpeer::api]
    trait T {
        async fn set(&self, imp: SetParams, cx: u32, params: S, get: S) -> u32;

        #[rpc(params = "name")]
        async fn greet(&self, named: Named, router: String, context: Context) -> String;

        #[rpc(params = "transparent")]
        async fn store(&self, cx: SetParams) -> u32;

        async fn count(&self, cx: u32, progress: Progress<u32>) -> u32;
    }

    struct Impl;

    impl T for Impl {
        async fn set(&self, imp: SetParams, cx: u32, params: S, get: S) -> u32 {
            imp.value + cx + params.0 + get.0
        }

        async fn greet(&self, named: Named, router: String, context: Context) -> String {
            format!("{} {} via {}", context.method(), named.who, router)
        }

        async fn store(&self, cx: SetParams) -> u32 {
            cx.value
        }

        async fn count(&self, cx: u32, progress: Progress<u32>) -> u32 {
            for n in 1..=cx {
                let _ = progress.report(n).await;
            }
            cx
        }
    }

    #[tokio::test]
    async fn a_trait_named_t_with_params_named_imp_and_cx_works() {
        let addr = serve(Impl.into_router(), Framing::Newline).await;
        let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
        let client = TClient::new(peer);
        let sum = client.set(SetParams { value: 1 }, 2, S(3), S(4));
        assert_eq!(within("set", sum).await.unwrap(), 10);
        let who = Named { who: "ada".into() };
        let greeting = client.greet(who, "tcp".into());
        assert_eq!(
            within("greet", greeting).await.unwrap(),
            "greet ada via tcp"
        );
        let stored = client.store(SetParams { value: 5 });
        assert_eq!(within("store", stored).await.unwrap(), 5);
        assert_eq!(within("count", client.count(3).answer()).await.unwrap(), 3);
        assert_eq!(TClient::METHODS, ["set", "greet", "store", "count"]);
    }
}

/// One type implementing two traits, each registered per connection with
/// its own `make`.
mod two_traits_on_one_type {
    use super::*;

    #[rpcpeer::api]
    pub trait Left {
        async fn left(&self) -> usize;
    }

    #[rpcpeer::api]
    pub trait Right {
        async fn right(&self) -> usize;
    }

    struct Both(usize);

    impl Left for Both {
        async fn left(&self) -> usize {
            self.0
        }
    }

    impl Right for Both {
        async fn right(&self) -> usize {
            self.0
        }
    }

    #[tokio::test]
    async fn each_trait_gets_the_instance_its_own_make_made() {
        let made = std::sync::Arc::new(AtomicUsize::new(0));
        let mut router = Router::new();
        let count = made.clone();
        <Both as Left>::register_per_connection(&mut router, move |_: &Peer| {
            count.fetch_add(1, Ordering::SeqCst);
            Both(1)
        });
        let count = made.clone();
        <Both as Right>::register_per_connection(&mut router, move |_: &Peer| {
            count.fetch_add(1, Ordering::SeqCst);
            Both(2)
        });
        let addr = serve(router, Framing::Newline).await;
        let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
        let (left, right) = (LeftClient::new(peer.clone()), RightClient::new(peer));
        assert_eq!(within("left", left.left()).await.unwrap(), 1);
        assert_eq!(within("right", right.right()).await.unwrap(), 2);
        // Each instance is made once per connection, then kept.
        assert_eq!(within("left", left.left()).await.unwrap(), 1);
        assert_eq!(within("right", right.right()).await.unwrap(), 2);
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }
}

/// Methods named with a keyword, and methods left out by `#[cfg]`.
mod keywords_and_cfg {
    use super::*;

    #[rpcpeer::api]
    pub trait Game {
        /// Named `move` on the wire, as the method is in Rust.
        async fn r#move(&self, to: u32) -> u32;

        #[rpc(name = "kind")]
        async fn r#type(&self) -> String;

        /// Left out of the registration, the client and `METHODS` alike.
        #[cfg(not(test))]
        async fn hidden(&self) -> u32;

        #[cfg(test)]
        async fn shown(&self) -> u32;
    }

    struct Board;

    impl Game for Board {
        async fn r#move(&self, to: u32) -> u32 {
            to + 1
        }

        async fn r#type(&self) -> String {
            "chess".into()
        }

        async fn shown(&self) -> u32 {
            7
        }
    }

    #[tokio::test]
    async fn keyword_methods_travel_under_their_bare_names_and_cfg_leaves_methods_out() {
        assert_eq!(GameClient::MOVE, "move");
        assert_eq!(GameClient::TYPE, "kind");
        assert_eq!(GameClient::METHODS, ["move", "kind", "shown"]);
        let addr = serve(Board.into_router(), Framing::Newline).await;
        let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
        let client = GameClient::new(peer);
        assert_eq!(within("move", client.r#move(3)).await.unwrap(), 4);
        assert_eq!(within("kind", client.r#type()).await.unwrap(), "chess");
        assert_eq!(within("shown", client.shown()).await.unwrap(), 7);

        let mut wire = Wire::connect(addr, Framing::Newline).await;
        let moved = wire
            .call(r#"{"jsonrpc":"2.0","method":"move","params":[1],"id":1}"#)
            .await;
        assert_eq!(moved["result"], 2);
        let hidden = wire
            .call(r#"{"jsonrpc":"2.0","method":"hidden","id":2}"#)
            .await;
        assert_eq!(hidden["error"]["code"], -32601, "{hidden}");
    }
}

//! Arbitrary UTF-8 through `Router::handle_text`, with methods of every
//! shape (typed params by position or by name, no params, a context,
//! notifications, each concurrency mode, a task of its own, an error with
//! data, a call back to the peer): no panic, and every reply is valid
//! JSON-RPC: one reply object per request or rejected message, in order,
//! with its id and in its version (2.0 inside a batch), none when nothing
//! asked for one, and -32601 exactly for the methods the router lacks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rpcpeer::message::{parse, Frame, Message, Rejected};
use rpcpeer::{Concurrency, Context, ErrorObject, Router, Session, Version};
use rpcpeer_fuzz::{check_reply, elements, Form};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (runtime, router) = setup();
    let reply = runtime.block_on(router.handle_text(text, &Session::new()));
    let (batch, expected) = expected_replies(router, text);
    let Some(reply) = reply else {
        assert!(
            expected.is_empty(),
            "{text:?} got no reply, expected {expected:?}"
        );
        return;
    };
    assert!(!expected.is_empty(), "{text:?} needs no reply, got {reply}");
    if !batch {
        assert_eq!(expected.len(), 1);
        check(&reply, &expected[0], text);
        return;
    }
    let replies = elements(&reply)
        .unwrap_or_else(|e| panic!("a batch's reply is not an array ({e}): {reply}"));
    assert_eq!(replies.len(), expected.len(), "{text:?} got {reply}");
    for (reply, expected) in replies.iter().zip(&expected) {
        check(reply.get(), expected, text);
    }
});

/// The most entries `handle_text` takes in a batch (`Config::max_batch_len`'s
/// documented default).
const MAX_BATCH_LEN: usize = 1024;

/// What one reply must be.
#[derive(Debug)]
struct Expected {
    form: Form,
    id: String,
    /// The error code it must carry, when it is known from the message.
    code: Option<Code>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// Exactly this error.
    Is(i64),
    /// A result, or an error that is not about the message's form or the
    /// method's existence.
    Ran,
}

fn check(reply: &str, expected: &Expected, text: &str) {
    let checked = check_reply(reply);
    assert_eq!(checked.form, expected.form, "{text:?} got {reply}");
    assert_eq!(checked.id, expected.id, "{text:?} got {reply}");
    match expected.code {
        Some(Code::Is(code)) => assert_eq!(checked.code, Some(code), "{text:?} got {reply}"),
        Some(Code::Ran) => assert!(
            !matches!(
                checked.code,
                Some(
                    ErrorObject::PARSE_ERROR
                        | ErrorObject::INVALID_REQUEST
                        | ErrorObject::METHOD_NOT_FOUND
                )
            ),
            "{text:?} is a call to a method the router has, yet got {reply}"
        ),
        None => {}
    }
}

/// Whether the frame is a batch, and the replies it deserves, in order.
fn expected_replies(router: &Router, text: &str) -> (bool, Vec<Expected>) {
    let expect = |item: Result<Message<'_>, Rejected>| match item {
        Err(rejected) => Some(Expected {
            form: form(rejected.version),
            id: id_text(&rejected.id),
            code: Some(Code::Is(rejected.error.code)),
        }),
        Ok(Message::Request(request)) => Some(Expected {
            form: form(request.version),
            id: id_text(&request.id),
            // A notification handler called with an id runs and is answered.
            code: Some(match router.method_info(&request.method) {
                Some(_) => Code::Ran,
                None => Code::Is(ErrorObject::METHOD_NOT_FOUND),
            }),
        }),
        Ok(Message::Notification(_) | Message::Response(_)) => None,
    };
    match parse(text) {
        Frame::Single(item) => (false, expect(item).into_iter().collect()),
        // Refused whole, with one error that is not in an array.
        Frame::Batch(items) if items.len() > MAX_BATCH_LEN => {
            let refused = Expected {
                form: Form::V2,
                id: "null".to_owned(),
                code: Some(Code::Is(ErrorObject::INVALID_REQUEST)),
            };
            (false, vec![refused])
        }
        Frame::Batch(items) => (true, items.into_iter().filter_map(expect).collect()),
    }
}

fn form(version: Version) -> Form {
    match version {
        Version::V1 => Form::V1,
        Version::V2 => Form::V2,
    }
}

fn id_text(id: &rpcpeer::Id) -> String {
    serde_json::to_string(id).unwrap_or_else(|e| panic!("id {id} does not serialize: {e}"))
}

/// One runtime and one router for every input: building them is most of
/// the cost of a run otherwise.
fn setup() -> (&'static tokio::runtime::Runtime, &'static Router) {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static ROUTER: OnceLock<Router> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"))
    });
    (runtime, ROUTER.get_or_init(router))
}

#[derive(serde::Deserialize)]
struct Subtract {
    minuend: i64,
    subtrahend: i64,
}

/// Handlers never panic here: libFuzzer counts a panic as a crash even
/// when the router catches it, so arithmetic wraps.
fn router() -> Router {
    let mut router = Router::new();
    router.method("subtract", |p: Subtract| async move {
        Ok::<_, ErrorObject>(p.minuend.wrapping_sub(p.subtrahend))
    });
    router
        .method("sum", |xs: Vec<i64>| async move {
            Ok::<_, ErrorObject>(xs.iter().fold(0i64, |a, &x| a.wrapping_add(x)))
        })
        .safe();
    router.method("echo", |v: Value| async move { Ok::<_, ErrorObject>(v) });
    router.method("get_data", || async { Ok::<_, ErrorObject>(("hello", 5)) });
    router.method("whoami", |ctx: Context| async move {
        Ok::<_, ErrorObject>((ctx.method().to_owned(), ctx.id().map(ToString::to_string)))
    });
    router.method("fail", |v: Value| async move {
        Err::<(), _>(ErrorObject::new(-32099, "failed on purpose").with_data(v))
    });
    router.method("later", |n: (u8,)| async move {
        for _ in 0..n.0 % 4 {
            tokio::task::yield_now().await;
        }
        Ok::<_, ErrorObject>(n.0)
    });
    router
        .method("alone", || async { Ok::<_, ErrorObject>(true) })
        .concurrency(Concurrency::Exclusive);
    router
        .method("in_turn", |v: Value| async move { Ok::<_, ErrorObject>(v) })
        .concurrency(Concurrency::InOrder);
    router
        .method("spawned", |xs: Vec<i64>| async move {
            Ok::<_, ErrorObject>(xs.len())
        })
        .own_task();
    router.method("ask_back", |v: Value, ctx: Context| async move {
        // No connection behind `handle_text`: the call fails, and says so.
        ctx.peer()
            .request::<Value>("question", v)
            .await
            .map_err(|e| ErrorObject::new(-32098, e.to_string()))
    });
    router.notification("update", |_: Value| async {});
    router.notification("tick", || async {});
    router
}

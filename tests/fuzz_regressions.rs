//! Inputs the fuzz targets (`fuzz/`) found answered wrongly, kept as tests.

mod common;

use common::{serve, spec_router, Wire, FRAMINGS};
use rpcpeer::message::{parse, Frame};
use rpcpeer::{ErrorObject, Session};
use serde_json::Value;

async fn answer(text: &str) -> Value {
    let reply = spec_router()
        .handle_text(text, &Session::new())
        .await
        .expect("a reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply}"))
}

/// `1e400` is valid JSON (RFC 8259 lets a reader limit the range of
/// numbers), but serde_json will not read it as an `f64`: it used to make
/// the whole batch a -32700 parse error, and the request beside it never
/// ran.
#[tokio::test]
async fn a_batch_entry_past_the_range_of_f64_is_refused_alone() {
    let reply = answer(r#"[1e400, {"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}]"#).await;
    assert_eq!(
        reply[0]["error"]["code"],
        ErrorObject::INVALID_REQUEST,
        "{reply}"
    );
    assert_eq!(reply[0]["id"], Value::Null, "{reply}");
    let message = reply[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1e400"),
        "the error names the entry: {reply}"
    );
    assert_eq!(reply[1]["result"], 3, "{reply}");
    assert_eq!(reply[1]["id"], 1, "{reply}");
}

/// RFC 8259 §8.2: a lone surrogate escape is JSON whose meaning is up to
/// the reader. serde_json refuses one in a member name or a string read as
/// text; in a batch entry it used to fail the whole batch.
#[tokio::test]
async fn a_batch_entry_with_a_lone_surrogate_is_refused_alone() {
    let reply = answer(
        r#"["\ud800", {"\udc00":1,"id":7}, {"jsonrpc":"2.0","method":"sum","params":[4],"id":2}]"#,
    )
    .await;
    let items = reply.as_array().expect("a batch reply");
    assert_eq!(items.len(), 3, "{reply}");
    for refused in &items[..2] {
        assert_eq!(
            refused["error"]["code"],
            ErrorObject::INVALID_REQUEST,
            "{reply}"
        );
    }
    assert_eq!(items[2]["result"], 4, "{reply}");
}

#[test]
fn a_batch_of_unreadable_entries_is_still_a_batch() {
    let Frame::Batch(items) = parse(r#"[-1e400, "\udfff"]"#) else {
        panic!("not read as a batch");
    };
    assert_eq!(items.len(), 2);
    for item in items {
        let rejected = item.expect_err("an entry that cannot be read");
        assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
        assert!(rejected.id.is_null());
    }
}

/// Text that is not JSON is still one parse error, however it starts.
#[test]
fn a_broken_batch_is_still_one_parse_error() {
    for text in ["[1e400", "[1e400,]", r#"[{"a":1e400}"#, "[\"\\ud800\" x]"] {
        let Frame::Single(Err(rejected)) = parse(text) else {
            panic!("{text:?} was read as messages");
        };
        assert_eq!(rejected.error.code, ErrorObject::PARSE_ERROR, "{text:?}");
    }
}

/// The same over a connection, in both framings: the driver reads frames
/// with the same parser.
#[tokio::test]
async fn a_connection_answers_the_rest_of_such_a_batch() {
    for framing in FRAMINGS {
        let addr = serve(spec_router(), framing).await;
        let mut wire = Wire::connect(addr, framing).await;
        let reply = wire
            .call(r#"[1e400, {"jsonrpc":"2.0","method":"sum","params":[5,6],"id":"s"}]"#)
            .await;
        assert_eq!(
            reply[0]["error"]["code"],
            ErrorObject::INVALID_REQUEST,
            "{reply}"
        );
        assert_eq!(reply[1]["result"], 11, "{reply}");
        assert_eq!(reply[1]["id"], "s", "{reply}");
    }
}

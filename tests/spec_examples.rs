//! Every example of section 7 of the JSON-RPC 2.0 specification, over real
//! sockets in both framings and through `Router::handle_text`.

mod common;

use common::{serve, spec_router, Wire, FRAMINGS};
use serde_json::{json, Value};

/// (request text, expected reply or `None` for "nothing is returned").
fn examples() -> Vec<(&'static str, Option<Value>)> {
    let invalid = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
    vec![
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
            Some(json!({"jsonrpc": "2.0", "result": 19, "id": 1})),
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
            Some(json!({"jsonrpc": "2.0", "result": -19, "id": 2})),
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
            Some(json!({"jsonrpc": "2.0", "result": 19, "id": 3})),
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
            Some(json!({"jsonrpc": "2.0", "result": 19, "id": 4})),
        ),
        (r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#, None),
        (r#"{"jsonrpc": "2.0", "method": "foobar"}"#, None),
        (
            r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
            Some(json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"})),
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
            Some(json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})),
        ),
        (r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#, Some(invalid.clone())),
        (
            "[\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n  {\"jsonrpc\": \"2.0\", \"method\"\n]",
            Some(json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})),
        ),
        ("[]", Some(invalid.clone())),
        ("[1]", Some(json!([invalid.clone()]))),
        ("[1,2,3]", Some(json!([invalid.clone(), invalid.clone(), invalid.clone()]))),
        (
            r#"[
                {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
                {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
                {"foo": "boo"},
                {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
                {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
            ]"#,
            Some(json!([
                {"jsonrpc": "2.0", "result": 7, "id": "1"},
                {"jsonrpc": "2.0", "result": 19, "id": "2"},
                invalid,
                {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
                {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
            ])),
        ),
        (
            r#"[
                {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
            ]"#,
            None,
        ),
    ]
}

/// Same meaning as the spec's reply: every member equal, except that our
/// error messages may say more than the spec's words, which they must start with.
fn assert_same_meaning(got: &Value, want: &Value, request: &str) {
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "batch reply to {request}: {got}");
            for (g, w) in g.iter().zip(w) {
                assert_same_meaning(g, w, request);
            }
        }
        (Value::Object(g), Value::Object(w)) => {
            let mut gk: Vec<_> = g.keys().collect();
            let mut wk: Vec<_> = w.keys().collect();
            gk.sort();
            wk.sort();
            assert_eq!(gk, wk, "members of the reply to {request}: {got}");
            for (k, wv) in w {
                if k == "message" {
                    let (gm, wm) = (g[k].as_str().unwrap_or(""), wv.as_str().unwrap_or(""));
                    assert!(
                        gm.starts_with(wm),
                        "message {gm:?} should start with {wm:?} ({request})"
                    );
                } else {
                    assert_same_meaning(&g[k], wv, request);
                }
            }
        }
        _ => assert_eq!(got, want, "reply to {request}"),
    }
}

/// Newline framing carries one line per message: the spec's multi-line
/// texts are sent on one line there, verbatim with Content-Length.
fn on_the_wire(text: &str, framing: rpcpeer_stream::Framing) -> String {
    match framing {
        rpcpeer_stream::Framing::Newline => text.replace('\n', " "),
        rpcpeer_stream::Framing::ContentLength => text.to_owned(),
    }
}

#[tokio::test]
async fn every_spec_example_over_tcp_in_both_framings() {
    for framing in FRAMINGS {
        let addr = serve(spec_router(), framing).await;
        let mut wire = Wire::connect(addr, framing).await;
        for (request, want) in examples() {
            wire.send(&on_the_wire(request, framing)).await;
            match want {
                Some(want) => assert_same_meaning(&wire.recv().await, &want, request),
                None => wire.expect_no_reply().await,
            }
        }
    }
}

#[tokio::test]
async fn every_spec_example_without_a_connection() {
    let router = spec_router();
    let session = rpcpeer::Session::new();
    for (request, want) in examples() {
        let got = router.handle_text(request, &session).await;
        match want {
            Some(want) => {
                let got: Value = serde_json::from_str(&got.expect("a reply")).expect("JSON");
                assert_same_meaning(&got, &want, request);
            }
            None => assert_eq!(got, None, "{request} must get no reply"),
        }
    }
}

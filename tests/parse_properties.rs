//! Property tests: whatever text arrives, the parser never panics, and
//! every reply it produces is a valid JSON-RPC error or result object.

use proptest::prelude::*;
use rpcpeer::message::{parse, parse_within, Frame, Message};
use rpcpeer::{ErrorObject, Router, Session};
use serde_json::Value;

/// A JSON-RPC reply object: a version form, an id, exactly one outcome.
fn assert_reply_object(reply: &Value, text: &str) {
    let obj = reply
        .as_object()
        .unwrap_or_else(|| panic!("reply is not an object: {reply} (to {text:?})"));
    assert!(obj.contains_key("id"), "reply without id: {reply}");
    if obj.get("jsonrpc").is_some() {
        assert_eq!(obj["jsonrpc"], "2.0");
        assert!(
            obj.contains_key("result") != obj.contains_key("error"),
            "2.0 reply needs exactly one outcome: {reply}"
        );
    } else {
        assert!(
            obj.contains_key("result") && obj.contains_key("error"),
            "1.0 reply needs both members: {reply}"
        );
    }
    if let Some(err) = obj.get("error").filter(|e| !e.is_null()) {
        assert!(
            err["code"].is_i64(),
            "error code must be an integer: {reply}"
        );
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error needs a message: {reply}"
        );
    }
}

fn router() -> Router {
    let mut router = Router::new();
    router.method("sum", |xs: Vec<i64>| async move {
        Ok::<_, ErrorObject>(xs.iter().sum::<i64>())
    });
    router
}

/// Text that looks like JSON-RPC often enough to reach the deep branches.
fn message_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("jsonrpc"),
        Just("method"),
        Just("params"),
        Just("id"),
        Just("result"),
        Just("error"),
        Just("x")
    ];
    let value = prop_oneof![
        Just("\"2.0\"".to_owned()),
        Just("\"sum\"".to_owned()),
        Just("null".to_owned()),
        Just("[1,2]".to_owned()),
        Just("{\"code\":1,\"message\":\"m\"}".to_owned()),
        Just("true".to_owned()),
        Just("1.5".to_owned()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\\PC{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
    ];
    let member = (key, value).prop_map(|(k, v)| format!("\"{k}\":{v}"));
    let object = prop::collection::vec(member, 0..6).prop_map(|m| format!("{{{}}}", m.join(",")));
    prop_oneof![
        object.clone(),
        prop::collection::vec(object, 0..4).prop_map(|o| format!("[{}]", o.join(","))),
        "\\PC{0,40}",
    ]
}

/// How deep arrays and objects nest in `value` (a scalar is 0).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// JSON values nested up to a few levels, with strings full of brackets,
/// quotes and backslashes to mislead a depth count that reads them.
fn nested_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(Value::from),
        "[\\[\\]{}\"\\\\a]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(12, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z\\[{\"]{0,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_depth_limit_refuses_exactly_the_messages_nested_past_it(
        params in nested_value(),
        limit in 1usize..14,
    ) {
        let params = Value::Array(vec![params]);
        let message = serde_json::json!({"jsonrpc": "2.0", "method": "m", "params": params, "id": 1});
        let text = message.to_string();
        let refused = match parse_within(&text, limit) {
            Frame::Single(Err(rejected)) => rejected.error.message.contains("deeper than"),
            _ => false,
        };
        prop_assert_eq!(refused, depth(&message) > limit, "{} at limit {}", text, limit);
    }

    #[test]
    fn any_text_parses_without_panicking(text in "\\PC{0,64}") {
        let _ = parse(&text);
    }

    #[test]
    fn every_answer_is_a_valid_reply(text in message_like()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let reply = rt.block_on(router().handle_text(&text, &Session::new()));
        let Some(reply) = reply else {
            // No reply: only when every entry was a notification or response.
            let entries = match parse(&text) {
                Frame::Single(item) => vec![item],
                Frame::Batch(items) => items,
            };
            for entry in entries {
                prop_assert!(
                    matches!(entry, Ok(Message::Notification(_) | Message::Response(_))),
                    "{text:?} got no reply"
                );
            }
            return Ok(());
        };
        let reply: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply}"));
        match &reply {
            Value::Array(items) => {
                prop_assert!(!items.is_empty());
                for item in items {
                    assert_reply_object(item, &text);
                    prop_assert_eq!(&item["jsonrpc"], "2.0", "batch entries are answered in 2.0 form");
                }
            }
            other => assert_reply_object(other, &text),
        }
    }
}

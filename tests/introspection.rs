//! `Router::introspection`: `rpc.discover` and `system.describe` on any router.

mod common;

use common::{by_name, serve, Wire};
use rpcpeer::introspection::Service;
use rpcpeer::{ErrorObject, Router, Session};
use rpcpeer_stream::Framing;
use serde_json::{json, Value};

#[derive(serde::Deserialize)]
struct Subtract {
    minuend: i64,
    subtrahend: i64,
}

fn router() -> Router {
    let mut router = Router::new();
    router
        .method("subtract", |p: Subtract| async move {
            Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
        })
        .doc("Subtracts subtrahend from minuend.")
        .safe();
    router.introspection(Service::new("test", "1.2.3"));
    router
}

/// `method`'s result, answered by `router` without a connection.
async fn result(router: &Router, method: &str) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": method, "id": 1}).to_string();
    let reply = router
        .handle_text(&request, &Session::new())
        .await
        .expect("a reply");
    let mut reply: Value = serde_json::from_str(&reply).expect("JSON");
    assert!(reply.get("error").is_none(), "{reply}");
    reply["result"].take()
}

fn names(document: &Value, list: &str) -> Vec<String> {
    document[list]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[tokio::test]
async fn both_documents_are_answered_over_a_connection() {
    let addr = serve(router(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#)
        .await;
    assert_eq!(
        reply["result"]["info"],
        json!({"title": "test", "version": "1.2.3"})
    );
    assert_eq!(
        names(&reply["result"], "methods"),
        ["rpc.discover", "subtract", "system.describe"]
    );
    let reply = wire
        .call(r#"{"method":"system.describe","params":[],"id":2}"#)
        .await;
    assert_eq!(reply["error"], Value::Null, "{reply}");
    assert_eq!(reply["result"]["id"], "test");
    assert_eq!(
        by_name(&reply["result"]["procs"], "subtract"),
        &json!({
            "name": "subtract",
            "summary": "Subtracts subtrahend from minuend.",
            "idempotent": true,
            "params": [{"name": "minuend", "type": "any"}, {"name": "subtrahend", "type": "any"}],
            "return": {"type": "any"}
        })
    );
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"rpc.discover","params":[1],"id":3}"#)
        .await;
    assert_eq!(reply["error"]["code"], ErrorObject::INVALID_PARAMS);
    assert_eq!(
        reply["error"]["message"],
        "Invalid params: `rpc.discover` takes no params, got [1]"
    );
}

#[tokio::test]
async fn methods_registered_later_are_described_too() {
    let mut router = router();
    router.method("late", || async { Ok::<_, ErrorObject>(1) });
    assert!(names(&result(&router, "rpc.discover").await, "methods").contains(&"late".into()));
}

#[tokio::test]
async fn a_changed_copy_describes_itself_and_the_original_stays() {
    let original = router();
    // Built once the original has been asked.
    let before = result(&original, "rpc.discover").await;
    let mut copy = original.clone();
    copy.method("extra", || async { Ok::<_, ErrorObject>(()) })
        .doc("Only in the copy.");
    let changed = result(&copy, "system.describe").await;
    assert!(names(&changed, "procs").contains(&"extra".into()));
    assert_eq!(result(&original, "rpc.discover").await, before);
    assert!(!names(&before, "methods").contains(&"extra".into()));
}

#[tokio::test]
async fn an_application_may_serve_its_own_discover() {
    let mut router = router();
    router.method("rpc.discover", || async { Ok::<_, ErrorObject>("mine") });
    assert_eq!(result(&router, "rpc.discover").await, "mine");
    assert_eq!(
        names(&result(&router, "system.describe").await, "procs"),
        ["rpc.discover", "subtract", "system.describe"]
    );
}

#[tokio::test]
async fn a_schema_given_by_hand_lists_params_in_field_order() {
    let mut router = router();
    router
        .method("sub", |p: Subtract| async move {
            Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
        })
        // Properties in another order than the struct's fields, as a map
        // that sorts its keys would give them.
        .params_schema(json!({
            "type": "object",
            "properties": {"subtrahend": {"type": "integer"}, "minuend": {"type": "integer"}},
            "required": ["minuend"]
        }))
        .result_schema(json!({"type": "integer"}))
        .error(ErrorObject::new(-32050, "overflow"));
    let document = result(&router, "rpc.discover").await;
    let sub = by_name(&document["methods"], "sub");
    assert_eq!(
        sub["params"],
        json!([
            {"name": "minuend", "required": true, "schema": {"type": "integer"}},
            {"name": "subtrahend", "required": false, "schema": {"type": "integer"}}
        ])
    );
    assert_eq!(
        sub["errors"],
        json!([{"code": -32050, "message": "overflow"}])
    );
    let description = result(&router, "system.describe").await;
    assert_eq!(
        by_name(&description["procs"], "sub")["return"]["type"],
        "num"
    );
    openrpc_check::validate(&document).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn the_test_routers_document_fits_the_openrpc_meta_schema() {
    openrpc_check::validate(&result(&router(), "rpc.discover").await)
        .unwrap_or_else(|e| panic!("{e}"));
}

//! `rpc.discover` and `system.describe` from an application with no schemars.

use futures::executor::block_on;
use rpcpeer::Session;
use serde_json::{json, Value};

/// The result of calling `method` on the application's router.
fn call(method: &str) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": method, "id": 1}).to_string();
    let reply =
        block_on(introspection_without_schemars::router().handle_text(&request, &Session::new()))
            .expect("a request is answered");
    let mut reply: Value = serde_json::from_str(&reply).expect("the reply is JSON");
    assert!(reply.get("error").is_none(), "{reply}");
    reply["result"].take()
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn lsp_configuration_params_need_no_wrapper() {
    let request = r#"{"jsonrpc":"2.0","method":"workspace/configuration","params":{"items":[{"section":"a"},{}]},"id":1}"#;
    let reply =
        block_on(introspection_without_schemars::router().handle_text(request, &Session::new()));
    assert_eq!(
        reply.as_deref(),
        Some(r#"{"jsonrpc":"2.0","result":[null,null],"id":1}"#)
    );
}

#[test]
fn system_describe_names_every_param() {
    let description = call("system.describe");
    assert_eq!(description["sdversion"], "1.0");
    assert_eq!(description["name"], "without schemars");
    let procs = &description["procs"];
    let names: Vec<&str> = procs
        .as_array()
        .expect("procs")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "divide",
            "hello",
            "log",
            "pair",
            "rpc.discover",
            "scale",
            "system.describe",
            "workspace/configuration"
        ]
    );
    assert_eq!(
        by_name(procs, "divide"),
        &json!({
            "name": "divide",
            "summary": "Divides dividend by divisor.",
            "idempotent": true,
            "params": [{"name": "dividend", "type": "any"}, {"name": "divisor", "type": "any"}],
            "return": {"type": "any"}
        })
    );
    assert_eq!(
        by_name(procs, "workspace/configuration")["params"],
        json!([{"name": "items", "type": "any"}])
    );
    assert_eq!(by_name(procs, "hello")["params"], json!([]));
    assert_eq!(by_name(procs, "log")["return"], json!({"type": "nil"}));
    assert_eq!(
        by_name(procs, "scale")["params"],
        json!([{"name": "x", "type": "num"}])
    );
    assert_eq!(by_name(procs, "system.describe")["return"]["type"], "obj");
}

#[test]
fn rpc_discover_describes_what_serde_tells() {
    let document = call("rpc.discover");
    assert_eq!(document["openrpc"], "1.3.2");
    assert_eq!(
        document["info"],
        json!({"title": "without schemars", "version": "0.0.0"})
    );
    let methods = &document["methods"];
    let divide = by_name(methods, "divide");
    assert_eq!(divide["description"], "Divides dividend by divisor.");
    assert_eq!(divide["paramStructure"], "either");
    assert_eq!(
        divide["params"],
        json!([
            {"name": "dividend", "required": false, "schema": true},
            {"name": "divisor", "required": false, "schema": true}
        ])
    );
    assert_eq!(
        divide["errors"],
        json!([{"code": -32050, "message": "division by zero"}])
    );
    assert_eq!(
        divide["result"],
        json!({"name": "divideResult", "schema": true})
    );
    assert_eq!(by_name(methods, "pair")["paramStructure"], "by-position");
    assert_eq!(
        by_name(methods, "pair")["params"],
        json!([{"name": "params", "required": false, "schema": true}])
    );
    let log = by_name(methods, "log");
    assert_eq!(log["x-notification"], true);
    // No result: OpenRPC's way to say a method is only a notification.
    assert!(log.get("result").is_none(), "{log}");
    assert_eq!(
        by_name(methods, "scale")["result"]["schema"],
        json!({"type": "number"})
    );
    assert!(by_name(methods, "hello").get("errors").is_none());
}

#[test]
fn rpc_discover_fits_the_openrpc_meta_schema() {
    openrpc_check::validate(&call("rpc.discover")).unwrap_or_else(|e| panic!("{e}"));
}

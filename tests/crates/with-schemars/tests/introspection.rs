//! `rpc.discover` and `system.describe` from an application whose types derive `JsonSchema`.

use futures::executor::block_on;
use rpcpeer::Session;
use serde_json::{json, Value};

/// The result of calling `method` on the application's router.
fn call(method: &str) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": method, "id": 1}).to_string();
    let reply =
        block_on(introspection_with_schemars::router().handle_text(&request, &Session::new()))
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
fn system_describe_gives_each_param_its_type() {
    let description = call("system.describe");
    assert_eq!(description["id"], "urn:example:with-schemars");
    assert_eq!(description["summary"], "Moves a point");
    let procs = &description["procs"];
    assert_eq!(
        by_name(procs, "move")["params"],
        json!([{"name": "to", "type": "obj"}, {"name": "speed", "type": "num"}])
    );
    assert_eq!(by_name(procs, "move")["return"], json!({"type": "any"}));
    assert_eq!(by_name(procs, "where")["return"], json!({"type": "obj"}));
    assert_eq!(by_name(procs, "where")["idempotent"], true);
    assert_eq!(
        by_name(procs, "add")["params"],
        json!([{"name": "arg0", "type": "num"}, {"name": "arg1", "type": "num"}])
    );
    assert_eq!(by_name(procs, "add")["return"], json!({"type": "num"}));
    assert_eq!(
        by_name(procs, "plain")["params"],
        json!([{"name": "x", "type": "any"}, {"name": "y", "type": "any"}])
    );
}

#[test]
fn rpc_discover_gives_full_schemas() {
    let document = call("rpc.discover");
    assert_eq!(
        document["info"],
        json!({"title": "with schemars", "version": "1.0.0", "description": "Moves a point on the plane."})
    );
    let methods = &document["methods"];
    let moving = by_name(methods, "move");
    assert_eq!(moving["paramStructure"], "either");
    assert_eq!(
        moving["params"],
        json!([
            {
                "name": "to",
                "required": true,
                "schema": {"description": "Where to go.", "$ref": "#/components/schemas/Point"}
            },
            {
                "name": "speed",
                "required": false,
                "schema": {
                    "description": "How fast, in points a second; the default speed when absent.",
                    "type": ["number", "null"],
                    "format": "double"
                }
            }
        ])
    );
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["Point"]["properties"]["x"]["description"],
        "Across."
    );
    assert_eq!(schemas["Point"]["required"], json!(["x", "y"]));
    // The result's own definitions are hoisted too, and refer to the same Point.
    let outcome = &moving["result"]["schema"];
    assert_eq!(outcome["title"], "Outcome");
    assert!(
        outcome.to_string().contains("#/components/schemas/Point"),
        "{outcome}"
    );
    assert!(!document.to_string().contains("$defs"), "{document}");

    let add = by_name(methods, "add");
    assert_eq!(add["paramStructure"], "by-position");
    assert_eq!(add["params"][0]["schema"]["type"], "integer");
    assert_eq!(add["params"][1]["required"], true);
    let tick = by_name(methods, "tick");
    assert_eq!(tick["x-notification"], true);
    assert_eq!(
        tick["params"][0]["schema"],
        json!({"type": "integer", "format": "uint32", "minimum": 0})
    );
    assert_eq!(tick["result"]["schema"], json!({"type": "null"}));
    // Without schemas the fields are named, their types left open.
    assert_eq!(
        by_name(methods, "plain")["params"][0]["schema"],
        json!(true)
    );
}

#[test]
fn rpc_discover_fits_the_openrpc_meta_schema() {
    openrpc_check::validate(&call("rpc.discover")).unwrap_or_else(|e| panic!("{e}"));
}

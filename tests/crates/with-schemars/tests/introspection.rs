//! `rpc.discover` and `system.describe` from an application whose types derive `JsonSchema`.

use futures::executor::block_on;
use rpcpeer::Session;
use serde_json::{json, Value};

/// The result of calling `method` on the application's router.
fn call(method: &str) -> Value {
    call_request(json!({"jsonrpc": "2.0", "method": method, "id": 1}))
}

/// The result of calling `method` with `params`.
fn call_with(method: &str, params: Value) -> Value {
    call_request(json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}))
}

fn call_request(request: Value) -> Value {
    let request = request.to_string();
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
                // Draft 7 ignores a `$ref`'s siblings: the reference goes in an `allOf`.
                // (`Point2`: `locate`, first by name, took `Point` for its own type.)
                "schema": {"description": "Where to go.", "allOf": [{"$ref": "#/components/schemas/Point2"}]}
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
        schemas["Point2"]["properties"]["x"]["description"],
        "Across."
    );
    assert_eq!(schemas["Point2"]["required"], json!(["x", "y"]));
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
    // A notification has no result: OpenRPC's way to say it is only one.
    assert!(tick.get("result").is_none(), "{tick}");
    // Without schemas the fields are named, their types left open.
    assert_eq!(
        by_name(methods, "plain")["params"][0]["schema"],
        json!(true)
    );
}

#[test]
fn rpc_discover_keeps_apart_types_of_one_name_and_refers_to_recursive_ones() {
    let document = call("rpc.discover");
    let methods = &document["methods"];
    let schemas = &document["components"]["schemas"];
    // `places::Point` is not `Point`: it gets a name of its own.
    let point_of = |method: &str| {
        let target = by_name(methods, method)["params"][0]["schema"]["allOf"][0]["$ref"]
            .as_str()
            .expect("a reference")
            .to_owned();
        let name = target.rsplit('/').next().expect("a name").to_owned();
        (name.clone(), schemas[name.as_str()]["required"].clone())
    };
    let (place, place_fields) = point_of("locate");
    let (point, point_fields) = point_of("move");
    assert_ne!(place, point);
    assert_eq!(place_fields, json!(["lat", "lon"]));
    assert_eq!(point_fields, json!(["x", "y"]));
    // `system.describe`'s own `Procedure` stays apart from any other.
    let describe = by_name(methods, "system.describe");
    assert!(
        describe
            .to_string()
            .contains("#/components/schemas/Procedure"),
        "{describe}"
    );
    // A type that refers to itself refers to its definition, not to the
    // root of the document (`#`).
    let count = by_name(methods, "count");
    assert_eq!(
        schemas["Node"]["properties"]["children"]["items"],
        json!({"$ref": "#/components/schemas/Node"})
    );
    // A struct, so by position too, in the order of its fields.
    assert_eq!(count["paramStructure"], "either");
    assert_eq!(count["params"][0]["name"], "name");
    assert_eq!(count["params"][1]["name"], "children");
    assert_eq!(
        call_with("count", json!(["root", [{"name": "leaf", "children": []}]])),
        json!(2)
    );
    // The root type met again inside a definition (`Dir` in `Entry`).
    assert_eq!(
        schemas["Entry"]["oneOf"][1]["properties"]["Dir"],
        json!({"$ref": "#/components/schemas/Dir"}),
        "{}",
        schemas["Entry"]
    );
    assert!(
        !document.to_string().contains(r##""$ref":"#""##),
        "{document}"
    );
    // Alternatives that lead back to their own type are described, not
    // followed round for ever.
    assert_eq!(by_name(methods, "unwrap")["params"][0]["name"], "arg0");
    assert!(by_name(methods, "find")["params"].is_array());
    assert_eq!(call_with("unwrap", json!([7])), json!(7));
    assert_eq!(call_with("find", json!({"name": "x"})), json!("x"));
    assert_eq!(
        call_with(
            "files",
            json!({"entries": [{"File": "a"}, {"Dir": {"entries": [{"File": "b"}]}}]})
        ),
        json!(2)
    );
}

#[test]
fn rpc_discover_says_by_name_for_params_serde_reads_only_by_name() {
    let document = call("rpc.discover");
    let methods = &document["methods"];
    let names = |method: &str| -> Vec<(String, bool)> {
        by_name(methods, method)["params"]
            .as_array()
            .expect("params")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("name").to_owned(),
                    p["required"].as_bool().expect("required"),
                )
            })
            .collect()
    };
    // A map: no names to list, the whole schema beside them.
    let tally = by_name(methods, "tally");
    assert_eq!(tally["paramStructure"], "by-name");
    assert_eq!(tally["params"], json!([]));
    assert_eq!(tally["x-params-schema"]["type"], "object");
    // An enum tagged by a member: the tag is required, the rest optional.
    let area = by_name(methods, "area");
    assert_eq!(area["paramStructure"], "by-name");
    let mut area_names = names("area");
    area_names.sort();
    assert_eq!(
        area_names,
        [
            ("kind".to_owned(), true),
            ("r".to_owned(), false),
            ("side".to_owned(), false)
        ]
    );
    // `flatten`: serde reads it from an object only.
    assert_eq!(by_name(methods, "label")["paramStructure"], "by-name");
    let mut label_names = names("label");
    label_names.sort();
    assert_eq!(
        label_names,
        [
            ("label".to_owned(), true),
            ("x".to_owned(), true),
            ("y".to_owned(), true)
        ]
    );
    // A trailing `Option` may be left out by position.
    assert_eq!(
        names("pad"),
        [("arg0".to_owned(), true), ("arg1".to_owned(), false)]
    );
    // Tuples in draft 7: an `items` array.
    let result = &by_name(methods, "pad")["result"]["schema"];
    assert!(result["items"].is_array(), "{result}");
    assert!(!document.to_string().contains("prefixItems"), "{document}");

    // And the server takes what the document says.
    assert_eq!(call_with("tally", json!({"a": 1, "b": 2})), json!(3));
    assert_eq!(
        call_with("area", json!({"kind": "Square", "side": 2.0})),
        json!(4.0)
    );
    assert_eq!(
        call_with("label", json!({"label": "here", "x": 1, "y": 2})),
        json!("here at 1,2")
    );
    assert_eq!(call_with("pad", json!([7])), json!(["", 7]));
}

#[test]
fn rpc_discover_fits_the_openrpc_meta_schema() {
    openrpc_check::validate(&call("rpc.discover")).unwrap_or_else(|e| panic!("{e}"));
}

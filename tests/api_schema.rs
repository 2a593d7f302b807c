//! `#[rpcpeer::api(schema)]`: `rpc.discover` describes every method of the trait, its params and result typed.

mod common;

use common::{by_name, serve, Wire};
use rpcpeer::introspection::Service;
use rpcpeer::schemars::JsonSchema;
use rpcpeer::{ErrorObject, Router};
use rpcpeer_stream::Framing;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A place in a document.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rpcpeer::schemars")]
pub struct Position {
    /// Zero-based line.
    pub line: u32,
    /// Zero-based column.
    pub character: u32,
}

/// A calculator that also points at places.
#[rpcpeer::api(schema)]
pub trait Calculator {
    /// Subtracts `subtrahend` from `minuend`.
    async fn subtract(&self, minuend: i64, subtrahend: i64) -> Result<i64, ErrorObject>;

    /// Logs a line.
    #[rpc(name = "$/log")]
    async fn log(&self, line: String);

    /// The place after `at`.
    #[rpc(name = "textDocument/next", params = "transparent")]
    async fn next(&self, at: Position) -> Position;
}

struct Calc;

impl Calculator for Calc {
    async fn subtract(&self, minuend: i64, subtrahend: i64) -> Result<i64, ErrorObject> {
        minuend
            .checked_sub(subtrahend)
            .ok_or_else(|| ErrorObject::new(-32050, "overflow"))
    }

    async fn log(&self, _line: String) {}

    async fn next(&self, at: Position) -> Position {
        Position {
            line: at.line,
            character: at.character + 1,
        }
    }
}

/// A connection to `router`, served with introspection as `service`, and
/// the `rpc.discover` document it answers, checked against the OpenRPC
/// meta-schema.
async fn discover(mut router: Router, service: &str) -> (Wire, Value) {
    router.introspection(Service::new(service, "1.0.0"));
    let addr = serve(router, Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#)
        .await;
    let document = reply["result"].clone();
    openrpc_check::validate(&document).unwrap_or_else(|e| panic!("{e}"));
    (wire, document)
}

#[tokio::test]
async fn rpc_discover_describes_the_traits_methods_with_their_types() {
    let mut router = Router::new();
    Calc.register(&mut router);
    let (mut wire, document) = discover(router, "calculator").await;

    let subtract = by_name(&document["methods"], "subtract");
    assert_eq!(
        subtract["description"],
        "Subtracts `subtrahend` from `minuend`."
    );
    assert_eq!(
        subtract["params"],
        json!([
            {"name": "minuend", "required": true, "schema": {"type": "integer", "format": "int64"}},
            {"name": "subtrahend", "required": true, "schema": {"type": "integer", "format": "int64"}}
        ])
    );
    assert_eq!(subtract["result"]["schema"]["type"], "integer");

    let log = by_name(&document["methods"], "$/log");
    assert_eq!(log["x-notification"], true);
    assert_eq!(log["params"][0]["name"], "line");
    assert_eq!(log["params"][0]["schema"]["type"], "string");

    // The one param is the params: described by its own fields.
    let next = by_name(&document["methods"], "textDocument/next");
    let params: Vec<_> = next["params"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(params, ["line", "character"]);
    assert_eq!(
        next["params"][0]["schema"]["description"],
        "Zero-based line."
    );
    assert!(
        next["result"]["schema"].is_object(),
        "a result schema: {next}"
    );

    // And the methods answer as described.
    let answer = wire
        .call(r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":2}"#)
        .await;
    assert_eq!(answer["result"], 19);
}

/// Counts, saying how far it got.
#[rpcpeer::api(schema)]
pub trait Counting {
    /// Counts to `upto`, reporting each number.
    async fn count(
        &self,
        upto: u32,
        progress: rpcpeer::progress::Progress<u32>,
    ) -> Result<u32, ErrorObject>;
}

struct Counter;

impl Counting for Counter {
    async fn count(
        &self,
        upto: u32,
        progress: rpcpeer::progress::Progress<u32>,
    ) -> Result<u32, ErrorObject> {
        for n in 1..=upto {
            progress.report(n).await?;
        }
        Ok(upto)
    }
}

#[tokio::test]
async fn rpc_discover_shows_a_progress_token_as_an_optional_param() {
    let mut router = Router::new();
    Counter.register(&mut router);
    let (mut wire, document) = discover(router, "counter").await;

    let count = by_name(&document["methods"], "count");
    assert_eq!(count["params"][0]["name"], "upto");
    assert_eq!(count["params"][0]["required"], true);
    let token = by_name(&count["params"], "workDoneToken");
    assert_ne!(token["required"], true, "the token is optional: {token}");
    // LSP's `ProgressToken`: an integer or a string (or, being optional,
    // null; how schemars nests the choices is its own business).
    let mut types = Vec::new();
    types_in(&token["schema"], &mut types);
    types.sort_unstable();
    assert_eq!(types, ["integer", "null", "string"], "{token}");

    let answer = wire
        .call(r#"{"jsonrpc":"2.0","method":"count","params":{"upto":2},"id":2}"#)
        .await;
    assert_eq!(answer["result"], 2);
}

/// Every `"type"` named anywhere in `schema`.
fn types_in<'a>(schema: &'a Value, out: &mut Vec<&'a str>) {
    match schema {
        Value::Object(members) => {
            if let Some(Value::String(ty)) = members.get("type") {
                out.push(ty);
            }
            members.values().for_each(|v| types_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| types_in(v, out)),
        _ => {}
    }
}

/// A method whose optional param comes before a required one, with a doc
/// comment holding an indented code line.
#[rpcpeer::api(schema)]
pub trait Middle {
    /// Joins `a` and `b`:
    ///
    ///     middle(null, 2) == "-2"
    async fn middle(&self, a: Option<u32>, b: u32, c: Option<u32>) -> String;
}

struct Joiner;

impl Middle for Joiner {
    async fn middle(&self, a: Option<u32>, b: u32, c: Option<u32>) -> String {
        let show = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        format!("{}-{b}{}", show(a), show(c))
    }
}

#[tokio::test]
async fn rpc_discover_lists_no_optional_param_before_a_required_one() {
    let mut router = Router::new();
    Joiner.register(&mut router);
    let (mut wire, document) = discover(router, "joiner").await;

    let middle = by_name(&document["methods"], "middle");
    // OpenRPC: "All optional params ... MUST be positioned after all
    // required params". By position `a` must be given, as null at least.
    let listed: Vec<(&str, bool)> = middle["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["required"] == true))
        .collect();
    assert_eq!(listed, [("a", true), ("b", true), ("c", false)], "{middle}");
    // The doc comment keeps the indentation that makes a code block.
    assert_eq!(
        middle["description"],
        "Joins `a` and `b`:\n\n    middle(null, 2) == \"-2\""
    );

    let answer = wire
        .call(r#"{"jsonrpc":"2.0","method":"middle","params":[null,2],"id":2}"#)
        .await;
    assert_eq!(answer["result"], "-2");
}

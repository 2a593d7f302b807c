//! system.describe (JSON-RPC 1.1 working draft) and rpc.discover (OpenRPC), both built from what the router knows of each method.

use std::borrow::Cow;

use rpcpeer::auth::Access;
use rpcpeer::schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use rpcpeer::{ErrorObject, MethodInfo, Router};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Cx, Demo};

/// The name both documents give the service.
const TITLE: &str = "rpcpeer demo";

/// Registers this module's methods.
pub(super) fn register(router: &mut Router<Demo>) {
    router
        .method("system.describe", |cx: Cx| async move {
            docs(&cx).map(|d| d.description.clone())
        })
        .doc("A JSON-RPC 1.1 service description: every procedure with its params (name and type) and return type.")
        .safe();
    router
        .method("rpc.discover", |cx: Cx| async move {
            docs(&cx).map(|d| d.openrpc.clone())
        })
        .doc("An OpenRPC document of every method: params as content descriptors and the result.")
        .safe();
}

/// Who may call the method, as both documents say it (`None`: anyone).
fn access(info: &MethodInfo) -> Option<String> {
    match info.access() {
        Access::Authenticated => Some("authenticated".to_owned()),
        Access::Role(role) => Some(format!("role:{role}")),
        _ => None,
    }
}

/// The documents built by [`Docs::build`].
fn docs(cx: &Cx) -> Result<&Docs, ErrorObject> {
    // Always set by `demo::router` before the router is handed out.
    cx.state()
        .docs
        .get()
        .ok_or_else(ErrorObject::internal_error)
}

/// Both documents, built once when the table is complete.
pub(crate) struct Docs {
    description: ServiceDescription,
    openrpc: OpenRpc,
}

/// A service description in the JSON-RPC 1.1 working draft's form (§10).
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct ServiceDescription {
    /// The version of the description format.
    sdversion: &'static str,
    /// The service's name.
    name: &'static str,
    /// A URI that identifies the service.
    id: &'static str,
    /// The service's version.
    version: &'static str,
    /// What the service is.
    summary: &'static str,
    /// Every procedure, sorted by name.
    procs: Vec<Procedure>,
}

/// One procedure of a [`ServiceDescription`].
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct Procedure {
    /// The method name.
    name: String,
    /// Its documentation.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    /// Whether it has no side effects (and may be called by HTTP GET).
    idempotent: bool,
    /// Its params in order: by position they go in this order, by name under these names.
    params: Vec<ProcParam>,
    /// The type of its result.
    #[serde(rename = "return")]
    returns: ProcReturn,
    /// Who may call it: `authenticated`, or `role:NAME`; absent for anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<String>,
}

/// One param of a [`Procedure`].
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct ProcParam {
    /// The param's name.
    name: String,
    /// Its type: bit, num, str, arr, obj, any or nil.
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The result of a [`Procedure`].
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct ProcReturn {
    /// Its type: bit, num, str, arr, obj, any or nil.
    #[serde(rename = "type")]
    kind: &'static str,
}

/// An OpenRPC document, as JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
struct OpenRpc(Value);

impl JsonSchema for OpenRpc {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "OpenRpcDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "An OpenRPC document (https://spec.open-rpc.org)"
        })
    }
}

/// One param as both documents see it.
struct ParamDoc {
    name: String,
    schema: Value,
    required: bool,
}

/// How a method's params may be given.
#[derive(Clone, Copy)]
enum Structure {
    /// A struct: serde takes an array in field order or an object by name.
    Either,
    /// A tuple or a variadic list.
    ByPosition,
}

impl Structure {
    /// The name OpenRPC gives it in `paramStructure`.
    fn as_str(self) -> &'static str {
        match self {
            Structure::Either => "either",
            Structure::ByPosition => "by-position",
        }
    }
}

impl Docs {
    /// Describes every method of `router`.
    pub(crate) fn build<S: Send + Sync + 'static>(router: &Router<S>) -> Self {
        let mut components = Map::new();
        let mut procs = Vec::new();
        let mut methods = Vec::new();
        for info in router.methods() {
            let (params, structure) = params_of(info, &mut components);
            let result = result_of(info, &mut components);
            procs.push(Procedure {
                name: info.name().to_owned(),
                summary: info.doc().map(str::to_owned),
                idempotent: info.is_safe(),
                params: params
                    .iter()
                    .map(|p| ProcParam {
                        name: p.name.clone(),
                        kind: type_name(&p.schema, &components),
                    })
                    .collect(),
                returns: ProcReturn {
                    kind: type_name(&result, &components),
                },
                access: access(info),
            });
            let mut method = Map::new();
            method.insert("name".into(), info.name().into());
            if let Some(doc) = info.doc() {
                method.insert("description".into(), doc.into());
            }
            let params: Vec<Value> = params
                .into_iter()
                .map(|p| json!({"name": p.name, "required": p.required, "schema": p.schema}))
                .collect();
            method.insert("params".into(), params.into());
            method.insert(
                "result".into(),
                json!({"name": format!("{}Result", info.name()), "schema": result}),
            );
            method.insert("paramStructure".into(), structure.as_str().into());
            if info.is_notification() {
                // OpenRPC has no notion of a notification; say it the extension way.
                method.insert("x-notification".into(), true.into());
            }
            if let Some(access) = access(info) {
                method.insert("x-access".into(), access.into());
            }
            methods.push(Value::Object(method));
        }
        let mut openrpc = json!({
            "openrpc": "1.3.2",
            "info": {
                "title": TITLE,
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The demo peer of rpcpeer: arithmetic, chat, authentication, callbacks and introspection.",
            },
            "methods": methods,
        });
        if !components.is_empty() {
            openrpc["components"] = json!({ "schemas": components });
        }
        Docs {
            description: ServiceDescription {
                sdversion: "1.0",
                name: TITLE,
                id: "urn:rpcpeer:demo",
                version: env!("CARGO_PKG_VERSION"),
                summary: "The demo peer of rpcpeer",
                procs,
            },
            openrpc: OpenRpc(openrpc),
        }
    }
}

/// Splits a params schema into named params.
///
/// - a struct (`properties`): one param per field, in declaration order;
/// - a tuple (`prefixItems`): one per element, named by its title or `argN`;
/// - a list (`items`): one variadic param named by the items' title;
/// - anything else (or raw params): one param `params` of that schema.
fn params_of(info: &MethodInfo, components: &mut Map<String, Value>) -> (Vec<ParamDoc>, Structure) {
    let Some(schema) = info.params() else {
        return (Vec::new(), Structure::Either);
    };
    let root = hoist(schema, components);
    let Some(object) = root.as_object() else {
        return (vec![any_params(root)], Structure::ByPosition);
    };
    if let Some(Value::Object(props)) = object.get("properties") {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let params = props
            .iter()
            .map(|(name, schema)| ParamDoc {
                name: name.clone(),
                schema: schema.clone(),
                required: required.contains(&name.as_str()),
            })
            .collect();
        return (params, Structure::Either);
    }
    if let Some(Value::Array(items)) = object.get("prefixItems") {
        let min = object.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let params = items
            .iter()
            .enumerate()
            .map(|(i, schema)| ParamDoc {
                name: title(schema).unwrap_or_else(|| format!("arg{i}")),
                schema: schema.clone(),
                required: (i as u64) < min,
            })
            .collect();
        return (params, Structure::ByPosition);
    }
    if let Some(items) = object.get("items") {
        let param = ParamDoc {
            name: title(items).unwrap_or_else(|| "values".into()),
            schema: items.clone(),
            required: false,
        };
        return (vec![param], Structure::ByPosition);
    }
    (vec![any_params(root)], Structure::ByPosition)
}

/// Params that are not a list of named values: described as one param called `params`.
fn any_params(schema: Value) -> ParamDoc {
    ParamDoc {
        name: "params".into(),
        schema,
        required: false,
    }
}

/// A schema's `title`, which names a positional or variadic param.
fn title(schema: &Value) -> Option<String> {
    schema
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The result's schema: what the handler returns, `null` for a
/// notification, anything for a handler that gives raw JSON.
fn result_of(info: &MethodInfo, components: &mut Map<String, Value>) -> Value {
    match info.result() {
        Some(schema) => hoist(schema, components),
        None if info.is_notification() => json!({"type": "null"}),
        None => Value::Bool(true),
    }
}

/// A root schema made fit to sit inside another document: its `$defs` move
/// to `components` (OpenRPC's `components.schemas`) and every reference is
/// pointed there.
fn hoist(schema: &Schema, components: &mut Map<String, Value>) -> Value {
    let mut value = schema.as_value().clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("$schema");
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(defs)) = object.remove(key) {
                for (name, mut def) in defs {
                    repoint(&mut def);
                    // Same name, same type: schemars names a type by its path.
                    components.entry(name).or_insert(def);
                }
            }
        }
    }
    repoint(&mut value);
    value
}

/// Rewrites `#/$defs/X` references to `#/components/schemas/X`.
fn repoint(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get_mut("$ref") {
                for prefix in ["#/$defs/", "#/definitions/"] {
                    if let Some(name) = target.strip_prefix(prefix) {
                        *target = format!("#/components/schemas/{name}");
                        break;
                    }
                }
            }
            object.values_mut().for_each(repoint);
        }
        Value::Array(items) => items.iter_mut().for_each(repoint),
        _ => {}
    }
}

/// The JSON-RPC 1.1 working draft's name for the type a schema describes:
/// `bit`, `num`, `str`, `arr`, `obj`, `nil`, or `any` when it is not one type.
fn type_name(schema: &Value, components: &Map<String, Value>) -> &'static str {
    type_name_at(schema, components, 0)
}

/// [`type_name`], `depth` references deep.
fn type_name_at(schema: &Value, components: &Map<String, Value>, depth: u8) -> &'static str {
    // A reference cycle ends here rather than overflowing the stack.
    if depth > 16 {
        return "any";
    }
    let Value::Object(object) = schema else {
        return if schema == &Value::Bool(false) {
            "nil"
        } else {
            "any"
        };
    };
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or_default();
        return components
            .get(name)
            .map_or("any", |def| type_name_at(def, components, depth + 1));
    }
    match object.get("type") {
        Some(Value::String(kind)) => json_type(kind),
        Some(Value::Array(kinds)) => {
            // `Option<T>`: ["integer", "null"] is still a num.
            let mut named = kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| *k != "null");
            match (named.next(), named.next()) {
                (Some(kind), None) => json_type(kind),
                (None, None) => "nil",
                _ => "any",
            }
        }
        Some(_) => "any",
        None => {
            let alternatives = ["anyOf", "oneOf"]
                .iter()
                .find_map(|key| object.get(*key).and_then(Value::as_array));
            if let Some(alternatives) = alternatives {
                let mut kinds = alternatives
                    .iter()
                    .map(|alt| type_name_at(alt, components, depth + 1))
                    .filter(|kind| *kind != "nil");
                return match (kinds.next(), kinds.next()) {
                    (Some(kind), None) => kind,
                    (None, None) => "nil",
                    _ => "any",
                };
            }
            if object.contains_key("properties") {
                "obj"
            } else if object.contains_key("items") || object.contains_key("prefixItems") {
                "arr"
            } else {
                "any"
            }
        }
    }
}

/// A JSON Schema `type` as a 1.1 type name.
fn json_type(kind: &str) -> &'static str {
    match kind {
        "boolean" => "bit",
        "integer" | "number" => "num",
        "string" => "str",
        "array" => "arr",
        "object" => "obj",
        "null" => "nil",
        _ => "any",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_types_get_their_1_1_names() {
        let none = Map::new();
        let cases = [
            (json!({"type": "boolean"}), "bit"),
            (json!({"type": "integer", "format": "int64"}), "num"),
            (json!({"type": ["string", "null"]}), "str"),
            (json!({"type": "array", "prefixItems": []}), "arr"),
            (json!({"type": "object"}), "obj"),
            (json!({"type": "null"}), "nil"),
            (json!(true), "any"),
            (json!({"type": ["string", "integer"]}), "any"),
            (
                json!({"anyOf": [{"type": "number"}, {"type": "null"}]}),
                "num",
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(type_name(&schema, &none), want, "{schema}");
        }
    }

    #[test]
    fn references_resolve_through_components() {
        let mut components = Map::new();
        components.insert("Point".into(), json!({"type": "object", "properties": {}}));
        let schema = json!({"$ref": "#/components/schemas/Point"});
        assert_eq!(type_name(&schema, &components), "obj");
    }
}

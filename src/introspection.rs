//! `rpc.discover` (OpenRPC 1.3) and `system.describe` (JSON-RPC 1.1 working draft), built from what a router knows of its methods.
//!
//! [`Router::introspection`] switches both on. The documents are built from
//! each method's [`MethodInfo`]: its name, doc, whether it is a notification
//! or safe, who may call it, the errors it declares, and its params: by
//! the names serde gives a params struct's fields (enough for
//! `system.describe` and for the params' names in `rpc.discover`), and with
//! full JSON Schemas where they are known (set by hand with
//! [`MethodConfig::params_schema`](crate::MethodConfig::params_schema), or
//! from the types with
//! [`Router::method_with_schema`](crate::Router::method_with_schema),
//! feature `schemars`).
//!
//! ```
//! use rpcpeer::introspection::Service;
//! use rpcpeer::{ErrorObject, Router, Session};
//! use serde_json::Value;
//!
//! #[derive(serde::Deserialize)]
//! struct Subtract { minuend: i64, subtrahend: i64 }
//!
//! let mut router = Router::new();
//! router
//!     .method("subtract", |p: Subtract| async move { Ok::<_, ErrorObject>(p.minuend - p.subtrahend) })
//!     .doc("Subtracts subtrahend from minuend.");
//! router.introspection(Service::new("calculator", "1.0.0"));
//!
//! # futures::executor::block_on(async {
//! let session = Session::new();
//! let reply = router.handle_text(r#"{"jsonrpc":"2.0","method":"system.describe","id":1}"#, &session).await;
//! let reply: Value = serde_json::from_str(&reply.unwrap()).unwrap();
//! // Sorted by name: rpc.discover, subtract, system.describe.
//! let subtract = &reply["result"]["procs"][1];
//! assert_eq!(subtract["name"], "subtract");
//! assert_eq!(subtract["params"][0], serde_json::json!({"name": "minuend", "type": "any"}));
//!
//! let reply = router.handle_text(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":2}"#, &session).await;
//! let reply: Value = serde_json::from_str(&reply.unwrap()).unwrap();
//! assert_eq!(reply["result"]["openrpc"], "1.3.2");
//! assert_eq!(reply["result"]["methods"][1]["paramStructure"], "either");
//! # });
//! ```

mod components;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use self::components::Components;

use crate::auth::Access;
use crate::error::ErrorObject;
use crate::router::{MethodInfo, Router};

#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub use crate::schema::{HandlerSchema, ParamsSchema, ReplySchema};

/// The OpenRPC version the documents are written in.
const OPENRPC_VERSION: &str = "1.3.2";

/// How far the walks through a schema's references and alternatives go:
/// a type that holds itself would otherwise take them round for ever.
const MAX_DEPTH: u8 = 16;

/// What the documents say of the service as a whole: OpenRPC's `info`
/// (title, version, description) and the 1.1 draft's service description
/// (name, id, version, summary).
///
/// ```
/// use rpcpeer::introspection::Service;
///
/// let service = Service::new("calculator", "1.0.0")
///     .id("urn:example:calculator")
///     .summary("Arithmetic")
///     .description("Adds and subtracts, by position or by name.");
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    version: String,
    id: Option<String>,
    summary: Option<String>,
    description: Option<String>,
}

impl Service {
    /// A service called `name` (OpenRPC's `info.title`), at `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            id: None,
            summary: None,
            description: None,
        }
    }

    /// The 1.1 description's `id`, a URI that names the service for good
    /// (default: the name).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The 1.1 description's one-line `summary` (default: none).
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// OpenRPC's `info.description` (default: none).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// The two methods [`Router::introspection`] registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    /// `rpc.discover`: the OpenRPC document.
    Discover,
    /// `system.describe`: the 1.1 service description.
    Describe,
}

impl Builtin {
    pub(crate) const ALL: [Builtin; 2] = [Builtin::Discover, Builtin::Describe];

    /// The method's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Builtin::Discover => "rpc.discover",
            Builtin::Describe => "system.describe",
        }
    }

    /// What the documents say of the method itself.
    pub(crate) fn info(self) -> MethodInfo {
        let (doc, result) = match self {
            Builtin::Discover => (
                "An OpenRPC document of every method: params as content descriptors and the result.",
                json!({
                    "type": "object",
                    "description": "An OpenRPC document (https://spec.open-rpc.org)",
                    "title": "OpenRpcDocument"
                }),
            ),
            Builtin::Describe => (
                "A JSON-RPC 1.1 service description: every procedure with its params (name and type) and return type.",
                description_schema(),
            ),
        };
        MethodInfo::builtin(self.name(), doc, result)
    }
}

/// Both documents as the text the two methods answer with.
pub(crate) struct Documents {
    pub(crate) openrpc: Box<RawValue>,
    pub(crate) description: Box<RawValue>,
}

impl Documents {
    /// Describes every method of `router`.
    pub(crate) fn build<S: Send + Sync + 'static>(router: &Router<S>, service: &Service) -> Self {
        let mut components = Components::default();
        let mut procs = Vec::new();
        let mut methods = Vec::new();
        for info in router.methods() {
            let params = params_of(info, &mut components);
            let result = result_of(info, &mut components);
            let access = access(info);
            procs.push(Procedure {
                name: info.name(),
                summary: info.doc(),
                idempotent: info.is_safe(),
                params: params
                    .list
                    .iter()
                    .map(|p| ProcParam {
                        name: p.name.clone(),
                        kind: type_name(&p.schema, components.schemas()),
                    })
                    .collect(),
                returns: ProcReturn {
                    kind: result
                        .as_ref()
                        .map_or("nil", |schema| type_name(schema, components.schemas())),
                },
                access: access.clone(),
            });
            methods.push(Method {
                name: info.name(),
                description: info.doc(),
                params: params
                    .list
                    .into_iter()
                    .map(|p| ContentDescriptor {
                        name: p.name,
                        required: Some(p.required),
                        schema: p.schema,
                    })
                    .collect(),
                // NB: none for a notification: OpenRPC's way to say that a
                // method is only used as one (a `result` says it answers).
                result: result.map(|schema| ContentDescriptor {
                    name: format!("{}Result", info.name()),
                    required: None,
                    schema,
                }),
                errors: info.errors(),
                param_structure: params.structure.as_str(),
                params_schema: params.whole,
                // Said the extension way as well, for tools that read it.
                notification: info.is_notification().then_some(true),
                access,
            });
        }
        let openrpc = OpenRpc {
            openrpc: OPENRPC_VERSION,
            info: Info {
                title: &service.name,
                version: &service.version,
                description: service.description.as_deref(),
            },
            methods,
            components: (!components.schemas().is_empty()).then_some(ComponentsObject {
                schemas: components.schemas(),
            }),
        };
        let description = ServiceDescription {
            sdversion: "1.0",
            name: &service.name,
            id: service.id.as_deref().unwrap_or(&service.name),
            version: &service.version,
            summary: service.summary.as_deref(),
            procs,
        };
        Documents {
            openrpc: raw(&openrpc),
            description: raw(&description),
        }
    }
}

/// A document as JSON text; `null` if it cannot be (it always can: its
/// maps have string keys).
fn raw(document: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(document).unwrap_or_else(|_| crate::error::null())
}

/// Who may call the method, as both documents say it (`None`: anyone).
fn access(info: &MethodInfo) -> Option<String> {
    match info.access() {
        Access::Authenticated => Some("authenticated".to_owned()),
        Access::Role(role) => Some(format!("role:{role}")),
        Access::Public => None,
    }
}

/// An OpenRPC document (the parts we write).
#[derive(Serialize)]
struct OpenRpc<'a> {
    openrpc: &'static str,
    info: Info<'a>,
    methods: Vec<Method<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<ComponentsObject<'a>>,
}

/// OpenRPC's `info` object.
#[derive(Serialize)]
struct Info<'a> {
    title: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

/// OpenRPC's `components`: the schemas that the methods' schemas refer to.
#[derive(Serialize)]
struct ComponentsObject<'a> {
    schemas: &'a Map<String, Value>,
}

/// OpenRPC's method object.
#[derive(Serialize)]
struct Method<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    params: Vec<ContentDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ContentDescriptor>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ErrorObject],
    #[serde(rename = "paramStructure")]
    param_structure: &'static str,
    /// The params' schema as one value, where they cannot be split into
    /// named params (a map, say): `params` then lists none, or only the
    /// names known.
    #[serde(rename = "x-params-schema", skip_serializing_if = "Option::is_none")]
    params_schema: Option<Value>,
    #[serde(rename = "x-notification", skip_serializing_if = "Option::is_none")]
    notification: Option<bool>,
    #[serde(rename = "x-access", skip_serializing_if = "Option::is_none")]
    access: Option<String>,
}

/// OpenRPC's content descriptor: a param or a result.
#[derive(Serialize)]
struct ContentDescriptor {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    required: Option<bool>,
    schema: Value,
}

/// A service description in the JSON-RPC 1.1 working draft's form (§10).
#[derive(Serialize)]
struct ServiceDescription<'a> {
    sdversion: &'static str,
    name: &'a str,
    id: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    procs: Vec<Procedure<'a>>,
}

/// One procedure of a [`ServiceDescription`].
#[derive(Serialize)]
struct Procedure<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    idempotent: bool,
    params: Vec<ProcParam>,
    #[serde(rename = "return")]
    returns: ProcReturn,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<String>,
}

/// One param of a [`Procedure`].
#[derive(Serialize)]
struct ProcParam {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The result of a [`Procedure`].
#[derive(Serialize)]
struct ProcReturn {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The JSON Schema of what `system.describe` answers.
fn description_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sdversion": {"type": "string", "description": "The version of the description format."},
            "name": {"type": "string", "description": "The service's name."},
            "id": {"type": "string", "description": "A URI that identifies the service."},
            "version": {"type": "string", "description": "The service's version."},
            "summary": {"type": "string", "description": "What the service is."},
            "procs": {
                "type": "array",
                "items": {"$ref": "#/$defs/Procedure"},
                "description": "Every procedure, sorted by name."
            }
        },
        "required": ["sdversion", "name", "id", "version", "procs"],
        "description": "A service description in the JSON-RPC 1.1 working draft's form (§10).",
        "title": "ServiceDescription",
        "$defs": {
            "Procedure": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The method name."},
                    "summary": {"type": ["string", "null"], "description": "Its documentation."},
                    "idempotent": {
                        "type": "boolean",
                        "description": "Whether it has no side effects (and may be called by HTTP GET)."
                    },
                    "params": {
                        "type": "array",
                        "items": {"$ref": "#/$defs/ProcParam"},
                        "description": "Its params in order: by position they go in this order, by name under these names."
                    },
                    "return": {"$ref": "#/$defs/ProcReturn", "description": "The type of its result."},
                    "access": {
                        "type": ["string", "null"],
                        "description": "Who may call it: `authenticated`, or `role:NAME`; absent for anyone."
                    }
                },
                "required": ["name", "idempotent", "params", "return"],
                "description": "One procedure of a [`ServiceDescription`]."
            },
            "ProcParam": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The param's name."},
                    "type": {"type": "string", "description": "Its type: bit, num, str, arr, obj, any or nil."}
                },
                "required": ["name", "type"],
                "description": "One param of a [`Procedure`]."
            },
            "ProcReturn": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "description": "Its type: bit, num, str, arr, obj, any or nil."}
                },
                "required": ["type"],
                "description": "The result of a [`Procedure`]."
            }
        }
    })
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
    /// An object only: a map, a struct serde reads as one (`flatten`), an
    /// enum told apart by a member, an optional struct taken as the params.
    ByName,
}

impl Structure {
    /// The name OpenRPC gives it in `paramStructure`.
    fn as_str(self) -> &'static str {
        match self {
            Structure::Either => "either",
            Structure::ByPosition => "by-position",
            Structure::ByName => "by-name",
        }
    }
}

/// A method's params as the documents describe them.
struct Params {
    list: Vec<ParamDoc>,
    structure: Structure,
    /// The schema as one value, where `list` cannot say it all.
    whole: Option<Value>,
}

impl Params {
    fn new(list: Vec<ParamDoc>, structure: Structure) -> Self {
        Params {
            list,
            structure,
            whole: None,
        }
    }
}

/// Splits a method's params into named params.
///
/// With a schema:
/// - a plain struct (`properties`, and serde names its fields): one param
///   per field, in declaration order, by position or by name;
/// - a tuple (an `items` array): one per element, named by its title or `argN`;
/// - a list (an `items` schema): one variadic param named by the items' title;
/// - an object serde reads only by name (a struct behind `Option`, one
///   with `flatten`, an enum tagged by a member, a map): by name, one
///   param per member known, with the whole schema beside them;
/// - anything else: one param `params` of that schema.
///
/// Without one, a params struct's fields as serde names them, each of any
/// type; params that are not a struct are one param `params` of any type.
fn params_of(info: &MethodInfo, components: &mut Components) -> Params {
    let Some(schema) = info.params() else {
        if !info.takes_params() {
            return Params::new(Vec::new(), Structure::Either);
        }
        if info.param_names().is_empty() {
            return Params::new(vec![any_params(Value::Bool(true))], Structure::ByPosition);
        }
        let params = info
            .param_names()
            .iter()
            .map(|name| ParamDoc {
                name: (*name).to_owned(),
                schema: Value::Bool(true),
                required: false,
            })
            .collect();
        return Params::new(params, Structure::Either);
    };
    let root = components.hoist(schema, &format!("{}Params", info.name()));
    let plain_struct = !info.param_names().is_empty();
    let Some(object) = root.as_object() else {
        return Params::new(vec![any_params(root)], Structure::ByPosition);
    };
    match object.get("items") {
        Some(Value::Array(items)) => {
            let min = object.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            // NB: trailing elements that may be null may be left out, as
            // the params reader pads them.
            let optional_from = items
                .iter()
                .rposition(|schema| !nullable(schema, components, &mut Vec::new()))
                .map_or(0, |last| last + 1);
            let params = items
                .iter()
                .enumerate()
                .map(|(i, schema)| ParamDoc {
                    name: title(schema).unwrap_or_else(|| format!("arg{i}")),
                    schema: schema.clone(),
                    required: i < min && i < optional_from,
                })
                .collect();
            return Params::new(params, Structure::ByPosition);
        }
        Some(items) => {
            let param = ParamDoc {
                name: title(items).unwrap_or_else(|| "values".into()),
                schema: items.clone(),
                required: false,
            };
            return Params::new(vec![param], Structure::ByPosition);
        }
        None => {}
    }
    // NB: through the reference, for a struct that holds itself: its
    // root is a `$ref` to its definition.
    if plain_struct && resolved(&root, components).get("properties").is_some() {
        let mut params = members(&root, components, &mut Vec::new()).unwrap_or_default();
        if in_field_order(&mut params, info.param_names()) {
            // OpenRPC puts every optional param after the required ones.
            // By position, one that comes before a required param must be
            // given (as null, if it may be), so it is listed as required.
            if let Some(last) = params.iter().rposition(|p| p.required) {
                params[..last].iter_mut().for_each(|p| p.required = true);
            }
        } else {
            params.sort_by_key(|p| !p.required);
        }
        return Params::new(params, Structure::Either);
    }
    if let Some(mut params) = members(&root, components, &mut Vec::new()) {
        // NB: by name, the order is free: OpenRPC lists the required first.
        params.sort_by_key(|p| !p.required);
        let whole = (!plain_object(&root)).then_some(root);
        return Params {
            list: params,
            structure: Structure::ByName,
            whole,
        };
    }
    if is_object(&root, components) {
        return Params {
            list: Vec::new(),
            structure: Structure::ByName,
            whole: Some(root),
        };
    }
    Params::new(vec![any_params(root)], Structure::ByPosition)
}

/// The named members of an object schema, through references, and of
/// each alternative of `anyOf`/`oneOf` (a member is required only where
/// every alternative requires it, and none is when `null` is one);
/// `None` when no member is named.
fn members<'a>(
    schema: &'a Value,
    components: &'a Components,
    seen: &mut Vec<&'a str>,
) -> Option<Vec<ParamDoc>> {
    if !first_visit(schema, seen) {
        return None;
    }
    let schema = resolved(schema, components);
    if let Some(Value::Object(props)) = schema.get("properties") {
        let required: Vec<&str> = schema
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
        return Some(params);
    }
    let alternatives = ["anyOf", "oneOf"]
        .iter()
        .find_map(|key| schema.get(*key).and_then(Value::as_array))?;
    let mut merged: Vec<ParamDoc> = Vec::new();
    let mut any_null = false;
    let mut objects = 0;
    for alternative in alternatives {
        if is_null(resolved(alternative, components)) {
            any_null = true;
            continue;
        }
        let Some(found) = members(alternative, components, seen) else {
            continue;
        };
        objects += 1;
        for param in found {
            match merged.iter_mut().find(|p| p.name == param.name) {
                Some(known) => known.required &= param.required,
                // NB: one that only a later alternative names is not
                // required by the earlier ones.
                None => merged.push(ParamDoc {
                    required: param.required && objects == 1,
                    ..param
                }),
            }
        }
        for known in &mut merged {
            // What this alternative does not name, it does not require.
            if known.required && !has_member(alternative, &known.name, components) {
                known.required = false;
            }
        }
    }
    if merged.is_empty() {
        return None;
    }
    if any_null {
        merged.iter_mut().for_each(|p| p.required = false);
    }
    Some(merged)
}

/// Whether `schema` is not a reference already followed in this walk.
///
/// NB: alternatives that lead back to their own type (an untagged enum
/// holding itself) would take a walk round for ever, and several such
/// alternatives would make its steps grow exponentially even when bounded
/// in depth: each definition is looked into once, and what it adds was
/// added the first time.
fn first_visit<'a>(schema: &'a Value, seen: &mut Vec<&'a str>) -> bool {
    let Some(target) = schema.get("$ref").and_then(Value::as_str) else {
        return true;
    };
    if seen.contains(&target) {
        return false;
    }
    seen.push(target);
    true
}

/// Whether the object schema `schema` names member `name`.
fn has_member(schema: &Value, name: &str, components: &Components) -> bool {
    resolved(schema, components)
        .get("properties")
        .and_then(|props| props.get(name))
        .is_some()
}

/// `schema`, or what its reference points to (a few steps deep).
fn resolved<'a>(mut schema: &'a Value, components: &'a Components) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        match components.resolve(schema) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// Whether `schema` is an object with its members listed and nothing else
/// to it (no alternatives, no reference): then the list says it all.
fn plain_object(schema: &Value) -> bool {
    schema.get("properties").is_some()
        && ["$ref", "anyOf", "oneOf", "allOf", "additionalProperties"]
            .iter()
            .all(|key| schema.get(*key).is_none())
}

/// Whether `schema` describes only objects (a map, say).
fn is_object(schema: &Value, components: &Components) -> bool {
    let schema = resolved(schema, components);
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// Whether `schema` is that of `null` alone.
fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// Whether `schema` admits `null` (an `Option`).
fn nullable<'a>(schema: &'a Value, components: &'a Components, seen: &mut Vec<&'a str>) -> bool {
    if !first_visit(schema, seen) {
        return false;
    }
    let schema = resolved(schema, components);
    match schema.get("type") {
        Some(Value::String(kind)) => return kind == "null",
        Some(Value::Array(kinds)) => return kinds.iter().any(|k| k == "null"),
        _ => {}
    }
    ["anyOf", "oneOf"].iter().any(|key| {
        schema
            .get(*key)
            .and_then(Value::as_array)
            .is_some_and(|alts| alts.iter().any(|alt| nullable(alt, components, seen)))
    })
}

/// Puts `params` in the order of the struct's fields, which is the order
/// they go in by position, when the struct names every one of them, and
/// says whether it did: a schema's `properties` lose that order in a
/// `serde_json::Map` without the `preserve_order` feature.
fn in_field_order(params: &mut [ParamDoc], fields: &[&str]) -> bool {
    let position = |p: &ParamDoc| fields.iter().position(|f| *f == p.name);
    let named = params.iter().all(|p| position(p).is_some());
    if named {
        params.sort_by_key(position);
    }
    named
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

/// The result's schema: what the handler returns, anything when it is not
/// known, and none for a notification.
fn result_of(info: &MethodInfo, components: &mut Components) -> Option<Value> {
    match info.result() {
        Some(schema) => Some(components.hoist(schema, &format!("{}Result", info.name()))),
        None if info.is_notification() => None,
        None => Some(Value::Bool(true)),
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
    if depth > MAX_DEPTH {
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
            // NB: a reference with a description beside it is an `allOf`
            // of one in draft 7; a value meets every part of one.
            if let Some(Value::Array(parts)) = object.get("allOf") {
                let mut kinds = parts
                    .iter()
                    .map(|part| type_name_at(part, components, depth + 1))
                    .filter(|kind| *kind != "any");
                if let (Some(kind), None) = (kinds.next(), kinds.next()) {
                    return kind;
                }
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
            (
                json!({"allOf": [{"type": "object"}], "description": "d"}),
                "obj",
            ),
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

    #[test]
    fn a_reference_cycle_ends_as_any() {
        let mut components = Map::new();
        components.insert("A".into(), json!({"$ref": "#/components/schemas/B"}));
        components.insert("B".into(), json!({"$ref": "#/components/schemas/A"}));
        let schema = json!({"$ref": "#/components/schemas/A"});
        assert_eq!(type_name(&schema, &components), "any");
    }
}

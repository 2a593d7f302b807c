//! Handlers: plain `async fn`s with typed params, turned into one erased shape the router stores.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::context::{Context, Incoming};
use crate::error::ErrorObject;

/// A boxed, sendable future, the shape every handler is erased to.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a handler produces on the wire: a raw result or an error object.
pub type Outcome = Result<Box<RawValue>, ErrorObject>;

/// A handler with its types erased: raw params in, raw outcome out.
/// Params are borrowed from the frame: a typed handler decodes them before
/// its future is built, so they are never copied.
pub(crate) type ErasedHandler<S> =
    Arc<dyn for<'a> Fn(Option<&'a RawValue>, Incoming<'a, S>) -> BoxFuture<Outcome> + Send + Sync>;

/// What the router knows of a handler's types, for introspection.
#[derive(Debug, Clone, Default)]
pub struct Signature {
    /// JSON Schema of the params type; `None` when the handler takes none.
    pub params: Option<Schema>,
    /// JSON Schema of the result type; `None` when it returns nothing.
    pub result: Option<Schema>,
}

/// An async function the router can call. Implemented for closures and
/// `async fn`s of these shapes, where `P: Deserialize + JsonSchema` is the
/// params type and `R: IntoReply` the return type:
///
/// - `Fn() -> impl Future<Output = R>`
/// - `Fn(P) -> impl Future<Output = R>`
/// - `Fn(Context<S>) -> impl Future<Output = R>`
/// - `Fn(P, Context<S>) -> impl Future<Output = R>`
///
/// `Args` only tells the impls apart; you never name it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a JSON-RPC handler",
    note = "a handler is an async fn or closure taking `()`, `(P)`, `(Context<S>)` or `(P, Context<S>)`, \
            where P: Deserialize + JsonSchema, returning `Result<T, E>` with T: Serialize + JsonSchema and \
            E: Into<ErrorObject> (or `()` for notifications)"
)]
pub trait Handler<Args, S>: Clone + Send + Sync + Sized + 'static {
    /// Decodes `params` and builds the future that runs the handler and
    /// encodes its reply.
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Outcome>;

    /// The handler's param and result types as JSON Schema.
    fn signature(gen: &mut SchemaGenerator) -> Signature;
}

/// Turns a handler's return value into a result or an error object.
pub trait IntoReply: Send + 'static {
    /// The outcome to put on the wire; `method` names the call in error messages.
    fn into_reply(self, method: &str) -> Outcome;

    /// JSON Schema of the result, for introspection.
    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema>;
}

impl<T, E> IntoReply for Result<T, E>
where
    T: Serialize + JsonSchema + Send + 'static,
    E: Into<ErrorObject> + Send + 'static,
{
    fn into_reply(self, method: &str) -> Outcome {
        match self {
            Ok(value) => serde_json::value::to_raw_value(&value).map_err(|err| {
                tracing::error!(%method, "could not serialize the result: {err}");
                ErrorObject::new(
                    ErrorObject::INTERNAL_ERROR,
                    format!("Internal error: the result of `{method}` could not be serialized"),
                )
            }),
            Err(err) => Err(err.into()),
        }
    }

    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        Some(gen.root_schema_for::<T>())
    }
}

/// Notification handlers return nothing; as a request the reply is `null`.
impl IntoReply for () {
    fn into_reply(self, _method: &str) -> Outcome {
        Ok(crate::error::null())
    }

    fn result_schema(_gen: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

/// Decodes `params` into `P`, or says which param is wrong and why (-32602).
///
/// Serde maps a JSON array onto a struct's fields in declaration order and an
/// object by name, so one struct accepts `[42, 23]` and
/// `{"minuend": 42, "subtrahend": 23}` alike.
pub(crate) fn decode_params<P: DeserializeOwned + JsonSchema>(
    method: &str,
    params: Option<&RawValue>,
) -> Result<P, ErrorObject> {
    let Some(raw) = params else {
        // Absent params: `null` fits `()` and `Option`, `{}` fits a struct
        // whose fields are all optional.
        if let Ok(p) = serde_json::from_str::<P>("null") {
            return Ok(p);
        }
        return serde_json::from_str::<P>("{}").map_err(|err| {
            ErrorObject::invalid_params(format!(
                "`{method}` needs params ({})",
                without_position(&err)
            ))
        });
    };
    // Plain serde first: tracking the path costs on every call, and only a
    // failure needs it, so only a failure decodes a second time.
    if let Ok(p) = serde_json::from_str::<P>(raw.get()) {
        return Ok(p);
    }
    let de = &mut serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(de).map_err(|err| {
        let inner = err.inner();
        let path = err.path().to_string();
        // NB: serde_json reports an array longer than the struct as trailing
        // characters, a syntax error; other syntax errors (a number out of
        // range, say) are about the value and are reported as they are.
        let too_many = inner.classify() == serde_json::error::Category::Syntax
            && inner.to_string().starts_with("trailing characters");
        let detail = if too_many {
            // serde_json stops at the first element a struct does not have room for.
            format!("too many params ({})", positional_hint::<P>())
        } else if let Some(missing) = missing_positional::<P>(inner) {
            missing
        } else if path == "." || path.is_empty() {
            without_position(inner)
        } else {
            format!("{}: {}", describe_path::<P>(&path), without_position(inner))
        };
        ErrorObject::invalid_params(format!("`{method}`: {detail}"))
    })
}

/// Accepts the ways a caller says "no params": absent, `null`, `[]` or `{}`.
pub(crate) fn no_params(method: &str, params: Option<&RawValue>) -> Result<(), ErrorObject> {
    match params.map(|p| p.get().split_whitespace().collect::<String>()) {
        None => Ok(()),
        Some(p) if p == "null" || p == "[]" || p == "{}" => Ok(()),
        Some(p) => Err(ErrorObject::invalid_params(format!(
            "`{method}` takes no params, got {p}"
        ))),
    }
}

/// The declared param names of `P`, for messages.
fn param_names<P: JsonSchema>() -> Vec<String> {
    let schema = SchemaGenerator::default().into_root_schema_for::<P>();
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn positional_hint<P: JsonSchema>() -> String {
    let names = param_names::<P>();
    if names.is_empty() {
        "the params do not fit".into()
    } else {
        format!("expected at most {}: {}", names.len(), names.join(", "))
    }
}

/// Names the param at `path`: `` `minuend` (position 0) `` when `P` names its
/// fields and the caller passed them by position (`[0].x` in serde's path),
/// else `` `path` ``.
fn describe_path<P: JsonSchema>(path: &str) -> String {
    let index = path
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    match index {
        Some((index, rest)) => match param_names::<P>().get(index) {
            Some(name) => format!("`{name}{rest}` (position {index})"),
            None => format!("`{path}`"),
        },
        None => format!("`{path}`"),
    }
}

/// For "invalid length 1, expected struct Subtract with 2 elements": which
/// positional param is missing, by name when `P` names its fields.
fn missing_positional<P: JsonSchema>(err: &serde_json::Error) -> Option<String> {
    let text = err.to_string();
    let given: usize = text
        .strip_prefix("invalid length ")?
        .split(',')
        .next()?
        .parse()
        .ok()?;
    let names = param_names::<P>();
    let missing = names.get(given)?;
    Some(format!(
        "missing param `{missing}` (position {given}): {given} given, {} expected ({})",
        names.len(),
        names.join(", ")
    ))
}

/// serde_json's message without its " at line 1 column 9" suffix, which
/// points into the params text rather than the message.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) if err.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

fn ready(outcome: Outcome) -> BoxFuture<Outcome> {
    Box::pin(std::future::ready(outcome))
}

impl<F, Fut, R, S> Handler<(), S> for F
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Outcome> {
        if let Err(err) = no_params(call.method, params) {
            return ready(Err(err));
        }
        let method = call.method.clone();
        let fut = self();
        Box::pin(async move { fut.await.into_reply(&method) })
    }

    fn signature(gen: &mut SchemaGenerator) -> Signature {
        Signature {
            params: None,
            result: R::result_schema(gen),
        }
    }
}

impl<F, Fut, R, S> Handler<(Context<S>,), S> for F
where
    F: Fn(Context<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
    S: Send + Sync + 'static,
{
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Outcome> {
        if let Err(err) = no_params(call.method, params) {
            return ready(Err(err));
        }
        let method = call.method.clone();
        let fut = self(call.into_context());
        Box::pin(async move { fut.await.into_reply(&method) })
    }

    fn signature(gen: &mut SchemaGenerator) -> Signature {
        Signature {
            params: None,
            result: R::result_schema(gen),
        }
    }
}

impl<F, Fut, R, P, S> Handler<(P,), S> for F
where
    F: Fn(P) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
    P: DeserializeOwned + JsonSchema + Send + 'static,
    S: Send + Sync + 'static,
{
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Outcome> {
        let p = match decode_params::<P>(call.method, params) {
            Ok(p) => p,
            Err(err) => return ready(Err(err)),
        };
        let method = call.method.clone();
        let fut = self(p);
        Box::pin(async move { fut.await.into_reply(&method) })
    }

    fn signature(gen: &mut SchemaGenerator) -> Signature {
        Signature {
            params: Some(gen.root_schema_for::<P>()),
            result: R::result_schema(gen),
        }
    }
}

impl<F, Fut, R, P, S> Handler<(P, Context<S>), S> for F
where
    F: Fn(P, Context<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
    P: DeserializeOwned + JsonSchema + Send + 'static,
    S: Send + Sync + 'static,
{
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Outcome> {
        let p = match decode_params::<P>(call.method, params) {
            Ok(p) => p,
            Err(err) => return ready(Err(err)),
        };
        let method = call.method.clone();
        let fut = self(p, call.into_context());
        Box::pin(async move { fut.await.into_reply(&method) })
    }

    fn signature(gen: &mut SchemaGenerator) -> Signature {
        Signature {
            params: Some(gen.root_schema_for::<P>()),
            result: R::result_schema(gen),
        }
    }
}

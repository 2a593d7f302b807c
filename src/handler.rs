//! Handlers: plain `async fn`s with typed params, turned into one erased shape the router stores.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::context::{Context, Incoming};
use crate::error::ErrorObject;
use crate::fields::field_names;

/// A boxed, sendable future, the shape every handler is erased to.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a raw handler produces on the wire: a raw result or an error object.
pub type Outcome = Result<Box<RawValue>, ErrorObject>;

/// A handler with its types erased: raw params in, its reply out.
/// Params are borrowed from the frame: a typed handler decodes them before
/// its future is built, so they are never copied.
pub(crate) type ErasedHandler<S> =
    Arc<dyn for<'a> Fn(Option<&'a RawValue>, Incoming<'a, S>) -> BoxFuture<Reply> + Send + Sync>;

/// A handler that answers without a future ([`SyncFn`]), erased: its
/// reply, or `None` when it must be awaited after all.
pub(crate) type NowHandler<S> = Arc<
    dyn for<'a, 'b> Fn(Option<&'a RawValue>, &'b mut Incoming<'a, S>) -> Option<Reply>
        + Send
        + Sync,
>;

/// What a handler answers: its result, or an error object. [`IntoReply`]
/// makes one from a handler's return value; an [`Outcome`] or an
/// [`ErrorObject`] converts into one. It is also the response type of the
/// [`middleware`](crate::middleware) layers' services.
///
/// ```
/// use rpcpeer::{ErrorObject, IntoReply, Reply};
///
/// let reply: Reply = Ok::<_, ErrorObject>([1, 2]).into_reply("pair");
/// assert_eq!(reply.result().ok(), Some("[1,2]"));
/// // A layer that answers a call itself, or changes the answer:
/// let refused = Reply::error(ErrorObject::method_not_found("admin.reset"));
/// assert!(refused.is_error());
/// assert_eq!(refused.result().unwrap_err().code, ErrorObject::METHOD_NOT_FOUND);
/// let answered = Reply::new(Ok(serde_json::value::to_raw_value(&19).unwrap()));
/// assert_eq!(answered.into_outcome().unwrap().get(), "19");
/// ```
#[derive(Debug)]
pub struct Reply(Answer);

/// The forms of a reply, each kept as it was made: a result serialized by
/// serde_json stays in its `String` (a `Box<RawValue>` would cost a
/// reallocation to shrink it), and `null` is no allocation at all.
#[derive(Debug)]
enum Answer {
    /// A result's JSON text, written by serde_json.
    Json(String),
    /// A raw handler's result.
    Raw(Box<RawValue>),
    /// `null`: the result of a handler that returns nothing.
    Null,
    Error(ErrorObject),
}

impl Reply {
    /// A reply with this outcome.
    pub fn new(outcome: Outcome) -> Self {
        Reply(match outcome {
            Ok(raw) => Answer::Raw(raw),
            Err(err) => Answer::Error(err),
        })
    }

    /// An error reply, for a layer that answers a call itself.
    pub fn error(error: ErrorObject) -> Self {
        Reply(Answer::Error(error))
    }

    /// The result as JSON text, or the error object.
    pub fn result(&self) -> Result<&str, &ErrorObject> {
        match &self.0 {
            Answer::Json(json) => Ok(json),
            Answer::Raw(raw) => Ok(raw.get()),
            Answer::Null => Ok("null"),
            Answer::Error(err) => Err(err),
        }
    }

    /// Whether the reply is an error object.
    pub fn is_error(&self) -> bool {
        matches!(self.0, Answer::Error(_))
    }

    /// The outcome, to pass on or change. (A result serialized by
    /// serde_json is copied into a `Box<RawValue>` here, which the way to
    /// the wire never does.)
    pub fn into_outcome(self) -> Outcome {
        match self.0 {
            Answer::Json(json) => RawValue::from_string(json).map_err(|err| {
                // serde_json wrote it: it is valid JSON.
                tracing::error!("a serialized result is not JSON: {err}");
                ErrorObject::internal_error()
            }),
            Answer::Raw(raw) => Ok(raw),
            Answer::Null => Ok(RawValue::NULL.to_owned()),
            Answer::Error(err) => Err(err),
        }
    }

    /// The reply that says `null`.
    pub(crate) fn null() -> Self {
        Reply(Answer::Null)
    }
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Self {
        Self::new(outcome)
    }
}

impl From<ErrorObject> for Reply {
    fn from(err: ErrorObject) -> Self {
        Self::error(err)
    }
}

/// What a handler's types say about its params, read from serde alone (no
/// JSON Schema needed): introspection names the params with it, and errors
/// about params name the one at fault.
///
/// ```
/// use rpcpeer::{ErrorObject, Handler};
///
/// #[derive(serde::Deserialize)]
/// struct Subtract { minuend: i64, subtrahend: i64 }
///
/// fn signature<Args, H: Handler<Args, ()>>(_: &H) -> rpcpeer::Signature {
///     H::signature()
/// }
/// let sig = signature(&|p: Subtract| async move { Ok::<_, ErrorObject>(p.minuend - p.subtrahend) });
/// assert!(sig.takes_params);
/// assert_eq!(sig.param_names, ["minuend", "subtrahend"]);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Signature {
    /// Whether the handler takes params; one that does not accepts none,
    /// `null`, `[]` or `{}`.
    pub takes_params: bool,
    /// The params struct's field names in declaration order, as serde names
    /// them; empty when the params are not a struct (a tuple, a list, any
    /// value) or the handler takes none.
    pub param_names: &'static [&'static str],
}

impl Signature {
    /// The signature of a handler that takes params of type `P`.
    fn of<P: DeserializeOwned>() -> Self {
        Signature {
            takes_params: true,
            param_names: field_names::<P>(),
        }
    }
}

/// An async function the router can call: an `async fn` or a closure
/// returning a future, of one of these shapes, where `P: Deserialize` is the
/// params type and the return value `R` implements [`IntoReply`]:
///
/// - `Fn() -> impl Future<Output = R>`
/// - `Fn(P) -> impl Future<Output = R>`
/// - `Fn(Context<S>) -> impl Future<Output = R>`
/// - `Fn(P, Context<S>) -> impl Future<Output = R>`
///
/// The handler and its future must be `Send + 'static`, the handler
/// `Clone + Sync` too. `Args` only tells the shapes apart; you never name it.
/// A closure that awaits nothing is a handler too, wrapped in [`sync_fn`],
/// and costs less per call.
///
/// Each rule is its own bound, so a handler that breaks one gets a compile
/// error naming it: a return value that is not a reply names
/// [`IntoReply`], params that do not deserialize name serde's
/// `Deserialize` through [`FromCall`], an error type that does not convert
/// names `From<E> for ErrorObject`, a future held across an `.await` that is
/// not `Send` names what is not, and only a wrong list of arguments gets
/// this trait's own message.
///
/// ```
/// use rpcpeer::{Context, ErrorObject, Router};
///
/// #[derive(serde::Deserialize)]
/// struct Greet { name: String }
///
/// let mut router = Router::new();
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
/// router.method("greet", |p: Greet| async move { Ok::<_, ErrorObject>(format!("hi {}", p.name)) });
/// router.method("whoami", |cx: Context| async move { Ok::<_, ErrorObject>(cx.method().to_string()) });
/// router.method("echo", |p: Vec<i64>, _cx: Context| async move { Ok::<_, ErrorObject>(p) });
/// router.notification("tick", || async {});
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not take a handler's arguments",
    label = "not `()`, `(P)`, `(Context<S>)` or `(P, Context<S>)`",
    note = "a handler is an `async fn`, or a closure returning a future, that takes nothing, \
            its params `P: Deserialize`, its `Context<S>`, or `P` then `Context<S>`",
    note = "several params are one argument: a struct, or a tuple such as \
            `|(a, b): (i64, i64)| async move {{ .. }}`",
    note = "a closure that awaits nothing is a handler once wrapped in `sync_fn`: \
            `sync_fn(|p: P| ..)`"
)]
pub trait Handler<Args, S>: Clone + Send + Sync + Sized + 'static {
    /// Decodes `params` and builds the future that runs the handler and
    /// encodes its reply.
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Reply>;

    /// What the handler's types say about its params.
    fn signature() -> Signature;

    /// Whether [`Handler::call_now`] answers: true for a [`SyncFn`] only.
    #[doc(hidden)]
    const AT_ONCE: bool = false;

    /// Decodes `params` and runs the handler to its reply now, with no
    /// future; `None` from a handler that must be awaited, which takes
    /// nothing from `call`.
    #[doc(hidden)]
    fn call_now(&self, params: Option<&RawValue>, call: &mut Incoming<'_, S>) -> Option<Reply> {
        let _ = (params, call);
        None
    }
}

impl<H, Args, S> Handler<Args, S> for H
where
    H: HandlerFn<Args, S> + Clone + Send + Sync + 'static,
    H::Input: FromCall<S>,
    H::Output: IntoReply,
    H::Future: Send + 'static,
{
    fn call(&self, params: Option<&RawValue>, call: Incoming<'_, S>) -> BoxFuture<Reply> {
        let method = call.method.clone();
        match self.start(params, call) {
            Ok(fut) => Box::pin(async move { fut.await.into_reply(&method) }),
            Err(err) => ready(err.into()),
        }
    }

    fn signature() -> Signature {
        H::Input::signature()
    }

    const AT_ONCE: bool = H::AT_ONCE;

    fn call_now(&self, params: Option<&RawValue>, call: &mut Incoming<'_, S>) -> Option<Reply> {
        let method = call.method;
        Some(match self.run_now(params, call)? {
            Ok(output) => output.into_reply(method),
            Err(err) => err.into(),
        })
    }
}

/// The shape of a handler: which arguments it takes, and its future. Only
/// the argument list is checked here, so that every other rule is checked
/// by a bound of its own (see [`Handler`]).
///
/// ```
/// use rpcpeer::{Context, HandlerFn};
///
/// fn input<Args, H: HandlerFn<Args, ()>>(_: &H) -> &'static str {
///     std::any::type_name::<H::Input>()
/// }
/// assert!(input(&|| async {}).ends_with("NoParams"));
/// assert!(input(&|cx: Context| async move { cx.method().len() }).contains("Context"));
/// assert!(input(&|p: Vec<i64>, _cx: Context| async move { p.len() }).contains("Vec<i64>"));
/// ```
pub trait HandlerFn<Args, S> {
    /// What the handler takes from the call: its params, its context, or
    /// [`NoParams`].
    type Input;
    /// What the handler's future gives.
    type Output;
    /// The handler's future.
    type Future: Future<Output = Self::Output>;

    /// Makes the input from the call and starts the handler, or says why
    /// the params do not fit (-32602).
    fn start(
        &self,
        params: Option<&RawValue>,
        call: Incoming<'_, S>,
    ) -> Result<Self::Future, ErrorObject>
    where
        Self::Input: FromCall<S>;

    /// Whether [`HandlerFn::run_now`] runs the handler: true for a
    /// [`SyncFn`] only.
    #[doc(hidden)]
    const AT_ONCE: bool = false;

    /// Makes the input and runs the handler now, with no future; `None`
    /// from a handler that must be awaited, which takes nothing from
    /// `call`.
    #[doc(hidden)]
    fn run_now(
        &self,
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Option<Result<Self::Output, ErrorObject>>
    where
        Self::Input: FromCall<S>,
    {
        let _ = (params, call);
        None
    }
}

/// What a handler that takes no params is given: the call must have none
/// (absent, `null`, `[]` or `{}`).
///
/// ```
/// use rpcpeer::{FromCall, NoParams};
///
/// assert!(!<NoParams as FromCall<()>>::signature().takes_params);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NoParams;

/// What a handler's first argument can be: its params (any type that
/// implements `serde::Deserialize`), its [`Context`], or [`NoParams`].
///
/// Implemented by this crate only: the params impl covers every
/// deserializable type.
///
/// ```
/// use rpcpeer::FromCall;
///
/// #[derive(serde::Deserialize)]
/// struct Subtract { minuend: i64, subtrahend: i64 }
///
/// fn names<T: FromCall<()>>() -> &'static [&'static str] {
///     T::signature().param_names
/// }
/// assert_eq!(names::<Subtract>(), ["minuend", "subtrahend"]);
/// assert!(names::<rpcpeer::Context>().is_empty());
/// ```
#[diagnostic::on_unimplemented(
    message = "a handler can't take `{Self}` as its params",
    note = "a handler's first argument is its params, a type that implements `serde::Deserialize` \
            (derive it), or its `Context<S>`"
)]
pub trait FromCall<S>: Sized + Send + 'static {
    /// Takes this from the call, or says why the params do not fit
    /// (-32602).
    fn from_call(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<Self, ErrorObject>;

    /// What this says about the params, for introspection.
    fn signature() -> Signature;
}

impl<P: DeserializeOwned + Send + 'static, S> FromCall<S> for P {
    fn from_call(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<Self, ErrorObject> {
        decode_params(call.method, params)
    }

    fn signature() -> Signature {
        Signature::of::<P>()
    }
}

impl<S: Send + Sync + 'static> FromCall<S> for Context<S> {
    fn from_call(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<Self, ErrorObject> {
        no_params(call.method, params)?;
        Ok(call.context())
    }

    fn signature() -> Signature {
        Signature::default()
    }
}

impl<S> FromCall<S> for NoParams {
    fn from_call(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<Self, ErrorObject> {
        no_params(call.method, params).map(|()| NoParams)
    }

    fn signature() -> Signature {
        Signature::default()
    }
}

/// Turns a handler's return value into a result or an error object.
///
/// ```
/// use rpcpeer::{ErrorObject, IntoReply};
///
/// let ok = Ok::<_, ErrorObject>(vec![1, 2]).into_reply("pair");
/// assert_eq!(ok.result().unwrap(), "[1,2]");
/// let err = Err::<(), _>(ErrorObject::invalid_params("one number")).into_reply("pair");
/// assert_eq!(err.result().unwrap_err().code, ErrorObject::INVALID_PARAMS);
/// // A notification's handler returns nothing; asked as a request, it answers null.
/// assert_eq!(().into_reply("tick").result().unwrap(), "null");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler's return value",
    label = "a handler returns `Result<T, E>`, or `()` if it is a notification's",
    note = "return `Result<T, E>` with `T: Serialize` and `E: Into<ErrorObject>`, \
            for example `Ok::<_, ErrorObject>(value)`; a notification's handler may return `()`"
)]
pub trait IntoReply: Send + 'static {
    /// The reply to put on the wire; `method` names the call in error messages.
    fn into_reply(self, method: &str) -> Reply;
}

impl<T, E> IntoReply for Result<T, E>
where
    T: Serialize + Send + 'static,
    E: Into<ErrorObject> + Send + 'static,
{
    fn into_reply(self, method: &str) -> Reply {
        match self {
            // serde_json writes valid JSON or fails.
            Ok(value) => match serde_json::to_string(&value) {
                Ok(json) => Reply(Answer::Json(json)),
                Err(err) => {
                    tracing::error!(%method, "could not serialize the result: {err}");
                    Reply::from(ErrorObject::new(
                        ErrorObject::INTERNAL_ERROR,
                        format!("Internal error: the result of `{method}` could not be serialized"),
                    ))
                }
            },
            Err(err) => Reply::from(err.into()),
        }
    }
}

/// Notification handlers return nothing; as a request the reply is `null`.
impl IntoReply for () {
    fn into_reply(self, _method: &str) -> Reply {
        Reply::null()
    }
}

/// `IgnoredAny` as a `P`, when `P` is that type (known when compiled: the
/// test costs nothing at run time).
fn ignored_any<P: 'static>() -> Option<P> {
    let mut slot = Some(IgnoredAny);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<P>>()?
        .take()
}

/// Decodes `params` into `P`, or says which param is wrong and why (-32602).
///
/// Serde maps a JSON array onto a struct's fields in declaration order and an
/// object by name, so one struct accepts `[42, 23]` and
/// `{"minuend": 42, "subtrahend": 23}` alike. Params by position may leave
/// out trailing ones that may be absent by name (`Option` and
/// `#[serde(default)]` fields, a tuple's trailing `Option`s), as many
/// JSON-RPC callers do.
pub(crate) fn decode_params<P: DeserializeOwned + 'static>(
    method: &str,
    params: Option<&RawValue>,
) -> Result<P, ErrorObject> {
    // NB: params taken as `IgnoredAny` are not read: a `RawValue` is valid
    // JSON (serde_json made it, from a message read in full as spec §5.1
    // asks), so reading it into `IgnoredAny` could only succeed. A handler
    // that accepts any params and never looks at them costs no second pass.
    if let Some(ignored) = ignored_any::<P>() {
        return Ok(ignored);
    }
    let Some(raw) = params else {
        // Absent params (spec §4.2: they MAY be omitted): `null` fits `()`
        // and `Option`, `{}` a struct whose fields are all optional, `[]` a
        // list (`sum` of nothing) and params by position that may all be
        // left out.
        if let Ok(p) = serde_json::from_str::<P>("null") {
            return Ok(p);
        }
        let by_name = match serde_json::from_str::<P>("{}") {
            Ok(p) => return Ok(p),
            Err(err) => err,
        };
        let by_position = match serde_json::from_str::<P>("[]") {
            Ok(p) => return Ok(p),
            Err(err) => crate::left_out::with_trailing_left_out::<P>("[]", &err),
        };
        if let Some(p) = by_position {
            return Ok(p);
        }
        // NB: the `{}` is ours, not the caller's: "invalid type: map" would
        // name something the caller never sent.
        let detail = without_position(&by_name);
        let detail = detail
            .strip_prefix("invalid type: map, ")
            .unwrap_or(&detail);
        return Err(ErrorObject::invalid_params(format!(
            "`{method}` needs params, and the call has none ({detail})"
        )));
    };
    // Plain serde first: tracking the path costs on every call, and only a
    // failure needs it, so only a failure decodes a second time.
    let short = match serde_json::from_str::<P>(raw.get()) {
        Ok(p) => return Ok(p),
        Err(err) => err,
    };
    if let Some(p) = crate::left_out::with_trailing_left_out::<P>(raw.get(), &short) {
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

fn positional_hint<P: DeserializeOwned>() -> String {
    let names = field_names::<P>();
    if names.is_empty() {
        "the params do not fit".into()
    } else {
        format!("expected at most {}: {}", names.len(), names.join(", "))
    }
}

/// Names the param at `path`: `` `minuend` (position 0) `` when `P` names its
/// fields and the caller passed them by position (`[0].x` in serde's path),
/// else `` `path` ``.
fn describe_path<P: DeserializeOwned>(path: &str) -> String {
    let index = path
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    match index {
        Some((index, rest)) => match field_names::<P>().get(index) {
            Some(name) => format!("`{name}{rest}` (position {index})"),
            None => format!("`{path}`"),
        },
        None => format!("`{path}`"),
    }
}

/// For "invalid length 1, expected struct Subtract with 2 elements": which
/// positional param is missing, by name when `P` names its fields.
fn missing_positional<P: DeserializeOwned>(err: &serde_json::Error) -> Option<String> {
    let text = err.to_string();
    let given: usize = text
        .strip_prefix("invalid length ")?
        .split(',')
        .next()?
        .parse()
        .ok()?;
    let names = field_names::<P>();
    let missing = names.get(given)?;
    // NB: no count expected: trailing params that may be null may be left
    // out, and which those are is the type's to say, not serde's.
    Some(format!(
        "missing param `{missing}` (position {given}): {given} given, of {}",
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

fn ready(reply: Reply) -> BoxFuture<Reply> {
    Box::pin(std::future::ready(reply))
}

impl<F, Fut, S> HandlerFn<(), S> for F
where
    F: Fn() -> Fut,
    Fut: Future,
{
    type Input = NoParams;
    type Output = Fut::Output;
    type Future = Fut;

    fn start(
        &self,
        params: Option<&RawValue>,
        mut call: Incoming<'_, S>,
    ) -> Result<Fut, ErrorObject> {
        NoParams::from_call(params, &mut call)?;
        Ok(self())
    }
}

// One impl for both one-argument shapes: two would leave the compiler
// unable to choose between them for a closure whose argument is wrong, and
// it would then report the shape instead of the rule that was broken.
impl<F, Fut, A, S> HandlerFn<(A,), S> for F
where
    F: Fn(A) -> Fut,
    Fut: Future,
{
    type Input = A;
    type Output = Fut::Output;
    type Future = Fut;

    fn start(
        &self,
        params: Option<&RawValue>,
        mut call: Incoming<'_, S>,
    ) -> Result<Fut, ErrorObject>
    where
        A: FromCall<S>,
    {
        Ok(self(A::from_call(params, &mut call)?))
    }
}

impl<F, Fut, P, S> HandlerFn<(P, Context<S>), S> for F
where
    F: Fn(P, Context<S>) -> Fut,
    Fut: Future,
    S: Send + Sync + 'static,
{
    type Input = P;
    type Output = Fut::Output;
    type Future = Fut;

    fn start(
        &self,
        params: Option<&RawValue>,
        mut call: Incoming<'_, S>,
    ) -> Result<Fut, ErrorObject>
    where
        P: FromCall<S>,
    {
        let p = P::from_call(params, &mut call)?;
        Ok(self(p, call.context()))
    }
}

/// A handler that awaits nothing: a plain closure or `fn`, wrapped with
/// [`sync_fn`], of one of [`Handler`]'s shapes without the future
/// (`Fn() -> R`, `Fn(P) -> R`, `Fn(Context<S>) -> R`,
/// `Fn(P, Context<S>) -> R`).
///
/// Registered like any handler (`method`, `notification`,
/// `method_with_schema`), it costs less per call: when its call may start
/// as soon as it is read (its [`Concurrency`](crate::Concurrency) rule and
/// the in-flight bound allow it, no entry before it in its batch waits to
/// run, the caller may call it, and no layer, timeout or own task stands in
/// between), it runs right there, on the connection's task, and no future
/// is built, boxed or polled. Otherwise it waits its turn like any call.
/// Either way it runs on the connection's task unless registered
/// [`own_task`](crate::MethodConfig::own_task), so it must be quick.
///
/// ```
/// use rpcpeer::{sync_fn, Context, ErrorObject, Router};
///
/// let mut router = Router::new();
/// router.method("echo", sync_fn(|(x,): (String,)| Ok::<_, ErrorObject>(x)));
/// router.method("whoami", sync_fn(|cx: Context| Ok::<_, ErrorObject>(cx.method().to_string())));
/// router.notification("tick", sync_fn(|| {}));
/// # let _ = router;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SyncFn<F>(F);

/// Wraps `handler`, a closure or `fn` that awaits nothing, into a
/// [`SyncFn`].
pub fn sync_fn<F>(handler: F) -> SyncFn<F> {
    SyncFn(handler)
}

/// Tells a [`SyncFn`]'s shapes from the `async` ones in [`Handler`]'s
/// `Args`; you never name it.
pub struct AtOnce<Args>(PhantomData<Args>);

/// The shape of a [`SyncFn`]'s closure: what it takes and returns, as
/// [`HandlerFn`] says for `async` handlers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not take a handler's arguments",
    label = "not `()`, `(P)`, `(Context<S>)` or `(P, Context<S>)`",
    note = "a `sync_fn` handler is a closure or `fn` that takes nothing, its params \
            `P: Deserialize`, its `Context<S>`, or `P` then `Context<S>`"
)]
pub trait SyncHandlerFn<Args, S> {
    /// What the handler takes from the call: its params, its context, or
    /// [`NoParams`].
    type Input;
    /// What it returns.
    type Output;
    /// Everything it is given, taken from the call before it runs.
    type Taken;

    /// Takes the handler's arguments from the call, or says why the params
    /// do not fit (-32602).
    fn take(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<Self::Taken, ErrorObject>
    where
        Self::Input: FromCall<S>;

    /// Runs the handler.
    fn run(&self, taken: Self::Taken) -> Self::Output;
}

impl<F, R, S> SyncHandlerFn<(), S> for F
where
    F: Fn() -> R,
{
    type Input = NoParams;
    type Output = R;
    type Taken = NoParams;

    fn take(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<NoParams, ErrorObject> {
        NoParams::from_call(params, call)
    }

    fn run(&self, _: NoParams) -> R {
        self()
    }
}

impl<F, R, A, S> SyncHandlerFn<(A,), S> for F
where
    F: Fn(A) -> R,
{
    type Input = A;
    type Output = R;
    type Taken = A;

    fn take(params: Option<&RawValue>, call: &mut Incoming<'_, S>) -> Result<A, ErrorObject>
    where
        A: FromCall<S>,
    {
        A::from_call(params, call)
    }

    fn run(&self, a: A) -> R {
        self(a)
    }
}

impl<F, R, P, S> SyncHandlerFn<(P, Context<S>), S> for F
where
    F: Fn(P, Context<S>) -> R,
    S: Send + Sync + 'static,
{
    type Input = P;
    type Output = R;
    type Taken = (P, Context<S>);

    fn take(
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Result<(P, Context<S>), ErrorObject>
    where
        P: FromCall<S>,
    {
        let p = P::from_call(params, call)?;
        Ok((p, call.context()))
    }

    fn run(&self, (p, cx): (P, Context<S>)) -> R {
        self(p, cx)
    }
}

impl<F, Args, S> HandlerFn<AtOnce<Args>, S> for SyncFn<F>
where
    F: SyncHandlerFn<Args, S> + Clone,
{
    type Input = F::Input;
    type Output = F::Output;
    type Future = Deferred<F, F::Taken, F::Output>;

    fn start(
        &self,
        params: Option<&RawValue>,
        mut call: Incoming<'_, S>,
    ) -> Result<Self::Future, ErrorObject>
    where
        F::Input: FromCall<S>,
    {
        // NB: the handler runs when its future is first polled, not now: a
        // call that must wait its turn has its params decoded, no more.
        Ok(Deferred {
            call: Some((self.0.clone(), F::take(params, &mut call)?)),
            run: F::run,
        })
    }

    const AT_ONCE: bool = true;

    fn run_now(
        &self,
        params: Option<&RawValue>,
        call: &mut Incoming<'_, S>,
    ) -> Option<Result<F::Output, ErrorObject>>
    where
        F::Input: FromCall<S>,
    {
        Some(F::take(params, call).map(|taken| self.0.run(taken)))
    }
}

/// The future of a [`SyncFn`]'s call that waits its turn: it runs the
/// handler when first polled.
pub struct Deferred<F, T, R> {
    call: Option<(F, T)>,
    run: fn(&F, T) -> R,
}

// NB: nothing in it is pinned: the handler and its arguments are moved out
// on the one poll.
impl<F, T, R> Unpin for Deferred<F, T, R> {}

impl<F, T, R> Future for Deferred<F, T, R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<R> {
        let this = self.get_mut();
        let (handler, taken) = this
            .call
            .take()
            .expect("a `SyncFn` call polled after it answered");
        std::task::Poll::Ready((this.run)(&handler, taken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ignored_any_skips_the_read() {
        assert!(ignored_any::<IgnoredAny>().is_some());
        assert!(ignored_any::<()>().is_none());
        assert!(ignored_any::<serde_json::Value>().is_none());
        assert!(ignored_any::<Option<IgnoredAny>>().is_none());
    }

    #[test]
    fn absent_params_are_named_as_absent() {
        // Spec §4.2: params MAY be omitted; a list is then empty, and
        // params by position that may all be left out are.
        assert_eq!(decode_params::<Vec<i64>>("sum", None).ok(), Some(vec![]));
        let pair = decode_params::<(Option<i64>, Option<String>)>("pair", None);
        assert_eq!(pair.ok(), Some((None, None)));
        let err = decode_params::<(i64,)>("one", None).unwrap_err();
        assert_eq!(err.code, ErrorObject::INVALID_PARAMS);
        assert!(
            err.message
                .starts_with("Invalid params: `one` needs params, and the call has none ("),
            "{}",
            err.message
        );

        #[derive(serde::Deserialize)]
        struct Pair {
            minuend: i64,
        }
        let err = decode_params::<Pair>("subtract", None).err();
        assert_eq!(
            err.map(|err| err.message).as_deref(),
            Some(
                "Invalid params: `subtract` needs params, and the call has none (missing field `minuend`)"
            )
        );
        let raw = RawValue::from_string(r#"{"minuend":1}"#.to_owned()).unwrap();
        let pair = decode_params::<Pair>("subtract", Some(&raw)).map(|pair| pair.minuend);
        assert_eq!(pair.ok(), Some(1));
        // Absent params still fit a handler that takes none.
        assert!(decode_params::<Option<i64>>("ping", None).is_ok());
    }

    #[test]
    fn params_by_position_may_leave_out_trailing_ones_that_may_be_absent() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Find {
            text: String,
            #[serde(rename = "max")]
            limit: Option<u32>,
            #[serde(default)]
            exact: bool,
        }
        let decode = |text: &str| {
            let raw = RawValue::from_string(text.to_owned()).unwrap();
            decode_params::<Find>("find", Some(&raw))
        };
        let find = |text: &str, limit, exact| Find {
            text: text.into(),
            limit,
            exact,
        };
        assert_eq!(decode(r#"["a"]"#).unwrap(), find("a", None, false));
        assert_eq!(decode(r#"["a", 5]"#).unwrap(), find("a", Some(5), false));
        assert_eq!(
            decode(r#"["a\"b", null, true]"#).unwrap(),
            find("a\"b", None, true)
        );
        // What may not be absent is still named.
        let err = decode("[]").unwrap_err();
        assert!(
            err.message.contains("missing param `text` (position 0)"),
            "{}",
            err.message
        );
        // Not "3 expected": the two optional ones may be left out.
        assert!(
            err.message.ends_with("0 given, of text, max, exact"),
            "{}",
            err.message
        );
        let err = decode("[1]").unwrap_err();
        assert!(
            err.message.contains("`text` (position 0)"),
            "{}",
            err.message
        );

        let raw = RawValue::from_string("[1]".to_owned()).unwrap();
        let pair = decode_params::<(u8, Option<String>)>("pair", Some(&raw));
        assert_eq!(pair.unwrap(), (1, None));
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Pair(u8, Option<u8>);
        assert_eq!(
            decode_params::<Pair>("pair", Some(&raw)).unwrap(),
            Pair(1, None)
        );
        // serde lists aliases among the field names: padded instead.
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Aliased {
            #[serde(alias = "q")]
            text: String,
            max: Option<u32>,
            exact: Option<bool>,
        }
        let raw = RawValue::from_string(r#"["a", 5]"#.to_owned()).unwrap();
        let aliased = decode_params::<Aliased>("find", Some(&raw)).unwrap();
        assert_eq!(
            (aliased.text.as_str(), aliased.max, aliased.exact),
            ("a", Some(5), None)
        );
        let pair = decode_params::<(u8, String)>("pair", Some(&raw));
        assert_eq!(pair.unwrap_err().code, ErrorObject::INVALID_PARAMS);
    }
}

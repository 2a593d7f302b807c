//! The method table: names to handlers, with what each method declares about itself.

use foldhash::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::auth::{Access, Auth, Authenticator, LoginLimits};
use crate::context::Context;
use crate::error::ErrorObject;
use crate::handler::{ErasedHandler, Handler, NowHandler, Outcome, Reply, Signature};
use crate::introspection::{Builtin, Documents, Service};
use crate::middleware::{Stack, Wrap};
use crate::session::Session;

/// How calls of one method are scheduled on a connection.
///
/// These rules hold in a batch too. An in-order or exclusive entry waits,
/// runs and ends as it would have sent alone, in the batch's order, and
/// holds its rule only while it runs; the concurrent entries between two
/// exclusive ones run at once and take one handler slot between them
/// (spec §6 lets a batch run in any order), and an in-order entry running
/// beside them takes one of its own, as it would sent alone: a batch may
/// hold two slots. The batch is still answered in one array, once its last
/// entry has ended.
///
/// A rule also holds against the calls a handler's caller makes back while
/// the handler waits on it. A handler whose callback can only be answered
/// after a call of ours waits until the request timeout when that call is
/// held back: because the handler is exclusive, because the call is to an
/// exclusive method, or because an exclusive call read before it (in the
/// handler's own batch too) waits for the handler to end.
///
/// ```
/// use rpcpeer::{Concurrency, ErrorObject, Router};
///
/// let mut router = Router::new();
/// // A login must be done before a call pipelined after it runs.
/// router
///     .method("login", || async { Ok::<_, ErrorObject>(true) })
///     .concurrency(Concurrency::Exclusive);
/// // Posts from one connection arrive in the order they were sent.
/// router
///     .method("post", |(_text,): (String,)| async { Ok::<_, ErrorObject>(()) })
///     .concurrency(Concurrency::InOrder);
/// let info = router.method_info("login").unwrap();
/// assert_eq!(info.concurrency(false), Concurrency::Exclusive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Runs as soon as it arrives, alongside anything else (the default for requests).
    Concurrent,
    /// Runs after every earlier in-order call of the connection has finished
    /// (the default for notifications, so updates apply in the order sent);
    /// concurrent calls still overlap with it.
    InOrder,
    /// Waits until everything running has finished, then runs alone; later
    /// calls wait for it.
    Exclusive,
}

/// What the router knows of one method: enough for `rpc.discover` and
/// `system.describe` documents (see [`Router::introspection`]).
///
/// ```
/// use rpcpeer::{ErrorObject, Router};
///
/// #[derive(serde::Deserialize)]
/// struct Join { name: String }
///
/// let mut router = Router::new();
/// router
///     .method("join", |p: Join| async move { Ok::<_, ErrorObject>(p.name) })
///     .doc("Joins the chat.")
///     .error(ErrorObject::new(-32051, "name taken"));
/// let info = router.method_info("join").unwrap();
/// assert_eq!(info.doc(), Some("Joins the chat."));
/// assert_eq!(info.param_names(), ["name"]);
/// assert_eq!(info.errors()[0].code, -32051);
/// assert!(info.params().is_none()); // no schema was given
/// ```
#[derive(Debug, Clone)]
pub struct MethodInfo {
    name: String,
    doc: Option<String>,
    params: Option<Value>,
    result: Option<Value>,
    takes_params: bool,
    param_names: &'static [&'static str],
    errors: Vec<ErrorObject>,
    notification: bool,
    concurrency: Option<Concurrency>,
    safe: bool,
    task: bool,
    access: Access,
    timeout: Option<Duration>,
}

impl MethodInfo {
    fn new(name: &str, signature: Signature) -> Self {
        Self {
            name: name.to_owned(),
            doc: None,
            params: None,
            result: None,
            takes_params: signature.takes_params,
            param_names: signature.param_names,
            errors: Vec::new(),
            notification: false,
            concurrency: None,
            safe: false,
            task: false,
            access: Access::Public,
            timeout: None,
        }
    }

    /// One of the introspection methods: documented, safe, takes no params.
    pub(crate) fn builtin(name: &str, doc: &str, result: Value) -> Self {
        let mut info = Self::new(name, Signature::default());
        info.doc = Some(doc.to_owned());
        info.result = Some(result);
        info.safe = true;
        info
    }

    /// The method's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its documentation, if any was given.
    pub fn doc(&self) -> Option<&str> {
        self.doc.as_deref()
    }

    /// JSON Schema of its params, when one was given (see
    /// [`MethodConfig::params_schema`]).
    pub fn params(&self) -> Option<&Value> {
        self.params.as_ref()
    }

    /// JSON Schema of its result, when one was given (see
    /// [`MethodConfig::result_schema`]).
    pub fn result(&self) -> Option<&Value> {
        self.result.as_ref()
    }

    /// The names of its params struct's fields, as serde names them, in
    /// declaration order; empty when its params are not a struct, it takes
    /// none, or they are raw.
    pub fn param_names(&self) -> &[&'static str] {
        self.param_names
    }

    /// Whether its handler takes params (`false` for raw handlers too,
    /// whose params are unknown).
    pub(crate) fn takes_params(&self) -> bool {
        self.takes_params
    }

    /// The errors it declares (see [`MethodConfig::error`]).
    pub fn errors(&self) -> &[ErrorObject] {
        &self.errors
    }

    /// Whether it was registered as a notification handler.
    pub fn is_notification(&self) -> bool {
        self.notification
    }

    /// Whether it may be called by HTTP GET (JSON-RPC 1.1's idempotent procedures).
    pub fn is_safe(&self) -> bool {
        self.safe
    }

    /// Whether each call runs on a Tokio task of its own (see
    /// [`MethodConfig::own_task`]).
    pub fn runs_on_own_task(&self) -> bool {
        self.task
    }

    /// Who may call it (see [`MethodConfig::authenticated`]).
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// How long one call may run before it is answered -32002 and
    /// cancelled (see [`MethodConfig::timeout`]); `None`: no limit.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// How a call of this method is scheduled: the method's own setting, or
    /// the default for the kind of message (requests concurrent,
    /// notifications in order).
    pub fn concurrency(&self, is_notification: bool) -> Concurrency {
        self.concurrency
            .unwrap_or(Concurrency::default_for(is_notification))
    }
}

impl Concurrency {
    /// How a call is scheduled when its method says nothing (or is not
    /// registered): requests concurrently, notifications in arrival order.
    pub(crate) fn default_for(is_notification: bool) -> Self {
        if is_notification {
            Concurrency::InOrder
        } else {
            Concurrency::Concurrent
        }
    }
}

/// A handler of raw params, erased: it owns a copy of its params and a full
/// [`Context`], since it may keep both for as long as it runs.
fn raw_handler<S, F, Fut>(handler: F) -> ErasedHandler<S>
where
    F: Fn(Option<Box<RawValue>>, Context<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    Arc::new(move |params, call| {
        let outcome = handler(params.map(ToOwned::to_owned), call.into_context());
        Box::pin(async move { Reply::from(outcome.await) })
    })
}

pub(crate) struct Entry<S> {
    pub(crate) name: Arc<str>,
    pub(crate) info: MethodInfo,
    pub(crate) handler: ErasedHandler<S>,
    /// The same handler without a future, for one that needs no awaiting
    /// ([`SyncFn`](crate::SyncFn)): run as its call is read when it may
    /// start at once.
    pub(crate) now: Option<NowHandler<S>>,
    /// Set for the introspection methods' place in the table, whose
    /// handler answers with documents built when first asked for (see
    /// [`Router::lookup`]).
    builtin: Option<Builtin>,
}

struct Inner<S> {
    methods: HashMap<Arc<str>, Arc<Entry<S>>>,
    fallback: Option<ErasedHandler<S>>,
    state: Arc<S>,
    authenticator: Option<Arc<dyn Authenticator>>,
    login_limits: LoginLimits,
    credentials_in_params: bool,
    /// Built from the three above whenever one changes.
    auth: Option<Arc<Auth>>,
    /// What the introspection documents say of the service; `None` while
    /// introspection is off.
    service: Option<Arc<Service>>,
    /// The introspection methods with their documents, built from the table
    /// the first time one is called, and forgotten whenever it changes.
    introspected: OnceLock<Introspected<S>>,
    /// The layers every call goes through (see `Router::layer`), in the
    /// order they were added; empty for most routers.
    layers: Vec<Wrap>,
    /// The layers over the handlers, made when the first call needs them.
    stack: OnceLock<Arc<Stack>>,
    /// The layers each connection applies for itself (see
    /// `Router::connection_layer`), in the order they were added.
    connection_layers: Vec<Wrap>,
}

/// The two introspection methods as they are called.
struct Introspected<S> {
    discover: Arc<Entry<S>>,
    describe: Arc<Entry<S>>,
}

impl<S> Clone for Inner<S> {
    fn clone(&self) -> Self {
        Self {
            methods: self.methods.clone(),
            fallback: self.fallback.clone(),
            state: self.state.clone(),
            authenticator: self.authenticator.clone(),
            login_limits: self.login_limits,
            credentials_in_params: self.credentials_in_params,
            auth: self.auth.clone(),
            service: self.service.clone(),
            // A copy is made to be changed: its documents are built anew,
            // and its layers (with their state) made anew.
            introspected: OnceLock::new(),
            layers: self.layers.clone(),
            stack: OnceLock::new(),
            connection_layers: self.connection_layers.clone(),
        }
    }
}

/// Maps method names to handlers. Build one, then give it to every
/// [`Driver`](crate::Driver); cloning is cheap (the table is shared).
///
/// One params type accepts both positional and named params:
///
/// ```
/// use rpcpeer::{ErrorObject, Router};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Subtract { minuend: i64, subtrahend: i64 }
///
/// let mut router = Router::new();
/// router
///     .method("subtract", |p: Subtract| async move { Ok::<_, ErrorObject>(p.minuend - p.subtrahend) })
///     .doc("Subtracts the second number from the first.");
///
/// # futures::executor::block_on(async {
/// let session = rpcpeer::Session::new();
/// let by_position = router.handle_text(r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#, &session).await;
/// assert_eq!(by_position.unwrap(), r#"{"jsonrpc":"2.0","result":19,"id":1}"#);
/// let by_name = router.handle_text(r#"{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":2}"#, &session).await;
/// assert_eq!(by_name.unwrap(), r#"{"jsonrpc":"2.0","result":19,"id":2}"#);
/// # });
/// ```
pub struct Router<S = ()> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl Default for Router<()> {
    fn default() -> Self {
        Self::new()
    }
}

impl Router<()> {
    /// An empty router without application state.
    pub fn new() -> Self {
        Self::with_state(())
    }
}

/// Sets what a method declares about itself; returned by [`Router::method`].
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::{ErrorObject, Router};
///
/// let mut router = Router::new();
/// router
///     .method("report", || async { Ok::<_, ErrorObject>("done") })
///     .doc("Builds the monthly report.")
///     .role("accounting")
///     .own_task()
///     .timeout(Duration::from_secs(60));
/// let info = router.method_info("report").unwrap();
/// assert_eq!(info.doc(), Some("Builds the monthly report."));
/// assert!(info.runs_on_own_task());
/// ```
pub struct MethodConfig<'a> {
    info: &'a mut MethodInfo,
}

impl MethodConfig<'_> {
    /// Documentation, shown by introspection.
    pub fn doc(self, doc: impl Into<String>) -> Self {
        self.info.doc = Some(doc.into());
        self
    }

    /// The JSON Schema of the params, for introspection: an object schema
    /// lists the params by name (its `properties`, in order), an array
    /// schema by position (`prefixItems`, or `items` for any number).
    /// `$defs` are moved into the OpenRPC document's
    /// `components.schemas`. Without one, introspection names the fields
    /// of the params struct and says nothing of their types.
    /// [`Router::method_with_schema`] (feature `schemars`) sets it from
    /// the params type.
    ///
    /// ```
    /// use rpcpeer::{ErrorObject, Router};
    /// use serde_json::json;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Scale { factor: f64 }
    ///
    /// let mut router = Router::new();
    /// router
    ///     .method("scale", |p: Scale| async move { Ok::<_, ErrorObject>(p.factor * 2.0) })
    ///     .params_schema(json!({
    ///         "type": "object",
    ///         "properties": {"factor": {"type": "number"}},
    ///         "required": ["factor"]
    ///     }))
    ///     .result_schema(json!({"type": "number"}));
    /// ```
    pub fn params_schema(self, schema: Value) -> Self {
        self.info.params = Some(schema);
        self
    }

    /// The JSON Schema of the result, for introspection (see
    /// [`MethodConfig::params_schema`]). Without one, a request's result
    /// is described as any value; a notification has none.
    pub fn result_schema(self, schema: Value) -> Self {
        self.info.result = Some(schema);
        self
    }

    /// Declares an error the method may answer with, listed in its OpenRPC
    /// `errors`. Declare as many as it has; the errors every method may
    /// answer with (-32602 and the like) go without saying. OpenRPC wants
    /// each code once: one declared again replaces the earlier one.
    ///
    /// ```
    /// use rpcpeer::{ErrorObject, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .method("divide", |(a, b): (i64, i64)| async move {
    ///         a.checked_div(b).ok_or_else(|| ErrorObject::new(-32050, "division by zero"))
    ///     })
    ///     .error(ErrorObject::new(-32050, "division by zero"))
    ///     .error(ErrorObject::new(-32050, "the divisor is 0"));
    /// let errors = router.method_info("divide").unwrap().errors();
    /// assert_eq!(errors.len(), 1);
    /// assert_eq!(errors[0].message, "the divisor is 0");
    /// ```
    pub fn error(self, error: impl Into<ErrorObject>) -> Self {
        let error = error.into();
        let errors = &mut self.info.errors;
        match errors.iter_mut().find(|known| known.code == error.code) {
            Some(known) => *known = error,
            None => errors.push(error),
        }
        self
    }

    /// Marks the method as a notification handler, which introspection
    /// shows (see [`Router::notification`]), such as one registered with
    /// [`Router::method_raw`].
    pub fn notification(self) -> Self {
        self.info.notification = true;
        self
    }

    /// How calls of this method are scheduled (see [`Concurrency`]).
    pub fn concurrency(self, concurrency: Concurrency) -> Self {
        self.info.concurrency = Some(concurrency);
        self
    }

    /// Marks the method safe to call by HTTP GET: it has no side effects.
    pub fn safe(self) -> Self {
        self.info.safe = true;
        self
    }

    /// Runs each call on a thread of its own, for CPU-heavy or blocking
    /// work: the handler's future is polled there (a thread of Tokio's
    /// blocking pool), so it may block without holding up its connection
    /// or the runtime's workers. By default a handler's future is polled on
    /// its connection's task, which is cheaper (no thread hand-over) but
    /// means a handler that computes for long without awaiting holds up the
    /// rest of its connection. When the call is cancelled or its connection
    /// torn down, the future is dropped at its next await; a call cancelled
    /// before its thread started it never runs.
    ///
    /// Each call holds its thread until it ends, awaits included, and the
    /// pool is the runtime's (`max_blocking_threads`, 512 by default,
    /// shared with `spawn_blocking` and `tokio::fs`): calls past it wait
    /// for a thread. A handler that mostly awaits gains nothing here, and
    /// one that awaits `tokio::fs` or `spawn_blocking` work could, with
    /// the pool full of such calls, wait on work that has no thread left.
    pub fn own_task(self) -> Self {
        self.info.task = true;
        self
    }

    /// Only an authenticated caller may call this method (see
    /// [`Router::authenticator`]). Anyone else's request is answered
    /// -32001 ([`ErrorObject::UNAUTHORIZED`](crate::ErrorObject::UNAUTHORIZED)),
    /// and a notification is dropped (and logged); the handler never runs.
    ///
    /// The caller is looked at when the call starts, not when it is read:
    /// a login or a logout that is done by then counts, such as an
    /// exclusive one read before the call, or an earlier entry of the same
    /// batch that awaits nothing. This holds for [`Self::role`] too.
    pub fn authenticated(self) -> Self {
        if self.info.access == Access::Public {
            self.info.access = Access::Authenticated;
        }
        self
    }

    /// Only an authenticated caller with `role` may call this method:
    /// -32001 without an identity, -32005
    /// ([`ErrorObject::FORBIDDEN`](crate::ErrorObject::FORBIDDEN)) without
    /// the role.
    pub fn role(self, role: impl Into<String>) -> Self {
        self.info.access = Access::Role(role.into());
        self
    }

    /// Limits how long one call may run (default: no limit), counted from
    /// when it starts, not from when it arrived (time waiting for its turn
    /// does not count). Past it, the caller is answered
    /// [`ErrorObject::HANDLER_TIMEOUT`](crate::ErrorObject::HANDLER_TIMEOUT)
    /// (-32002) with a message naming the method and the limit, and the
    /// handler's future is dropped: its
    /// [`Context::cancellation`](crate::Context::cancellation) token fires,
    /// a call on its own thread (see [`MethodConfig::own_task`]) has its
    /// future dropped there at its next await, and its slot is freed. A
    /// notification over its limit is dropped the same way,
    /// unanswered. Methods without a limit pay nothing for this.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rpcpeer::{ErrorObject, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .method("report", || async { Ok::<_, ErrorObject>("done") })
    ///     .timeout(Duration::from_secs(10));
    /// assert_eq!(router.method_info("report").unwrap().timeout(), Some(Duration::from_secs(10)));
    /// ```
    pub fn timeout(self, limit: Duration) -> Self {
        self.info.timeout = Some(limit);
        self
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// An empty router whose handlers can reach `state` through
    /// [`Context::state`].
    pub fn with_state(state: S) -> Self {
        Self {
            inner: Arc::new(Inner {
                methods: HashMap::default(),
                fallback: None,
                state: Arc::new(state),
                authenticator: None,
                login_limits: LoginLimits::default(),
                credentials_in_params: false,
                auth: None,
                service: None,
                introspected: OnceLock::new(),
                layers: Vec::new(),
                stack: OnceLock::new(),
                connection_layers: Vec::new(),
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner<S> {
        // Building happens before the router is shared; if it already is,
        // this router gets its own copy of the table (entries stay shared).
        let inner = Arc::make_mut(&mut self.inner);
        // The documents describe the table as it was; it is about to change.
        inner.introspected = OnceLock::new();
        inner
    }

    fn insert(
        &mut self,
        name: &str,
        info: MethodInfo,
        handler: ErasedHandler<S>,
    ) -> MethodConfig<'_> {
        self.insert_entry(name, info, handler, None, None)
    }

    fn insert_entry(
        &mut self,
        name: &str,
        info: MethodInfo,
        handler: ErasedHandler<S>,
        now: Option<NowHandler<S>>,
        builtin: Option<Builtin>,
    ) -> MethodConfig<'_> {
        let name: Arc<str> = name.into();
        let entry = Arc::new(Entry {
            name: name.clone(),
            info,
            handler,
            now,
            builtin,
        });
        let slot = self.inner_mut().methods.entry(name).insert_entry(entry);
        let entry = Arc::get_mut(slot.into_mut()).map(|e| &mut e.info);
        MethodConfig {
            // The entry was created just above and is not shared yet.
            info: entry.unwrap_or_else(|| unreachable!("a fresh entry is unshared")),
        }
    }

    /// Registers a request handler (see [`Handler`] for the shapes it may
    /// have). Replaces any earlier handler of that name. Its params and
    /// result types need serde's traits only; introspection names the
    /// params from the params struct's fields (see
    /// [`Router::method_with_schema`] for full schemas).
    pub fn method<Args, H: Handler<Args, S>>(
        &mut self,
        name: &str,
        handler: H,
    ) -> MethodConfig<'_> {
        let info = MethodInfo::new(name, H::signature());
        let now = H::AT_ONCE.then(|| {
            let handler = handler.clone();
            let now: NowHandler<S> = Arc::new(move |params, call| handler.call_now(params, call));
            now
        });
        self.insert_entry(
            name,
            info,
            Arc::new(move |params, call| handler.call(params, call)),
            now,
            None,
        )
    }

    /// Registers a handler meant for notifications, which introspection
    /// shows as one. Notifications run in arrival order unless configured
    /// otherwise, and get no reply; a peer that calls it as a request is
    /// answered like any method, with its return value (`null` for `()`).
    pub fn notification<Args, H: Handler<Args, S>>(
        &mut self,
        name: &str,
        handler: H,
    ) -> MethodConfig<'_> {
        self.method(name, handler).notification()
    }

    /// Registers a handler that takes the params and gives the result as raw
    /// JSON, for methods whose types are only known at run time. Its
    /// introspection shows no param types.
    pub fn method_raw<F, Fut>(&mut self, name: &str, handler: F) -> MethodConfig<'_>
    where
        F: Fn(Option<Box<RawValue>>, Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let info = MethodInfo::new(name, Signature::default());
        self.insert(name, info, raw_handler(handler))
    }

    /// Serves `rpc.discover` (an OpenRPC 1.3 document) and
    /// `system.describe` (a JSON-RPC 1.1 working draft service
    /// description) describing every method of this router, the two
    /// included: names, docs, params (by name and position, with schemas
    /// where known), result, declared errors, notification or not, safe or
    /// not, who may call it. Both are registered [`safe`](MethodConfig::safe).
    ///
    /// The documents are built when first asked for and kept until the
    /// table changes, so methods registered after this call are described
    /// too. A method registered later under either name replaces it.
    /// See [`introspection`](crate::introspection) for an example.
    pub fn introspection(&mut self, service: Service) -> &mut Self {
        self.inner_mut().service = Some(Arc::new(service));
        for builtin in Builtin::ALL {
            // Never called: `lookup` hands out the entry with the document.
            let placeholder: ErasedHandler<S> = Arc::new(|_, _| {
                Box::pin(std::future::ready(Reply::error(
                    ErrorObject::internal_error(),
                )))
            });
            self.insert_entry(
                builtin.name(),
                builtin.info(),
                placeholder,
                None,
                Some(builtin),
            );
        }
        self
    }

    /// The entry that answers `builtin` with its document, built now if
    /// it is not yet.
    fn introspected(&self, builtin: Builtin) -> Option<&Arc<Entry<S>>> {
        let service = self.inner.service.as_ref()?;
        let introspected = self.inner.introspected.get_or_init(|| {
            let documents = Documents::build(self, service);
            let entry = |builtin: Builtin, document: Box<RawValue>| {
                let handler = move || {
                    let document = document.clone();
                    async move { Ok::<_, ErrorObject>(document) }
                };
                let info = self
                    .inner
                    .methods
                    .get(builtin.name())
                    .map_or_else(|| builtin.info(), |e| e.info.clone());
                Arc::new(Entry {
                    name: builtin.name().into(),
                    info,
                    handler: Arc::new(move |params, call| {
                        Handler::<(), S>::call(&handler, params, call)
                    }),
                    now: None,
                    builtin: None,
                })
            };
            Introspected {
                discover: entry(Builtin::Discover, documents.openrpc),
                describe: entry(Builtin::Describe, documents.description),
            }
        });
        Some(match builtin {
            Builtin::Discover => &introspected.discover,
            Builtin::Describe => &introspected.describe,
        })
    }

    /// Handles every method that has no handler of its own, requests and
    /// notifications alike, instead of answering -32601 (or, for a
    /// notification, dropping it). [`Context::method`] tells which method
    /// was called and [`Context::id`] whether it was a request: for a
    /// notification it is `None`, and the outcome, `Ok` or `Err`, is sent
    /// nowhere. As for any method without settings of its own,
    /// notifications reach the fallback one at a time in arrival order and
    /// requests run concurrently ([`Concurrency`]); anyone may call it
    /// (no [`MethodConfig::authenticated`]), and introspection does not
    /// list what it handles.
    ///
    /// ```
    /// use rpcpeer::{testing::connected_pair, Context, Error, ErrorObject, Router};
    /// use serde_json::value::RawValue;
    /// use tokio::sync::mpsc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// // Logs every notification, whatever its method; refuses requests.
    /// let (log, mut logged) = mpsc::unbounded_channel::<String>();
    /// let mut listener = Router::with_state(log);
    /// listener.fallback(|params: Option<Box<RawValue>>, cx: Context<mpsc::UnboundedSender<String>>| async move {
    ///     if cx.id().is_some() {
    ///         return Err(ErrorObject::method_not_found(cx.method()));
    ///     }
    ///     let params = params.as_deref().map_or("", RawValue::get);
    ///     let _ = cx.state().send(format!("{} {params}", cx.method()));
    ///     Ok(RawValue::NULL.to_owned())
    /// });
    /// let (to_listener, _) = connected_pair(Router::new(), listener);
    ///
    /// to_listener.notify("progress", [50]).await?;
    /// to_listener.notify("progress", [100]).await?;
    /// assert_eq!(logged.recv().await.as_deref(), Some("progress [50]"));
    /// assert_eq!(logged.recv().await.as_deref(), Some("progress [100]"));
    /// let refused = to_listener.request::<()>("anything", ()).await;
    /// assert!(matches!(refused, Err(Error::Remote { source, .. }) if source.code == ErrorObject::METHOD_NOT_FOUND));
    /// # Ok(()) }
    /// ```
    pub fn fallback<F, Fut>(&mut self, handler: F)
    where
        F: Fn(Option<Box<RawValue>>, Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        self.inner_mut().fallback = Some(raw_handler(handler));
    }

    /// Sets who decides who a caller is: used by [`Context::login`], by
    /// [`WsServer`](crate::ws_server::WsServer)'s handshake and
    /// [`http::respond`](crate::http::respond) (`Authorization` header), and
    /// for credentials in params (see [`Router::credentials_in_params`]).
    /// Every attempt goes through the throttle ([`Router::login_limits`]).
    pub fn authenticator(&mut self, authenticator: impl Authenticator) -> &mut Self {
        self.inner_mut().authenticator = Some(Arc::new(authenticator));
        self.rebuild_auth()
    }

    /// How many failed logins are allowed per connection and per address
    /// (default: [`LoginLimits::default`]).
    pub fn login_limits(&mut self, limits: LoginLimits) -> &mut Self {
        self.inner_mut().login_limits = limits;
        self.rebuild_auth()
    }

    /// Takes a call's credentials from its params, as django-json-rpc does
    /// (off by default): a call to a method that needs authentication, from
    /// a caller with no identity, whose params array starts with two
    /// strings, has them checked as user and password (through the
    /// throttle) and removed before the handler decodes the rest. A success
    /// logs the connection in, as a login method would; later calls then
    /// carry their own params only.
    pub fn credentials_in_params(&mut self, on: bool) -> &mut Self {
        self.inner_mut().credentials_in_params = on;
        self.rebuild_auth()
    }

    fn rebuild_auth(&mut self) -> &mut Self {
        let inner = self.inner_mut();
        inner.auth = inner.authenticator.clone().map(|authenticator| {
            Arc::new(Auth::new(
                authenticator,
                inner.login_limits,
                inner.credentials_in_params,
            ))
        });
        self
    }

    pub(crate) fn auth(&self) -> Option<&Arc<Auth>> {
        self.inner.auth.as_ref()
    }

    /// Every registered method, sorted by name.
    pub fn methods(&self) -> Vec<&MethodInfo> {
        let mut all: Vec<_> = self.inner.methods.values().map(|e| &e.info).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The method called `name`, if registered.
    pub fn method_info(&self, name: &str) -> Option<&MethodInfo> {
        self.inner.methods.get(name).map(|e| &e.info)
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<&Arc<Entry<S>>> {
        let entry = self.inner.methods.get(name)?;
        match entry.builtin {
            None => Some(entry),
            Some(builtin) => self.introspected(builtin).or(Some(entry)),
        }
    }

    /// Adds a layer around every call (see `Router::layer`).
    pub(crate) fn add_layer(&mut self, wrap: Wrap) {
        let inner = self.inner_mut();
        inner.layers.push(wrap);
        inner.stack = OnceLock::new();
    }

    /// Adds a layer each connection applies for itself (see
    /// `Router::connection_layer`).
    pub(crate) fn add_connection_layer(&mut self, wrap: Wrap) {
        self.inner_mut().connection_layers.push(wrap);
    }

    /// The layers each connection applies for itself; empty for most
    /// routers.
    #[inline]
    pub(crate) fn connection_layers(&self) -> &[Wrap] {
        &self.inner.connection_layers
    }

    /// The layers every call goes through, made now if they are not yet;
    /// `None` when there are none.
    #[inline]
    pub(crate) fn stack(&self) -> Option<&Arc<Stack>> {
        if self.inner.layers.is_empty() {
            return None;
        }
        Some(
            self.inner
                .stack
                .get_or_init(|| Stack::build(&self.inner.layers, None)),
        )
    }

    pub(crate) fn fallback_handler(&self) -> Option<&ErasedHandler<S>> {
        self.inner.fallback.as_ref()
    }

    pub(crate) fn state(&self) -> &Arc<S> {
        &self.inner.state
    }

    /// Answers one frame without a connection: the reply text, or `None`
    /// when nothing is to be sent back (notifications only). This is how
    /// handlers are tested without sockets; an HTTP endpoint calls
    /// [`http::respond`](crate::http::respond), which sets its own batch limit.
    ///
    /// A batch of more than [`Config::max_batch_len`](crate::Config::max_batch_len)'s
    /// default (1024 entries) is answered with one -32600 error, as on a
    /// connection. Handlers run without a connection: calling the peer back
    /// fails with [`Error::Closed`](crate::Error::Closed), and joining a
    /// [`Group`](crate::group::Group) with [`Error::NoConnection`](crate::Error::NoConnection).
    pub async fn handle_text(&self, text: &str, session: &Session) -> Option<String> {
        crate::dispatch::handle_text(self, text, session, crate::config::DEFAULT_MAX_BATCH_LEN)
            .await
    }
}

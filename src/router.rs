//! The method table: names to handlers, with what each method declares about itself.

use foldhash::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use schemars::{Schema, SchemaGenerator};
use serde_json::value::RawValue;

use crate::auth::{Access, Auth, Authenticator, LoginLimits};
use crate::context::Context;
use crate::handler::{ErasedHandler, Handler, Outcome};
use crate::session::Session;

/// How calls of one method are scheduled on a connection.
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
/// `system.describe` documents.
#[derive(Debug, Clone)]
pub struct MethodInfo {
    name: String,
    doc: Option<String>,
    params: Option<Schema>,
    result: Option<Schema>,
    notification: bool,
    concurrency: Option<Concurrency>,
    safe: bool,
    task: bool,
    access: Access,
    timeout: Option<Duration>,
}

impl MethodInfo {
    fn new(name: &str, params: Option<Schema>, result: Option<Schema>) -> Self {
        Self {
            name: name.to_owned(),
            doc: None,
            params,
            result,
            notification: false,
            concurrency: None,
            safe: false,
            task: false,
            access: Access::Public,
            timeout: None,
        }
    }

    /// The method's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its documentation, if any was given.
    pub fn doc(&self) -> Option<&str> {
        self.doc.as_deref()
    }

    /// JSON Schema of its params (`None`: takes none, or raw).
    pub fn params(&self) -> Option<&Schema> {
        self.params.as_ref()
    }

    /// JSON Schema of its result (`None`: returns nothing, or raw).
    pub fn result(&self) -> Option<&Schema> {
        self.result.as_ref()
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
        Box::pin(handler(params.map(ToOwned::to_owned), call.into_context()))
    })
}

pub(crate) struct Entry<S> {
    pub(crate) name: Arc<str>,
    pub(crate) info: MethodInfo,
    pub(crate) handler: ErasedHandler<S>,
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
/// #[derive(Deserialize, schemars::JsonSchema)]
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
pub struct MethodConfig<'a> {
    info: &'a mut MethodInfo,
}

impl MethodConfig<'_> {
    /// Documentation, shown by introspection.
    pub fn doc(self, doc: impl Into<String>) -> Self {
        self.info.doc = Some(doc.into());
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

    /// Runs each call on a Tokio task of its own, for CPU-heavy or
    /// blocking work. By default a handler's future is polled on its
    /// connection's task, which is cheaper (no task, no wake-up across
    /// threads) but means a handler that computes for long without
    /// awaiting holds up the rest of its connection. The task is aborted
    /// when the call is cancelled or its connection torn down.
    pub fn own_task(self) -> Self {
        self.info.task = true;
        self
    }

    /// Only an authenticated caller may call this method (see
    /// [`Router::authenticator`]). Anyone else's request is answered
    /// -32001 ([`ErrorObject::UNAUTHORIZED`](crate::ErrorObject::UNAUTHORIZED)),
    /// and a notification is dropped (and logged); the handler never runs.
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
    /// its own task (see [`MethodConfig::own_task`]) is aborted, and its
    /// slot is freed. A notification over its limit is dropped the same way,
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
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner<S> {
        // Building happens before the router is shared; if it already is,
        // this router gets its own copy of the table (entries stay shared).
        Arc::make_mut(&mut self.inner)
    }

    fn insert(
        &mut self,
        name: &str,
        info: MethodInfo,
        handler: ErasedHandler<S>,
    ) -> MethodConfig<'_> {
        let name: Arc<str> = name.into();
        let entry = Arc::new(Entry {
            name: name.clone(),
            info,
            handler,
        });
        let slot = self.inner_mut().methods.entry(name).insert_entry(entry);
        let entry = Arc::get_mut(slot.into_mut()).map(|e| &mut e.info);
        MethodConfig {
            // The entry was created just above and is not shared yet.
            info: entry.unwrap_or_else(|| unreachable!("a fresh entry is unshared")),
        }
    }

    /// Registers a request handler (see [`Handler`] for the shapes it may
    /// have). Replaces any earlier handler of that name.
    pub fn method<Args, H: Handler<Args, S>>(
        &mut self,
        name: &str,
        handler: H,
    ) -> MethodConfig<'_> {
        let sig = H::signature(&mut SchemaGenerator::default());
        let info = MethodInfo::new(name, sig.params, sig.result);
        self.insert(
            name,
            info,
            Arc::new(move |params, call| handler.call(params, call)),
        )
    }

    /// Registers a notification handler: its return value is never sent,
    /// and calls of it run in arrival order unless configured otherwise.
    pub fn notification<Args, H: Handler<Args, S>>(
        &mut self,
        name: &str,
        handler: H,
    ) -> MethodConfig<'_> {
        let config = self.method(name, handler);
        config.info.notification = true;
        config
    }

    /// Registers a handler that takes the params and gives the result as raw
    /// JSON, for methods whose types are only known at run time. Its
    /// introspection shows no param types.
    pub fn method_raw<F, Fut>(&mut self, name: &str, handler: F) -> MethodConfig<'_>
    where
        F: Fn(Option<Box<RawValue>>, Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let info = MethodInfo::new(name, None, None);
        self.insert(name, info, raw_handler(handler))
    }

    /// Handles every method that has no handler of its own (instead of
    /// answering -32601). [`Context::method`] tells which was called.
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
        self.inner.methods.get(name)
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

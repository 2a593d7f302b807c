//! Tower middleware around incoming calls: each call is a [`Call`] that goes through the router's layers to its handler.
//!
//! [`Router::layer`](crate::Router::layer) wraps every incoming call,
//! requests and notifications alike, alone or in a batch, on every
//! transport, in a [`tower::Layer`]: a timeout, a concurrency or rate
//! limit, metrics, logging, an access rule of the application's own. A
//! layer sees the call as a [`Call`] (method, params, id, session, peer)
//! and its answer as a [`Reply`] (the result or the error object); the
//! service it wraps is [`Next`], the layers added before it and then the
//! method's handler.
//!
//! What the layers' errors become (a notification's are logged, never
//! answered):
//!
//! | error | answered |
//! |---|---|
//! | [`tower::timeout::error::Elapsed`] (`TimeoutLayer`) | -32002 [`ErrorObject::HANDLER_TIMEOUT`], naming the method; the handler is dropped and its [`Context`](crate::Context) token fires |
//! | [`tower::load_shed::error::Overloaded`] (`LoadShedLayer`) | -32000 [`ErrorObject::SERVER_BUSY`], naming the method |
//! | an [`ErrorObject`] | that error object, as it is |
//! | anything else | -32603 "Internal error"; the error itself is logged |
//!
//! [`Router::connection_layer`](crate::Router::connection_layer) adds
//! layers each connection applies for itself, outside the router's: a
//! limit there counts one connection's calls, and, when the router has no
//! layers of its own, connections do not queue for one service.
//!
//! A call a layer holds back (a concurrency limit at its bound, a rate
//! limit waiting for its next period) waits, in order, and keeps its
//! connection's handler slot meanwhile; a limit that should refuse
//! instead goes under `LoadShedLayer`.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use serde_json::value::RawValue;
use tower::{Layer, Service};

use crate::auth::{Access, Identity};
use crate::context::CallToken;
use crate::dispatch::{when_allowed, Env};
use crate::error::ErrorObject;
use crate::excerpt::excerpt;
use crate::handler::{BoxFuture, ErasedHandler};
use crate::log_limit::LogLimit;
use crate::message::{Id, Version};
use crate::peer::Peer;
use crate::router::Router;
use crate::session::Session;

/// The answer to a [`Call`], the response type of the services in a stack
/// of layers: the handlers' own. A notification's reply is not sent (its
/// error is logged).
pub use crate::handler::Reply;

/// The error type of the services in a stack of layers (tower's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One incoming call, as the router's layers see it: the request type of
/// the [`tower::Service`]s they wrap.
///
/// The handler was chosen by the method the peer called; a layer reads the
/// call and may answer it itself (with a [`Reply`] or an error) instead of
/// passing it on.
///
/// ```
/// use rpcpeer::middleware::{Call, Next, Reply};
/// use rpcpeer::{ErrorObject, Router, Session};
/// use tower::{layer::layer_fn, service_fn, Service};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut router = Router::new();
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
/// router.method("admin.reset", || async { Ok::<_, ErrorObject>(true) });
/// // Refuses the `admin.` methods to callers with no identity, before their handler runs.
/// router.layer(layer_fn(|mut next: Next| {
///     service_fn(move |call: Call| {
///         let refused = call.method().starts_with("admin.") && call.identity().is_none();
///         let answer = (!refused).then(|| next.call(call));
///         async move {
///             match answer {
///                 Some(answer) => answer.await,
///                 None => Ok(Reply::error(ErrorObject::new(-32001, "admin methods need a login"))),
///             }
///         }
///     })
/// }));
/// let session = Session::new();
/// let ping = router.handle_text(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#, &session).await;
/// assert_eq!(ping.unwrap(), r#"{"jsonrpc":"2.0","result":"pong","id":1}"#);
/// let reset = router.handle_text(r#"{"jsonrpc":"2.0","method":"admin.reset","id":2}"#, &session).await;
/// assert!(reset.unwrap().contains("need a login"));
/// # }
/// ```
pub struct Call {
    method: Arc<str>,
    id: Option<Id>,
    version: Version,
    params: Option<Box<RawValue>>,
    peer: Peer,
    session: Session,
    /// Runs the handler once the innermost service is called. Always set
    /// until then: a `Call` is made only here and cannot be cloned.
    run: Option<Run>,
}

/// What the innermost service does with a call: its handler's future (or
/// the refusal of a call to a method that is missing or not allowed).
type Run = Box<dyn FnOnce(Call) -> BoxFuture<Result<Reply, BoxError>> + Send>;

impl Call {
    /// The method called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request's id; `None` for a notification.
    pub fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// Whether this is a notification (no reply will be sent).
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }

    /// The version the call was written in.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The params as the peer sent them; `None` when absent.
    pub fn params(&self) -> Option<&RawValue> {
        self.params.as_deref()
    }

    /// The connection's store (see [`Session`]).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The peer that called (detached for a one-shot HTTP request).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Who called, when the connection (or HTTP request) is logged in.
    pub fn identity(&self) -> Option<Identity> {
        self.session.get::<Identity>()
    }
}

/// Never prints the params whole: a peer's 16 MiB text stays out of logs.
impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("method", &excerpt(&self.method))
            .field("id", &self.id)
            .field("version", &self.version)
            .field("params", &self.params.as_deref().map(|p| excerpt(p.get())))
            .finish_non_exhaustive()
    }
}

/// The service a layer wraps: the layers added before it, then the
/// called method's handler. It is always ready; only layers hold calls
/// back.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use rpcpeer::middleware::{Call, Next};
/// use rpcpeer::{ErrorObject, Router, Session};
/// use tower::{layer::layer_fn, service_fn, Service};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut router = Router::new();
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
/// router.method("fail", || async { Err::<(), _>(ErrorObject::invalid_params("never")) });
/// // Counts the calls that fail, passing every call on to `next`.
/// let failed = Arc::new(AtomicUsize::new(0));
/// let count = failed.clone();
/// router.layer(layer_fn(move |mut next: Next| {
///     let count = count.clone();
///     service_fn(move |call: Call| {
///         let (answer, count) = (next.call(call), count.clone());
///         async move {
///             let reply = answer.await?;
///             if reply.is_error() {
///                 count.fetch_add(1, Ordering::Relaxed);
///             }
///             Ok::<_, rpcpeer::middleware::BoxError>(reply)
///         }
///     })
/// }));
/// let session = Session::new();
/// router.handle_text(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#, &session).await;
/// router.handle_text(r#"{"jsonrpc":"2.0","method":"fail","id":2}"#, &session).await;
/// assert_eq!(failed.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub struct Next {
    inner: Box<dyn Erased>,
}

/// A service over calls, with its types erased so that any stack of
/// layers has one type.
trait Erased: Send {
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>>;
    fn call(&mut self, call: Call) -> BoxFuture<Result<Reply, BoxError>>;
}

/// The innermost service: runs the call's handler.
struct Handlers;

impl Erased for Handlers {
    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut call: Call) -> BoxFuture<Result<Reply, BoxError>> {
        match call.run.take() {
            Some(run) => run(call),
            None => Box::pin(std::future::ready(Ok(Reply::error(
                ErrorObject::internal_error(),
            )))),
        }
    }
}

/// A layer's service, with its error boxed and its future erased.
struct Layered<T>(T);

impl<T> Erased for Layered<T>
where
    T: Service<Call, Response = Reply> + Send + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send + 'static,
{
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, call: Call) -> BoxFuture<Result<Reply, BoxError>> {
        let answer = self.0.call(call);
        Box::pin(async move { answer.await.map_err(Into::into) })
    }
}

impl Service<Call> for Next {
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<Result<Reply, BoxError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        self.inner.call(call)
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}

/// One layer as the router keeps it: applied to the stack below it when
/// the router first needs the stack.
pub(crate) type Wrap = Arc<dyn Fn(Next) -> Next + Send + Sync>;

/// A layer, kept to be applied later.
pub(crate) fn wrap<L>(layer: L) -> Wrap
where
    L: Layer<Next> + Send + Sync + 'static,
    L::Service: Service<Call, Response = Reply> + Send + 'static,
    <L::Service as Service<Call>>::Error: Into<BoxError>,
    <L::Service as Service<Call>>::Future: Send + 'static,
{
    Arc::new(move |next| Next {
        inner: Box::new(Layered(layer.layer(next))),
    })
}

/// A stack of layers over the handlers, made into one service whose
/// `poll_ready` and `call` run for one call at a time (what `call` returns
/// runs concurrently). The router's is shared by all its connections, so
/// that a limit counts every call, and so that a service that cannot be
/// cloned, a rate limit, serves every connection. A connection's own
/// (`Router::connection_layer`) is shared by that connection's calls.
pub(crate) struct Stack {
    service: tokio::sync::Mutex<Next>,
}

impl Stack {
    /// Applies `layers` in the order they were added, the last outermost,
    /// over `below`: the router's layers under a connection's own, or
    /// (`None`) the handlers. Made when the first call needs it, on the
    /// runtime: some layers (tower's rate limit) need one to be made.
    pub(crate) fn build(layers: &[Wrap], below: Option<&Arc<Stack>>) -> Arc<Self> {
        let inner: Box<dyn Erased> = match below {
            Some(router) => Box::new(RouterStack(Arc::clone(router))),
            None => Box::new(Handlers),
        };
        let service = layers.iter().fold(Next { inner }, |next, wrap| wrap(next));
        Arc::new(Self {
            service: tokio::sync::Mutex::new(service),
        })
    }

    /// Runs `call` through the layers. The lock covers readiness and
    /// `call` only, so the calls' answers are awaited concurrently.
    async fn serve(self: Arc<Self>, call: Call) -> Result<Reply, BoxError> {
        let answer = {
            // NB: the lock is held from readiness to `call`, as tower's
            // contract asks (the capacity `poll_ready` reserved is this
            // call's), and released before the answer is awaited.
            let mut service = self.service.lock().await;
            poll_fn(|cx| service.poll_ready(cx)).await?;
            service.call(call)
        };
        answer.await
    }
}

/// The router's layers under a connection's own.
struct RouterStack(Arc<Stack>);

impl Erased for RouterStack {
    // NB: always ready: the router's service is shared, so its readiness
    // is waited for under its lock when the call comes, not reserved by a
    // connection's layer that may call later (or never).
    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> BoxFuture<Result<Reply, BoxError>> {
        Box::pin(Arc::clone(&self.0).serve(call))
    }
}

/// A call that goes through `stack` (its connection's layers, the
/// router's, or both): built at once, run when polled. A missing or
/// forbidden method is refused inside, so the layers see that call too.
pub(crate) fn through<S: Send + Sync + 'static>(
    env: &Env<'_, S>,
    stack: &Arc<Stack>,
    handler: Option<ErasedHandler<S>>,
    access: &Access,
    (method, id, version): (Arc<str>, Option<Id>, Version),
    params: Option<&RawValue>,
) -> BoxFuture<Reply> {
    let connection = env.connection.clone();
    let access = access.clone();
    let run: Run = Box::new(move |call: Call| {
        let Some(handler) = handler else {
            let missing = ErrorObject::method_not_found(&call.method);
            return Box::pin(std::future::ready(Ok(Reply::error(missing))));
        };
        let token = CallToken::default();
        let work = when_allowed(
            &connection,
            handler,
            access,
            call.params,
            (call.method, call.id, call.version),
            token.clone(),
        );
        Box::pin(async move {
            // NB: a layer may drop the handler before it finishes (a
            // timeout): work the handler spawned with its token must
            // learn it, as when the call is cancelled.
            let guard = token.cancel_on_drop();
            let reply = work.await;
            guard.disarm();
            Ok(reply)
        })
    });
    let call = Call {
        method,
        id,
        version,
        params: params.map(ToOwned::to_owned),
        peer: env.connection.peer.clone(),
        session: env.connection.session.clone(),
        run: Some(run),
    };
    let stack = Arc::clone(stack);
    Box::pin(async move {
        let method = Arc::clone(&call.method);
        let notification = call.is_notification();
        match stack.serve(call).await {
            Ok(reply) => reply,
            Err(err) => Reply::error(refusal(&method, notification, err)),
        }
    })
}

/// What a layer's error becomes on the wire (see the module's table).
fn refusal(method: &str, notification: bool, err: BoxError) -> ErrorObject {
    let err = match err.downcast::<ErrorObject>() {
        Ok(object) => return *object,
        Err(err) => err,
    };
    let method = excerpt(method);
    let object = if err.is::<tower::timeout::error::Elapsed>() {
        ErrorObject::new(
            ErrorObject::HANDLER_TIMEOUT,
            format!("Timeout: `{method}` did not finish within the time limit of a middleware layer and was cancelled"),
        )
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ErrorObject::new(
            ErrorObject::SERVER_BUSY,
            format!("Server busy: `{method}` was refused by a load limit; retry later"),
        )
    } else {
        tracing::error!(%method, "a middleware layer failed: {err}");
        return ErrorObject::internal_error();
    };
    if notification {
        // A peer can cause this with every notification: one warn line
        // per period; the call's own line (at debug) says the rest.
        static REFUSED: LogLimit = LogLimit::new();
        if let Some(more) = REFUSED.allow() {
            tracing::warn!(%method, "a middleware layer refused a notification: {err}{more}");
        }
    }
    object
}

impl<S: Send + Sync + 'static> Router<S> {
    /// Wraps every incoming call in a [`tower::Layer`]: requests and
    /// notifications, alone or in a batch, over any transport and HTTP. A
    /// layer added later wraps the ones added before it (it sees each call
    /// first), as with axum's `Router::layer`; a
    /// [`tower::ServiceBuilder`] is one layer, its first layer outermost.
    ///
    /// The layers make one service for the router, shared by all its
    /// connections: a concurrency or rate limit counts every call of every
    /// connection. It is made when the first call needs it (on the
    /// runtime); a copy of the router changed after it was cloned gets a
    /// service of its own, with state of its own. See
    /// [`middleware`](crate::middleware) for what the layers' errors
    /// become on the wire.
    ///
    /// As everywhere in tower, a call goes into the stack only once the
    /// whole stack is ready (each layer's `poll_ready` asks the one inside
    /// it): a layer outside a rate or concurrency limit sees a call only
    /// when the limit lets it through, so it cannot time or count the wait.
    /// Put such a layer under [`connection_layer`](Self::connection_layer),
    /// which wraps the router's shared service from outside.
    ///
    /// A router without layers pays nothing for this: its calls take the
    /// path they always took. With layers, a call costs a few allocations
    /// more (its params are copied, its future goes through each layer),
    /// and it takes the one service's lock: with connections served on
    /// several threads, calls queue for it and wake each other across
    /// threads, which can cost more than a small call itself (the
    /// project's BENCHMARKS.md has figures). A layer that needs nothing
    /// shared between connections costs less under
    /// [`connection_layer`](Self::connection_layer).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rpcpeer::{ErrorObject, Router};
    /// use tower::ServiceBuilder;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut router = Router::new();
    /// router.method("echo", |(text,): (String,)| async move { Ok::<_, ErrorObject>(text) });
    /// router.method("stall", || async {
    ///     std::future::pending::<()>().await;
    ///     Ok::<_, ErrorObject>(())
    /// });
    /// router.layer(
    ///     ServiceBuilder::new()
    ///         .timeout(Duration::from_millis(50))
    ///         .concurrency_limit(64),
    /// );
    ///
    /// let session = rpcpeer::Session::new();
    /// let echo = router.handle_text(r#"{"jsonrpc":"2.0","method":"echo","params":["hi"],"id":1}"#, &session).await;
    /// assert_eq!(echo.unwrap(), r#"{"jsonrpc":"2.0","result":"hi","id":1}"#);
    /// let stall = router.handle_text(r#"{"jsonrpc":"2.0","method":"stall","id":2}"#, &session).await;
    /// assert!(stall.unwrap().contains(r#""code":-32002"#)); // ErrorObject::HANDLER_TIMEOUT
    /// # }
    /// ```
    pub fn layer<L>(&mut self, layer: L) -> &mut Self
    where
        L: Layer<Next> + Send + Sync + 'static,
        L::Service: Service<Call, Response = Reply> + Send + 'static,
        <L::Service as Service<Call>>::Error: Into<BoxError>,
        <L::Service as Service<Call>>::Future: Send + 'static,
    {
        self.add_layer(wrap(layer));
        self
    }

    /// Wraps every incoming call in a [`tower::Layer`] that each connection
    /// applies for itself: a connection makes a service of these layers of
    /// its own when its first call needs it, and its calls go through that
    /// one. So a limit counts the calls of one connection; what the
    /// connections should share (a limit over all of them, a metrics
    /// registry) goes in an `Arc` the layer holds, or under
    /// [`layer`](Self::layer). A call goes through its connection's layers
    /// (the last added outermost), then the router's, then its handler. A
    /// lone HTTP request, like each call of [`handle_text`](Self::handle_text),
    /// is a connection of its own; a batch's calls are their connection's.
    ///
    /// On a router with no [`layer`](Self::layer), connections do not queue
    /// for one service: with connections served on several threads, a
    /// layered call then costs a fraction of what it costs under `layer`,
    /// where calls wait for the one service's lock and wake each other
    /// across threads (the project's BENCHMARKS.md has figures). So a layer
    /// that needs nothing shared, a timeout, logging or an access rule, is
    /// cheaper here. A router without such layers pays nothing for them,
    /// nor does a connection until its first call.
    ///
    /// The router's layers look always ready to these: a call waits for
    /// them (their lock, a limit among them) only once these have let it
    /// through. So a timeout here counts that wait too, and a load shed
    /// here does not shed for a limit among the router's layers (put it
    /// over that limit, under `layer`).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use rpcpeer::{ErrorObject, Router, Session};
    /// use tower::limit::ConcurrencyLimitLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut router = Router::new();
    /// // Notes the most calls it ever had running at once.
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (r, m) = (running.clone(), most.clone());
    /// router.method("work", move || {
    ///     let (running, most) = (r.clone(), m.clone());
    ///     async move {
    ///         most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    ///         tokio::task::yield_now().await;
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///         Ok::<_, ErrorObject>(())
    ///     }
    /// });
    /// // One call at a time on each connection.
    /// router.connection_layer(ConcurrencyLimitLayer::new(1));
    ///
    /// // A batch's calls are one connection's: they run one at a time.
    /// let batch = r#"[{"jsonrpc":"2.0","method":"work","id":1},
    ///                 {"jsonrpc":"2.0","method":"work","id":2}]"#;
    /// router.handle_text(batch, &Session::new()).await;
    /// assert_eq!(most.load(Ordering::SeqCst), 1);
    ///
    /// // Two connections have a limit each: a call of each runs at once
    /// // (under `layer`, the second would have waited for the first).
    /// let call = r#"{"jsonrpc":"2.0","method":"work","id":3}"#;
    /// let (a, b) = (Session::new(), Session::new());
    /// tokio::join!(router.handle_text(call, &a), router.handle_text(call, &b));
    /// assert_eq!(most.load(Ordering::SeqCst), 2);
    /// # }
    /// ```
    pub fn connection_layer<L>(&mut self, layer: L) -> &mut Self
    where
        L: Layer<Next> + Send + Sync + 'static,
        L::Service: Service<Call, Response = Reply> + Send + 'static,
        <L::Service as Service<Call>>::Error: Into<BoxError>,
        <L::Service as Service<Call>>::Future: Send + 'static,
    {
        self.add_connection_layer(wrap(layer));
        self
    }
}

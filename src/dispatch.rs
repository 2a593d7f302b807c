//! Admitting one incoming message: find its handler and build its call, or say what else it is. One path for connections and for `handle_text`.

use std::borrow::Cow;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde_json::value::RawValue;

use crate::auth::Access;
use crate::context::{CallToken, Connection, Incoming};
use crate::error::ErrorObject;
use crate::excerpt::excerpt;
use crate::handler::{BoxFuture, ErasedHandler, Reply};
use crate::log_limit::LogLimit;
use crate::message::{
    encode_response, parse, Frame, Id, Message, Rejected, Request, Response, Version,
};
use crate::method_cache::MethodCache;
use crate::middleware::Stack;
use crate::peer::Peer;
use crate::polling::Polling;
use crate::router::{Concurrency, Router};
use crate::running::{join_batch, Entry, Work};
use crate::scheduler::{Scheduler, Weight};
use crate::session::Session;

/// What a call's handler gets to see of its connection.
pub(crate) struct Env<'a, S> {
    pub(crate) router: &'a Router<S>,
    /// The peer, session, state and authenticator the handlers get.
    pub(crate) connection: &'a Arc<Connection<S>>,
    /// The notification that cancels a request; `None` when cancelling is off.
    pub(crate) cancel_method: Option<&'a str>,
    /// Whether a call read now would start at once.
    pub(crate) start: Start,
}

/// Which calls read now would start at once, so that a handler that needs
/// no future ([`SyncFn`](crate::SyncFn)) can run as it is read: it then
/// does what it would have done a moment later, polled first among the
/// calls started (for a batch's entry: no entry before it waits to run).
#[derive(Clone, Copy)]
pub(crate) struct Start {
    concurrent: bool,
    in_order: bool,
    exclusive: bool,
}

impl Start {
    /// None: calls started before wait to be polled, the outbox is full,
    /// or there is no connection (`handle_text`).
    pub(crate) const LATER: Start = Start {
        concurrent: false,
        in_order: false,
        exclusive: false,
    };

    /// A message alone, or a batch's entry with no entry before it still
    /// to run: as the scheduler says for its kind.
    pub(crate) fn alone(scheduler: &Scheduler<Work>) -> Start {
        Start {
            concurrent: scheduler.may_start(Concurrency::Concurrent),
            in_order: scheduler.may_start(Concurrency::InOrder),
            exclusive: scheduler.may_start(Concurrency::Exclusive),
        }
    }

    fn now(self, kind: Concurrency) -> bool {
        match kind {
            Concurrency::Concurrent => self.concurrent,
            Concurrency::InOrder => self.in_order,
            Concurrency::Exclusive => self.exclusive,
        }
    }
}

impl<S: Send + Sync + 'static> Env<'_, S> {
    /// The layers this connection's calls go through: its own over the
    /// router's; `None` when there are none.
    #[inline]
    fn stack(&self) -> Option<&Arc<Stack>> {
        let own = self.router.connection_layers();
        if own.is_empty() {
            return self.router.stack();
        }
        let made = || Stack::build(own, self.router.stack());
        Some(self.connection.layers.get_or_init(made))
    }
}

/// What an incoming message turned out to be.
pub(crate) enum Admitted {
    /// A call to run, scheduled as `Concurrency`; `Version` is what the peer wrote in.
    Call(Concurrency, Version, Entry),
    /// An answer to one of our own requests.
    Response(Response),
    /// The peer cancels one of its requests (the id, when readable).
    Cancel(Version, Option<Id>),
    /// Not readable as a message: answered with its error (spec §5).
    Unreadable(Rejected),
    /// Answered without running anything (busy).
    Answered(String),
    /// Nothing to do (a notification dropped while busy).
    Dropped,
}

/// Admits one message. With `full` (what the connection holds), the
/// connection has no room: a request is answered "busy" and a
/// notification dropped, but responses and cancels are still taken (they
/// free room rather than use it).
pub(crate) fn admit<S: Send + Sync + 'static>(
    env: &Env<'_, S>,
    methods: Option<&mut MethodCache<S>>,
    item: Result<Message<'_>, Rejected>,
    full: Option<Weight>,
) -> Admitted {
    match item {
        Err(rejected) => unreadable(rejected),
        Ok(Message::Response(response)) => Admitted::Response(response),
        Ok(Message::Notification(n)) if env.cancel_method == Some(&*n.method) => {
            Admitted::Cancel(n.version, n.params.and_then(crate::cancel::target))
        }
        Ok(Message::Request(req)) if full.is_some() => {
            Admitted::Answered(busy_answer(&req, full.unwrap_or_default()))
        }
        Ok(Message::Notification(n)) if full.is_some() => dropped(&n.method),
        Ok(Message::Request(req)) => {
            let (kind, entry) = traced(
                env,
                methods,
                req.version,
                Some(req.id),
                &req.method,
                req.params,
            );
            Admitted::Call(kind, req.version, entry)
        }
        Ok(Message::Notification(n)) => {
            let (kind, entry) = traced(env, methods, n.version, None, &n.method, n.params);
            Admitted::Call(kind, n.version, entry)
        }
    }
}

/// A message that is no call: logged, and handed back to be answered.
// NB: the cold paths of `admit` are kept out of it, so that the path of a
// well-formed call lies together.
#[cold]
#[inline(never)]
fn unreadable(rejected: Rejected) -> Admitted {
    if rejected.notification {
        // No reply may say it (spec §4.1): the log must.
        static UNANSWERED: LogLimit = LogLimit::new();
        match UNANSWERED.allow() {
            Some(more) => {
                tracing::warn!(error = %rejected.error, "a notification refused, unanswered{more}")
            }
            None => {
                tracing::debug!(error = %rejected.error, "a notification refused, unanswered")
            }
        }
    } else {
        tracing::debug!(error = %rejected.error, "rejected a message");
    }
    Admitted::Unreadable(rejected)
}

/// The answer to a request read while the connection is full.
#[cold]
#[inline(never)]
fn busy_answer(req: &Request<'_>, held: Weight) -> String {
    encode_response(req.version, &req.id, Err(&busy(held)))
}

/// A notification read while the connection is full.
#[cold]
#[inline(never)]
fn dropped(method: &str) -> Admitted {
    // No reply can say "busy" to a notification; the log must, but a peer
    // that keeps sending them must not flood it.
    static DROPPED: LogLimit = LogLimit::new();
    match DROPPED.allow() {
        Some(more) => {
            tracing::warn!(method = %excerpt(method), "queue full while waiting for a reply: notification dropped{more}")
        }
        None => {
            tracing::debug!(method = %excerpt(method), "queue full while waiting for a reply: notification dropped")
        }
    }
    Admitted::Dropped
}

fn busy(held: Weight) -> ErrorObject {
    ErrorObject::new(
        ErrorObject::SERVER_BUSY,
        format!(
            "Server busy: {} calls ({} bytes) wait on this connection; retry later",
            held.calls, held.bytes
        ),
    )
}

/// [`prepare`] inside the call's span (see `observe`), which its handler
/// then runs in; with the span's level off, just `prepare`.
#[inline(always)]
fn traced<S: Send + Sync + 'static>(
    env: &Env<'_, S>,
    methods: Option<&mut MethodCache<S>>,
    version: Version,
    id: Option<Id>,
    method: &str,
    params: Option<&RawValue>,
) -> (Concurrency, Entry) {
    if crate::observe::spans_wanted() {
        in_span(env, methods, version, id, method, params)
    } else {
        prepare(env, methods, version, id, method, params)
    }
}

/// The span's level is on: made, and entered while the handler's future
/// is built (its params decoded), then around each poll of it.
#[inline(never)]
fn in_span<S: Send + Sync + 'static>(
    env: &Env<'_, S>,
    methods: Option<&mut MethodCache<S>>,
    version: Version,
    id: Option<Id>,
    method: &str,
    params: Option<&RawValue>,
) -> (Concurrency, Entry) {
    let connection = env.connection.peer.connection_id();
    let span = crate::observe::incoming(method, id.as_ref(), connection, &env.connection.session);
    let (kind, mut entry) = span.in_scope(|| prepare(env, methods, version, id, method, params));
    entry.instrument(span);
    (kind, entry)
}

/// A handler called as its call is read: answered already, or its future.
enum Started {
    Answered(Reply),
    Running(BoxFuture<Reply>),
}

/// Looks the method up and builds its handler's future (params are decoded
/// here, once); nothing runs until the entry is polled.
// NB: a call refused here is answered by cold functions, kept out of line,
// so that the path nearly every call takes lies together.
fn prepare<S: Send + Sync + 'static>(
    env: &Env<'_, S>,
    methods: Option<&mut MethodCache<S>>,
    version: Version,
    id: Option<Id>,
    method: &str,
    params: Option<&RawValue>,
) -> (Concurrency, Entry) {
    static PUBLIC: Access = Access::Public;
    let is_notification = id.is_none();
    // NB: the name is borrowed until a future needs it, so a call answered
    // at once writes no reference count. The connection's copy of it, or,
    // without a connection (`handle_text`), where there is nowhere to keep
    // one for the next call, the router's.
    let found = match methods {
        Some(methods) => methods.lookup(env.router, method),
        None => env.router.lookup(method).map(|entry| (&entry.name, entry)),
    };
    let (name, handler, now, kind, own_task, access, limit) = match found {
        Some((name, entry)) => (
            Cow::Borrowed(name),
            Some(&entry.handler),
            entry.now.as_ref(),
            entry.info.concurrency(is_notification),
            entry.info.runs_on_own_task(),
            entry.info.access(),
            entry.info.timeout(),
        ),
        None => (
            Cow::Owned(Arc::from(method)),
            env.router.fallback_handler(),
            None,
            Concurrency::default_for(is_notification),
            false,
            &PUBLIC,
            None,
        ),
    };
    let plan = Plan {
        kind,
        version,
        own_task,
        limit,
    };
    if let Some(stack) = env.stack() {
        let call = (Arc::clone(&name), id.clone(), version);
        let work = crate::middleware::through(env, stack, handler.cloned(), access, call, params);
        return plan.working(env, id, name.into_owned(), work, None);
    }
    let Some(handler) = handler else {
        return not_found(env, plan, &name, id);
    };
    let at_once = now.filter(|_| !own_task && limit.is_none() && env.start.now(kind));
    // NB: access is checked when the call starts, against the session as it
    // is then, since a login or a logout read before the call may not have
    // run yet: a call that starts as it is read is checked now, any other
    // by `when_allowed`, which builds the handler's future only then, so
    // that params are not even decoded for a caller who may not call it.
    // Public methods pay this one branch.
    if *access != Access::Public
        && (at_once.is_none()
            || crate::auth::check(access, &name, &env.connection.session).is_err())
    {
        let token = CallToken::default();
        let work = when_allowed(
            env.connection,
            handler.clone(),
            access.clone(),
            params.map(ToOwned::to_owned),
            (Arc::clone(&name), id.clone(), version),
            token.clone(),
        );
        return plan.working(env, id, name.into_owned(), work, Some(token));
    }
    let mut token = None;
    // NB: a handler can panic before its future exists (a closure that
    // checks its params before its `async` block, a `Deserialize` impl that
    // panics), or while it runs here: caught like a panic in the future, so
    // the caller gets -32603 and the connection is not torn down with the
    // driver's task.
    let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut call = Incoming {
            method: &name,
            id: id.as_ref(),
            version,
            connection: env.connection,
            token: &mut token,
        };
        match at_once.and_then(|now| now(params, &mut call)) {
            Some(reply) => Started::Answered(reply),
            None => Started::Running(handler(params, call)),
        }
    }));
    let work = match built {
        Ok(Started::Running(work)) => work,
        Ok(Started::Answered(reply)) => {
            return (
                plan.kind,
                Entry::answered(id.as_ref(), version, &name, &reply),
            );
        }
        Err(panic) => {
            crate::running::log_panic(&name, panic.as_ref());
            return refused(plan, &name, id, ErrorObject::internal_error());
        }
    };
    plan.working(env, id, name.into_owned(), work, token)
}

/// How a call is to run: as its method was registered, answered in the
/// version it came in.
#[derive(Clone, Copy)]
struct Plan {
    kind: Concurrency,
    version: Version,
    own_task: bool,
    limit: Option<Duration>,
}

impl Plan {
    /// The entry of a call whose handler's future is `work`: on a task of
    /// its own if its method asks for one, within its time limit if it has
    /// one.
    fn working<S: Send + Sync + 'static>(
        self,
        env: &Env<'_, S>,
        id: Option<Id>,
        name: Arc<str>,
        work: BoxFuture<Reply>,
        token: Option<CallToken>,
    ) -> (Concurrency, Entry) {
        let work = if self.own_task {
            on_own_task(work, env.connection.peer.connection_id())
        } else {
            work
        };
        // NB: outside `on_own_task`, so that the answer goes out on time even
        // when the handler computes without yielding on its thread.
        let work = match self.limit {
            None => work,
            Some(limit) => within_limit(work, limit, Arc::clone(&name), token.clone()),
        };
        (
            self.kind,
            Entry::working(id, self.version, name, work, token),
        )
    }
}

/// A call answered before it runs: a request gets `err`, a notification
/// nothing (its error has nowhere to go but the log). Answered at once, but
/// in its turn: an in-order notification still waits behind the ones before
/// it.
#[cold]
#[inline(never)]
fn refused(plan: Plan, name: &str, id: Option<Id>, err: ErrorObject) -> (Concurrency, Entry) {
    let reply = match &id {
        Some(id) => Some(encode_response(plan.version, id, Err(&err))),
        None => {
            tracing::debug!(method = %excerpt(name), "notification refused: {err}");
            None
        }
    };
    (plan.kind, Entry::done(reply))
}

/// A call of a method the router does not have, and no fallback.
#[cold]
#[inline(never)]
fn not_found<S: Send + Sync + 'static>(
    env: &Env<'_, S>,
    plan: Plan,
    name: &str,
    id: Option<Id>,
) -> (Concurrency, Entry) {
    // NB: the cancel notification is served by the driver itself; as a
    // request (LSP answers unknown `$/` requests -32601 too) it is no
    // method, and the message says how it is sent.
    let mut missing = ErrorObject::method_not_found(name);
    if id.is_some() && env.cancel_method == Some(name) {
        missing
            .message
            .push_str(": it is a notification here, sent without an id");
    }
    refused(plan, name, id, missing)
}

/// A call to a method that is not public, which did not start as it was
/// read: when it starts, its caller's access is checked (a login or a
/// logout may have run since it was read), then, with
/// [`Router::credentials_in_params`](crate::Router::credentials_in_params),
/// logged in with the leading params; the handler's future is built only
/// once the caller may call it, and never if not. Calls that go through
/// the router's layers run this way too (`middleware`).
pub(crate) fn when_allowed<S: Send + Sync + 'static>(
    connection: &Arc<Connection<S>>,
    handler: ErasedHandler<S>,
    access: Access,
    params: Option<Box<RawValue>>,
    (name, id, version): (Arc<str>, Option<Id>, Version),
    token: CallToken,
) -> BoxFuture<Reply> {
    let connection = connection.clone();
    Box::pin(async move {
        let (session, auth) = (&connection.session, connection.auth.as_ref());
        // The params the handler gets, once the caller may call it.
        let allowed = async {
            let Err(err) = crate::auth::check(&access, &name, session) else {
                return Ok(params);
            };
            let in_params = auth
                .filter(|auth| auth.credentials_in_params && err.code == ErrorObject::UNAUTHORIZED);
            let Some((auth, (credentials, rest))) = in_params
                .and_then(|auth| Some((auth, crate::auth::split_credentials(params.as_deref())?)))
            else {
                return Err(err);
            };
            // NB: the caller may not have meant its params as credentials
            // at all: the refusal says how they were read.
            auth.login(session, credentials).await.map_err(|refused| {
                let mut refused = ErrorObject::from(refused);
                refused.message = format!(
                    "`{}` needs a login, and its leading params, read as credentials, were refused: {}",
                    crate::excerpt::excerpt(&name),
                    refused.message
                );
                refused
            })?;
            crate::auth::check(&access, &name, session)?;
            Ok(rest)
        };
        let params = match allowed.await {
            Ok(params) => params,
            Err(err) => return Reply::from(err),
        };
        let mut token = Some(token);
        let work = handler(
            params.as_deref(),
            Incoming {
                method: &name,
                id: id.as_ref(),
                version,
                connection: &connection,
                token: &mut token,
            },
        );
        work.await
    })
}

/// Answers -32002 once `work` has run for `limit`, dropping it and firing
/// its context's token (a call that finishes hands its token back
/// un-cancelled, so the entry would not fire it).
fn within_limit(
    work: BoxFuture<Reply>,
    limit: Duration,
    method: Arc<str>,
    token: Option<CallToken>,
) -> BoxFuture<Reply> {
    Box::pin(async move {
        // The clock starts at the first poll, when the call starts.
        match tokio::time::timeout(limit, work).await {
            Ok(reply) => reply,
            Err(_) => {
                if let Some(token) = token {
                    token.cancel();
                }
                tracing::debug!(%method, ?limit, "handler over its time limit: cancelled");
                Reply::from(ErrorObject::handler_timeout(&method, limit))
            }
        }
    })
}

/// Runs `work`, a handler of `connection`, on a thread of Tokio's blocking
/// pool; dropping the returned future drops `work` there at its next await.
fn on_own_task(work: BoxFuture<Reply>, connection: u64) -> BoxFuture<Reply> {
    Box::pin(async move {
        // NB: spawned at the first poll, not when the call is read: the
        // scheduler decides when a call starts (its turn, the in-flight
        // bound, an exclusive method running alone), and a call polls its
        // future only once started.
        //
        // A blocking-pool thread, not `tokio::spawn`: a task spawned from a
        // worker runs next on that same worker, where no other worker may
        // steal it, and if it blocks that worker while the other sleeps,
        // no thread polls the sockets, so the message that would unblock
        // it is never read.
        let runtime = tokio::runtime::Handle::current();
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::task::spawn_blocking(move || {
            let _polling = Polling::enter(connection);
            runtime.block_on(async move {
                let work = AssertUnwindSafe(work).catch_unwind();
                // `_stop` is dropped with the future that owns it, which
                // ends `stopped`: the call was cancelled or torn down.
                // NB: `stopped` is asked first, so that a call cancelled
                // before its thread got to it never starts.
                match futures::future::select(stopped, work).await {
                    futures::future::Either::Left(_) => None,
                    futures::future::Either::Right((reply, _)) => Some(reply),
                }
            })
        });
        match task.await {
            Ok(Some(Ok(reply))) => reply,
            // Re-raised so that the entry reports it like any handler's panic.
            Ok(Some(Err(panic))) => std::panic::resume_unwind(panic),
            Ok(None) | Err(_) => {
                tracing::error!("a handler's thread ended without an answer");
                Reply::from(ErrorObject::internal_error())
            }
        }
    })
}

/// The error that answers a batch longer than its limit: one -32600 for
/// the whole array, none of it run (spec §5.1: the batch as a whole is not a valid
/// request). The driver refuses with the same words.
pub(crate) fn batch_too_long(len: usize, max: usize) -> ErrorObject {
    ErrorObject::invalid_request(format!(
        "a batch of {len} entries exceeds the limit of {max}"
    ))
}

/// The reply to a batch refused whole for its length, `err`: one -32600
/// with a null id (the batch has no id of its own), or none when every
/// entry is a notification (spec §6: a batch of notifications gets no
/// reply). Then only the log tells.
pub(crate) fn long_batch_reply(
    items: &[Result<Message<'_>, Rejected>],
    err: &ErrorObject,
) -> Option<String> {
    let notifications = (items.iter()).all(|item| match item {
        Ok(message) => matches!(message, Message::Notification(_)),
        Err(rejected) => rejected.notification,
    });
    if notifications {
        static UNANSWERED: LogLimit = LogLimit::new();
        if let Some(more) = UNANSWERED.allow() {
            tracing::warn!("a batch of notifications refused, unanswered: {err}{more}");
        }
        return None;
    }
    Some(encode_response(Version::V2, &Id::null(), Err(err)))
}

/// One frame in, its reply out, without a connection (HTTP, tests); a batch
/// of more than `max_batch_len` entries is refused whole.
pub(crate) async fn handle_text<S: Send + Sync + 'static>(
    router: &Router<S>,
    text: &str,
    session: &Session,
    max_batch_len: usize,
) -> Option<String> {
    let connection = Connection::new(router, Peer::detached(), session.clone());
    let id = connection.peer.connection_id();
    crate::observe::frame_in(id, text);
    let reply = answer_text(router, text, &connection, max_batch_len).await;
    if let Some(reply) = &reply {
        crate::observe::frame_out(id, reply);
    }
    reply
}

async fn answer_text<S: Send + Sync + 'static>(
    router: &Router<S>,
    text: &str,
    connection: &Arc<Connection<S>>,
    max_batch_len: usize,
) -> Option<String> {
    let env = Env {
        router,
        connection,
        cancel_method: None,
        start: Start::LATER,
    };
    let entry = |item| match admit(&env, None, item, None) {
        Admitted::Call(_, _, entry) => Some(entry),
        Admitted::Unreadable(rejected) => Some(Entry::done(rejected.reply())),
        Admitted::Answered(reply) => Some(Entry::done(Some(reply))),
        Admitted::Response(response) => {
            tracing::debug!(id = %response.id, "response with no request behind it, dropped");
            None
        }
        Admitted::Cancel(..) | Admitted::Dropped => None,
    };
    match parse(text) {
        Frame::Single(item) => {
            let mut work = Work::one(entry(item)?, text.len());
            poll_fn(|cx| work.poll(cx)).await
        }
        Frame::Batch(items) if items.len() > max_batch_len => {
            long_batch_reply(&items, &batch_too_long(items.len(), max_batch_len))
        }
        Frame::Batch(items) => {
            // NB: each entry is a future of its own, polled only when it is
            // woken. One `Work::batch` polls every entry at each wake-up, so
            // a batch whose calls wait (timers, or tokio's budget running
            // out) cost its length squared: 40,000 `sleep(0)` calls took
            // 2.7 s of CPU, ten times 10,000.
            let mut running: FuturesUnordered<_> = items
                .into_iter()
                .filter_map(entry)
                .enumerate()
                .map(|(i, entry)| {
                    // No scheduler here: the bytes it counts are not used.
                    let mut work = Work::one(entry, 0);
                    async move { (i, poll_fn(|cx| work.poll(cx)).await) }
                })
                .collect();
            let mut replies: Vec<Option<String>> = (0..running.len()).map(|_| None).collect();
            while let Some((i, reply)) = running.next().await {
                replies[i] = reply;
            }
            // Spec §6: the replies in request order, or nothing when every
            // entry was a notification.
            join_batch(replies)
        }
    }
}

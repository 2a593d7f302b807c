//! What a handler knows about the call it is answering.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::auth::{Auth, Credentials, Identity, LoginError};
use crate::message::{Id, Version};
use crate::middleware::Stack;
use crate::peer::Peer;
use crate::router::Router;
use crate::session::Session;

/// The context of one incoming call: who called, with which id, on which
/// connection. Take it as the last argument of a handler.
///
/// ```
/// use rpcpeer::{Context, ErrorObject, Router};
///
/// let mut router = Router::new();
/// router.method("whoami", |cx: Context| async move {
///     Ok::<_, ErrorObject>(format!("you are call {:?} of `{}`", cx.id(), cx.method()))
/// });
/// ```
pub struct Context<S = ()> {
    pub(crate) method: Arc<str>,
    pub(crate) id: Option<Id>,
    pub(crate) version: Version,
    pub(crate) connection: Arc<Connection<S>>,
    pub(crate) cancel: CallToken,
}

impl<S> Context<S> {
    /// The method being called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request's id; `None` for a notification.
    pub fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// The version the call was written in (the reply will use it too).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The peer on the other end of this connection, to call it back or push
    /// it notifications while handling this call.
    pub fn peer(&self) -> &Peer {
        &self.connection.peer
    }

    /// This connection's store.
    pub fn session(&self) -> &Session {
        &self.connection.session
    }

    /// The application state given to [`Router::with_state`](crate::Router::with_state).
    pub fn state(&self) -> &S {
        &self.connection.state
    }

    /// Cancelled when the caller cancels this request (`$/cancelRequest`),
    /// or when the connection is torn down while the call runs (requests
    /// and notifications alike); not when the handler finishes. Pass it to
    /// work spawned outside the handler: the handler itself is cancelled by
    /// having its future dropped.
    pub fn cancellation(&self) -> &CancellationToken {
        self.cancel.token()
    }

    /// Completes when [`Context::cancellation`] is cancelled.
    ///
    /// Not for the handler's own code: a cancelled call's future is dropped
    /// without being polled again, so a `select!` branch on this inside the
    /// handler never runs.
    /// Clean-up that must run on cancellation belongs in a `Drop` guard;
    /// this is for work the handler spawned, with its own clone of
    /// [`Context::cancellation`].
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.token().cancelled()
    }

    /// Who called: the identity this connection (or HTTP request) logged in
    /// with, if any.
    pub fn identity(&self) -> Option<Identity> {
        self.session().get::<Identity>()
    }

    /// Logs this connection in: checks `credentials` with the router's
    /// [`Authenticator`](crate::auth::Authenticator), through the throttle
    /// on failed logins, and on success keeps the identity in the session,
    /// where methods registered [`authenticated`](crate::MethodConfig::authenticated)
    /// look for it. `?` turns the error into the right error object.
    ///
    /// ```
    /// use rpcpeer::auth::Credentials;
    /// use rpcpeer::{Context, ErrorObject, Router};
    ///
    /// let mut router = Router::new();
    /// router.method("login", |(user, password): (String, String), cx: Context| async move {
    ///     let identity = cx.login(Credentials::Password { user, password }).await?;
    ///     Ok::<_, ErrorObject>(identity.user)
    /// });
    /// ```
    ///
    /// # Errors
    /// - [`LoginError::Throttled`] when this connection or its address has
    ///   failed too often lately (-32006); the authenticator is not asked.
    /// - [`LoginError::Failed`] when the authenticator says no (-32001 for
    ///   rejected credentials).
    /// - [`LoginError::NoAuthenticator`] when the router has none.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes leaves the connection as it
    /// was, but the attempt still counts as a failure.
    pub async fn login(&self, credentials: Credentials) -> Result<Identity, LoginError> {
        let auth = (self.connection.auth.as_ref()).ok_or(LoginError::NoAuthenticator)?;
        auth.login(self.session(), credentials).await
    }

    /// Forgets who this connection is; returns who it was.
    pub fn logout(&self) -> Option<Identity> {
        self.session().remove::<Identity>()
    }
}

impl<S> Clone for Context<S> {
    fn clone(&self) -> Self {
        Self {
            method: self.method.clone(),
            id: self.id.clone(),
            version: self.version,
            connection: self.connection.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

/// A call's cancellation token, made when it is first asked for: by the
/// handler ([`Context::cancellation`]), or to cancel the call. The handler's
/// context and the driver's entry share the slot.
///
/// NB: most handlers that take a [`Context`] never ask, and a token made
/// for every call, cloned for the driver and dropped twice, cost about 300
/// instructions (a mutex locked at each step, and an allocation); the
/// slot costs one small allocation and its count.
#[derive(Clone, Default)]
pub(crate) struct CallToken(Arc<OnceLock<CancellationToken>>);

impl CallToken {
    /// The token, made now if nobody has asked for it yet.
    pub(crate) fn token(&self) -> &CancellationToken {
        self.0.get_or_init(CancellationToken::new)
    }

    /// Cancels the call's token, made now if nobody has asked for it yet:
    /// a context that asks later gets it cancelled.
    pub(crate) fn cancel(&self) {
        self.token().cancel();
    }

    /// Cancels the call's token when dropped, unless disarmed first.
    pub(crate) fn cancel_on_drop(self) -> CancelOnDrop {
        CancelOnDrop(Some(self))
    }
}

/// See [`CallToken::cancel_on_drop`].
pub(crate) struct CancelOnDrop(Option<CallToken>);

impl CancelOnDrop {
    /// The call finished: its token must not be cancelled.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

/// What the calls of one connection share: made once per connection, and
/// held by each [`Context`] as one `Arc`.
///
/// NB: one `Arc` of the connection's own, rather than clones of the
/// router's state and authenticator: their counts are shared by every
/// connection, and a count that connections on other cores write on every
/// call moves between the cores' caches on every call (see
/// `method_cache`, where the same cost was measured on method names).
pub(crate) struct Connection<S> {
    pub(crate) peer: Peer,
    pub(crate) session: Session,
    pub(crate) state: Arc<S>,
    pub(crate) auth: Option<Arc<Auth>>,
    /// Its own layers (`Router::connection_layer`) over the router's, made
    /// when its first call needs them.
    pub(crate) layers: OnceLock<Arc<Stack>>,
    /// The same, without the state, for a typed trait's methods
    /// (`typed::stateless`); made on first use.
    #[cfg(feature = "macros")]
    stateless: OnceLock<Arc<Connection<()>>>,
}

impl<S: Send + Sync + 'static> Connection<S> {
    /// A connection (or a lone HTTP request) served by `router`.
    pub(crate) fn new(router: &Router<S>, peer: Peer, session: Session) -> Arc<Self> {
        Self::with(
            peer,
            session,
            router.state().clone(),
            router.auth().cloned(),
        )
    }
}

impl<S> Connection<S> {
    fn with(peer: Peer, session: Session, state: Arc<S>, auth: Option<Arc<Auth>>) -> Arc<Self> {
        Arc::new(Self {
            peer,
            session,
            state,
            auth,
            layers: OnceLock::new(),
            #[cfg(feature = "macros")]
            stateless: OnceLock::new(),
        })
    }

    /// The same connection, without the router's state.
    #[cfg(feature = "macros")]
    pub(crate) fn stateless(&self) -> Arc<Connection<()>> {
        let made = || {
            let (peer, session) = (self.peer.clone(), self.session.clone());
            Connection::with(peer, session, Arc::new(()), self.auth.clone())
        };
        self.stateless.get_or_init(made).clone()
    }
}

/// What the router hands a handler for one call. A handler that takes a
/// [`Context`] turns it into one; only then is the connection's handle
/// cloned and a slot for the call's cancellation token made (the token
/// itself only when asked for), so a handler that needs neither costs
/// neither.
///
/// Only the router makes one and hands it to [`Handler::call`](crate::Handler::call):
/// no part of the API an application uses.
#[doc(hidden)]
pub struct Incoming<'a, S> {
    pub(crate) method: &'a Arc<str>,
    pub(crate) id: Option<&'a Id>,
    pub(crate) version: Version,
    pub(crate) connection: &'a Arc<Connection<S>>,
    /// Where the driver finds the token slot of a context made here, to
    /// cancel it; a slot already there is the one the context gets.
    pub(crate) token: &'a mut Option<CallToken>,
}

impl<S> Incoming<'_, S> {
    /// The method being called.
    pub fn method(&self) -> &Arc<str> {
        self.method
    }

    /// The full context of the call, sharing the call's token slot.
    pub fn into_context(mut self) -> Context<S> {
        self.context()
    }

    /// The context, leaving this in place: the token slot made for it is the
    /// one the driver cancels.
    pub(crate) fn context(&mut self) -> Context<S> {
        let cancel = self.token.get_or_insert_with(CallToken::default).clone();
        Context {
            method: self.method.clone(),
            id: self.id.cloned(),
            version: self.version,
            connection: self.connection.clone(),
            cancel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contexts of a connection's calls hold the connection's handle,
    /// and none of them a count the router shares with other connections.
    #[test]
    fn contexts_share_the_connections_handle_not_the_routers_state() {
        let router = Router::with_state(7_u32);
        let connection = Connection::new(&router, Peer::detached(), Session::new());
        assert_eq!(Arc::strong_count(router.state()), 2, "router + connection");
        let method: Arc<str> = "m".into();
        let contexts: Vec<Context<u32>> = (0..3)
            .map(|_| {
                let mut token = None;
                Incoming {
                    method: &method,
                    id: None,
                    version: Version::V2,
                    connection: &connection,
                    token: &mut token,
                }
                .into_context()
            })
            .collect();
        assert_eq!(
            Arc::strong_count(router.state()),
            2,
            "no context clones the state"
        );
        assert_eq!(
            Arc::strong_count(&connection),
            4,
            "each context holds the connection"
        );
        assert!(contexts.iter().all(|cx| *cx.state() == 7));
        #[cfg(feature = "macros")]
        assert!(
            Arc::ptr_eq(&connection.stateless(), &connection.stateless()),
            "made once"
        );
    }

    /// A context made for a call, and the driver's end of its token.
    fn call() -> (Context<()>, CallToken) {
        let router = Router::new();
        let connection = Connection::new(&router, Peer::detached(), Session::new());
        let (method, mut token) = (Arc::from("m"), None);
        let cx = Incoming {
            method: &method,
            id: None,
            version: Version::V2,
            connection: &connection,
            token: &mut token,
        }
        .into_context();
        (cx, token.expect("a context made its call's token slot"))
    }

    #[test]
    fn a_token_asked_for_after_the_call_was_cancelled_is_cancelled() {
        let (cx, driver) = call();
        let kept = cx.clone();
        drop(cx);
        driver.cancel();
        assert!(kept.cancellation().is_cancelled());
    }

    #[test]
    fn a_token_asked_for_before_is_the_one_cancelled() {
        let (cx, driver) = call();
        let token = cx.cancellation().clone();
        assert!(!token.is_cancelled());
        // Work the handler spawned keeps the token; the context is gone.
        drop(cx);
        driver.cancel();
        assert!(token.is_cancelled());
    }

    #[test]
    fn a_guard_cancels_when_dropped_and_not_once_disarmed() {
        let (cx, driver) = call();
        driver.clone().cancel_on_drop().disarm();
        assert!(!cx.cancellation().is_cancelled());
        drop(driver.cancel_on_drop());
        assert!(cx.cancellation().is_cancelled());
    }
}

//! What a handler knows about the call it is answering.

use std::sync::Arc;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::auth::{Auth, Credentials, Identity, LoginError};
use crate::message::{Id, Version};
use crate::peer::Peer;
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
    pub(crate) peer: Peer,
    pub(crate) session: Session,
    pub(crate) state: Arc<S>,
    pub(crate) cancel: CancellationToken,
    pub(crate) auth: Option<Arc<Auth>>,
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
        &self.peer
    }

    /// This connection's store.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The application state given to [`Router::with_state`](crate::Router::with_state).
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Cancelled when the caller cancels this request (`$/cancelRequest`),
    /// or when the connection is torn down while the call runs (requests
    /// and notifications alike); not when the handler finishes. Pass it to
    /// work spawned outside the handler: the handler itself is cancelled by
    /// having its future dropped.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Completes when [`Context::cancellation`] is cancelled.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Who called: the identity this connection (or HTTP request) logged in
    /// with, if any.
    pub fn identity(&self) -> Option<Identity> {
        self.session.get::<Identity>()
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
        let auth = self.auth.as_ref().ok_or(LoginError::NoAuthenticator)?;
        auth.login(&self.session, credentials).await
    }

    /// Forgets who this connection is; returns who it was.
    pub fn logout(&self) -> Option<Identity> {
        self.session.remove::<Identity>()
    }
}

impl<S> Clone for Context<S> {
    fn clone(&self) -> Self {
        Self {
            method: self.method.clone(),
            id: self.id.clone(),
            version: self.version,
            peer: self.peer.clone(),
            session: self.session.clone(),
            state: self.state.clone(),
            cancel: self.cancel.clone(),
            auth: self.auth.clone(),
        }
    }
}

/// What the router hands a handler for one call. A handler that takes a
/// [`Context`] turns it into one; only then are the peer, session and
/// state handles cloned and a cancellation token made, so a handler that
/// needs none of them costs none of that.
///
/// Only the router makes one and hands it to [`Handler::call`](crate::Handler::call):
/// no part of the API an application uses.
#[doc(hidden)]
pub struct Incoming<'a, S> {
    pub(crate) method: &'a Arc<str>,
    pub(crate) id: Option<&'a Id>,
    pub(crate) version: Version,
    pub(crate) peer: &'a Peer,
    pub(crate) session: &'a Session,
    pub(crate) state: &'a Arc<S>,
    /// Where the driver finds the token of a context made here, to cancel
    /// it; a token already there is the one the context gets.
    pub(crate) token: &'a mut Option<CancellationToken>,
    pub(crate) auth: Option<&'a Arc<Auth>>,
}

impl<S> Incoming<'_, S> {
    /// The method being called.
    pub fn method(&self) -> &Arc<str> {
        self.method
    }

    /// The full context of the call, with a cancellation token of its own.
    pub fn into_context(mut self) -> Context<S> {
        self.context()
    }

    /// The context, leaving this in place: the token made for it is the
    /// one the driver cancels.
    pub(crate) fn context(&mut self) -> Context<S> {
        let cancel = self
            .token
            .get_or_insert_with(CancellationToken::new)
            .clone();
        Context {
            method: self.method.clone(),
            id: self.id.cloned(),
            version: self.version,
            peer: self.peer.clone(),
            session: self.session.clone(),
            state: self.state.clone(),
            cancel,
            auth: self.auth.cloned(),
        }
    }
}

//! What a handler knows about the call it is answering.

use std::sync::Arc;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

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
        }
    }
}

/// What the router hands a handler for one call. A handler that takes a
/// [`Context`] turns it into one; only then are the peer, session and
/// state handles cloned and a cancellation token made, so a handler that
/// needs none of them costs none of that.
pub struct Incoming<'a, S> {
    pub(crate) method: &'a Arc<str>,
    pub(crate) id: Option<&'a Id>,
    pub(crate) version: Version,
    pub(crate) peer: &'a Peer,
    pub(crate) session: &'a Session,
    pub(crate) state: &'a Arc<S>,
    /// Where the driver finds the token of a context made here, to cancel it.
    pub(crate) token: &'a mut Option<CancellationToken>,
}

impl<S> Incoming<'_, S> {
    /// The method being called.
    pub fn method(&self) -> &Arc<str> {
        self.method
    }

    /// The full context of the call, with a cancellation token of its own.
    pub fn into_context(self) -> Context<S> {
        let cancel = CancellationToken::new();
        *self.token = Some(cancel.clone());
        Context {
            method: self.method.clone(),
            id: self.id.cloned(),
            version: self.version,
            peer: self.peer.clone(),
            session: self.session.clone(),
            state: self.state.clone(),
            cancel,
        }
    }
}

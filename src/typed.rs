//! What the code `#[rpcpeer::api]` writes relies on (feature `macros`): one implementation per connection, and the context a trait's method takes.

use std::any::Any;
use std::sync::Arc;

use crate::context::Context;
use crate::peer::Peer;

/// Makes one implementation per connection on its first call, and keeps
/// it in the connection's session, which drops it with the connection.
pub struct PerConnection<T> {
    make: Arc<dyn Fn(&Peer) -> T + Send + Sync>,
}

impl<T> Clone for PerConnection<T> {
    fn clone(&self) -> Self {
        Self {
            make: self.make.clone(),
        }
    }
}

/// The session's slot for the implementation of type `T`.
struct Instance<T>(Arc<T>);

impl<T> Clone for Instance<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Any + Send + Sync> PerConnection<T> {
    /// Keeps `make` for the connections to come.
    pub fn new(make: impl Fn(&Peer) -> T + Send + Sync + 'static) -> Self {
        Self {
            make: Arc::new(make),
        }
    }

    /// The implementation of the connection `cx` belongs to.
    pub fn get<S>(&self, cx: &Context<S>) -> Arc<T> {
        if let Some(Instance(found)) = cx.session().get::<Instance<T>>() {
            return found;
        }
        // NB: made outside the session's lock, so `make` may use anything;
        // two first calls racing each make one and the first stored wins.
        let made = Instance(Arc::new((self.make)(cx.peer())));
        cx.session().get_or_insert(made).0
    }
}

/// The context a trait's method takes: the implementation holds the
/// state, so the router's own is not passed on.
pub fn stateless<S>(cx: Context<S>) -> Context<()> {
    Context {
        method: cx.method,
        id: cx.id,
        version: cx.version,
        connection: cx.connection.stateless(),
        cancel: cx.cancel,
    }
}

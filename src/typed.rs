//! What the code `#[rpcpeer::api]` writes relies on (feature `macros`): one implementation per connection, and the context a trait's method takes.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::handler::IntoReply;
use crate::peer::Peer;

/// Makes one implementation per connection on its first call, and keeps
/// it in the connection's session, which drops it with the connection.
/// `K` is the trait's client type: one type may implement two traits, each
/// registered with its own `make`, and each gets the instance its own
/// `make` made.
pub struct PerConnection<T, K> {
    make: Arc<dyn Fn(&Peer) -> T + Send + Sync>,
    trait_: PhantomData<fn() -> K>,
}

impl<T, K> Clone for PerConnection<T, K> {
    fn clone(&self) -> Self {
        Self {
            make: self.make.clone(),
            trait_: PhantomData,
        }
    }
}

/// The session's slot for the implementation of type `T` serving the
/// trait whose client is `K`.
struct Instance<T, K>(Arc<T>, PhantomData<fn() -> K>);

impl<T, K> Clone for Instance<T, K> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<T: Any + Send + Sync, K: 'static> PerConnection<T, K> {
    /// Keeps `make` for the connections to come.
    pub fn new(make: impl Fn(&Peer) -> T + Send + Sync + 'static) -> Self {
        Self {
            make: Arc::new(make),
            trait_: PhantomData,
        }
    }

    /// The implementation of the connection `cx` belongs to.
    pub fn get<S>(&self, cx: &Context<S>) -> Arc<T> {
        if let Some(Instance(found, _)) = cx.session().get::<Instance<T, K>>() {
            return found;
        }
        // NB: made outside the session's lock, so `make` may use anything;
        // two first calls racing each make one and the first stored wins.
        let made = Instance::<T, K>(Arc::new((self.make)(cx.peer())), PhantomData);
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

/// The method's return type as the macro read it: a plain value, which is
/// answered as a success whatever it holds. `check()` tells a `Result`
/// hidden behind an alias from one: the inherent method of
/// `ReturnType<Result<T, E>>` is found before the trait method every
/// `ReturnType<T>` has, so it is chosen exactly when the type is a
/// `Result`, and its answer fails [`plain`]. The macro cannot see through
/// an alias; the compiler can.
pub struct ReturnType<T>(PhantomData<fn() -> T>);

impl<T> ReturnType<T> {
    /// The type to check.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T, E> ReturnType<Result<T, E>> {
    /// The return type is a `Result`.
    pub fn check(&self) -> ResultBehindAlias {
        ResultBehindAlias
    }
}

/// What `check()` finds for any type but a `Result`.
pub trait CheckPlain {
    /// The return type is a plain value.
    fn check(&self) -> PlainValue {
        PlainValue
    }
}

impl<T> CheckPlain for ReturnType<T> {}

/// `check()`'s answer for a plain value.
pub struct PlainValue;

/// `check()`'s answer for a `Result` the macro took for a plain value.
pub struct ResultBehindAlias;

/// Implemented by [`PlainValue`] alone: the bound that turns a `Result`
/// behind an alias into a compile error saying what to write.
#[diagnostic::on_unimplemented(
    message = "the return type is a `Result` behind an alias: spell it `Result<T, E>` in the trait \
               so that errors are answered as JSON-RPC errors",
    label = "a `Result` behind an alias",
    note = "`#[rpcpeer::api]` reads the return type as written and cannot see through an alias: \
            it would take this one for a plain value and answer an `Err` as a success"
)]
pub trait Plain {}

impl Plain for PlainValue {}

/// Compiles only for [`PlainValue`].
pub fn plain<P: Plain>(_: P) {}

// The checks below state bounds the registration and the client need
// anyway. The macro calls each spanned at the method's own types, so a
// type that does not fit is pointed at there rather than at the attribute.

/// Compiles only when a method's return type can be answered.
pub fn answerable<R: IntoReply>() {}

/// Compiles only when an answer's result decodes into `T`, as the client
/// needs.
pub fn decodable<T: DeserializeOwned>() {}

/// Compiles only when a return type has a result schema, as `schema`
/// needs.
#[cfg(feature = "schemars")]
pub fn described<R: crate::schema::ReplySchema>() {}

/// Without the `schemars` feature, `schema` is refused where the macro
/// names `schemars`; this check adds no second error.
#[cfg(not(feature = "schemars"))]
pub fn described<R>() {}

//! Params and result schemas read from the handler's types with schemars (feature `schemars`).
//!
//! A separate registration ([`Router::method_with_schema`]) rather than a
//! bound on [`Router::method`]: the feature adds methods and never changes
//! what `method` accepts, so turning it on in one crate of a build breaks
//! no other.

use std::future::Future;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::context::Context;
use crate::handler::{Handler, IntoReply};
use crate::router::{MethodConfig, Router};

/// A handler whose params and result types have a JSON Schema: the shapes
/// of [`Handler`], where the params type `P` implements
/// [`JsonSchema`](schemars::JsonSchema) and the return type
/// [`ReplySchema`]. `Args` only tells the impls apart.
///
/// ```
/// use rpcpeer::introspection::HandlerSchema;
/// use rpcpeer::schemars::{JsonSchema, Schema, SchemaGenerator};
/// use rpcpeer::ErrorObject;
///
/// #[derive(serde::Deserialize, JsonSchema)]
/// struct Join { name: String }
///
/// fn schemas<Args, H: HandlerSchema<Args>>(_: &H) -> (Option<Schema>, Option<Schema>) {
///     let mut gen = SchemaGenerator::default();
///     (H::params_schema(&mut gen), H::result_schema(&mut gen))
/// }
/// let (params, result) = schemas(&|p: Join| async move { Ok::<_, ErrorObject>(p.name.len()) });
/// assert_eq!(params.unwrap().as_value()["required"][0], "name");
/// assert_eq!(result.unwrap().as_value()["type"], "integer");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has params or a result without a JSON Schema",
    note = "`method_with_schema` needs the params type and the `T` of `Result<T, E>` to implement \
            `schemars::JsonSchema` (derive it); `method` registers the handler without schemas"
)]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub trait HandlerSchema<Args> {
    /// The params type's schema; `None` when the handler takes none.
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema>;

    /// The result type's schema; `None` when it returns nothing.
    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema>;
}

/// A handler's return value whose result has a JSON Schema.
///
/// ```
/// use rpcpeer::introspection::ReplySchema;
/// use rpcpeer::schemars::SchemaGenerator;
/// use rpcpeer::ErrorObject;
///
/// let mut gen = SchemaGenerator::default();
/// let list = <Result<Vec<String>, ErrorObject> as ReplySchema>::result_schema(&mut gen).unwrap();
/// assert_eq!(list.as_value()["type"], "array");
/// // What a notification handler returns has none.
/// assert!(<() as ReplySchema>::result_schema(&mut gen).is_none());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub trait ReplySchema: IntoReply {
    /// The schema of the result; `None` for a handler that returns nothing.
    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema>;
}

impl<T, E> ReplySchema for Result<T, E>
where
    Result<T, E>: IntoReply,
    T: JsonSchema,
{
    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        Some(gen.root_schema_for::<T>())
    }
}

impl ReplySchema for () {
    fn result_schema(_gen: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

impl<F, Fut, R> HandlerSchema<()> for F
where
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
    R: ReplySchema,
{
    fn params_schema(_gen: &mut SchemaGenerator) -> Option<Schema> {
        None
    }

    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        R::result_schema(gen)
    }
}

impl<F, Fut, R, S> HandlerSchema<(Context<S>,)> for F
where
    F: Fn(Context<S>) -> Fut,
    Fut: Future<Output = R>,
    R: ReplySchema,
{
    fn params_schema(_gen: &mut SchemaGenerator) -> Option<Schema> {
        None
    }

    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        R::result_schema(gen)
    }
}

impl<F, Fut, R, P> HandlerSchema<(P,)> for F
where
    F: Fn(P) -> Fut,
    Fut: Future<Output = R>,
    R: ReplySchema,
    P: JsonSchema,
{
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        Some(gen.root_schema_for::<P>())
    }

    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        R::result_schema(gen)
    }
}

impl<F, Fut, R, P, S> HandlerSchema<(P, Context<S>)> for F
where
    F: Fn(P, Context<S>) -> Fut,
    Fut: Future<Output = R>,
    R: ReplySchema,
    P: JsonSchema,
{
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        Some(gen.root_schema_for::<P>())
    }

    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        R::result_schema(gen)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
impl<S: Send + Sync + 'static> Router<S> {
    /// Registers a request handler as [`Router::method`] does, and takes
    /// its params and result schemas from their types for introspection
    /// (feature `schemars`): the params type and the result type derive
    /// [`JsonSchema`](schemars::JsonSchema).
    ///
    /// ```
    /// use rpcpeer::{ErrorObject, Router};
    ///
    /// /// Params of `subtract`.
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Subtract {
    ///     /// The number to subtract from.
    ///     minuend: i64,
    ///     /// The number to subtract.
    ///     subtrahend: i64,
    /// }
    ///
    /// let mut router = Router::new();
    /// router.method_with_schema("subtract", |p: Subtract| async move {
    ///     Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
    /// });
    /// let info = router.method_info("subtract").unwrap();
    /// assert_eq!(info.params().unwrap()["properties"]["minuend"]["description"], "The number to subtract from.");
    /// assert_eq!(info.result().unwrap()["type"], "integer");
    /// ```
    pub fn method_with_schema<Args, H>(&mut self, name: &str, handler: H) -> MethodConfig<'_>
    where
        H: Handler<Args, S> + HandlerSchema<Args>,
    {
        // One generator for both, params first: a type both use is defined
        // once, under one name.
        let mut gen = SchemaGenerator::default();
        let params = H::params_schema(&mut gen);
        let result = H::result_schema(&mut gen);
        let mut config = self.method(name, handler);
        if let Some(schema) = params {
            config = config.params_schema(schema.to_value());
        }
        if let Some(schema) = result {
            config = config.result_schema(schema.to_value());
        }
        config
    }

    /// Registers a notification handler as [`Router::notification`] does,
    /// with its params schema taken from the type, as
    /// [`Router::method_with_schema`] does.
    pub fn notification_with_schema<Args, H>(&mut self, name: &str, handler: H) -> MethodConfig<'_>
    where
        H: Handler<Args, S> + HandlerSchema<Args>,
    {
        self.method_with_schema(name, handler).notification()
    }
}

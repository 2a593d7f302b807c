//! Params and result schemas read from the handler's types with schemars (feature `schemars`).
//!
//! A separate registration ([`Router::method_with_schema`]) rather than a
//! bound on [`Router::method`]: the feature adds methods and never changes
//! what `method` accepts, so turning it on in one crate of a build breaks
//! no other.

use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::context::Context;
use crate::handler::{Handler, HandlerFn, IntoReply, NoParams};
use crate::router::{MethodConfig, Router};

/// A handler whose params and result types have a JSON Schema: a
/// [`Handler`] whose params type implements [`JsonSchema`] (see
/// [`ParamsSchema`]) and whose return value implements [`ReplySchema`].
/// `Args` only tells the shapes apart.
///
/// ```
/// use rpcpeer::introspection::HandlerSchema;
/// use rpcpeer::schemars::{JsonSchema, Schema, SchemaGenerator};
/// use rpcpeer::ErrorObject;
///
/// #[derive(serde::Deserialize, JsonSchema)]
/// struct Join { name: String }
///
/// fn schemas<Args, H: HandlerSchema<Args, ()>>(_: &H) -> (Option<Schema>, Option<Schema>) {
///     let mut gen = SchemaGenerator::default();
///     (H::params_schema(&mut gen), H::result_schema(&mut gen))
/// }
/// let (params, result) = schemas(&|p: Join| async move { Ok::<_, ErrorObject>(p.name.len()) });
/// assert_eq!(params.unwrap().as_value()["required"][0], "name");
/// assert_eq!(result.unwrap().as_value()["type"], "integer");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub trait HandlerSchema<Args, S> {
    /// The params' schema, if the handler takes params.
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema>;

    /// The result's schema, if the handler gives one.
    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema>;
}

impl<H, Args, S> HandlerSchema<Args, S> for H
where
    H: HandlerFn<Args, S>,
    H::Input: ParamsSchema,
    H::Output: ReplySchema,
{
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        H::Input::params_schema(gen)
    }

    fn result_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        H::Output::result_schema(gen)
    }
}

/// What a handler takes whose params have a JSON Schema: a params type
/// that implements [`JsonSchema`], or a [`Context`] or [`NoParams`] (no
/// params).
///
/// ```
/// use rpcpeer::introspection::ParamsSchema;
/// use rpcpeer::schemars::{JsonSchema, SchemaGenerator};
///
/// #[derive(serde::Deserialize, JsonSchema)]
/// struct Join { name: String }
///
/// let mut gen = SchemaGenerator::default();
/// assert!(Join::params_schema(&mut gen).is_some());
/// assert!(<rpcpeer::Context as ParamsSchema>::params_schema(&mut gen).is_none());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no JSON Schema for `method_with_schema`",
    note = "derive `schemars::JsonSchema` on the params type, or register the handler with \
            `method`, which needs no schema"
)]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub trait ParamsSchema {
    /// The params' schema, or `None` for no params.
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema>;
}

impl<P: JsonSchema> ParamsSchema for P {
    fn params_schema(gen: &mut SchemaGenerator) -> Option<Schema> {
        Some(gen.root_schema_for::<P>())
    }
}

impl<S> ParamsSchema for Context<S> {
    fn params_schema(_gen: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

impl ParamsSchema for NoParams {
    fn params_schema(_gen: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
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
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no JSON Schema for `method_with_schema`",
    note = "derive `schemars::JsonSchema` on the `T` of `Result<T, E>`, or register the handler \
            with `method`, which needs no schema"
)]
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
        H: Handler<Args, S> + HandlerSchema<Args, S>,
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
        H: Handler<Args, S> + HandlerSchema<Args, S>,
    {
        self.method_with_schema(name, handler).notification()
    }
}

//! An application as a user without schemars writes it: serde types only,
//! one of them from a crate it does not own, and introspection switched on.

use lsp_types::ConfigurationParams;
use rpcpeer::introspection::Service;
use rpcpeer::{Context, ErrorObject, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Answered when `divide` is asked to divide by zero.
pub const DIVISION_BY_ZERO: i64 = -32050;

/// Params of `divide`.
#[derive(Deserialize)]
pub struct Divide {
    /// The number to divide.
    pub dividend: i64,
    /// The number to divide by.
    pub divisor: i64,
}

/// Params of `log`.
#[derive(Deserialize)]
pub struct Log {
    /// The line to log.
    pub line: String,
}

/// What `hello` answers.
#[derive(Serialize)]
pub struct Hello {
    /// The greeting.
    pub text: String,
}

/// The application's method table.
pub fn router() -> Router {
    let mut router = Router::new();
    router
        .method("divide", |p: Divide| async move {
            p.dividend
                .checked_div(p.divisor)
                .ok_or_else(|| ErrorObject::new(DIVISION_BY_ZERO, "division by zero"))
        })
        .doc("Divides dividend by divisor.")
        .error(ErrorObject::new(DIVISION_BY_ZERO, "division by zero"))
        .safe();
    router
        .method(
            "workspace/configuration",
            |p: ConfigurationParams| async move {
                Ok::<_, ErrorObject>(vec![Value::Null; p.items.len()])
            },
        )
        .doc("One null per item asked for.");
    router.method("pair", |(a, b): (String, i64)| async move {
        Ok::<_, ErrorObject>(format!("{a}{b}"))
    });
    router.method("hello", |cx: Context| async move {
        Ok::<_, ErrorObject>(Hello {
            text: format!("hello from `{}`", cx.method()),
        })
    });
    router.notification("log", |_: Log| async {});
    router
        .method("scale", |(x,): (f64,)| async move {
            Ok::<_, ErrorObject>(x * 2.0)
        })
        .params_schema(json!({"type": "array", "prefixItems": [{"title": "x", "type": "number"}]}))
        .result_schema(json!({"type": "number"}));
    router.introspection(Service::new("without schemars", "0.0.0"));
    router
}

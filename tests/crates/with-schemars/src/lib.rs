//! An application as a user with schemars writes it: params and results
//! derive `JsonSchema`, and introspection shows their schemas.

use rpcpeer::introspection::Service;
use rpcpeer::{Context, ErrorObject, Router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Params of `move`.
#[derive(Deserialize, JsonSchema)]
pub struct Move {
    /// Where to go.
    pub to: Point,
    /// How fast, in points a second; the default speed when absent.
    pub speed: Option<f64>,
}

/// A point on the plane.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy)]
pub struct Point {
    /// Across.
    pub x: i32,
    /// Down.
    pub y: i32,
}

/// How a move went.
#[derive(Serialize, JsonSchema)]
pub enum Outcome {
    /// Got there.
    Arrived,
    /// Stopped on the way, here.
    Blocked(Point),
}

/// The application's method table.
pub fn router() -> Router {
    let mut router = Router::new();
    router
        .method_with_schema("move", |p: Move| async move {
            Ok::<_, ErrorObject>(if p.to.x < 0 {
                Outcome::Blocked(Point { x: 0, y: p.to.y })
            } else {
                Outcome::Arrived
            })
        })
        .doc("Moves to a point.");
    router
        .method_with_schema("where", |cx: Context| async move {
            let _ = cx.method();
            Ok::<_, ErrorObject>(Point { x: 1, y: 2 })
        })
        .safe();
    router.method_with_schema("add", |(a, b): (i64, i64)| async move {
        Ok::<_, ErrorObject>(a + b)
    });
    router.notification_with_schema("tick", |_: Vec<u32>| async {});
    // Registered without schemas: introspection still names its params.
    router.method("plain", |p: Point| async move { Ok::<_, ErrorObject>(p.x) });
    router.introspection(
        Service::new("with schemars", "1.0.0")
            .id("urn:example:with-schemars")
            .summary("Moves a point")
            .description("Moves a point on the plane."),
    );
    router
}

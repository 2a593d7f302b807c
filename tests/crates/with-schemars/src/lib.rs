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

/// Another type called `Point`: its schema must not be taken for the other's.
pub mod places {
    /// A place on the globe.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    pub struct Point {
        /// Degrees north.
        pub lat: f64,
        /// Degrees east.
        pub lon: f64,
    }
}

/// Params of `locate`.
#[derive(Deserialize, JsonSchema)]
pub struct Visit {
    /// Where.
    pub place: places::Point,
}

/// A tree of names: a type that refers to itself.
#[derive(Deserialize, JsonSchema)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// What hangs below it.
    pub children: Vec<Node>,
}

/// A shape, told apart by its `kind`.
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum Shape {
    /// A circle of radius `r`.
    Circle {
        /// Its radius.
        r: f64,
    },
    /// A square of side `side`, centred on `r` if given.
    Square {
        /// Its side.
        side: f64,
        /// Ignored; here so two kinds share a member name.
        r: Option<f64>,
    },
}

/// Params read through `flatten`, which serde takes by name only.
#[derive(Deserialize, JsonSchema)]
pub struct Labelled {
    /// The label.
    pub label: String,
    /// Where it goes.
    #[serde(flatten)]
    pub at: Point,
}

/// A folder: its root type is met again inside `Entry`, a definition.
#[derive(Deserialize, JsonSchema)]
pub struct Dir {
    /// What it holds.
    pub entries: Vec<Entry>,
}

/// What a folder holds.
#[derive(Deserialize, JsonSchema)]
pub enum Entry {
    /// A file, by name.
    File(String),
    /// A folder within.
    Dir(Dir),
}

/// A number, or the same type again: the schema's alternatives lead back
/// to the type itself, four times over. (serde tries the variants in
/// order, so the number comes first.)
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum Layers {
    /// The number inside.
    N(u32),
    // NB: no doc comments, which schemars would set beside the references,
    // moving them into an `allOf`: the references must stand alone here.
    Wrap(Box<Layers>),
    Again(Box<Layers>),
    More(Box<Layers>),
    Still(Box<Layers>),
}

/// A search by name, with the same loop.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Query {
    /// The search itself.
    Name {
        /// What to look for.
        name: String,
    },
    // NB: as in `Layers`.
    #[allow(missing_docs)]
    Wrapped(Box<Query>),
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
    router.method_with_schema("locate", |v: Visit| async move {
        Ok::<_, ErrorObject>(v.place.lat + v.place.lon)
    });
    router.method_with_schema("count", |n: Node| async move {
        fn count(n: &Node) -> usize {
            1 + n.children.iter().map(count).sum::<usize>()
        }
        Ok::<_, ErrorObject>(count(&n))
    });
    router.method_with_schema(
        "tally",
        |m: std::collections::HashMap<String, u32>| async move {
            Ok::<_, ErrorObject>(m.values().sum::<u32>())
        },
    );
    router.method_with_schema("area", |s: Shape| async move {
        Ok::<_, ErrorObject>(match s {
            Shape::Circle { r } => 3.0 * r * r,
            Shape::Square { side, .. } => side * side,
        })
    });
    router.method_with_schema("label", |l: Labelled| async move {
        Ok::<_, ErrorObject>(format!("{} at {},{}", l.label, l.at.x, l.at.y))
    });
    router.method_with_schema("pad", |(n, text): (i32, Option<String>)| async move {
        Ok::<_, ErrorObject>((text.unwrap_or_default(), n))
    });
    router.method_with_schema("files", |d: Dir| async move {
        fn files(d: &Dir) -> usize {
            d.entries
                .iter()
                .map(|e| match e {
                    Entry::File(_) => 1,
                    Entry::Dir(d) => files(d),
                })
                .sum()
        }
        Ok::<_, ErrorObject>(files(&d))
    });
    router.method_with_schema("unwrap", |(layers,): (Layers,)| async move {
        let mut layers = layers;
        loop {
            match layers {
                Layers::Wrap(inner)
                | Layers::Again(inner)
                | Layers::More(inner)
                | Layers::Still(inner) => layers = *inner,
                Layers::N(n) => break Ok::<_, ErrorObject>(n),
            }
        }
    });
    router.method_with_schema("find", |q: Query| async move {
        let mut q = q;
        loop {
            match q {
                Query::Wrapped(inner) => q = *inner,
                Query::Name { name } => break Ok::<_, ErrorObject>(name),
            }
        }
    });
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

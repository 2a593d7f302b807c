// `method_with_schema` needs a JSON Schema for the params type.
use rpcpeer::{ErrorObject, Router};

#[derive(serde::Deserialize)]
struct Join {
    room: String,
}

fn main() {
    let mut router = Router::new();
    router.method_with_schema("join", |p: Join| async move { Ok::<_, ErrorObject>(p.room) });
}

// Params are decoded by serde: their type must implement `Deserialize`.
use rpcpeer::{ErrorObject, Router};

struct Join {
    room: String,
}

fn main() {
    let mut router = Router::new();
    router.method("join", |p: Join| async move { Ok::<_, ErrorObject>(p.room) });
}

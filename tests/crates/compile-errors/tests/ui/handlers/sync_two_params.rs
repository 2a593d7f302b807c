// A `sync_fn` handler takes the same arguments as an `async` one.
use rpcpeer::{sync_fn, ErrorObject, Router};

fn main() {
    let mut router = Router::new();
    router.method("add", sync_fn(|a: i64, b: i64| Ok::<_, ErrorObject>(a + b)));
}

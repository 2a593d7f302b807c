// A `sync_fn` handler's error converts into an `ErrorObject`, as an `async` one's does.
use rpcpeer::{sync_fn, Router};

fn main() {
    let mut router = Router::new();
    router.method("fail", sync_fn(|| Err::<i64, _>("no".to_string())));
}

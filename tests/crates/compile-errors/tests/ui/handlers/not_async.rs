// A handler returns a future: an `async fn` or a closure with an `async` block.
use rpcpeer::{ErrorObject, Router};

fn main() {
    let mut router = Router::new();
    router.method("now", || Ok::<_, ErrorObject>(1));
}

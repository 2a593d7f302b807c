// Calls run on the runtime's threads: a handler's future must be `Send`.
use std::rc::Rc;

use rpcpeer::{ErrorObject, Router};

fn main() {
    let mut router = Router::new();
    router.method("count", || async {
        let count = Rc::new(1);
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(*count)
    });
}

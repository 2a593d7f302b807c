// Several params are one argument (a struct or a tuple), not several.
use rpcpeer::{ErrorObject, Router};

fn main() {
    let mut router = Router::new();
    router.method("add", |a: i64, b: i64| async move { Ok::<_, ErrorObject>(a + b) });
}

// A handler must say whether it failed: a bare value is not a reply.
use rpcpeer::Router;

fn main() {
    let mut router = Router::new();
    router.method("answer", || async { 42 });
}

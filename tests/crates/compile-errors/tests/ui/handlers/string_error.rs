// The error of `Result<T, E>` must convert into an `ErrorObject`.
use rpcpeer::Router;

fn main() {
    let mut router = Router::new();
    router.method("fail", || async { Err::<(), String>("no".to_owned()) });
}

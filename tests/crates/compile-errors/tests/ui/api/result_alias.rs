// A `Result` behind an alias looks like a plain value to the macro, which
// would answer an `Err` as a success: the compiler refuses it instead.
use rpcpeer::ErrorObject;

pub type RpcResult<T> = Result<T, ErrorObject>;

#[rpcpeer::api]
pub trait Counter {
    async fn count(&self, fail: bool) -> RpcResult<u32>;
}

fn main() {}

// A generic method has no one params type to decode.
#[rpcpeer::api]
pub trait Store {
    async fn put<T: serde::Serialize>(&self, value: T) -> Result<(), rpcpeer::ErrorObject>;
}

fn main() {}

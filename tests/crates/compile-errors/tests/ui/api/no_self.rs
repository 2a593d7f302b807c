// Calls run concurrently: a method takes `&self`, not `&mut self`.
#[rpcpeer::api]
pub trait Counter {
    async fn bump(&mut self) -> u64;
}

fn main() {}

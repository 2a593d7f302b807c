// The generated client has `new`, `peer`, `clone`, `to_owned` and
// `METHODS` of its own: a method may not take those names.
#[rpcpeer::api]
pub trait Shop {
    async fn new(&self, item: String) -> u32;
    async fn peer(&self) -> String;
    async fn methods(&self) -> Vec<String>;
    async fn clone(&self) -> u32;
    async fn to_owned(&self) -> u32;
}

fn main() {}

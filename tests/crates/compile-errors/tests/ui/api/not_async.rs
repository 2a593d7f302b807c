// A method must be an `async fn`.
#[rpcpeer::api]
pub trait Store {
    fn get(&self, key: String) -> Option<String>;
}

fn main() {}

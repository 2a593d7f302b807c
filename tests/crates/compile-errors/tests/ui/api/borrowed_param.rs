// Params are decoded into owned values.
#[rpcpeer::api]
pub trait Greeter {
    async fn greet(&self, name: &str) -> String;
}

fn main() {}

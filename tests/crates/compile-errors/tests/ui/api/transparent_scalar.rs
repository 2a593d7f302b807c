// JSON-RPC params are an array or an object: with params = "transparent"
// a number would be sent as the params and every call would fail.
#[rpcpeer::api]
pub trait Logger {
    #[rpc(params = "transparent")]
    async fn set_level(&self, level: u32) -> bool;
}

#[rpcpeer::api(params = "transparent")]
pub trait Greeter {
    async fn greet(&self, name: std::string::String) -> String;
}

fn main() {}

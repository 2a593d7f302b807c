// JSON-RPC reserves the names that begin with `rpc.`.
#[rpcpeer::api]
pub trait Discovery {
    #[rpc(name = "rpc.discover")]
    async fn discover(&self) -> String;
}

fn main() {}

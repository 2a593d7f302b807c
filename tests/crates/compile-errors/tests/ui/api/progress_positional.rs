// The caller's progress token travels among params by name.

#[rpcpeer::api]
pub trait Indexer {
    #[rpc(params = "position")]
    async fn index(&self, files: u32, progress: rpcpeer::progress::Progress<u32>) -> u32;
}

fn main() {}

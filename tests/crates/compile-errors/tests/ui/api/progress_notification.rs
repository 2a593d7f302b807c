// A notification has no answer for progress reports to come before.

#[rpcpeer::api]
pub trait Indexer {
    async fn reindex(&self, files: u32, progress: rpcpeer::progress::Progress<u32>);
}

fn main() {}

// A return type that cannot be answered is pointed at, not the attribute.
use rpcpeer::ErrorObject;

#[rpcpeer::api]
pub trait Files {
    async fn open(&self, path: String) -> Result<u64, ErrorObject>;

    async fn read(&self, fd: u64, len: u32) -> Result<Vec<u8>, String>;

    async fn close(&self, fd: u64) -> Result<(), ErrorObject>;
}

fn main() {}

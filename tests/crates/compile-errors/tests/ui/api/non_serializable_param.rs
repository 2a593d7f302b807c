// A param must travel as JSON both ways.
pub struct Handle(std::fs::File);

#[rpcpeer::api]
pub trait Files {
    async fn close(&self, handle: Handle) -> Result<(), rpcpeer::ErrorObject>;
}

fn main() {}

// A borrow inside another type is refused as a top-level one is.
#[rpcpeer::api]
pub trait Names {
    async fn count(&self, names: Vec<&str>) -> u32;

    async fn greet(&self, name: std::borrow::Cow<'_, str>) -> String;
}

fn main() {}

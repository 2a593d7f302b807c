//! The `rpcpeer` command line tool.
fn main() {}

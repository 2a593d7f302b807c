//! Nothing but the test cases: see `tests/ui/`, one file per rule a handler
//! or an `#[rpcpeer::api]` trait can break, each with the compiler's expected
//! message beside it.

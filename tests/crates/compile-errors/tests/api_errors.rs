//! The compile errors `#[rpcpeer::api]` gives, as a user sees them
//! (`tests/ui/api/*.stderr`).

#[test]
fn api_refuses_traits_it_cannot_serve_with_errors_naming_the_method() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/api/*.rs");
}

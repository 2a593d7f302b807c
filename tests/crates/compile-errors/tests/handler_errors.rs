//! A handler that does not fit gets a compile error naming the rule it
//! breaks, not one message for every mistake. The expected messages are the
//! `.stderr` files next to each case in `tests/ui/handlers/`.

#[test]
fn each_rule_a_handler_breaks_has_its_own_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/handlers/*.rs");
}

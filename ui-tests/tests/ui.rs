//! Every misuse of an attribute fails to compile with the message in its
//! `.stderr` snapshot. Regenerate with `TRYBUILD=overwrite cargo test -p
//! verily-ui-tests` and read every changed snapshot before committing.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/**/*.rs");
    cases.pass("pass/**/*.rs");
}

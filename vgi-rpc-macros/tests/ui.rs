//! Compile-fail tests: every macro diagnostic, one tiny file each, with its `.stderr`.
//! Regenerate with `TRYBUILD=overwrite cargo test -p vgi-rpc-macros --test ui`.

#[test]
fn diagnostics() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

//! The write boundary holds at compile time: outside core, a platform write without a
//! target the isolation check issued does not compile, and no such target can be made.
//! Each file under `tests/compile_fail/` is a small crate in the place of a provider crate
//! (it depends on `staging-core` only) and must fail to compile with the error recorded
//! next to it.

#[test]
fn a_crate_outside_core_cannot_write_without_a_target_the_isolation_check_issued() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}

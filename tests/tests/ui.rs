//! Compile-time behaviour of `#[tpu_kernel]` / `#[tpu_fn]`: what is rejected, with which message,
//! under which tokens (`ui/fail`), and kernels that must compile and build (`ui/pass`).
//!
//! Regenerate the expected output after a deliberate change with `TRYBUILD=overwrite`, then read
//! the `.stderr` diffs.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}

//! Procedural macros of rpa: `#[tpu_kernel]` and `#[tpu_fn]`.
//!
//! The macros do not build IR themselves: they rewrite a function body into ordinary Rust that
//! calls the rpa-dsl frontend (through `::rpa_dsl::__private`), so that *running* it records the
//! kernel's IR, like JAX tracing. Comptime code is plain Rust executed while building; runtime
//! values are handles whose operations record ops at the author's source location.
//!
//! - `parse`: the attribute arguments and the kernel signature mini-language;
//! - `body`: statement and expression rewriting (control flow, variables, comparisons);
//! - `expand`: the two expansions; `paths`: the support path; `error`: errors and messages.

use proc_macro::TokenStream;

mod body;
mod error;
mod expand;
mod parse;
mod paths;

/// Turns a kernel function into a builder: `fn name(<#[comptime] params>) -> Result<Kernel, KernelError>`.
///
/// ```text
/// #[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
/// pub fn add(
///     #[comptime] rows: usize,
///     #[block([8, 128], |i| [i, 0])] x: In<f32, {[rows, 128]}>,
///     #[block([8, 128], |i| [i, 0])] o: Out<f32, {[rows, 128]}>,
/// ) {
///     o.store(x.load() + 1.0);
/// }
/// ```
#[proc_macro_attribute]
pub fn tpu_kernel(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::kernel(args.into(), item.into()).into()
}

/// A kernel helper: the signature is kept, the body follows the kernel rules (runtime `if`/`for`/
/// `while`, `let mut` variables, comparisons on runtime values).
#[proc_macro_attribute]
pub fn tpu_fn(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::tpu_fn(args.into(), item.into()).into()
}

//! Error collection and the DSL's error messages (one place, so the wording stays consistent).

use quote::ToTokens;

/// Collects every error of an expansion, so the author sees all of them at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// An error covering `tokens` (start to end, so the caret underlines all of them).
    pub fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn take(&mut self) -> Option<syn::Error> {
        self.0.take()
    }
}

pub mod msg {
    pub const TRY: &str = "the `?` operator is not supported in kernels: kernels cannot fail at run time; \
                           validate inputs on the host before launching";
    pub const RETURN: &str = "early `return` is not supported in kernels; structure the code with if/else \
                              (a `#[tpu_fn]` returns its final expression)";
    pub const BREAK: &str = "`break` is not supported in kernels: a runtime loop runs all of its iterations; \
                             use a `while` loop with a runtime flag";
    pub const CONTINUE: &str = "`continue` is not supported in kernels: a runtime loop runs all of its iterations; \
                                use a `while` loop with a runtime flag, or put the rest of the body under an `if`";
    pub const LOOP: &str = "`loop` is not supported in kernels: use `while cond { .. }` with a runtime condition \
                            (or `#[unroll] while` to loop while building)";
    pub const ASYNC: &str = "`async` blocks are not supported in kernels: kernel code runs once, while building; \
                             DMAs are asynchronous through `copy(..).start()` / `.wait()`";
    pub const AWAIT: &str = "`.await` is not supported in kernels: DMAs are asynchronous through \
                             `copy(..).start()` / `.wait()`";
    pub const UNSAFE: &str = "`unsafe` blocks are not supported in kernels: kernel code is built, not run; \
                              move unsafe host code out of the kernel";
    pub const NESTED_FN: &str = "nested `fn` items are not supported in kernel bodies; \
                                 define helpers as top-level `#[tpu_fn]` functions";
    pub const LABELED_BLOCK: &str = "labeled blocks are not supported in kernels (there is no `break`); \
                                     structure the code with if/else";
    pub const LABELED_LOOP: &str = "loop labels are not supported in kernels (there is no `break` or `continue`)";
    pub const YIELD: &str = "`yield` is not supported in kernels";
    pub const TRY_BLOCK: &str = "`try` blocks are not supported in kernels: kernels cannot fail at run time";
    pub const DYN: &str = "trait objects (`dyn Trait`) are not supported in kernels; \
                           use a concrete type or a generic `#[tpu_fn]`";
    pub const WHILE_LET: &str = "`while let` is not supported as a runtime loop: a runtime `while` needs a bool \
                                 `Scalar` condition; write `while cond { .. }`, or `#[unroll] while let` to loop \
                                 while building";
    pub const LET_ELSE: &str = "`let ... else` is not supported in kernels (it needs an early exit); \
                                use `match` or `if let` on the comptime value instead";
    pub const FOR_RANGE: &str = "a runtime `for` loop needs a range `a..b`; add `#[unroll]` to iterate a comptime \
                                 collection while building";
    pub const LET_MUT: &str = "declare mutable kernel variables one at a time with an initialiser: `let mut x = ...;`";
    pub const DESTRUCTURING_ASSIGN: &str = "destructuring assignment is not supported in kernels; \
                                            assign each variable with its own `x = ...;`";
    pub const UNROLL_TARGET: &str = "`#[unroll]` applies to `for` and `while` loops";
    pub const RESERVED: &str = "names starting with `__rpa_` are reserved for the code `#[tpu_kernel]` generates";
}

//! The one place that spells the runtime support path. Generated code names everything through
//! `::rpa_dsl::__private`, always absolute, so it works in any crate (and inside `rpa_dsl` itself,
//! which declares `extern crate self as rpa_dsl`).

use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;

/// `::rpa_dsl::__private`, with every token at `span` (so `#[track_caller]` calls made through it
/// record the author's source location, and type errors point at the author's tokens).
pub fn private(span: Span) -> TokenStream {
    quote_spanned!(span=> ::rpa_dsl::__private)
}

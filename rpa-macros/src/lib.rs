//! Procedural macros of rpa (placeholder entry points; the expansion lives in `expand`).
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn tpu_kernel(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

#[proc_macro_attribute]
pub fn tpu_fn(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

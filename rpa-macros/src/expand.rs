//! The two expansions: `#[tpu_kernel]` (a builder function for a `Kernel`) and `#[tpu_fn]` (a
//! helper whose body follows the kernel rules).

use crate::body::{mut_decl, Ctx, Rewriter};
use crate::error::{msg, Errors};
use crate::parse::{self, BlockAttr, KernelArgs, KernelFn, Kind, Operand, Param, ParamKind};
use crate::paths::private;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, ExprClosure, FnArg, Ident, ItemFn, Pat, PatIdent, ReturnType, Stmt};

const INDEX_MAP: &str = "index map must end in an array literal of block indices, e.g. `|i| [i, 0]`";

// ---------------------------------------------------------------------------------------------
// #[tpu_kernel]
// ---------------------------------------------------------------------------------------------

/// Expands `#[tpu_kernel]`. On errors: the errors, plus a stub builder with the same name and
/// comptime parameters, so callers do not get cascading "cannot find function" errors.
pub fn kernel(args: TokenStream, item: TokenStream) -> TokenStream {
    match kernel_inner(args, &item) {
        Ok(ts) => ts,
        Err((e, stub)) => {
            let mut ts = e.into_compile_error();
            ts.extend(stub);
            ts
        }
    }
}

fn kernel_inner(args: TokenStream, item: &TokenStream) -> Result<TokenStream, (syn::Error, TokenStream)> {
    let mut errors = Errors::default();
    let kargs = KernelArgs::parse(args).unwrap_or_else(|e| {
        errors.push(e);
        KernelArgs::default()
    });
    let f: KernelFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            errors.push(e);
            let stub = parse::fn_head(item)
                .map(|(vis, ident)| {
                    let p = private(ident.span());
                    quote! {
                        #vis fn #ident() -> ::core::result::Result<#p::Kernel, #p::KernelError> {
                            ::core::panic!("`#[tpu_kernel]` failed to expand")
                        }
                    }
                })
                .unwrap_or_default();
            return Err((errors.take().unwrap_or_else(|| syn::Error::new(Span::call_site(), "invalid kernel")), stub));
        }
    };

    if let Some(t) = &f.constness {
        errors.at(t, "a kernel cannot be a `const fn`: it is built by running its body");
    }
    if let Some(t) = &f.asyncness {
        errors.at(t, "a kernel cannot be `async`: its builder runs once, synchronously, and returns the `Kernel`");
    }
    if let Some(t) = &f.unsafety {
        errors
            .at(t, "a kernel cannot be `unsafe`: building it is safe, and the built kernel is checked before it runs");
    }
    if let Some(t) = &f.abi {
        errors.at(t, "a kernel cannot be `extern`: call its builder from Rust and launch the `Kernel` it returns");
    }
    if let ReturnType::Type(arrow, ty) = &f.output {
        errors.at(
            quote!(#arrow #ty),
            "kernels return nothing: write results into output refs (the builder returns `Result<Kernel, KernelError>`)",
        );
    }

    let params: Vec<Param> = f.params.iter().filter_map(|t| parse::param(t.clone(), &mut errors)).collect();
    for (i, prm) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.ident == prm.ident) {
            errors.at(&prm.ident, format!("two parameters are named `{}`", prm.ident));
        }
    }
    let p = private(f.ident.span());
    let comptime: Vec<TokenStream> = params
        .iter()
        .filter_map(|prm| match &prm.kind {
            ParamKind::Comptime { ty, .. } => {
                let (attrs, ident) = (&prm.attrs, &prm.ident);
                Some(quote!(#(#attrs)* #[allow(unused_variables)] #ident: #ty))
            }
            ParamKind::Operand(_) => None,
        })
        .collect();
    let (vis, ident, generics) = (&f.vis, &f.ident, &f.generics);
    let where_clause = &generics.where_clause;
    let result = quote!(::core::result::Result<#p::Kernel, #p::KernelError>);
    let attrs = &f.attrs;
    let stub = quote! {
        #(#attrs)*
        #[allow(unused_variables, clippy::all)]
        #vis fn #ident #generics (#(#comptime),*) -> #result #where_clause {
            ::core::panic!("`#[tpu_kernel]` failed to expand")
        }
    };

    let mut rw = Rewriter::new();
    let mut prologue = Vec::new();

    // Comptime parameters: plain Rust values (a `mut` one is a tracked variable).
    for prm in &params {
        if let ParamKind::Comptime { mutability: Some(m), .. } = &prm.kind {
            let id = &prm.ident;
            rw.declare(id, true);
            prologue.push(mut_decl(&[], m.span, id, None, quote!(#id), true));
        } else if let ParamKind::Comptime { .. } = &prm.kind {
            rw.declare(&prm.ident, false);
        }
    }

    // The launch description.
    if let Some((key, grid)) = &kargs.grid {
        let p = private(key.span());
        prologue.push(quote_spanned!(key.span()=> #p::launch::grid(&#grid);));
    }
    if let Some((key, sem)) = &kargs.semantics {
        let p = private(key.span());
        let sem = match sem {
            Expr::Array(a) => {
                let elems = a.elems.iter().map(|e| match e {
                    Expr::Path(path) if path.path.is_ident("parallel") => {
                        let p = private(e.span());
                        quote_spanned!(e.span()=> #p::DimSemantics::Parallel)
                    }
                    Expr::Path(path) if path.path.is_ident("arbitrary") => {
                        let p = private(e.span());
                        quote_spanned!(e.span()=> #p::DimSemantics::Arbitrary)
                    }
                    other => other.to_token_stream(),
                });
                quote_spanned!(a.span()=> [#(#elems),*])
            }
            other => other.to_token_stream(),
        };
        prologue.push(quote_spanned!(key.span()=> #p::launch::semantics(&#sem);));
    }
    if let Some((key, limit)) = &kargs.vmem_limit {
        let p = private(key.span());
        prologue.push(quote_spanned!(key.span()=> #p::launch::vmem_limit(#limit);));
    }

    // Operands, in declaration order.
    let mut earlier_inputs: Vec<String> = Vec::new();
    for prm in &params {
        let ParamKind::Operand(op) = &prm.kind else { continue };
        if let Some(a) = &op.alias {
            if !earlier_inputs.contains(&a.to_string()) {
                errors.at(
                    a,
                    format!("`{a}` is not an input (`In<..>` or `Prefetch<..>`) declared before `{}`", prm.ident),
                );
            }
        }
        if matches!(op.kind, Kind::In | Kind::Prefetch) {
            earlier_inputs.push(prm.ident.to_string());
        }
        prologue.push(operand_binding(prm, op, &mut rw));
        rw.declare(&prm.ident, false);
    }

    // The body.
    let body = rw.stmts(f.body.stmts.clone(), Ctx::Stmt);
    if let Some(e) = rw.errors.take() {
        errors.push(e);
    }
    if let Some(e) = errors.take() {
        return Err((e, stub));
    }

    let name = match &kargs.name {
        Some(n) => quote!(&::std::string::ToString::to_string(&(#n))),
        None => syn::LitStr::new(&ident.to_string(), ident.span()).to_token_stream(),
    };
    let loc = quote_spanned!(ident.span()=> #p::Loc { file: ::core::file!(), line: ::core::line!(), col: ::core::column!(), caller: ::core::option::Option::None });
    let build = quote_spanned!(ident.span()=> #p::build_kernel);
    Ok(quote! {
        #(#attrs)*
        #vis fn #ident #generics (#(#comptime),*) -> #result #where_clause {
            #build(#name, #loc, move || {
                #(#prologue)*
                #(#body)*
            })
        }
    })
}

/// `let x = launch::...("x", dtype, &[shape], ..);`
fn operand_binding(prm: &Param, op: &Operand, rw: &mut Rewriter) -> TokenStream {
    let id = &prm.ident;
    let sp = id.span();
    let p = private(sp);
    let name = syn::LitStr::new(&id.to_string(), sp);
    let dtype = op.dtype.as_ref().map(|d| match parse::dtype_variant(d) {
        Some((v, vsp)) => {
            let v = Ident::new(v, vsp);
            let p = private(vsp);
            quote_spanned!(vsp=> #p::DType::#v)
        }
        None => d.to_token_stream(),
    });
    let shape = &op.shape;
    let shape = quote!(&[#(#shape),*]);
    let alias = match &op.alias {
        Some(a) => {
            let a = syn::LitStr::new(&a.to_string(), a.span());
            quote_spanned!(sp=> ::core::option::Option::Some(#a))
        }
        None => quote_spanned!(sp=> ::core::option::Option::None),
    };
    let call = match (op.kind, &op.block) {
        (Kind::Prefetch, _) => quote_spanned!(sp=> #p::launch::prefetch(#name, #dtype, #shape)),
        (Kind::In, None) => quote_spanned!(sp=> #p::launch::input::<#p::Hbm>(#name, #dtype, #shape)),
        (Kind::In, Some(b)) => {
            let (bs, map) = block_parts(b, rw);
            quote_spanned!(sp=> #p::launch::input_blocked(#name, #dtype, #shape, #bs, #map))
        }
        (Kind::Out, None) => quote_spanned!(sp=> #p::launch::output::<#p::Hbm>(#name, #dtype, #shape, #alias)),
        (Kind::Out, Some(b)) => {
            let (bs, map) = block_parts(b, rw);
            quote_spanned!(sp=> #p::launch::output_blocked(#name, #dtype, #shape, #bs, #map, #alias))
        }
        (Kind::Vmem, _) => quote_spanned!(sp=> #p::launch::scratch_vmem(#name, #dtype, #shape)),
        (Kind::Smem, _) => quote_spanned!(sp=> #p::launch::scratch_smem(#name, #dtype, #shape)),
        (Kind::DmaSems, _) => quote_spanned!(sp=> #p::launch::dma_sems(#name, #shape)),
        (Kind::Semaphores, _) => quote_spanned!(sp=> #p::launch::semaphores(#name, #shape)),
    };
    let call = match op.block.as_ref().and_then(|b| b.buffers.as_ref()) {
        Some(n) => quote_spanned!(n.span()=> #p::launch::buffered(#call, #n)),
        None => call,
    };
    let attrs = &prm.attrs;
    let call = match &op.when {
        Some(cond) => quote_spanned! {sp=>
            if #cond { ::core::option::Option::Some(#call) } else { ::core::option::Option::None }
        },
        None => call,
    };
    quote_spanned! {sp=>
        #(#attrs)*
        #[allow(unused_variables)]
        let #id = #call;
    }
}

fn block_parts(b: &BlockAttr, rw: &mut Rewriter) -> (TokenStream, TokenStream) {
    let shape = &b.shape;
    (quote!(&#shape), index_map(&b.map, rw))
}

/// `|i, j| [i, 0]` → `|__rpa_grid: &[Scalar]| -> Vec<Scalar> { let i = grid_index(..); ..; Vec::from([block_index(i), block_index(0)]) }`
fn index_map(map: &ExprClosure, rw: &mut Rewriter) -> TokenStream {
    let sp = map.or1_token.span;
    let p = private(sp);
    let arity = map.inputs.len();
    let mut binds = Vec::new();
    rw.push_scope();
    for (k, pat) in map.inputs.iter().enumerate() {
        let pat = match pat {
            Pat::Type(t) => &*t.pat,
            pat => pat,
        };
        match pat {
            Pat::Ident(PatIdent { by_ref: None, mutability: None, subpat: None, ident, .. }) => {
                rw.declare(ident, false);
                let p = private(ident.span());
                binds.push(quote_spanned! {ident.span()=>
                    #[allow(unused_variables)]
                    let #ident = #p::launch::grid_index(__rpa_grid, #k, #arity);
                });
            }
            Pat::Wild(_) => {}
            other => {
                rw.errors.at(other, "index map parameters are grid indices: write names or `_`, e.g. `|i, _| [i, 0]`")
            }
        }
    }
    for a in &map.attrs {
        rw.errors.at(a, "attributes are not supported on index maps");
    }
    if let Some(t) = &map.asyncness {
        rw.errors.at(t, msg::ASYNC);
    }
    let parts: Option<(Vec<Stmt>, ExprArray)> = match &*map.body {
        Expr::Array(a) => Some((Vec::new(), a.clone())),
        Expr::Block(b) if b.label.is_none() => {
            let mut stmts = b.block.stmts.clone();
            match stmts.pop() {
                Some(Stmt::Expr(Expr::Array(a), None)) => Some((stmts, a)),
                _ => None,
            }
        }
        _ => None,
    };
    let Some((stmts, arr)) = parts else {
        rw.errors.at(&map.body, INDEX_MAP);
        rw.pop_scope();
        return TokenStream::new();
    };
    let stmts = rw.stmts(stmts, Ctx::Stmt);
    let elems: Vec<TokenStream> = arr
        .elems
        .into_iter()
        .map(|e| {
            let esp = e.span();
            let e = rw.expr(e, Ctx::Value);
            let p = private(esp);
            quote_spanned!(esp=> #p::launch::block_index(#e))
        })
        .collect();
    rw.pop_scope();
    quote_spanned! {sp=>
        |__rpa_grid: &[#p::Scalar]| -> ::std::vec::Vec<#p::Scalar> {
            #(#binds)*
            #(#stmts)*
            ::std::vec::Vec::from([#(#elems),*])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// #[tpu_fn]
// ---------------------------------------------------------------------------------------------

/// Expands `#[tpu_fn]`: same signature, body rewritten with the kernel rules.
pub fn tpu_fn(args: TokenStream, item: TokenStream) -> TokenStream {
    match fn_inner(args, &item) {
        Ok(ts) => ts,
        Err((e, stub)) => {
            let mut ts = e.into_compile_error();
            ts.extend(stub);
            ts
        }
    }
}

fn fn_inner(args: TokenStream, item: &TokenStream) -> Result<TokenStream, (syn::Error, TokenStream)> {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.at(&args, "`#[tpu_fn]` takes no arguments");
    }
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            errors.push(syn::Error::new(e.span(), format!("`#[tpu_fn]` goes on a function: {e}")));
            let e = errors.take().unwrap_or(e);
            return Err((e, item.clone()));
        }
    };
    let ItemFn { attrs, vis, mut sig, block } = f;
    let stub = quote! {
        #(#attrs)*
        #[allow(unused_variables, clippy::all)]
        #vis #sig { ::core::panic!("`#[tpu_fn]` failed to expand") }
    };
    if let Some(t) = &sig.constness {
        errors.at(t, "a `#[tpu_fn]` cannot be a `const fn`: it records kernel ops when called");
    }
    if let Some(t) = &sig.asyncness {
        errors.at(t, "a `#[tpu_fn]` cannot be `async`: kernel code runs once, synchronously, while building");
    }
    if let Some(t) = &sig.unsafety {
        errors.at(t, "a `#[tpu_fn]` cannot be `unsafe`: kernel code is built, not run");
    }
    if let Some(v) = &sig.variadic {
        errors.at(v, "variadic parameters are not supported in kernels");
    }

    let mut rw = Rewriter::new();
    let mut prologue = Vec::new();
    for arg in sig.inputs.iter_mut() {
        let FnArg::Typed(pt) = arg else { continue };
        match &mut *pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() && pi.mutability.is_some() => {
                // `mut x: T` becomes a tracked variable (an IR variable if `x` is runtime).
                let m = pi.mutability.take();
                let id = pi.ident.clone();
                rw.declare(&id, true);
                let sp = m.map(|m| m.span).unwrap_or_else(|| id.span());
                prologue.extend(crate::body::parse_stmts(mut_decl(&[], sp, &id, None, quote!(#id), false)));
            }
            pat => rw.bind_pat(pat),
        }
    }
    let ctx = match &sig.output {
        ReturnType::Default => Ctx::Stmt,
        ReturnType::Type(..) => Ctx::Value,
    };
    rw.push_scope();
    let stmts = rw.stmts(block.stmts, ctx);
    rw.pop_scope();
    if let Some(e) = rw.errors.take() {
        errors.push(e);
    }
    if let Some(e) = errors.take() {
        return Err((e, stub));
    }
    let brace = block.brace_token;
    let mut all = prologue;
    all.extend(stmts);
    let body = syn::Block { brace_token: brace, stmts: all };
    Ok(with_call_site(&attrs, &vis, &sig, body))
}

/// The helper records its call site: it is `#[track_caller]`, enters a `CallFrame` (so the
/// locations of the ops it records name the call), and runs its body in a closure (which is not
/// `#[track_caller]`, so each op still records its own line).
fn with_call_site(
    attrs: &[syn::Attribute],
    vis: &syn::Visibility,
    sig: &syn::Signature,
    body: syn::Block,
) -> TokenStream {
    let p = private(sig.ident.span());
    // A closure cannot declare an `impl Trait` return type; it is inferred from the body then.
    let ret = match &sig.output {
        ReturnType::Type(arrow, ty) if !ty.to_token_stream().to_string().contains("impl") => quote!(#arrow #ty),
        _ => TokenStream::new(),
    };
    quote! {
        #(#attrs)*
        #[track_caller]
        #vis #sig {
            let __rpa_frame = #p::CallFrame::enter();
            #[allow(clippy::redundant_closure_call)]
            (move || #ret #body)()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squash(ts: &TokenStream) -> String {
        ts.to_string().replace(' ', "")
    }

    #[test]
    fn kernel_expansion_shape() {
        let args = quote!(grid = [rows / 8, 2], semantics = [parallel, arbitrary], vmem_limit = 32 << 20);
        let item = quote! {
            pub fn add(
                #[comptime] rows: usize,
                kv_lens: Prefetch<i32, {[4]}>,
                q: In<f32, {[8, 128]}>,
                #[block([8, 128], |i, _| [i, 0])] x: In<bf16, rows, 128>,
                #[block([8, 128], |i, _| [i, 0], Buffered(1))] z: In<f32, rows, 128>,
                #[alias(q)] o: Out![f32, [8, 128]],
                #[block([8, 128], |i, j| { let r = kv_lens.get(i); [r, j] })] y: Out<{dt()}, {[rows, 128]}>,
                buf: Vmem<f32, {[2, 8, 128]}>,
                flags: Smem<i32, 4>,
                sems: DmaSems<2>,
                done: Semaphores<1>,
            ) {
                o.store(x.load());
            }
        };
        let out = kernel(args, item);
        let s = squash(&out);
        for want in [
            "pubfnadd(#[allow(unused_variables)]rows:usize)->::core::result::Result<::rpa_dsl::__private::Kernel,::rpa_dsl::__private::KernelError>",
            "::rpa_dsl::__private::build_kernel(\"add\",::rpa_dsl::__private::Loc{file:::core::file!(),line:::core::line!(),col:::core::column!(),caller:::core::option::Option::None},move||{",
            "::rpa_dsl::__private::launch::grid(&[rows/8,2]);",
            "launch::semantics(&[::rpa_dsl::__private::DimSemantics::Parallel,::rpa_dsl::__private::DimSemantics::Arbitrary]);",
            "launch::vmem_limit(32<<20);",
            "letkv_lens=::rpa_dsl::__private::launch::prefetch(\"kv_lens\",::rpa_dsl::__private::DType::I32,&[4]);",
            "letq=::rpa_dsl::__private::launch::input::<::rpa_dsl::__private::Hbm>(\"q\",::rpa_dsl::__private::DType::F32,&[8,128]);",
            "launch::input_blocked(\"x\",::rpa_dsl::__private::DType::Bf16,&[rows,128],&[8,128],|__rpa_grid:&[::rpa_dsl::__private::Scalar]|->::std::vec::Vec<::rpa_dsl::__private::Scalar>{#[allow(unused_variables)]leti=::rpa_dsl::__private::launch::grid_index(__rpa_grid,0usize,2usize);::std::vec::Vec::from([::rpa_dsl::__private::launch::block_index(i),::rpa_dsl::__private::launch::block_index(0)])})",
            "launch::output::<::rpa_dsl::__private::Hbm>(\"o\",::rpa_dsl::__private::DType::F32,&[8,128],::core::option::Option::Some(\"q\"))",
            "launch::output_blocked(\"y\",dt(),&[rows,128],&[8,128],",
            "::core::option::Option::None)",
            "launch::scratch_vmem(\"buf\",::rpa_dsl::__private::DType::F32,&[2,8,128])",
            "launch::scratch_smem(\"flags\",::rpa_dsl::__private::DType::I32,&[4])",
            "launch::dma_sems(\"sems\",&[2])",
            "launch::buffered(::rpa_dsl::__private::launch::input_blocked(\"z\"",
            "launch::semaphores(\"done\",&[1])",
            "o.store(x.load());",
        ] {
            assert!(s.contains(want), "missing {want}\nin {s}");
        }
        // The index map's statements are rewritten like a kernel body.
        assert!(
            s.contains("letr=kv_lens.get(i);::std::vec::Vec::from([::rpa_dsl::__private::launch::block_index(r)"),
            "{s}"
        );
    }

    #[test]
    fn errors_come_with_a_stub() {
        let out = kernel(
            quote!(),
            quote!(
                pub fn k(#[comptime] n: usize, x: Vec<f32>) {
                    loop {}
                }
            ),
        );
        let s = squash(&out);
        assert_eq!(s.matches("compile_error!").count(), 2, "{s}");
        assert!(s.contains("pubfnk(#[allow(unused_variables)]n:usize)->::core::result::Result<"), "{s}");
        // Unparsable input: still a stub with the name.
        let s = squash(&kernel(quote!(), quote!(pub(crate) fn k(x: In<f32, {[8]}>) -> {})));
        assert!(s.contains("compile_error!") && s.contains("pub(crate)fnk()"), "{s}");
        let s = squash(&kernel(
            quote!(bogus = 1),
            quote!(
                fn k() {}
            ),
        ));
        assert!(s.contains("unknown`#[tpu_kernel]`argument"), "{s}");
    }

    fn kernel_errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        match kernel_inner(args, &item) {
            Ok(_) => Vec::new(),
            Err((e, _)) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn signature_errors() {
        let e = kernel_errors(
            quote!(),
            quote!(
                const unsafe extern "C" fn k() -> u32 {
                    0
                }
            ),
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("`const fn`") && e[1].contains("`unsafe`") && e[2].contains("`extern`"), "{e:?}");
        assert!(e[3].contains("kernels return nothing"), "{e:?}");
        let e = kernel_errors(
            quote!(),
            quote!(
                fn k(&self, (a, b): In<f32, 8>, x: impl Copy, y: u32, z: Smem<i32, { [4] }>, z: In<f32, 8>) {}
            ),
        );
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e[0].contains("no `self`"), "{e:?}");
        assert!(e[1].contains("not a pattern"), "{e:?}");
        assert!(e[2].contains("`impl Trait`"), "{e:?}");
        assert!(e[3].contains("`#[comptime]`"), "{e:?}");
        assert!(e[4].contains("two parameters are named `z`"), "{e:?}");
        let e = kernel_errors(
            quote!(),
            quote!(
                fn k(
                    #[alias(x)] p: Prefetch<i32, 4>,
                    #[block([8], |i| [i])] v: Vmem<f32, 8>,
                    #[comptime]
                    #[block([8], |i| [i])]
                    n: usize,
                ) {
                }
            ),
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("`Prefetch` cannot alias") && e[1].contains("`Vmem` is not pipelined"), "{e:?}");
        let e = kernel_errors(
            quote!(),
            quote!(
                fn k(#[block(8, |i| [i])] x: In<f32, 8>, #[block([8], [0])] y: In<f32, 8>) {}
            ),
        );
        assert!(e[0].contains("a block shape is an array literal") && e[1].contains("index map is a closure"), "{e:?}");
        let e = kernel_errors(
            quote!(),
            quote!(
                fn k(#[block([8], |i| [i], Triple)] x: In<f32, 8>) {}
            ),
        );
        assert!(e[0].contains("a BlockSpec takes its pipeline mode, `Buffered(n)`"), "{e:?}");
        let e = kernel_errors(
            quote!(grid = [1], grid = [2]),
            quote!(
                fn k() {}
            ),
        );
        assert!(e[0].contains("`grid` is given twice"), "{e:?}");
    }

    #[test]
    fn tpu_fn_keeps_the_signature() {
        let out = tpu_fn(
            quote!(),
            quote!(
                pub fn h(t: Tile, mut n: usize) -> Tile {
                    if n > 2 {
                        t
                    } else {
                        t * 2.0
                    }
                }
            ),
        );
        let s = squash(&out);
        assert!(s.starts_with("#[track_caller]pubfnh(t:Tile,n:usize)->Tile{"), "{s}");
        assert!(s.contains("let__rpa_frame=::rpa_dsl::__private::CallFrame::enter();"), "{s}");
        assert!(s.contains("(move||->Tile{"), "{s}");
        assert!(s.contains("letmutn={#[allow(unused_imports)]use::rpa_dsl::__private::{RuntimeMut"), "{s}");
        assert!(s.contains("IfResult::__rpa_result"), "{s}");
        let s = squash(&tpu_fn(
            quote!(),
            quote!(
                async fn h() {}
            ),
        ));
        assert!(s.contains("compile_error!"), "{s}");
    }
}

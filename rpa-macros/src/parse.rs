//! Parsing of `#[tpu_kernel(...)]` arguments and of the kernel signature mini-language.
//!
//! Rust's parser sees a kernel's signature before the macro does, so every parameter type must be
//! valid Rust type syntax. A kernel operand is written with the dtype first and then its shape:
//!
//! ```text
//! x: In<f32, {[rows, 128]}>        // a braced array literal (braces: a Rust const-generic expression)
//! x: In<f32, rows, 128>            // or one generic argument per dimension (`{..}` around expressions)
//! x: In![cfg.dtype, [rows, 128]]   // or macro-style brackets, where anything goes
//! ```
//!
//! The dtype is one of `f32 bf16 f16 f8e4m3fn f8e5m2 i32 u32 i16 u16 i8 u8 bool`, or any other
//! expression of type `DType` (`dtype`, `{cfg.kv_dtype}`).

use crate::error::Errors;
use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Abi, Attribute, Block, Expr, ExprArray, ExprClosure, Generics, Ident, Pat, PatIdent, ReturnType, Token, Type,
    Visibility,
};

// ---------------------------------------------------------------------------------------------
// attribute arguments
// ---------------------------------------------------------------------------------------------

/// `#[tpu_kernel(grid = [..], semantics = [..], vmem_limit = .., name = "..")]`
#[derive(Default)]
pub struct KernelArgs {
    pub grid: Option<(Ident, Expr)>,
    pub semantics: Option<(Ident, Expr)>,
    pub vmem_limit: Option<(Ident, Expr)>,
    /// The kernel's name: a string literal or any expression that implements `Display`.
    pub name: Option<syn::Expr>,
}

impl KernelArgs {
    pub fn parse(args: TokenStream) -> syn::Result<KernelArgs> {
        let mut out = KernelArgs::default();
        let parser = syn::meta::parser(|meta| {
            let Some(key) = meta.path.get_ident().cloned() else {
                return Err(meta.error(UNKNOWN_ARG));
            };
            let dup = || syn::Error::new(key.span(), format!("`{key}` is given twice"));
            match key.to_string().as_str() {
                "grid" | "semantics" | "vmem_limit" => {
                    let value: Expr = meta.value()?.parse()?;
                    let slot = match key.to_string().as_str() {
                        "grid" => &mut out.grid,
                        "semantics" => &mut out.semantics,
                        _ => &mut out.vmem_limit,
                    };
                    if slot.is_some() {
                        return Err(dup());
                    }
                    *slot = Some((key, value));
                }
                "name" => {
                    let value: syn::Expr = meta.value()?.parse()?;
                    if out.name.is_some() {
                        return Err(dup());
                    }
                    out.name = Some(value);
                }
                _ => return Err(meta.error(UNKNOWN_ARG)),
            }
            Ok(())
        });
        parser.parse2(args)?;
        Ok(out)
    }
}

const UNKNOWN_ARG: &str = "unknown `#[tpu_kernel]` argument; expected `grid = [..]`, `semantics = [..]`, \
                           `vmem_limit = ..` or `name = \"..\"`";

// ---------------------------------------------------------------------------------------------
// the kernel function
// ---------------------------------------------------------------------------------------------

/// A `#[tpu_kernel]` function, parsed by hand: its parameter types are the DSL's, not Rust's.
pub struct KernelFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub constness: Option<Token![const]>,
    pub asyncness: Option<Token![async]>,
    pub unsafety: Option<Token![unsafe]>,
    pub abi: Option<Abi>,
    pub ident: Ident,
    pub generics: Generics,
    /// One token list per parameter (split at top-level commas).
    pub params: Vec<TokenStream>,
    pub output: ReturnType,
    pub body: Block,
}

impl Parse for KernelFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let constness = input.parse()?;
        let asyncness = input.parse()?;
        let unsafety = input.parse()?;
        let abi = input.parse()?;
        let _fn: Token![fn] = input.parse()?;
        let ident: Ident = input.parse()?;
        let mut generics: Generics = input.parse()?;
        let content;
        syn::parenthesized!(content in input);
        let params: TokenStream = content.parse()?;
        let output: ReturnType = input.parse()?;
        generics.where_clause = input.parse()?;
        let body: Block = input.parse()?;
        Ok(KernelFn {
            attrs,
            vis,
            constness,
            asyncness,
            unsafety,
            abi,
            ident,
            generics,
            params: split_top_level(params),
            output,
            body,
        })
    }
}

/// Splits tokens at commas outside `<..>` (groups already hide their commas).
fn split_top_level(ts: TokenStream) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut depth = 0usize;
    let mut prev_minus = false;
    for tt in ts {
        let mut minus = false;
        if let TokenTree::Punct(p) = &tt {
            match p.as_char() {
                '<' => depth += 1,
                '>' if !prev_minus => depth = depth.saturating_sub(1),
                '-' => minus = p.spacing() == Spacing::Joint,
                ',' if depth == 0 => {
                    out.push(cur.drain(..).collect());
                    prev_minus = false;
                    continue;
                }
                _ => {}
            }
        }
        prev_minus = minus;
        cur.push(tt);
    }
    if !cur.is_empty() {
        out.push(cur.into_iter().collect());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// parameters
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Prefetch,
    In,
    Out,
    Vmem,
    Smem,
    DmaSems,
    Semaphores,
}

impl Kind {
    fn from_ident(i: &Ident) -> Option<Kind> {
        Some(match i.to_string().as_str() {
            "Prefetch" => Kind::Prefetch,
            "In" => Kind::In,
            "Out" => Kind::Out,
            "Vmem" => Kind::Vmem,
            "Smem" => Kind::Smem,
            "DmaSems" => Kind::DmaSems,
            "Semaphores" => Kind::Semaphores,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Prefetch => "Prefetch",
            Kind::In => "In",
            Kind::Out => "Out",
            Kind::Vmem => "Vmem",
            Kind::Smem => "Smem",
            Kind::DmaSems => "DmaSems",
            Kind::Semaphores => "Semaphores",
        }
    }
    /// Semaphore arrays have a shape and no dtype.
    fn is_sems(self) -> bool {
        matches!(self, Kind::DmaSems | Kind::Semaphores)
    }
}

/// `#[block(shape, index_map)]`, optionally `#[block(shape, index_map, Buffered(n))]`.
pub struct BlockAttr {
    pub shape: ExprArray,
    pub map: ExprClosure,
    /// `n` of `Buffered(n)`: the pipeline's buffer count.
    pub buffers: Option<Expr>,
}

pub struct Operand {
    pub kind: Kind,
    /// `None` for `DmaSems` and `Semaphores`.
    pub dtype: Option<Expr>,
    pub shape: Vec<Expr>,
    pub block: Option<BlockAttr>,
    pub alias: Option<Ident>,
    /// `#[when(cond)]`: the operand exists only if the comptime `cond` holds (an `Option` in the body).
    pub when: Option<Expr>,
}

#[allow(clippy::large_enum_variant)] // a few per kernel
pub enum ParamKind {
    /// A plain Rust parameter of the builder function.
    Comptime {
        ty: Type,
        mutability: Option<Token![mut]>,
    },
    Operand(Operand),
}

pub struct Param {
    /// Attributes other than the DSL's (kept on the generated binding).
    pub attrs: Vec<Attribute>,
    pub ident: Ident,
    pub kind: ParamKind,
}

const KINDS: &str = "kernel parameters are `Prefetch<..>`, `In<..>`, `Out<..>`, `Vmem<..>`, `Smem<..>`, \
                     `DmaSems<..>`, `Semaphores<..>` or `#[comptime]` values";

/// Parses one parameter; errors go to `errors` (`None` when it cannot be used at all).
pub fn param(tokens: TokenStream, errors: &mut Errors) -> Option<Param> {
    let parsed = (|input: ParseStream| -> syn::Result<(Vec<Attribute>, TokenStream, TokenStream)> {
        let attrs = input.call(Attribute::parse_outer)?;
        let mut pat = TokenStream::new();
        while !input.is_empty() && (!input.peek(Token![:]) || input.peek(Token![::])) {
            let tt: TokenTree = input.parse()?;
            pat.extend([tt]);
        }
        let _colon: Option<Token![:]> = input.parse()?;
        let ty: TokenStream = input.parse()?;
        Ok((attrs, pat, ty))
    })
    .parse2(tokens.clone());
    let (attrs, pat_tokens, ty_tokens) = match parsed {
        Ok(p) => p,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };

    if pat_tokens.to_string().starts_with('.') || ty_tokens.to_string().starts_with('.') {
        errors.at(&tokens, "variadic parameters are not supported in kernels");
        return None;
    }
    if pat_tokens.clone().into_iter().any(|t| matches!(&t, TokenTree::Ident(i) if i == "self")) {
        errors.at(&pat_tokens, "a kernel has no `self`: it is a free function whose parameters are its operands");
        return None;
    }
    if ty_tokens.is_empty() {
        errors.at(&tokens, format!("this parameter needs a type; {KINDS}"));
        return None;
    }

    // The DSL's attributes.
    let mut comptime = None;
    let mut block = None;
    let mut alias = None;
    let mut when = None;
    let mut rest = Vec::new();
    for a in attrs {
        if a.path().is_ident("comptime") {
            if !matches!(a.meta, syn::Meta::Path(_)) {
                errors.at(&a, "`#[comptime]` takes no arguments");
            }
            comptime = Some(a);
        } else if a.path().is_ident("block") {
            if block.is_some() {
                errors.at(&a, "a parameter has at most one `#[block(..)]`");
            }
            match a.parse_args_with(parse_block_attr) {
                Ok(b) => block = Some((a, b)),
                Err(e) => errors.push(e),
            }
        } else if a.path().is_ident("alias") {
            match a.parse_args::<Ident>() {
                Ok(i) => alias = Some((a, i)),
                Err(_) => errors.at(&a, "write the aliased input's name: `#[alias(q)]`"),
            }
        } else if a.path().is_ident("when") {
            match a.parse_args::<Expr>() {
                Ok(e) => when = Some((a, e)),
                Err(_) => errors.at(&a, "write the comptime condition: `#[when(cfg.return_lse)]`"),
            }
        } else {
            rest.push(a);
        }
    }

    let pat = match Pat::parse_single.parse2(pat_tokens.clone()) {
        Ok(p) => p,
        Err(_) => {
            errors.at(&pat_tokens, "a kernel parameter is a name, e.g. `x: In<f32, {[8, 128]}>`");
            return None;
        }
    };
    let (ident, mutability) = match pat {
        Pat::Ident(PatIdent { by_ref: None, mutability, ident, subpat: None, .. }) => (ident, mutability),
        other => {
            errors.at(&other, "a kernel parameter is a name, not a pattern: write `x: ..` and destructure in the body");
            return None;
        }
    };
    if ident.to_string().starts_with("__rpa_") {
        errors.at(&ident, crate::error::msg::RESERVED);
    }

    let kind_form = kind_of(&ty_tokens);
    if let Some(c) = comptime {
        if let Some(kind) = &kind_form {
            errors.at(
                &c,
                format!("`{}<..>` is a kernel operand, not a comptime value: remove `#[comptime]`", kind.name()),
            );
            return None;
        }
        if let Some((a, _)) = &block {
            errors.at(a, "`#[block(..)]` applies to `In<..>`/`Out<..>` operands, not to `#[comptime]` values");
        }
        if let Some((a, _)) = &alias {
            errors.at(a, "`#[alias(..)]` applies to `Out<..>` operands, not to `#[comptime]` values");
        }
        if let Some((a, _)) = &when {
            errors.at(a, "`#[when(..)]` makes an operand optional; a `#[comptime]` value is always there");
        }
        let ty = match syn::parse2::<Type>(ty_tokens.clone()) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        return Some(Param { attrs: rest, ident, kind: ParamKind::Comptime { ty, mutability } });
    }

    let Some(kind) = kind_form else {
        plain_type_error(&ty_tokens, errors);
        return None;
    };
    if let Some(m) = mutability {
        errors.at(m, "an operand is a ref, not a mutable binding: remove `mut` (write through it with `store`/`set`)");
    }
    let (dtype, shape) = operand_type(kind, &ty_tokens, errors)?;
    let block = match block {
        Some((a, b)) => {
            if matches!(kind, Kind::In | Kind::Out) {
                Some(b)
            } else {
                errors.at(
                    &a,
                    format!(
                        "`#[block(..)]` applies to `In<..>`/`Out<..>` operands: `{}` is not pipelined by BlockSpecs \
                         (remove the attribute)",
                        kind.name()
                    ),
                );
                None
            }
        }
        None => None,
    };
    let alias = match alias {
        Some((a, i)) => {
            if kind == Kind::Out {
                Some(i)
            } else {
                errors.at(
                    &a,
                    format!(
                        "`#[alias(..)]` goes on an `Out<..>` operand and names the input it overwrites; \
                         `{}` cannot alias",
                        kind.name()
                    ),
                );
                None
            }
        }
        None => None,
    };
    let when = when.map(|(_, e)| e);
    Some(Param { attrs: rest, ident, kind: ParamKind::Operand(Operand { kind, dtype, shape, block, alias, when }) })
}

fn parse_block_attr(input: ParseStream) -> syn::Result<BlockAttr> {
    let shape: Expr = input.parse()?;
    let shape = match shape {
        Expr::Array(a) => a,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "a block shape is an array literal: `#[block([8, 128], |i| [i, 0])]`",
            ))
        }
    };
    if input.is_empty() {
        return Err(syn::Error::new(
            shape.span(),
            "`#[block(..)]` needs an index map after the shape: `#[block([8, 128], |i| [i, 0])]`",
        ));
    }
    input.parse::<Token![,]>()?;
    let map: Expr = input.parse()?;
    let _: Option<Token![,]> = input.parse()?;
    let map = match map {
        Expr::Closure(c) => c,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "the index map is a closure from grid indices to block indices, e.g. `|i, j| [i, 0]`",
            ))
        }
    };
    let buffers = if input.is_empty() {
        None
    } else {
        let mode: Expr = input.parse()?;
        let _: Option<Token![,]> = input.parse()?;
        match mode {
            Expr::Call(c) if c.args.len() == 1 && matches!(&*c.func, Expr::Path(p) if p.path.is_ident("Buffered")) => {
                c.args.into_iter().next()
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "after the index map a BlockSpec takes its pipeline mode, `Buffered(n)`: \
                     `#[block([8, 128], |i| [i, 0], Buffered(1))]`",
                ))
            }
        }
    };
    Ok(BlockAttr { shape, map, buffers })
}

/// `In<..>` / `In![..]`: the kind, if the type is one of the DSL's.
fn kind_of(ty: &TokenStream) -> Option<Kind> {
    let mut it = ty.clone().into_iter();
    let TokenTree::Ident(i) = it.next()? else { return None };
    let kind = Kind::from_ident(&i)?;
    match it.next() {
        Some(TokenTree::Punct(p)) if p.as_char() == '<' || p.as_char() == '!' => Some(kind),
        None => Some(kind),
        _ => None,
    }
}

/// The dtype and shape of an operand type.
fn operand_type(kind: Kind, ty: &TokenStream, errors: &mut Errors) -> Option<(Option<Expr>, Vec<Expr>)> {
    let name = kind.name();
    let example = if kind.is_sems() { format!("`{name}<{{[2]}}>`") } else { format!("`{name}<f32, {{[8, 128]}}>`") };
    let mut it = ty.clone().into_iter().skip(1);
    let args: Vec<TokenStream> = match it.next() {
        None => {
            errors.at(
                ty,
                format!("`{name}` needs {}: {example}", if kind.is_sems() { "a shape" } else { "a dtype and a shape" }),
            );
            return None;
        }
        // Macro form: `In![dtype, [shape]]` — free tokens.
        Some(TokenTree::Punct(p)) if p.as_char() == '!' => {
            let g = match it.next() {
                Some(TokenTree::Group(g)) => g,
                _ => {
                    errors.at(ty, format!("expected `{name}![..]`"));
                    return None;
                }
            };
            if let Some(extra) = it.next() {
                errors.at(extra, "unexpected tokens after the operand type");
            }
            match Punctuated::<Expr, Token![,]>::parse_terminated.parse2(g.stream()) {
                Ok(p) => p.into_iter().map(|e| e.into_token_stream()).collect(),
                Err(e) => {
                    errors.push(e);
                    return None;
                }
            }
        }
        // Generic form: `In<dtype, {[shape]}>` / `In<dtype, d0, d1>`.
        Some(_) => {
            let mut inner: Vec<TokenTree> = it.collect();
            match inner.last() {
                Some(TokenTree::Punct(p)) if p.as_char() == '>' => {
                    inner.pop();
                }
                _ => {
                    errors.at(ty, format!("expected `{name}<..>`"));
                    return None;
                }
            }
            let args = split_top_level(inner.into_iter().collect());
            for a in &args {
                check_generic_arg(name, a, errors);
            }
            args
        }
    };

    let mut exprs = Vec::new();
    for a in &args {
        match syn::parse2::<Expr>(a.clone()) {
            Ok(e) => exprs.push(unbrace(e)),
            Err(e) => {
                errors.push(e);
                return None;
            }
        }
    }
    let mut exprs = exprs.into_iter();
    let dtype = if kind.is_sems() {
        None
    } else {
        match exprs.next() {
            Some(d) => Some(d),
            None => {
                errors.at(ty, format!("`{name}` needs a dtype and a shape: {example}"));
                return None;
            }
        }
    };
    let dims: Vec<Expr> = exprs.collect();
    let shape = match dims.as_slice() {
        [] => {
            errors.at(
                ty,
                format!("`{name}` needs a shape after {}: {example}", if kind.is_sems() { "`<`" } else { "its dtype" }),
            );
            return None;
        }
        [Expr::Array(a)] => a.elems.iter().cloned().collect(),
        _ => {
            if let Some(a) = dims.iter().find(|d| matches!(d, Expr::Array(_))) {
                errors.at(
                    a,
                    format!("malformed shape: write one array literal, {example}, or one dimension per argument"),
                );
                return None;
            }
            dims
        }
    };
    Some((dtype, shape))
}

/// Generic arguments Rust's parser accepts are types, literals and `{..}` blocks; anything else
/// it has already reported (confusingly), so add the DSL's hint.
fn check_generic_arg(kind: &str, a: &TokenStream, errors: &mut Errors) {
    let mut it = a.clone().into_iter();
    let first = it.next();
    let single = it.next().is_none();
    let ok = match &first {
        Some(TokenTree::Group(g)) if single && g.delimiter() == Delimiter::Brace => true,
        Some(TokenTree::Literal(_)) if single => true,
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => false,
        _ => syn::parse2::<Type>(a.clone()).is_ok() || syn::parse2::<syn::Lit>(a.clone()).is_ok(),
    };
    if !ok {
        let what = if matches!(&first, Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket) {
            format!("write the shape as `{{{a}}}` (in braces)")
        } else {
            format!("write this expression in braces, `{{{a}}}`")
        };
        errors.at(
            a,
            format!(
                "Rust's parser only accepts types, literals and `{{..}}` blocks between `<` and `>`: {what}, \
                 or use the macro form `{kind}![dtype, [shape]]`"
            ),
        );
    }
}

/// `{ e }` → `e` (the braces only exist to satisfy Rust's parser).
fn unbrace(e: Expr) -> Expr {
    match e {
        Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() && b.block.stmts.len() == 1 => {
            match b.block.stmts.into_iter().next() {
                Some(syn::Stmt::Expr(e, None)) => e,
                Some(s) => Expr::Block(syn::ExprBlock {
                    attrs: vec![],
                    label: None,
                    block: Block { brace_token: b.block.brace_token, stmts: vec![s] },
                }),
                None => Expr::Verbatim(TokenStream::new()),
            }
        }
        e => e,
    }
}

/// The error for a parameter whose type is not one of the DSL's.
fn plain_type_error(ty_tokens: &TokenStream, errors: &mut Errors) {
    let Ok(ty) = syn::parse2::<Type>(ty_tokens.clone()) else {
        errors.at(ty_tokens, KINDS);
        return;
    };
    match &ty {
        Type::Reference(_) | Type::Ptr(_) | Type::TraitObject(_) | Type::ImplTrait(_) | Type::BareFn(_) => {
            errors.at(
                &ty,
                format!(
                    "references, pointers, `impl Trait` and trait objects cannot be kernel parameters: {KINDS} \
                     (a host value passed while building is `#[comptime]`)"
                ),
            );
        }
        Type::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
            let name = p.path.segments[0].ident.to_string();
            const PLAIN: &[&str] = &[
                "usize", "isize", "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128", "f32", "f64",
                "bool", "char", "String", "DType",
            ];
            if PLAIN.contains(&name.as_str()) {
                errors.at(
                    &ty,
                    format!(
                        "`{name}` is a plain Rust value: mark the parameter `#[comptime]` to pass it when building \
                         the kernel; runtime scalars come from `Prefetch<..>` or `Smem<..>` refs"
                    ),
                );
            } else {
                errors.at(&ty, unknown_kind(&ty));
            }
        }
        _ => errors.at(&ty, unknown_kind(&ty)),
    }
}

fn unknown_kind(ty: &Type) -> String {
    let ty = pretty(&ty.to_token_stream());
    format!(
        "{KINDS}: declare an operand with its dtype and shape, e.g. `x: In<f32, {{[8, 128]}}>`, \
         or mark a host value used while building `#[comptime]` (`#[comptime] x: {ty}`)"
    )
}

/// Tokens as an author would write them (for messages): `Vec < f32 >` → `Vec<f32>`.
fn pretty(ts: &TokenStream) -> String {
    let mut s = ts.to_string();
    for (from, to) in
        [(" < ", "<"), ("< ", "<"), (" <", "<"), (" >", ">"), (" ,", ","), (" :: ", "::"), (":: ", "::"), ("& ", "&")]
    {
        s = s.replace(from, to);
    }
    s
}

/// Maps a dtype keyword to its `DType` variant name.
pub fn dtype_variant(e: &Expr) -> Option<(&'static str, Span)> {
    let Expr::Path(p) = e else { return None };
    let i = p.path.get_ident()?;
    let v = match i.to_string().as_str() {
        "f32" => "F32",
        "bf16" => "Bf16",
        "f16" => "F16",
        "f8e4m3fn" => "F8E4M3",
        "f8e5m2" => "F8E5M2",
        "i32" => "I32",
        "u32" => "U32",
        "i16" => "I16",
        "u16" => "U16",
        "i8" => "I8",
        "u8" => "U8",
        "bool" => "Bool",
        _ => return None,
    };
    Some((v, i.span()))
}

/// Best-effort `vis fn name` of an item that did not parse, for the error stub.
pub fn fn_head(item: &TokenStream) -> Option<(TokenStream, Ident)> {
    let mut vis = TokenStream::new();
    let mut it = item.clone().into_iter().peekable();
    while let Some(tt) = it.next() {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                it.next();
            }
            TokenTree::Ident(i) if i == "pub" => {
                vis.extend([tt.clone()]);
                if let Some(TokenTree::Group(g)) = it.peek() {
                    if g.delimiter() == Delimiter::Parenthesis {
                        vis.extend(it.next());
                    }
                }
            }
            TokenTree::Ident(i) if i == "fn" => {
                return match it.next() {
                    Some(TokenTree::Ident(name)) => Some((vis, name)),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    None
}

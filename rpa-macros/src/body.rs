//! Rewriting of kernel and `#[tpu_fn]` bodies into ordinary Rust that calls the rpa-dsl frontend.
//!
//! Running the rewritten code records IR: `if`/`for`/`while` go through the frontend's structured
//! control flow (`If`, `ForLoop`, `WhileLoop`), comparisons and `&&`/`||` through `cmp`/`logic`,
//! and `let`/`let mut`/assignments through the autoref-specialisation wrappers (`Snapshot`,
//! `MutInit`, `AssignTo`), which make runtime values IR variables and keep comptime values plain
//! Rust. Everything that may record an op is spanned at the author's tokens, so `#[track_caller]`
//! records the author's `file:line:col` and type errors point at the author's code.

use crate::error::{msg, Errors};
use crate::paths::private;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use std::collections::HashMap;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, BinOp, Block, Expr, ExprBinary, ExprBlock, ExprForLoop, ExprIf, ExprWhile, Ident, Item, Local, Pat,
    PatIdent, RangeLimits, Stmt, Type,
};

/// Whether the value of an expression is used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ctx {
    /// Statement position: the value (if any) is discarded; `if` uses the statement form.
    Stmt,
    /// The value is used (`let` initialiser, argument, operand, value-`if` branch, …).
    Value,
}

/// Rewrites one function body. Tracks, per lexical scope, which names are `let mut` kernel
/// variables (assignments to them go through `AssignTo`).
pub struct Rewriter {
    pub errors: Errors,
    /// Innermost scope last; `true` = a tracked `let mut`, `false` = a binding that shadows one.
    scopes: Vec<HashMap<String, bool>>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    pub fn new() -> Self {
        Rewriter { errors: Errors::default(), scopes: vec![HashMap::new()] }
    }

    // ------------------------------------------------------------------------------------------
    // scopes
    // ------------------------------------------------------------------------------------------

    pub fn push_scope(&mut self) {
        self.scopes.push(HashMap::new());
    }

    pub fn pop_scope(&mut self) {
        if self.scopes.len() > 1 {
            self.scopes.pop();
        }
    }

    pub fn declare(&mut self, name: &Ident, tracked: bool) {
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), tracked);
        }
    }

    /// Whether `name` currently refers to a tracked `let mut` variable.
    pub fn is_tracked(&self, name: &Ident) -> bool {
        let name = name.to_string();
        self.scopes.iter().rev().find_map(|s| s.get(&name).copied()).unwrap_or(false)
    }

    /// Declares every name a pattern binds (as untracked: they shadow tracked variables).
    pub fn bind_pat(&mut self, pat: &Pat) {
        let mut names = Vec::new();
        pat_idents(pat, &mut names);
        for n in names {
            self.check_reserved(&n);
            self.declare(&n, false);
        }
    }

    fn check_reserved(&mut self, ident: &Ident) {
        if ident.to_string().starts_with("__rpa_") {
            self.errors.at(ident, msg::RESERVED);
        }
    }

    // ------------------------------------------------------------------------------------------
    // blocks and statements
    // ------------------------------------------------------------------------------------------

    /// Rewrites a block (in a new scope); its tail expression is in context `ctx`.
    pub fn block(&mut self, b: Block, ctx: Ctx) -> Block {
        self.push_scope();
        let stmts = self.stmts(b.stmts, ctx);
        self.pop_scope();
        Block { brace_token: b.brace_token, stmts }
    }

    /// Rewrites statements in the current scope; the tail expression is in context `ctx`.
    pub fn stmts(&mut self, stmts: Vec<Stmt>, ctx: Ctx) -> Vec<Stmt> {
        let n = stmts.len();
        let mut out = Vec::with_capacity(n);
        for (i, s) in stmts.into_iter().enumerate() {
            self.stmt(s, i + 1 == n, ctx, &mut out);
        }
        out
    }

    fn stmt(&mut self, s: Stmt, tail: bool, ctx: Ctx, out: &mut Vec<Stmt>) {
        match s {
            Stmt::Local(l) => self.local(l, out),
            Stmt::Item(Item::Fn(f)) => {
                let (fn_token, ident) = (&f.sig.fn_token, &f.sig.ident);
                self.errors.at(quote!(#fn_token #ident), msg::NESTED_FN);
                out.push(Stmt::Item(Item::Fn(f)));
            }
            Stmt::Item(item) => out.push(Stmt::Item(item)),
            Stmt::Macro(m) => out.push(Stmt::Macro(m)),
            Stmt::Expr(e, semi) => {
                let was_block = matches!(e, Expr::Block(_));
                let c = if tail && semi.is_none() { ctx } else { Ctx::Stmt };
                let e = self.expr_full(e, c, semi.is_some());
                // A construct rewritten into a block, in statement position, ends in `;` (so lints
                // that read the source, like `semicolon_if_nothing_returned`, see a statement).
                let semi = if !was_block && c == Ctx::Stmt && matches!(e, Expr::Block(_)) {
                    Some(semi.unwrap_or_default())
                } else {
                    semi
                };
                out.push(Stmt::Expr(e, semi));
            }
        }
    }

    fn local(&mut self, l: Local, out: &mut Vec<Stmt>) {
        self.check_no_unroll(&l.attrs);
        if let Some(init) = &l.init {
            if let Some((else_token, _)) = &init.diverge {
                self.errors.at(else_token, msg::LET_ELSE);
            }
        }
        let (pat, ty) = match &l.pat {
            Pat::Type(pt) => ((*pt.pat).clone(), Some((*pt.ty).clone())),
            p => (p.clone(), None),
        };
        if let Some(ty) = &ty {
            self.check_dyn(ty);
        }
        let mut l = l;
        if let (Some(ty), Some(init)) = (&ty, &mut l.init) {
            if names_scalar(ty) && is_literal(&init.expr) {
                // `let n: Scalar = 0;`: the literal becomes a constant of the annotated type.
                let (sp, lit) = (init.expr.span(), &init.expr);
                let p = private(sp);
                *init.expr = reparse(quote_spanned!(sp=> <#ty as #p::FromLiteral<_>>::from_literal(#lit)));
            }
        }
        match pat {
            Pat::Ident(PatIdent { by_ref: None, mutability: Some(_), ident, subpat: None, .. }) => {
                self.check_reserved(&ident);
                let Some(init) = l.init else {
                    self.errors.at(&l, msg::LET_MUT);
                    self.declare(&ident, false);
                    out.push(Stmt::Local(l));
                    return;
                };
                let obviously_plain = is_obviously_plain(&init.expr, false);
                let e = self.expr(*init.expr, Ctx::Value);
                self.declare(&ident, true);
                let ts = mut_decl(&l.attrs, ident.span(), &ident, ty.as_ref(), e.to_token_stream(), obviously_plain);
                out.extend(parse_stmts(ts));
            }
            Pat::Ident(PatIdent { by_ref: None, mutability: None, ident, subpat: None, .. }) => {
                self.check_reserved(&ident);
                let Some(mut init) = l.init else {
                    self.declare(&ident, false);
                    out.push(Stmt::Local(l));
                    return;
                };
                // Only a `let mut` variable's handle needs a snapshot, and only an expression that
                // names one can produce it; other initialisers are left alone (so their types may
                // be inferred from later uses, as in plain Rust).
                let plain = is_obviously_plain(&init.expr, true) || !self.mentions_tracked(&init.expr);
                let e = self.expr(*init.expr, Ctx::Value);
                let mut attrs = l.attrs.clone();
                let e = if plain || init.diverge.is_some() {
                    e
                } else {
                    attrs.extend(outer_attrs(quote_spanned!(l.let_token.span=> #[allow(clippy::needless_borrow)])));
                    snapshot(l.let_token.span, ty.as_ref(), e)
                };
                init.expr = Box::new(e);
                self.declare(&ident, false);
                out.push(Stmt::Local(Local { attrs, init: Some(init), ..l }));
            }
            other => {
                if let Some(m) = mut_binding(&other) {
                    self.errors.at(m, msg::LET_MUT);
                }
                let mut l = l;
                if let Some(init) = &mut l.init {
                    let e = std::mem::replace(&mut *init.expr, Expr::Verbatim(TokenStream::new()));
                    *init.expr = self.expr(e, Ctx::Value);
                    if let Some((_, d)) = &mut init.diverge {
                        let d2 = std::mem::replace(&mut **d, Expr::Verbatim(TokenStream::new()));
                        **d = self.expr(d2, Ctx::Stmt);
                    }
                }
                self.bind_pat(&other);
                out.push(Stmt::Local(l));
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // expressions
    // ------------------------------------------------------------------------------------------

    /// A closure's body is kernel code, emitted where the closure is called (as a `#[tpu_fn]`'s):
    /// `emit_pipeline`'s body and index maps, or a local helper.
    fn closure(&mut self, mut c: syn::ExprClosure) -> Expr {
        if let Some(a) = &c.asyncness {
            self.errors.at(a, msg::ASYNC);
        }
        self.push_scope();
        for p in &c.inputs {
            self.bind_pat(p);
        }
        *c.body = self.expr(take(&mut c.body), Ctx::Value);
        self.pop_scope();
        Expr::Closure(c)
    }

    /// Rewrites an expression whose value is used (`Ctx::Value`) or discarded (`Ctx::Stmt`).
    pub fn expr(&mut self, e: Expr, ctx: Ctx) -> Expr {
        self.expr_full(e, ctx, false)
    }

    /// `discard`: the expression is a statement ending in `;` (its value is thrown away).
    fn expr_full(&mut self, e: Expr, ctx: Ctx, discard: bool) -> Expr {
        use Ctx::Value;
        match e {
            Expr::If(i) => self.if_expr(i, ctx, discard),
            Expr::ForLoop(f) => self.for_expr(f),
            Expr::While(w) => self.while_expr(w),
            Expr::Loop(mut l) => {
                self.check_no_unroll(&l.attrs);
                if let Some(label) = &l.label {
                    self.errors.at(&label.name, msg::LABELED_LOOP);
                }
                self.errors.at(l.loop_token, msg::LOOP);
                l.body = self.block(l.body, Ctx::Stmt);
                Expr::Loop(l)
            }
            Expr::Closure(c) => self.closure(c),
            Expr::Try(mut t) => {
                self.errors.at(t.question_token, msg::TRY);
                *t.expr = self.expr(take(&mut t.expr), Value);
                Expr::Try(t)
            }
            Expr::Return(r) => {
                self.errors.at(&r, msg::RETURN);
                if let Some(e) = r.expr.clone() {
                    self.expr(*e, Value);
                }
                Expr::Return(r)
            }
            Expr::Break(b) => {
                self.errors.at(&b, msg::BREAK);
                Expr::Break(b)
            }
            Expr::Continue(c) => {
                self.errors.at(&c, msg::CONTINUE);
                Expr::Continue(c)
            }
            Expr::Async(a) => {
                let (t, m) = (&a.async_token, &a.capture);
                self.errors.at(quote!(#t #m), msg::ASYNC);
                Expr::Async(a)
            }
            Expr::Await(a) => {
                let (d, t) = (&a.dot_token, &a.await_token);
                self.errors.at(quote!(#d #t), msg::AWAIT);
                Expr::Await(a)
            }
            Expr::Unsafe(mut u) => {
                self.errors.at(u.unsafe_token, msg::UNSAFE);
                u.block = self.block(u.block, ctx);
                Expr::Unsafe(u)
            }
            Expr::Yield(y) => {
                self.errors.at(y.yield_token, msg::YIELD);
                Expr::Yield(y)
            }
            Expr::TryBlock(t) => {
                self.errors.at(t.try_token, msg::TRY_BLOCK);
                Expr::TryBlock(t)
            }
            Expr::Block(mut b) => {
                self.check_no_unroll(&b.attrs);
                if let Some(label) = &b.label {
                    self.errors.at(&label.name, msg::LABELED_BLOCK);
                }
                b.block = self.block(b.block, ctx);
                Expr::Block(b)
            }
            Expr::Assign(a) => self.assign(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Match(mut m) => {
                self.check_no_unroll(&m.attrs);
                *m.expr = self.expr(take(&mut m.expr), Value);
                let n = m.arms.len();
                for (i, arm) in m.arms.iter_mut().enumerate() {
                    self.push_scope();
                    self.bind_pat(&arm.pat);
                    if let Some((_, g)) = &mut arm.guard {
                        **g = self.expr(take(g), Value);
                    }
                    let body = self.expr_full(take(&mut arm.body), ctx, discard);
                    *arm.body = body;
                    if arm.comma.is_none() && i + 1 < n {
                        arm.comma = Some(Default::default());
                    }
                    self.pop_scope();
                }
                Expr::Match(m)
            }
            Expr::Const(c) => Expr::Const(c), // an inline `const { .. }` is evaluated by rustc: kept as is
            Expr::Macro(m) => Expr::Macro(m), // macro input is not rewritten
            Expr::Lit(l) => Expr::Lit(l),
            Expr::Path(p) => Expr::Path(p),
            Expr::Verbatim(v) => Expr::Verbatim(v),
            Expr::Infer(i) => Expr::Infer(i),
            Expr::Array(mut a) => {
                self.check_no_unroll(&a.attrs);
                a.elems = a.elems.into_iter().map(|e| self.expr(e, Value)).collect();
                Expr::Array(a)
            }
            Expr::Tuple(mut t) => {
                self.check_no_unroll(&t.attrs);
                t.elems = t.elems.into_iter().map(|e| self.expr(e, Value)).collect();
                Expr::Tuple(t)
            }
            Expr::Call(mut c) => {
                self.check_no_unroll(&c.attrs);
                *c.func = self.expr(take(&mut c.func), Value);
                c.args = c.args.into_iter().map(|e| self.expr(e, Value)).collect();
                Expr::Call(c)
            }
            Expr::MethodCall(mut m) => {
                self.check_no_unroll(&m.attrs);
                if let Some(tf) = &m.turbofish {
                    for arg in &tf.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            self.check_dyn(t);
                        }
                    }
                }
                *m.receiver = self.expr(take(&mut m.receiver), Value);
                m.args = m.args.into_iter().map(|e| self.expr(e, Value)).collect();
                Expr::MethodCall(m)
            }
            Expr::Cast(mut c) => {
                self.check_no_unroll(&c.attrs);
                self.check_dyn(&c.ty);
                *c.expr = self.expr(take(&mut c.expr), Value);
                Expr::Cast(c)
            }
            Expr::Field(mut f) => {
                *f.base = self.expr(take(&mut f.base), Value);
                Expr::Field(f)
            }
            Expr::Index(mut i) => {
                *i.expr = self.expr(take(&mut i.expr), Value);
                *i.index = self.expr(take(&mut i.index), Value);
                Expr::Index(i)
            }
            Expr::Paren(mut p) => {
                *p.expr = self.expr(take(&mut p.expr), Value);
                Expr::Paren(p)
            }
            Expr::Group(mut g) => {
                *g.expr = self.expr_full(take(&mut g.expr), ctx, discard);
                Expr::Group(g)
            }
            Expr::Range(mut r) => {
                if let Some(s) = &mut r.start {
                    **s = self.expr(take(s), Value);
                }
                if let Some(s) = &mut r.end {
                    **s = self.expr(take(s), Value);
                }
                Expr::Range(r)
            }
            Expr::Reference(mut r) => {
                *r.expr = self.expr(take(&mut r.expr), Value);
                Expr::Reference(r)
            }
            Expr::RawAddr(mut r) => {
                *r.expr = self.expr(take(&mut r.expr), Value);
                Expr::RawAddr(r)
            }
            Expr::Repeat(mut r) => {
                // The length is a const context: kept as is.
                *r.expr = self.expr(take(&mut r.expr), Value);
                Expr::Repeat(r)
            }
            Expr::Struct(mut s) => {
                for f in s.fields.iter_mut() {
                    f.expr = self.expr(std::mem::replace(&mut f.expr, Expr::Verbatim(TokenStream::new())), Value);
                }
                if let Some(rest) = &mut s.rest {
                    **rest = self.expr(take(rest), Value);
                }
                Expr::Struct(s)
            }
            Expr::Unary(mut u) => {
                *u.expr = self.expr(take(&mut u.expr), Value);
                Expr::Unary(u)
            }
            Expr::Let(mut l) => {
                *l.expr = self.expr(take(&mut l.expr), Value);
                self.bind_pat(&l.pat);
                Expr::Let(l)
            }
            other => other,
        }
    }

    // ---- if ----------------------------------------------------------------------------------

    fn if_expr(&mut self, i: ExprIf, ctx: Ctx, discard: bool) -> Expr {
        self.check_no_unroll(&i.attrs);
        let ExprIf { attrs, if_token, cond, then_branch, else_branch } = i;

        if contains_let(&cond) {
            // `if let`: comptime pattern matching, kept as plain Rust.
            self.push_scope();
            let cond = self.let_cond(*cond);
            let then_branch = self.block(then_branch, ctx);
            self.pop_scope();
            let else_branch = else_branch.map(|(t, e)| {
                let e = match *e {
                    // `else if`: stays `else if` (or `else { <generated block> }`).
                    Expr::If(i) => {
                        self.push_scope();
                        let e = self.if_expr(i, ctx, discard);
                        self.pop_scope();
                        match e {
                            e @ (Expr::If(_) | Expr::Block(_)) => e,
                            other => block_expr(Block {
                                brace_token: Default::default(),
                                stmts: vec![Stmt::Expr(other, None)],
                            }),
                        }
                    }
                    other => block_expr(self.else_block(other, ctx, discard)),
                };
                (t, Box::new(e))
            });
            return Expr::If(ExprIf { attrs, if_token, cond: Box::new(cond), then_branch, else_branch });
        }

        let sp = if_token.span;
        let p = private(sp);
        let value_form = ctx == Ctx::Value && else_branch.is_some();
        let branch_ctx = if value_form { Ctx::Value } else { Ctx::Stmt };
        let cond = self.expr(*cond, Ctx::Value);
        let mut then_b = self.block(then_branch, branch_ctx);
        let mut else_b = else_branch.map(|(_, e)| self.else_block(*e, branch_ctx, discard));
        if discard && !value_form {
            discard_tail(&mut then_b);
            if let Some(b) = &mut else_b {
                discard_tail(b);
            }
        }
        let begin = quote_spanned!(sp=> #p::If::begin(#cond));
        let ts = if value_form {
            let a = block_arg(&then_b);
            let b = else_b.as_ref().map(block_arg).unwrap_or_default();
            let (a_sp, b_sp) = (tail_span(&then_b, sp), else_b.as_ref().map_or(sp, |b| tail_span(b, sp)));
            let then_value = quote_spanned!(a_sp=> #p::IfBranch::__rpa_then(&mut __rpa_if, #a));
            let else_value = quote_spanned!(b_sp=> #p::IfBranch::__rpa_else(&mut __rpa_if, #b));
            // Both values in one binding first: their types are then known together when the call
            // requires them to agree (a mismatch gets `BranchesAgree`'s message).
            let result = quote_spanned!(b_sp=> let __rpa_ab = (__rpa_a, __rpa_b); #p::IfResult::__rpa_result(__rpa_if, __rpa_ab));
            quote_spanned! {sp=>
                #(#attrs)* {
                    let mut __rpa_if = #begin;
                    let __rpa_a = if __rpa_if.then_branch() {
                        ::core::option::Option::Some(#then_value)
                    } else {
                        ::core::option::Option::None
                    };
                    let __rpa_b = if __rpa_if.else_branch() {
                        ::core::option::Option::Some(#else_value)
                    } else {
                        ::core::option::Option::None
                    };
                    #result
                }
            }
        } else {
            let else_part = match &else_b {
                Some(b) => quote_spanned!(sp=> if __rpa_if.else_branch() #b),
                None => quote_spanned!(sp=> __rpa_if.else_branch();),
            };
            quote_spanned! {sp=>
                #(#attrs)* {
                    let mut __rpa_if = #begin;
                    if __rpa_if.then_branch() #then_b
                    #else_part
                    __rpa_if.end();
                }
            }
        };
        reparse(ts)
    }

    /// The `else` part of an `if` as a block (an `else if` becomes a block holding the `if`).
    fn else_block(&mut self, e: Expr, ctx: Ctx, discard: bool) -> Block {
        match e {
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => self.block(b.block, ctx),
            other => {
                let brace = syn::token::Brace(other.span());
                self.push_scope();
                let e = self.expr_full(other, ctx, discard);
                self.pop_scope();
                Block { brace_token: brace, stmts: vec![Stmt::Expr(e, None)] }
            }
        }
    }

    /// The condition of an `if let` (possibly a `&&` chain): scrutinees are rewritten, patterns bind.
    fn let_cond(&mut self, e: Expr) -> Expr {
        match e {
            Expr::Let(mut l) => {
                *l.expr = self.expr(take(&mut l.expr), Ctx::Value);
                self.bind_pat(&l.pat);
                Expr::Let(l)
            }
            Expr::Binary(mut b) if matches!(b.op, BinOp::And(_)) => {
                *b.left = self.let_cond(take(&mut b.left));
                *b.right = self.let_cond(take(&mut b.right));
                Expr::Binary(b)
            }
            Expr::Paren(mut p) => {
                *p.expr = self.let_cond(take(&mut p.expr));
                Expr::Paren(p)
            }
            other => self.expr(other, Ctx::Value),
        }
    }

    // ---- loops -------------------------------------------------------------------------------

    fn for_expr(&mut self, f: ExprForLoop) -> Expr {
        let (unroll, attrs) = split_unroll(f.attrs);
        if let Some(label) = &f.label {
            self.errors.at(&label.name, msg::LABELED_LOOP);
        }
        if unroll {
            // A Rust loop that runs while building.
            let expr = self.unroll_range(*f.expr);
            self.push_scope();
            self.bind_pat(&f.pat);
            let body = self.block(f.body, Ctx::Stmt);
            self.pop_scope();
            return Expr::ForLoop(ExprForLoop { attrs, label: None, expr: Box::new(expr), body, ..f });
        }

        let sp = f.for_token.span;
        let p = private(sp);
        let range = match peel_parens(*f.expr) {
            Expr::Range(r) if r.start.is_some() && r.end.is_some() => r,
            other => {
                self.errors.at(&other, msg::FOR_RANGE);
                let _ = self.block(f.body, Ctx::Stmt);
                return other;
            }
        };
        let (Some(lo), Some(hi)) = (range.start, range.end) else { return Expr::Verbatim(TokenStream::new()) };
        let lo = self.expr(*lo, Ctx::Value);
        let hi = self.expr(*hi, Ctx::Value);
        let begin = match range.limits {
            RangeLimits::HalfOpen(_) => quote_spanned!(sp=> begin),
            RangeLimits::Closed(_) => quote_spanned!(sp=> begin_inclusive),
        };

        self.push_scope();
        let index = quote_spanned!(sp=> __rpa_for.index());
        let mut stmts = match &*f.pat {
            Pat::Ident(PatIdent { by_ref: None, mutability: Some(_), ident, subpat: None, attrs, .. }) => {
                self.check_reserved(ident);
                self.declare(ident, true);
                parse_stmts(mut_decl(attrs, sp, ident, None, index, false))
            }
            pat => {
                if let Some(m) = mut_binding(pat) {
                    self.errors.at(m, msg::LET_MUT);
                }
                self.bind_pat(pat);
                parse_stmts(quote_spanned!(sp=> let #pat = #index;))
            }
        };
        let body = self.block(f.body, Ctx::Stmt);
        self.pop_scope();
        stmts.extend(body.stmts);
        let inner = Block { brace_token: body.brace_token, stmts };
        reparse(quote_spanned! {sp=>
            #(#attrs)* {
                let __rpa_for = #p::ForLoop::#begin(#lo, #hi);
                #inner
                __rpa_for.end();
            }
        })
    }

    /// The iterable of an `#[unroll] for`; a range `lo..hi` gets its bounds checked to be comptime.
    fn unroll_range(&mut self, e: Expr) -> Expr {
        let Expr::Range(r) = peel_parens(e.clone()) else { return self.expr(e, Ctx::Value) };
        let (Some(lo), Some(hi)) = (r.start, r.end) else { return self.expr(e, Ctx::Value) };
        let (lo, hi) = (self.expr(*lo, Ctx::Value), self.expr(*hi, Ctx::Value));
        let (sp, limits) = (e.span(), r.limits);
        let p = private(sp);
        reparse(quote_spanned! {sp=> {
            let (__rpa_lo, __rpa_hi) = #p::unroll_bounds(#lo, #hi);
            __rpa_lo #limits __rpa_hi
        }})
    }

    fn while_expr(&mut self, w: ExprWhile) -> Expr {
        let (unroll, attrs) = split_unroll(w.attrs);
        if let Some(label) = &w.label {
            self.errors.at(&label.name, msg::LABELED_LOOP);
        }
        if unroll {
            self.push_scope();
            let cond = if contains_let(&w.cond) {
                self.let_cond(*w.cond)
            } else {
                let sp = w.cond.span();
                let (p, cond) = (private(sp), self.expr(*w.cond, Ctx::Value));
                reparse(quote_spanned!(sp=> #p::unroll_condition(#cond)))
            };
            let body = self.block(w.body, Ctx::Stmt);
            self.pop_scope();
            return Expr::While(ExprWhile { attrs, label: None, cond: Box::new(cond), body, ..w });
        }
        if let Expr::Let(l) = &*w.cond {
            let (t, lt) = (&w.while_token, &l.let_token);
            self.errors.at(quote!(#t #lt), msg::WHILE_LET);
            let _ = self.block(w.body, Ctx::Stmt);
            return Expr::Verbatim(TokenStream::new());
        }
        let sp = w.while_token.span;
        let p = private(sp);
        let cond_span = w.cond.span();
        let cond = self.expr(*w.cond, Ctx::Value);
        let body = self.block(w.body, Ctx::Stmt);
        let set_cond = quote_spanned!(cond_span=> __rpa_while.body(#cond););
        reparse(quote_spanned! {sp=>
            #(#attrs)* {
                let mut __rpa_while = #p::WhileLoop::begin();
                #set_cond
                #body
                __rpa_while.end();
            }
        })
    }

    // ---- assignments and operators -----------------------------------------------------------

    fn assign(&mut self, mut a: syn::ExprAssign) -> Expr {
        self.check_no_unroll(&a.attrs);
        match &*a.left {
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let right = self.expr(take(&mut a.right), Ctx::Value);
                let Some(x) = p.path.get_ident().cloned() else { return Expr::Assign(a) };
                if self.is_tracked(&x) {
                    return assign_tracked(&x, right.into_token_stream());
                }
                *a.right = right;
                Expr::Assign(a)
            }
            Expr::Tuple(_) | Expr::Array(_) | Expr::Struct(_) | Expr::Call(_) | Expr::Infer(_) | Expr::Range(_) => {
                self.errors.at(&a.left, msg::DESTRUCTURING_ASSIGN);
                Expr::Assign(a)
            }
            _ => {
                *a.left = self.expr(take(&mut a.left), Ctx::Value);
                *a.right = self.expr(take(&mut a.right), Ctx::Value);
                Expr::Assign(a)
            }
        }
    }

    fn binary(&mut self, mut b: ExprBinary) -> Expr {
        self.check_no_unroll(&b.attrs);
        let sp = b.span();
        let p = private(sp);
        // `x op= e` on a tracked variable: `x = x op e` through `AssignTo`.
        if let Some(op) = compound_op(&b.op) {
            if let Expr::Path(path) = &*b.left {
                if let Some(x) = path.path.get_ident().filter(|x| path.qself.is_none() && self.is_tracked(x)).cloned() {
                    let right = self.expr(take(&mut b.right), Ctx::Value);
                    let op_span = b.op.span();
                    let op = syn::parse_str::<TokenStream>(op).unwrap_or_default();
                    let op: TokenStream = op
                        .into_iter()
                        .map(|mut t| {
                            t.set_span(op_span);
                            t
                        })
                        .collect();
                    let value = quote!(#x #op #right);
                    return assign_tracked(&x, value);
                }
            }
        }
        if matches!(b.op, BinOp::And(_) | BinOp::Or(_)) && (contains_let(&b.left) || contains_let(&b.right)) {
            return self.let_cond(Expr::Binary(b));
        }
        let left = self.expr(take(&mut b.left), Ctx::Value);
        let right = self.expr(take(&mut b.right), Ctx::Value);
        let call = |f: &str| {
            let f = Ident::new(f, sp);
            reparse(quote_spanned!(sp=> #p::cmp::#f(#left, #right)))
        };
        match b.op {
            BinOp::Lt(_) => call("lt"),
            BinOp::Le(_) => call("le"),
            BinOp::Gt(_) => call("gt"),
            BinOp::Ge(_) => call("ge"),
            BinOp::Eq(_) => call("eq"),
            BinOp::Ne(_) => call("ne"),
            BinOp::And(_) => reparse(quote_spanned!(sp=> #p::logic::and(#left, || #right))),
            BinOp::Or(_) => reparse(quote_spanned!(sp=> #p::logic::or(#left, || #right))),
            _ => {
                *b.left = left;
                *b.right = right;
                Expr::Binary(b)
            }
        }
    }

    /// Whether `e` names a tracked `let mut` variable anywhere.
    fn mentions_tracked(&self, e: &Expr) -> bool {
        struct Find<'a>(&'a Rewriter, bool);
        impl VisitMut for Find<'_> {
            fn visit_expr_path_mut(&mut self, p: &mut syn::ExprPath) {
                if let Some(i) = p.path.get_ident() {
                    self.1 |= p.qself.is_none() && self.0.is_tracked(i);
                }
            }
        }
        let mut f = Find(self, false);
        f.visit_expr_mut(&mut e.clone());
        f.1
    }

    // ---- checks ------------------------------------------------------------------------------

    fn check_no_unroll(&mut self, attrs: &[Attribute]) {
        for a in attrs {
            if a.path().is_ident("unroll") {
                self.errors.at(a, msg::UNROLL_TARGET);
            }
        }
    }

    /// Rejects trait objects in a type written in a kernel body.
    pub fn check_dyn(&mut self, ty: &Type) {
        struct FindDyn<'a>(&'a mut Errors);
        impl VisitMut for FindDyn<'_> {
            fn visit_type_trait_object_mut(&mut self, t: &mut syn::TypeTraitObject) {
                self.0.at(&*t, msg::DYN);
            }
        }
        FindDyn(&mut self.errors).visit_type_mut(&mut ty.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// generated code
// ---------------------------------------------------------------------------------------------

/// `let mut x = <init as an IR variable if runtime>; let __rpa_depth_x = runtime_depth();`
pub fn mut_decl(
    attrs: &[Attribute],
    sp: Span,
    ident: &Ident,
    ty: Option<&Type>,
    init: TokenStream,
    obviously_plain: bool,
) -> TokenStream {
    let p = private(sp);
    let depth = depth_ident(ident);
    let annot = ty.map(|t| quote!(: #t));
    let init = if obviously_plain {
        init
    } else {
        let new = match ty {
            Some(t) => quote_spanned!(sp=> #p::MutInit::<#t>::new),
            None => quote_spanned!(sp=> #p::MutInit::new),
        };
        quote_spanned! {sp=> {
            #[allow(unused_imports)]
            use #p::{RuntimeMut as _, PlainMut as _};
            (&#new(#init)).__rpa_into_mut()
        }}
    };
    let allow =
        ident.to_string().chars().any(|c| c.is_uppercase()).then(|| quote_spanned!(sp=> #[allow(non_snake_case)]));
    quote_spanned! {sp=>
        #(#attrs)*
        #[allow(clippy::needless_borrow)]
        let mut #ident #annot = #init;
        #allow
        let #depth = #p::runtime_depth();
    }
}

fn depth_ident(x: &Ident) -> Ident {
    format_ident!("__rpa_depth_{}", x, span = x.span())
}

/// `let x = e` where `e` might be a `let mut` variable: its current value (not the variable).
fn snapshot(sp: Span, ty: Option<&Type>, e: Expr) -> Expr {
    let p = private(sp);
    let new = match ty {
        Some(t) => quote_spanned!(sp=> #p::Snapshot::<#t>::new),
        None => quote_spanned!(sp=> #p::Snapshot::new),
    };
    reparse(quote_spanned! {sp=> {
        #[allow(unused_imports)]
        use #p::{RuntimeSnapshot as _, PlainSnapshot as _};
        (&#new(#e)).__rpa_snapshot()
    }})
}

/// An assignment to a tracked `let mut` variable.
fn assign_tracked(x: &Ident, value: TokenStream) -> Expr {
    let sp = x.span();
    let p = private(sp);
    let depth = depth_ident(x);
    let name = x.to_string();
    reparse(quote_spanned! {sp=> {
        let __rpa_v = #value;
        {
            #[allow(unused_imports)]
            use #p::{RuntimeAssign as _, PlainAssign as _};
            (&#p::AssignTo::new(&mut #x)).__rpa_assign(__rpa_v, #depth, #name);
        }
    }})
}

fn compound_op(op: &BinOp) -> Option<&'static str> {
    Some(match op {
        BinOp::AddAssign(_) => "+",
        BinOp::SubAssign(_) => "-",
        BinOp::MulAssign(_) => "*",
        BinOp::DivAssign(_) => "/",
        BinOp::RemAssign(_) => "%",
        BinOp::BitAndAssign(_) => "&",
        BinOp::BitOrAssign(_) => "|",
        BinOp::BitXorAssign(_) => "^",
        BinOp::ShlAssign(_) => "<<",
        BinOp::ShrAssign(_) => ">>",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn take(e: &mut Box<Expr>) -> Expr {
    std::mem::replace(&mut **e, Expr::Verbatim(TokenStream::new()))
}

/// Parses generated tokens back into an expression (they always parse; if not, they are kept
/// verbatim rather than panicking).
fn reparse(ts: TokenStream) -> Expr {
    syn::parse2::<Expr>(ts.clone()).unwrap_or(Expr::Verbatim(ts))
}

pub fn parse_stmts(ts: TokenStream) -> Vec<Stmt> {
    Block::parse_within.parse2(ts.clone()).unwrap_or_else(|_| vec![Stmt::Item(Item::Verbatim(ts))])
}

fn outer_attrs(ts: TokenStream) -> Vec<Attribute> {
    Attribute::parse_outer.parse2(ts).unwrap_or_default()
}

fn block_expr(b: Block) -> Expr {
    Expr::Block(ExprBlock { attrs: Vec::new(), label: None, block: b })
}

/// Where a branch's value is written (its tail expression), for diagnostics.
fn tail_span(b: &Block, default: Span) -> Span {
    match b.stmts.last() {
        Some(Stmt::Expr(e, None)) => e.span(),
        _ => default,
    }
}

/// A block as a call argument: `{ e }` with nothing else is passed as `e` (no `unused_braces`).
fn block_arg(b: &Block) -> TokenStream {
    match b.stmts.as_slice() {
        [Stmt::Expr(e, None)] => e.to_token_stream(),
        _ => b.to_token_stream(),
    }
}

/// In a statement-form `if` whose value is discarded, the branches' tail values are discarded too.
fn discard_tail(b: &mut Block) {
    if let Some(Stmt::Expr(e, semi @ None)) = b.stmts.last_mut() {
        if !is_block_like(e) {
            *semi = Some(Default::default());
        }
    }
}

fn is_block_like(e: &Expr) -> bool {
    matches!(
        e,
        Expr::If(_)
            | Expr::Match(_)
            | Expr::Block(_)
            | Expr::ForLoop(_)
            | Expr::While(_)
            | Expr::Loop(_)
            | Expr::Unsafe(_)
            | Expr::Const(_)
            | Expr::TryBlock(_)
    )
}

/// Whether a type is written `Scalar` (or a path ending in it).
fn names_scalar(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Scalar"))
}

/// A number or bool literal, possibly negated.
fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(l.lit, syn::Lit::Int(_) | syn::Lit::Float(_) | syn::Lit::Bool(_)),
        Expr::Unary(u) => matches!(u.op, syn::UnOp::Neg(_)) && is_literal(&u.expr),
        Expr::Paren(p) => is_literal(&p.expr),
        _ => false,
    }
}

fn peel_parens(e: Expr) -> Expr {
    match e {
        Expr::Paren(p) => peel_parens(*p.expr),
        Expr::Group(g) => peel_parens(*g.expr),
        e => e,
    }
}

fn contains_let(e: &Expr) -> bool {
    match e {
        Expr::Let(_) => true,
        Expr::Binary(b) if matches!(b.op, BinOp::And(_)) => contains_let(&b.left) || contains_let(&b.right),
        Expr::Paren(p) => contains_let(&p.expr),
        Expr::Group(g) => contains_let(&g.expr),
        _ => false,
    }
}

/// Initialisers that can never be a `let mut` variable's handle (so need no snapshot), and that
/// may borrow temporaries whose lifetime `let` extends (`let s = &[a, b];`), which a wrapper
/// call would break. With `fresh`, also expressions that always produce a new value.
fn is_obviously_plain(e: &Expr, fresh: bool) -> bool {
    match e {
        Expr::Lit(_)
        | Expr::Reference(_)
        | Expr::Array(_)
        | Expr::Repeat(_)
        | Expr::Tuple(_)
        | Expr::Range(_)
        | Expr::Struct(_)
        | Expr::Cast(_)
        | Expr::Closure(_) => true,
        Expr::Paren(p) => is_obviously_plain(&p.expr, fresh),
        Expr::Binary(_) => fresh,
        Expr::Unary(u) => fresh && !matches!(u.op, syn::UnOp::Deref(_)),
        _ => false,
    }
}

fn split_unroll(attrs: Vec<Attribute>) -> (bool, Vec<Attribute>) {
    let mut unroll = false;
    let rest = attrs
        .into_iter()
        .filter(|a| {
            let u = a.path().is_ident("unroll");
            unroll |= u;
            !u
        })
        .collect();
    (unroll, rest)
}

/// Every identifier a pattern binds.
pub fn pat_idents(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                pat_idents(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| pat_idents(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| pat_idents(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| pat_idents(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| pat_idents(p, out)),
        Pat::Reference(r) => pat_idents(&r.pat, out),
        Pat::Type(t) => pat_idents(&t.pat, out),
        Pat::Paren(p) => pat_idents(&p.pat, out),
        Pat::Or(o) => o.cases.iter().for_each(|p| pat_idents(p, out)),
        _ => {}
    }
}

/// The first `mut` (or `ref mut`) binding inside a pattern, for the error.
fn mut_binding(pat: &Pat) -> Option<TokenStream> {
    match pat {
        Pat::Ident(p) => {
            if p.mutability.is_some() {
                let (r, m, i) = (&p.by_ref, &p.mutability, &p.ident);
                return Some(quote!(#r #m #i));
            }
            p.subpat.as_ref().and_then(|(_, s)| mut_binding(s))
        }
        Pat::Tuple(t) => t.elems.iter().find_map(mut_binding),
        Pat::TupleStruct(t) => t.elems.iter().find_map(mut_binding),
        Pat::Struct(s) => s.fields.iter().find_map(|f| mut_binding(&f.pat)),
        Pat::Slice(s) => s.elems.iter().find_map(mut_binding),
        Pat::Reference(r) => mut_binding(&r.pat),
        Pat::Type(t) => mut_binding(&t.pat),
        Pat::Paren(p) => mut_binding(&p.pat),
        Pat::Or(o) => o.cases.iter().find_map(mut_binding),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn rewrite(b: Block, ctx: Ctx) -> (String, Errors) {
        let mut rw = Rewriter::new();
        let stmts = rw.stmts(b.stmts, ctx);
        (quote!(#(#stmts)*).to_string(), rw.errors)
    }

    fn ok(b: Block, ctx: Ctx) -> String {
        let (s, mut e) = rewrite(b, ctx);
        if let Some(e) = e.take() {
            panic!("unexpected error: {e}");
        }
        s
    }

    fn err(b: Block) -> String {
        let (_, mut e) = rewrite(b, Ctx::Stmt);
        e.take().map(|e| e.to_string()).unwrap_or_default()
    }

    fn value_ifs(s: &str) -> usize {
        s.matches("__rpa_result").count()
    }
    fn stmt_ifs(s: &str) -> usize {
        s.matches("__rpa_if . end ()").count()
    }

    #[test]
    fn statement_if_uses_statement_form() {
        let s = ok(
            parse_quote!({
                if a < b {
                    x.store(t);
                } else {
                    y.store(t);
                }
            }),
            Ctx::Stmt,
        );
        assert_eq!((stmt_ifs(&s), value_ifs(&s)), (1, 0), "{s}");
        assert!(s.contains("cmp :: lt (a , b)"), "{s}");
        // An `if` without `else` still closes its then-branch.
        let s = ok(
            parse_quote!({
                if c {
                    x.store(t);
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("__rpa_if . else_branch () ;"), "{s}");
    }

    #[test]
    fn if_in_let_or_argument_uses_value_form() {
        let s = ok(
            parse_quote!({
                let v = if c { a } else { b };
            }),
            Ctx::Stmt,
        );
        assert_eq!((stmt_ifs(&s), value_ifs(&s)), (0, 1), "{s}");
        let s = ok(
            parse_quote!({
                o.store(if c { a } else { b });
            }),
            Ctx::Stmt,
        );
        assert_eq!(value_ifs(&s), 1, "{s}");
        let s = ok(
            parse_quote!({
                let v = x + if c { a } else { b };
            }),
            Ctx::Stmt,
        );
        assert_eq!(value_ifs(&s), 1, "{s}");
        // `else if` chains nest value forms.
        let s = ok(
            parse_quote!({
                let v = if c {
                    a
                } else if d {
                    b
                } else {
                    e
                };
            }),
            Ctx::Stmt,
        );
        assert_eq!(value_ifs(&s), 2, "{s}");
        // A block's tail inherits the block's context.
        let s = ok(
            parse_quote!({
                let v = {
                    let t = 1;
                    if c {
                        t
                    } else {
                        b
                    }
                };
            }),
            Ctx::Stmt,
        );
        assert_eq!(value_ifs(&s), 1, "{s}");
    }

    #[test]
    fn tail_if_follows_the_context() {
        let b: Block = parse_quote!({
            let t = x.load();
            if c {
                t
            } else {
                t * 2.0
            }
        });
        assert_eq!(value_ifs(&ok(b.clone(), Ctx::Value)), 1);
        assert_eq!(value_ifs(&ok(b, Ctx::Stmt)), 0);
        // Without `else`, an `if` has no value: statement form even in value position.
        let s = ok(
            parse_quote!({
                let u = if c {
                    x.store(t);
                };
            }),
            Ctx::Stmt,
        );
        assert_eq!((stmt_ifs(&s), value_ifs(&s)), (1, 0), "{s}");
    }

    #[test]
    fn if_let_and_match_stay_rust() {
        let s = ok(
            parse_quote!({
                if let Some(n) = opt {
                    if n < 3 {
                        f();
                    }
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.starts_with("if let Some (n) = opt"), "{s}");
        assert_eq!(stmt_ifs(&s), 1, "{s}");
        let s = ok(
            parse_quote!({
                if let Some(n) = a {
                    f();
                } else if let Some(m) = b {
                    g();
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("else if let Some (m) = b"), "{s}");
        let s = ok(
            parse_quote!({
                match mode {
                    0 => a.store(t),
                    _ => {}
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.starts_with("match mode"), "{s}");
    }

    #[test]
    fn let_mut_is_tracked_per_scope() {
        let s = ok(
            parse_quote!({
                let mut x = a;
                x = b;
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("MutInit :: new (a)"), "{s}");
        assert!(s.contains("let __rpa_depth_x = :: rpa_dsl :: __private :: runtime_depth ()"), "{s}");
        assert!(s.contains("AssignTo :: new (& mut x)) . __rpa_assign (__rpa_v , __rpa_depth_x , \"x\")"), "{s}");

        // A shadowing `let` ends the tracking; leaving the inner scope restores it.
        let s = ok(
            parse_quote!({
                let mut x = a;
                {
                    let x = 1;
                    x = 2;
                }
                x = 3;
            }),
            Ctx::Stmt,
        );
        assert_eq!(s.matches("__rpa_assign").count(), 1, "{s}");
        assert!(s.contains("x = 2"), "{s}");

        // A `let mut` inside a block is not visible after it.
        let s = ok(
            parse_quote!({
                {
                    let mut y = a;
                    y = b;
                }
                y = c;
            }),
            Ctx::Stmt,
        );
        assert_eq!(s.matches("__rpa_assign").count(), 1, "{s}");

        // Match-arm and loop bindings shadow too.
        let s = ok(
            parse_quote!({
                let mut x = a;
                match o {
                    Some(x) => {
                        x = 1;
                    }
                    None => {}
                }
            }),
            Ctx::Stmt,
        );
        assert_eq!(s.matches("__rpa_assign").count(), 0, "{s}");
        let s = ok(
            parse_quote!({
                let mut x = a;
                for x in 0..n {
                    x = 1;
                }
                x = 2;
            }),
            Ctx::Stmt,
        );
        assert_eq!(s.matches("__rpa_assign").count(), 1, "{s}");

        // Compound assignment reads the variable.
        let s = ok(
            parse_quote!({
                let mut acc = z;
                acc += t;
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("let __rpa_v = acc + t"), "{s}");
    }

    #[test]
    fn immutable_let_snapshots_only_mutable_variables() {
        let s = ok(
            parse_quote!({
                let mut x = a;
                let y = x;
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("Snapshot :: new (x)"), "{s}");
        let s = ok(
            parse_quote!({
                let mut x = a;
                let y: Scalar = f(x);
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("let y : Scalar = {"), "{s}");
        assert!(s.contains("Snapshot :: < Scalar > :: new (f (x))"), "{s}");
        // Nothing names a `let mut` variable: plain `let`s.
        let s = ok(
            parse_quote!({
                let y = x;
                let n = s.parse().unwrap();
            }),
            Ctx::Stmt,
        );
        assert_eq!(s, "let y = x ; let n = s . parse () . unwrap () ;");
        for b in [
            parse_quote!({
                let mut a = z;
                let s = &[a, b];
            }),
            parse_quote!({
                let mut a = z;
                let s = 3;
            }),
            parse_quote!({
                let mut a = z;
                let s = a + b;
            }),
        ] {
            let s = ok(b, Ctx::Stmt);
            assert!(!s.contains("Snapshot"), "{s}");
        }
    }

    #[test]
    fn annotated_literal_lets_convert_the_literal() {
        let s = ok(
            parse_quote!({
                let mut n: Scalar = 0;
                let f: Scalar = -1.5;
                let k: usize = 3;
                let s: Scalar = x;
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("MutInit :: < Scalar > :: new (< Scalar as :: rpa_dsl :: __private :: FromLiteral < _ > > :: from_literal (0))"), "{s}");
        assert!(
            s.contains(
                "let f : Scalar = < Scalar as :: rpa_dsl :: __private :: FromLiteral < _ > > :: from_literal (- 1.5)"
            ),
            "{s}"
        );
        assert!(s.contains("let k : usize = 3 ;"), "{s}");
        assert!(s.contains("let s : Scalar = x ;"), "{s}");
    }

    #[test]
    fn loops() {
        let s = ok(
            parse_quote!({
                for i in 0..n {
                    o.store(t);
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("ForLoop :: begin (0 , n)"), "{s}");
        assert!(s.contains("let i = __rpa_for . index ()"), "{s}");
        let s = ok(parse_quote!({ for i in a..=b {} }), Ctx::Stmt);
        assert!(s.contains("ForLoop :: begin_inclusive (a , b)"), "{s}");
        let s = ok(
            parse_quote!({
                #[unroll]
                for i in xs.iter() {
                    if c {}
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.starts_with("for i in xs . iter ()"), "{s}");
        // An unrolled range gets its bounds checked to be comptime.
        let s = ok(
            parse_quote!({
                #[unroll]
                for i in 0..n {}
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("unroll_bounds (0 , n)") && s.contains("__rpa_lo .. __rpa_hi"), "{s}");
        let s = ok(
            parse_quote!({
                #[unroll]
                for i in (1..=n) {}
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("unroll_bounds (1 , n)") && s.contains("__rpa_lo ..= __rpa_hi"), "{s}");
        let s = ok(
            parse_quote!({
                while i < n {
                    i = i + 1;
                }
            }),
            Ctx::Stmt,
        );
        assert!(s.contains("WhileLoop :: begin ()"), "{s}");
        assert!(s.contains("__rpa_while . body (:: rpa_dsl :: __private :: cmp :: lt (i , n))"), "{s}");
        let s = ok(
            parse_quote!({
                #[unroll]
                while k < 4 {
                    k += 1;
                }
            }),
            Ctx::Stmt,
        );
        assert!(
            s.starts_with(
                "while :: rpa_dsl :: __private :: unroll_condition (:: rpa_dsl :: __private :: cmp :: lt (k , 4))"
            ),
            "{s}"
        );
    }

    #[test]
    fn logic_ops() {
        let s = ok(
            parse_quote!({
                let c = a < b && d;
            }),
            Ctx::Stmt,
        );
        assert!(s.replace(' ', "").contains("logic::and(::rpa_dsl::__private::cmp::lt(a,b),||d)"), "{s}");
    }

    #[test]
    fn closure_bodies_are_kernel_code() {
        let s = ok(
            parse_quote!({
                let f = |i: Scalar| {
                    let mut t = i;
                    if i < n {
                        t = n;
                    }
                    t
                };
            }),
            Ctx::Stmt,
        );
        assert!(s.replace(' ', "").contains("cmp::lt(i,n)"), "{s}");
        assert!(s.contains("If"), "a runtime `if` in the closure: {s}");
    }

    #[test]
    fn rejected_constructs() {
        assert!(err(parse_quote!({
            let f = |x| {
                if x {
                    return;
                }
            };
        }))
        .contains("early `return`"));
        assert!(err(parse_quote!({
            let v = f()?;
        }))
        .contains("`?`"));
        assert!(err(parse_quote!({
            return;
        }))
        .contains("early `return`"));
        assert!(err(parse_quote!({ loop {} })).contains("`loop`"));
        assert!(err(parse_quote!({ while let Some(x) = y {} })).contains("`while let`"));
        assert!(err(parse_quote!({
            let mut x;
        }))
        .contains("one at a time"));
        assert!(err(parse_quote!({
            let (mut a, b) = t;
        }))
        .contains("one at a time"));
        assert!(err(parse_quote!({ for x in xs {} })).contains("range `a..b`"));
        assert!(err(parse_quote!({ 'a: for i in 0..2 {} })).contains("labels"));
        assert!(err(parse_quote!({
            fn g() {}
        }))
        .contains("`#[tpu_fn]`"));
        assert!(err(parse_quote!({
            let t = x as &dyn Foo;
        }))
        .contains("trait objects"));
        assert!(err(parse_quote!({
            (a, b) = t;
        }))
        .contains("destructuring"));
        assert!(err(parse_quote!({
            #[unroll]
            let x = 1;
        }))
        .contains("`#[unroll]`"));
        // Every error is reported, not just the first.
        let mut rw = Rewriter::new();
        let _ = rw.stmts(parse_quote!(loop { break; } return;), Ctx::Stmt);
        let e = rw.errors.take().expect("errors");
        assert_eq!(e.into_iter().count(), 3);
    }
}

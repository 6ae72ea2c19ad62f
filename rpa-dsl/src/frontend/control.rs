//! Structured control flow and mutable locals, as called by the code `#[tpu_kernel]` generates.
//!
//! `if` on a comptime `bool` is plain Rust (the other branch is never built); on a bool `Scalar` it
//! records both branches into an IR `if`. `for i in a..b` is always a runtime loop (`#[unroll]` keeps
//! a Rust loop). `let mut x` of a runtime value becomes an IR variable, so a value that changes in a
//! loop or branch is carried correctly; a comptime variable assigned inside runtime control flow is
//! an error, because the assignment would happen once, while building.

use super::builder::with;
use super::refs::IntoIndex;
use super::values::{FromValue, Operand, Scalar, Tile};
use crate::ir::*;
use crate::DType;
use std::cell::Cell;
use std::marker::PhantomData;

/// The condition of an `if`/`while`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the condition of an `if` or `while` in a kernel",
    label = "expected a comptime `bool` or a bool `Scalar`",
    note = "compare values to get a condition, e.g. `x > 0`; tiles select elementwise with `select(mask, a, b)`"
)]
pub trait Condition: Copy {
    #[doc(hidden)]
    fn condition(self, loc: Loc) -> CondValue;
}

#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum CondValue {
    Comptime(bool),
    Runtime(ValueId),
}

impl Condition for bool {
    fn condition(self, _: Loc) -> CondValue {
        CondValue::Comptime(self)
    }
}

impl Condition for Scalar {
    fn condition(self, loc: Loc) -> CondValue {
        CondValue::Runtime(self.0.read(loc))
    }
}

/// An `if`/`else` being built. `C` is the condition's type: `If<bool>` is resolved while building,
/// `If<Scalar>` becomes an IR `if`.
#[doc(hidden)]
pub struct If<C> {
    cond: CondValue,
    loc: Loc,
    then_body: Option<Block>,
    result: Option<VarId>,
    _c: PhantomData<C>,
}

impl<C: Condition> If<C> {
    #[track_caller]
    pub fn begin(cond: C) -> If<C> {
        let loc = Loc::caller();
        let cond = cond.condition(loc);
        if let CondValue::Runtime(_) = cond {
            with(|b| {
                b.runtime_depth += 1;
                b.open_region();
            });
        }
        If { cond, loc, then_body: None, result: None, _c: PhantomData }
    }
}

// No `Condition` bound here: a bad condition is reported once, at `If::begin`.
impl<C> If<C> {
    /// Whether the then-branch is to be built.
    pub fn then_branch(&self) -> bool {
        match self.cond {
            CondValue::Comptime(c) => c,
            CondValue::Runtime(_) => true,
        }
    }

    /// Closes the then-branch; whether the else-branch is to be built.
    pub fn else_branch(&mut self) -> bool {
        match self.cond {
            CondValue::Comptime(c) => !c,
            CondValue::Runtime(_) => {
                self.then_body = Some(with(|b| {
                    let then = b.close_region();
                    b.open_region();
                    then
                }));
                true
            }
        }
    }

    /// Closes the `if`.
    pub fn end(self) {
        if let CondValue::Runtime(cond) = self.cond {
            let then_body = self.then_body.unwrap_or_default();
            with(|b| {
                let else_body = b.close_region();
                b.runtime_depth -= 1;
                b.emit(Op::If { cond, then_body, else_body }, self.loc, Type::Scalar(DType::I32));
            });
        }
    }
}

impl If<bool> {
    pub fn yield_then<T>(&mut self, v: T) -> T {
        v
    }
    pub fn yield_else<T>(&mut self, v: T) -> T {
        v
    }
    pub fn end_value<T>(self, then_value: Option<T>, else_value: Option<T>) -> T {
        then_value.or(else_value).expect("one branch of a comptime `if` is built")
    }
}

/// A value an `if` on a runtime condition can produce: its branches' values are merged.
#[diagnostic::on_unimplemented(
    message = "an `if` on a runtime condition cannot produce `{Self}`",
    label = "the branches of a runtime `if` must produce `Scalar`s, `Tile`s or numbers",
    note = "comptime values (and refs) can only be chosen by an `if` on a comptime `bool`"
)]
pub trait IfValue: Copy {
    type Out: FromValue;
    fn if_value(self, like: Option<DType>, loc: Loc) -> ValueId;
}
impl<T: Operand> IfValue for T
where
    T::Kind: super::values::JoinKind<super::values::ScalarKind>,
{
    type Out = <T::Kind as super::values::JoinKind<super::values::ScalarKind>>::Out;
    fn if_value(self, like: Option<DType>, loc: Loc) -> ValueId {
        self.operand_value(like, loc)
    }
}

impl If<Scalar> {
    fn yield_value(&mut self, v: ValueId) {
        let loc = self.loc;
        with(|b| {
            let t = b.values[v.0 as usize].clone();
            let var = match self.result {
                Some(var) => var,
                None => {
                    let var = b.new_var(t.clone());
                    // Declare the result variable just before the `if` (in the enclosing region).
                    let n = b.blocks.len();
                    b.blocks[n - 2].insts.push(Inst { op: Op::VarDecl { var, init: None }, result: None, loc });
                    self.result = Some(var);
                    var
                }
            };
            if &t != b.var_type(var) && !b.poisoned.contains(&v) {
                let msg = format!("the branches of this `if` produce different types: {} and {t}", b.var_type(var));
                b.error(loc, Some("if"), msg);
                return;
            }
            b.emit(Op::VarSet { var, value: v }, loc, Type::Scalar(DType::I32));
        });
    }

    pub fn yield_then<T: IfValue>(&mut self, v: T) -> T::Out {
        let value = v.if_value(None, self.loc);
        self.yield_value(value);
        T::Out::from_ir(value)
    }

    pub fn yield_else<T: IfValue>(&mut self, v: T) -> T::Out {
        let like = self.result.and_then(|var| with(|b| b.var_type(var).dtype()));
        let value = v.if_value(like, self.loc);
        self.yield_value(value);
        T::Out::from_ir(value)
    }

    pub fn end_value<T: FromValue>(self, _then: Option<T>, _else: Option<T>) -> T {
        let (loc, result) = (self.loc, self.result);
        self.end();
        let var = result.expect("a runtime `if` value has a then-branch");
        with(|b| {
            let t = b.var_type(var).clone();
            T::from_ir(b.emit(Op::VarGet { var }, loc, t).expect("var_get has a result"))
        })
    }
}

// The value form of `if` as `#[tpu_kernel]` generates it. These traits (rather than the inherent
// `yield_*`/`end_value` methods) let the condition's type be inferred after the `if`: with
// `x > 3`, the literal's type, hence `If<C>`'s `C`, is only known at the end of type checking.

/// A branch value of an `if` used as a value.
#[doc(hidden)]
pub trait IfBranch<T> {
    type Out;
    fn __rpa_then(&mut self, v: T) -> Self::Out;
    fn __rpa_else(&mut self, v: T) -> Self::Out;
}
impl<T> IfBranch<T> for If<bool> {
    type Out = T;
    fn __rpa_then(&mut self, v: T) -> T {
        self.yield_then(v)
    }
    fn __rpa_else(&mut self, v: T) -> T {
        self.yield_else(v)
    }
}
impl<T: IfValue> IfBranch<T> for If<Scalar> {
    type Out = T::Out;
    fn __rpa_then(&mut self, v: T) -> T::Out {
        self.yield_then(v)
    }
    fn __rpa_else(&mut self, v: T) -> T::Out {
        self.yield_else(v)
    }
}

/// Closes an `if` used as a value. The result type `R` is a parameter (not `A`), so that a
/// comptime type expected of an `if` on a runtime condition is reported by `RuntimeIfValue`
/// (rather than making the condition's type `bool` by inference).
#[doc(hidden)]
pub trait IfResult<A, B, R> {
    /// The values come as one tuple, so that both branch types are known before they are
    /// required to agree (and a mismatch is reported with the message of `BranchesAgree`).
    fn __rpa_result(self, values: (Option<A>, Option<B>)) -> R;
}
impl<A: BranchesAgree<B>, B> IfResult<A, B, A> for If<bool> {
    fn __rpa_result(self, (then_value, else_value): (Option<A>, Option<B>)) -> A {
        self.end_value(then_value, else_value.map(A::__rpa_same))
    }
}
impl<A: FromValue + BranchesAgree<B> + RuntimeIfValue<R>, B, R> IfResult<A, B, R> for If<Scalar> {
    fn __rpa_result(self, (then_value, else_value): (Option<A>, Option<B>)) -> R {
        self.end_value(then_value, else_value.map(A::__rpa_same)).__rpa_value()
    }
}

/// The value of an `if` on a runtime condition is used where an `R` is expected.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an `if` on a runtime condition produces a runtime `{Self}`, not `{R}`",
    label = "the condition is a runtime `Scalar`: this `if` is decided when the kernel runs",
    note = "to choose between comptime values, the condition must be comptime (a `bool` computed from comptime \
            values); for a runtime value, use `select(cond, a, b)` or a statement `if` that assigns a `let mut` \
            variable holding a `Scalar`"
)]
pub trait RuntimeIfValue<R> {
    fn __rpa_value(self) -> R;
}
impl<T> RuntimeIfValue<T> for T {
    fn __rpa_value(self) -> T {
        self
    }
}

/// The two branches of an `if` used as a value have one type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the branches of this `if` produce different types: `{Self}` and `{B}`",
    label = "this branch produces `{B}`, the other `{Self}`",
    note = "both branches of an `if` used as a value must have one type; an `if` on a runtime condition \
            merges `Scalar`s or `Tile`s, and only an `if` on a comptime `bool` can choose other values"
)]
pub trait BranchesAgree<B> {
    fn __rpa_same(b: B) -> Self;
}
impl<T> BranchesAgree<T> for T {
    fn __rpa_same(b: T) -> T {
        b
    }
}

/// A runtime `for index in lo..hi` loop being built.
#[doc(hidden)]
pub struct ForLoop {
    lo: ValueId,
    hi: ValueId,
    index: ValueId,
    loc: Loc,
}

impl ForLoop {
    #[track_caller]
    pub fn begin(lo: impl IntoIndex, hi: impl IntoIndex) -> ForLoop {
        let loc = Loc::caller();
        let (lo, hi) = (lo.index_value(loc), hi.index_value(loc));
        let index = with(|b| {
            b.runtime_depth += 1;
            b.open_region();
            b.new_value(Type::Scalar(DType::I32))
        });
        ForLoop { lo, hi, index, loc }
    }

    #[track_caller]
    pub fn begin_inclusive(lo: impl IntoIndex, hi: impl IntoIndex) -> ForLoop {
        let loc = Loc::caller();
        let hi: Scalar = Scalar::from_value(hi.index_value(loc)) + 1;
        let lo = Scalar::from_value(lo.index_value(loc));
        Self::begin(lo, hi)
    }

    /// The loop index (an i32 scalar).
    pub fn index(&self) -> Scalar {
        Scalar::from_ir(self.index)
    }

    pub fn end(self) {
        with(|b| {
            let body = b.close_region();
            b.runtime_depth -= 1;
            b.emit(Op::For { lo: self.lo, hi: self.hi, index: self.index, body }, self.loc, Type::Scalar(DType::I32));
        });
    }
}

/// A runtime `while` loop being built: the condition is evaluated in its own region.
#[doc(hidden)]
pub struct WhileLoop {
    cond_body: Option<Block>,
    cond: Option<ValueId>,
    loc: Loc,
}

impl WhileLoop {
    #[track_caller]
    pub fn begin() -> WhileLoop {
        with(|b| {
            b.runtime_depth += 1;
            b.open_region();
        });
        WhileLoop { cond_body: None, cond: None, loc: Loc::caller() }
    }

    /// Closes the condition region and opens the body.
    #[track_caller]
    pub fn body<C: Condition>(&mut self, cond: C) {
        let loc = Loc::caller();
        let cond = match cond.condition(loc) {
            CondValue::Runtime(v) => Some(v),
            CondValue::Comptime(_) => {
                with(|b| {
                    b.error(
                        loc,
                        Some("while"),
                        "a `while` condition must be a runtime bool `Scalar`; \
                         to loop while building, write `#[unroll] while`",
                    )
                });
                None
            }
        };
        self.cond = cond;
        self.cond_body = Some(with(|b| {
            let c = b.close_region();
            b.open_region();
            c
        }));
    }

    pub fn end(self) {
        with(|b| {
            let body = b.close_region();
            b.runtime_depth -= 1;
            if let (Some(cond), Some(cond_body)) = (self.cond, self.cond_body) {
                b.emit(Op::While { cond_body, cond, body }, self.loc, Type::Scalar(DType::I32));
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Mutable locals, assignment and `let` snapshots. The macro calls these through "autoref
// specialisation": the `Runtime*` traits match `Scalar`/`Tile` exactly, every other type falls
// through to the `Plain*` traits, which keep the Rust value.
// ---------------------------------------------------------------------------------------------

/// Wraps the initialiser of `let mut`.
#[doc(hidden)]
pub struct MutInit<T>(pub Cell<Option<T>>);
/// Wraps the target of an assignment to a `let mut` variable.
#[doc(hidden)]
pub struct AssignTo<'a, T>(pub Cell<Option<&'a mut T>>);
/// Wraps the initialiser of an immutable `let`.
#[doc(hidden)]
pub struct Snapshot<T>(pub Cell<Option<T>>);

impl<T> MutInit<T> {
    pub fn new(v: T) -> Self {
        MutInit(Cell::new(Some(v)))
    }
}
impl<'a, T> AssignTo<'a, T> {
    pub fn new(v: &'a mut T) -> Self {
        AssignTo(Cell::new(Some(v)))
    }
}
impl<T> Snapshot<T> {
    pub fn new(v: T) -> Self {
        Snapshot(Cell::new(Some(v)))
    }
}

fn declare_var(v: ValueId, loc: Loc) -> VarId {
    with(|b| {
        let t = b.values[v.0 as usize].clone();
        let var = b.new_var(t);
        b.emit(Op::VarDecl { var, init: Some(v) }, loc, Type::Scalar(DType::I32));
        var
    })
}

fn set_var(var: VarId, value: ValueId, loc: Loc) {
    with(|b| {
        b.emit(Op::VarSet { var, value }, loc, Type::Scalar(DType::I32));
    });
}

#[doc(hidden)]
pub trait RuntimeMut {
    type Out;
    fn __rpa_into_mut(&self) -> Self::Out;
}
#[doc(hidden)]
pub trait PlainMut {
    type Out;
    fn __rpa_into_mut(&self) -> Self::Out;
}
#[doc(hidden)]
pub trait RuntimeAssign<R> {
    fn __rpa_assign(&self, value: R, declared_depth: usize, name: &str);
}
#[doc(hidden)]
pub trait PlainAssign<T> {
    fn __rpa_assign(&self, value: T, declared_depth: usize, name: &str);
}
#[doc(hidden)]
pub trait RuntimeSnapshot {
    type Out;
    fn __rpa_snapshot(&self) -> Self::Out;
}
#[doc(hidden)]
pub trait PlainSnapshot {
    type Out;
    fn __rpa_snapshot(&self) -> Self::Out;
}

macro_rules! runtime_mut {
    ($($t:ident),*) => {$(
        impl RuntimeMut for MutInit<$t> {
            type Out = $t;
            #[track_caller]
            fn __rpa_into_mut(&self) -> $t {
                let loc = Loc::caller();
                let v = self.0.take().expect("initialiser").0.read(loc);
                $t(super::values::Handle::Var(declare_var(v, loc)))
            }
        }
        impl<R: Operand> RuntimeAssign<R> for AssignTo<'_, $t> {
            #[track_caller]
            fn __rpa_assign(&self, value: R, _: usize, name: &str) {
                let loc = Loc::caller();
                let target = self.0.take().expect("assignment target");
                match target.0 {
                    super::values::Handle::Var(var) => {
                        let like = with(|b| b.var_type(var).dtype());
                        let v = value.operand_value(like, loc);
                        set_var(var, v, loc);
                    }
                    super::values::Handle::Val(_) => with(|b| {
                        b.error(loc, Some("var_set"), format!("`{name}` is not a mutable kernel variable; declare it with `let mut`"))
                    }),
                }
            }
        }
        impl RuntimeSnapshot for Snapshot<$t> {
            type Out = $t;
            #[track_caller]
            fn __rpa_snapshot(&self) -> $t {
                let v = self.0.take().expect("initialiser");
                match v.0 {
                    super::values::Handle::Var(_) => $t::from_ir(v.0.read(Loc::caller())),
                    super::values::Handle::Val(_) => v,
                }
            }
        }
    )*};
}
runtime_mut!(Scalar, Tile);

impl<T> PlainMut for &MutInit<T> {
    type Out = T;
    fn __rpa_into_mut(&self) -> T {
        self.0.take().expect("initialiser")
    }
}

impl<T> PlainAssign<T> for &AssignTo<'_, T> {
    #[track_caller]
    fn __rpa_assign(&self, value: T, declared_depth: usize, name: &str) {
        let loc = Loc::caller();
        let depth = with(|b| b.runtime_depth);
        if depth > declared_depth {
            with(|b| {
                b.error(
                    loc,
                    None,
                    format!(
                        "`{name}` holds a comptime (plain Rust) value but is assigned inside a runtime `if`/`for`/`while`, \
                         where the assignment would run once while building; make it a runtime value (e.g. `Scalar`) \
                         or move the assignment out of the runtime region"
                    ),
                )
            });
        }
        *self.0.take().expect("assignment target") = value;
    }
}

impl<T> PlainSnapshot for &Snapshot<T> {
    type Out = T;
    fn __rpa_snapshot(&self) -> T {
        self.0.take().expect("initialiser")
    }
}

impl FromValue for ValueId {
    fn from_ir(v: ValueId) -> Self {
        v
    }
}

/// A literal initialising a `let` annotated `Scalar`: `let mut n: Scalar = 0;` makes an i32
/// constant (a float literal an f32, `true` a bool). (Any other type keeps the literal.)
#[doc(hidden)]
pub trait FromLiteral<L> {
    fn from_literal(lit: L) -> Self;
}
impl<T> FromLiteral<T> for T {
    fn from_literal(lit: T) -> T {
        lit
    }
}
macro_rules! scalar_from_literal {
    ($($t:ty),*) => {$(
        impl FromLiteral<$t> for Scalar {
            #[track_caller]
            fn from_literal(lit: $t) -> Scalar {
                Scalar::from(lit)
            }
        }
    )*};
}
scalar_from_literal!(i32, u32, f32, bool);
impl FromLiteral<f64> for Scalar {
    /// A float literal without a suffix is an f32 constant.
    #[track_caller]
    fn from_literal(lit: f64) -> Scalar {
        Scalar::f32(lit as f32)
    }
}

/// The bounds of an `#[unroll]` range, `lo..hi`: comptime integers of one type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[unroll]` needs comptime integer bounds, but this range is `{Self}..{Hi}`",
    label = "`#[unroll]` runs the loop while building, before a runtime `Scalar` has a value",
    note = "remove `#[unroll]` for a runtime loop (its bounds may be `Scalar`s, its index is a `Scalar`), \
            or compute the bounds from comptime values"
)]
pub trait UnrollBounds<Hi> {
    fn unroll_hi(hi: Hi) -> Self;
}
// One impl per type (not a blanket `impl<T> UnrollBounds<T> for T`, which would make rustc infer
// the bounds equal and report a plain type mismatch instead).
macro_rules! unroll_bounds {
    ($($t:ty),*) => {$(
        impl UnrollBounds<$t> for $t {
            fn unroll_hi(hi: $t) -> $t {
                hi
            }
        }
    )*};
}
unroll_bounds!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, char);

/// Checks the bounds of an `#[unroll]` range (as `#[tpu_kernel]` generates it).
#[doc(hidden)]
pub fn unroll_bounds<Lo: UnrollBounds<Hi>, Hi>(lo: Lo, hi: Hi) -> (Lo, Lo) {
    (lo, Lo::unroll_hi(hi))
}

/// The condition of an `#[unroll] while`: a comptime `bool`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[unroll] while` needs a comptime `bool` condition, but this is `{Self}`",
    label = "`#[unroll]` runs the loop while building, before a runtime `Scalar` has a value",
    note = "remove `#[unroll]` for a runtime `while` loop"
)]
pub trait UnrollCondition {
    fn unroll_condition(self) -> bool;
}
impl UnrollCondition for bool {
    fn unroll_condition(self) -> bool {
        self
    }
}

/// Checks the condition of an `#[unroll] while` (as `#[tpu_kernel]` generates it).
#[doc(hidden)]
pub fn unroll_condition<C: UnrollCondition>(cond: C) -> bool {
    cond.unroll_condition()
}

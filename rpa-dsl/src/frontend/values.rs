//! Runtime value handles (`Scalar`, `Tile`), their operators and elementwise/tile ops.
//!
//! A handle names an IR value, or a mutable local (`let mut`) whose current value is read where
//! the handle is used. Rust literals mixed with handles take the handle's dtype (like JAX's weak
//! types). Every op records the caller's source location through `#[track_caller]`.

use super::builder::with;
use super::refs::IntoIndex;
use crate::ir::*;
use crate::DType;
use std::ops;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handle {
    Val(ValueId),
    Var(VarId),
}

impl Handle {
    pub(crate) fn read(self, loc: Loc) -> ValueId {
        match self {
            Handle::Val(v) => v,
            Handle::Var(var) => with(|b| {
                let t = b.vars[var.0 as usize].clone();
                b.emit(Op::VarGet { var }, loc, t).expect("var_get has a result")
            }),
        }
    }
    pub(crate) fn ty(self) -> Type {
        with(|b| match self {
            Handle::Val(v) => b.values[v.0 as usize].clone(),
            Handle::Var(v) => b.vars[v.0 as usize].clone(),
        })
    }
}

/// A runtime scalar (in a scalar register): loop indices, SMEM reads, scalar arithmetic.
///
/// (Not `PartialEq`: `==` in a kernel compares at run time and yields a bool `Scalar`.)
#[derive(Clone, Copy, Debug)]
pub struct Scalar(pub(crate) Handle);

/// A runtime vector value (a tile in vector registers): loads, elementwise math, matmuls.
#[derive(Clone, Copy, Debug)]
pub struct Tile(pub(crate) Handle);

impl Scalar {
    pub(crate) fn from_value(v: ValueId) -> Scalar {
        Scalar(Handle::Val(v))
    }
    /// The IR value this scalar names now (reading its variable if it is mutable).
    #[track_caller]
    pub fn value(self) -> ValueId {
        self.0.read(Loc::caller())
    }
    pub fn dtype(self) -> DType {
        self.0.ty().dtype().unwrap_or(DType::I32)
    }
    /// A runtime scalar constant of `dtype` (`value` is truncated for integer dtypes). The typed
    /// constructors below say the same without a float: `Scalar::i32(3)`, `Scalar::bool(true)`.
    #[track_caller]
    pub fn constant(dtype: DType, value: f64) -> Scalar {
        Scalar::from_value(constant(dtype, value, Loc::caller()))
    }
    /// An i32 constant.
    #[track_caller]
    pub fn i32(value: i32) -> Scalar {
        Scalar::constant(DType::I32, f64::from(value))
    }
    /// A u32 constant.
    #[track_caller]
    pub fn u32(value: u32) -> Scalar {
        Scalar::constant(DType::U32, f64::from(value))
    }
    /// An f32 constant.
    #[track_caller]
    pub fn f32(value: f32) -> Scalar {
        Scalar::constant(DType::F32, f64::from(value))
    }
    /// A bool constant.
    #[track_caller]
    pub fn bool(value: bool) -> Scalar {
        Scalar::constant(DType::Bool, f64::from(u8::from(value)))
    }
}

/// A constant of the value's type: `let x: Scalar = 3.into()`, or a helper's `Scalar` argument
/// written `f(3.into())`.
macro_rules! scalar_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Scalar {
            #[track_caller]
            fn from(value: $t) -> Scalar {
                Scalar::$t(value)
            }
        }
    )*};
}
scalar_from!(i32, u32, f32, bool);

impl Tile {
    pub(crate) fn from_value(v: ValueId) -> Tile {
        Tile(Handle::Val(v))
    }
    #[track_caller]
    pub fn value(self) -> ValueId {
        self.0.read(Loc::caller())
    }
    pub fn dtype(self) -> DType {
        self.0.ty().dtype().unwrap_or(DType::F32)
    }
    pub fn shape(self) -> Vec<usize> {
        match self.0.ty() {
            Type::Vector { shape, .. } => shape,
            _ => vec![],
        }
    }
}

pub(crate) fn constant(dtype: DType, value: f64, loc: Loc) -> ValueId {
    let lit = if dtype.is_float() { Literal::Float(value) } else { Literal::Int(value as i64) };
    with(|b| b.emit(Op::Const { dtype, value: lit }, loc, Type::Scalar(dtype)).unwrap())
}

/// Emits an op that has a result.
pub(crate) fn emit(op: Op, loc: Loc, fallback: Type) -> ValueId {
    with(|b| b.emit(op, loc, fallback)).expect("op with a result")
}

/// Emits an op without a result.
pub(crate) fn emit0(op: Op, loc: Loc) {
    with(|b| {
        b.emit(op, loc, Type::Scalar(DType::I32));
    });
}

// ---------------------------------------------------------------------------------------------
// Operands: handles and Rust literals
// ---------------------------------------------------------------------------------------------

/// Marker for the kind of an operand, used to compute the result type of mixed operations.
pub struct ScalarKind;
/// Marker for vector operands.
pub struct TileKind;

/// The result type of an operation on two operand kinds: a tile if either is one.
pub trait JoinKind<K> {
    type Out: FromValue;
}
impl JoinKind<ScalarKind> for ScalarKind {
    type Out = Scalar;
}
impl JoinKind<TileKind> for ScalarKind {
    type Out = Tile;
}
impl<K> JoinKind<K> for TileKind {
    type Out = Tile;
}

/// Something that names an IR value of a known kind.
pub trait FromValue {
    fn from_ir(v: ValueId) -> Self;
}
impl FromValue for Scalar {
    fn from_ir(v: ValueId) -> Self {
        Scalar::from_value(v)
    }
}
impl FromValue for Tile {
    fn from_ir(v: ValueId) -> Self {
        Tile::from_value(v)
    }
}

/// A value usable in kernel arithmetic: a `Scalar`, a `Tile`, or a Rust number or bool (which
/// becomes a constant of the other operand's dtype).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in kernel arithmetic",
    label = "expected a `Scalar`, a `Tile`, or a Rust number or bool",
    note = "refs are not values: `load()` a VMEM ref or `get(i)` an SMEM ref first"
)]
pub trait Operand: Copy {
    type Kind;
    /// The dtype of a handle operand; `None` for literals.
    fn handle_dtype(self) -> Option<DType>;
    /// The operand as an IR value; literals become constants of `like` (or their natural dtype).
    fn operand_value(self, like: Option<DType>, loc: Loc) -> ValueId;
}

impl Operand for Scalar {
    type Kind = ScalarKind;
    fn handle_dtype(self) -> Option<DType> {
        Some(self.dtype())
    }
    fn operand_value(self, _: Option<DType>, loc: Loc) -> ValueId {
        self.0.read(loc)
    }
}

impl Operand for Tile {
    type Kind = TileKind;
    fn handle_dtype(self) -> Option<DType> {
        Some(self.dtype())
    }
    fn operand_value(self, _: Option<DType>, loc: Loc) -> ValueId {
        self.0.read(loc)
    }
}

macro_rules! literal_operand {
    ($($t:ty => $natural:expr, $is_float:expr;)*) => {$(
        impl Operand for $t {
            type Kind = ScalarKind;
            fn handle_dtype(self) -> Option<DType> {
                None
            }
            fn operand_value(self, like: Option<DType>, loc: Loc) -> ValueId {
                let dtype = like.unwrap_or($natural);
                #[allow(clippy::unnecessary_cast)]
                let v = self as f64;
                if $is_float && !dtype.is_float() && v.fract() != 0.0 {
                    with(|b| b.error(loc, Some("const"), format!("the literal {v} is not an integer, but the other operand is {dtype}")));
                }
                constant(dtype, v, loc)
            }
        }
    )*};
}

literal_operand! {
    i32 => DType::I32, false;
    i64 => DType::I32, false;
    u32 => DType::I32, false;
    usize => DType::I32, false;
    i16 => DType::I32, false;
    u8 => DType::I32, false;
    f32 => DType::F32, true;
    f64 => DType::F32, true;
}

impl Operand for bool {
    type Kind = ScalarKind;
    fn handle_dtype(self) -> Option<DType> {
        None
    }
    fn operand_value(self, _: Option<DType>, loc: Loc) -> ValueId {
        constant(DType::Bool, self as i64 as f64, loc)
    }
}

/// A scalar operand: a `Scalar` or a Rust number or bool. Operators on a `Scalar` and one of these
/// give a `Scalar` directly (not through [`JoinKind`]), so the result type is known at once (a
/// mix-up then reads "expected `usize`, found `Scalar`").
pub trait ScalarOperand: Operand<Kind = ScalarKind> {}
impl ScalarOperand for Scalar {}
impl ScalarOperand for bool {}
macro_rules! scalar_operand {
    ($($t:ty),*) => {$( impl ScalarOperand for $t {} )*};
}
scalar_operand!(i32, i64, u32, usize, i16, u8, f32, f64);

/// Converts two operands to IR values, literals taking the dtype of the handle operand.
pub(crate) fn operand_pair<A: Operand, B: Operand>(a: A, b: B, loc: Loc) -> (ValueId, ValueId, Type) {
    let like = a.handle_dtype().or(b.handle_dtype());
    let va = a.operand_value(like, loc);
    let vb = b.operand_value(like, loc);
    let fallback = with(|b| {
        let ta = b.values[va.0 as usize].clone();
        if matches!(ta, Type::Vector { .. }) {
            ta
        } else {
            b.values[vb.0 as usize].clone()
        }
    });
    (va, vb, fallback)
}

pub(crate) fn binary<A: Operand, B: Operand, R: FromValue>(op: BinaryOp, a: A, b: B, loc: Loc) -> R {
    let (lhs, rhs, fallback) = operand_pair(a, b, loc);
    R::from_ir(emit(Op::Binary { op, lhs, rhs }, loc, fallback))
}

macro_rules! binary_operator {
    ($($trait:ident $method:ident => $op:ident;)*) => {$(
        impl<R: ScalarOperand> ops::$trait<R> for Scalar {
            type Output = Scalar;
            #[track_caller]
            fn $method(self, rhs: R) -> Scalar {
                binary(BinaryOp::$op, self, rhs, Loc::caller())
            }
        }
        impl ops::$trait<Tile> for Scalar {
            type Output = Tile;
            #[track_caller]
            fn $method(self, rhs: Tile) -> Tile {
                binary(BinaryOp::$op, self, rhs, Loc::caller())
            }
        }
        impl<R: Operand> ops::$trait<R> for Tile {
            type Output = Tile;
            #[track_caller]
            fn $method(self, rhs: R) -> Tile {
                binary(BinaryOp::$op, self, rhs, Loc::caller())
            }
        }
        binary_operator!(@lit $trait $method $op: i32, i64, u32, usize, f32, f64, bool);
    )*};
    (@lit $trait:ident $method:ident $op:ident: $($t:ty),*) => {$(
        impl ops::$trait<Scalar> for $t {
            type Output = Scalar;
            #[track_caller]
            fn $method(self, rhs: Scalar) -> Scalar {
                binary(BinaryOp::$op, self, rhs, Loc::caller())
            }
        }
        impl ops::$trait<Tile> for $t {
            type Output = Tile;
            #[track_caller]
            fn $method(self, rhs: Tile) -> Tile {
                binary(BinaryOp::$op, self, rhs, Loc::caller())
            }
        }
    )*};
}

binary_operator! {
    Add add => Add;
    Sub sub => Sub;
    Mul mul => Mul;
    Div div => Div;
    Rem rem => Rem;
    BitAnd bitand => And;
    BitOr bitor => Or;
    BitXor bitxor => Xor;
    Shl shl => Shl;
    Shr shr => Shr;
}

pub(crate) fn unary<T: Operand + FromValue>(op: UnaryOp, x: T, loc: Loc) -> T {
    let v = x.operand_value(None, loc);
    let fallback = with(|b| b.values[v.0 as usize].clone());
    T::from_ir(emit(Op::Unary { op, x: v }, loc, fallback))
}

impl ops::Neg for Scalar {
    type Output = Scalar;
    #[track_caller]
    fn neg(self) -> Scalar {
        unary(UnaryOp::Neg, self, Loc::caller())
    }
}
impl ops::Neg for Tile {
    type Output = Tile;
    #[track_caller]
    fn neg(self) -> Tile {
        unary(UnaryOp::Neg, self, Loc::caller())
    }
}
impl ops::Not for Scalar {
    type Output = Scalar;
    #[track_caller]
    fn not(self) -> Scalar {
        unary(UnaryOp::Not, self, Loc::caller())
    }
}
impl ops::Not for Tile {
    type Output = Tile;
    #[track_caller]
    fn not(self) -> Tile {
        unary(UnaryOp::Not, self, Loc::caller())
    }
}

/// Elementwise math available on both scalars and tiles.
macro_rules! math_methods {
    ($ty:ident) => {
        impl $ty {
            #[track_caller]
            pub fn exp(self) -> $ty {
                unary(UnaryOp::Exp, self, Loc::caller())
            }
            #[track_caller]
            pub fn log(self) -> $ty {
                unary(UnaryOp::Log, self, Loc::caller())
            }
            #[track_caller]
            pub fn tanh(self) -> $ty {
                unary(UnaryOp::Tanh, self, Loc::caller())
            }
            #[track_caller]
            pub fn sqrt(self) -> $ty {
                unary(UnaryOp::Sqrt, self, Loc::caller())
            }
            #[track_caller]
            pub fn rsqrt(self) -> $ty {
                unary(UnaryOp::Rsqrt, self, Loc::caller())
            }
            #[track_caller]
            pub fn abs(self) -> $ty {
                unary(UnaryOp::Abs, self, Loc::caller())
            }
            #[track_caller]
            pub fn sin(self) -> $ty {
                unary(UnaryOp::Sin, self, Loc::caller())
            }
            #[track_caller]
            pub fn cos(self) -> $ty {
                unary(UnaryOp::Cos, self, Loc::caller())
            }
            /// The error function (`jax.lax.erf`).
            #[track_caller]
            pub fn erf(self) -> $ty {
                unary(UnaryOp::Erf, self, Loc::caller())
            }
            /// `2ˣ`.
            #[track_caller]
            pub fn exp2(self) -> $ty {
                unary(UnaryOp::Exp2, self, Loc::caller())
            }
            /// `ln(1 + x)`, accurate for small `x` (`jnp.log1p`).
            #[track_caller]
            pub fn log1p(self) -> $ty {
                unary(UnaryOp::Log1p, self, Loc::caller())
            }
            /// Rounds toward −∞.
            #[track_caller]
            pub fn floor(self) -> $ty {
                unary(UnaryOp::Floor, self, Loc::caller())
            }
            /// Rounds toward +∞.
            #[track_caller]
            pub fn ceil(self) -> $ty {
                unary(UnaryOp::Ceil, self, Loc::caller())
            }
            /// `1 / (1 + e⁻ˣ)` (`jax.nn.sigmoid`).
            #[track_caller]
            pub fn sigmoid(self) -> $ty {
                unary(UnaryOp::Sigmoid, self, Loc::caller())
            }
            /// `1 / x`, exact.
            #[track_caller]
            pub fn recip(self) -> $ty {
                unary(UnaryOp::Recip { approx: false }, self, Loc::caller())
            }
            /// `1 / x`; the TPU may use its approximate reciprocal unit (`pl.reciprocal(approx=True)`).
            #[track_caller]
            pub fn recip_approx(self) -> $ty {
                unary(UnaryOp::Recip { approx: true }, self, Loc::caller())
            }
            /// Converts the value to `dtype` (rounding to nearest even; float → int truncates).
            #[track_caller]
            pub fn cast(self, dtype: DType) -> $ty {
                let loc = Loc::caller();
                let x = self.0.read(loc);
                let mut t = self.0.ty();
                match &mut t {
                    Type::Scalar(d) | Type::Vector { dtype: d, .. } => *d = dtype,
                    _ => {}
                }
                $ty::from_ir(emit(Op::Cast { x, to: dtype }, loc, t))
            }
            /// Reinterprets the bits as `dtype`. Changing the width packs or unpacks rows of the
            /// second-minor dimension, as TPU sublanes do (e.g. `bf16[16,128]` ↔ `u32[8,128]`).
            #[track_caller]
            pub fn bitcast(self, dtype: DType) -> $ty {
                let loc = Loc::caller();
                let x = self.0.read(loc);
                $ty::from_ir(emit(Op::Bitcast { x, to: dtype }, loc, Type::Scalar(dtype)))
            }
        }
    };
}
math_methods!(Scalar);
math_methods!(Tile);

impl Scalar {
    /// This integer, promised to be a multiple of `n`: see [`multiple_of`].
    #[track_caller]
    pub fn multiple_of(self, n: u32) -> Scalar {
        multiple_of(self, n)
    }

    /// `selfʸ` of floats (`x ** y`); `y` may be a tile.
    #[track_caller]
    pub fn pow<R: Operand>(self, y: R) -> <ScalarKind as JoinKind<R::Kind>>::Out
    where
        ScalarKind: JoinKind<R::Kind>,
    {
        binary(BinaryOp::Pow, self, y, Loc::caller())
    }
}

impl Tile {
    /// `selfʸ` of floats elementwise (`x ** y`); `y` may be a scalar or a Rust number.
    #[track_caller]
    pub fn pow<R: Operand>(self, y: R) -> Tile {
        binary(BinaryOp::Pow, self, y, Loc::caller())
    }
}

/// `x`, promised to be a multiple of `n` (`pl.multiple_of`): an alignment hint that lets Mosaic
/// prove a dynamic offset aligned (e.g. a lane offset to 128), lowered to `tpu.assume_multiple`.
/// Interpret mode and checked PJRT-CPU check the promise: a value that is not a multiple is an
/// error at this line.
#[track_caller]
pub fn multiple_of(x: Scalar, n: u32) -> Scalar {
    let loc = Loc::caller();
    let v = x.0.read(loc);
    let fallback = with(|b| b.values[v.0 as usize].clone());
    Scalar::from_value(emit(Op::MultipleOf { x: v, multiple: n }, loc, fallback))
}

/// `xʸ` of floats (`jnp.power` / `lax.pow`), elementwise with broadcasting.
#[track_caller]
pub fn pow<A: Operand, B: Operand>(x: A, y: B) -> <A::Kind as JoinKind<B::Kind>>::Out
where
    A::Kind: JoinKind<B::Kind>,
{
    binary(BinaryOp::Pow, x, y, Loc::caller())
}

impl Tile {
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Tile {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        let t = Type::Vector { dtype: self.dtype(), shape: shape.to_vec() };
        Tile::from_value(emit(Op::Reshape { x, shape: shape.to_vec() }, loc, t))
    }
    /// Broadcasts to `shape` (numpy rules: dims of extent 1 stretch; leading dims are added).
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Tile {
        broadcast(self, shape)
    }
    /// A static window `[start, start + shape)` of the tile.
    #[track_caller]
    pub fn slice(self, start: &[usize], shape: &[usize]) -> Tile {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        let t = Type::Vector { dtype: self.dtype(), shape: shape.to_vec() };
        Tile::from_value(emit(Op::Slice { x, start: start.to_vec(), shape: shape.to_vec() }, loc, t))
    }
    #[track_caller]
    fn reduce(self, op: ReduceOp, axis: usize) -> Tile {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        let mut shape = self.shape();
        if axis < shape.len() {
            shape[axis] = 1;
        }
        Tile::from_value(emit(Op::Reduce { op, x, axis }, loc, Type::Vector { dtype: self.dtype(), shape }))
    }
    /// Rotates along `axis` by `shift` (≥ 0; a Rust integer or an i32 `Scalar`): element `i` of
    /// the result is element `(i - shift) mod n` (`pltpu.roll`, `jnp.roll`).
    #[track_caller]
    pub fn roll(self, shift: impl IntoIndex, axis: usize) -> Tile {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        let shift = shift.index_value(loc);
        Tile::from_value(emit(Op::Roll { x, shift, axis }, loc, self.0.ty()))
    }
    /// Permutes the dimensions: dimension `d` of the result is dimension `perm[d]` (`jnp.transpose`).
    #[track_caller]
    pub fn transpose(self, perm: &[usize]) -> Tile {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        let shape = self.shape();
        let t = Type::Vector {
            dtype: self.dtype(),
            shape: perm.iter().map(|&d| shape.get(d).copied().unwrap_or(1)).collect(),
        };
        Tile::from_value(emit(Op::Transpose { x, perm: perm.to_vec() }, loc, t))
    }
    /// Swaps the two minor dimensions (`x.T` of a 2-D tile, `x.mT` of a batch of them).
    #[track_caller]
    pub fn t(self) -> Tile {
        let rank = self.shape().len();
        let mut perm: Vec<usize> = (0..rank).collect();
        if rank >= 2 {
            perm.swap(rank - 2, rank - 1);
        }
        self.transpose(&perm)
    }
    /// Sum along `axis`, keeping it with extent 1 (`jnp.sum(x, axis, keepdims=True)`).
    #[track_caller]
    pub fn reduce_sum(self, axis: usize) -> Tile {
        self.reduce(ReduceOp::Sum, axis)
    }
    /// Maximum along `axis`, keeping it with extent 1.
    #[track_caller]
    pub fn reduce_max(self, axis: usize) -> Tile {
        self.reduce(ReduceOp::Max, axis)
    }
    /// Minimum along `axis`, keeping it with extent 1.
    #[track_caller]
    pub fn reduce_min(self, axis: usize) -> Tile {
        self.reduce(ReduceOp::Min, axis)
    }
    #[track_caller]
    fn reduce_all(self, op: ReduceOp) -> Scalar {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        Scalar::from_value(emit(Op::ReduceAll { op, x }, loc, Type::Scalar(self.dtype())))
    }
    /// The sum of every element, as a scalar (`jnp.sum(x)`).
    #[track_caller]
    pub fn sum(self) -> Scalar {
        self.reduce_all(ReduceOp::Sum)
    }
    /// The largest element, as a scalar (`jnp.max(x)`; NaN if any element is NaN).
    #[track_caller]
    pub fn max(self) -> Scalar {
        self.reduce_all(ReduceOp::Max)
    }
    /// The smallest element, as a scalar (`jnp.min(x)`; NaN if any element is NaN).
    #[track_caller]
    pub fn min(self) -> Scalar {
        self.reduce_all(ReduceOp::Min)
    }
    /// The element at `index` (one static index per dimension) as a scalar: Pallas's `x[i, j]` of
    /// a value (`vector.extract`), `x.item(i, j)` in numpy.
    #[track_caller]
    pub fn item(self, index: &[usize]) -> Scalar {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        Scalar::from_value(emit(Op::Extract { x, index: index.to_vec() }, loc, Type::Scalar(self.dtype())))
    }
    #[track_caller]
    fn arg_reduce(self, op: ArgOp, axis: usize) -> Tile {
        let loc = Loc::caller();
        let x = self.0.read(loc);
        let mut shape = self.shape();
        if axis < shape.len() {
            shape[axis] = 1;
        }
        Tile::from_value(emit(Op::ArgReduce { op, x, axis }, loc, Type::Vector { dtype: DType::I32, shape }))
    }
    /// The i32 index of the largest element along `axis`, keeping it with extent 1
    /// (`jnp.argmax(x, axis, keepdims=True)`): the first on ties, the first NaN if any.
    #[track_caller]
    pub fn argmax(self, axis: usize) -> Tile {
        self.arg_reduce(ArgOp::Max, axis)
    }
    /// The i32 index of the smallest element along `axis`, keeping it with extent 1
    /// (`jnp.argmin(x, axis, keepdims=True)`): the first on ties, the first NaN if any.
    #[track_caller]
    pub fn argmin(self, axis: usize) -> Tile {
        self.arg_reduce(ArgOp::Min, axis)
    }
}

/// Rotates `x` along `axis` by `shift` (`pltpu.roll`): see [`Tile::roll`].
#[track_caller]
pub fn roll(x: Tile, shift: impl IntoIndex, axis: usize) -> Tile {
    x.roll(shift, axis)
}

/// Permutes the dimensions of `x` (`jnp.transpose`): see [`Tile::transpose`].
#[track_caller]
pub fn transpose(x: Tile, perm: &[usize]) -> Tile {
    x.transpose(perm)
}

/// Broadcasts a scalar or tile to `shape`.
#[track_caller]
pub fn broadcast<T: Operand>(x: T, shape: &[usize]) -> Tile {
    let loc = Loc::caller();
    let v = x.operand_value(None, loc);
    let dtype = with(|b| b.dtype_of(v)).unwrap_or(DType::F32);
    Tile::from_value(emit(
        Op::Broadcast { x: v, shape: shape.to_vec() },
        loc,
        Type::Vector { dtype, shape: shape.to_vec() },
    ))
}

/// A tile of `shape` and `dtype` filled with `value` (a Rust number, or a runtime scalar of `dtype`).
#[track_caller]
pub fn full<T: Operand>(shape: &[usize], value: T, dtype: DType) -> Tile {
    let loc = Loc::caller();
    if let Some(d) = value.handle_dtype().filter(|&d| d != dtype) {
        let msg =
            format!("`full` needs a scalar of the tile's dtype {dtype}, got {d}: cast it first (`.cast({dtype:?})`)");
        with(|b| b.error(loc, Some("broadcast"), msg));
    }
    let v = value.operand_value(Some(dtype), loc);
    Tile::from_value(emit(
        Op::Broadcast { x: v, shape: shape.to_vec() },
        loc,
        Type::Vector { dtype, shape: shape.to_vec() },
    ))
}

/// A tile of zeros.
#[track_caller]
pub fn zeros(shape: &[usize], dtype: DType) -> Tile {
    full(shape, 0, dtype)
}

/// Indices along dimension `dim` of a tile of `shape` (`lax.broadcasted_iota`).
#[track_caller]
pub fn iota(dtype: DType, shape: &[usize], dim: usize) -> Tile {
    let loc = Loc::caller();
    let t = Type::Vector { dtype, shape: shape.to_vec() };
    Tile::from_value(emit(Op::Iota { dtype, shape: shape.to_vec(), dim }, loc, t))
}

/// This program's index along grid axis `axis`.
#[track_caller]
pub fn program_id(axis: usize) -> Scalar {
    Scalar::from_value(emit(Op::ProgramId { axis }, Loc::caller(), Type::Scalar(DType::I32)))
}

/// Records `message` with each `{}` replaced by the next scalar's value when it runs: interpret
/// mode collects the lines (`Outcome::prints`); the compiled backends drop them.
#[track_caller]
pub fn debug_print(message: &str, args: &[Scalar]) {
    let loc = Loc::caller();
    let args = args.iter().map(|a| a.0.read(loc)).collect();
    emit0(Op::DebugPrint { message: message.to_string(), args }, loc);
}

/// Records `message`, which ends with `{}`, followed by the tile's elements as nested lists
/// (`pl.debug_print("x = {}", x)` on TPU): interpret mode and PJRT-CPU collect the line, the TPU
/// logs the tile (`tpu.log_buffer`).
#[track_caller]
pub fn debug_print_tile(message: &str, tile: Tile) {
    let loc = Loc::caller();
    let args = vec![tile.0.read(loc)];
    emit0(Op::DebugPrint { message: message.to_string(), args }, loc);
}

/// The grid's extent along `axis`.
#[track_caller]
pub fn num_programs(axis: usize) -> Scalar {
    Scalar::from_value(emit(Op::NumPrograms { axis }, Loc::caller(), Type::Scalar(DType::I32)))
}

/// `a @ b` (or `a @ bᵀ`), accumulated in `acc` (mixed input dtypes allowed, e.g. bf16 × fp8);
/// 3-D operands are batches of matrices (`einsum("bmk,bkn->bmn")`).
#[track_caller]
pub fn dot(a: Tile, b: Tile, transpose_rhs: bool, acc: DType) -> Tile {
    dot_general(a, b, false, transpose_rhs, acc)
}

/// `a @ b` with either operand transposed (the minor two dims; `lax.dot_general` contracting
/// `a`'s rows with `transpose_lhs`, `b`'s columns with `transpose_rhs`), accumulated in `acc`;
/// 3-D operands are batches of matrices.
#[track_caller]
pub fn dot_general(a: Tile, b: Tile, transpose_lhs: bool, transpose_rhs: bool, acc: DType) -> Tile {
    let loc = Loc::caller();
    let (lhs, rhs) = (a.0.read(loc), b.0.read(loc));
    let (ls, rs) = (a.shape(), b.shape());
    let shape = if ls.len() >= 2 && ls.len() == rs.len() && ls.len() <= 3 {
        let [(_, m), (_, n)] = matmul_dims(ls.len(), transpose_lhs, transpose_rhs);
        ls[..ls.len() - 2].iter().copied().chain([ls[m], rs[n]]).collect()
    } else {
        vec![1, 1]
    };
    let t = Type::Vector { dtype: acc, shape };
    Tile::from_value(emit(Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc }, loc, t))
}

/// `a @ b` with f32 accumulation (`jnp.dot(a, b, preferred_element_type=f32)`).
#[track_caller]
pub fn matmul(a: Tile, b: Tile) -> Tile {
    dot(a, b, false, DType::F32)
}

/// `a @ bᵀ` with f32 accumulation (`einsum("nd,md->nm")`), the QKᵀ of attention.
#[track_caller]
pub fn matmul_t(a: Tile, b: Tile) -> Tile {
    dot(a, b, true, DType::F32)
}

/// Concatenates tiles along `axis` (for lanes: the last axis).
#[track_caller]
pub fn concat(xs: &[Tile], axis: usize) -> Tile {
    let loc = Loc::caller();
    let vals: Vec<ValueId> = xs.iter().map(|x| x.0.read(loc)).collect();
    let fallback = xs.first().map(|x| x.0.ty()).unwrap_or(Type::Scalar(DType::F32));
    Tile::from_value(emit(Op::Concat { xs: vals, axis }, loc, fallback))
}

/// Integer division rounding up, for comptime integers and runtime scalars alike.
#[track_caller]
pub fn cdiv<A, B>(a: A, b: B) -> <A as CeilDiv<B>>::Out
where
    A: CeilDiv<B>,
{
    a.ceil_div(b, Loc::caller())
}

/// `cdiv` for comptime integers and runtime scalars.
pub trait CeilDiv<B> {
    type Out;
    fn ceil_div(self, b: B, loc: Loc) -> Self::Out;
}
macro_rules! ceil_div_int {
    ($($t:ty),*) => {$(
        impl CeilDiv<$t> for $t {
            type Out = $t;
            // `div_ceil` is not stable for signed integers.
            #[allow(clippy::manual_div_ceil)]
            fn ceil_div(self, b: $t, _: Loc) -> $t {
                (self + b - 1) / b
            }
        }
        impl CeilDiv<$t> for Scalar {
            type Out = Scalar;
            fn ceil_div(self, b: $t, loc: Loc) -> Scalar {
                let num: Scalar = binary(BinaryOp::Add, self, b as i64 - 1, loc);
                binary(BinaryOp::Div, num, b, loc)
            }
        }
    )*};
}
ceil_div_int!(i32, i64, u32, usize);
impl CeilDiv<Scalar> for Scalar {
    type Out = Scalar;
    fn ceil_div(self, b: Scalar, loc: Loc) -> Scalar {
        let bm1: Scalar = binary(BinaryOp::Sub, b, 1, loc);
        let num: Scalar = binary(BinaryOp::Add, self, bm1, loc);
        binary(BinaryOp::Div, num, b, loc)
    }
}

// ---------------------------------------------------------------------------------------------
// max / min / select / comparisons: comptime values stay Rust values, handles build IR
// ---------------------------------------------------------------------------------------------

/// `max`/`min` of two comptime values (plain Rust) or of kernel operands (IR).
#[diagnostic::on_unimplemented(
    message = "cannot take `max`/`min` of `{Self}` and `{Rhs}` in a kernel",
    label = "expected two comptime values of one type, or `Scalar`/`Tile` operands"
)]
pub trait MaxMin<Rhs> {
    type Out;
    fn max_of(self, rhs: Rhs, loc: Loc) -> Self::Out;
    fn min_of(self, rhs: Rhs, loc: Loc) -> Self::Out;
}
impl<T: PartialOrd> MaxMin<T> for T {
    type Out = T;
    fn max_of(self, rhs: T, _: Loc) -> T {
        if rhs > self {
            rhs
        } else {
            self
        }
    }
    fn min_of(self, rhs: T, _: Loc) -> T {
        if rhs < self {
            rhs
        } else {
            self
        }
    }
}
macro_rules! maxmin_handle {
    ($($lhs:ty),*) => {$(
        impl<R: Operand> MaxMin<R> for $lhs
        where
            <$lhs as Operand>::Kind: JoinKind<R::Kind>,
        {
            type Out = <<$lhs as Operand>::Kind as JoinKind<R::Kind>>::Out;
            fn max_of(self, rhs: R, loc: Loc) -> Self::Out {
                binary(BinaryOp::Max, self, rhs, loc)
            }
            fn min_of(self, rhs: R, loc: Loc) -> Self::Out {
                binary(BinaryOp::Min, self, rhs, loc)
            }
        }
    )*};
}
maxmin_handle!(Scalar, Tile);
macro_rules! maxmin_lit {
    ($($t:ty),*) => {$(
        impl MaxMin<Scalar> for $t {
            type Out = Scalar;
            fn max_of(self, rhs: Scalar, loc: Loc) -> Scalar { binary(BinaryOp::Max, self, rhs, loc) }
            fn min_of(self, rhs: Scalar, loc: Loc) -> Scalar { binary(BinaryOp::Min, self, rhs, loc) }
        }
        impl MaxMin<Tile> for $t {
            type Out = Tile;
            fn max_of(self, rhs: Tile, loc: Loc) -> Tile { binary(BinaryOp::Max, self, rhs, loc) }
            fn min_of(self, rhs: Tile, loc: Loc) -> Tile { binary(BinaryOp::Min, self, rhs, loc) }
        }
    )*};
}
maxmin_lit!(i32, i64, u32, usize, f32, f64);

/// The larger of two values: comptime values stay Rust values, kernel operands build IR.
#[track_caller]
pub fn max<A: MaxMin<B>, B>(a: A, b: B) -> A::Out {
    a.max_of(b, Loc::caller())
}

/// The smaller of two values: comptime values stay Rust values, kernel operands build IR.
#[track_caller]
pub fn min<A: MaxMin<B>, B>(a: A, b: B) -> A::Out {
    a.min_of(b, Loc::caller())
}

/// The condition of a `select`: a comptime `bool` picks one operand while building; a bool
/// `Scalar` or `Tile` selects at run time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a `select` condition",
    label = "expected a comptime `bool`, or a bool `Scalar` or `Tile`"
)]
pub trait SelectCond<A, B> {
    type Out;
    fn select(self, a: A, b: B, loc: Loc) -> Self::Out;
}
impl<T> SelectCond<T, T> for bool {
    type Out = T;
    fn select(self, a: T, b: T, _: Loc) -> T {
        if self {
            a
        } else {
            b
        }
    }
}
fn select_ir<C: Operand, A: Operand, B: Operand, R: FromValue>(c: C, a: A, b: B, loc: Loc) -> R {
    let cond = c.operand_value(Some(DType::Bool), loc);
    let (on_true, on_false, fallback) = operand_pair(a, b, loc);
    R::from_ir(emit(Op::Select { cond, on_true, on_false }, loc, fallback))
}
impl<A: Operand, B: Operand> SelectCond<A, B> for Scalar
where
    A::Kind: JoinKind<B::Kind>,
{
    type Out = <A::Kind as JoinKind<B::Kind>>::Out;
    fn select(self, a: A, b: B, loc: Loc) -> Self::Out {
        select_ir(self, a, b, loc)
    }
}
impl<A: Operand, B: Operand> SelectCond<A, B> for Tile {
    type Out = Tile;
    fn select(self, a: A, b: B, loc: Loc) -> Tile {
        select_ir(self, a, b, loc)
    }
}

/// `cond ? a : b` elementwise (`jnp.where` / `lax.select`).
#[track_caller]
pub fn select<C: SelectCond<A, B>, A, B>(cond: C, a: A, b: B) -> C::Out {
    cond.select(a, b, Loc::caller())
}

/// Comparison operators in kernels: `#[tpu_kernel]` rewrites `a < b` to `cmp::lt(a, b)`, which is
/// plain Rust for comptime values and a `compare` op for kernel operands.
pub mod cmp {
    use super::*;

    #[diagnostic::on_unimplemented(
        message = "cannot compare `{Self}` with `{Rhs}` in a kernel",
        label = "expected two comptime values, or `Scalar`/`Tile` operands (with Rust numbers)"
    )]
    pub trait Compare<Rhs> {
        type Out;
        fn compare(self, rhs: Rhs, op: CmpOp, loc: Loc) -> Self::Out;
    }

    impl<T: PartialOrd<U>, U> Compare<U> for T {
        type Out = bool;
        fn compare(self, rhs: U, op: CmpOp, _: Loc) -> bool {
            match op {
                CmpOp::Lt => self < rhs,
                CmpOp::Le => self <= rhs,
                CmpOp::Gt => self > rhs,
                CmpOp::Ge => self >= rhs,
                CmpOp::Eq => self == rhs,
                CmpOp::Ne => self != rhs,
            }
        }
    }

    /// `==`/`!=` (comptime values need only `PartialEq`).
    #[diagnostic::on_unimplemented(
        message = "cannot compare `{Self}` with `{Rhs}` for equality in a kernel",
        label = "expected two comptime values, or `Scalar`/`Tile` operands (with Rust numbers)"
    )]
    pub trait Equal<Rhs> {
        type Out;
        fn equal(self, rhs: Rhs, op: CmpOp, loc: Loc) -> Self::Out;
    }

    impl<T: PartialEq<U>, U> Equal<U> for T {
        type Out = bool;
        fn equal(self, rhs: U, op: CmpOp, _: Loc) -> bool {
            if op == CmpOp::Eq {
                self == rhs
            } else {
                self != rhs
            }
        }
    }

    fn compare_ir<A: Operand, B: Operand, R: FromValue>(a: A, b: B, op: CmpOp, loc: Loc) -> R {
        let (lhs, rhs, mut fallback) = operand_pair(a, b, loc);
        if let Type::Scalar(d) | Type::Vector { dtype: d, .. } = &mut fallback {
            *d = DType::Bool;
        }
        R::from_ir(emit(Op::Compare { op, lhs, rhs }, loc, fallback))
    }

    macro_rules! compare_pairs {
        ($($lhs:ty, $rhs:ty => $out:ty;)*) => {$(
            impl Compare<$rhs> for $lhs {
                type Out = $out;
                fn compare(self, rhs: $rhs, op: CmpOp, loc: Loc) -> $out {
                    compare_ir(self, rhs, op, loc)
                }
            }
            impl Equal<$rhs> for $lhs {
                type Out = $out;
                fn equal(self, rhs: $rhs, op: CmpOp, loc: Loc) -> $out {
                    compare_ir(self, rhs, op, loc)
                }
            }
        )*};
    }
    macro_rules! compare_with_literals {
        ($($t:ty),*) => {$(
            compare_pairs! {
                Scalar, $t => Scalar;
                $t, Scalar => Scalar;
                Tile, $t => Tile;
                $t, Tile => Tile;
            }
        )*};
    }
    compare_pairs! {
        Scalar, Scalar => Scalar;
        Scalar, Tile => Tile;
        Tile, Scalar => Tile;
        Tile, Tile => Tile;
    }
    compare_with_literals!(i32, i64, u32, usize, f32, f64, bool);

    macro_rules! compare_fns {
        ($($name:ident => $op:ident),*) => {$(
            #[track_caller]
            pub fn $name<A: Compare<B>, B>(a: A, b: B) -> A::Out {
                a.compare(b, CmpOp::$op, Loc::caller())
            }
        )*};
    }
    compare_fns!(lt => Lt, le => Le, gt => Gt, ge => Ge);

    #[track_caller]
    pub fn eq<A: Equal<B>, B>(a: A, b: B) -> A::Out {
        a.equal(b, CmpOp::Eq, Loc::caller())
    }

    #[track_caller]
    pub fn ne<A: Equal<B>, B>(a: A, b: B) -> A::Out {
        a.equal(b, CmpOp::Ne, Loc::caller())
    }
}

/// `&&` and `||` in kernels: `#[tpu_kernel]` rewrites `a && b` to `logic::and(a, || b)`. Comptime
/// bools short-circuit; with a runtime operand both sides are evaluated (as on the TPU).
pub mod logic {
    use super::*;

    #[diagnostic::on_unimplemented(
        message = "`{Self}` and `{Rhs}` cannot be combined with `&&`/`||` in a kernel",
        label = "expected comptime `bool`s or bool `Scalar`/`Tile`s"
    )]
    pub trait Logic<Rhs> {
        type Out;
        fn and(self, rhs: impl FnOnce() -> Rhs, loc: Loc) -> Self::Out;
        fn or(self, rhs: impl FnOnce() -> Rhs, loc: Loc) -> Self::Out;
    }
    impl Logic<bool> for bool {
        type Out = bool;
        fn and(self, rhs: impl FnOnce() -> bool, _: Loc) -> bool {
            self && rhs()
        }
        fn or(self, rhs: impl FnOnce() -> bool, _: Loc) -> bool {
            self || rhs()
        }
    }
    macro_rules! logic_ir {
        ($($lhs:ty, $rhs:ty => $out:ty;)*) => {$(
            impl Logic<$rhs> for $lhs {
                type Out = $out;
                fn and(self, rhs: impl FnOnce() -> $rhs, loc: Loc) -> $out {
                    binary(BinaryOp::And, self, rhs(), loc)
                }
                fn or(self, rhs: impl FnOnce() -> $rhs, loc: Loc) -> $out {
                    binary(BinaryOp::Or, self, rhs(), loc)
                }
            }
        )*};
    }
    logic_ir! {
        Scalar, Scalar => Scalar;
        Scalar, bool => Scalar;
        bool, Scalar => Scalar;
        Tile, Tile => Tile;
        Tile, Scalar => Tile;
        Scalar, Tile => Tile;
        Tile, bool => Tile;
    }

    #[track_caller]
    pub fn and<A: Logic<B>, B>(a: A, b: impl FnOnce() -> B) -> A::Out {
        a.and(b, Loc::caller())
    }

    #[track_caller]
    pub fn or<A: Logic<B>, B>(a: A, b: impl FnOnce() -> B) -> A::Out {
        a.or(b, Loc::caller())
    }
}

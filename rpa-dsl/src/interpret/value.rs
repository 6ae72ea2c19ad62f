//! Runtime values of interpret mode and the elementwise arithmetic on them.

use super::memory::View;
use crate::dtype::DType;
use crate::ir::{BinaryOp, CmpOp, UnaryOp};
use std::rc::Rc;

/// Vector data: floats of every width are held as `f32` (exact for bf16/f16/fp8, rounded after
/// every op), integers and bools as `i64` (wrapped to their width after every op).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VecVal {
    pub shape: Vec<usize>,
    pub data: Data,
}

/// A semaphore (array) at run time: indices into the machine's semaphore table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SemView {
    pub base: usize,
    pub shape: Vec<usize>,
    pub name: Rc<str>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Unset,
    I(i64),
    F(f32),
    V(Rc<VecVal>),
    R(Rc<View>),
    S(Rc<SemView>),
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::I(v) => *v,
            Val::F(f) => *f as i64,
            _ => 0,
        }
    }
}

/// Rounds a computed float to the storage dtype (f32 needs nothing).
#[inline]
pub(crate) fn round_f(dtype: DType, v: f32) -> f32 {
    if dtype == DType::F32 {
        v
    } else {
        dtype.round(v as f64) as f32
    }
}

pub(crate) fn round_vec(dtype: DType, v: &mut [f32]) {
    if dtype != DType::F32 {
        for x in v.iter_mut() {
            *x = dtype.round(*x as f64) as f32;
        }
    }
}

pub(crate) fn unary_f(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Recip { .. } => 1.0 / x,
        UnaryOp::Not => x,
    }
}

pub(crate) fn unary_i(op: UnaryOp, dtype: DType, x: i64) -> i64 {
    match op {
        UnaryOp::Neg => dtype.wrap(x.wrapping_neg()),
        UnaryOp::Abs => dtype.wrap(x.wrapping_abs()),
        UnaryOp::Not => {
            if dtype == DType::Bool {
                (x == 0) as i64
            } else {
                dtype.wrap(!x)
            }
        }
        _ => x,
    }
}

#[inline]
pub(crate) fn binary_f(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Rem => a % b,
        // NaN-propagating, as `arith.maximumf`/`minimumf`.
        BinaryOp::Max => {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Min => {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.min(b)
            }
        }
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor | BinaryOp::Shl | BinaryOp::Shr => f32::NAN,
    }
}

/// Integer arithmetic; `Err` for division by zero.
#[inline]
pub(crate) fn binary_i(op: BinaryOp, dtype: DType, a: i64, b: i64) -> Result<i64, &'static str> {
    let bits = dtype.bits() as i64;
    let r = match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div => {
            if b == 0 {
                return Err("integer division by zero");
            }
            a.wrapping_div(b)
        }
        BinaryOp::Rem => {
            if b == 0 {
                return Err("integer remainder by zero");
            }
            a.wrapping_rem(b)
        }
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::And => a & b,
        BinaryOp::Or => a | b,
        BinaryOp::Xor => a ^ b,
        BinaryOp::Shl => {
            if b < 0 || b >= bits {
                0
            } else {
                a << b
            }
        }
        BinaryOp::Shr => {
            if dtype.is_unsigned_int() {
                let u = (a as u64) & ((1u64 << bits) - 1);
                if b < 0 || b >= bits {
                    0
                } else {
                    (u >> b) as i64
                }
            } else if b < 0 || b >= bits {
                if a < 0 {
                    -1
                } else {
                    0
                }
            } else {
                a >> b
            }
        }
    };
    Ok(dtype.wrap(r))
}

#[inline]
pub(crate) fn compare<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// Converts a value between dtypes with the semantics of `astype`: floats round to nearest even,
/// float → int truncates toward zero and saturates (NaN → 0), int → int wraps.
pub(crate) fn cast_scalar(from: DType, to: DType, f: f64, i: i64) -> (f32, i64) {
    if to.is_float() {
        let v = if from.is_float() { f } else { i as f64 };
        (to.round(v) as f32, 0)
    } else if to == DType::Bool {
        let nz = if from.is_float() { f != 0.0 } else { i != 0 };
        (0.0, nz as i64)
    } else if from.is_float() {
        let (lo, hi) = to.finite_range();
        let v = if f.is_nan() { 0.0 } else { f.trunc().clamp(lo, hi) };
        (0.0, v as i64)
    } else {
        (0.0, to.wrap(i))
    }
}

/// Index of `out_idx` (of a broadcast result shape) in an operand of `shape` (right-aligned).
pub(crate) fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let n = out_shape.len();
    let mut strides = vec![0usize; n];
    let mut s = 1usize;
    for d in (0..shape.len()).rev() {
        let od = d + n - shape.len();
        strides[od] = if shape[d] == 1 { 0 } else { s };
        s *= shape[d];
    }
    strides
}

/// Expands `data` of `shape` to `out_shape` (numpy broadcasting); returns the input unchanged
/// if the shapes agree.
pub(crate) fn expand<T: Copy>(data: &[T], shape: &[usize], out_shape: &[usize]) -> Vec<T> {
    let n: usize = out_shape.iter().product();
    if shape == out_shape {
        return data.to_vec();
    }
    if data.len() == 1 {
        return vec![data[0]; n];
    }
    let strides = broadcast_strides(shape, out_shape);
    let rank = out_shape.len();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    let mut pos = 0usize;
    for _ in 0..n {
        out.push(data[pos]);
        let mut d = rank;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            pos += strides[d];
            if idx[d] < out_shape[d] {
                break;
            }
            pos -= strides[d] * out_shape[d];
            idx[d] = 0;
        }
    }
    out
}

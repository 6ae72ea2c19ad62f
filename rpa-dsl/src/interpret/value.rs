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

/// `eˣ` in f32: `x.exp()`, with the underflow (every masked score of an online softmax) answered
/// without libm's slow path: below -104, `eˣ < 2⁻¹⁵⁰` (half the least subnormal) rounds to `+0`.
#[inline]
pub(crate) fn exp_f32(x: f32) -> f32 {
    if x < -104.0 {
        0.0
    } else {
        x.exp()
    }
}

pub(crate) fn unary_f(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => exp_f32(x),
        UnaryOp::Log => x.ln(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Recip { .. } => 1.0 / x,
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Erf => erf(x as f64) as f32,
        UnaryOp::Exp2 => x.exp2(),
        UnaryOp::Log1p => x.ln_1p(),
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + exp_f32(-x)),
        UnaryOp::Not => x,
    }
}

/// The error function in f64 (Rust's `erf` is unstable), accurate to a few f64 ulp, so that its
/// f32 rounding is the correctly rounded `erf` but for rare ties: the series
/// `erf x = 2/√π · e^(-x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))` (all terms positive) below 3, and
/// `erfc`'s continued fraction (Lentz's method) above.
pub(crate) fn erf(x: f64) -> f64 {
    let a = x.abs();
    if a.is_nan() {
        return x;
    }
    let r = if a < 3.0 {
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * a * a / (2.0 * n + 1.0);
            sum += term;
        }
        std::f64::consts::FRAC_2_SQRT_PI * (-a * a).exp() * sum
    } else if a < 6.0 {
        // erfc a = e^(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))).
        let tiny = 1e-300;
        let (mut f, mut c, mut d) = (a, a, 0.0);
        for k in 1..200 {
            let coef = k as f64 / 2.0;
            d = a + coef * d;
            d = if d == 0.0 { tiny } else { d };
            c = a + coef / c;
            c = if c == 0.0 { tiny } else { c };
            d = 1.0 / d;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-a * a).exp() / (f * std::f64::consts::PI.sqrt())
    } else {
        1.0
    };
    r.copysign(x)
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
        BinaryOp::Pow => a.powf(b),
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
        BinaryOp::Pow => unreachable!("type rule: pow takes floats"),
    };
    Ok(dtype.wrap(r))
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

/// Walks the broadcast of `N` operands of `shapes` to `out_shape` (numpy rules) in runs: calls
/// `f(starts, unit, len)` for consecutive runs of `len` output elements, where operand `i` supplies
/// elements `starts[i]..starts[i] + len` if `unit[i]`, else `len` copies of element `starts[i]`.
pub(crate) fn broadcast_runs<const N: usize>(
    shapes: [&[usize]; N],
    out_shape: &[usize],
    mut f: impl FnMut([usize; N], [bool; N], usize),
) {
    let n: usize = out_shape.iter().product();
    if n == 0 {
        return;
    }
    let strides = shapes.map(|s| broadcast_strides(s, out_shape));
    // (extent, operand strides) per dim, unit dims dropped, mergeable neighbours merged.
    let mut dims: Vec<(usize, [usize; N])> = Vec::with_capacity(out_shape.len());
    for (d, &e) in out_shape.iter().enumerate() {
        let st: [usize; N] = std::array::from_fn(|i| strides[i][d]);
        match dims.last_mut() {
            _ if e == 1 => {}
            Some(last) if (0..N).all(|i| last.1[i] == st[i] * e) => *last = (last.0 * e, st),
            _ => dims.push((e, st)),
        }
    }
    // The innermost stride is 1 (operand extent > 1) or 0 (broadcast); see `broadcast_strides`.
    let (len, inner) = dims.pop().unwrap_or((1, [0; N]));
    debug_assert!(inner.iter().all(|&s| s <= 1));
    let unit = inner.map(|s| s == 1);
    let mut idx = vec![0usize; dims.len()];
    let mut pos = [0usize; N];
    for _ in 0..n / len {
        f(pos, unit, len);
        let mut d = dims.len();
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            for (p, s) in pos.iter_mut().zip(dims[d].1) {
                *p += s;
            }
            if idx[d] < dims[d].0 {
                break;
            }
            for (p, s) in pos.iter_mut().zip(dims[d].1) {
                *p -= s * dims[d].0;
            }
            idx[d] = 0;
        }
    }
}

/// Folds `v` of shape `[outer, n, inner]` over its middle axis with `f`, from `init`, in order.
pub(crate) fn reduce_axis<T: Copy>(
    v: &[T],
    (outer, n, inner): (usize, usize, usize),
    init: T,
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    if n == 0 || inner == 0 {
        return vec![init; outer * inner];
    }
    let mut out = Vec::with_capacity(outer * inner);
    if inner == 1 {
        // Each row folded in order; eight rows at a time, so that their chains overlap.
        const ROWS: usize = 8;
        let groups = v.chunks_exact(ROWS * n);
        let rest = groups.remainder();
        for g in groups {
            let mut acc = [init; ROWS];
            for e in 0..n {
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = f(*a, g[r * n + e]);
                }
            }
            out.extend(acc);
        }
        out.extend(rest.chunks_exact(n).map(|row| row.iter().fold(init, |a, &e| f(a, e))));
        return out;
    }
    for block in v.chunks_exact(n * inner) {
        let start = out.len();
        out.extend(std::iter::repeat_n(init, inner));
        for row in block.chunks_exact(inner) {
            for (a, &e) in out[start..].iter_mut().zip(row) {
                *a = f(*a, e);
            }
        }
    }
    out
}

/// Expands `data` of `shape` to `out_shape` (numpy broadcasting).
pub(crate) fn expand<T: Copy>(data: &[T], shape: &[usize], out_shape: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(out_shape.iter().product());
    broadcast_runs([shape], out_shape, |[i], [unit], len| {
        if unit {
            out.extend_from_slice(&data[i..i + len]);
        } else {
            out.extend(std::iter::repeat_n(data[i], len));
        }
    });
    out
}

/// `f` applied elementwise to `a` and `b` broadcast to `out_shape`.
#[inline]
pub(crate) fn zip2<T: Copy, U>(
    (a, ash): (&[T], &[usize]),
    (b, bsh): (&[T], &[usize]),
    out_shape: &[usize],
    f: impl Fn(T, T) -> U,
) -> Vec<U> {
    let mut out = Vec::with_capacity(out_shape.iter().product());
    broadcast_runs([ash, bsh], out_shape, |[i, j], unit, len| match unit {
        [true, true] => out.extend(a[i..i + len].iter().zip(&b[j..j + len]).map(|(&x, &y)| f(x, y))),
        [true, false] => {
            let y = b[j];
            out.extend(a[i..i + len].iter().map(|&x| f(x, y)))
        }
        [false, true] => {
            let x = a[i];
            out.extend(b[j..j + len].iter().map(|&y| f(x, y)))
        }
        [false, false] => {
            let (x, y) = (a[i], b[j]);
            out.extend((0..len).map(|_| f(x, y)))
        }
    });
    out
}

/// A float binary op elementwise over broadcast operands (not yet rounded to the dtype).
pub(crate) fn binary_f_vec(op: BinaryOp, a: (&[f32], &[usize]), b: (&[f32], &[usize]), out: &[usize]) -> Vec<f32> {
    match op {
        BinaryOp::Add => zip2(a, b, out, |x, y| x + y),
        BinaryOp::Sub => zip2(a, b, out, |x, y| x - y),
        BinaryOp::Mul => zip2(a, b, out, |x, y| x * y),
        BinaryOp::Div => zip2(a, b, out, |x, y| x / y),
        _ => zip2(a, b, out, |x, y| binary_f(op, x, y)),
    }
}

/// An integer binary op elementwise over broadcast operands, wrapped to `dtype`; `Err` for a
/// division by zero.
pub(crate) fn binary_i_vec(
    op: BinaryOp,
    dtype: DType,
    a: (&[i64], &[usize]),
    b: (&[i64], &[usize]),
    out: &[usize],
) -> Result<Vec<i64>, &'static str> {
    // With a non-empty result every element of `b` is used: a zero divisor is an error.
    if matches!(op, BinaryOp::Div | BinaryOp::Rem) && out.iter().product::<usize>() > 0 && b.0.contains(&0) {
        binary_i(op, dtype, 1, 0)?;
    }
    let mut v = match op {
        BinaryOp::Add => zip2(a, b, out, i64::wrapping_add),
        BinaryOp::Sub => zip2(a, b, out, i64::wrapping_sub),
        BinaryOp::Mul => zip2(a, b, out, i64::wrapping_mul),
        BinaryOp::Max => zip2(a, b, out, i64::max),
        BinaryOp::Min => zip2(a, b, out, i64::min),
        BinaryOp::And => zip2(a, b, out, |x, y| x & y),
        BinaryOp::Or => zip2(a, b, out, |x, y| x | y),
        BinaryOp::Xor => zip2(a, b, out, |x, y| x ^ y),
        _ => return Ok(zip2(a, b, out, |x, y| binary_i(op, dtype, x, y).unwrap_or(0))),
    };
    wrap_vec(dtype, &mut v);
    Ok(v)
}

/// Wraps integers to `dtype` in place.
pub(crate) fn wrap_vec(dtype: DType, v: &mut [i64]) {
    match dtype {
        DType::I32 => v.iter_mut().for_each(|x| *x = *x as i32 as i64),
        _ => v.iter_mut().for_each(|x| *x = dtype.wrap(*x)),
    }
}

/// A comparison elementwise over broadcast operands, as bools (0/1).
pub(crate) fn compare_vec<T: Copy + PartialOrd>(
    op: CmpOp,
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
    out: &[usize],
) -> Vec<i64> {
    match op {
        CmpOp::Eq => zip2(a, b, out, |x, y| (x == y) as i64),
        CmpOp::Ne => zip2(a, b, out, |x, y| (x != y) as i64),
        CmpOp::Lt => zip2(a, b, out, |x, y| (x < y) as i64),
        CmpOp::Le => zip2(a, b, out, |x, y| (x <= y) as i64),
        CmpOp::Gt => zip2(a, b, out, |x, y| (x > y) as i64),
        CmpOp::Ge => zip2(a, b, out, |x, y| (x >= y) as i64),
    }
}

/// `cond ? a : b` elementwise over broadcast operands.
pub(crate) fn select_vec<T: Copy>(
    (c, csh): (&[i64], &[usize]),
    (a, ash): (&[T], &[usize]),
    (b, bsh): (&[T], &[usize]),
    out_shape: &[usize],
) -> Vec<T> {
    let mut out = Vec::with_capacity(out_shape.iter().product());
    let pick = |c: i64, x: T, y: T| if c != 0 { x } else { y };
    broadcast_runs([csh, ash, bsh], out_shape, |[ci, ai, bi], unit, len| match unit {
        [true, true, true] => {
            let (c, a, b) = (&c[ci..ci + len], &a[ai..ai + len], &b[bi..bi + len]);
            out.extend(c.iter().zip(a).zip(b).map(|((&c, &x), &y)| pick(c, x, y)))
        }
        [true, true, false] => {
            let y = b[bi];
            out.extend(c[ci..ci + len].iter().zip(&a[ai..ai + len]).map(|(&c, &x)| pick(c, x, y)))
        }
        [true, false, true] => {
            let x = a[ai];
            out.extend(c[ci..ci + len].iter().zip(&b[bi..bi + len]).map(|(&c, &y)| pick(c, x, y)))
        }
        [true, false, false] => {
            let (x, y) = (a[ai], b[bi]);
            out.extend(c[ci..ci + len].iter().map(|&c| pick(c, x, y)))
        }
        // A scalar condition picks one operand for the whole run.
        [false, ..] if c[ci] != 0 => out.extend((0..len).map(|j| a[ai + j * usize::from(unit[1])])),
        [false, ..] => out.extend((0..len).map(|j| b[bi + j * usize::from(unit[2])])),
    });
    out
}

//! Type rules — Shape: broadcasts, reshapes, slices, concatenations, rolls, transposes, extracts.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::Broadcast { x, shape }`.
pub(in crate::ir::ops) fn broadcast(env: &dyn TypeEnv, x: ValueId, shape: &[usize]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, from) = elementwise(&ty(&x), "operand")?;
    let from = from.unwrap_or_default();
    if broadcast_shapes(&from, shape).as_deref() != Some(shape) {
        return Err(format!("cannot broadcast shape {from:?} to {shape:?}"));
    }
    Ok(Some(Type::Vector { dtype, shape: shape.to_vec() }))
}

/// The type rule of `Op::Reshape { x, shape }`.
pub(in crate::ir::ops) fn reshape(env: &dyn TypeEnv, x: ValueId, shape: &[usize]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, from) = vector(&ty(&x), "operand")?;
    if from.iter().product::<usize>() != shape.iter().product::<usize>() {
        return Err(format!("cannot reshape {from:?} to {shape:?}: element counts differ"));
    }
    Ok(Some(Type::Vector { dtype, shape: shape.to_vec() }))
}

/// The type rule of `Op::Slice { x, start, shape }`.
pub(in crate::ir::ops) fn slice(env: &dyn TypeEnv, x: ValueId, start: &[usize], shape: &[usize]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, from) = vector(&ty(&x), "operand")?;
    if start.len() != from.len() || shape.len() != from.len() {
        return Err(format!("slice of a rank-{} vector needs {} starts and sizes", from.len(), from.len()));
    }
    for d in 0..from.len() {
        if start[d] + shape[d] > from[d] {
            return Err(format!(
                "slice [{}, {}) of dimension {d} is out of bounds for extent {}",
                start[d],
                start[d] + shape[d],
                from[d]
            ));
        }
    }
    Ok(Some(Type::Vector { dtype, shape: shape.to_vec() }))
}

/// The type rule of `Op::Concat { xs, axis }`.
pub(in crate::ir::ops) fn concat(env: &dyn TypeEnv, xs: &[ValueId], axis: usize) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let first = xs.first().ok_or("concat needs at least one operand")?;
    let (dtype, mut shape) = vector(&ty(first), "operand")?;
    if axis >= shape.len() {
        return Err(format!("concat axis {axis} out of range for rank {}", shape.len()));
    }
    for x in &xs[1..] {
        let (d, s) = vector(&ty(x), "operand")?;
        let mut a = s.clone();
        let mut b = shape.clone();
        a[axis] = 0;
        b[axis] = 0;
        if d != dtype || a != b {
            return Err(format!(
                "concat operands must agree in dtype and in every dimension but {axis}: {dtype}{shape:?} vs {d}{s:?}"
            ));
        }
        shape[axis] += s[axis];
    }
    Ok(Some(Type::Vector { dtype, shape }))
}

/// The type rule of `Op::Roll { x, shift, axis }`.
pub(in crate::ir::ops) fn roll(env: &dyn TypeEnv, x: ValueId, shift: ValueId, axis: usize) -> Rule {
    let (dtype, shape) = vector(env.value_type(x), "operand")?;
    if shape.len() < 2 {
        return Err(format!("roll needs a tile of rank ≥ 2 (TPU vector registers are 2-D), got {shape:?}"));
    }
    if axis >= shape.len() {
        return Err(format!("roll axis {axis} out of range for shape {shape:?}"));
    }
    match env.value_type(shift) {
        Type::Scalar(DType::I32) => Ok(Some(Type::Vector { dtype, shape })),
        t => Err(format!("roll shift must be an i32 scalar, got {t}")),
    }
}

/// The type rule of `Op::Transpose { x, perm }`.
pub(in crate::ir::ops) fn transpose(env: &dyn TypeEnv, x: ValueId, perm: &[usize]) -> Rule {
    let (dtype, shape) = vector(env.value_type(x), "operand")?;
    let mut seen = vec![false; shape.len()];
    let valid =
        perm.len() == shape.len() && perm.iter().all(|&d| d < shape.len() && !std::mem::replace(&mut seen[d], true));
    if !valid {
        return Err(format!(
            "transpose permutation {perm:?} is not a permutation of the {} dimensions of {shape:?}",
            shape.len()
        ));
    }
    Ok(Some(Type::Vector { dtype, shape: perm.iter().map(|&d| shape[d]).collect() }))
}

/// The type rule of `Op::Extract { x, index }`.
pub(in crate::ir::ops) fn extract(env: &dyn TypeEnv, x: ValueId, index: &[usize]) -> Rule {
    let (dtype, shape) = vector(env.value_type(x), "operand")?;
    if index.len() != shape.len() || index.iter().zip(&shape).any(|(i, n)| i >= n) {
        return Err(format!("index {index:?} is not an element of a tile of shape {shape:?}"));
    }
    Ok(Some(Type::Scalar(dtype)))
}

//! Type rules — Reductions.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::Reduce { op, x, axis }`.
pub(in crate::ir::ops) fn reduce(env: &dyn TypeEnv, op: ReduceOp, x: ValueId, axis: usize) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, mut shape) = vector(&ty(&x), "operand")?;
    if axis >= shape.len() {
        return Err(format!("reduction axis {axis} out of range for shape {shape:?}"));
    }
    if dtype == DType::Bool || (op == ReduceOp::Sum && !dtype.is_float() && !dtype.is_int()) {
        return Err(format!("cannot reduce {dtype}"));
    }
    shape[axis] = 1;
    Ok(Some(Type::Vector { dtype, shape }))
}

/// The type rule of `Op::ReduceAll { op, x }`.
pub(in crate::ir::ops) fn reduce_all(env: &dyn TypeEnv, op: ReduceOp, x: ValueId) -> Rule {
    let (dtype, _) = vector(env.value_type(x), "operand")?;
    if dtype == DType::Bool || (op == ReduceOp::Sum && !dtype.is_float() && !dtype.is_int()) {
        return Err(format!("cannot reduce {dtype}"));
    }
    Ok(Some(Type::Scalar(dtype)))
}

/// The type rule of `Op::ArgReduce { x, axis, .. }`.
pub(in crate::ir::ops) fn arg_reduce(env: &dyn TypeEnv, x: ValueId, axis: usize) -> Rule {
    let (dtype, mut shape) = vector(env.value_type(x), "operand")?;
    if axis >= shape.len() {
        return Err(format!("argmax/argmin axis {axis} out of range for shape {shape:?}"));
    }
    if dtype == DType::Bool {
        return Err("argmax/argmin of bools: cast them to an integer first".into());
    }
    shape[axis] = 1;
    Ok(Some(Type::Vector { dtype: DType::I32, shape }))
}

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

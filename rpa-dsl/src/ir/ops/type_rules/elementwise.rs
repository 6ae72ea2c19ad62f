//! Type rules — Elementwise: constants, grid indices, unary and binary ops, compares, selects, casts, iotas.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::Const { dtype, value }`.
pub(in crate::ir::ops) fn const_(dtype: DType, value: &Literal) -> Rule {
    match (dtype.is_float(), value) {
        (true, Literal::Float(_)) | (false, Literal::Int(_)) => {}
        _ => return Err(format!("constant {value:?} does not fit dtype {dtype}")),
    }
    Ok(Some(Type::Scalar(dtype)))
}

/// The type rule of `Op::ProgramId { .. } | Op::NumPrograms { .. }`.
pub(in crate::ir::ops) fn grid_index() -> Rule {
    Ok(Some(Type::Scalar(DType::I32)))
}

/// The type rule of `Op::Unary { op, x }` (`name`: the op's name, for messages).
pub(in crate::ir::ops) fn unary(env: &dyn TypeEnv, name: &str, op: UnaryOp, x: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, shape) = elementwise(&ty(&x), "operand")?;
    match op {
        UnaryOp::Neg | UnaryOp::Abs if dtype == DType::Bool || dtype.is_unsigned_int() => {
            return Err(format!("`{}` needs a float or signed integer operand, got {dtype}", name));
        }
        UnaryOp::Not if dtype.is_float() => {
            return Err(format!("`not` needs a bool or integer operand, got {dtype}"));
        }
        UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Tanh
        | UnaryOp::Sqrt
        | UnaryOp::Rsqrt
        | UnaryOp::Recip { .. }
        | UnaryOp::Sin
        | UnaryOp::Cos
        | UnaryOp::Erf
        | UnaryOp::Exp2
        | UnaryOp::Log1p
        | UnaryOp::Floor
        | UnaryOp::Ceil
        | UnaryOp::Sigmoid
            if !dtype.is_float() =>
        {
            return Err(format!("`{}` needs a float operand, got {dtype}; cast it first", name));
        }
        _ => {}
    }
    Ok(Some(make(dtype, shape)))
}

/// The type rule of `Op::Binary { op, lhs, rhs }` (`name`: the op's name, for messages).
pub(in crate::ir::ops) fn binary(env: &dyn TypeEnv, name: &str, op: BinaryOp, lhs: ValueId, rhs: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, shape) = binary_operands(&ty(&lhs), &ty(&rhs))?;
    match op {
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor if dtype.is_float() => {
            Err(format!("`{}` needs bool or integer operands, got {dtype}", name))
        }
        BinaryOp::Shl | BinaryOp::Shr if !dtype.is_int() => {
            Err(format!("`{}` needs integer operands, got {dtype}", name))
        }
        BinaryOp::Pow if !dtype.is_float() => Err(format!("`pow` needs float operands, got {dtype}; cast them first")),
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem if dtype == DType::Bool => {
            Err(format!("`{}` is not defined on bool", name))
        }
        _ => Ok(Some(make(dtype, shape))),
    }
}

/// The type rule of `Op::Compare { lhs, rhs, .. }`.
pub(in crate::ir::ops) fn compare(env: &dyn TypeEnv, lhs: ValueId, rhs: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (_, shape) = binary_operands(&ty(&lhs), &ty(&rhs))?;
    Ok(Some(make(DType::Bool, shape)))
}

/// The type rule of `Op::Select { cond, on_true, on_false }`.
pub(in crate::ir::ops) fn select(env: &dyn TypeEnv, cond: ValueId, on_true: ValueId, on_false: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, shape) = binary_operands(&ty(&on_true), &ty(&on_false))?;
    let (cdt, cshape) = elementwise(&ty(&cond), "condition")?;
    if cdt != DType::Bool {
        return Err(format!("select condition must be bool, got {cdt}"));
    }
    let shape = match (cshape, shape) {
        (None, s) | (s, None) => s,
        (Some(c), Some(s)) => Some(
            broadcast_shapes(&c, &s)
                .ok_or_else(|| format!("select condition shape {c:?} does not broadcast to {s:?}"))?,
        ),
    };
    Ok(Some(make(dtype, shape)))
}

/// The type rule of `Op::Cast { x, to }`.
pub(in crate::ir::ops) fn cast(env: &dyn TypeEnv, x: ValueId, to: DType) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (_, shape) = elementwise(&ty(&x), "operand")?;
    Ok(Some(make(to, shape)))
}

/// The type rule of `Op::Bitcast { x, to }`.
pub(in crate::ir::ops) fn bitcast(env: &dyn TypeEnv, x: ValueId, to: DType) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (dtype, shape) = elementwise(&ty(&x), "operand")?;
    let shape = match shape {
        None if dtype.bits() != to.bits() => {
            return Err(format!("scalar bitcast {dtype} → {to} changes the width"));
        }
        None => None,
        Some(s) => Some(bitcast_shape(dtype, to, &s)?),
    };
    Ok(Some(make(to, shape)))
}

/// The type rule of `Op::MultipleOf { x, multiple }`.
pub(in crate::ir::ops) fn multiple_of(env: &dyn TypeEnv, x: ValueId, multiple: u32) -> Rule {
    let t = env.value_type(x);
    if !matches!(t, Type::Scalar(d) if d.is_int()) {
        return Err(format!("`multiple_of` takes an integer scalar (an index or offset), got {t}"));
    }
    if multiple == 0 || multiple > i32::MAX as u32 {
        return Err(format!("`multiple_of` needs a multiple between 1 and {}, got {multiple}", i32::MAX));
    }
    Ok(Some(t.clone()))
}

/// The type rule of `Op::Iota { dtype, shape, dim }`.
pub(in crate::ir::ops) fn iota(dtype: DType, shape: &[usize], dim: usize) -> Rule {
    if !dtype.is_int() {
        return Err(format!("iota needs an integer dtype, got {dtype}"));
    }
    if dim >= shape.len() {
        return Err(format!("iota dimension {dim} out of range for shape {shape:?}"));
    }
    Ok(Some(Type::Vector { dtype, shape: shape.to_vec() }))
}

//! Type rules — Matmul.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::Matmul { lhs, rhs, transpose_rhs, acc }`.
pub(in crate::ir::ops) fn matmul(
    env: &dyn TypeEnv,
    lhs: ValueId,
    rhs: ValueId,
    transpose_rhs: bool,
    acc: DType,
) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (ld, ls) = vector(&ty(&lhs), "lhs")?;
    let (rd, rs) = vector(&ty(&rhs), "rhs")?;
    if ls.len() != 2 || rs.len() != 2 {
        return Err(format!("matmul needs 2-D operands, got {ls:?} and {rs:?}"));
    }
    let (rk, n) = if transpose_rhs { (rs[1], rs[0]) } else { (rs[0], rs[1]) };
    if ls[1] != rk {
        return Err(format!(
            "matmul contraction mismatch: lhs {ls:?} · rhs{} {rs:?}",
            if transpose_rhs { "ᵀ" } else { "" }
        ));
    }
    if ld.is_float() != rd.is_float() || ld == DType::Bool || rd == DType::Bool {
        return Err(format!("matmul operands must both be float or both integer, got {ld} and {rd}"));
    }
    if acc.is_float() != ld.is_float() {
        return Err(format!("matmul of {ld} cannot accumulate in {acc}"));
    }
    Ok(Some(Type::Vector { dtype: acc, shape: vec![ls[0], n] }))
}

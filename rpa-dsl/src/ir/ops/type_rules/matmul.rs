//! Type rules — Matmul.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc }`.
pub(in crate::ir::ops) fn matmul(
    env: &dyn TypeEnv,
    lhs: ValueId,
    rhs: ValueId,
    [transpose_lhs, transpose_rhs]: [bool; 2],
    acc: DType,
) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let (ld, ls) = vector(&ty(&lhs), "lhs")?;
    let (rd, rs) = vector(&ty(&rhs), "rhs")?;
    if ls.len() != rs.len() || !(2..=3).contains(&ls.len()) {
        return Err(format!(
            "matmul needs 2-D operands, or 3-D ones with the same leading batch dimension, got {ls:?} and {rs:?}"
        ));
    }
    let contracts = |tl: bool, tr: bool| {
        let [(lk, _), (rk, _)] = matmul_dims(ls.len(), tl, tr);
        ls[lk] == rs[rk] && ls[..ls.len() - 2] == rs[..rs.len() - 2]
    };
    if !contracts(transpose_lhs, transpose_rhs) {
        let hint = if !transpose_lhs && contracts(false, !transpose_rhs) {
            if transpose_rhs {
                "; `matmul(a, b)` (`a @ b`) fits these shapes"
            } else {
                "; `matmul_t(a, b)` (`a @ bᵀ`) fits these shapes"
            }
        } else {
            ""
        };
        return Err(format!(
            "matmul contraction mismatch: lhs{} {ls:?} · rhs{} {rs:?}{hint}",
            if transpose_lhs { "ᵀ" } else { "" },
            if transpose_rhs { "ᵀ" } else { "" }
        ));
    }
    let [(_, m), (_, n)] = matmul_dims(ls.len(), transpose_lhs, transpose_rhs);
    if ld.is_float() != rd.is_float() || ld == DType::Bool || rd == DType::Bool {
        return Err(format!("matmul operands must both be float or both integer, got {ld} and {rd}"));
    }
    if acc.is_float() != ld.is_float() {
        return Err(format!("matmul of {ld} cannot accumulate in {acc}"));
    }
    let mut shape = ls[..ls.len() - 2].to_vec();
    shape.extend([ls[m], rs[n]]);
    Ok(Some(Type::Vector { dtype: acc, shape }))
}

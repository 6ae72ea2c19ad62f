//! Type rules — Control flow: mutable locals, `for`, `if`, `while`, `debug_print`.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::VarDecl { var, init }`.
pub(in crate::ir::ops) fn var_decl(env: &dyn TypeEnv, var: VarId, init: Option<ValueId>) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let vt = env.var_type(var);
    if let Some(init) = init {
        if &ty(&init) != vt {
            return Err(format!("variable of type {vt} initialised with {}", ty(&init)));
        }
    }
    if matches!(vt, Type::Ref(_) | Type::Sem { .. }) {
        return Err(format!("variables hold scalars and vectors, not {vt}"));
    }
    Ok(None)
}

/// The type rule of `Op::VarGet { var }`.
pub(in crate::ir::ops) fn var_get(env: &dyn TypeEnv, var: VarId) -> Rule {
    Ok(Some(env.var_type(var).clone()))
}

/// The type rule of `Op::VarSet { var, value }`.
pub(in crate::ir::ops) fn var_set(env: &dyn TypeEnv, var: VarId, value: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let vt = env.var_type(var);
    if &ty(&value) != vt {
        return Err(format!("cannot assign a {} to a variable of type {vt}", ty(&value)));
    }
    Ok(None)
}

/// The type rule of `Op::For { lo, hi, .. }`.
pub(in crate::ir::ops) fn for_(env: &dyn TypeEnv, lo: ValueId, hi: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    for (what, v) in [("start", lo), ("end", hi)] {
        if ty(&v) != Type::Scalar(DType::I32) {
            return Err(format!("loop {what} must be an i32 scalar, got {}", ty(&v)));
        }
    }
    Ok(None)
}

/// The type rule of `Op::If { cond, .. } | Op::While { cond, .. }`.
pub(in crate::ir::ops) fn condition(env: &dyn TypeEnv, cond: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    match ty(&cond) {
        Type::Scalar(DType::Bool) => Ok(None),
        t => Err(format!("condition must be a bool scalar, got {t}")),
    }
}

/// The type rule of `Op::DebugPrint { message, args }`: scalars, or one tile printed at the end of
/// the message (as Pallas on TPU: `pl.debug_print("x = {}", x)`).
pub(in crate::ir::ops) fn debug_print(env: &dyn TypeEnv, message: &str, args: &[ValueId]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let tiles = args.iter().filter(|a| matches!(ty(a), Type::Vector { .. })).count();
    if let Some(a) = args.iter().find(|a| !matches!(ty(a), Type::Scalar(_) | Type::Vector { .. })) {
        return Err(format!("debug_print takes scalars or one tile, got {}", ty(a)));
    }
    if tiles > 0 && (args.len() != 1 || !message.ends_with("{}") || message.matches("{}").count() != 1) {
        return Err(format!(
            "debug_print of a tile prints one tile, at the end of the message (`\"x = {{}}\"`, as Pallas on TPU); \
             got {} argument(s) and the message {message:?}",
            args.len()
        ));
    }
    Ok(None)
}

//! Type rules — DMAs and semaphores.

use super::super::*;

/// The type rule of `Op::DmaStart { src, dst, sem } | Op::DmaWait { src, dst, sem }`.
pub(in crate::ir::ops) fn dma(env: &dyn TypeEnv, src: ValueId, dst: ValueId, sem: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let s = as_ref(&ty(&src))?;
    let d = as_ref(&ty(&dst))?;
    for (what, r) in [("source", &s), ("destination", &d)] {
        if r.space == MemSpace::Smem {
            return Err(format!(
                "DMA {what} is in SMEM; DMAs move data between HBM and VMEM (write scalars with `set`)"
            ));
        }
    }
    if s.dtype != d.dtype {
        return Err(format!("DMA source is {} but destination is {}", s.dtype, d.dtype));
    }
    if s.shape.len() != d.shape.len() {
        return Err(format!(
            "DMA source shape {} and destination shape {} differ in rank",
            crate::ir::fmt_shape(&s.shape),
            crate::ir::fmt_shape(&d.shape)
        ));
    }
    for (a, b) in s.shape.iter().zip(&d.shape) {
        if let (Some(x), Some(y)) = (a.fixed(), b.fixed()) {
            if x != y {
                return Err(format!(
                    "DMA source shape {} does not match destination shape {}",
                    crate::ir::fmt_shape(&s.shape),
                    crate::ir::fmt_shape(&d.shape)
                ));
            }
        }
    }
    match ty(&sem) {
        Type::Sem { kind: SemKind::Dma, shape } if shape.is_empty() => Ok(None),
        Type::Sem { kind: SemKind::Regular, .. } => {
            Err("a DMA signals a DMA semaphore (`DmaSems`), not a regular one (`Semaphores`)".into())
        }
        t => Err(format!("DMA needs a single semaphore (index the array with `.at(i)`), got {t}")),
    }
}

/// The type rule of `Op::SemSignal { sem, amount } | Op::SemWait { sem, amount }`.
pub(in crate::ir::ops) fn semaphore(env: &dyn TypeEnv, sem: ValueId, amount: ValueId) -> Rule {
    match env.value_type(sem) {
        Type::Sem { kind: SemKind::Regular, shape } if shape.is_empty() => {}
        Type::Sem { kind: SemKind::Dma, .. } => {
            return Err("a DMA semaphore is signalled by its DMAs: signal and wait on a regular semaphore \
                        (`Semaphores`, `launch::semaphores`)"
                .into())
        }
        t => return Err(format!("needs a single regular semaphore (index the array with `.at(i)`), got {t}")),
    }
    match env.value_type(amount) {
        Type::Scalar(crate::dtype::DType::I32) => Ok(None),
        t => Err(format!("the semaphore amount must be an i32 scalar, got {t}")),
    }
}

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
        Type::Sem { shape } if shape.is_empty() => Ok(None),
        t => Err(format!("DMA needs a single semaphore (index the array with `.at(i)`), got {t}")),
    }
}

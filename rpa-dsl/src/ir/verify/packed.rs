//! Strided accesses that Mosaic cannot lower: of rank-1 refs, and some of packed dtypes.
//!
//! A strided access to a row window `ref[ds(start, n)]` lowers onto `ref` at `start`, as Pallas
//! lowers `ref[pl.ds(start, n, stride)]`. For dtypes narrower than 32 bits (several rows per 32-bit
//! sublane word) libtpu then needs a constant start and a ref and a tile whose second-minor
//! dimension is a multiple of the packing, and lowers no strided stores at all.

use super::{diag, Diagnostic, Inst, Kernel, Op, Type, ValueId};
use crate::ir::{Indexer, SliceSize};
use std::collections::{HashMap, HashSet};

/// Checks every strided load and store of the body (the structure is sound).
pub(super) fn strided(k: &Kernel, errors: &mut Vec<Diagnostic>) {
    let mut consts = HashSet::new();
    let mut windows = HashMap::new();
    k.body.walk(&mut |inst| match (&inst.op, inst.result) {
        (Op::Const { .. }, Some(r)) => {
            consts.insert(r);
        }
        (Op::View { base, indexers }, Some(r)) => {
            if let [Indexer::Slice { start, size: SliceSize::Static(_) }, rest @ ..] = indexers.as_slice() {
                if rest.iter().all(|i| *i == Indexer::Full) {
                    windows.insert(r, (*base, *start));
                }
            }
        }
        (Op::LoadStrided { shape, .. }, _) if shape.len() < 2 => rank_1(k, inst, "load", errors),
        (Op::StoreStrided { strides, .. }, _) if strides.len() < 2 => rank_1(k, inst, "store", errors),
        (Op::LoadStrided { src, shape, .. }, _) => {
            let (base, start) = windows.get(src).copied().map_or((*src, None), |(b, s)| (b, Some(s)));
            let dynamic = start.is_some_and(|s| !consts.contains(&s));
            if let Some(msg) = packed_load(k, base, dynamic, shape) {
                errors.push(diag(k, Some(inst.op.name()), inst.loc, msg));
            }
        }
        (Op::StoreStrided { dst, .. }, _) => packed_store(k, inst, *dst, errors),
        _ => {}
    });
}

fn rank_1(k: &Kernel, inst: &Inst, what: &str, errors: &mut Vec<Diagnostic>) {
    let msg = format!(
        "strided {what} of a rank-1 ref: Mosaic lowers strided accesses of 2-D tiles and up (TPU vector \
         registers are 2-D); keep the data in rows (`[n / 128, 128]`) and stride over them"
    );
    errors.push(diag(k, Some(inst.op.name()), inst.loc, msg));
}

/// The dtype, second-minor extent (if any) and name (a parameter's, else `ref`) of a ref.
fn ref_info(k: &Kernel, r: ValueId) -> Option<(crate::DType, Option<usize>, &str)> {
    let Type::Ref(t) = k.ty(r) else { return None };
    let rows = t.shape.len().checked_sub(2).and_then(|d| t.shape[d].fixed());
    let name = k.params.iter().find(|p| p.value == r).map_or("ref", |p| p.name.as_str());
    Some((t.dtype, rows, name))
}

fn packed_load(k: &Kernel, base: ValueId, dynamic: bool, shape: &[usize]) -> Option<String> {
    let (dtype, rows, name) = ref_info(k, base)?;
    let p = dtype.packing();
    if p == 1 || shape.len() < 2 {
        return None;
    }
    let hint = format!(
        "; load 32-bit words instead (`{name}.bitcast(U32)` holds {p} rows of {dtype} per row), as the RPA kernel does"
    );
    let why = if dynamic {
        "at a dynamic start: Mosaic lowers strided loads of packed dtypes only at a constant start".to_string()
    } else if let Some(r) = rows.filter(|r| !r.is_multiple_of(p)) {
        format!(
            "from `{name}`, whose second-minor dimension {r} is not a multiple of the packing {p}, which Mosaic needs"
        )
    } else if !shape[shape.len() - 2].is_multiple_of(p) {
        let r = shape[shape.len() - 2];
        format!("as a tile whose second-minor dimension {r} is not a multiple of the packing {p}, which Mosaic needs")
    } else {
        return None;
    };
    Some(format!("strided load of {dtype} {why}{hint}"))
}

fn packed_store(k: &Kernel, inst: &Inst, dst: ValueId, errors: &mut Vec<Diagnostic>) {
    let Some((dtype, ..)) = ref_info(k, dst) else { return };
    if dtype.packing() > 1 {
        let msg = format!(
            "strided store of {dtype}: Mosaic lowers strided stores of 32-bit dtypes only; store 32-bit words \
             instead (bitcast the ref and the tile to U32, {} rows of {dtype} per row) or store rows one by one",
            dtype.packing()
        );
        errors.push(diag(k, Some(inst.op.name()), inst.loc, msg));
    }
}

//! Type rules — Refs: views, vector and scalar loads and stores.

use super::super::*;
use crate::dtype::DType;

/// The type rule of `Op::View { base, indexers }`.
pub(in crate::ir::ops) fn view(env: &dyn TypeEnv, base: ValueId, indexers: &[Indexer]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let index_ok = |v: &ValueId, what: &str| match env.value_type(*v) {
        Type::Scalar(d) if d.is_int() => Ok(()),
        t => Err(format!("{what} must be an integer scalar, got {t}")),
    };
    match ty(&base) {
        Type::Sem { kind, shape } => {
            if indexers.len() > shape.len() {
                return Err(format!("{} indices for a rank-{} semaphore array", indexers.len(), shape.len()));
            }
            let mut out = Vec::new();
            for (d, ix) in indexers.iter().enumerate() {
                match ix {
                    Indexer::At(i) => index_ok(i, "semaphore index")?,
                    Indexer::Full => out.push(shape[d]),
                    Indexer::Slice { .. } => return Err("semaphore arrays can only be indexed".into()),
                }
            }
            out.extend_from_slice(&shape[indexers.len()..]);
            Ok(Some(Type::Sem { kind, shape: out }))
        }
        Type::Ref(r) => {
            if indexers.len() > r.shape.len() {
                return Err(format!("{} indices for a rank-{} ref", indexers.len(), r.shape.len()));
            }
            let mut shape = Vec::new();
            for (d, ix) in indexers.iter().enumerate() {
                let ext = r.shape[d];
                match ix {
                    Indexer::At(i) => index_ok(i, "index")?,
                    Indexer::Full => shape.push(ext),
                    Indexer::Slice { start, size } => {
                        index_ok(start, "slice start")?;
                        match size {
                            SliceSize::Static(n) => {
                                if *n > ext.max() {
                                    return Err(format!("slice of {n} elements is larger than dimension {d} ({ext})"));
                                }
                                shape.push(Extent::Fixed(*n));
                            }
                            SliceSize::Dynamic { size, max } => {
                                index_ok(size, "slice size")?;
                                if *max > ext.max() {
                                    return Err(format!(
                                        "dynamic slice bound {max} is larger than dimension {d} ({ext})"
                                    ));
                                }
                                shape.push(Extent::Dynamic { max: *max });
                            }
                        }
                    }
                }
            }
            shape.extend_from_slice(&r.shape[indexers.len()..]);
            Ok(Some(Type::Ref(RefType { space: r.space, dtype: r.dtype, shape })))
        }
        t => Err(format!("only refs and semaphore arrays can be viewed, got {t}")),
    }
}

/// The type rule of `Op::RefReshape { base, shape }`.
pub(in crate::ir::ops) fn ref_reshape(env: &dyn TypeEnv, base: ValueId, shape: &[usize]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = as_ref(&ty(&base))?;
    let from = r.static_shape().ok_or("cannot reshape a ref with a dynamic extent")?;
    if from.iter().product::<usize>() != shape.iter().product::<usize>() {
        return Err(format!("cannot reshape ref {from:?} to {shape:?}: element counts differ"));
    }
    Ok(Some(Type::Ref(RefType::fixed(r.space, r.dtype, shape))))
}

/// The type rule of `Op::RefBitcast { base, to }`.
pub(in crate::ir::ops) fn ref_bitcast(env: &dyn TypeEnv, base: ValueId, to: DType) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = as_ref(&ty(&base))?;
    let from = r.static_shape().ok_or("cannot bitcast a ref with a dynamic extent")?;
    let shape = bitcast_shape(r.dtype, to, &from)?;
    Ok(Some(Type::Ref(RefType::fixed(r.space, to, &shape))))
}

/// The type rule of `Op::Load { src }`.
pub(in crate::ir::ops) fn load(env: &dyn TypeEnv, src: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = vmem_ref(&ty(&src), "load from")?;
    let shape = r.static_shape().ok_or("cannot load a ref with a dynamic extent: vectors have static shapes")?;
    Ok(Some(Type::Vector { dtype: r.dtype, shape }))
}

/// The type rule of `Op::LoadStrided { src, strides, shape }`.
pub(in crate::ir::ops) fn load_strided(env: &dyn TypeEnv, src: ValueId, strides: &[usize], shape: &[usize]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = vmem_ref(&ty(&src), "load from")?;
    strided_fits(&r, strides, shape)?;
    Ok(Some(Type::Vector { dtype: r.dtype, shape: shape.to_vec() }))
}

/// The type rule of `Op::Store { dst, value, mask }`.
pub(in crate::ir::ops) fn store(env: &dyn TypeEnv, dst: ValueId, value: ValueId, mask: Option<ValueId>) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = vmem_ref(&ty(&dst), "store to")?;
    let shape = r.static_shape().ok_or("cannot store to a ref with a dynamic extent")?;
    let (vd, vs) = vector(&ty(&value), "stored value")?;
    if vd != r.dtype || vs != shape {
        return Err(format!("stored value {vd}{vs:?} does not match the ref {}{shape:?}", r.dtype));
    }
    if let Some(m) = mask {
        let (md, ms) = vector(&ty(&m), "mask")?;
        if md != DType::Bool || ms != shape {
            return Err(format!("store mask must be bool{shape:?}, got {md}{ms:?}"));
        }
    }
    Ok(None)
}

/// The type rule of `Op::StoreStrided { dst, value, strides }`.
pub(in crate::ir::ops) fn store_strided(env: &dyn TypeEnv, dst: ValueId, value: ValueId, strides: &[usize]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = vmem_ref(&ty(&dst), "store to")?;
    let (vd, vs) = vector(&ty(&value), "stored value")?;
    if vd != r.dtype {
        return Err(format!("stored value dtype {vd} does not match the ref's {}", r.dtype));
    }
    strided_fits(&r, strides, &vs)?;
    Ok(None)
}

/// The type rule of `Op::ScalarLoad { src, indices }`.
pub(in crate::ir::ops) fn scalar_load(env: &dyn TypeEnv, src: ValueId, indices: &[ValueId]) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = smem_ref(&ty(&src))?;
    scalar_indices(env, &r, indices)?;
    Ok(Some(Type::Scalar(r.dtype)))
}

/// The type rule of `Op::ScalarStore { dst, indices, value }`.
pub(in crate::ir::ops) fn scalar_store(env: &dyn TypeEnv, dst: ValueId, indices: &[ValueId], value: ValueId) -> Rule {
    let ty = |v: &ValueId| env.value_type(*v).clone();
    let r = smem_ref(&ty(&dst))?;
    scalar_indices(env, &r, indices)?;
    match ty(&value) {
        Type::Scalar(d) if d == r.dtype => Ok(None),
        t => Err(format!("stored value {t} does not match the ref's dtype {}", r.dtype)),
    }
}

//! The epilogue's collectives: what they do to per-device shapes, and their host semantics
//! (interpret mode's reference for the StableHLO collectives of [`crate::lower::spmd`]).

use super::{Mesh, MeshError};
use crate::{Array, DType};

/// A collective that combines the kernel's per-device outputs, over one mesh axis.
#[derive(Clone, Debug, PartialEq)]
pub enum Collective {
    /// Output `output` gathered along `dim` over `axis`: every device of a group (the devices
    /// that differ only along `axis`) ends with its group's blocks concatenated in axis order.
    AllGather { output: usize, dim: usize, axis: String },
    /// A log-sum-exp merge over `axis` of partial results `out` (any float dtype) and their
    /// log-sum-exps `lse` (f32), e.g. attention over disjoint key sets: with `m = max_i lse_i`,
    /// `lse = m + log Σ_i exp(lse_i − m)` and `out = Σ_i exp(lse_i − lse) · out_i`, in f32
    /// (`out` rounded back to its dtype). Element `j` of `lse` belongs to the elements of `out`
    /// whose index along dim `lse_dims[k]` is `j`'s index `k`; dims of `lse` after those
    /// (e.g. RPA's 128 lanes, which repeat one value) are copies: `out` is weighed by their
    /// first element, and every element of `lse` is merged. A device with `lse_i = −∞` (no
    /// keys) contributes nothing, whatever its `out_i` (NaN included); where every `lse_i` is
    /// `−∞`, the merge gives `lse = −∞` and `out = NaN`, as a single-device RPA computes for
    /// a row with no keys (`acc / l = 0 / 0`).
    LseMerge { out: usize, lse: usize, lse_dims: Vec<usize>, axis: String },
}

impl Collective {
    pub fn axis(&self) -> &str {
        match self {
            Collective::AllGather { axis, .. } | Collective::LseMerge { axis, .. } => axis,
        }
    }

    /// The outputs it writes.
    pub fn outputs(&self) -> Vec<usize> {
        match self {
            Collective::AllGather { output, .. } => vec![*output],
            Collective::LseMerge { out, lse, .. } => vec![*out, *lse],
        }
    }

    /// Checks it against the per-device output types `outs` (as they are at this point of the
    /// epilogue) and updates them.
    pub(crate) fn apply_types(&self, mesh: &Mesh, outs: &mut [(DType, Vec<usize>)]) -> Result<(), MeshError> {
        let size = mesh.size(self.axis()).ok_or_else(|| {
            MeshError::new(format!("names mesh axis `{}`, which the mesh ({}) has not", self.axis(), mesh.describe()))
        })?;
        let n = outs.len();
        let get = |i: usize| {
            outs.get(i).cloned().ok_or_else(|| MeshError::new(format!("names output {i}; the kernel has {n}")))
        };
        match self {
            Collective::AllGather { output, dim, .. } => {
                let (_, shape) = get(*output)?;
                if *dim >= shape.len() {
                    return Err(MeshError::new(format!(
                        "gathers dim {dim} of output {output} of rank {}",
                        shape.len()
                    )));
                }
                outs[*output].1[*dim] *= size;
            }
            Collective::LseMerge { out, lse, lse_dims, .. } => {
                let ((odt, oshape), (ldt, lshape)) = (get(*out)?, get(*lse)?);
                if out == lse {
                    return Err(MeshError::new(format!("merges output {out} with itself")));
                }
                if !odt.is_float() || ldt != DType::F32 {
                    return Err(MeshError::new(format!(
                        "merges out {out} of {odt} with lse {lse} of {ldt}: out must be a float, lse f32"
                    )));
                }
                let fits = lse_dims.len() <= lshape.len()
                    && lse_dims.iter().zip(&lshape).all(|(&d, &n)| d < oshape.len() && oshape[d] == n)
                    && lse_dims.windows(2).all(|w| w[0] < w[1]);
                if !fits {
                    return Err(MeshError::new(format!(
                        "lse dims {lse_dims:?} do not map lse {lse} {lshape:?} onto out {out} {oshape:?} \
                         (increasing dims of out, of the sizes of lse's leading dims)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Runs it on the host over the per-device outputs `devices[d]`.
    pub(crate) fn apply_host(&self, mesh: &Mesh, devices: &mut [Vec<Array>]) {
        let axis = mesh.axis(self.axis()).expect("a checked collective");
        for group in mesh.groups(axis) {
            match self {
                Collective::AllGather { output, dim, .. } => {
                    let parts: Vec<&Array> = group.iter().map(|&d| &devices[d][*output]).collect();
                    let whole = concat(&parts, *dim);
                    for &d in &group {
                        devices[d][*output] = whole.clone();
                    }
                }
                Collective::LseMerge { out, lse, lse_dims, .. } => {
                    let outs: Vec<&Array> = group.iter().map(|&d| &devices[d][*out]).collect();
                    let lses: Vec<&Array> = group.iter().map(|&d| &devices[d][*lse]).collect();
                    let (o, l) = super::merge::lse_merge(&outs, &lses, lse_dims);
                    for &d in &group {
                        devices[d][*out] = o.clone();
                        devices[d][*lse] = l.clone();
                    }
                }
            }
        }
    }
}

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The arrays concatenated along `dim`.
fn concat(parts: &[&Array], dim: usize) -> Array {
    let mut shape = parts[0].shape().to_vec();
    let inner: usize = shape[dim + 1..].iter().product();
    let outer: usize = shape[..dim].iter().product();
    shape[dim] *= parts.len();
    let mut bits = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for o in 0..outer {
        for p in parts {
            let chunk = p.shape()[dim] * inner;
            bits.extend_from_slice(&p.bits()[o * chunk..(o + 1) * chunk]);
        }
    }
    Array::from_bits(parts[0].dtype(), &shape, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_along_inner_dim() {
        let a = Array::from_i32(&[2, 1], &[1, 2]);
        let b = Array::from_i32(&[2, 1], &[3, 4]);
        assert_eq!(concat(&[&a, &b], 1).to_i64(), [1, 3, 2, 4]);
        assert_eq!(concat(&[&a, &b], 0).to_i64(), [1, 2, 3, 4]);
    }
}

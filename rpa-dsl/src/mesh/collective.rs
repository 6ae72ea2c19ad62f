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
                    let (o, l) = lse_merge(&outs, &lses, lse_dims);
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

/// The merge of [`Collective::LseMerge`], in f32 and in the devices' order (as the program's
/// all-reduces).
fn lse_merge(outs: &[&Array], lses: &[&Array], lse_dims: &[usize]) -> (Array, Array) {
    let lse_shape = lses[0].shape().to_vec();
    let f32s = |a: &Array| a.to_f32();
    let lse_vals: Vec<Vec<f32>> = lses.iter().map(|a| f32s(a)).collect();
    let n = lse_vals[0].len();
    let mut safe_max = vec![0f32; n];
    let mut weights = vec![vec![0f32; n]; lses.len()];
    let mut sums = vec![0f32; n];
    let mut merged_lse = vec![0f32; n];
    for j in 0..n {
        let m = lse_vals.iter().map(|l| l[j]).fold(f32::NEG_INFINITY, f32::max);
        safe_max[j] = if m == f32::NEG_INFINITY { 0.0 } else { m };
        for (i, l) in lse_vals.iter().enumerate() {
            weights[i][j] = (l[j] - safe_max[j]).exp();
            sums[j] += weights[i][j];
        }
        merged_lse[j] = safe_max[j] + sums[j].ln();
    }
    let oshape = outs[0].shape().to_vec();
    let (ostr, lstr) = (strides(&oshape), strides(&lse_shape));
    let out_vals: Vec<Vec<f32>> = outs.iter().map(|a| f32s(a)).collect();
    let merged: Vec<f64> = (0..outs[0].len())
        .map(|k| {
            // The lse element of out element k (index 0 along lse's copy dims).
            let j: usize = lse_dims.iter().zip(&lstr).map(|(&d, &s)| (k / ostr[d]) % oshape[d] * s).sum();
            let mut acc = 0f32;
            for (i, o) in out_vals.iter().enumerate() {
                if lse_vals[i][j] != f32::NEG_INFINITY {
                    acc += weights[i][j] * o[k];
                }
            }
            let all_empty = lse_vals.iter().all(|l| l[j] == f32::NEG_INFINITY);
            f64::from(if all_empty { f32::NAN } else { acc / sums[j] })
        })
        .collect();
    let lse = Array::from_f32(DType::F32, &lse_shape, &merged_lse);
    (Array::from_f64(outs[0].dtype(), &oshape, &merged), lse)
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

    #[test]
    fn merge_of_two_halves_is_the_whole_softmax() {
        // Two devices, one row: logits {0, ln 3} on device 0, {ln 2} on device 1; values 1, 2 | 3.
        let (l0, l1) = ((1f32 + 3.0).ln(), 2f32.ln());
        let o0 = (1.0 + 3.0 * 2.0) / 4.0;
        let lse = [Array::from_f32(DType::F32, &[1], &[l0]), Array::from_f32(DType::F32, &[1], &[l1])];
        let out = [Array::from_f32(DType::F32, &[1, 1], &[o0]), Array::from_f32(DType::F32, &[1, 1], &[3.0])];
        let (o, l) = lse_merge(&[&out[0], &out[1]], &[&lse[0], &lse[1]], &[0]);
        assert!((l.to_f32()[0] - 6f32.ln()).abs() < 1e-6);
        assert!((o.to_f32()[0] - (1.0 + 6.0 + 6.0) / 6.0).abs() < 1e-6);
    }

    #[test]
    fn merge_weighs_out_by_the_first_of_lse_copy_dims() {
        // lse [1, 2]: one row whose value repeats on 2 lanes; out [1, 3].
        let lse =
            [Array::from_f32(DType::F32, &[1, 2], &[0.0, 0.0]), Array::from_f32(DType::F32, &[1, 2], &[0.0, 0.0])];
        let out = [
            Array::from_f32(DType::F32, &[1, 3], &[1.0, 2.0, 3.0]),
            Array::from_f32(DType::F32, &[1, 3], &[3.0, 4.0, 5.0]),
        ];
        let (o, l) = lse_merge(&[&out[0], &out[1]], &[&lse[0], &lse[1]], &[0]);
        assert_eq!(o.to_f32(), [2.0, 3.0, 4.0]);
        assert_eq!(l.to_f32(), [2f32.ln(), 2f32.ln()]);
    }

    #[test]
    fn merge_ignores_empty_devices_and_all_empty_rows_are_nan() {
        let ninf = f32::NEG_INFINITY;
        let lse = [Array::from_f32(DType::F32, &[2], &[ninf, ninf]), Array::from_f32(DType::F32, &[2], &[1.0, ninf])];
        let out =
            [Array::from_f32(DType::F32, &[2], &[f32::NAN, f32::NAN]), Array::from_f32(DType::F32, &[2], &[5.0, 7.0])];
        let (o, l) = lse_merge(&[&out[0], &out[1]], &[&lse[0], &lse[1]], &[0]);
        assert_eq!(l.to_f32()[0], 1.0);
        assert_eq!(o.to_f32()[0], 5.0);
        assert_eq!(l.to_f32()[1], ninf);
        assert!(o.to_f32()[1].is_nan());
    }
}

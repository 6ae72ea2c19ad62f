//! The host semantics of the log-sum-exp merge ([`Collective::LseMerge`](super::Collective)).

use super::collective::strides;
use crate::{Array, DType};

/// The merge of [`Collective::LseMerge`], in f32 and in the devices' order (as the program's
/// all-reduces).
pub(crate) fn lse_merge(outs: &[&Array], lses: &[&Array], lse_dims: &[usize]) -> (Array, Array) {
    let lse_shape = lses[0].shape().to_vec();
    let f32s = |a: &Array| a.to_f32();
    let lse_vals: Vec<Vec<f32>> = lses.iter().map(|a| f32s(a)).collect();
    let n = lse_vals[0].len();
    let mut safe_max = vec![0f32; n];
    let mut weights = vec![vec![0f32; n]; lses.len()];
    let mut sums = vec![0f32; n];
    let mut merged_lse = vec![0f32; n];
    for j in 0..n {
        // NaN propagates, as in StableHLO's `maximum` (e.g. rows a kernel never wrote).
        let m = lse_vals.iter().map(|l| l[j]).fold(f32::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        });
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

    #[test]
    fn a_nan_lse_makes_the_row_nan() {
        let lse = [Array::from_f32(DType::F32, &[1], &[f32::NAN]), Array::from_f32(DType::F32, &[1], &[1.0])];
        let out = [Array::from_f32(DType::F32, &[1], &[1.0]), Array::from_f32(DType::F32, &[1], &[2.0])];
        let (o, l) = lse_merge(&[&out[0], &out[1]], &[&lse[0], &lse[1]], &[0]);
        assert!(o.to_f32()[0].is_nan() && l.to_f32()[0].is_nan());
    }
}

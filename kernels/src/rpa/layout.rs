//! The TPU layout of the paged KV cache and the helpers that build it.
//!
//! `kv_cache[page, row, c / packing, c % packing, d]` holds the combined head `c` of token slot
//! `row` of `page`: `c = 2h` is K of kv head `h`, `c = 2h + 1` its V. Heads are padded to a
//! multiple of the packing (32 / bits of the cache dtype) and `d` to a multiple of 128 lanes.

use rpa_dsl::{Array, DType};

/// `x` rounded up to a multiple of `m`.
pub const fn align_to(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// `v` quantized to `dtype`: clipped to its finite range and rounded (to nearest even; integers
/// to the nearest integer, ties to even).
pub fn quantize(dtype: DType, v: f64) -> f64 {
    let (lo, hi) = dtype.finite_range();
    let v = v.clamp(lo, hi);
    if dtype.is_float() {
        dtype.round(v)
    } else {
        v.round_ties_even()
    }
}

/// The cache shape `[pages, page_size, cdiv(2·Hkv, packing), packing, align(D, 128)]`.
pub fn kv_cache_shape(
    total_pages: usize,
    page_size: usize,
    num_kv_heads: usize,
    head_dim: usize,
    kv_dtype: DType,
) -> [usize; 5] {
    let packing = kv_dtype.packing();
    [total_pages, page_size, (2 * num_kv_heads).div_ceil(packing), packing, align_to(head_dim, 128)]
}

/// Flat index of element `[page, row, combined head, d]` of a cache of `shape`.
pub fn cache_index(shape: &[usize; 5], page: usize, row: usize, combined: usize, d: usize) -> usize {
    let (packing, dp) = (shape[3], shape[4]);
    (((page * shape[1] + row) * shape[2] + combined / packing) * packing + combined % packing) * dp + d
}

/// Interleaves new K and V (`[T, Hkv, D]` each) into cache rows `[T, cdiv(2·Hkv, p), p, align(D, 128)]`,
/// zero-padded (`merge_kv` of tpu-inference).
pub fn merge_kv(keys: &Array, values: &Array) -> Array {
    let (t, hkv, d) = (keys.shape()[0], keys.shape()[1], keys.shape()[2]);
    let dtype = keys.dtype();
    let shape = kv_cache_shape(1, t, hkv, d, dtype);
    let mut out = Array::zeros(dtype, &shape[1..]);
    let rows_shape = [1, t, shape[2], shape[3], shape[4]];
    for tok in 0..t {
        for h in 0..hkv {
            for x in 0..d {
                let src = (tok * hkv + h) * d + x;
                out.bits_mut()[cache_index(&rows_shape, 0, tok, 2 * h, x)] = keys.bits()[src];
                out.bits_mut()[cache_index(&rows_shape, 0, tok, 2 * h + 1, x)] = values.bits()[src];
            }
        }
    }
    out
}

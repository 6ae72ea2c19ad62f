//! Building ragged batches for tests and benchmarks, the way the upstream tests do: random data,
//! each sequence's pages scattered over the cache, and NaN in every cache slot that holds no token
//! yet (page tails, unused pages, the slots the new tokens will fill).

use super::layout::{align_to, cache_index, kv_cache_shape, quantize};
use super::reference::RpaInputs;
use crate::demo_values::random_values;
use rpa_dsl::{Array, DType};

// The sequence lists of the upstream RPA tests (tpu-inference v3, jax v2).
/// kv_len of the upstream `decode_only` list (q_len 1 each).
pub const DECODE_KV: [usize; 16] = [18, 129, 597, 122, 64, 322, 463, 181, 1107, 123, 31, 18, 1229, 229, 87, 1328];
/// `(q_len, kv_len)` of the upstream `prefill_only` list.
pub const PREFILL: [(usize, usize); 16] = [
    (5, 18),
    (15, 129),
    (120, 597),
    (100, 122),
    (21, 64),
    (32, 322),
    (251, 463),
    (40, 181),
    (64, 1107),
    (99, 123),
    (10, 31),
    (5, 18),
    (3, 1229),
    (120, 229),
    (9, 87),
    (2, 1328),
];
/// `(q_len, kv_len)` of the upstream `mixed` list.
pub const MIXED: [(usize, usize); 16] = [
    (5, 18),
    (1, 129),
    (120, 597),
    (1, 122),
    (1, 64),
    (32, 322),
    (251, 463),
    (1, 181),
    (1, 1107),
    (99, 123),
    (1, 31),
    (5, 18),
    (3, 1229),
    (117, 229),
    (1, 87),
    (1, 1328),
];

/// The shape of a batch to build.
#[derive(Clone, Debug)]
pub struct BatchSpec {
    /// `(q_len, kv_len)` per sequence.
    pub seq_lens: Vec<(usize, usize)>,
    pub num_q_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub page_size: usize,
    pub q_dtype: DType,
    pub kv_dtype: DType,
    /// Extra cache pages beyond what the sequences use.
    pub spare_pages: usize,
    pub seed: u64,
}

impl BatchSpec {
    pub fn new(
        seq_lens: &[(usize, usize)],
        heads: (usize, usize),
        head_dim: usize,
        page_size: usize,
        dtype: DType,
    ) -> Self {
        BatchSpec {
            seq_lens: seq_lens.to_vec(),
            num_q_heads: heads.0,
            num_kv_heads: heads.1,
            head_dim,
            page_size,
            q_dtype: dtype,
            kv_dtype: dtype,
            spare_pages: 3,
            seed: 1234,
        }
    }
}

/// Random values scaled to `scale`, rounded to `dtype`.
fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    random_values(n, seed).into_iter().map(|v| v * scale).collect()
}

/// Builds the inputs of a batch in which every sequence goes to the mixed kernel
/// (`distribution = [0, 0, n]`, as the upstream v3 tests do).
pub fn make_batch(spec: &BatchSpec) -> RpaInputs {
    let n = spec.seq_lens.len();
    let (hq, hkv, d, ps) = (spec.num_q_heads, spec.num_kv_heads, spec.head_dim, spec.page_size);
    let total_q: usize = spec.seq_lens.iter().map(|s| s.0).sum();
    let max_tokens = align_to(total_q.max(1), 8);
    let max_seqs = align_to(n.max(1), 8);
    let pps = spec.seq_lens.iter().map(|s| s.1.div_ceil(ps)).max().unwrap_or(1).max(1);
    let used: usize = spec.seq_lens.iter().map(|s| s.1.div_ceil(ps)).sum();
    let total_pages = used + spec.spare_pages;
    // Scatter pages: a fixed permutation of all page ids.
    let mut order: Vec<usize> = (0..total_pages).collect();
    let r = random_values(total_pages, spec.seed ^ 0x9e37);
    order.sort_by(|a, b| r[*a].partial_cmp(&r[*b]).unwrap());
    let mut page_indices = vec![i32::MIN; max_seqs * pps];
    let mut next = 0;
    for (b, &(_, kv)) in spec.seq_lens.iter().enumerate() {
        for p in 0..kv.div_ceil(ps) {
            page_indices[b * pps + p] = order[next] as i32;
            next += 1;
        }
    }
    let mut cu_q_lens = vec![0i32; max_seqs + 1];
    let mut kv_lens = vec![0i32; max_seqs];
    for (b, &(q, kv)) in spec.seq_lens.iter().enumerate() {
        cu_q_lens[b + 1] = cu_q_lens[b] + q as i32;
        kv_lens[b] = kv as i32;
    }
    for b in n..max_seqs {
        cu_q_lens[b + 1] = cu_q_lens[b];
    }
    let queries = Array::from_f64(spec.q_dtype, &[max_tokens, hq, d], &values(max_tokens * hq * d, spec.seed + 1, 1.0));
    // Integer caches hold quantized values: spread them over the dtype's range.
    let kv_scale = if spec.kv_dtype.is_float() { 1.0 } else { spec.kv_dtype.finite_range().1 };
    let kv_values = |seed| -> Vec<f64> {
        values(max_tokens * hkv * d, seed, kv_scale).into_iter().map(|v| quantize(spec.kv_dtype, v)).collect()
    };
    let keys = Array::from_f64(spec.kv_dtype, &[max_tokens, hkv, d], &kv_values(spec.seed + 2));
    let vals = Array::from_f64(spec.kv_dtype, &[max_tokens, hkv, d], &kv_values(spec.seed + 3));
    let shape = kv_cache_shape(total_pages, ps, hkv, d, spec.kv_dtype);
    let mut cache = Array::poison(spec.kv_dtype, &shape);
    let fill: Vec<f64> = values(shape.iter().product(), spec.seed + 4, kv_scale)
        .into_iter()
        .map(|v| quantize(spec.kv_dtype, v))
        .collect();
    for (b, &(q, kv)) in spec.seq_lens.iter().enumerate() {
        for pos in 0..kv - q {
            let page = page_indices[b * pps + pos / ps] as usize;
            for c in 0..2 * hkv {
                for x in 0..d {
                    let i = cache_index(&shape, page, pos % ps, c, x);
                    cache.set_f64(i, fill[i]);
                }
            }
        }
    }
    RpaInputs {
        queries,
        keys,
        values: vals,
        kv_cache: cache,
        kv_lens,
        page_indices,
        cu_q_lens,
        distribution: [0, 0, n as i32],
    }
}

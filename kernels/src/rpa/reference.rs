//! The plain-Rust reference of ragged paged attention (f64 accumulation), with tpu-inference v3's
//! semantics: it writes the new K/V into the cache, then attends over the updated cache.

use super::layout::{cache_index, merge_kv, quantize};
use super::RpaOptions;
use rpa_dsl::{Array, DType};

/// The inputs of one call, as the kernels take them.
#[derive(Clone, Debug)]
pub struct RpaInputs {
    /// `[max_num_tokens, Hq, D]`.
    pub queries: Array,
    /// `[max_num_tokens, Hkv, D]`, already in the cache dtype.
    pub keys: Array,
    pub values: Array,
    /// `[pages, page_size, cdiv(2·Hkv, packing), packing, align(D, 128)]`.
    pub kv_cache: Array,
    /// `i32[max_num_seqs]`.
    pub kv_lens: Vec<i32>,
    /// `i32[max_num_seqs · pages_per_seq]`, flattened.
    pub page_indices: Vec<i32>,
    /// `i32[max_num_seqs + 1]`.
    pub cu_q_lens: Vec<i32>,
    /// `(i, j, k)`: decode `[0, i)`, prefill `[i, j)`, mixed `[j, k)`.
    pub distribution: [i32; 3],
}

impl RpaInputs {
    pub fn num_q_heads(&self) -> usize {
        self.queries.shape()[1]
    }
    pub fn num_kv_heads(&self) -> usize {
        self.keys.shape()[1]
    }
    pub fn head_dim(&self) -> usize {
        self.queries.shape()[2]
    }
    pub fn page_size(&self) -> usize {
        self.kv_cache.shape()[1]
    }
    pub fn max_num_seqs(&self) -> usize {
        self.kv_lens.len()
    }
    pub fn pages_per_seq(&self) -> usize {
        self.page_indices.len() / self.max_num_seqs().max(1)
    }
    pub fn cache_shape(&self) -> [usize; 5] {
        let s = self.kv_cache.shape();
        [s[0], s[1], s[2], s[3], s[4]]
    }
    /// The static part of these inputs.
    pub fn shapes(&self) -> RpaShapes {
        let spec = |a: &Array| (a.dtype(), a.shape().to_vec());
        RpaShapes {
            queries: spec(&self.queries),
            keys: spec(&self.keys),
            values: spec(&self.values),
            kv_cache: spec(&self.kv_cache),
            max_num_seqs: self.kv_lens.len(),
            page_indices_len: self.page_indices.len(),
            cu_q_lens_len: self.cu_q_lens.len(),
        }
    }
}

/// The static part of a call, what the kernels are built for: the dtype and shape of each array
/// and the lengths of the metadata (e.g. what a JAX trace knows before any data exists).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RpaShapes {
    pub queries: (DType, Vec<usize>),
    pub keys: (DType, Vec<usize>),
    pub values: (DType, Vec<usize>),
    pub kv_cache: (DType, Vec<usize>),
    /// Entries of `kv_lens`.
    pub max_num_seqs: usize,
    pub page_indices_len: usize,
    pub cu_q_lens_len: usize,
}

impl RpaShapes {
    /// Query tokens (`max_num_tokens`).
    pub fn num_tokens(&self) -> usize {
        self.queries.1[0]
    }
    pub fn num_q_heads(&self) -> usize {
        self.queries.1[1]
    }
    pub fn num_kv_heads(&self) -> usize {
        self.keys.1[1]
    }
    pub fn head_dim(&self) -> usize {
        self.queries.1[2]
    }
    pub fn total_pages(&self) -> usize {
        self.kv_cache.1[0]
    }
    pub fn page_size(&self) -> usize {
        self.kv_cache.1[1]
    }
    pub fn pages_per_seq(&self) -> usize {
        self.page_indices_len / self.max_num_seqs.max(1)
    }
}

/// `(output [max_num_tokens, Hq, D] in the query dtype, updated cache)`. The sliding window
/// applies whenever it is set (as the v3 kernel does; its Python reference only applies it with the
/// causal mask). Output rows of tokens no
/// sequence owns keep the query values (the kernels write the output in place of the queries).
pub fn ragged_paged_attention(inputs: &RpaInputs, opts: &RpaOptions) -> (Array, Array) {
    let r = run(inputs, opts);
    (r.output, r.kv_cache)
}

/// The reference's results.
pub struct ReferenceOutput {
    pub output: Array,
    pub kv_cache: Array,
    /// `[tokens · Hq]`: `ln Σ_j exp(s_j)` over each query's logits (masked ones at `mask_value`,
    /// as in the kernels); NaN for tokens no sequence owns.
    pub lse: Vec<f64>,
}

/// The reference with everything it computes.
pub fn run(inputs: &RpaInputs, opts: &RpaOptions) -> ReferenceOutput {
    let kv_dtype = inputs.kv_cache.dtype();
    let (hq, hkv, d) = (inputs.num_q_heads(), inputs.num_kv_heads(), inputs.head_dim());
    let g = hq / hkv;
    let ps = inputs.page_size();
    let pps = inputs.pages_per_seq();
    let shape = inputs.cache_shape();
    let mut cache = inputs.kv_cache.clone();
    let mut out = inputs.queries.clone();
    let mut lse = vec![f64::NAN; inputs.queries.shape()[0] * hq];
    let new_rows = merge_kv(&inputs.keys, &inputs.values);
    let new_shape = [1, new_rows.shape()[0], shape[2], shape[3], shape[4]];
    let num_seqs = inputs.distribution[2].max(0) as usize;
    let mask_value = opts.mask_value();
    let k_scale = opts.k_scale.unwrap_or(1.0);
    let v_scale = opts.v_scale.unwrap_or(1.0);
    for b in 0..num_seqs {
        let q_start = inputs.cu_q_lens[b] as usize;
        let q_len = (inputs.cu_q_lens[b + 1] - inputs.cu_q_lens[b]) as usize;
        let kv_len = inputs.kv_lens[b] as usize;
        let slot = |p: usize| (inputs.page_indices[b * pps + p / ps] as usize, p % ps);
        // 1. The fused cache update: the new tokens are the last q_len positions.
        if opts.update_kv_cache {
            for i in 0..q_len {
                let (page, row) = slot(kv_len - q_len + i);
                for c in 0..shape[2] * shape[3] {
                    for x in 0..shape[4] {
                        cache.bits_mut()[cache_index(&shape, page, row, c, x)] =
                            new_rows.bits()[cache_index(&new_shape, 0, q_start + i, c, x)];
                    }
                }
            }
        }
        // 2. Attention over the (updated) cache.
        let key = |j: usize, h: usize, x: usize| {
            let (page, row) = slot(j);
            cache.get_f64(cache_index(&shape, page, row, 2 * h, x))
        };
        let value = |j: usize, h: usize, x: usize| {
            let (page, row) = slot(j);
            cache.get_f64(cache_index(&shape, page, row, 2 * h + 1, x))
        };
        for i in 0..q_len {
            let pos = kv_len - q_len + i;
            for h in 0..hq {
                let kh = h / g;
                let q: Vec<f64> = (0..d)
                    .map(|x| {
                        let v = inputs.queries.get_f64(((q_start + i) * hq + h) * d + x);
                        match opts.q_scale {
                            Some(s) => quantize(kv_dtype, v / s),
                            None => v,
                        }
                    })
                    .collect();
                let scale = opts.sm_scale * k_scale * opts.q_scale.unwrap_or(1.0);
                let mut logits: Vec<f64> = (0..kv_len)
                    .map(|j| {
                        let mut s = (0..d).map(|x| q[x] * key(j, kh, x)).sum::<f64>() * scale;
                        if let Some(cap) = opts.soft_cap {
                            s = cap * (s / cap).tanh();
                        }
                        let visible = (!opts.causal || j <= pos) && opts.sliding_window.is_none_or(|w| j + w > pos);
                        if visible {
                            s
                        } else {
                            mask_value
                        }
                    })
                    .collect();
                // An attention sink is one more logit, with no value.
                let sink = opts.attention_sink.as_ref().map(|a| a.get_f64(h));
                let m = logits.iter().cloned().chain(sink).fold(f64::NEG_INFINITY, f64::max);
                let mut l = sink.map_or(0.0, |s| (s - m).exp());
                for s in logits.iter_mut() {
                    *s = (*s - m).exp();
                    l += *s;
                }
                lse[(q_start + i) * hq + h] = m + l.ln();
                for x in 0..d {
                    let o = (0..kv_len).map(|j| logits[j] * value(j, kh, x)).sum::<f64>() / l * v_scale;
                    out.set_f64(((q_start + i) * hq + h) * d + x, o);
                }
            }
        }
    }
    ReferenceOutput { output: out, kv_cache: cache, lse }
}

/// Dense attention on plain `[T, H, D]` data, used to cross-check the paged reference.
pub fn dense_causal_attention(q: &[f64], k: &[f64], v: &[f64], t: usize, h: usize, d: usize, scale: f64) -> Vec<f64> {
    let mut out = vec![0.0; t * h * d];
    for hh in 0..h {
        for i in 0..t {
            let s: Vec<f64> = (0..=i)
                .map(|j| (0..d).map(|x| q[(i * h + hh) * d + x] * k[(j * h + hh) * d + x]).sum::<f64>() * scale)
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let l: f64 = e.iter().sum();
            for x in 0..d {
                out[(i * h + hh) * d + x] = (0..=i).map(|j| e[j] * v[(j * h + hh) * d + x]).sum::<f64>() / l;
            }
        }
    }
    out
}

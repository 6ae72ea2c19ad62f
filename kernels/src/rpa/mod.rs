//! Ragged Paged Attention (tpu-inference v3 semantics): attention of ragged batches of new query
//! tokens over a paged KV cache, with the new K/V written into the cache.
//!
//! This module holds the public options, the cache layout helpers, the plain-Rust reference and
//! the input validation. The kernels themselves are written in the DSL.

pub mod blocks;
pub mod dense;
pub mod fuzz;
pub mod kernel;
pub mod launch;
pub mod layout;
pub mod mesh;
pub mod reference;
pub mod testing;
pub mod validate;

use rpa_dsl::{Array, DType};

/// Which of the three specialised kernels handles a range of sequences (`distribution = (i, j, k)`:
/// decode `[0, i)`, chunked prefill `[i, j)`, mixed `[j, k)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RpaCase {
    /// `q_len == 1`, no causal mask needed.
    Decode,
    /// `q_len == chunk_prefill_size` (static).
    Prefill,
    /// Any `0 < q_len <= kv_len`.
    Mixed,
}

/// Block sizes of one case, in tokens: `(bq, bkv, bq_compute, bkv_compute)` — the q and kv blocks
/// fetched per pipeline step and the sub-tiles computed at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSizes {
    pub bq: usize,
    pub bkv: usize,
    pub bq_compute: usize,
    pub bkv_compute: usize,
}

/// Options of a ragged paged attention call (all static).
#[derive(Clone, Debug, PartialEq)]
pub struct RpaOptions {
    /// Causal masking (`use_causal_mask`); off: every query sees all `kv_len` keys.
    pub causal: bool,
    /// Write the new K/V into the cache (false: "KV-share", read everything from the cache).
    pub update_kv_cache: bool,
    /// Multiplies `Q·Kᵀ`.
    pub sm_scale: f64,
    /// Keep only the `W` most recent keys (including the token itself).
    pub sliding_window: Option<usize>,
    /// `cap · tanh(s / cap)` on the scaled logits.
    pub soft_cap: Option<f64>,
    /// Value of masked logits; default: the most negative finite value of `acc_dtype`.
    pub mask_value: Option<f64>,
    /// Dtype the softmax statistics and the accumulator are kept in between steps (`out_dtype`
    /// upstream, which defaults to bf16 for bf16 queries to save VPU work); default f32, which keeps
    /// outputs within a few bf16 ulps of the f64 reference.
    pub acc_dtype: Option<DType>,
    /// Quantize queries to the cache dtype with this scale (`q / q_scale`, clipped).
    pub q_scale: Option<f64>,
    pub k_scale: Option<f64>,
    pub v_scale: Option<f64>,
    /// Static q_len of the prefill bucket; without it the bucket must be empty.
    pub chunk_prefill_size: Option<usize>,
    pub decode_blocks: Option<BlockSizes>,
    pub prefill_blocks: Option<BlockSizes>,
    pub mixed_blocks: Option<BlockSizes>,
    pub vmem_limit: Option<usize>,
    /// Validate the metadata before every launch (the kernels run without bounds checks).
    pub validate: bool,
    /// Also return the log-sum-exp `m + ln Σ exp(s - m)` of each (token, query head)'s scaled logits
    /// (f32 `[tokens, Hq]`), e.g. to merge partial attentions in context-parallel decode.
    pub return_lse: bool,
    /// Attention sinks (gpt-oss): one learned logit per query head (f32 `[Hq]`) that joins every
    /// softmax's denominator, as a key no value belongs to: `out = Σ_j e^{s_j} v_j / (e^{sink} +
    /// Σ_j e^{s_j})`. The log-sum-exp includes it.
    pub attention_sink: Option<Array>,
}

impl Default for RpaOptions {
    fn default() -> Self {
        RpaOptions {
            causal: true,
            update_kv_cache: true,
            sm_scale: 1.0,
            sliding_window: None,
            soft_cap: None,
            mask_value: None,
            acc_dtype: None,
            q_scale: None,
            k_scale: None,
            v_scale: None,
            chunk_prefill_size: None,
            decode_blocks: None,
            prefill_blocks: None,
            mixed_blocks: None,
            vmem_limit: None,
            validate: true,
            return_lse: false,
            attention_sink: None,
        }
    }
}

impl RpaOptions {
    /// The dtype of the softmax statistics and accumulator.
    pub fn acc_dtype(&self) -> DType {
        self.acc_dtype.unwrap_or(DType::F32)
    }

    /// The value of masked logits: `mask_value`, else the most negative finite value of the
    /// accumulator dtype.
    pub fn mask_value(&self) -> f64 {
        self.mask_value.unwrap_or(self.acc_dtype().finite_range().0)
    }
}

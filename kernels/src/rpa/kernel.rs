//! The Ragged Paged Attention kernel, written in the rpa DSL.
//!
//! One source, three compiled specialisations (`RpaCase`: decode, prefill, mixed), each one launch
//! over its range of sequences. Read it top to bottom as the paper's algorithm:
//!
//! 1. **Loop nest** — sequences → q blocks → kv blocks → compute sub-tiles → kv heads.
//! 2. **Fine-grained ragged fetch** — a kv block is the part already in the cache, fetched page by
//!    page with exact (runtime) sizes, plus the part that is new, fetched straight from the new K/V.
//!    Only rows a query can see are fetched: kv blocks in the causal future or outside the sliding
//!    window are skipped.
//! 3. **Software pipeline** — while kv block `n` is computed, block `n + 1` (which may belong to the
//!    next q block or the next sequence) is already on its way into the other VMEM slot; q blocks and
//!    output blocks are double-buffered the same way.
//! 4. **Online softmax** — FlashAttention's running max `m`, sum `l` and accumulator, per kv head,
//!    with the GQA query heads of a kv head folded into the matmul rows. Blocks are computed in
//!    (q sub-tile, kv sub-tile) pairs; pairs with no visible (query, key) pair are skipped.
//! 5. **Fused KV-cache update** — after the last q block that uses a kv block, its new rows are
//!    written from VMEM into their cache pages; a slot is not refilled before that write has landed.
//! 6. **Finalize** — `acc / l` per q block into a double-buffered output block, sent with its exact
//!    token count; optionally the log-sum-exp `m + ln l` per (token, head) as well.
//!
//! Layouts (prepared by the launcher): queries and output `[Hkv, T, G, Dp]` (kv-head-major, head_dim
//! padded to 128 lanes), new K/V merged like cache rows `[T, C/p, p, Dp]`, the cache
//! `[pages, page_size, C/p, p, Dp]` with `C = 2·Hkv` combined heads (K of head h at `2h`, V at
//! `2h + 1`) packed `p` to a 32-bit word.

use super::{BlockSizes, RpaCase};
use rpa_dsl::prelude::*;

/// Everything the kernel is specialised on (comptime).
#[derive(Clone, Debug, PartialEq)]
pub struct RpaConfig {
    pub case: RpaCase,
    pub blocks: BlockSizes,
    pub max_num_seqs: usize,
    pub pages_per_seq: usize,
    pub total_pages: usize,
    pub page_size: usize,
    pub max_num_tokens: usize,
    pub num_kv_heads: usize,
    /// Query heads per kv head (GQA group).
    pub group: usize,
    /// head_dim padded to 128 lanes.
    pub head_dim: usize,
    /// The model's head_dim (lanes past it are padding, whatever they hold).
    pub head_dim_actual: usize,
    pub q_dtype: DType,
    pub kv_dtype: DType,
    pub causal: bool,
    pub update_kv_cache: bool,
    /// `sm_scale · k_scale · q_scale`, applied to the logits.
    pub logit_scale: f64,
    pub v_scale: Option<f64>,
    pub q_scale: Option<f64>,
    pub sliding_window: Option<usize>,
    pub soft_cap: Option<f64>,
    pub mask_value: f64,
    /// Dtype of `m`, `l` and the accumulator in VMEM (computation is f32).
    pub acc_dtype: DType,
    /// Static q_len of the prefill case.
    pub chunk_prefill_size: usize,
    pub vmem_limit: Option<usize>,
    /// Also write the log-sum-exp of each (token, query head)'s logits.
    pub return_lse: bool,
    /// Attention sinks: the `sinks` input holds one logit per query head, the softmax state of
    /// each row starts from it (`m = sink`, `l = 1`).
    pub sinks: bool,
    /// Context parallel: this call holds a contiguous range of each sequence's keys, and
    /// `kv_lens[max_num_seqs + s]` says how many of sequence `s`'s keys come after it (held by
    /// other devices). Queries keep their absolute distance to the keys: causal mask, sliding
    /// window and the new tokens' rows follow. A row with no visible key gets output 0 and
    /// log-sum-exp −∞.
    pub keys_after: bool,
}

impl RpaConfig {
    /// Combined K/V heads per cache row, rounded up to the packing.
    pub fn combined_heads(&self) -> usize {
        (2 * self.num_kv_heads).div_ceil(self.kv_dtype.packing()) * self.kv_dtype.packing()
    }
    /// 32-bit words per cache row and lane (`C / p`).
    pub fn row_words(&self) -> usize {
        self.combined_heads() / self.kv_dtype.packing()
    }
    pub fn name(&self) -> String {
        let case = match self.case {
            RpaCase::Decode => "decode",
            RpaCase::Prefill => "prefill",
            RpaCase::Mixed => "mixed",
        };
        let b = self.blocks;
        format!("rpa_{case}_p{}_bq{}_{}_bkv{}_{}", self.page_size, b.bq, b.bq_compute, b.bkv, b.bkv_compute)
    }
}

// Slots of the `state` SMEM scratch: pipeline bookkeeping that lives across loop iterations.
const KV_SLOT: usize = 0; // which bkv slot holds the current kv block
const Q_SLOT: usize = 1; // which bq slot holds the current q block
const O_SLOT: usize = 2; // which bo slot the next output block uses
const KV_ROWS: usize = 3; // [3, 4]: rows fetched into each bkv slot (the wait's byte count)
const Q_ROWS: usize = 5; // [5, 6]: tokens fetched into each bq slot
const O_ROWS: usize = 7; // [7, 8]: tokens being sent from each bo slot
const UPD_ROWS: usize = 9; // [9, 10]: rows being written to the cache from each bkv slot
pub(crate) const STATE_LEN: usize = 11;

// Rows of the semaphore array.
const SEM_KV: usize = 0;
const SEM_Q: usize = 1;
const SEM_O: usize = 2;
const SEM_UPD: usize = 3;

/// Context parallel: how many keys of sequence `seq + next` come after this call's (see
/// [`RpaConfig::keys_after`]); emits nothing without context parallelism.
fn keys_after(cfg: &RpaConfig, kv_lens: Ref<Smem>, seq: Scalar, next: i32) -> Option<Scalar> {
    cfg.keys_after.then(|| kv_lens.get(seq + (cfg.max_num_seqs as i32 + next)))
}

/// `x + after`, or `x` without context parallelism.
fn shifted(x: Scalar, after: Option<Scalar>) -> Scalar {
    match after {
        Some(a) => x + a,
        None => x,
    }
}

/// Where a sequence's tokens are: `(q_start, q_len, kv_len)`.
#[tpu_fn]
fn seq_bounds(cfg: &RpaConfig, kv_lens: Ref<Smem>, cu_q_lens: Ref<Smem>, seq: Scalar) -> (Scalar, Scalar, Scalar) {
    let q_start = cu_q_lens.get(seq);
    let q_len = match cfg.case {
        RpaCase::Decode => Scalar::i32(1),
        RpaCase::Prefill => Scalar::i32(cfg.chunk_prefill_size as i32),
        RpaCase::Mixed => cu_q_lens.get(seq + 1) - q_start,
    };
    (q_start, q_len, kv_lens.get(seq))
}

/// The kv blocks q block `bq_idx` needs: `[start, end)`. Blocks in the causal future of the whole
/// q block, or entirely before the sliding window of its first query, are skipped.
#[tpu_fn]
fn kv_block_range(
    cfg: &RpaConfig,
    q_len: Scalar,
    kv_len: Scalar,
    after: Option<Scalar>,
    bq_idx: Scalar,
) -> (Scalar, Scalar) {
    let bq = cfg.blocks.bq as i32;
    let bkv = cfg.blocks.bkv as i32;
    let cached_len = shifted(kv_len - q_len, after);
    let visible_end = if cfg.causal { min(kv_len, cached_len + (bq_idx + 1) * bq) } else { kv_len };
    let end = cdiv(visible_end, bkv);
    let start = match cfg.sliding_window {
        Some(w) => max(cached_len + bq_idx * bq - (w as i32 - 1), 0) / bkv,
        None => Scalar::i32(0),
    };
    if cfg.keys_after {
        // A q block may see none of this call's keys; it still takes one (empty) kv block, as the
        // pipeline prefetches one per q block.
        (start, max(end, start + 1))
    } else {
        (start, end)
    }
}

/// How many rows of kv block `bkv_idx` the q block needs (up to its causal horizon).
#[tpu_fn]
fn kv_block_rows(
    cfg: &RpaConfig,
    (q_len, kv_len, after): (Scalar, Scalar, Option<Scalar>),
    bq_idx: Scalar,
    bkv_idx: Scalar,
) -> Scalar {
    let bq = cfg.blocks.bq as i32;
    let bkv = cfg.blocks.bkv as i32;
    let visible_end = if cfg.causal { min(kv_len, shifted(kv_len - q_len, after) + (bq_idx + 1) * bq) } else { kv_len };
    let rows = min(visible_end - bkv_idx * bkv, bkv);
    if cfg.keys_after {
        max(rows, 0)
    } else {
        rows
    }
}

/// Starts fetching kv block `bkv_idx` of `seq` (as q block `bq_idx` sees it) into bkv slot `slot`:
/// the cached rows page by page, then the new rows from `kv_new`, all on one semaphore.
#[tpu_fn]
fn start_kv_fetch(
    cfg: &RpaConfig,
    (kv_lens, page_indices, cu_q_lens): (Ref<Smem>, Ref<Smem>, Ref<Smem>),
    (kv_new, kv_cache, bkv_buf): (Ref<Hbm>, Ref<Hbm>, Ref<Vmem>),
    (sems, state): (Sems, Ref<Smem>),
    (seq, bq_idx, bkv_idx, slot): (Scalar, Scalar, Scalar, Scalar),
) {
    let ps = cfg.page_size as i32;
    let bkv = cfg.blocks.bkv as i32;
    let (q_start, q_len, kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq);
    let after = keys_after(cfg, kv_lens, seq, 0);
    let cached_len = shifted(kv_len - q_len, after);
    let block_start = bkv_idx * bkv;
    let rows = kv_block_rows(cfg, (q_len, kv_len, after), bq_idx, bkv_idx);
    let from_cache = if cfg.update_kv_cache { min(max(cached_len - block_start, 0), rows) } else { rows };
    let from_new = rows - from_cache;
    let dst = bkv_buf.at(slot);
    let sem = sems.at(SEM_KV).at(slot);
    let last_page = last_page(cfg, kv_len);
    // A runtime loop over the block's pages (one DMA each): unrolled, it was most of the kernel.
    for i in 0..cfg.blocks.bkv / cfg.page_size {
        let size = min(max(from_cache - i * ps, 0), ps);
        let page_no = min(block_start / ps + i, last_page);
        let page = page_indices.get(seq * cfg.pages_per_seq as i32 + page_no);
        copy(kv_cache.at(page).ds(0, size), dst.ds(i * ps, size), sem).start();
    }
    // (With no new rows the start is clamped into range; the copy is empty.)
    let new_row = q_start + max(block_start + from_cache - cached_len, 0);
    let new_row = if cfg.keys_after { min(new_row, q_start + q_len) } else { new_row };
    copy(kv_new.ds(new_row, from_new), dst.ds(from_cache, from_new), sem).start();
    state.set(KV_ROWS + slot, rows);
}

/// The last page of a sequence's keys (context parallel: page 0 when this call holds none).
fn last_page(cfg: &RpaConfig, kv_len: Scalar) -> Scalar {
    let last = cdiv(kv_len, cfg.page_size as i32) - 1;
    if cfg.keys_after {
        max(last, 0)
    } else {
        last
    }
}

/// Waits for the kv block in `slot`: one wait for all of its rows' bytes.
#[tpu_fn]
fn wait_kv_fetch(bkv_buf: Ref<Vmem>, sems: Sems, state: Ref<Smem>, slot: Scalar) {
    let rows = state.get(KV_ROWS + slot);
    let block = bkv_buf.at(slot).ds(0, rows);
    copy(block, block, sems.at(SEM_KV).at(slot)).wait();
}

/// Waits for the cache update that is still reading `slot`, if any.
#[tpu_fn]
fn wait_cache_update(bkv_buf: Ref<Vmem>, sems: Sems, state: Ref<Smem>, slot: Scalar) {
    let rows = state.get(UPD_ROWS + slot);
    if rows > 0 {
        let block = bkv_buf.at(slot).ds(0, rows);
        copy(block, block, sems.at(SEM_UPD).at(slot)).wait();
        state.set(UPD_ROWS + slot, 0);
    }
}

/// Fused KV-cache update: writes the new rows of the kv block in `slot` (`bkv_idx` of `seq`) from
/// VMEM into their pages.
#[tpu_fn]
fn start_cache_update(
    cfg: &RpaConfig,
    (kv_lens, page_indices, cu_q_lens): (Ref<Smem>, Ref<Smem>, Ref<Smem>),
    (kv_cache_out, bkv_buf): (Ref<Hbm>, Ref<Vmem>),
    (sems, state): (Sems, Ref<Smem>),
    (seq, bkv_idx, slot): (Scalar, Scalar, Scalar),
) {
    let ps = cfg.page_size as i32;
    let bkv = cfg.blocks.bkv as i32;
    let (_q_start, q_len, kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq);
    let block_start = bkv_idx * bkv;
    let block_end = min(block_start + bkv, kv_len);
    // New rows are the positions [kv_len - q_len, kv_len); those of this block:
    let first_new = max(shifted(kv_len - q_len, keys_after(cfg, kv_lens, seq, 0)), block_start);
    let src = bkv_buf.at(slot);
    let sem = sems.at(SEM_UPD).at(slot);
    let last_page = last_page(cfg, kv_len);
    for i in 0..cfg.blocks.bkv / cfg.page_size {
        let page_start = block_start + i * ps;
        let lo = min(max(first_new, page_start), page_start + ps);
        let size = max(min(block_end, page_start + ps) - lo, 0);
        let page_no = min(page_start / ps, last_page);
        let page = page_indices.get(seq * cfg.pages_per_seq as i32 + page_no);
        copy(src.ds(lo - block_start, size), kv_cache_out.at(page).ds(lo - page_start, size), sem).start();
    }
    state.set(UPD_ROWS + slot, max(block_end - first_new, 0));
}

/// The next kv block of the pipeline after `(seq, bq_idx, bkv_idx)`: the next block of this q
/// block, else the first block of the next q block, else of the next sequence. `valid` is false at
/// the very end.
#[tpu_fn]
fn next_kv_block(
    cfg: &RpaConfig,
    (kv_lens, cu_q_lens): (Ref<Smem>, Ref<Smem>),
    (seq, bq_idx, bkv_idx, seq_end): (Scalar, Scalar, Scalar, Scalar),
) -> (Scalar, Scalar, Scalar, Scalar) {
    let (_q_start, q_len, kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq);
    let after = keys_after(cfg, kv_lens, seq, 0);
    let (_start, end) = kv_block_range(cfg, q_len, kv_len, after, bq_idx);
    let num_bq = cdiv(q_len, cfg.blocks.bq as i32);
    let mut n_seq = seq;
    let mut n_bq = bq_idx;
    let mut n_bkv = bkv_idx + 1;
    let mut valid = Scalar::bool(true);
    if bkv_idx + 1 >= end {
        if bq_idx + 1 < num_bq {
            n_bq = bq_idx + 1;
            let (s, _e) = kv_block_range(cfg, q_len, kv_len, after, bq_idx + 1);
            n_bkv = s;
        } else {
            n_seq = seq + 1;
            n_bq = Scalar::i32(0);
            if seq + 1 < seq_end {
                let (_qs, nq_len, nkv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq + 1);
                let n_after = keys_after(cfg, kv_lens, seq, 1);
                let (s, _e) = kv_block_range(cfg, nq_len, nkv_len, n_after, n_bq);
                n_bkv = s;
            } else {
                valid = Scalar::bool(false);
            }
        }
    }
    (n_seq, n_bq, n_bkv, valid)
}

/// Starts fetching the tokens of q block `bq_idx` of `seq` into bq slot `slot` (exact count).
#[tpu_fn]
fn start_q_fetch(
    cfg: &RpaConfig,
    (kv_lens, cu_q_lens): (Ref<Smem>, Ref<Smem>),
    (q, bq_buf): (Ref<Hbm>, Ref<Vmem>),
    (sems, state): (Sems, Ref<Smem>),
    (seq, bq_idx, slot): (Scalar, Scalar, Scalar),
) {
    let bq = cfg.blocks.bq as i32;
    let (q_start, q_len, _kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq);
    let tokens = min(q_len - bq_idx * bq, bq);
    let block = bq_buf.at(slot).view(&[full_dim(), ds(0, tokens)]);
    copy(q.view(&[full_dim(), ds(q_start + bq_idx * bq, tokens)]), block, sems.at(SEM_Q).at(slot)).start();
    state.set(Q_ROWS + slot, tokens);
}

/// Waits for the q block in `slot`.
#[tpu_fn]
fn wait_q_fetch(bq_buf: Ref<Vmem>, sems: Sems, state: Ref<Smem>, slot: Scalar) {
    let block = bq_buf.at(slot).view(&[full_dim(), ds(0, state.get(Q_ROWS + slot))]);
    copy(block, block, sems.at(SEM_Q).at(slot)).wait();
}

/// The q block after `(seq, bq_idx)`: the next one of this sequence, else the first of the next
/// sequence. `valid` is false at the end of the case.
#[tpu_fn]
fn next_q_block(
    cfg: &RpaConfig,
    (kv_lens, cu_q_lens): (Ref<Smem>, Ref<Smem>),
    (seq, bq_idx, seq_end): (Scalar, Scalar, Scalar),
) -> (Scalar, Scalar, Scalar) {
    let (_q_start, q_len, _kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq);
    let last_of_seq = bq_idx + 1 >= cdiv(q_len, cfg.blocks.bq as i32);
    let n_seq = select(last_of_seq, seq + 1, seq);
    let n_bq = select(last_of_seq, 0, bq_idx + 1);
    (n_seq, n_bq, n_seq < seq_end)
}

/// Whether a q sub-tile (queries at positions `[q_first, q_last]`) and a kv sub-tile (keys at
/// `[k_first, k_last]`) have any pair that may attend; if not, their step is skipped.
#[tpu_fn]
fn sub_tiles_meet(cfg: &RpaConfig, (q_first, q_last): (Scalar, Scalar), (k_first, k_last): (Scalar, Scalar)) -> Scalar {
    let not_future = if cfg.causal && cfg.case != RpaCase::Decode { k_first <= q_last } else { Scalar::bool(true) };
    match cfg.sliding_window {
        Some(w) => not_future & (k_last > q_first - w as i32),
        None => not_future,
    }
}

/// Waits for the output block (and log-sum-exp block) still being sent from bo slot `slot`, if any.
#[tpu_fn]
fn wait_output(bo_buf: Ref<Vmem>, lse_buf: Option<Ref<Vmem>>, sems: Sems, state: Ref<Smem>, slot: Scalar) {
    let pending = state.get(O_ROWS + slot);
    if pending > 0 {
        let sent = bo_buf.at(slot).view(&[full_dim(), ds(0, pending)]);
        copy(sent, sent, sems.at(SEM_O).at(slot)).wait();
        if let Some(lse_buf) = lse_buf {
            let sent = lse_buf.at(slot).view(&[full_dim(), ds(0, pending)]);
            copy(sent, sent, sems.at(SEM_O).at(slot)).wait();
        }
        state.set(O_ROWS + slot, 0);
    }
}

/// Unpacks element `part` of each 32-bit word (the `p` packed dtype values of a cache row) as f32.
#[tpu_fn]
fn unpack(words: Tile, part: usize, dtype: DType) -> Tile {
    let bits = dtype.bits();
    if bits == 32 {
        words.bitcast(dtype)
    } else if dtype == Bf16 {
        // A bf16 is the high half of the f32 with the same value.
        if part == 0 {
            (words << 16u32).bitcast(F32)
        } else {
            (words & 0xffff_0000u32).bitcast(F32)
        }
    } else {
        let narrow = (words >> (part * bits) as u32) & ((1u32 << bits) - 1);
        narrow.cast(dtype.same_width_uint()).bitcast(dtype).cast(F32)
    }
}

/// K and V rows `[rows_start, rows_start + n)` of kv head `h` from a bkv slot, as f32 `[n, Dp]`:
/// a strided load picks the head's word in every token row (no relayout), then unpacking splits
/// the word into K and V.
#[tpu_fn]
fn load_kv(cfg: &RpaConfig, slot_buf: Ref<Vmem>, h: usize, rows_start: Scalar, n: usize) -> (Tile, Tile) {
    let p = cfg.kv_dtype.packing();
    let words = cfg.row_words();
    let dp = cfg.head_dim;
    let first = rows_start * words as i32;
    let (k, v) = if p == 1 {
        let rows = slot_buf.reshape(&[cfg.blocks.bkv * words, dp]);
        let k = rows.load_strided(first + (2 * h) as i32, n, words);
        let v = rows.load_strided(first + (2 * h + 1) as i32, n, words);
        (k.cast(F32), v.cast(F32))
    } else {
        let rows = slot_buf.bitcast(U32).reshape(&[cfg.blocks.bkv * words, dp]);
        let w = rows.load_strided(first + ((2 * h) / p) as i32, n, words);
        (unpack(w, (2 * h) % p, cfg.kv_dtype), unpack(w, (2 * h + 1) % p, cfg.kv_dtype))
    };
    if cfg.head_dim_actual < dp {
        // Padding lanes may hold anything (even NaN): zero them so they add nothing.
        let real = iota(I32, &[n, dp], 1) < cfg.head_dim_actual as i32;
        (select(real, k, 0.0), select(real, v, 0.0))
    } else {
        (k, v)
    }
}

/// Which (query row, key column) pairs of a sub-tile may attend: the key was fetched, and it is
/// not in the query's future (causal) nor before its sliding window. Rows are GQA-folded: row `r`
/// is query token `r / G`, at position `q_pos0 + r / G`; column `c` is key position `k_pos0 + c`.
#[tpu_fn]
fn visibility(
    cfg: &RpaConfig,
    (q_pos0, k_pos0, k_end): (Scalar, Scalar, Scalar),
    (rows, cols): (usize, usize),
) -> Tile {
    let q_pos = iota(I32, &[rows, cols], 0) / cfg.group as i32 + q_pos0;
    let k_pos = iota(I32, &[rows, cols], 1) + k_pos0;
    let mut visible = k_pos < k_end;
    if cfg.causal && cfg.case != RpaCase::Decode {
        visible = visible & (k_pos <= q_pos);
    }
    if let Some(w) = cfg.sliding_window {
        visible = visible & (k_pos > q_pos - w as i32);
    }
    visible
}

/// The scaled, soft-capped, masked logits `q · kᵀ` of one (q sub-tile, kv sub-tile, kv head).
#[tpu_fn]
fn logits(cfg: &RpaConfig, q: Tile, k: Tile, visible: Tile) -> Tile {
    let mut s = matmul_t(q, k) * cfg.logit_scale;
    if let Some(cap) = cfg.soft_cap {
        s = (s * (1.0 / cap)).tanh() * cap;
    }
    select(visible, s, cfg.mask_value as f32)
}

/// One FlashAttention step: the running max `m`, sum `l` and accumulator of a q sub-tile's rows
/// absorb the logits `s` and values `v` of one kv sub-tile (`m`, `l` are lane-replicated).
#[tpu_fn]
fn online_softmax_step(cfg: &RpaConfig, s: Tile, v: Tile, m_ref: Ref<Vmem>, l_ref: Ref<Vmem>, acc_ref: Ref<Vmem>) {
    let rows = s.shape()[0];
    let m_prev = m_ref.load().slice(&[0, 0], &[rows, 1]).cast(F32);
    let l_prev = l_ref.load().slice(&[0, 0], &[rows, 1]).cast(F32);
    let m_new = max(m_prev, s.reduce_max(1));
    let p = (s - m_new).exp();
    let alpha = (m_prev - m_new).exp();
    let l_new = alpha * l_prev + p.reduce_sum(1);
    let mut pv = matmul(p, v);
    if let Some(vs) = cfg.v_scale {
        pv = pv * vs;
    }
    let acc = cfg.acc_dtype;
    acc_ref.store((acc_ref.load().cast(F32) * alpha + pv).cast(acc));
    m_ref.store(m_new.broadcast_to(&[rows, 128]).cast(acc));
    l_ref.store(l_new.broadcast_to(&[rows, 128]).cast(acc));
}

/// Ragged paged attention over the sequences of one case, with the fused KV-cache update.
#[tpu_kernel(name = cfg.name(), vmem_limit = cfg.vmem_limit)]
pub fn rpa_kernel(
    #[comptime] cfg: &RpaConfig,
    kv_lens: Prefetch![i32, [cfg.max_num_seqs * (1 + cfg.keys_after as usize)]],
    page_indices: Prefetch![i32, [cfg.max_num_seqs * cfg.pages_per_seq]],
    cu_q_lens: Prefetch![i32, [cfg.max_num_seqs + 1]],
    distribution: Prefetch![i32, [3]],
    q: In![cfg.q_dtype, [cfg.num_kv_heads, cfg.max_num_tokens, cfg.group, cfg.head_dim]],
    kv_new: In![cfg.kv_dtype, [cfg.max_num_tokens, cfg.row_words(), cfg.kv_dtype.packing(), cfg.head_dim]],
    kv_cache: In![
        cfg.kv_dtype,
        [cfg.total_pages, cfg.page_size, cfg.row_words(), cfg.kv_dtype.packing(), cfg.head_dim]
    ],
    #[when(cfg.sinks)]
    #[block([cfg.num_kv_heads, cfg.group, 128], || [0, 0, 0])]
    sinks: In![f32, [cfg.num_kv_heads, cfg.group, 128]],
    #[alias(q)] o: Out![cfg.q_dtype, [cfg.num_kv_heads, cfg.max_num_tokens, cfg.group, cfg.head_dim]],
    #[alias(kv_cache)] kv_cache_out: Out![
        cfg.kv_dtype,
        [cfg.total_pages, cfg.page_size, cfg.row_words(), cfg.kv_dtype.packing(), cfg.head_dim]
    ],
    #[when(cfg.return_lse)] lse: Out![f32, [cfg.num_kv_heads, cfg.max_num_tokens, cfg.group, 128]],
    bkv_buf: Vmem![cfg.kv_dtype, [2, cfg.blocks.bkv, cfg.row_words(), cfg.kv_dtype.packing(), cfg.head_dim]],
    bq_buf: Vmem![cfg.q_dtype, [2, cfg.num_kv_heads, cfg.blocks.bq, cfg.group, cfg.head_dim]],
    bo_buf: Vmem![cfg.q_dtype, [2, cfg.num_kv_heads, cfg.blocks.bq, cfg.group, cfg.head_dim]],
    #[when(cfg.return_lse)] lse_buf: Vmem![f32, [2, cfg.num_kv_heads, cfg.blocks.bq, cfg.group, 128]],
    m_ref: Vmem![cfg.acc_dtype, [cfg.num_kv_heads, cfg.blocks.bq * cfg.group, 128]],
    l_ref: Vmem![cfg.acc_dtype, [cfg.num_kv_heads, cfg.blocks.bq * cfg.group, 128]],
    acc_ref: Vmem![cfg.acc_dtype, [cfg.num_kv_heads, cfg.blocks.bq * cfg.group, cfg.head_dim]],
    sems: DmaSems<4, 2>,
    state: Smem![i32, [STATE_LEN]],
) {
    let bq = cfg.blocks.bq;
    let bkv = cfg.blocks.bkv;
    let (g, dp, hkv) = (cfg.group, cfg.head_dim, cfg.num_kv_heads);
    let (seq_begin, seq_end) = match cfg.case {
        RpaCase::Decode => (Scalar::i32(0), distribution.get(0)),
        RpaCase::Prefill => (distribution.get(0), distribution.get(1)),
        RpaCase::Mixed => (distribution.get(1), distribution.get(2)),
    };
    let smem = (kv_lens, page_indices, cu_q_lens);
    let hbm = (kv_new, kv_cache, bkv_buf);
    let sync = (sems, state);
    #[unroll]
    for i in 0..STATE_LEN {
        state.set(i, 0);
    }

    // Prologue: the first kv block and the first q block of the case.
    if seq_begin < seq_end {
        let zero = Scalar::i32(0);
        let (_qs, q_len, kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq_begin);
        let after = keys_after(cfg, kv_lens, seq_begin, 0);
        let (first, _end) = kv_block_range(cfg, q_len, kv_len, after, zero);
        start_kv_fetch(cfg, smem, hbm, sync, (seq_begin, zero, first, zero));
        start_q_fetch(cfg, (kv_lens, cu_q_lens), (q, bq_buf), sync, (seq_begin, zero, zero));
    }

    for seq in seq_begin..seq_end {
        let (q_start, q_len, kv_len) = seq_bounds(cfg, kv_lens, cu_q_lens, seq);
        let after = keys_after(cfg, kv_lens, seq, 0);
        let num_bq = cdiv(q_len, bq as i32);
        for bq_idx in 0..num_bq {
            // The q block: prefetch the next one into the other slot, wait for this one.
            let q_slot = state.get(Q_SLOT);
            let (n_seq, n_bq, more_q) = next_q_block(cfg, (kv_lens, cu_q_lens), (seq, bq_idx, seq_end));
            if more_q {
                start_q_fetch(cfg, (kv_lens, cu_q_lens), (q, bq_buf), sync, (n_seq, n_bq, 1 - q_slot));
            }
            wait_q_fetch(bq_buf, sems, state, q_slot);
            let tok0 = q_start + bq_idx * bq as i32;
            let tokens = state.get(Q_ROWS + q_slot);
            // Position of the q block's first query in its sequence.
            let q_pos0 = shifted(kv_len - q_len, after) + bq_idx * bq as i32;

            // Online softmax state, per kv head, for the q sub-tiles that hold tokens.
            let bq_c = cfg.blocks.bq_compute;
            #[unroll]
            for qc in 0..bq / bq_c {
                if qc * bq_c < tokens {
                    let rows_q = ds(qc * bq_c * g, bq_c * g);
                    let acc = cfg.acc_dtype;
                    if let Some(sinks) = sinks {
                        // Each row starts from its query head's sink (row r is head r % G): the
                        // sink is the running max, and adds e^0 = 1 to the sum.
                        #[unroll]
                        for h in 0..hkv {
                            let m0 = sinks.at(h).load().broadcast_to(&[bq_c, g, 128]).reshape(&[bq_c * g, 128]);
                            m_ref.at(h).view(&[rows_q]).store(m0.cast(acc));
                        }
                        l_ref.view(&[full_dim(), rows_q]).store(full(&[hkv, bq_c * g, 128], 1.0f32, acc));
                    } else {
                        m_ref.view(&[full_dim(), rows_q]).store(full(&[hkv, bq_c * g, 128], f32::NEG_INFINITY, acc));
                        l_ref.view(&[full_dim(), rows_q]).store(zeros(&[hkv, bq_c * g, 128], acc));
                    }
                    acc_ref.view(&[full_dim(), rows_q]).store(zeros(&[hkv, bq_c * g, dp], acc));
                }
            }

            let (kv_start, kv_end) = kv_block_range(cfg, q_len, kv_len, after, bq_idx);
            for bkv_idx in kv_start..kv_end {
                let slot = state.get(KV_SLOT);
                // Pipeline: start the next kv block into the other slot (once its pending cache
                // write has landed), then wait for this one.
                let (n_seq, n_bq, n_bkv, more) =
                    next_kv_block(cfg, (kv_lens, cu_q_lens), (seq, bq_idx, bkv_idx, seq_end));
                if more {
                    wait_cache_update(bkv_buf, sems, state, 1 - slot);
                    start_kv_fetch(cfg, smem, hbm, sync, (n_seq, n_bq, n_bkv, 1 - slot));
                }
                wait_kv_fetch(bkv_buf, sems, state, slot);
                let rows = state.get(KV_ROWS + slot);
                let slot_buf = bkv_buf.at(slot);
                let k_end = bkv_idx * bkv as i32 + rows;

                // Compute sub-tiles: (q sub-tile, kv sub-tile) pairs that hold no visible pair
                // — past the fetched rows or tokens, in the causal future, before the window — are skipped.
                let bkv_c = cfg.blocks.bkv_compute;
                // A runtime loop over the kv sub-tiles (as Pallas's `fori_loop`): unrolled, with
                // the q sub-tiles and the heads inside, it made most of the kernel's code.
                for c in 0..bkv / bkv_c {
                    let c_row = c * bkv_c as i32;
                    let k_pos0 = bkv_idx * bkv as i32 + c_row;
                    let k_last = min(k_pos0 + bkv_c as i32, k_end) - 1;
                    // Rows past the fetched ones hold stale data: V is zeroed there so 0 · NaN cannot leak.
                    let fetched = iota(I32, &[bkv_c, dp], 0) + c_row < rows;
                    #[unroll]
                    for qc in 0..bq / bq_c {
                        let q_first = q_pos0 + (qc * bq_c) as i32;
                        let q_last = q_pos0 + min(tokens, ((qc + 1) * bq_c) as i32) - 1;
                        let live = c_row < rows && qc * bq_c < tokens;
                        if live && sub_tiles_meet(cfg, (q_first, q_last), (k_pos0, k_last)) {
                            let visible = visibility(cfg, (q_first, k_pos0, k_end), (bq_c * g, bkv_c));
                            let rows_q = ds(qc * bq_c * g, bq_c * g);
                            #[unroll]
                            for h in 0..hkv {
                                let qh = bq_buf.at(q_slot).at(h).ds(qc * bq_c, bq_c).load();
                                let qh = qh.reshape(&[bq_c * g, dp]).cast(F32);
                                let (k, v) = load_kv(cfg, slot_buf, h, c_row, bkv_c);
                                let v = select(fetched, v, 0.0);
                                let s = logits(cfg, qh, k, visible);
                                let (m_h, l_h) = (m_ref.at(h).view(&[rows_q]), l_ref.at(h).view(&[rows_q]));
                                online_softmax_step(cfg, s, v, m_h, l_h, acc_ref.at(h).view(&[rows_q]));
                            }
                        }
                    }
                }

                // Fused KV-cache update, after the last q block that uses this kv block.
                if cfg.update_kv_cache {
                    let last_user = if bq_idx + 1 < num_bq {
                        let (next_start, _e) = kv_block_range(cfg, q_len, kv_len, after, bq_idx + 1);
                        next_start > bkv_idx
                    } else {
                        Scalar::bool(true)
                    };
                    if last_user {
                        start_cache_update(cfg, smem, (kv_cache_out, bkv_buf), sync, (seq, bkv_idx, slot));
                    }
                }
                state.set(KV_SLOT, 1 - slot);
            }

            // Finalize the q block: acc / l into the output buffer, then send it.
            let o_slot = state.get(O_SLOT);
            wait_output(bo_buf, lse_buf, sems, state, o_slot);
            #[unroll]
            for qc in 0..bq / bq_c {
                if qc * bq_c < tokens {
                    let rows_q = ds(qc * bq_c * g, bq_c * g);
                    #[unroll]
                    for h in 0..hkv {
                        let l = l_ref.at(h).view(&[rows_q]).load().slice(&[0, 0], &[bq_c * g, 1]).cast(F32);
                        // A row that saw no key (context parallel) has acc = 0: output 0, not 0 / 0.
                        let l = if cfg.keys_after { select(l > 0.0, l, 1.0) } else { l };
                        let out = acc_ref.at(h).view(&[rows_q]).load().cast(F32) / l;
                        let out = out.cast(cfg.q_dtype).reshape(&[bq_c, g, dp]);
                        bo_buf.at(o_slot).at(h).ds(qc * bq_c, bq_c).store(out);
                        if let Some(lse_buf) = lse_buf {
                            // log Σ exp(s) = m + log l (natural log, of the scaled logits).
                            let m = m_ref.at(h).view(&[rows_q]).load().cast(F32);
                            let lse_rows = m + l_ref.at(h).view(&[rows_q]).load().cast(F32).log();
                            lse_buf.at(o_slot).at(h).ds(qc * bq_c, bq_c).store(lse_rows.reshape(&[bq_c, g, 128]));
                        }
                    }
                }
            }
            let out_block = bo_buf.at(o_slot).view(&[full_dim(), ds(0, tokens)]);
            copy(out_block, o.view(&[full_dim(), ds(tok0, tokens)]), sems.at(SEM_O).at(o_slot)).start();
            if let (Some(lse), Some(lse_buf)) = (lse, lse_buf) {
                let lse_block = lse_buf.at(o_slot).view(&[full_dim(), ds(0, tokens)]);
                copy(lse_block, lse.view(&[full_dim(), ds(tok0, tokens)]), sems.at(SEM_O).at(o_slot)).start();
            }
            state.set(O_ROWS + o_slot, tokens);
            state.set(O_SLOT, 1 - o_slot);
            state.set(Q_SLOT, 1 - q_slot);
        }
    }

    // Epilogue: drain the output sends and cache writes still in flight.
    #[unroll]
    for s in 0..2 {
        let slot = Scalar::i32(s);
        wait_output(bo_buf, lse_buf, sems, state, slot);
        wait_cache_update(bkv_buf, sems, state, slot);
    }
}

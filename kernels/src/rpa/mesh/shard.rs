//! Global inputs → each device's inputs, and the devices' caches → the global cache.

use super::RpaMesh;
use crate::rpa::layout::{cache_index, kv_cache_shape};
use crate::rpa::reference::RpaInputs;
use crate::rpa::RpaOptions;
use rpa_dsl::Array;
use std::ops::Range;

/// One device's part of a call.
#[derive(Clone, Debug)]
pub struct DeviceShard {
    /// `(cp rank, tp rank)`.
    pub rank: (usize, usize),
    pub inputs: RpaInputs,
    pub opts: RpaOptions,
    /// With `cp > 1`: per sequence, its keys held by later cp ranks.
    pub keys_after: Option<Vec<i32>>,
    /// The global page id of each local cache page.
    pub pages: Vec<usize>,
    pub q_heads: Range<usize>,
    pub kv_heads: Range<usize>,
}

/// The keys of each sequence that cp rank `c` holds, as logical pages `[lo, hi)` and positions:
/// `cdiv(pages, cp)` contiguous pages per rank.
pub fn cp_pages(kv_len: usize, page_size: usize, cp: usize, c: usize) -> Range<usize> {
    let pages = kv_len.div_ceil(page_size);
    let chunk = pages.div_ceil(cp);
    (c * chunk).min(pages)..((c + 1) * chunk).min(pages)
}

/// Each device's inputs, in mesh order (`d = c·tp + t`).
pub fn shard_inputs(mesh: RpaMesh, x: &RpaInputs, opts: &RpaOptions) -> Vec<DeviceShard> {
    let plans: Vec<CpPlan> = (0..mesh.cp).map(|c| cp_plan(mesh, x, c)).collect();
    let local_pages = plans.iter().map(|p| p.pages.len()).max().unwrap_or(1).max(1);
    let mut shards = Vec::with_capacity(mesh.devices());
    for (c, plan) in plans.iter().enumerate() {
        for t in 0..mesh.tp {
            let q_heads = mesh.q_heads(x.num_q_heads(), t);
            let kv_heads = mesh.kv_heads(x.num_kv_heads(), t);
            let total = if mesh.cp == 1 { x.cache_shape()[0] } else { local_pages };
            let inputs = RpaInputs {
                queries: heads(&x.queries, q_heads.clone()),
                keys: heads(&x.keys, kv_heads.clone()),
                values: heads(&x.values, kv_heads.clone()),
                kv_cache: local_cache(x, &plan.pages, total, kv_heads.clone()),
                kv_lens: plan.kv_lens.clone(),
                page_indices: plan.page_indices.clone(),
                cu_q_lens: x.cu_q_lens.clone(),
                distribution: x.distribution,
            };
            let sinks = opts.attention_sink.as_ref().filter(|_| mesh.cp == 1);
            let opts = RpaOptions {
                return_lse: opts.return_lse || mesh.cp > 1,
                attention_sink: sinks.map(|s| heads_1d(s, q_heads.clone())),
                ..opts.clone()
            };
            let keys_after = plan.keys_after.clone();
            shards.push(DeviceShard {
                rank: (c, t),
                inputs,
                opts,
                keys_after,
                pages: plan.pages.clone(),
                q_heads,
                kv_heads,
            });
        }
    }
    shards
}

/// The metadata of cp rank `c`: its sequences' key ranges and its pages.
struct CpPlan {
    kv_lens: Vec<i32>,
    keys_after: Option<Vec<i32>>,
    page_indices: Vec<i32>,
    /// Global page id of each local page.
    pages: Vec<usize>,
}

fn cp_plan(mesh: RpaMesh, x: &RpaInputs, c: usize) -> CpPlan {
    let (n, pps, ps) = (x.max_num_seqs(), x.pages_per_seq(), x.page_size());
    if mesh.cp == 1 {
        let pages = (0..x.cache_shape()[0]).collect();
        return CpPlan { kv_lens: x.kv_lens.clone(), keys_after: None, page_indices: x.page_indices.clone(), pages };
    }
    let local_pps = pps.div_ceil(mesh.cp);
    let (mut kv_lens, mut after) = (vec![0; n], vec![0; n]);
    let mut page_indices = vec![0; n * local_pps];
    let mut pages: Vec<usize> = Vec::new();
    for b in 0..x.distribution[2] as usize {
        let kv_len = x.kv_lens[b] as usize;
        let range = cp_pages(kv_len, ps, mesh.cp, c);
        let (lo, hi) = ((range.start * ps).min(kv_len), (range.end * ps).min(kv_len));
        kv_lens[b] = (hi - lo) as i32;
        after[b] = (kv_len - hi) as i32;
        for (i, p) in range.enumerate() {
            let global = x.page_indices[b * pps + p] as usize;
            let local = pages.iter().position(|&g| g == global).unwrap_or_else(|| {
                pages.push(global);
                pages.len() - 1
            });
            page_indices[b * local_pps + i] = local as i32;
        }
    }
    CpPlan { kv_lens, keys_after: Some(after), page_indices, pages }
}

/// `a[:, heads, :]` of a `[tokens, heads, D]` array.
fn heads(a: &Array, heads: Range<usize>) -> Array {
    let (t, h, d) = (a.shape()[0], a.shape()[1], a.shape()[2]);
    let n = heads.len();
    let mut bits = Vec::with_capacity(t * n * d);
    for tok in 0..t {
        bits.extend_from_slice(&a.bits()[(tok * h + heads.start) * d..(tok * h + heads.end) * d]);
    }
    Array::from_bits(a.dtype(), &[t, n, d], bits)
}

fn heads_1d(a: &Array, heads: Range<usize>) -> Array {
    Array::from_bits(a.dtype(), &[heads.len()], a.bits()[heads].to_vec())
}

/// A device's cache: global pages `pages` (then unused ones up to `total`), kv heads `heads`.
fn local_cache(x: &RpaInputs, pages: &[usize], total: usize, heads: Range<usize>) -> Array {
    let g = x.cache_shape();
    let dtype = x.kv_cache.dtype();
    let l = kv_cache_shape(total, g[1], heads.len(), x.head_dim(), dtype);
    let mut out = Array::zeros(dtype, &l);
    for_each_slot(&g, &l, pages, heads, |global, local| out.bits_mut()[local] = x.kv_cache.bits()[global]);
    out
}

/// Calls `f(global index, local index)` for every element of the local pages and heads.
fn for_each_slot(
    g: &[usize; 5],
    l: &[usize; 5],
    pages: &[usize],
    heads: Range<usize>,
    mut f: impl FnMut(usize, usize),
) {
    for (lp, &gp) in pages.iter().enumerate() {
        for row in 0..g[1] {
            for (lh, h) in heads.clone().enumerate() {
                for kv in 0..2 {
                    let (gi, li) = (cache_index(g, gp, row, 2 * h + kv, 0), cache_index(l, lp, row, 2 * lh + kv, 0));
                    for d in 0..g[4] {
                        f(gi + d, li + d);
                    }
                }
            }
        }
    }
}

/// The global cache after a call: `x.kv_cache` with each device's pages and heads written back.
pub fn unshard_cache<'a>(
    _mesh: RpaMesh,
    x: &RpaInputs,
    shards: &[DeviceShard],
    caches: impl Iterator<Item = &'a Array>,
) -> Array {
    let mut out = x.kv_cache.clone();
    let g = x.cache_shape();
    for (s, cache) in shards.iter().zip(caches) {
        let l = [cache.shape()[0], cache.shape()[1], cache.shape()[2], cache.shape()[3], cache.shape()[4]];
        for_each_slot(&g, &l, &s.pages, s.kv_heads.clone(), |global, local| {
            out.bits_mut()[global] = cache.bits()[local]
        });
    }
    out
}

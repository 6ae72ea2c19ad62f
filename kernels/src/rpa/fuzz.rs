//! Random ragged batches against the reference: the property the kernels must hold on every
//! batch. `cargo run --release -p rpa-kernels --example rpa_fuzz -- N` runs N of them.

use super::launch::ragged_paged_attention;
use super::reference;
use super::testing::{make_batch, BatchSpec};
use super::{BlockSizes, RpaOptions};
use crate::demo_values::random_values;
use rpa_dsl::DType;

/// A small deterministic generator over the batch space.
struct Rng(Vec<f64>, usize);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(random_values(256, seed), 0)
    }
    /// Uniform in `[lo, hi]`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        let u = (self.0[self.1 % self.0.len()] + 1.0) / 2.0;
        self.1 += 1;
        lo + ((hi - lo + 1) as f64 * u).min((hi - lo) as f64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.range(0, xs.len() - 1)]
    }
}

/// Builds random batch number `seed` and checks kernels against the reference. Returns a
/// description of the batch, or why it failed.
pub fn check_random_batch(seed: u64) -> Result<String, String> {
    let mut r = Rng::new(seed.wrapping_mul(7919).wrapping_add(17));
    let n = r.range(1, 6);
    let page_size = r.pick(&[4usize, 8, 16]);
    let dtype = r.pick(&[DType::F32, DType::Bf16]);
    let heads = r.pick(&[(2usize, 1usize), (4, 2), (3, 3), (6, 2)]);
    let head_dim = r.pick(&[64usize, 80, 128]);
    let mut lens = Vec::new();
    for _ in 0..n {
        let q = if r.range(0, 2) == 0 { 1 } else { r.range(1, 40) };
        let kv = q + r.range(0, 70);
        lens.push((q, kv));
    }
    // Decode sequences first, as the runner orders them.
    lens.sort_by_key(|l| l.0 != 1);
    let decodes = lens.iter().filter(|l| l.0 == 1).count() as i32;
    let mut spec = BatchSpec::new(&lens, heads, head_dim, page_size, dtype);
    spec.seed = seed;
    let mut x = make_batch(&spec);
    x.distribution = [decodes, decodes, n as i32];
    let pages = r.range(1, 4);
    let bkv = pages * page_size;
    let bq = r.pick(&[1usize, 2, 8, 16]);
    let opts = RpaOptions {
        causal: r.range(0, 4) != 0,
        sliding_window: if r.range(0, 3) == 0 { Some(r.range(1, 50)) } else { None },
        soft_cap: if r.range(0, 3) == 0 { Some(20.0) } else { None },
        sm_scale: 1.0 / (head_dim as f64).sqrt(),
        mixed_blocks: Some(BlockSizes { bq, bkv, bq_compute: bq, bkv_compute: page_size * r.pick(&[1, pages]) }),
        ..Default::default()
    };
    let opts = match opts.mixed_blocks {
        Some(b) if b.bkv % b.bkv_compute != 0 => {
            RpaOptions { mixed_blocks: Some(BlockSizes { bkv_compute: bkv, ..b }), ..opts }
        }
        _ => opts,
    };
    let what = format!(
        "batch {seed}: seqs {lens:?}, heads {heads:?}, head_dim {head_dim}, page {page_size}, {dtype}, {opts:?}"
    );
    let (out, cache, _) = ragged_paged_attention(&x, &opts).map_err(|e| format!("{what}\n{e}"))?;
    let (want, want_cache) = reference::ragged_paged_attention(&x, &opts);
    if cache != want_cache {
        return Err(format!("{what}\nthe updated cache differs from the reference"));
    }
    let tol = if dtype == DType::F32 { 0.15 } else { 0.2 };
    let valid = x.cu_q_lens[n] as usize * heads.0 * head_dim;
    for i in 0..valid {
        let (a, b) = (out.get_f64(i), want.get_f64(i));
        if (a - b).abs() > tol + tol * b.abs() || !a.is_finite() {
            return Err(format!("{what}\noutput element {i}: kernel {a}, reference {b}"));
        }
    }
    Ok(what)
}

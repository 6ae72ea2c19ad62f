//! Random ragged batches against the reference: the property the kernels must hold on every
//! batch. `cargo run --release -p rpa-kernels --example rpa_fuzz -- N` runs N of them.

use super::launch::{run, Backend};
use super::reference::{self, RpaInputs};
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

/// The output error bound (atol = rtol) that holds on every batch, by the narrowest dtype of the
/// queries and the cache (the upstream tests use 0.15 for f32 and 0.2 otherwise).
pub fn tolerance(q: DType, kv: DType) -> f64 {
    match q.bits().min(kv.bits()) {
        32 => 1e-4,
        16 => 2e-2,
        _ => 5e-2,
    }
}

/// The log-sum-exp bound (atol = rtol): f32 statistics keep f32 accuracy, bf16 ones a bf16 ulp.
pub fn lse_tolerance(opts: &RpaOptions) -> f64 {
    if opts.acc_dtype().bits() == 32 {
        1e-4
    } else {
        1e-2
    }
}

/// Builds random batch number `seed` and checks the kernels on `backend` against the reference:
/// outputs within [`tolerance`], the cache bit-exact, the log-sum-exp when asked for. Returns a
/// description of the batch, or why it failed.
pub fn check_random_batch(seed: u64, backend: Backend) -> Result<String, String> {
    let RandomBatch { x, opts, what } = random_batch(seed);
    let what = format!("batch {seed} on {backend:?}: {what}");
    let (q_dtype, kv_dtype) = (x.queries.dtype(), x.kv_cache.dtype());
    let (n, heads, head_dim) = (x.distribution[2] as usize, (x.num_q_heads(), x.num_kv_heads()), x.head_dim());
    let got = run(backend, &x, &opts).map_err(|e| format!("{what}\n{e}"))?;
    let want = reference::run(&x, &opts);
    if got.kv_cache != want.kv_cache {
        return Err(format!("{what}\nthe updated cache differs from the reference"));
    }
    let tol = tolerance(q_dtype, kv_dtype);
    let tokens = x.cu_q_lens[n] as usize;
    for i in 0..tokens * heads.0 * head_dim {
        let (a, b) = (got.output.get_f64(i), want.output.get_f64(i));
        if (a - b).abs() > tol + tol * b.abs() || !a.is_finite() {
            return Err(format!("{what}\noutput element {i}: kernel {a}, reference {b}"));
        }
    }
    if let Some(lse) = &got.lse {
        for i in 0..tokens * heads.0 {
            let (a, b) = (lse.get_f64(i), want.lse[i]);
            if (a - b).abs() > lse_tolerance(&opts) * (1.0 + b.abs()) {
                return Err(format!("{what}\nlse {i}: kernel {a}, reference {b}"));
            }
        }
    }
    Ok(what)
}

/// A random batch, its options and a description of both.
pub struct RandomBatch {
    pub x: RpaInputs,
    pub opts: RpaOptions,
    pub what: String,
}

/// Random batch number `seed`: 1-6 sequences over the three cases, random heads, head_dim, page
/// size, dtypes (f32, bf16, fp8 and int8 caches) and options.
pub fn random_batch(seed: u64) -> RandomBatch {
    let mut r = Rng::new(seed.wrapping_mul(7919).wrapping_add(17));
    let n = r.range(1, 6);
    let page_size = r.pick(&[4usize, 8, 16]);
    let (q_dtype, kv_dtype) = r.pick(&[
        (DType::F32, DType::F32),
        (DType::F32, DType::F32),
        (DType::Bf16, DType::Bf16),
        (DType::Bf16, DType::Bf16),
        (DType::Bf16, DType::F8E4M3),
        (DType::Bf16, DType::F8E5M2),
        (DType::F32, DType::I8),
    ]);
    let heads = r.pick(&[(2usize, 1usize), (4, 2), (3, 3), (6, 2), (8, 1)]);
    let head_dim = r.pick(&[64usize, 80, 128, 128, 240]);
    let chunk = r.pick(&[2usize, 4, 8]);
    let mut lens = Vec::new();
    for _ in 0..n {
        let q = match r.range(0, 3) {
            0 => 1,
            1 => chunk,
            _ => r.range(1, 40),
        };
        let kv = q + r.range(0, 70);
        lens.push((q, kv));
    }
    // Decode sequences first, then the chunked-prefill bucket, then mixed, as the runner orders them.
    lens.sort_by_key(|l| {
        if l.0 == 1 {
            0
        } else if l.0 == chunk {
            1
        } else {
            2
        }
    });
    let decodes = lens.iter().filter(|l| l.0 == 1).count() as i32;
    let prefills = decodes + lens.iter().filter(|l| l.0 == chunk && l.0 != 1).count() as i32;
    let mut spec = BatchSpec::new(&lens, heads, head_dim, page_size, q_dtype);
    spec.kv_dtype = kv_dtype;
    spec.seed = seed;
    let mut x = make_batch(&spec);
    x.distribution = [decodes, prefills, n as i32];
    let pages = r.range(1, 4);
    let bkv = pages * page_size;
    let bq = r.pick(&[1usize, 2, 8, 16, 32]);
    let bq_compute = bq / r.pick(&[1usize, 2, 4]).min(bq);
    let bkv_compute = if pages.is_multiple_of(2) && r.range(0, 1) == 0 { bkv / 2 } else { bkv };
    let quantized = !kv_dtype.is_float() || kv_dtype.bits() == 8;
    let scale = if kv_dtype.is_float() { 0.5 } else { 1.0 / 127.0 };
    let mut opts = RpaOptions {
        causal: r.range(0, 4) != 0,
        update_kv_cache: r.range(0, 5) != 0,
        sliding_window: if r.range(0, 3) == 0 { Some(r.range(1, 50)) } else { None },
        soft_cap: if r.range(0, 3) == 0 { Some(20.0) } else { None },
        sm_scale: 1.0 / (head_dim as f64).sqrt(),
        k_scale: quantized.then_some(scale),
        v_scale: quantized.then_some(scale),
        chunk_prefill_size: Some(chunk),
        mixed_blocks: Some(BlockSizes { bq, bkv, bq_compute, bkv_compute }),
        return_lse: r.range(0, 2) == 0,
        acc_dtype: (q_dtype == DType::Bf16 && r.range(0, 2) == 0).then_some(DType::Bf16),
        ..Default::default()
    };
    if r.range(0, 3) == 0 {
        // Attention sinks: one logit per query head, from well below to well above the logits.
        let sinks: Vec<f64> = (0..heads.0).map(|_| r.range(0, 41) as f64 / 4.0 - 4.0).collect();
        opts.attention_sink = Some(rpa_dsl::Array::from_f64(DType::F32, &[heads.0], &sinks));
    }
    if !opts.update_kv_cache {
        // KV-share: the new tokens' K/V are already in the cache.
        x.kv_cache = reference::ragged_paged_attention(&x, &RpaOptions::default()).1;
    }
    let what = format!(
        "seqs {lens:?}, distribution {:?}, heads {heads:?}, head_dim {head_dim}, page {page_size}, \
         {q_dtype}/{kv_dtype}, {opts:?}",
        x.distribution
    );
    RandomBatch { x, opts, what }
}

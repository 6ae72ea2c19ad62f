//! RPA benchmark on interpret mode: HBM bytes moved (interpret-mode accounting) ÷ the minimum the
//! attention must touch, and wall time per call, for the upstream decode_only / prefill_only /
//! mixed lists and the Llama-3-8B shaped serving batch. `cargo bench -p rpa-kernels --bench rpa`.

use rpa_dsl::DType;
use rpa_kernels::rpa::launch::ragged_paged_attention;
use rpa_kernels::rpa::reference::RpaInputs;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, DECODE_KV, MIXED, PREFILL};
use rpa_kernels::rpa::RpaOptions;
use std::time::Instant;

/// Every K/V row read once, the queries read and the outputs written once, the new K/V written once.
fn minimum_bytes(x: &RpaInputs, lens: &[(usize, usize)]) -> u64 {
    let kv_row = 2 * x.num_kv_heads() * x.head_dim() * x.kv_cache.dtype().bytes();
    let q_row = x.num_q_heads() * x.head_dim() * x.queries.dtype().bytes();
    let kv: usize = lens.iter().map(|l| l.1).sum();
    let q: usize = lens.iter().map(|l| l.0).sum();
    (kv * kv_row + 2 * q * q_row + q * kv_row) as u64
}

fn bench(name: &str, x: &RpaInputs, opts: &RpaOptions, lens: &[(usize, usize)]) {
    ragged_paged_attention(x, opts).expect("runs");
    let iters = 2;
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..iters {
        bytes = ragged_paged_attention(x, opts).unwrap().2.hbm_bytes();
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let min = minimum_bytes(x, lens);
    println!(
        "{name:<34} {:>12} B / {:>12} B = {:>6.3}   interpret {:>9.1} ms/call",
        bytes,
        min,
        bytes as f64 / min as f64,
        ms
    );
}

fn main() {
    let opts = RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), ..Default::default() };
    let decode: Vec<(usize, usize)> = DECODE_KV.iter().map(|&kv| (1, kv)).collect();
    let mut x = make_batch(&BatchSpec::new(&decode, (32, 8), 128, 16, DType::F32));
    x.distribution = [16, 16, 16];
    bench("decode_only (32/8, D128, f32)", &x, &opts, &decode);
    let x = make_batch(&BatchSpec::new(&PREFILL, (32, 8), 128, 16, DType::F32));
    bench("prefill_only (32/8, D128, f32)", &x, &opts, &PREFILL);
    let x = make_batch(&BatchSpec::new(&MIXED, (32, 8), 128, 16, DType::F32));
    bench("mixed (32/8, D128, f32)", &x, &opts, &MIXED);
    let (x, opts) = rpa_kernels::demo::serving_batch();
    bench("Llama-3-8B serving batch (bf16)", &x, &opts, &rpa_kernels::demo::SERVING_LENS);
}

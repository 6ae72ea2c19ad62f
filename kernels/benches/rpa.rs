//! RPA benchmark on interpret mode: HBM bytes moved (interpret-mode accounting) ÷ the minimum the
//! attention must touch, and wall time per call, for the upstream decode_only / prefill_only /
//! mixed lists and the Llama-3-8B shaped serving batch. `cargo bench -p rpa-kernels --bench rpa`.

use rpa_dsl::DType;
use rpa_kernels::rpa::launch::ragged_paged_attention;
use rpa_kernels::rpa::reference::RpaInputs;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
use rpa_kernels::rpa::RpaOptions;
use std::time::Instant;

const DECODE_KV: [usize; 16] = [18, 129, 597, 122, 64, 322, 463, 181, 1107, 123, 31, 18, 1229, 229, 87, 1328];
const PREFILL: [(usize, usize); 16] = [
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
const MIXED: [(usize, usize); 16] = [
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

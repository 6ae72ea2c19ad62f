//! RPA benchmark: HBM bytes moved (interpret-mode accounting) ÷ the minimum the attention must
//! touch, and wall time per call on interpret mode, on PJRT-CPU (the StableHLO lowering) and of the
//! dense reference on PJRT-CPU (one plain StableHLO program, `rpa::dense`), for the upstream
//! decode_only / prefill_only / mixed lists and the Llama-3-8B shaped serving batch.
//! `cargo bench -p rpa-kernels --bench rpa`.
//!
//! PJRT-CPU times are the median of a few calls after a first call that compiles (and is not
//! counted); a call includes the host-side work (layouts, upload, download) on both sides.

use rpa_dsl::DType;
use rpa_kernels::rpa::dense::dense_attention;
use rpa_kernels::rpa::launch::{ragged_paged_attention, ragged_paged_attention_on, Backend};
use rpa_kernels::rpa::reference::RpaInputs;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, DECODE_KV, MIXED, PREFILL};
use rpa_kernels::rpa::RpaOptions;
use std::time::Instant;

/// Timed PJRT-CPU calls per measurement (after the compiling one).
const CPU_CALLS: usize = 3;

/// Every K/V row read once, the queries read and the outputs written once, the new K/V written once.
fn minimum_bytes(x: &RpaInputs, lens: &[(usize, usize)]) -> u64 {
    let kv_row = 2 * x.num_kv_heads() * x.head_dim() * x.kv_cache.dtype().bytes();
    let q_row = x.num_q_heads() * x.head_dim() * x.queries.dtype().bytes();
    let kv: usize = lens.iter().map(|l| l.1).sum();
    let q: usize = lens.iter().map(|l| l.0).sum();
    (kv * kv_row + 2 * q * q_row + q * kv_row) as u64
}

fn ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

/// Median wall time of `calls` calls.
fn median_ms(calls: usize, f: &mut dyn FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..calls).map(|_| ms(f)).collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn bench(name: &str, x: &RpaInputs, opts: &RpaOptions, lens: &[(usize, usize)]) {
    // Interpret mode: one warm-up call, then the mean of two.
    let bytes = ragged_paged_attention(x, opts).expect("runs").2.hbm_bytes();
    let interpret = (ms(&mut || drop(ragged_paged_attention(x, opts).unwrap()))
        + ms(&mut || drop(ragged_paged_attention(x, opts).unwrap())))
        / 2.0;
    let min = minimum_bytes(x, lens);
    // PJRT-CPU: the kernels, then the dense reference, each compiled by its first call.
    let mut rpa = || drop(ragged_paged_attention_on(Backend::PjrtCpu, x, opts).expect("runs on PJRT-CPU"));
    let rpa_first = ms(&mut rpa);
    let cpu = median_ms(CPU_CALLS, &mut rpa);
    let mut dense = || drop(dense_attention(x, opts).expect("the dense reference runs"));
    let dense_first = ms(&mut dense);
    let dense_ms = median_ms(CPU_CALLS, &mut dense);
    println!(
        "{name:<32} {:>6.3} bytes ratio | interpret {:>8.1} | PJRT-CPU {:>8.1} | dense {:>8.1} | RPA/dense {:>5.2}   \
         (first calls incl. compile: RPA {:.0}, dense {:.0})",
        bytes as f64 / min as f64,
        interpret,
        cpu,
        dense_ms,
        cpu / dense_ms,
        rpa_first,
        dense_first
    );
}

fn main() {
    println!("ms per call; bytes ratio = interpret-mode HBM bytes / minimum bytes");
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

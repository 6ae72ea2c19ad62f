//! Runs the upstream mixed list (heads 32/8, D 128, f32) through the RPA kernels on interpret mode,
//! for profiling: `cargo run --release -p rpa-kernels --example rpa_profile [iterations]`.
use rpa_dsl::DType;
use rpa_kernels::rpa::launch::ragged_paged_attention;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, MIXED};
use rpa_kernels::rpa::RpaOptions;

fn main() {
    let iters: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let x = make_batch(&BatchSpec::new(&MIXED, (32, 8), 128, 16, DType::F32));
    let opts = RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), ..Default::default() };
    for _ in 0..iters {
        let t = std::time::Instant::now();
        let (_, _, r) = ragged_paged_attention(&x, &opts).unwrap();
        let insts: u64 = r.stats.iter().map(|s| s.1.insts).sum();
        println!("{:.1} ms, {} HBM bytes, {insts} instructions", t.elapsed().as_secs_f64() * 1e3, r.hbm_bytes());
    }
}

//! Runs a serving-shaped batch through the RPA kernels on interpret mode, for profiling:
//! `cargo run --release -p rpa-kernels --example rpa_profile`.
use rpa_dsl::DType;
use rpa_kernels::rpa::launch::ragged_paged_attention;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
use rpa_kernels::rpa::RpaOptions;

fn main() {
    let lens = [
        (1, 230),
        (1, 1100),
        (1, 64),
        (1, 517),
        (1, 18),
        (1, 333),
        (32, 96),
        (32, 400),
        (5, 18),
        (120, 597),
        (3, 1229),
        (17, 40),
    ];
    let mut x = make_batch(&BatchSpec::new(&lens, (32, 8), 128, 16, DType::Bf16));
    x.distribution = [6, 8, 12];
    let opts = RpaOptions { chunk_prefill_size: Some(32), ..Default::default() };
    let t = std::time::Instant::now();
    let (_, _, r) = ragged_paged_attention(&x, &opts).unwrap();
    println!("{:.1} ms, {} HBM bytes", t.elapsed().as_secs_f64() * 1e3, r.hbm_bytes());
}

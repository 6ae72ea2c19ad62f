//! Runs the demo's serving batch through the RPA kernels on interpret mode, for profiling:
//! `cargo run --release -p rpa-kernels --example rpa_profile`.
use rpa_kernels::rpa::launch::ragged_paged_attention;

fn main() {
    let (x, opts) = rpa_kernels::demo::serving_batch();
    let t = std::time::Instant::now();
    let (_, _, r) = ragged_paged_attention(&x, &opts).unwrap();
    println!("{:.1} ms, {} HBM bytes", t.elapsed().as_secs_f64() * 1e3, r.hbm_bytes());
}

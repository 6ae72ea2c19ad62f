//! The long property run: `cargo run --release -p rpa-kernels --example rpa_fuzz -- 10000 [first]`
//! checks N random ragged batches (kernels on interpret mode vs the reference).
fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(1000);
    let first = args.get(1).copied().unwrap_or(0);
    let t = std::time::Instant::now();
    for seed in first..first + n {
        if let Err(e) = rpa_kernels::rpa::fuzz::check_random_batch(seed) {
            eprintln!("FAILED {e}");
            std::process::exit(1);
        }
        if (seed - first + 1) % 500 == 0 {
            println!("{} batches ok ({:.0} s)", seed - first + 1, t.elapsed().as_secs_f64());
        }
    }
    println!("{n} passed, 0 failed");
}

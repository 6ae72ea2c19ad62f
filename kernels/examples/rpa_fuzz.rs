//! The long property run: `cargo run --release -p rpa-kernels --example rpa_fuzz -- 10000 [first]`
//! checks N random ragged batches (kernels on interpret mode vs the reference); every 100th batch
//! also runs on PJRT-CPU when its plugin is installed.
use rpa_kernels::rpa::fuzz::check_random_batch;
use rpa_kernels::rpa::launch::Backend;

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(1000);
    let first = args.get(1).copied().unwrap_or(0);
    let t = std::time::Instant::now();
    for seed in first..first + n {
        let cpu = seed % 100 == 0 && rpa_dsl::cpu::CpuBackend::global().is_ok();
        let backends: &[Backend] = if cpu { &[Backend::Interpret, Backend::PjrtCpu] } else { &[Backend::Interpret] };
        for &backend in backends {
            if let Err(e) = check_random_batch(seed, backend) {
                eprintln!("FAILED {e}");
                std::process::exit(1);
            }
        }
        if (seed - first + 1) % 500 == 0 {
            println!("{} batches ok ({:.0} s)", seed - first + 1, t.elapsed().as_secs_f64());
        }
    }
    println!("{n} passed, 0 failed");
}

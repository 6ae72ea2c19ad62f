//! Wall time per call of RPA on PJRT-CPU and of the dense reference (one StableHLO program) on
//! the upstream mixed list (heads 32/8, D 128, f32): the first call of each compiles.
//! `cargo run --release -p rpa-kernels --example rpa_cpu_time [-- calls]`.

use rpa_dsl::DType;
use rpa_kernels::rpa::dense;
use rpa_kernels::rpa::launch::{ragged_paged_attention_on, Backend};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, MIXED};
use rpa_kernels::rpa::RpaOptions;
use std::time::Instant;

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let x = make_batch(&BatchSpec::new(&MIXED, (32, 8), 128, 16, DType::F32));
    let opts = RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), ..Default::default() };
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    let run = |name: &str, f: &dyn Fn()| {
        let ms: Vec<f64> = (0..calls.max(2)).map(|_| time(f)).collect();
        let best = ms[1..].iter().cloned().fold(f64::INFINITY, f64::min);
        let list: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
        println!("{name:<22} first call {:>9.1} ms, then {:>7.1} ms/call (best; all: {})", ms[0], best, list.join(" "));
        best
    };
    let rpa = run("RPA on PJRT-CPU", &|| {
        ragged_paged_attention_on(Backend::PjrtCpu, &x, &opts).unwrap();
    });
    let dense = run("dense on PJRT-CPU", &|| {
        dense::dense_attention(&x, &opts).unwrap();
    });
    println!("RPA / dense = {:.2}", rpa / dense);
}

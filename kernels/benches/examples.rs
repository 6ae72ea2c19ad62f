//! Benchmark: IR build time of each example kernel (target: under 1 ms each), the time of the TPU
//! checks every host launch runs, and interpret-mode throughput. Run with
//! `cargo bench -p rpa-kernels --bench examples`.

use rpa_dsl::interpret::{run, InterpretOptions};
use rpa_dsl::ir::verify::verify_targets;
use rpa_dsl::{Array, DType, Kernel, KernelError, TargetCheck};
use rpa_kernels::{demo::random_values, examples};
use std::time::Instant;

fn time_build(name: &str, build: &dyn Fn() -> Result<Kernel, KernelError>) -> Kernel {
    let k = build().expect("kernel builds");
    let iters = 200;
    let t = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(build().unwrap());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
    let t = Instant::now();
    for _ in 0..iters {
        verify_targets(&k, TargetCheck::All).expect("passes every generation's checks");
    }
    let check_us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
    let insts = {
        let mut n = 0;
        k.walk(&mut |_| n += 1);
        n
    };
    println!(
        "build  {name:<24} {us:>9.1} µs  ({insts} IR instructions)  {}  target checks {check_us:.2} µs",
        if us < 1000.0 { "< 1 ms ✓" } else { "≥ 1 ms ✗" }
    );
    k
}

/// PJRT-CPU: compile time (StableHLO lowering + XLA) and per-call time (upload, run, download).
fn time_cpu(name: &str, k: &Kernel, inputs: &[Array]) {
    let Ok(backend) = rpa_dsl::cpu::CpuBackend::global() else {
        println!("pjrt-cpu {name:<22} skipped: run scripts/install-plugins");
        return;
    };
    let mlir = rpa_dsl::lower::stablehlo::lower(k).expect("lowers");
    let t = Instant::now();
    let exe = backend.compile_uncached(k, mlir).expect("compiles");
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    exe.run(inputs).expect("runs");
    let iters = 10;
    let t = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(exe.run(inputs).unwrap());
    }
    let call_ms = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    println!("pjrt-cpu {name:<22} compile {compile_ms:>8.1} ms   {call_ms:>8.3} ms/call");
}

fn time_run(name: &str, k: &Kernel, inputs: &[Array], elements: usize) {
    let opts = InterpretOptions::default();
    run(k, inputs, &opts).expect("runs");
    let iters = 5;
    let t = Instant::now();
    let mut insts = 0;
    for _ in 0..iters {
        insts = run(k, inputs, &opts).unwrap().stats.insts;
    }
    let s = t.elapsed().as_secs_f64() / iters as f64;
    println!(
        "interp {name:<24} {:>9.3} ms  {:>8.1} M elements/s  {:>8.2} M insts/s",
        s * 1e3,
        elements as f64 / s / 1e6,
        insts as f64 / s / 1e6
    );
}

fn main() {
    let f32s = |shape: &[usize], seed| Array::from_f64(DType::F32, shape, &random_values(shape.iter().product(), seed));
    let rows = 1024;
    let k = time_build("elementwise_add", &|| examples::elementwise_add(rows));
    let inputs = [f32s(&[rows, 128], 1), f32s(&[rows, 128], 2)];
    time_run("elementwise_add", &k, &inputs, rows * 128);
    time_cpu("elementwise_add", &k, &inputs);
    let (m, n, kk) = (512, 512, 512);
    let k = time_build("tiled_matmul", &|| examples::tiled_matmul(m, n, kk, 128, 128, 128, DType::F32));
    let inputs = [f32s(&[m, kk], 3), f32s(&[kk, n], 4)];
    time_run("tiled_matmul", &k, &inputs, m * n * kk);
    time_cpu("tiled_matmul", &k, &inputs);
    let blocks = 128;
    let k = time_build("double_buffered_scale", &|| examples::double_buffered_scale(blocks));
    let inputs = [f32s(&[blocks * 8, 128], 5)];
    time_run("double_buffered_scale", &k, &inputs, blocks * 8 * 128);
    time_cpu("double_buffered_scale", &k, &inputs);
    let (r, c) = (512, 512);
    let k = time_build("row_softmax", &|| examples::row_softmax(r, c));
    let inputs = [f32s(&[r, c], 6)];
    time_run("row_softmax", &k, &inputs, r * c);
    time_cpu("row_softmax", &k, &inputs);
}

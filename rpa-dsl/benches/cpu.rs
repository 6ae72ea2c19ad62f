//! The CPU backend (StableHLO on XLA:CPU through PJRT): per kernel, the lowering time, the XLA
//! compile time (uncached) and the time per call (upload, execute, download), next to interpret
//! mode. Not a test: `cargo bench -p rpa-dsl --bench cpu` (needs `scripts/install-plugins`).

use rpa_dsl::cpu::CpuBackend;
use rpa_dsl::frontend::cmp;
use rpa_dsl::frontend::control::{ForLoop, If};
use rpa_dsl::frontend::{build_kernel, copy, launch, matmul, zeros, Hbm, Scalar};
use rpa_dsl::{Array, DType, Kernel, Loc};
use std::time::{Duration, Instant};

fn values(n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|i| ((i * 37 + 11) % 101) as f64 * scale - 1.0).collect()
}

fn when(cond: Scalar, f: impl FnOnce()) {
    let mut c = If::begin(cond);
    if c.then_branch() {
        f();
    }
    c.else_branch();
    c.end();
}

fn blocked_add(rows: usize) -> Kernel {
    build_kernel("blocked_add", Loc::caller(), || {
        launch::grid(&[rows / 8]);
        let map = |g: &[Scalar]| vec![g[0], launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[rows, 128], &[8, 128], map);
        let y = launch::input_blocked("y", DType::F32, &[rows, 128], &[8, 128], map);
        let o = launch::output_blocked("o", DType::F32, &[rows, 128], &[8, 128], map, None);
        o.store(x.load() + y.load());
    })
    .unwrap()
}

fn tiled_matmul(m: usize, n: usize, k: usize, b: usize) -> Kernel {
    build_kernel("tiled_matmul", Loc::caller(), || {
        launch::grid(&[m / b, n / b, k / b]);
        let x = launch::input_blocked("x", DType::F32, &[m, k], &[b, b], |g: &[Scalar]| vec![g[0], g[2]]);
        let y = launch::input_blocked("y", DType::F32, &[k, n], &[b, b], |g: &[Scalar]| vec![g[2], g[1]]);
        let o = launch::output_blocked("o", DType::F32, &[m, n], &[b, b], |g: &[Scalar]| vec![g[0], g[1]], None);
        let acc = launch::scratch_vmem("acc", DType::F32, &[b, b]);
        let kk = rpa_dsl::frontend::program_id(2);
        when(cmp::eq(kk, 0), || acc.store(zeros(&[b, b], DType::F32)));
        acc.store(acc.load() + matmul(x.load(), y.load()));
        when(cmp::eq(kk, rpa_dsl::frontend::num_programs(2) - 1), || o.store(acc.load()));
    })
    .unwrap()
}

fn double_buffered(blocks: usize) -> Kernel {
    build_kernel("double_buffered", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[blocks * 8, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[blocks * 8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[2, 8, 128]);
        let out = launch::scratch_vmem("out", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[2]);
        let out_sem = launch::dma_sems("out_sem", &[1]);
        let n = n.get(0);
        copy(src.ds(0, 8), buf.at(0), sems.at(0)).start();
        let l = ForLoop::begin(0, n);
        {
            let i = l.index();
            let slot = i % 2;
            when(cmp::lt(i + 1, n), || copy(src.ds((i + 1) * 8, 8), buf.at(1 - slot), sems.at(1 - slot)).start());
            copy(src.ds(i * 8, 8), buf.at(slot), sems.at(slot)).wait();
            out.store(buf.at(slot).load() * 2.0f32);
            copy(out, dst.ds(i * 8, 8), out_sem.at(0)).start_and_wait();
        }
        l.end();
    })
    .unwrap()
}

fn row_softmax(rows: usize, cols: usize) -> Kernel {
    build_kernel("row_softmax", Loc::caller(), || {
        launch::grid(&[rows / 8]);
        let map = |g: &[Scalar]| vec![g[0], launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[rows, cols], &[8, cols], map);
        let o = launch::output_blocked("o", DType::F32, &[rows, cols], &[8, cols], map, None);
        let v = x.load();
        let e = (v - v.reduce_max(1)).exp();
        o.store(e / e.reduce_sum(1));
    })
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:9.3} ms", d.as_secs_f64() * 1e3)
}

fn bench(backend: &CpuBackend, kernel: &Kernel, inputs: &[Array], calls: usize) {
    let t = Instant::now();
    let mlir = rpa_dsl::lower::stablehlo::lower(kernel).unwrap_or_else(|e| panic!("{e}"));
    let lower = t.elapsed();
    let lines = mlir.lines().count();
    let t = Instant::now();
    let compiled = backend.compile_uncached(kernel, mlir).unwrap_or_else(|e| panic!("{e}"));
    let compile = t.elapsed();
    let t = Instant::now();
    let out = compiled.run(inputs).unwrap_or_else(|e| panic!("{e}"));
    let first = t.elapsed();
    let per_call = median(
        (0..calls)
            .map(|_| {
                let t = Instant::now();
                compiled.run(inputs).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let interpret = median(
        (0..calls.min(5))
            .map(|_| {
                let t = Instant::now();
                kernel.interpret(inputs).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let want = kernel.interpret(inputs).unwrap();
    let diff = out.iter().zip(&want).map(|(a, b)| a.max_abs_diff(b)).fold(0.0, f64::max);
    println!(
        "{:<16} {lines:6} lines  lower {}  compile {}  first call {}  per call {}  (interpret {})  max |cpu - interpret| {diff:.1e}",
        kernel.name,
        ms(lower),
        ms(compile),
        ms(first),
        ms(per_call),
        ms(interpret)
    );
}

fn main() {
    let t = Instant::now();
    let backend = CpuBackend::new().unwrap_or_else(|e| panic!("{e} (run scripts/install-plugins)"));
    println!("XLA:CPU client: {}", ms(t.elapsed()));
    let f32s = |shape: &[usize], scale: f64| Array::from_f64(DType::F32, shape, &values(shape.iter().product(), scale));

    let (x, y) = (f32s(&[1024, 128], 0.5), f32s(&[1024, 128], -0.25));
    bench(&backend, &blocked_add(1024), &[x, y], 50);

    let (a, b) = (f32s(&[256, 512], 0.01), f32s(&[512, 256], 0.02));
    bench(&backend, &tiled_matmul(256, 256, 512, 128), &[a, b], 20);

    let src = f32s(&[64 * 8, 128], 1.0);
    bench(&backend, &double_buffered(64), &[Array::from_i32(&[1], &[64]), src], 50);

    bench(&backend, &row_softmax(512, 512), &[f32s(&[512, 512], 0.1)], 50);
}

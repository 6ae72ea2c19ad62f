//! Synchronisation and tooling ops of issue 13 — regular semaphores, `debug_print` on every
//! backend, `Buffered(n)` BlockSpecs, the `emit_pipeline` helper and the cost estimate — against
//! interpret mode on PJRT-CPU, with their errors, and libtpu compiles for every generation.
//!
//! Needs the XLA:CPU plugin and libtpu (`scripts/install-plugins`).

mod common;

use common::*;
use rpa_dsl::frontend::control::ForLoop;
use rpa_dsl::frontend::{build_kernel, copy, launch, semaphore_signal, semaphore_wait, Hbm};
use rpa_dsl::{Array, DType, Kernel, Loc};

fn ok(k: Result<Kernel, rpa_dsl::KernelError>) -> Kernel {
    k.unwrap_or_else(|e| panic!("{e}"))
}

/// The line of this file with `marker` (once in the code, once in the test).
fn line_of(marker: &str) -> u32 {
    let src = include_str!("ops_sync.rs");
    let hits: Vec<usize> = src.lines().enumerate().filter(|(_, l)| l.contains(marker)).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 2, "{marker}");
    hits[0] as u32 + 1
}

// ------------------------------------------------------------------------------------------ semaphores

/// Copies `n[0]` rows of 8 from `src` to `dst`, counting each copied block on a regular semaphore
/// (`signal(1)` per block) and waiting for `n[1]` of them at the end, in two waits.
fn counted_copy() -> Kernel {
    ok(build_kernel("counted_copy", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[2]);
        let src = launch::input::<Hbm>("src", DType::F32, &[32, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[32, 128], None);
        let dma = launch::dma_sems("dma", &[1]);
        let done = launch::semaphores("done", &[2]);
        let l = ForLoop::begin(0, n.get(0));
        {
            let i = l.index();
            copy(src.ds(i * 8, 8), dst.ds(i * 8, 8), dma.at(0)).start_and_wait();
            semaphore_signal(done.at(1), 1); // @signal
        }
        l.end();
        let half = n.get(1) / 2;
        done.at(1).wait(half);
        semaphore_wait(done.at(1), n.get(1) - half); // @wait
    }))
}

fn rows() -> Array {
    Array::from_f64(DType::F32, &[32, 128], &ramp(32 * 128, 1.0, 0.0))
}

#[test]
fn regular_semaphores_count_signals_and_waits() {
    let k = counted_copy();
    let out = same(&k, &[Array::from_i32(&[2], &[3, 3]), rows()]);
    assert_eq!(out[0].get_f64(2 * 1024 + 5), rows().get_f64(2 * 1024 + 5));
}

#[test]
fn a_wait_for_more_than_was_signalled_is_an_error_at_its_line() {
    let k = counted_copy();
    let e =
        same_error(&k, &[Array::from_i32(&[2], &[3, 5]), rows()], "waits for 3 on semaphore `done[1]`, which holds 1");
    assert_eq!((e.first().op.as_deref(), e.first().loc.line), (Some("semaphore_wait"), line_of("@wait")));
}

#[test]
fn a_semaphore_left_signalled_is_reported_at_its_last_signal() {
    let k = counted_copy();
    let e = same_error(&k, &[Array::from_i32(&[2], &[4, 3]), rows()], "ended with semaphore `done[1]` at 1");
    assert_eq!((e.first().op.as_deref(), e.first().loc.line), (Some("semaphore_signal"), line_of("@signal")));
}

#[test]
fn a_negative_amount_is_an_error() {
    let k = ok(build_kernel("negative_signal", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let o = launch::output::<Hbm>("o", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let (dma, s) = (launch::dma_sems("dma", &[1]), launch::semaphores("s", &[1]));
        buf.store(rpa_dsl::frontend::zeros(&[8, 128], DType::F32));
        copy(buf, o, dma.at(0)).start_and_wait();
        s.at(0).signal(n.get(0));
        s.at(0).wait(n.get(0));
    }));
    same(&k, &[Array::from_i32(&[1], &[2])]);
    same_error(&k, &[Array::from_i32(&[1], &[-2])], "semaphore amount -2 is negative");
}

#[test]
fn dma_and_regular_semaphores_are_not_interchangeable() {
    let e = build_kernel("mixed_sems", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 128]);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let (dma, regular) = (launch::dma_sems("dma", &[1]), launch::semaphores("regular", &[1]));
        copy(src, buf, regular.at(0)).start();
        dma.at(0).signal(1);
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("a DMA signals a DMA semaphore (`DmaSems`), not a regular one (`Semaphores`)"), "{e}");
    assert!(e.contains("a DMA semaphore is signalled by its DMAs"), "{e}");
}

#[test]
fn regular_semaphores_compile_for_every_generation() {
    compiles_everywhere(&counted_copy());
}

// ------------------------------------------------------------------------------------------ debug_print

/// Prints from a runtime loop and a runtime `if`, scalars of several dtypes, and `n[1]` prints of
/// a counter (to overflow the PJRT-CPU log).
fn printer() -> Kernel {
    use rpa_dsl::frontend::{cmp, debug_print};
    ok(build_kernel("printer", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[2]);
        let v = launch::prefetch("v", DType::F32, &[2]);
        let o = launch::output::<Hbm>("o", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let dma = launch::dma_sems("dma", &[1]);
        debug_print("start", &[]);
        let l = ForLoop::begin(0, n.get(0));
        {
            let i = l.index();
            let x = v.get(0) * i.cast(DType::F32);
            debug_print(
                "i = {}, x = {}, half = {}, u = {}, odd = {}",
                &[i, x, x.cast(DType::Bf16), (i - 2i32).cast(DType::U32), cmp::eq(i % 2, 1i32)],
            );
            let mut c = rpa_dsl::frontend::control::If::begin(cmp::gt(x, v.get(1)));
            if c.then_branch() {
                debug_print("{} passed {}", &[x, v.get(1)]);
            }
            c.else_branch();
            c.end();
        }
        l.end();
        let many = ForLoop::begin(0, n.get(1));
        debug_print("tick {}", &[many.index()]);
        many.end();
        buf.store(rpa_dsl::frontend::zeros(&[8, 128], DType::F32));
        copy(buf, o, dma.at(0)).start_and_wait();
    }))
}

fn printer_inputs(count: i32, ticks: i32) -> [Array; 2] {
    [Array::from_i32(&[2], &[count, ticks]), Array::from_f64(DType::F32, &[2], &[1.25, 2.0])]
}

#[test]
fn debug_print_lines_are_the_same_on_pjrt_cpu_checked_and_unchecked() {
    let k = printer();
    let inputs = printer_inputs(4, 3);
    let want = rpa_dsl::interpret::run(&k, &inputs, &Default::default()).unwrap().prints;
    assert_eq!(want[0], "start");
    assert_eq!(want[3], "i = 2, x = 2.5, half = 2.5, u = 0, odd = 0");
    assert_eq!(want[4], "2.5 passed 2");
    assert_eq!(want.last().map(String::as_str), Some("tick 2"));
    let (_, got) = rpa_dsl::cpu::run_with_prints(&k, &inputs).unwrap();
    assert_eq!(got, want);
    let unchecked = rpa_dsl::cpu::CpuBackend::global_unchecked().unwrap();
    assert_eq!(unchecked.run_with_prints(&k, &inputs).unwrap().1, want);
}

#[test]
fn the_pjrt_cpu_print_log_keeps_the_first_lines_and_counts_the_rest() {
    use rpa_dsl::lower::stablehlo::PRINT_ROWS;
    let k = printer();
    let inputs = printer_inputs(1, PRINT_ROWS as i32 + 7);
    let want = rpa_dsl::interpret::run(&k, &inputs, &Default::default()).unwrap().prints;
    let (_, got) = rpa_dsl::cpu::run_with_prints(&k, &inputs).unwrap();
    assert_eq!(got[..PRINT_ROWS], want[..PRINT_ROWS]);
    let dropped = want.len() - PRINT_ROWS;
    assert_eq!(got[PRINT_ROWS], format!("… {dropped} more debug_print lines (PJRT-CPU keeps the first {PRINT_ROWS})"));
}

#[test]
fn debug_print_lowers_to_tpu_log_and_compiles_for_every_generation() {
    let k = printer();
    let mosaic = rpa_dsl::lower::mosaic::lower(&k).unwrap();
    assert!(mosaic.contains("tpu.log \"start\""), "{mosaic}");
    assert!(
        mosaic.contains("tpu.log \"i = $s0, x = $f1, half = $f2, u = $u3, odd = $u4\" {formatted = true}"),
        "{mosaic}"
    );
    compiles_everywhere(&k);
}

/// Tile prints (`pl.debug_print("x = {}", x)`): f32, bf16, i32 and bool tiles, in a runtime loop.
fn tile_printer() -> Kernel {
    use rpa_dsl::frontend::{cmp, debug_print_tile, iota};
    ok(build_kernel("tile_printer", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let x = launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], |_| {
            vec![launch::block_index(0), launch::block_index(0)]
        });
        let o = launch::output_blocked(
            "o",
            DType::F32,
            &[8, 128],
            &[8, 128],
            |_| vec![launch::block_index(0), launch::block_index(0)],
            None,
        );
        o.store(x.load());
        let l = ForLoop::begin(0, n.get(0));
        {
            let i = l.index();
            let row = x.ds(i, 1).load() * 0.5f32; // [1, 128]
            debug_print_tile("row = {}", row.slice(&[0, 0], &[1, 4]));
        }
        l.end();
        let t = x.load();
        debug_print_tile("bf16 {}", t.cast(DType::Bf16));
        debug_print_tile("{}", iota(DType::I32, &[2, 3], 1) - 1i32);
        debug_print_tile("odd: {}", cmp::eq(iota(DType::I32, &[8, 128], 0) % 2, 1i32));
    }))
}

#[test]
fn tile_prints_are_the_same_on_every_backend_and_lower_to_tpu_log_buffer() {
    let k = tile_printer();
    let x = Array::from_f64(DType::F32, &[8, 128], &(0..1024).map(|i| i as f64 - 3.0).collect::<Vec<_>>());
    let inputs = [Array::from_i32(&[1], &[2]), x];
    let want = rpa_dsl::interpret::run(&k, &inputs, &Default::default()).unwrap().prints;
    assert_eq!(want[0], "row = [[-1.5, -1, -0.5, 0]]");
    assert_eq!(want[1], "row = [[62.5, 63, 63.5, 64]]");
    assert!(want[2].starts_with("bf16 [[-3, -2, -1, 0, 1,") && want[2].ends_with(", 1020]]"), "{}", want[2]);
    assert_eq!(want[3], "[[-1, 0, 1], [-1, 0, 1]]");
    assert!(want[4].starts_with("odd: [[0, 0,") && want[4].contains("], [1, 1,"), "{}", want[4]);
    let (_, got) = rpa_dsl::cpu::run_with_prints(&k, &inputs).unwrap();
    assert_eq!(got, want);
    let mosaic = rpa_dsl::lower::mosaic::lower(&k).unwrap();
    assert!(mosaic.contains("tpu.log_buffer \"row = \" {shape = array<i64: 1, 4>}"), "{mosaic}");
    compiles_everywhere(&k);
}

#[test]
fn a_pjrt_cpu_log_of_tiles_keeps_about_four_mib_of_lines() {
    use rpa_dsl::frontend::{debug_print_tile, iota};
    let k = ok(build_kernel("many_tiles", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let l = ForLoop::begin(0, n.get(0));
        debug_print_tile("{}", iota(DType::I32, &[8, 128], 1) + l.index());
        l.end();
    }));
    let inputs = [Array::from_i32(&[1], &[1030])];
    let want = rpa_dsl::interpret::run(&k, &inputs, &Default::default()).unwrap().prints;
    let (_, got) = rpa_dsl::cpu::run_with_prints(&k, &inputs).unwrap();
    let kept = (1 << 20) / (8 * 128 + 1); // rows of a code and 1024 elements
    assert_eq!(got[..kept], want[..kept]);
    assert_eq!(got[kept], format!("… {} more debug_print lines (PJRT-CPU keeps the first {kept})", 1030 - kept));
}

#[test]
fn a_tile_print_prints_one_tile_at_the_end() {
    use rpa_dsl::frontend::{debug_print, debug_print_tile, iota};
    let e = build_kernel("bad_tile_print", Loc::caller(), || {
        let t = iota(DType::I32, &[8, 128], 1);
        debug_print_tile("{} is the tile", t);
        debug_print("{}", &[t.sum()]); // fine
    })
    .unwrap_err();
    assert!(e.to_string().contains("debug_print of a tile prints one tile, at the end of the message"), "{e}");
}

// ------------------------------------------------------------------------------------------ cost estimate

/// Per grid step (2): a `[8, 128] × [128, 128]` matmul, an `exp` of `[8, 128]` three times in a
/// constant loop, a `tanh` in a runtime loop (counted once), and an add.
fn costed() -> Kernel {
    ok(build_kernel("costed", Loc::caller(), || {
        launch::grid(&[2]);
        let n = launch::prefetch("n", DType::I32, &[1]);
        let map = |g: &[rpa_dsl::frontend::Scalar]| vec![g[0], launch::block_index(0)];
        let whole = |_: &[rpa_dsl::frontend::Scalar]| vec![launch::block_index(0), launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[16, 128], &[8, 128], map);
        let w = launch::input_blocked("w", DType::Bf16, &[128, 128], &[128, 128], whole);
        let o = launch::output_blocked("o", DType::F32, &[16, 128], &[8, 128], map, None);
        let acc = launch::scratch_vmem("acc", DType::F32, &[8, 128]);
        acc.store(rpa_dsl::frontend::dot(x.load().cast(DType::Bf16), w.load(), false, DType::F32));
        let constant = ForLoop::begin(0, 3);
        acc.store(acc.load().exp());
        constant.end();
        let runtime = ForLoop::begin(0, n.get(0));
        acc.store(acc.load().tanh());
        runtime.end();
        o.store(acc.load() + x.load());
    }))
}

#[test]
fn the_cost_estimate_counts_the_ir_and_reaches_xla() {
    let k = costed();
    let est = rpa_dsl::ir::cost::estimate(&k);
    let tile = 8 * 128;
    let per_step_flops = 2 * 8 * 128 * 128 + tile /* cast */ + 3 * tile + tile + tile;
    assert_eq!(est.flops, 2 * per_step_flops as u64);
    assert_eq!(est.transcendentals, 2 * 4 * tile as u64);
    assert_eq!(est.bytes_accessed, (4 + 16 * 128 * 4 + 128 * 128 * 2 + 16 * 128 * 4) as u64);
    for t in rpa_dsl::TpuTarget::ALL {
        let c = rpa_dsl::tpu::compile_for(&k, t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let get = |key: &str| c.cost_analysis.get(key).copied().unwrap_or(-1.0);
        assert_eq!((get("flops"), get("transcendentals")), (est.flops as f64, est.transcendentals as f64), "{t}");
        // The module's bytes add those of the copies XLA puts around the call (e.g. the scalar
        // prefetch operand's); they are never fewer than the call's.
        assert!(get("bytes accessed") >= est.bytes_accessed as f64, "{t}: {:?}", c.cost_analysis);
    }
}

// ------------------------------------------------------------------------------------------ Buffered(n)

use rpa_dsl::tpu_kernel;

/// `o = x * w` by blocks of rows; `w`'s block never changes, so one buffer does (`Buffered(1)`).
#[tpu_kernel(grid = [4])]
fn scaled_rows(
    #[comptime] buffers: usize,
    #[block([8, 128], |i| [i, 0])] x: In![f32, [32, 128]],
    #[block([8, 128], |_| [0, 0], Buffered(buffers))] w: In![f32, [8, 128]],
    #[block([8, 128], |i| [i, 0])] o: Out![f32, [32, 128]],
) {
    o.store(x.load() * w.load());
}

#[tpu_kernel(grid = [4])]
fn scaled_rows_default(
    #[block([8, 128], |i| [i, 0])] x: In![f32, [32, 128]],
    #[block([8, 128], |_| [0, 0])] w: In![f32, [8, 128]],
    #[block([8, 128], |i| [i, 0])] o: Out![f32, [32, 128]],
) {
    o.store(x.load() * w.load());
}

#[test]
fn buffered_blocks_compute_the_same_with_fewer_buffers() {
    let (one, default) = (scaled_rows(1).unwrap(), scaled_rows_default().unwrap());
    let x = Array::from_f64(DType::F32, &[32, 128], &ramp(32 * 128, 0.5, -3.0));
    let w = Array::from_f64(DType::F32, &[8, 128], &ramp(8 * 128, 0.25, 1.0));
    let inputs = [x, w];
    let got = same(&one, &inputs);
    assert_eq!(got[0].bits(), interpret(&default, &inputs)[0].bits());
    let usage = rpa_dsl::ir::verify::vmem_usage;
    assert_eq!(usage(&default) - usage(&one), 8 * 128 * 4, "one buffer of `w` instead of two");
    let mosaic = rpa_dsl::lower::mosaic::lower(&one).unwrap();
    assert!(mosaic.contains("window_bounds = array<i64: 8, 128>, pipeline_mode = #tpu.pipeline_mode<synchronous>"));
    compiles_everywhere(&one);
    compiles_everywhere(&scaled_rows(2).unwrap());
}

#[test]
fn more_than_two_buffers_is_a_tpu_target_error() {
    let k = scaled_rows(3).unwrap();
    let e = rpa_dsl::tpu::compile_for(&k, rpa_dsl::TpuTarget::V6e).unwrap_err();
    assert!(
        e.to_string().contains("`w` asks for Buffered(3): Mosaic pipelines a BlockSpec with 1 or 2 buffers"),
        "{e}"
    );
    // The semantics are the same: a host-only run is unchanged.
    let opts = rpa_dsl::interpret::InterpretOptions { targets: rpa_dsl::TargetCheck::HostOnly, ..Default::default() };
    let inputs = [Array::zeros(DType::F32, &[32, 128]), Array::zeros(DType::F32, &[8, 128])];
    assert!(rpa_dsl::interpret::run(&k, &inputs, &opts).is_ok());
    let e = build_kernel("no_buffers", Loc::caller(), || {
        let map = |_: &[rpa_dsl::frontend::Scalar]| vec![launch::block_index(0), launch::block_index(0)];
        launch::buffered(launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], map), 0);
    })
    .unwrap_err();
    assert!(e.to_string().contains("a BlockSpec needs at least one buffer"), "{e}");
}

// ------------------------------------------------------------------------------------------ emit_pipeline

/// `o = x + 2y` and `t = x` with its blocks' order reversed, through an inner pipeline over a
/// `rows / 16 × 2` grid of `[16, 128]` blocks.
fn pipelined(rows: usize) -> Kernel {
    use rpa_dsl::frontend::{emit_pipeline, PipelineSpec};
    ok(build_kernel("pipelined", Loc::caller(), || {
        let x = launch::input::<Hbm>("x", DType::F32, &[rows, 256]);
        let y = launch::input::<Hbm>("y", DType::F32, &[rows, 256]);
        let o = launch::output::<Hbm>("o", DType::F32, &[rows, 256], None);
        let t = launch::output::<Hbm>("t", DType::F32, &[rows, 256], None);
        let n = rows / 16;
        let same = |g: &[rpa_dsl::frontend::Scalar]| g.to_vec();
        let reversed = move |g: &[rpa_dsl::frontend::Scalar]| vec![(n as i32 - 1) - g[0], 1i32 - g[1]];
        let ins = [PipelineSpec::new(x, &[16, 128], same), PipelineSpec::new(y, &[16, 128], same)];
        let outs = [PipelineSpec::new(o, &[16, 128], same), PipelineSpec::new(t, &[16, 128], reversed)];
        emit_pipeline("inner", &[n, 2], &ins, &outs, |_, i, o| {
            let a = i[0].load();
            o[0].store(a + i[1].load() * 2.0f32);
            o[1].store(a);
        });
    }))
}

/// `pipelined` with `x` in `n` buffers and `y` in one (fetched when needed).
fn pipelined_deep(rows: usize, n: usize) -> Kernel {
    use rpa_dsl::frontend::{emit_pipeline, PipelineSpec};
    ok(build_kernel("pipelined_deep", Loc::caller(), || {
        let x = launch::input::<Hbm>("x", DType::F32, &[rows, 256]);
        let y = launch::input::<Hbm>("y", DType::F32, &[rows, 256]);
        let o = launch::output::<Hbm>("o", DType::F32, &[rows, 256], None);
        let t = launch::output::<Hbm>("t", DType::F32, &[rows, 256], None);
        let n_rows = rows / 16;
        let same = |g: &[rpa_dsl::frontend::Scalar]| g.to_vec();
        let reversed = move |g: &[rpa_dsl::frontend::Scalar]| vec![(n_rows as i32 - 1) - g[0], 1i32 - g[1]];
        let ins =
            [PipelineSpec::new(x, &[16, 128], same).buffered(n), PipelineSpec::new(y, &[16, 128], same).buffered(1)];
        let outs = [PipelineSpec::new(o, &[16, 128], same), PipelineSpec::new(t, &[16, 128], reversed)];
        emit_pipeline("inner", &[n_rows, 2], &ins, &outs, |_, i, o| {
            let a = i[0].load();
            o[0].store(a + i[1].load() * 2.0f32);
            o[1].store(a);
        });
    }))
}

#[test]
fn emit_pipeline_inputs_take_any_number_of_buffers() {
    let x = Array::from_f64(DType::F32, &[64, 256], &ramp(64 * 256, 0.5, -3.0));
    let y = Array::from_f64(DType::F32, &[64, 256], &ramp(64 * 256, -0.25, 7.0));
    let want = interpret(&pipelined(64), &[x.clone(), y.clone()]);
    for n in [1, 3, 4, 9] {
        let k = pipelined_deep(64, n);
        let shape = |name: &str| match k.ty(k.params.iter().find(|p| p.name == name).unwrap().value) {
            rpa_dsl::ir::Type::Ref(r) => r.max_shape(),
            t => panic!("{t}"),
        };
        assert_eq!((shape("inner_in0")[0], shape("inner_in1")[0], shape("inner_out0")[0]), (n, 1, 2));
        let got = same(&k, &[x.clone(), y.clone()]);
        assert_eq!((got[0].bits(), got[1].bits()), (want[0].bits(), want[1].bits()), "{n} buffers");
    }
    compiles_everywhere(&pipelined_deep(64, 3));
}

#[test]
fn emit_pipeline_buffer_counts_are_checked() {
    use rpa_dsl::frontend::{emit_pipeline, PipelineSpec};
    for (input, output, expect) in [
        (0, 2, "emit_pipeline input 0 has 0 buffers: it needs at least one"),
        (2, 3, "emit_pipeline output 0 asks for 3 buffers: outputs are double-buffered (as in Pallas)"),
    ] {
        let e = build_kernel("bad_pipeline", Loc::caller(), || {
            let x = launch::input::<Hbm>("x", DType::F32, &[16, 128]);
            let o = launch::output::<Hbm>("o", DType::F32, &[16, 128], None);
            let same = |g: &[rpa_dsl::frontend::Scalar]| g.to_vec();
            let ins = [PipelineSpec::new(x, &[16, 128], same).buffered(input)];
            let outs = [PipelineSpec::new(o, &[16, 128], same).buffered(output)];
            emit_pipeline("inner", &[1, 1], &ins, &outs, |_, i, o| o[0].store(i[0].load()));
        })
        .unwrap_err();
        assert!(e.to_string().contains(expect) && e.to_string().contains("ops_sync.rs:"), "{e}");
    }
}

/// `pipelined` in a `#[tpu_kernel]` body: the pipeline's body and index maps are closures, whose
/// bodies the macro rewrites as kernel code.
mod in_a_kernel {
    use rpa_dsl::prelude::*;

    #[tpu_kernel]
    pub fn pipelined_macro(
        #[comptime] rows: usize,
        x: In![f32, [rows, 256]],
        y: In![f32, [rows, 256]],
        o: Out![f32, [rows, 256]],
        t: Out![f32, [rows, 256]],
    ) {
        let n = rows / 16;
        let same = |g: &[Scalar]| g.to_vec();
        let reversed = move |g: &[Scalar]| vec![(n as i32 - 1) - g[0], 1i32 - g[1]];
        let ins = [PipelineSpec::new(x, &[16, 128], same), PipelineSpec::new(y, &[16, 128], same)];
        let outs = [PipelineSpec::new(o, &[16, 128], same), PipelineSpec::new(t, &[16, 128], reversed)];
        emit_pipeline("inner", &[n, 2], &ins, &outs, |_, i, o| {
            let a = i[0].load();
            // Kernel code: a runtime `if` on the first lane's sign, rewritten by the macro.
            let mut b = i[1].load();
            if a.item(&[0, 0]) < 0.0f32 {
                b = b * 1.0f32;
            }
            o[0].store(a + b * 2.0f32);
            o[1].store(a);
        });
    }
}

#[test]
fn emit_pipeline_works_in_a_tpu_kernel_body() {
    let k = in_a_kernel::pipelined_macro(64).unwrap_or_else(|e| panic!("{e}"));
    let ifs = |k: &Kernel| {
        let mut n = 0;
        k.walk(&mut |i| n += usize::from(matches!(i.op, rpa_dsl::ir::Op::If { .. })));
        n
    };
    assert_eq!(ifs(&k), ifs(&pipelined(64)) + 1, "the pipeline's `if`s and the body's runtime `if`");
    let x = Array::from_f64(DType::F32, &[64, 256], &ramp(64 * 256, 0.5, -3.0));
    let y = Array::from_f64(DType::F32, &[64, 256], &ramp(64 * 256, -0.25, 7.0));
    let got = same(&k, &[x.clone(), y.clone()]);
    let want = interpret(&pipelined(64), &[x, y]);
    assert_eq!((got[0].bits(), got[1].bits()), (want[0].bits(), want[1].bits()));
    compiles_everywhere(&k);
}

#[test]
fn emit_pipeline_streams_blocks_through_double_buffers() {
    for rows in [16, 64] {
        let k = pipelined(rows);
        let x = Array::from_f64(DType::F32, &[rows, 256], &ramp(rows * 256, 0.5, -3.0));
        let y = Array::from_f64(DType::F32, &[rows, 256], &ramp(rows * 256, -0.25, 7.0));
        let out = same(&k, &[x.clone(), y.clone()]);
        for i in [0, 300, rows * 256 - 1] {
            assert_eq!(out[0].get_f64(i), x.get_f64(i) + 2.0 * y.get_f64(i), "rows {rows}, element {i}");
        }
        // Block (r, c) of `t` is block (n - 1 - r, 1 - c) of `x`.
        let (r, c) = (3, 5); // element in block (0, 0)
        let (br, bc) = (rows / 16 - 1, 1);
        assert_eq!(out[1].get_f64(r * 256 + c), x.get_f64((br * 16 + r) * 256 + bc * 128 + c), "rows {rows}");
    }
    compiles_everywhere(&pipelined(64));
}

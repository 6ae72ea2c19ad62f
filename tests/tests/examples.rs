//! The book's example kernels, written in the DSL, against their plain-Rust references on
//! interpret mode.

use rpa_dsl::interpret::{run, InterpretOptions};
use rpa_dsl::ir::MemSpace;
use rpa_dsl::{Array, DType};
use rpa_kernels::demo::random_values;
use rpa_kernels::examples::{self, reference};

fn f32_array(shape: &[usize], seed: u64) -> Array {
    Array::from_f64(DType::F32, shape, &random_values(shape.iter().product(), seed))
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn elementwise_add_is_exact() {
    let (x, y) = (f32_array(&[64, 128], 1), f32_array(&[64, 128], 2));
    let k = examples::elementwise_add(64).unwrap();
    let res = run(&k, &[x.clone(), y.clone()], &InterpretOptions::default()).unwrap();
    // f32 addition is exactly the f64 sum rounded to f32.
    let want = Array::from_f64(DType::F32, &[64, 128], &reference::elementwise_add(&x.to_f64(), &y.to_f64()));
    assert_eq!(res.outputs[0], want);
    // Each block is copied in once per input and out once: 3 arrays of 64·128 f32.
    assert_eq!(res.stats.moved(MemSpace::Hbm, MemSpace::Vmem), 2 * 64 * 128 * 4);
    assert_eq!(res.stats.moved(MemSpace::Vmem, MemSpace::Hbm), 64 * 128 * 4);
    assert_eq!(res.stats.grid_steps, 8);
}

#[test]
fn tiled_matmul_f32_matches_reference() {
    let (m, n, kk) = (128, 256, 384);
    let (x, y) = (f32_array(&[m, kk], 3), f32_array(&[kk, n], 4));
    let k = examples::tiled_matmul(m, n, kk, 64, 128, 128, DType::F32).unwrap();
    let out = k.interpret(&[x.clone(), y.clone()]).unwrap();
    let want = reference::matmul(&x.to_f64(), &y.to_f64(), m, n, kk);
    let err = max_err(&out[0].to_f64(), &want);
    assert!(err < 1e-4, "max error {err}");
}

#[test]
fn tiled_matmul_bf16_rounds_only_the_output() {
    let (m, n, kk) = (32, 128, 256);
    let x = Array::from_f64(DType::Bf16, &[m, kk], &random_values(m * kk, 5));
    let y = Array::from_f64(DType::Bf16, &[kk, n], &random_values(kk * n, 6));
    let k = examples::tiled_matmul(m, n, kk, 16, 128, 128, DType::Bf16).unwrap();
    let out = k.interpret(&[x.clone(), y.clone()]).unwrap();
    let want = reference::matmul(&x.to_f64(), &y.to_f64(), m, n, kk);
    // f32 accumulation, one rounding to bf16 at the end: within half a bf16 ulp (2^-8 relative).
    for (g, w) in out[0].to_f64().iter().zip(&want) {
        assert!((g - w).abs() <= w.abs() * 2f64.powi(-8) + 1e-5, "{g} vs {w}");
    }
}

#[test]
fn double_buffered_scale_streams_every_block_once() {
    let blocks = 9;
    let x = f32_array(&[blocks * 8, 128], 7);
    let k = examples::double_buffered_scale(blocks).unwrap();
    let res = run(&k, std::slice::from_ref(&x), &InterpretOptions::default()).unwrap();
    assert_eq!(res.outputs[0].to_f64(), reference::scale(&x.to_f64(), 2.0));
    let bytes = (blocks * 8 * 128 * 4) as u64;
    assert_eq!(res.stats.moved(MemSpace::Hbm, MemSpace::Vmem), bytes);
    assert_eq!(res.stats.moved(MemSpace::Vmem, MemSpace::Hbm), bytes);
    assert_eq!(res.stats.dmas, 2 * blocks as u64);
}

#[test]
fn double_buffered_scale_overlaps_the_next_fetch_with_compute() {
    // In the trace, the DMA of block i+1 starts before the DMA of block i has landed.
    let k = examples::double_buffered_scale(4).unwrap();
    let opts = InterpretOptions { trace: true, ..Default::default() };
    let res = run(&k, &[f32_array(&[32, 128], 8)], &opts).unwrap();
    let fetches: Vec<_> = res.events.iter().filter(|e| e.track.starts_with("sems")).collect();
    assert_eq!(fetches.len(), 4);
    assert!(fetches.windows(2).all(|w| w[1].start < w[0].end), "{fetches:#?}");
}

#[test]
fn row_softmax_matches_reference() {
    let (r, c) = (32, 256);
    let x = Array::from_f64(DType::F32, &[r, c], &random_values(r * c, 9).iter().map(|v| v * 10.0).collect::<Vec<_>>());
    let out = examples::row_softmax(r, c).unwrap().interpret(std::slice::from_ref(&x)).unwrap();
    let err = max_err(&out[0].to_f64(), &reference::row_softmax(&x.to_f64(), c));
    assert!(err < 1e-6, "max error {err}");
}

#[test]
fn demo_cases_all_pass() {
    let reports = rpa_kernels::demo::run_examples().unwrap();
    assert_eq!(reports.len(), 4);
    for r in reports {
        assert!(r.passed(), "{r:?}");
    }
}

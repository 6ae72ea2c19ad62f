//! The elementwise math of issue 13 (sin, cos, erf, exp2, log1p, pow, floor, ceil, sigmoid) and
//! `multiple_of`: PJRT-CPU against interpret mode (bit-exact where the math is exact, within
//! measured ulps for transcendental functions), and libtpu compiles for every generation.
//!
//! Needs the XLA:CPU plugin and libtpu (`scripts/install-plugins`).

mod common;

use common::*;
use rpa_dsl::frontend::{build_kernel, copy, ds, full_dim, launch, multiple_of, Hbm, Scalar, Tile};
use rpa_dsl::{Array, DType, Kernel, Loc};

fn whole() -> impl Fn(&[Scalar]) -> Vec<Scalar> + Copy {
    |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)]
}

/// `o = f(x)` (and `o = f(x, y)`) on `[8, 128]` f32 blocks.
fn map_kernel(name: &str, f: fn(Tile, Tile) -> Tile) -> Kernel {
    build_kernel(name, Loc::caller(), || {
        let x = launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], whole());
        let y = launch::input_blocked("y", DType::F32, &[8, 128], &[8, 128], whole());
        let o = launch::output_blocked("o", DType::F32, &[8, 128], &[8, 128], whole(), None);
        o.store(f(x.load(), y.load()));
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn f32s(v: &[f64]) -> Array {
    Array::from_f64(DType::F32, &[8, 128], v)
}

/// (name, function, x values, y values, largest distance from interpret mode in f32 ulps).
type Case = (&'static str, fn(Tile, Tile) -> Tile, Vec<f64>, Vec<f64>, u64);

/// The transcendental functions over their interesting ranges. The bounds are what this suite
/// measured on x86-64 (sin, cos, exp2 and pow agreed bit for bit: XLA:CPU and glibc both round
/// them correctly; 1 ulp is allowed for other hosts).
fn transcendental_cases() -> Vec<Case> {
    let n = 1024;
    let zeros = vec![0.0; n];
    let mut wide = linspace(n, -60.0, 60.0);
    wide[..6].copy_from_slice(&[0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-30]);
    let tiny_or_wide = |i: usize, v: f64| if i.is_multiple_of(3) { v * 1e-6 } else { v };
    let log1p_x = linspace(n, -0.999, 1000.0).into_iter().enumerate().map(|(i, v)| tiny_or_wide(i, v)).collect();
    let pow_edges = |v: &[f64]| v.iter().cycle().take(n).copied().collect::<Vec<f64>>();
    let bases = pow_edges(&[-2.0, -2.0, -0.5, 0.0, 0.0, -0.0, 1.0, f64::NAN, f64::INFINITY, -8.0, 2.0, 1e-30]);
    let exponents = pow_edges(&[3.0, 0.5, -3.0, 0.0, -1.0, -1.0, f64::NAN, 0.0, -2.0, 1.0 / 3.0, 200.0, 2.0]);
    vec![
        ("sin", |x, _| x.sin(), wide.clone(), zeros.clone(), 1),
        ("sin_large", |x, _| x.sin(), linspace(n, -1e5, 1e5), zeros.clone(), 1),
        ("cos", |x, _| x.cos(), wide.clone(), zeros.clone(), 1),
        ("cos_large", |x, _| x.cos(), linspace(n, -3e7, 3e7), zeros.clone(), 1),
        ("erf", |x, _| x.erf(), linspace(n, -6.0, 6.0), zeros.clone(), 3),
        ("exp2", |x, _| x.exp2(), linspace(n, -125.0, 127.5), zeros.clone(), 1),
        ("log1p", |x, _| x.log1p(), log1p_x, zeros.clone(), 1),
        ("pow", |x, y| x.pow(y), linspace(n, 0.001, 30.0), linspace(n, 6.0, -6.0), 1),
        ("pow_edges", |x, y| x.pow(y), bases, exponents, 1),
        ("sigmoid", |x, _| x.sigmoid(), wide, zeros, 2),
    ]
}

#[test]
fn transcendental_functions_match_interpret_mode_within_measured_ulps() {
    for (name, f, x, y, bound) in transcendental_cases() {
        let k = map_kernel(name, f);
        let got = max_ulps(&k, &[f32s(&x), f32s(&y)])[0];
        assert!(got <= bound, "{name}: PJRT-CPU is {got} ulps from interpret mode (bound {bound})");
    }
}

#[test]
fn interpret_mode_computes_the_functions_it_names() {
    // Spot values (f64 references rounded to f32), so that both backends are not wrong alike:
    // within 1 ulp (sigmoid, computed as written in f32, within 2).
    let cases: [(fn(Tile, Tile) -> Tile, [f64; 4], [f64; 4], [f64; 4]); 5] = [
        (
            |x, _| x.erf(),
            [0.5, 1.0, -2.0, 3.5],
            [0.0; 4],
            [0.5204998778130465, 0.8427007929497149, -0.9953222650189527, 0.9999992569016276],
        ),
        (|x, y| x.pow(y), [2.0, 9.0, -2.0, 0.0], [10.0, 0.5, 3.0, 0.0], [1024.0, 3.0, -8.0, 1.0]),
        (
            |x, _| x.log1p(),
            [1e-7, 1.0, -0.5, 0.0],
            [0.0; 4],
            [9.999999500000032e-8, std::f64::consts::LN_2, -std::f64::consts::LN_2, 0.0],
        ),
        (|x, _| x.sigmoid(), [0.0, 2.0, -2.0, 100.0], [0.0; 4], [0.5, 0.8807970779778823, 0.11920292202211755, 1.0]),
        (
            |x, _| x.floor() + x.ceil() * 1000.0f32,
            [-1.5, 2.0, 0.25, -0.0],
            [0.0; 4],
            [-2.0 - 1000.0, 2002.0, 1000.0, 0.0],
        ),
    ];
    for (f, x, y, want) in cases {
        let pad = |v: [f64; 4]| f32s(&v.iter().cycle().take(1024).copied().collect::<Vec<_>>());
        let out = interpret(&map_kernel("spot", f), &[pad(x), pad(y)]);
        for (i, w) in want.iter().enumerate() {
            let got = out[0].get_f64(i) as f32;
            assert!(ulps(got, *w as f32) <= 2, "element {i} of {x:?}: {got} vs {w}");
        }
    }
}

#[test]
fn floor_and_ceil_are_exact_in_every_float_width() {
    let k = map_kernel("rounding", |x, y| {
        let narrow = (x.cast(DType::Bf16).floor() - y.cast(DType::F16).ceil().cast(DType::Bf16)).cast(DType::F32);
        x.floor() * 3.0f32 + x.ceil() + narrow + (x * 16.0f32).cast(DType::F8E4M3).ceil().cast(DType::F32)
    });
    let x = linspace(1024, -300.0, 300.0);
    let y: Vec<f64> = x.iter().map(|v| v * 0.37).collect();
    same(&k, &[f32s(&x), f32s(&y)]);
}

/// Scalar math (a scalar from SMEM through every function), stored as a row of a tile.
fn scalar_math() -> Kernel {
    build_kernel("scalar_math", Loc::caller(), || {
        let v = launch::prefetch("v", DType::F32, &[2]);
        let o = launch::output_blocked("o", DType::F32, &[8, 128], &[8, 128], whole(), None);
        let (a, b) = (v.get(0), v.get(1));
        let fs: [Scalar; 8] =
            [a.sin(), a.cos(), a.erf(), a.exp2(), a.abs().log1p(), a.abs().pow(b), a.floor() + a.ceil(), a.sigmoid()];
        let rows: Vec<Tile> = fs.iter().map(|s| rpa_dsl::frontend::broadcast(*s, &[1, 128])).collect();
        o.store(rpa_dsl::frontend::concat(&rows, 0));
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn scalar_math_matches_interpret_mode() {
    let k = scalar_math();
    for (a, b) in [(0.75, 2.5), (-3.2, -1.5), (10.0, 0.0)] {
        let got = max_ulps(&k, &[Array::from_f64(DType::F32, &[2], &[a, b])]);
        assert!(got[0] <= 3, "scalar math at ({a}, {b}): {} ulps", got[0]);
    }
}

#[test]
fn math_on_integers_is_a_type_error_at_its_line() {
    let e = build_kernel("int_math", Loc::caller(), || {
        let x = launch::input_blocked("x", DType::I32, &[8, 128], &[8, 128], whole());
        let o = launch::output_blocked("o", DType::I32, &[8, 128], &[8, 128], whole(), None);
        o.store(x.load().pow(2)); // @int-pow
    })
    .unwrap_err();
    assert!(e.to_string().contains("`pow` needs float operands, got i32"), "{e}");
    assert_eq!(e.first().loc.line, line_of("@int-pow"), "{e}");
}

/// Every function on f32 and bf16 tiles and on scalars.
fn all_math() -> Kernel {
    build_kernel("all_math", Loc::caller(), || {
        let v = launch::prefetch("v", DType::F32, &[2]);
        let x = launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], whole());
        let y = launch::input_blocked("y", DType::F32, &[8, 128], &[8, 128], whole());
        let o = launch::output_blocked("o", DType::F32, &[8, 128], &[8, 128], whole(), None);
        let (a, b) = (x.load(), y.load());
        let h = a.cast(DType::Bf16);
        let f32_math =
            a.sin() + a.cos() + a.erf() + a.exp2() + a.log1p() + a.pow(b) + a.floor() + a.ceil() + a.sigmoid();
        let bf16_math =
            h.sin() + h.cos() + h.erf() + h.exp2() + h.log1p() + h.pow(h) + h.floor() + h.ceil() + h.sigmoid();
        let s = v.get(0);
        let scalar =
            s.sin() + s.cos() + s.erf() + s.exp2() + s.log1p() + s.pow(v.get(1)) + s.floor() + s.ceil() + s.sigmoid();
        o.store(f32_math + bf16_math.cast(DType::F32) + scalar);
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_function_compiles_for_every_generation() {
    compiles_everywhere(&all_math());
    compiles_everywhere(&scalar_math());
}

/// Loads 128 lanes of a `[8, 256]` buffer at a runtime lane offset: Mosaic needs the offset proved
/// a multiple of 128, which `multiple_of` promises (with `hint`).
fn dynamic_lanes(hint: bool) -> Kernel {
    build_kernel("dynamic_lanes", Loc::caller(), || {
        let off = launch::prefetch("off", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 256]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 256]);
        let out = launch::scratch_vmem("out", DType::F32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        let lane = if hint { multiple_of(off.get(0), 128) } else { off.get(0) }; // @hint
        out.store(buf.view(&[full_dim(), ds(lane, 128)]).load());
        copy(out, dst, sem.at(0)).start_and_wait();
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn multiple_of_lets_libtpu_prove_a_dynamic_lane_offset_aligned() {
    let err = rpa_dsl::tpu::compile_for(&dynamic_lanes(false), rpa_dsl::TpuTarget::V6e).unwrap_err();
    assert!(err.to_string().contains("rejected the kernel"), "{err}");
    compiles_everywhere(&dynamic_lanes(true));
}

#[test]
fn multiple_of_is_checked_in_interpret_mode_and_on_pjrt_cpu() {
    let k = dynamic_lanes(true);
    let src = Array::from_f64(DType::F32, &[8, 256], &ramp(8 * 256, 1.0, 0.0));
    let out = same(&k, &[Array::from_i32(&[1], &[128]), src.clone()]);
    assert_eq!(out[0].get_f64(0), src.get_f64(128));
    let e = same_error(&k, &[Array::from_i32(&[1], &[64]), src], "64 is not a multiple of 128");
    assert_eq!((e.first().op.as_deref(), e.first().loc.line), (Some("multiple_of"), line_of("@hint")));
}

#[test]
fn multiple_of_takes_integer_scalars_and_positive_multiples() {
    let e = build_kernel("bad_hint", Loc::caller(), || {
        let v = launch::prefetch("v", DType::F32, &[1]);
        let n = launch::prefetch("n", DType::I32, &[1]);
        multiple_of(v.get(0), 8);
        multiple_of(n.get(0), 0);
    })
    .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`multiple_of` takes an integer scalar (an index or offset), got f32"), "{text}");
    assert!(text.contains("`multiple_of` needs a multiple between 1 and 2147483647, got 0"), "{text}");
}

/// The line of this file with `marker` (once in the code, once in the test).
fn line_of(marker: &str) -> u32 {
    let src = include_str!("ops_math.rs");
    let hits: Vec<usize> = src.lines().enumerate().filter(|(_, l)| l.contains(marker)).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 2, "{marker}");
    hits[0] as u32 + 1
}

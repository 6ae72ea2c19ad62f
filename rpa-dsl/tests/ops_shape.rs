//! The tile ops of issue 13 — `roll`, transposes — against interpret mode on PJRT-CPU (bit-exact:
//! they only move elements), their errors, and libtpu compiles for every generation.
//!
//! Needs the XLA:CPU plugin and libtpu (`scripts/install-plugins`).

mod common;

use common::*;
use rpa_dsl::frontend::{build_kernel, launch, roll, transpose, Ref, Scalar, Vmem};
use rpa_dsl::{Array, DType, Kernel, Loc};

/// An operand seen whole in VMEM.
fn input(name: &str, dtype: DType, shape: &[usize]) -> Ref<Vmem> {
    let map = move |_: &[Scalar]| shape.iter().map(|_| launch::block_index(0)).collect();
    launch::input_blocked(name, dtype, shape, shape, map)
}

fn output(name: &str, dtype: DType, shape: &[usize]) -> Ref<Vmem> {
    let map = move |_: &[Scalar]| shape.iter().map(|_| launch::block_index(0)).collect();
    launch::output_blocked(name, dtype, shape, shape, map, None)
}

fn ok(k: Result<Kernel, rpa_dsl::KernelError>) -> Kernel {
    k.unwrap_or_else(|e| panic!("{e}"))
}

fn f32s(shape: &[usize]) -> Array {
    let n = shape.iter().product();
    Array::from_f64(DType::F32, shape, &ramp(n, 0.5, -20.0))
}

// ------------------------------------------------------------------------------------------ roll

fn rolls() -> Kernel {
    ok(build_kernel("rolls", Loc::caller(), || {
        let s = launch::prefetch("s", DType::I32, &[1]);
        let x = input("x", DType::F32, &[8, 128]);
        let q = input("q", DType::I32, &[16, 128]);
        let outs: Vec<Ref<Vmem>> = (0..4).map(|i| output(&format!("o{i}"), DType::F32, &[8, 128])).collect();
        let oq = output("oq", DType::I32, &[16, 128]);
        let (v, shift) = (x.load(), s.get(0));
        outs[0].store(roll(v, 3, 1)); // static, along lanes
        outs[1].store(v.roll(shift, 1)); // dynamic, along lanes
        outs[2].store(v.roll(shift, 0)); // dynamic, along sublanes
        outs[3].store(v.cast(DType::Bf16).roll(5, 1).cast(DType::F32)); // packed
        oq.store(q.load().roll(shift, 0));
    }))
}

#[test]
fn roll_rotates_as_jnp_roll_on_every_backend() {
    let k = rolls();
    let (x, q) = (f32s(&[8, 128]), Array::from_i64(DType::I32, &[16, 128], &(0..2048).collect::<Vec<_>>()));
    for shift in [0, 1, 7, 128, 300] {
        let out = same(&k, &[Array::from_i32(&[1], &[shift]), x.clone(), q.clone()]);
        let at = |o: usize, r: usize, c: usize| out[o].get_f64(r * 128 + c);
        let s = shift as usize;
        for (r, c) in [(0, 0), (3, 5), (7, 127)] {
            assert_eq!(at(0, r, c), x.get_f64(r * 128 + (c + 128 - 3) % 128));
            assert_eq!(at(1, r, c), x.get_f64(r * 128 + (c + 128 - s % 128) % 128), "shift {shift}");
            assert_eq!(at(2, r, c), x.get_f64(((r + 8 - s % 8) % 8) * 128 + c), "shift {shift}");
        }
        assert_eq!(out[4].get_f64(5 * 128 + 9), ((5 + 16 - s % 16) % 16 * 128 + 9) as f64, "shift {shift}");
    }
}

#[test]
fn a_negative_shift_is_an_error_at_its_line() {
    let k = rolls();
    let q = Array::zeros(DType::I32, &[16, 128]);
    let e = same_error(&k, &[Array::from_i32(&[1], &[-1]), f32s(&[8, 128]), q], "roll by -1");
    assert_eq!(e.first().op.as_deref(), Some("roll"), "{e}");
}

#[test]
fn roll_needs_a_2d_tile_and_an_i32_shift() {
    let e = build_kernel("bad_roll", Loc::caller(), || {
        let v = launch::prefetch("v", DType::F32, &[1]);
        let x = input("x", DType::F32, &[8, 128]);
        let _ = x.load().reshape(&[1024]).roll(1, 0);
        let _ = x.load().roll(1, 2);
        let _ = x.load().roll(v.get(0).cast(DType::I16), 1);
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("roll needs a tile of rank ≥ 2"), "{e}");
    assert!(e.contains("roll axis 2 out of range for shape [8, 128]"), "{e}");
    assert!(e.contains("roll shift must be an i32 scalar, got i16"), "{e}");
}

// ------------------------------------------------------------------------------------------ transposes

fn transposes() -> Kernel {
    ok(build_kernel("transposes", Loc::caller(), || {
        let x = input("x", DType::F32, &[8, 128]);
        let y = input("y", DType::Bf16, &[16, 128]);
        let z = input("z", DType::F32, &[2, 8, 128]);
        let ot = output("xt", DType::F32, &[128, 8]);
        let obt = output("yt", DType::Bf16, &[128, 16]);
        let ozt = output("zt", DType::F32, &[2, 128, 8]);
        let ozm = output("zmajor", DType::F32, &[8, 2, 128]);
        let oback = output("back", DType::F32, &[8, 128]);
        ot.store(x.load().t());
        obt.store(y.load().t());
        ozt.store(z.load().t());
        ozm.store(transpose(z.load(), &[1, 0, 2]));
        oback.store(x.load().t().t() + 1.0f32);
    }))
}

#[test]
fn transposes_move_elements_as_jnp_transpose() {
    let k = transposes();
    let (x, z) = (f32s(&[8, 128]), f32s(&[2, 8, 128]));
    let y = Array::from_f64(DType::Bf16, &[16, 128], &ramp(2048, 0.25, -9.0));
    let out = same(&k, &[x.clone(), y.clone(), z.clone()]);
    assert_eq!(out[0].get_f64(5 * 8 + 3), x.get_f64(3 * 128 + 5));
    assert_eq!(out[1].get_f64(100 * 16 + 15), y.get_f64(15 * 128 + 100));
    assert_eq!(out[2].get_f64(128 * 8 + 9 * 8 + 2), z.get_f64(1024 + 2 * 128 + 9));
    assert_eq!(out[3].get_f64(3 * 256 + 128 + 7), z.get_f64(1024 + 3 * 128 + 7));
    assert_eq!(out[4].get_f64(77), x.get_f64(77) + 1.0);
}

#[test]
fn a_transpose_needs_a_permutation() {
    let e = build_kernel("bad_transpose", Loc::caller(), || {
        let x = input("x", DType::F32, &[8, 128]);
        let _ = transpose(x.load(), &[0, 0]);
    })
    .unwrap_err();
    assert!(e.to_string().contains("transpose permutation [0, 0] is not a permutation of the 2 dimensions"), "{e}");
}

#[test]
fn rolls_and_transposes_compile_for_every_generation() {
    compiles_everywhere(&rolls());
    compiles_everywhere(&transposes());
}

// ------------------------------------------------------------------------------------------ matmuls

/// Products with a transposed lhs, both transposed, and batched (3-D) ones in f32, bf16 and int8.
fn matmuls() -> Kernel {
    use rpa_dsl::frontend::{dot, dot_general, matmul, matmul_t};
    ok(build_kernel("matmuls", Loc::caller(), || {
        let a = input("a", DType::F32, &[128, 128]);
        let b = input("b", DType::F32, &[8, 128]);
        let q = input("q", DType::Bf16, &[2, 8, 128]);
        let k = input("k", DType::Bf16, &[2, 16, 128]);
        let v = input("v", DType::Bf16, &[2, 128, 128]);
        let i = input("i", DType::I8, &[2, 32, 128]);
        let o_tl = output("tl", DType::F32, &[128, 8]);
        let o_tt = output("tt", DType::F32, &[8, 128]);
        let o_qk = output("qk", DType::F32, &[2, 8, 16]);
        let o_pv = output("pv", DType::F32, &[2, 8, 128]);
        let o_int = output("int", DType::I32, &[2, 128, 128]);
        let (a, b) = (a.load(), b.load());
        o_tl.store(dot_general(a, b, true, true, DType::F32)); // aᵀ bᵀ: [128, 8]
        o_tt.store(dot_general(b.t(), a, true, false, DType::F32)); // (bᵀ)ᵀ a: [8, 128]
        o_qk.store(matmul_t(q.load(), k.load())); // per head q kᵀ
        o_pv.store(matmul(q.load(), v.load()));
        o_int.store(dot_general(i.load(), i.load(), true, false, DType::I32)); // iᵀ i per batch
        let _ = dot;
    }))
}

/// Small integers, so that every product and sum is exact in f32 and bf16.
fn small_ints(dtype: DType, shape: &[usize]) -> Array {
    let n = shape.iter().product();
    Array::from_f64(dtype, shape, &(0..n).map(|i| ((i * 7 + 3) % 9) as f64 - 4.0).collect::<Vec<_>>())
}

#[test]
fn transposed_and_batched_matmuls_match_interpret_mode_bit_for_bit() {
    let k = matmuls();
    let inputs = [
        small_ints(DType::F32, &[128, 128]),
        small_ints(DType::F32, &[8, 128]),
        small_ints(DType::Bf16, &[2, 8, 128]),
        small_ints(DType::Bf16, &[2, 16, 128]),
        small_ints(DType::Bf16, &[2, 128, 128]),
        Array::from_i64(DType::I8, &[2, 32, 128], &(0..8192).map(|i| (i * 37 % 255) - 127).collect::<Vec<_>>()),
    ];
    let out = same(&k, &inputs);
    // Spot checks against the definition.
    let (a, b, q, kk) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3]);
    let tl = |r: usize, c: usize| (0..128).map(|t| a.get_f64(t * 128 + r) * b.get_f64(c * 128 + t)).sum::<f64>();
    assert_eq!(out[0].get_f64(5 * 8 + 3), tl(5, 3));
    let qk = |h: usize, r: usize, c: usize| {
        (0..128).map(|t| q.get_f64(h * 1024 + r * 128 + t) * kk.get_f64(h * 2048 + c * 128 + t)).sum::<f64>()
    };
    assert_eq!(out[2].get_f64(128 + 2 * 16 + 9), qk(1, 2, 9));
}

#[test]
fn matmul_shapes_are_checked() {
    use rpa_dsl::frontend::{dot_general, matmul};
    let e = build_kernel("bad_matmuls", Loc::caller(), || {
        let a = input("a", DType::F32, &[8, 128]);
        let b = input("b", DType::F32, &[2, 8, 128]);
        let _ = dot_general(a.load(), a.load(), true, false, DType::F32); // fine: [128, 128]
        let _ = matmul(a.load(), a.load());
        let _ = matmul(b.load(), a.load());
        let _ = rpa_dsl::frontend::matmul_t(a.load(), a.load().t()); // `matmul` would fit
        let _ = matmul(a.load(), b.load().reshape(&[32, 64])); // nothing fits
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("matmul contraction mismatch: lhs [8, 128] · rhs [8, 128]; `matmul_t(a, b)`"), "{e}");
    assert!(e.contains("rhsᵀ [128, 8]; `matmul(a, b)` (`a @ b`) fits these shapes"), "{e}");
    assert!(e.contains("rhs [32, 64]\n") || e.ends_with("rhs [32, 64]"), "{e}");
    assert!(e.contains("3-D ones with the same leading batch dimension, got [2, 8, 128] and [8, 128]"), "{e}");
}

#[test]
fn full_takes_a_scalar_of_its_dtype() {
    use rpa_dsl::frontend::{full, program_id};
    let line = line!() + 3;
    let e = build_kernel("full_of_i32", Loc::caller(), || {
        let _ = full(&[8, 128], program_id(0).cast(DType::F32), DType::F32); // fine
        let _ = full(&[8, 128], program_id(0), DType::F32);
        let _ = full(&[8, 128], 3, DType::Bf16); // a literal takes the dtype
    })
    .unwrap_err();
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    assert_eq!(e.first().loc.line, line, "{e}");
    assert!(
        e.first()
            .message
            .contains("`full` needs a scalar of the tile's dtype f32, got i32: cast it first (`.cast(F32)`)"),
        "{e}"
    );
}

#[test]
fn matmuls_compile_for_every_generation() {
    compiles_everywhere(&matmuls());
}

// ------------------------------------------------------------------------------------------ to scalars

/// `argmax`/`argmin` along both axes of f32, bf16 and i32 tiles; sums, maxima, minima and single
/// elements as scalars (stored as rows).
fn reductions() -> Kernel {
    ok(build_kernel("reductions", Loc::caller(), || {
        let x = input("x", DType::F32, &[8, 128]);
        let h = input("h", DType::Bf16, &[16, 128]);
        let q = input("q", DType::I32, &[8, 128]);
        let o_rows = output("argmax_rows", DType::I32, &[8, 1]);
        let o_cols = output("argmin_cols", DType::I32, &[1, 128]);
        let o_h = output("argmax_bf16", DType::I32, &[16, 1]);
        let o_q = output("argmin_i32", DType::I32, &[1, 128]);
        let o_s = output("scalars", DType::F32, &[8, 128]);
        let o_n = output("narrow", DType::F32, &[8, 128]);
        let o_u = output("unsigned", DType::U32, &[1, 128]);
        let (v, w) = (x.load(), q.load());
        o_rows.store(v.argmax(1));
        o_cols.store(v.argmin(0));
        o_h.store(h.load().argmax(1));
        o_q.store(w.argmin(0));
        let finite = rpa_dsl::frontend::select(rpa_dsl::frontend::cmp::ne(v, v), 0.0f32, v);
        let scalars = [
            finite.sum(),
            finite.max(),
            finite.min(),
            v.max(), // NaN: x holds NaNs
            v.item(&[3, 5]),
            w.sum().cast(DType::F32),
            w.max().cast(DType::F32),
            w.min().cast(DType::F32),
        ];
        o_s.store(rows(&scalars));
        // Narrow dtypes: widened to 32 bits on the TPU (its scalars are 32-bit).
        let (hv, b) = (h.load(), w.cast(DType::I8));
        let narrow = [
            hv.sum().cast(DType::F32),
            hv.max().cast(DType::F32),
            hv.item(&[15, 127]).cast(DType::F32),
            b.sum().cast(DType::F32),
            b.min().cast(DType::F32),
            b.item(&[1, 2]).cast(DType::F32),
            rpa_dsl::frontend::cmp::gt(w, 0i32).item(&[0, 3]).cast(DType::F32),
            w.cast(DType::U16).max().cast(DType::F32),
        ];
        o_n.store(rows(&narrow));
        // Unsigned max/min: libtpu reduces signed integers only (the sign bit is flipped around).
        o_u.store(w.cast(DType::U32).reduce_max(0) + w.cast(DType::U32).argmin(0).cast(DType::U32));
    }))
}

/// Each scalar broadcast to a row of 128.
fn rows(scalars: &[Scalar]) -> rpa_dsl::frontend::Tile {
    let rows: Vec<rpa_dsl::frontend::Tile> =
        scalars.iter().map(|s| rpa_dsl::frontend::broadcast(*s, &[1, 128])).collect();
    rpa_dsl::frontend::concat(&rows, 0)
}

fn reduction_inputs() -> Vec<Array> {
    // Small integers (exact sums) with ties, and NaNs in rows 2 and 5 and column 9.
    let mut x: Vec<f64> = (0..1024).map(|i| ((i * 7 + 3) % 13) as f64 - 6.0).collect();
    for i in [2 * 128 + 40, 2 * 128 + 100, 5 * 128, 6 * 128 + 9] {
        x[i] = f64::NAN;
    }
    let h = (0..2048).map(|i| ((i * 5 + 1) % 11) as f64 * 0.5).collect::<Vec<_>>();
    let q = (0..1024).map(|i| ((i * 31 + 7) % 97) - 48).collect::<Vec<i64>>();
    vec![
        Array::from_f64(DType::F32, &[8, 128], &x),
        Array::from_f64(DType::Bf16, &[16, 128], &h),
        Array::from_i64(DType::I32, &[8, 128], &q),
    ]
}

/// The first index of the extreme of `n` values `at(0..n)`, NaN first (as `jnp.argmax`).
fn first_extreme(n: usize, at: impl Fn(usize) -> f64, max: bool) -> f64 {
    if let Some(j) = (0..n).find(|&j| at(j).is_nan()) {
        return j as f64;
    }
    let best =
        (0..n).map(&at).fold(if max { f64::MIN } else { f64::MAX }, |a, b| if max { a.max(b) } else { a.min(b) });
    (0..n).find(|&j| at(j) == best).unwrap() as f64
}

#[test]
fn argmax_argmin_and_reductions_to_scalars_match_interpret_mode_bit_for_bit() {
    let k = reductions();
    let inputs = reduction_inputs();
    let out = same(&k, &inputs);
    let (x, h, q) = (&inputs[0], &inputs[1], &inputs[2]);
    for r in 0..8 {
        assert_eq!(out[0].get_f64(r), first_extreme(128, |j| x.get_f64(r * 128 + j), true), "row {r}");
    }
    for c in 0..128 {
        assert_eq!(out[1].get_f64(c), first_extreme(8, |j| x.get_f64(j * 128 + c), false), "column {c}");
        assert_eq!(out[3].get_f64(c), first_extreme(8, |j| q.get_f64(j * 128 + c), false), "column {c}");
    }
    for r in 0..16 {
        assert_eq!(out[2].get_f64(r), first_extreme(128, |j| h.get_f64(r * 128 + j), true), "row {r}");
    }
    let finite: Vec<f64> = x.to_f64().into_iter().map(|v| if v.is_nan() { 0.0 } else { v }).collect();
    let row = |i: usize| out[4].get_f64(i * 128);
    assert_eq!(row(0), finite.iter().sum::<f64>());
    assert_eq!((row(1), row(2)), (6.0, -6.0));
    assert!(row(3).is_nan());
    assert_eq!(row(4), x.get_f64(3 * 128 + 5));
    assert_eq!(row(5), q.to_i64().iter().sum::<i64>() as f64);
    let unsigned_max = (0..8).map(|r| q.to_i64()[r * 128 + 7] as u32).max().unwrap();
    let unsigned_argmin = first_extreme(8, |r| (q.to_i64()[r * 128 + 7] as u32) as f64, false) as u32;
    assert_eq!(out[6].get_f64(7), unsigned_max.wrapping_add(unsigned_argmin) as f64);
    let narrow = |i: usize| out[5].get_f64(i * 128);
    assert_eq!(narrow(2), h.get_f64(2047));
    let q8: Vec<i64> = q.to_i64().iter().map(|&v| v as i8 as i64).collect();
    assert_eq!(narrow(3), q8.iter().sum::<i64>() as i8 as f64, "an i8 sum wraps");
    assert_eq!(narrow(5), q8[130] as f64);
}

#[test]
fn an_element_index_must_be_inside_the_tile() {
    let e = build_kernel("bad_item", Loc::caller(), || {
        let _ = input("x", DType::F32, &[8, 128]).load().item(&[8, 0]);
    })
    .unwrap_err();
    assert!(e.to_string().contains("index [8, 0] is not an element of a tile of shape [8, 128]"), "{e}");
}

#[test]
fn reductions_to_scalars_and_argmax_compile_for_every_generation() {
    compiles_everywhere(&reductions());
}

//! Strided loads and stores (`ref[pl.ds(start, n, stride)]`) of 32-bit and packed dtypes: interpret
//! mode against PJRT-CPU (bit-exact), libtpu compiles for every generation, and the verifier refusing
//! exactly the packed accesses Mosaic cannot lower.
//!
//! Needs the XLA:CPU plugin and libtpu (`scripts/install-plugins`).

mod common;

use common::*;
use rpa_dsl::frontend::{build_kernel, launch, Ref, Scalar, Vmem};
use rpa_dsl::tpu::compile_unverified;
use rpa_dsl::{Array, DType, Kernel, Loc, TpuTarget};

/// An operand seen whole in VMEM.
fn input(name: &str, dtype: DType, shape: &[usize]) -> Ref<Vmem> {
    let map = move |_: &[Scalar]| shape.iter().map(|_| launch::block_index(0)).collect();
    launch::input_blocked(name, dtype, shape, shape, map)
}

fn output(name: &str, dtype: DType, shape: &[usize]) -> Ref<Vmem> {
    let map = move |_: &[Scalar]| shape.iter().map(|_| launch::block_index(0)).collect();
    launch::output_blocked(name, dtype, shape, shape, map, None)
}

fn ints(dtype: DType, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    Array::from_f64(dtype, shape, &(0..n).map(|i| ((i * 7 + 3) % 23) as f64 - 11.0).collect::<Vec<_>>())
}

/// Strided loads and stores Mosaic lowers for packed dtypes: static starts, refs and tiles whose
/// second-minor dimension is a multiple of the packing; plus 32-bit ones at a dynamic start.
fn packed() -> Kernel {
    build_kernel("packed_strided", Loc::caller(), || {
        let s = launch::prefetch("s", DType::I32, &[2]);
        let h = input("h", DType::Bf16, &[16, 128]);
        let b = input("b", DType::I8, &[32, 128]);
        let e = input("e", DType::F8E4M3, &[32, 128]);
        let w = input("w", DType::F32, &[24, 128]);
        let h3 = input("h3", DType::Bf16, &[4, 16, 128]);
        let o_odd = output("odd_rows", DType::Bf16, &[8, 128]);
        let o_even = output("even_rows", DType::Bf16, &[8, 128]);
        let o_b = output("i8_rows", DType::I8, &[8, 128]);
        let o_e = output("f8_rows", DType::F8E4M3, &[8, 128]);
        let o_w = output("f32_rows", DType::F32, &[8, 128]);
        let o_st = output("stored", DType::F32, &[16, 128]);
        let o_3 = output("planes", DType::Bf16, &[2, 16, 128]);
        let o_at = output("at_rows", DType::Bf16, &[8, 128]);
        o_odd.store(h.load_strided(1, 8, 2));
        o_even.store(h.load_strided(0, 8, 2));
        o_b.store(b.load_strided(3, 8, 3));
        o_e.store(e.load_strided(1, 8, 4));
        o_w.store(w.load_strided(s.get(0), 8, 2));
        o_st.store(rpa_dsl::frontend::zeros(&[16, 128], DType::F32));
        o_st.store_strided(s.get(0) % 2, 2, w.load_strided(3, 8, 2));
        o_3.store(h3.load_strided(1, 2, 2));
        o_at.store(h3.at(s.get(1)).load_strided(1, 8, 2));
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn packed_inputs(s: [i32; 2]) -> Vec<Array> {
    vec![
        Array::from_i32(&[2], &s),
        ints(DType::Bf16, &[16, 128]),
        ints(DType::I8, &[32, 128]),
        ints(DType::F8E4M3, &[32, 128]),
        ints(DType::F32, &[24, 128]),
        ints(DType::Bf16, &[4, 16, 128]),
    ]
}

#[test]
fn packed_strided_accesses_pick_rows_on_every_backend() {
    let k = packed();
    for s in [[0, 0], [9, 1], [5, 1]] {
        let inputs = packed_inputs(s);
        let out = same(&k, &inputs);
        let row = |a: &Array, r: usize| a.get_f64(r * 128 + 5);
        for r in 0..8 {
            assert_eq!(row(&out[0], r), row(&inputs[1], 2 * r + 1), "odd row {r}");
            assert_eq!(row(&out[1], r), row(&inputs[1], 2 * r), "even row {r}");
            assert_eq!(row(&out[2], r), row(&inputs[2], 3 * r + 3), "i8 row {r}");
            assert_eq!(row(&out[3], r), row(&inputs[3], 4 * r + 1), "f8 row {r}");
            assert_eq!(row(&out[4], r), row(&inputs[4], 2 * r + s[0] as usize), "f32 row {r}");
            let p = s[0] as usize % 2;
            assert_eq!(row(&out[5], 2 * r + p), row(&inputs[4], 2 * r + 3), "stored row {r}");
            assert_eq!(row(&out[5], 2 * r + 1 - p), 0.0, "kept row {r}");
            assert_eq!(row(&out[7], r), row(&inputs[5], s[1] as usize * 16 + 2 * r + 1), "at row {r}");
        }
        assert_eq!(out[6].get_f64(16 * 128 + 3), inputs[5].get_f64(3 * 16 * 128 + 3));
    }
}

#[test]
fn packed_strided_accesses_compile_for_every_generation() {
    compiles_everywhere(&packed());
}

/// One strided access of `dtype`: a load of `count` rows every `stride` from a `rows`-row input at
/// `start` (the prefetched scalar if `None`), or a store of them into a scratch buffer.
fn one_access(
    dtype: DType,
    rows: usize,
    start: Option<i32>,
    count: usize,
    stride: usize,
    store: bool,
) -> Result<Kernel, String> {
    build_kernel("one_strided", Loc::caller(), || {
        let s = launch::prefetch("s", DType::I32, &[1]);
        let x = input("x", dtype, &[rows, 128]);
        let o = output("o", dtype, &[count, 128]);
        let start = start.map_or(s.get(0), |v| Scalar::constant(DType::I32, v as f64));
        if store {
            let buf = launch::scratch_vmem("buf", dtype, &[rows, 128]);
            buf.store_strided(start, stride, x.ds(0, count).load());
            o.store(buf.ds(0, count).load());
        } else {
            o.store(x.load_strided(start, count, stride));
        }
    })
    .map_err(|e| e.to_string())
}

/// The same access built in f32 (which the verifier accepts) and retyped to `dtype`: what libtpu
/// says when rpa's verifier is not asked.
fn libtpu_says(dtype: DType, rows: usize, start: Option<i32>, count: usize, stride: usize, store: bool) -> String {
    let mut k = one_access(DType::F32, rows, start, count, stride, store).unwrap();
    let retype = |t: &mut rpa_dsl::ir::Type| match t {
        rpa_dsl::ir::Type::Ref(r) if r.dtype == DType::F32 => r.dtype = dtype,
        rpa_dsl::ir::Type::Vector { dtype: d, .. } if *d == DType::F32 => *d = dtype,
        _ => {}
    };
    k.values.iter_mut().for_each(retype);
    for p in &mut k.params {
        if let Some(a) = p.array.as_mut().filter(|a| a.dtype == DType::F32) {
            a.dtype = dtype;
        }
    }
    match compile_unverified(&k, TpuTarget::V6e) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_verifier_refuses_the_packed_strided_accesses_libtpu_refuses() {
    use DType::*;
    let cases: [(DType, usize, Option<i32>, usize, usize, bool, &str, &str); 6] = [
        (Bf16, 16, None, 8, 2, false, "strided load of bf16 at a dynamic start", "Only static indices"),
        (I8, 32, None, 8, 2, false, "strided load of i8 at a dynamic start", "Only static indices"),
        (
            Bf16,
            15,
            Some(0),
            8,
            2,
            false,
            "from `x`, whose second-minor dimension 15 is not a multiple of the packing 2",
            "base memref (15) must be a multiple of packing factor 2",
        ),
        (
            F8E4M3,
            30,
            Some(1),
            8,
            3,
            false,
            "dimension 30 is not a multiple of the packing 4",
            "base memref (30) must be a multiple of packing factor 4",
        ),
        (
            Bf16,
            16,
            Some(3),
            1,
            2,
            false,
            "as a tile whose second-minor dimension 1 is not a multiple of the packing 2",
            "result vector (1) must be a multiple of packing factor 2",
        ),
        (
            Bf16,
            16,
            Some(1),
            8,
            2,
            true,
            "strided store of bf16: Mosaic lowers strided stores of 32-bit dtypes only",
            "Strided store with non 32-bit data",
        ),
    ];
    for (dtype, rows, start, count, stride, store, ours, theirs) in cases {
        let e =
            one_access(dtype, rows, start, count, stride, store).err().unwrap_or_else(|| panic!("{ours}: accepted"));
        assert!(e.contains(ours) && e.contains("kernel `one_strided`") && e.contains("ops_strided.rs:"), "{e}");
        assert!(e.contains("bitcast") && e.contains("U32"), "a hint: {e}");
        let libtpu = libtpu_says(dtype, rows, start, count, stride, store);
        assert!(libtpu.contains(theirs), "{ours}: libtpu said {libtpu}");
    }
}

/// libtpu refuses strided loads and stores of rank-1 refs whatever the dtype ("Strided load with
/// 1D vector", "Strided store with 1D vector"): the verifier refuses them when the kernel is built.
#[test]
fn strided_accesses_of_rank_1_refs_are_refused() {
    for store in [false, true] {
        let e = build_kernel("rank1", Loc::caller(), || {
            let x = input("x", DType::F32, &[256]);
            let o = output("o", DType::F32, &[256]);
            if store {
                o.store_strided(0, 2, x.ds(0, 128).load());
            } else {
                o.ds(0, 128).store(x.load_strided(1, 128, 2));
            }
        })
        .unwrap_err()
        .to_string();
        let what = if store { "strided store" } else { "strided load" };
        assert!(e.contains(&format!("{what} of a rank-1 ref: Mosaic lowers strided accesses of 2-D tiles")), "{e}");
    }
}

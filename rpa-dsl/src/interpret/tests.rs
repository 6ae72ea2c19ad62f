//! The fast paths of interpret mode against straightforward element-at-a-time definitions.

use super::matmul::{matmul_f32, matmul_f32_naive};
use super::memory::{is_init, read_bits, row_major_strides, write_bits, Addr, Buffer, Pack, View};
use super::value::*;
use crate::dtype::DType;
use crate::ir::{BinaryOp, CmpOp, MemSpace};

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Mostly ordinary values, sometimes ±0, NaN or ±inf.
    fn f32(&mut self) -> f32 {
        match self.below(20) {
            0 => 0.0,
            1 => -0.0,
            2 => f32::NAN,
            3 => f32::INFINITY,
            4 => f32::NEG_INFINITY,
            _ => (self.below(2001) as f32 - 1000.0) / 64.0,
        }
    }
}

fn raw_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Bit patterns, with every NaN as the canonical one (arithmetic leaves a NaN's sign and payload
/// unspecified: vectorised and scalar code may differ there).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| if x.is_nan() { f32::NAN.to_bits() } else { x.to_bits() }).collect()
}

/// A random unpacked view into a buffer of `base` elements: a window of a random row-major array,
/// sliced, indexed, strided and with unit dims.
fn random_view(r: &mut Rng, base: usize) -> View {
    loop {
        let rank = 1 + r.below(4);
        let full: Vec<usize> = (0..rank).map(|_| 1 + r.below(5)).collect();
        if full.iter().product::<usize>() > base {
            continue;
        }
        let strides = row_major_strides(&full);
        let mut v =
            View { shape: vec![], strides: vec![], sizes: vec![], fits: vec![], ..View::whole(0, DType::F32, &[], 0) };
        for d in 0..rank {
            let start = r.below(full[d]);
            match r.below(4) {
                // Index the dim away.
                0 => v.offset += start as i64 * strides[d],
                // Every `step`th element from `start`.
                1 => {
                    let step = 1 + r.below(2);
                    v.offset += start as i64 * strides[d];
                    v.shape.push((full[d] - start).div_ceil(step));
                    v.sizes.push(None);
                    v.fits.push(true);
                    v.strides.push(strides[d] * step as i64);
                }
                _ => {
                    v.offset += start as i64 * strides[d];
                    v.shape.push(full[d] - start);
                    v.sizes.push(None);
                    v.fits.push(true);
                    v.strides.push(strides[d]);
                }
            }
        }
        return v;
    }
}

fn positions_by_for_each(v: &View) -> Vec<usize> {
    let mut out = Vec::new();
    v.for_each(|i, a| {
        assert_eq!(i, out.len());
        match a {
            Addr::One(p) => out.push(p),
            _ => unreachable!("unpacked view"),
        }
    });
    out
}

#[test]
fn runs_visit_the_elements_of_for_each_in_order() {
    let mut r = Rng(7);
    for _ in 0..2000 {
        let v = random_view(&mut r, 1000);
        let mut got = Vec::new();
        v.runs(|flat, p, len, s| {
            assert_eq!(flat, got.len());
            got.extend((0..len).map(|j| (p as i64 + j as i64 * s) as usize));
        });
        assert_eq!(got, positions_by_for_each(&v), "{v:?}");
    }
}

/// A buffer of `n` elements with random bits, a random half of them initialised.
fn random_buffer(r: &mut Rng, dtype: DType, n: usize) -> Buffer {
    let mut b = Buffer::poisoned("b", MemSpace::Vmem, dtype, &[n]);
    let mask = if dtype.bits() == 32 { u32::MAX } else { (1u32 << dtype.bits()) - 1 };
    for i in 0..n {
        if r.below(2) == 0 {
            b.bits[i] = r.next() as u32 & mask;
            b.init[i] = true;
        }
    }
    b
}

/// Views of every packing: unpacked ones, and bitcasts of a `[rows, cols]` window (16-bit
/// elements read as 32-bit ones, and 32-bit ones read as pairs of 16-bit ones).
fn views_of_every_packing(r: &mut Rng) -> Vec<View> {
    let mut out: Vec<View> = (0..50).map(|_| random_view(r, 1000)).collect();
    for _ in 0..20 {
        let (rows, cols) = (2 * (1 + r.below(4)), 1 + r.below(6));
        let off = r.below(100) as i64;
        let base =
            View { strides: vec![cols as i64 + 1, 1], offset: off, ..View::whole(0, DType::F32, &[rows, cols], 0) };
        let step = base.strides[0];
        out.push(View {
            shape: vec![rows / 2, cols],
            strides: vec![2 * step, 1],
            pack: Pack::Wide { k: 2, step, narrow: DType::Bf16 },
            ..base.clone()
        });
        out.push(View {
            dtype: DType::Bf16,
            shape: vec![rows * 2, cols],
            pack: Pack::Narrow { k: 2, dim: Some(0), row: 0, row_stride: step },
            ..base.clone()
        });
        out.push(base);
    }
    out
}

#[test]
fn load_store_snapshot_land_match_the_element_at_a_time_definitions() {
    let mut r = Rng(11);
    for v in views_of_every_packing(&mut r) {
        for dtype in [DType::F32, DType::I32, DType::Bf16, DType::I8] {
            // A bitcast view keeps its own dtype; unpacked ones are tried with every dtype.
            let v = if v.pack == Pack::Same { View { dtype, ..v.clone() } } else { v.clone() };
            let buf = random_buffer(&mut r, if v.pack == Pack::Same { v.dtype } else { DType::F32 }, 1000);
            let n = v.len();

            // snapshot
            let (mut want_bits, mut want_init) = (Vec::new(), Vec::new());
            v.for_each(|_, a| {
                want_bits.push(read_bits(&buf.bits, a, v.dtype));
                want_init.push(is_init(&buf.init, a));
            });
            assert_eq!(buf.snapshot(&v), (want_bits.clone(), want_init.clone()), "{v:?}");

            // load
            let (data, any_init) = buf.load(&v);
            assert_eq!(any_init, n == 0 || want_init.iter().any(|&b| b));
            match data {
                Data::F(x) => {
                    let decode =
                        |b| if v.dtype == DType::F32 { f32::from_bits(b) } else { v.dtype.float_from_bits(b) as f32 };
                    let want: Vec<f32> = want_bits.iter().map(|&b| decode(b)).collect();
                    assert_eq!(raw_bits(&x), raw_bits(&want), "{v:?}");
                }
                Data::I(x) => {
                    let want: Vec<i64> = want_bits.iter().map(|&b| v.dtype.int_from_bits(b)).collect();
                    assert_eq!(x, want, "{v:?}");
                }
            }

            // land: new bits with a random initialisation pattern
            let src: Vec<u32> = (0..n).map(|_| r.next() as u32 & 0x7fff).collect();
            let src_init: Vec<bool> = (0..n).map(|_| r.below(2) == 0).collect();
            let mut want = buf.clone();
            v.for_each(|i, a| {
                write_bits(&mut want.bits, &mut want.init, a, v.dtype, src[i]);
                if !src_init[i] {
                    match a {
                        Addr::One(p) | Addr::Part { pos: p, .. } => want.init[p] = false,
                        Addr::Wide { pos, k, step, .. } => {
                            (0..k).for_each(|j| want.init[(pos as i64 + j as i64 * step) as usize] = false)
                        }
                    }
                }
            });
            let mut got = buf.clone();
            got.land(&v, &src, &src_init);
            assert_eq!((&got.bits, &got.init), (&want.bits, &want.init), "{v:?}");

            // store, with and without a mask
            let mask: Vec<i64> = (0..n).map(|_| r.below(2) as i64).collect();
            for mask in [None, Some(&mask[..])] {
                let vals = if v.dtype.is_float() {
                    Data::F((0..n).map(|_| r.f32()).collect())
                } else {
                    Data::I((0..n).map(|_| v.dtype.wrap(r.next() as i64)).collect())
                };
                let mut want = buf.clone();
                v.for_each(|i, a| {
                    if mask.is_none_or(|m| m[i] != 0) {
                        let b = match &vals {
                            Data::F(x) => v.dtype.float_to_bits(x[i] as f64),
                            Data::I(x) => v.dtype.int_to_bits(x[i]),
                        };
                        write_bits(&mut want.bits, &mut want.init, a, v.dtype, b);
                    }
                });
                let mut got = buf.clone();
                got.store(&v, &vals, mask);
                assert_eq!((&got.bits, &got.init), (&want.bits, &want.init), "{v:?} mask {}", mask.is_some());
            }
        }
    }
}

/// A broadcast result shape (sometimes with an empty dim).
fn random_out(r: &mut Rng) -> Vec<usize> {
    (0..r.below(4)).map(|_| if r.below(8) == 0 { 0 } else { 1 + r.below(4) }).collect()
}

/// An operand shape that broadcasts to `out`: a suffix of it with some dims 1.
fn random_operand(r: &mut Rng, out: &[usize]) -> Vec<usize> {
    let drop = r.below(out.len() + 1);
    out[drop..].iter().map(|&e| if r.below(3) == 0 { 1 } else { e }).collect()
}

/// Element `flat` of the broadcast of an operand of `shape` to `out`.
fn broadcast_index(shape: &[usize], out: &[usize], mut flat: usize) -> usize {
    let mut idx = vec![0; out.len()];
    for d in (0..out.len()).rev() {
        idx[d] = flat % out[d];
        flat /= out[d];
    }
    let lead = out.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (d, &e)| acc * e + if e == 1 { 0 } else { idx[lead + d] })
}

#[test]
fn broadcasting_ops_match_indexing_each_element() {
    let mut r = Rng(3);
    for _ in 0..3000 {
        let out = random_out(&mut r);
        let (ash, bsh, csh) =
            (random_operand(&mut r, &out), random_operand(&mut r, &out), random_operand(&mut r, &out));
        let n: usize = out.iter().product();
        let a: Vec<f32> = (0..ash.iter().product()).map(|_| r.f32()).collect();
        let b: Vec<f32> = (0..bsh.iter().product()).map(|_| r.f32()).collect();
        let (ai, bi) = (|i| broadcast_index(&ash, &out, i), |i| broadcast_index(&bsh, &out, i));
        let ctx = format!("{ash:?} {bsh:?} -> {out:?}");

        assert_eq!(raw_bits(&expand(&a, &ash, &out)), raw_bits(&(0..n).map(|i| a[ai(i)]).collect::<Vec<_>>()), "{ctx}");
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Rem] {
            let want: Vec<f32> = (0..n).map(|i| binary_f(op, a[ai(i)], b[bi(i)])).collect();
            assert_eq!(bits(&binary_f_vec(op, (&a, &ash), (&b, &bsh), &out)), bits(&want), "{op:?} {ctx}");
        }
        for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
            let want: Vec<i64> = (0..n)
                .map(|i| {
                    let (x, y) = (a[ai(i)], b[bi(i)]);
                    let c = match op {
                        CmpOp::Eq => x == y,
                        CmpOp::Ne => x != y,
                        CmpOp::Lt => x < y,
                        CmpOp::Le => x <= y,
                        CmpOp::Gt => x > y,
                        CmpOp::Ge => x >= y,
                    };
                    c as i64
                })
                .collect();
            assert_eq!(compare_vec(op, (&a, &ash), (&b, &bsh), &out), want, "{op:?} {ctx}");
        }

        let ia: Vec<i64> = (0..a.len()).map(|_| r.below(200) as i64 - 100).collect();
        let ib: Vec<i64> = (0..b.len()).map(|_| r.below(200) as i64 - 100).collect();
        for op in
            [BinaryOp::Add, BinaryOp::Mul, BinaryOp::Max, BinaryOp::And, BinaryOp::Xor, BinaryOp::Shl, BinaryOp::Div]
        {
            for dt in [DType::I32, DType::I8, DType::U8] {
                let want: Result<Vec<i64>, _> = (0..n).map(|i| binary_i(op, dt, ia[ai(i)], ib[bi(i)])).collect();
                assert_eq!(binary_i_vec(op, dt, (&ia, &ash), (&ib, &bsh), &out), want, "{op:?} {dt} {ctx}");
            }
        }

        // select(cond, a, b) with the condition broadcast from a third shape.
        let c: Vec<i64> = (0..csh.iter().product()).map(|_| r.below(2) as i64).collect();
        let want: Vec<f32> =
            (0..n).map(|i| if c[broadcast_index(&csh, &out, i)] != 0 { a[ai(i)] } else { b[bi(i)] }).collect();
        assert_eq!(bits(&select_vec((&c, &csh), (&a, &ash), (&b, &bsh), &out)), bits(&want), "{csh:?} {ctx}");
    }
}

#[test]
fn integer_division_by_a_broadcast_zero_is_an_error_unless_nothing_is_computed() {
    let (a, b) = ([6i64, 7, 8], [2i64, 0]);
    let err = binary_i_vec(BinaryOp::Div, DType::I32, (&a, &[3, 1]), (&b, &[1, 2]), &[3, 2]);
    assert_eq!(err, Err("integer division by zero"));
    let err = binary_i_vec(BinaryOp::Rem, DType::I32, (&a, &[3, 1]), (&b, &[1, 2]), &[3, 2]);
    assert_eq!(err, Err("integer remainder by zero"));
    assert_eq!(binary_i_vec(BinaryOp::Div, DType::I32, (&[], &[0, 1]), (&b, &[1, 2]), &[0, 2]), Ok(vec![]));
}

#[test]
fn blocked_matmul_matches_the_definition_bit_for_bit() {
    let mut r = Rng(5);
    let shapes = [(1, 1, 1), (3, 5, 7), (4, 16, 16), (5, 17, 33), (9, 3, 20), (8, 128, 48), (13, 31, 17), (0, 3, 4)];
    for (m, k, n) in shapes.into_iter().chain([(4, 0, 5), (2, 3, 0)]) {
        for special in [false, true] {
            for transpose_rhs in [false, true] {
                // Without specials: plenty of zeros in A (the skipped steps) and finite B.
                let a: Vec<f32> = (0..m * k)
                    .map(|_| {
                        if special {
                            r.f32()
                        } else if r.below(3) == 0 {
                            0.0
                        } else {
                            r.below(100) as f32 / 7.0
                        }
                    })
                    .collect();
                let b: Vec<f32> =
                    (0..k * n).map(|_| if special { r.f32() } else { r.below(100) as f32 / 3.0 - 10.0 }).collect();
                let got = matmul_f32(&a, &b, m, k, n, transpose_rhs);
                let want = matmul_f32_naive(&a, &b, m, k, n, transpose_rhs);
                assert_eq!(raw_bits(&got), raw_bits(&want), "{m}x{k}x{n} transpose_rhs {transpose_rhs}");
            }
        }
    }
}

#[test]
fn matmul_keeps_ieee_zero_times_infinity() {
    // A zero row of A meets an infinity (and a NaN) in B: the result is NaN, not 0.
    let a = [0.0f32; 4 * 3];
    let mut b = vec![1.0f32; 3 * 20];
    b[20 + 5] = f32::INFINITY; // row 1, column 5
    b[2 * 20 + 17] = f32::NAN;
    let c = matmul_f32(&a, &b, 4, 3, 20, false);
    for i in 0..4 {
        for j in 0..20 {
            assert_eq!(c[i * 20 + j].is_nan(), j == 5 || j == 17, "({i}, {j})");
        }
    }
    let bt: Vec<f32> = (0..20 * 3).map(|x| b[(x % 3) * 20 + x / 3]).collect();
    assert_eq!(raw_bits(&matmul_f32(&a, &bt, 4, 3, 20, true)), raw_bits(&c));
}

#[test]
fn reductions_fold_each_output_in_order() {
    let mut r = Rng(9);
    for _ in 0..500 {
        let (outer, n, inner) = (r.below(20), r.below(6), r.below(4));
        let v: Vec<f32> = (0..outer * n * inner).map(|_| r.f32()).collect();
        let got = reduce_axis(&v, (outer, n, inner), 0.5, |a, e| a * 0.5 + e);
        let want: Vec<f32> = (0..outer * inner)
            .map(|oi| (0..n).fold(0.5, |a, j| a * 0.5 + v[((oi / inner) * n + j) * inner + oi % inner]))
            .collect();
        assert_eq!(raw_bits(&got), raw_bits(&want), "[{outer}, {n}, {inner}]");
    }
}

#[test]
fn exp_underflow_shortcut_is_exact() {
    // Every f32 in [-128, -104) and a sample further down: the shortcut's 0 is what libm returns.
    let lo = (-128f32).to_bits();
    let hi = (-104f32).to_bits();
    for bits in (hi + 1..=lo).chain((lo..(f32::NEG_INFINITY).to_bits()).step_by(9973)) {
        let x = f32::from_bits(bits);
        assert_eq!(x.exp().to_bits(), 0, "e^{x}");
        assert_eq!(super::value::exp_f32(x).to_bits(), 0);
    }
    for x in [-104f32, -103.9, -103.0, -87.5, 0.0, 88.7, f32::INFINITY] {
        assert_eq!(super::value::exp_f32(x).to_bits(), x.exp().to_bits(), "e^{x}");
    }
    assert_eq!(super::value::exp_f32(f32::NEG_INFINITY), 0.0);
    assert!(super::value::exp_f32(f32::NAN).is_nan());
}

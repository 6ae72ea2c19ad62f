//! PJRT-CPU results do not depend on the host CPU's instruction set: narrow floats agree bit for
//! bit with interpret mode, and matmuls and reductions (whose summation order is XLA's) give the same
//! bits at every instruction-set cap.
//!
//! Each kernel runs on XLA:CPU compiled at every instruction-set cap XLA accepts
//! (`xla_cpu_max_isa`: SSE4.2 without F16C, AVX, AVX2 with FMA, AVX-512, and the host's own, which
//! may have AVX512-FP16/BF16 or AMX). A CPU with native half arithmetic once contracted an f16
//! `h * h - h` into one rounding here; the lowering now keeps narrow floats as their bits and
//! converts with integer ops, so the caps must all give interpret mode's bits.
//!
//! Needs the XLA:CPU plugin (`scripts/install-plugins`).

use rpa_dsl::cpu::{compile_options, CpuBackend};
use rpa_dsl::frontend::{build_kernel, launch, Scalar, Tile};
use rpa_dsl::pjrt::OptionOverride;
use rpa_dsl::{Array, DType, Kernel, Loc};

const NARROW: [DType; 4] = [DType::Bf16, DType::F16, DType::F8E4M3, DType::F8E5M2];

/// The instruction-set caps to compile at (`""`: the host's own).
const ISA_CAPS: [&str; 5] = ["SSE4_2", "AVX", "AVX2", "AVX512", ""];

fn backend(isa: &str) -> CpuBackend {
    let mut options = compile_options();
    if !isa.is_empty() {
        options.env_option_overrides.push(("xla_cpu_max_isa".into(), OptionOverride::String(isa.into())));
    }
    CpuBackend::with_options(options).unwrap_or_else(|e| panic!("cannot start the XLA:CPU PJRT backend: {e}"))
}

/// Runs `k` in interpret mode and on XLA:CPU at every cap; every output's bits must agree, except
/// that a NaN matches any NaN (payloads and signs of NaNs are not specified).
fn same_bits_at_every_isa(k: &Kernel, inputs: &[Array]) {
    let want = k.interpret(inputs).unwrap_or_else(|e| panic!("interpret mode: {e}"));
    for isa in ISA_CAPS {
        let got = backend(isa).run(k, inputs).unwrap_or_else(|e| panic!("XLA:CPU (max isa {isa:?}): {e}"));
        for (o, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!((g.dtype(), g.shape()), (w.dtype(), w.shape()));
            let nan = |a: &Array, i: usize| a.dtype().is_float() && a.get_f64(i).is_nan();
            let differs = |i: usize| g.bits()[i] != w.bits()[i] && !(nan(g, i) && nan(w, i));
            if let Some(i) = (0..g.len()).find(|&i| differs(i)) {
                panic!(
                    "kernel `{}` at max isa {isa:?}: output {o} ({}) differs at element {i}: cpu {:#x} vs interpret {:#x} \
                     (input {:#x})",
                    k.name,
                    g.dtype(),
                    g.bits()[i],
                    w.bits()[i],
                    inputs[0].bits()[i],
                );
            }
        }
    }
}

fn whole() -> impl Fn(&[Scalar]) -> Vec<Scalar> + Copy {
    |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)]
}

/// A kernel mapping one `[rows, 128]` input of `from` to one output per function.
fn map_kernel(name: &str, from: DType, rows: usize, outs: &[(DType, fn(Tile) -> Tile)]) -> Kernel {
    build_kernel(name, Loc::caller(), || {
        let x = launch::input_blocked("x", from, &[rows, 128], &[rows, 128], whole());
        let refs: Vec<_> = outs
            .iter()
            .enumerate()
            .map(|(i, (dt, _))| {
                launch::output_blocked(&format!("o{i}"), *dt, &[rows, 128], &[rows, 128], whole(), None)
            })
            .collect();
        let v = x.load();
        for (o, (_, f)) in refs.iter().zip(outs) {
            o.store(f(v));
        }
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `bits` padded (with copies of its first element) to whole rows of 128.
fn rows_of(dtype: DType, mut bits: Vec<u32>) -> Array {
    let rows = bits.len().div_ceil(128).next_multiple_of(8);
    bits.resize(rows * 128, bits[0]);
    Array::from_bits(dtype, &[rows, 128], bits)
}

#[test]
fn every_narrow_float_widens_exactly() {
    for dt in NARROW {
        let all: Vec<u32> = (0..1u32 << dt.bits()).collect();
        let x = rows_of(dt, all);
        let k = map_kernel("widen", dt, x.shape()[0], &[(DType::F32, |v| v.cast(DType::F32))]);
        same_bits_at_every_isa(&k, &[x]);
    }
}

/// f32 values on, next to and between every pair of neighbouring values of `dt` (ties, one f32 ulp
/// either side), plus zeros, f32 subnormals, the largest finite f32, infinities and NaN payloads.
fn rounding_cases(dt: DType) -> Vec<u32> {
    let mut values: Vec<f32> = (0..1u32 << dt.bits()).map(|b| dt.float_from_bits(b) as f32).collect();
    values.retain(|v| v.is_finite());
    values.sort_by(f32::total_cmp);
    values.dedup();
    let mut bits = Vec::new();
    for w in values.windows(2) {
        let mid = ((w[0] as f64 + w[1] as f64) / 2.0) as f32;
        for v in [w[0], mid] {
            let b = v.to_bits();
            bits.extend([b, b.wrapping_add(1), b.wrapping_sub(1)]);
        }
    }
    let top = *values.last().unwrap() as f64;
    let step = top - dt.float_from_bits(dt.float_to_bits(top) - 1);
    for v in [top + step / 2.0, top + step, 1e30, f32::MAX as f64] {
        bits.extend([(v as f32).to_bits(), (-v as f32).to_bits()]);
    }
    bits.extend([0, 0x8000_0000, 1, 0x8000_0001, 0x007f_ffff, 0x7f80_0000, 0xff80_0000]);
    bits.extend([0x7fc0_0000, 0xffc0_0000, 0x7f80_0001, 0x7fa0_1234, 0xff9f_e000, 0x7fe0_0000]);
    bits
}

#[test]
fn f32_values_round_to_narrow_floats_as_interpret_mode() {
    for dt in NARROW {
        let x = rows_of(DType::F32, rounding_cases(dt));
        let outs: [(DType, fn(Tile) -> Tile); 4] = [
            (DType::Bf16, |v| v.cast(DType::Bf16)),
            (DType::F16, |v| v.cast(DType::F16)),
            (DType::F8E4M3, |v| v.cast(DType::F8E4M3)),
            (DType::F8E5M2, |v| v.cast(DType::F8E5M2)),
        ];
        let k = map_kernel("narrow", DType::F32, x.shape()[0], &outs);
        same_bits_at_every_isa(&k, &[x]);
    }
}

#[test]
fn narrow_floats_convert_between_themselves_with_one_rounding() {
    for dt in NARROW {
        let x = rows_of(dt, (0..1u32 << dt.bits()).collect());
        let outs: [(DType, fn(Tile) -> Tile); 4] = [
            (DType::Bf16, |v| v.cast(DType::Bf16)),
            (DType::F16, |v| v.cast(DType::F16)),
            (DType::F8E4M3, |v| v.cast(DType::F8E4M3)),
            (DType::F8E5M2, |v| v.cast(DType::F8E5M2)),
        ];
        let k = map_kernel("renarrow", dt, x.shape()[0], &outs);
        same_bits_at_every_isa(&k, &[x]);
    }
}

#[test]
fn integers_round_once_to_narrow_floats() {
    // Past 2^24 an i32 is not an f32: converting through a rounded f32 would round twice. These
    // sit just off ties of bf16/f16/fp8 (and overflow f16 and the fp8 formats).
    let mut ints: Vec<i64> = vec![0, 1, -1, 65504, 65519, 65520, 448, 464, 465, 57344, 61439, 61440];
    for e in 8..31 {
        let p = 1i64 << e;
        for d in [-2, -1, 0, 1, 2] {
            ints.extend([p + d, p + p / 256 + d, p + p / 512 + d, p + p / 2048 + d, p + 3 * p / 512 + d]);
        }
    }
    ints.extend([i32::MAX as i64, i32::MIN as i64, i32::MIN as i64 + 1]);
    let signed: Vec<i64> = ints.iter().flat_map(|&v| [v, -v]).filter(|v| i32::try_from(*v).is_ok()).collect();
    let outs: [(DType, fn(Tile) -> Tile); 4] = [
        (DType::Bf16, |v| v.cast(DType::Bf16)),
        (DType::F16, |v| v.cast(DType::F16)),
        (DType::F8E4M3, |v| v.cast(DType::F8E4M3)),
        (DType::F8E5M2, |v| v.cast(DType::F8E5M2)),
    ];
    for from in [DType::I32, DType::U32] {
        let bits: Vec<u32> = signed.iter().map(|&v| v as i32 as u32).collect();
        let x = rows_of(from, bits);
        let k = map_kernel("int_to_narrow", from, x.shape()[0], &outs);
        same_bits_at_every_isa(&k, &[x]);
    }
}

#[test]
fn narrow_float_arithmetic_rounds_after_every_op_at_every_isa() {
    // `h * h - h` in f16 is the chain a CPU with AVX512-FP16 computed with one rounding; the
    // others are the bf16/fp8 equivalents and ops whose f32 result is exact before rounding.
    let ramp: Vec<f32> = (0..16 * 128).map(|i| ((i * 37 + 11) % 1001) as f32 * 0.0173 - 8.0).collect();
    let x = Array::from_f32(DType::F32, &[16, 128], &ramp);
    let outs: [(DType, fn(Tile) -> Tile); 6] = [
        (DType::F32, |v| {
            let h = v.cast(DType::F16);
            (h * h - h).sqrt().cast(DType::F32)
        }),
        (DType::F16, |v| {
            let h = v.cast(DType::F16);
            h * h + h * 0.375f32 - h / (h.abs() + 3.0f32)
        }),
        (DType::Bf16, |v| {
            let b = v.cast(DType::Bf16);
            (b * b + b) / (b.abs() + 1.0f32) - b * b
        }),
        (DType::F8E4M3, |v| {
            let f = (v * 40.0f32).cast(DType::F8E4M3);
            f * f - f
        }),
        (DType::F8E5M2, |v| {
            let f = (v * 1000.0f32).cast(DType::F8E5M2);
            f * f + f
        }),
        (DType::F16, |v| rpa_dsl::frontend::max(v.cast(DType::F16) * 3.0f32, v.cast(DType::F16).reduce_max(0))),
    ];
    let k = map_kernel("narrow_math", DType::F32, 16, &outs);
    same_bits_at_every_isa(&k, &[x]);
}

/// Runs `k` on XLA:CPU at every cap; the results must be the same bits as the host's own.
fn same_bits_across_isas(k: &Kernel, inputs: &[Array]) {
    let host = backend("").run(k, inputs).unwrap_or_else(|e| panic!("XLA:CPU: {e}"));
    let want = k.interpret(inputs).unwrap_or_else(|e| panic!("interpret mode: {e}"));
    for (g, w) in host.iter().zip(&want) {
        assert!(g.all_close(w, 1e-5, 1e-5), "kernel `{}`: XLA:CPU is not close to interpret mode", k.name);
    }
    for isa in &ISA_CAPS[..ISA_CAPS.len() - 1] {
        let got = backend(isa).run(k, inputs).unwrap_or_else(|e| panic!("XLA:CPU (max isa {isa:?}): {e}"));
        for (o, (g, h)) in got.iter().zip(&host).enumerate() {
            if let Some(i) = (0..g.len()).find(|&i| g.bits()[i] != h.bits()[i]) {
                panic!(
                    "kernel `{}`: output {o} at max isa {isa:?} differs from the host's at element {i}: {:#x} vs {:#x}",
                    k.name,
                    g.bits()[i],
                    h.bits()[i]
                );
            }
        }
    }
}

#[test]
fn matmuls_and_sums_are_the_same_at_every_isa() {
    use rpa_dsl::frontend::{dot, matmul, matmul_t};
    let k = build_kernel("dots", Loc::caller(), || {
        let x = launch::input_blocked("x", DType::F32, &[128, 256], &[128, 256], whole());
        let y = launch::input_blocked("y", DType::F32, &[256, 128], &[256, 128], whole());
        let o = [
            launch::output_blocked("f32", DType::F32, &[128, 128], &[128, 128], whole(), None),
            launch::output_blocked("f32_t", DType::F32, &[128, 128], &[128, 128], whole(), None),
            launch::output_blocked("bf16", DType::F32, &[128, 128], &[128, 128], whole(), None),
            launch::output_blocked("sum", DType::F32, &[128, 128], &[128, 128], whole(), None),
        ];
        let (a, b) = (x.load(), y.load());
        o[0].store(matmul(a, b));
        o[1].store(matmul_t(a.slice(&[0, 0], &[128, 128]), b.slice(&[0, 0], &[128, 128])));
        o[2].store(dot(a.cast(DType::Bf16), b.cast(DType::Bf16), false, DType::F32));
        o[3].store((a * a).reduce_sum(1).broadcast_to(&[128, 128]) + b.slice(&[0, 0], &[128, 128]).reduce_sum(0));
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let vals = |n: usize, s: f32| -> Vec<f32> { (0..n).map(|i| ((i * 7919 % 2003) as f32 - 1001.0) * s).collect() };
    let x = Array::from_f32(DType::F32, &[128, 256], &vals(128 * 256, 1.3e-3));
    let y = Array::from_f32(DType::F32, &[256, 128], &vals(256 * 128, 0.7e-3));
    same_bits_across_isas(&k, &[x, y]);
}

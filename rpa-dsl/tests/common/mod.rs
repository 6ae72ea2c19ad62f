//! Helpers shared by the op suites (`ops_*.rs`): PJRT-CPU against interpret mode, libtpu compiles.
//! Each suite uses some of them.
#![allow(dead_code)]

use rpa_dsl::cpu::CpuBackend;
use rpa_dsl::tpu::compile_for;
use rpa_dsl::{Array, Kernel, KernelError, TpuTarget};

/// `n` values `(i · 37 + 11) mod 101`, scaled and shifted: a deterministic spread.
pub fn ramp(n: usize, scale: f64, shift: f64) -> Vec<f64> {
    (0..n).map(|i| ((i * 37 + 11) % 101) as f64 * scale + shift).collect()
}

/// `n` values evenly spaced over `[lo, hi]`.
pub fn linspace(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect()
}

pub fn interpret(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    k.interpret(inputs).unwrap_or_else(|e| panic!("interpret mode: {e}"))
}

pub fn cpu(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    rpa_dsl::cpu::run(k, inputs).unwrap_or_else(|e| {
        let mlir = rpa_dsl::lower::stablehlo::lower(k).unwrap_or_default();
        panic!("PJRT-CPU: {e}\n--- module ---\n{mlir}")
    })
}

/// Bit-exact agreement of every output of PJRT-CPU with interpret mode (any NaN matches any NaN).
pub fn same(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    let (want, got) = (interpret(k, inputs), cpu(k, inputs));
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!((g.dtype(), g.shape()), (w.dtype(), w.shape()), "output {o}");
        let nan = |a: &Array, i: usize| a.dtype().is_float() && a.get_f64(i).is_nan();
        if let Some(i) = (0..g.len()).find(|&i| g.bits()[i] != w.bits()[i] && !(nan(g, i) && nan(w, i))) {
            panic!(
                "`{}` output {o} differs first at element {i}: cpu {} vs interpret {}",
                k.name,
                g.get_f64(i),
                w.get_f64(i)
            );
        }
    }
    want
}

/// The distance in f32 units in the last place between two f32 values (0 for two NaNs).
pub fn ulps(a: f32, b: f32) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            i64::from(i32::MIN) - i64::from(i)
        } else {
            i64::from(i)
        }
    };
    key(a).abs_diff(key(b))
}

/// PJRT-CPU's outputs (f32) against interpret mode's: the largest distance in ulps of each
/// output, after checking that NaNs and infinities sit at the same elements.
pub fn max_ulps(k: &Kernel, inputs: &[Array]) -> Vec<u64> {
    let (want, got) = (interpret(k, inputs), cpu(k, inputs));
    got.iter()
        .zip(&want)
        .enumerate()
        .map(|(o, (g, w))| {
            (0..g.len())
                .map(|i| {
                    let (a, b) = (g.get_f64(i) as f32, w.get_f64(i) as f32);
                    assert_eq!(a.is_nan(), b.is_nan(), "`{}` output {o} element {i}: cpu {a} vs interpret {b}", k.name);
                    ulps(a, b)
                })
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Compiles `k` with libtpu for every TPU generation.
pub fn compiles_everywhere(k: &Kernel) {
    for t in TpuTarget::ALL {
        let c = compile_for(k, t).unwrap_or_else(|e| {
            panic!("{} on {t}: {e}\n--- Mosaic ---\n{}", k.name, rpa_dsl::lower::mosaic::lower(k).unwrap_or_default())
        });
        assert!(c.code_size > 0 && c.serialized_size > 0, "{c:?}");
    }
}

/// Interpret mode and checked PJRT-CPU refuse `k` on `inputs` with the same diagnostic, which
/// contains `expect`; unchecked PJRT-CPU runs it.
pub fn same_error(k: &Kernel, inputs: &[Array], expect: &str) -> KernelError {
    let want = match k.interpret(inputs) {
        Err(e) => e,
        Ok(_) => panic!("interpret mode accepted `{}`", k.name),
    };
    assert!(want.to_string().contains(expect), "interpret mode said: {want}");
    let checked = CpuBackend::global().unwrap_or_else(|e| panic!("{e}"));
    let got = match checked.run(k, inputs) {
        Err(e) => e,
        Ok(_) => panic!("checked PJRT-CPU accepted `{}` (interpret mode: {want})", k.name),
    };
    assert_eq!(got.first(), want.first(), "checked PJRT-CPU vs interpret mode");
    let unchecked = CpuBackend::global_unchecked().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = unchecked.run(k, inputs) {
        panic!("unchecked PJRT-CPU refused `{}`: {e}", k.name);
    }
    want
}

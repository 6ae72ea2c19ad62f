//! The RPA kernels' Mosaic AOT-compiles with libtpu for v5e, v6e and v7x (no TPU needed), for every
//! feature of the kernel: dtypes (f32, bf16, fp8 e4m3/e5m2 and int8 caches), head dims 64/80/128/240,
//! GQA shapes, sliding window, soft cap, non-causal, KV-share and the log-sum-exp output.

use rpa_dsl::tpu::compile_for;
use rpa_dsl::{DType, TpuTarget};
use rpa_kernels::rpa::launch::build;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
use rpa_kernels::rpa::{RpaCase, RpaOptions};

fn compile_all(q: DType, kv: DType, heads: (usize, usize), d: usize, opts: RpaOptions) {
    let mut spec = BatchSpec::new(&[(5, 40), (1, 33), (16, 64)], heads, d, 16, q);
    spec.kv_dtype = kv;
    let x = make_batch(&spec);
    let opts = RpaOptions { chunk_prefill_size: Some(16), ..opts };
    for case in [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed] {
        let k = build(&x, &opts, case).unwrap();
        for t in TpuTarget::ALL {
            let c = compile_for(&k, t)
                .unwrap_or_else(|e| panic!("{case:?} {q}/{kv} heads {heads:?} d {d} {opts:?} on {t}: {e}"));
            assert!(c.code_size > 0, "{c:?}");
        }
    }
}

#[test]
fn rpa_f32_and_bf16_compile_for_every_generation() {
    compile_all(DType::F32, DType::F32, (8, 2), 128, RpaOptions::default());
    compile_all(DType::Bf16, DType::Bf16, (8, 2), 128, RpaOptions::default());
}

#[test]
fn rpa_quantized_caches_compile_for_every_generation() {
    for kv in [DType::F8E4M3, DType::F8E5M2, DType::I8] {
        let opts = RpaOptions { k_scale: Some(0.5), v_scale: Some(0.5), ..Default::default() };
        compile_all(DType::Bf16, kv, (8, 2), 128, opts);
    }
}

#[test]
fn rpa_head_shapes_compile_for_every_generation() {
    for (heads, d) in [((32, 8), 128), ((12, 2), 80), ((5, 1), 240), ((3, 3), 64), ((4, 1), 64)] {
        compile_all(DType::Bf16, DType::Bf16, heads, d, RpaOptions::default());
    }
}

#[test]
fn rpa_options_compile_for_every_generation() {
    for opts in [
        RpaOptions { sliding_window: Some(128), soft_cap: Some(50.0), ..Default::default() },
        RpaOptions { causal: false, ..Default::default() },
        RpaOptions { update_kv_cache: false, ..Default::default() },
        RpaOptions { return_lse: true, ..Default::default() },
        RpaOptions { acc_dtype: Some(DType::Bf16), ..Default::default() },
    ] {
        compile_all(DType::Bf16, DType::Bf16, (8, 2), 128, opts);
    }
}

#[test]
fn rpa_on_a_tpu_runs_or_says_that_no_tpu_is_attached() {
    use rpa_kernels::rpa::launch::{run, Backend};
    use rpa_kernels::rpa::reference;
    let x = make_batch(&BatchSpec::new(&[(5, 40), (1, 33)], (8, 2), 128, 16, DType::Bf16));
    let opts = RpaOptions::default();
    match run(Backend::Tpu(TpuTarget::V6e), &x, &opts) {
        Ok(got) => {
            // On a machine with a TPU: the same answers as the reference.
            let want = reference::run(&x, &opts);
            assert_eq!(got.kv_cache, want.kv_cache);
            for i in 0..6 * 8 * 128 {
                let (a, b) = (got.output.get_f64(i), want.output.get_f64(i));
                assert!((a - b).abs() <= 2e-2 * (1.0 + b.abs()), "element {i}: {a} vs {b}");
            }
        }
        Err(e) => assert!(e.to_string().contains("is a TPU attached?"), "{e}"),
    }
}

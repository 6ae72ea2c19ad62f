//! The book's examples and the RPA kernels on PJRT-CPU (the StableHLO lowering) agree with interpret
//! mode (needs `scripts/install-plugins`).

use rpa_dsl::{Array, DType, Kernel};
use rpa_kernels::demo::random_values;
use rpa_kernels::examples;

fn f32_array(shape: &[usize], seed: u64) -> Array {
    Array::from_f64(DType::F32, shape, &random_values(shape.iter().product(), seed))
}

fn agree(k: &Kernel, inputs: &[Array], tol: f64) {
    let want = k.interpret(inputs).unwrap();
    let got = rpa_dsl::cpu::run(k, inputs).unwrap_or_else(|e| panic!("{}: {e}", k.name));
    for (g, w) in got.iter().zip(&want) {
        let err = g.max_abs_diff(w);
        assert!(err <= tol, "{}: max |cpu - interpret| = {err}", k.name);
    }
}

#[test]
fn examples_on_pjrt_cpu_match_interpret_mode() {
    agree(&examples::elementwise_add(64).unwrap(), &[f32_array(&[64, 128], 1), f32_array(&[64, 128], 2)], 0.0);
    agree(
        &examples::tiled_matmul(128, 256, 256, 64, 128, 128, DType::F32).unwrap(),
        &[f32_array(&[128, 256], 3), f32_array(&[256, 256], 4)],
        1e-4,
    );
    agree(&examples::double_buffered_scale(8).unwrap(), &[f32_array(&[64, 128], 5)], 0.0);
    agree(&examples::row_softmax(32, 256).unwrap(), &[f32_array(&[32, 256], 6)], 1e-6);
}

#[test]
fn rpa_on_pjrt_cpu_matches_interpret_mode() {
    use rpa_kernels::rpa::launch::{ragged_paged_attention_on, Backend};
    use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
    use rpa_kernels::rpa::RpaOptions;
    for dtype in [DType::F32, DType::Bf16] {
        let mut x = make_batch(&BatchSpec::new(&[(1, 20), (1, 7), (4, 4), (9, 30), (2, 17)], (4, 2), 128, 4, dtype));
        x.distribution = [2, 3, 5];
        let opts = RpaOptions { chunk_prefill_size: Some(4), sliding_window: Some(12), ..Default::default() };
        let (out_i, cache_i, _) = ragged_paged_attention_on(Backend::Interpret, &x, &opts).unwrap();
        let (out_c, cache_c, _) =
            ragged_paged_attention_on(Backend::PjrtCpu, &x, &opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache_c, cache_i, "the updated cache must be bit-identical");
        let n = 20 * 4 * 128;
        for i in 0..n {
            let (a, b) = (out_c.get_f64(i), out_i.get_f64(i));
            assert!((a - b).abs() <= 1e-2 + 1e-2 * b.abs(), "{dtype} element {i}: cpu {a}, interpret {b}");
        }
    }
}

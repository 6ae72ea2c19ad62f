//! The dense reference (one StableHLO program on PJRT-CPU, `rpa::dense`) against the plain-Rust
//! f64 reference: outputs within the bounds the RPA kernels are held to, the updated cache bit for
//! bit (NaN in every slot that holds no token included), on batches of the upstream lists with
//! GQA, head_dim padding, bf16, a sliding window and a soft cap, causal and not.

use rpa_dsl::DType;
use rpa_kernels::rpa::dense::{dense_attention, dense_program, padded_q_len, run};
use rpa_kernels::rpa::reference::{self, RpaInputs};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, DECODE_KV, MIXED, PREFILL};
use rpa_kernels::rpa::RpaOptions;

/// The bound of `tests/rpa_matrix.rs` (atol = rtol) by the narrowest dtype: f32 keeps the
/// reference's digits, bf16 outputs are within a few bf16 ulps.
fn tolerance(x: &RpaInputs) -> f64 {
    if x.queries.dtype().bits().min(x.kv_cache.dtype().bits()) == 32 {
        1e-4
    } else {
        2e-2
    }
}

/// The largest output error over the tokens the sequences own, and whether the caches agree bit
/// for bit.
fn compare(x: &RpaInputs, got: &(rpa_dsl::Array, rpa_dsl::Array), opts: &RpaOptions) -> (f64, Option<usize>) {
    let want = reference::run(x, opts);
    let n = x.cu_q_lens[x.distribution[2] as usize] as usize * x.num_q_heads() * x.head_dim();
    let tol = tolerance(x);
    let mut worst = 0.0f64;
    for i in 0..n {
        let (a, b) = (got.0.get_f64(i), want.output.get_f64(i));
        // Relative to the bound: > 1 fails.
        let err = (a - b).abs() / (tol + tol * b.abs());
        worst = if err.is_nan() { f64::INFINITY } else { worst.max(err) };
    }
    // Rows of tokens no sequence owns keep the queries.
    for i in n..x.queries.len() {
        assert_eq!(got.0.bits()[i], x.queries.bits()[i], "padding row element {i} changed");
    }
    assert_eq!(got.1.shape(), want.kv_cache.shape());
    let differs = (0..got.1.len()).find(|&i| got.1.bits()[i] != want.kv_cache.bits()[i]);
    (worst, differs)
}

fn check(x: &RpaInputs, opts: &RpaOptions) {
    let got = dense_attention(x, opts).unwrap_or_else(|e| panic!("{e}"));
    let (worst, differs) = compare(x, &got, opts);
    assert!(worst <= 1.0, "output error {worst:.3} × the bound {}", tolerance(x));
    assert_eq!(differs, None, "cache element differs from the reference");
}

fn opts() -> RpaOptions {
    RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), ..Default::default() }
}

#[test]
fn mixed_list_f32_with_gqa() {
    let x = make_batch(&BatchSpec::new(&MIXED, (8, 2), 128, 16, DType::F32));
    assert_eq!(padded_q_len(&x), 251);
    check(&x, &opts());
}

#[test]
fn prefill_list_bf16_with_padded_head_dim() {
    let x = make_batch(&BatchSpec::new(&PREFILL, (4, 2), 80, 16, DType::Bf16));
    assert_eq!(x.kv_cache.shape()[4], 128);
    check(&x, &opts());
}

#[test]
fn decode_list_with_a_sliding_window_and_a_soft_cap() {
    let lens: Vec<(usize, usize)> = DECODE_KV.iter().map(|&kv| (1, kv)).collect();
    let x = make_batch(&BatchSpec::new(&lens, (8, 1), 64, 32, DType::F32));
    check(&x, &RpaOptions { sliding_window: Some(100), soft_cap: Some(30.0), ..opts() });
}

#[test]
fn bf16_without_the_causal_mask_and_fewer_live_sequences_than_slots() {
    let mut x = make_batch(&BatchSpec::new(&[(7, 30), (3, 3), (12, 45), (1, 17)], (4, 4), 128, 8, DType::Bf16));
    // Only the first three sequences are live: the fourth's tokens keep their queries.
    x.distribution = [0, 0, 3];
    check(&x, &RpaOptions { causal: false, ..opts() });
}

#[test]
fn kv_share_reads_the_cache_as_it_is() {
    // KV-share: the new tokens' K/V are already in the cache (put there by a first call), and
    // nothing is written.
    let mut x = make_batch(&BatchSpec::new(&[(4, 20), (2, 9), (6, 6)], (4, 2), 128, 8, DType::F32));
    x.kv_cache = reference::ragged_paged_attention(&x, &opts()).1;
    let share = RpaOptions { update_kv_cache: false, ..opts() };
    check(&x, &share);
    assert_eq!(dense_attention(&x, &share).unwrap().1.bits(), x.kv_cache.bits());
}

/// The comparison fails when the program computes something else: a different scale, or a
/// reference run with the causal mask off.
#[test]
fn the_check_catches_a_wrong_program() {
    let x = make_batch(&BatchSpec::new(&MIXED[..6], (4, 2), 128, 16, DType::F32));
    let wrong = dense_program(&x, &RpaOptions { sm_scale: 0.5, ..opts() }).unwrap();
    let got = run(&wrong, &x).unwrap();
    let (worst, differs) = compare(&x, &got, &opts());
    assert!(worst > 1.0, "a wrong sm_scale went unnoticed (error {worst})");
    assert_eq!(differs, None);
    let (worst, _) = compare(&x, &got, &RpaOptions { sm_scale: 0.5, causal: false, ..opts() });
    assert!(worst > 1.0, "a missing causal mask went unnoticed (error {worst})");
    // And the right program passes on the same batch.
    let right = dense_program(&x, &opts()).unwrap();
    assert_ne!(right.mlir, wrong.mlir);
    let (worst, _) = compare(&x, &run(&right, &x).unwrap(), &opts());
    assert!(worst <= 1.0, "error {worst}");
}

#[test]
fn integer_caches_and_q_quantization_are_refused() {
    let x = make_batch(&BatchSpec::new(&[(2, 5)], (2, 1), 128, 8, DType::F32));
    let e = dense_program(&x, &RpaOptions { q_scale: Some(2.0), ..opts() }).unwrap_err();
    assert!(e.to_string().contains("q quantization"), "{e}");
}

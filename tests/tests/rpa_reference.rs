//! The plain-Rust RPA reference and the input validation, checked against independent ground
//! truth (dense causal attention) and against the rules they enforce.

use rpa_dsl::DType;
use rpa_kernels::rpa::layout::{cache_index, kv_cache_shape, merge_kv};
use rpa_kernels::rpa::reference::{dense_causal_attention, ragged_paged_attention, RpaInputs};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
use rpa_kernels::rpa::validate::{validate_block_sizes, validate_dynamic, validate_static, RpaError};
use rpa_kernels::rpa::{BlockSizes, RpaCase, RpaOptions};

#[test]
fn cache_shape_pads_heads_to_the_packing_and_lanes_to_128() {
    assert_eq!(kv_cache_shape(10, 16, 8, 128, DType::F32), [10, 16, 16, 1, 128]);
    assert_eq!(kv_cache_shape(10, 16, 8, 80, DType::Bf16), [10, 16, 8, 2, 128]);
    assert_eq!(kv_cache_shape(10, 16, 1, 64, DType::F8E4M3), [10, 16, 1, 4, 128]);
    assert_eq!(kv_cache_shape(10, 16, 3, 240, DType::F8E5M2), [10, 16, 2, 4, 256]);
}

#[test]
fn merge_kv_interleaves_k_and_v_per_kv_head() {
    let k = rpa_dsl::Array::from_f64(DType::Bf16, &[2, 2, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.]);
    let v = rpa_dsl::Array::from_f64(
        DType::Bf16,
        &[2, 2, 3],
        &[-1., -2., -3., -4., -5., -6., -7., -8., -9., -10., -11., -12.],
    );
    let m = merge_kv(&k, &v);
    assert_eq!(m.shape(), &[2, 2, 2, 128]);
    let shape = [1, 2, 2, 2, 128];
    // token 1, kv head 1: K at combined head 2, V at 3; padding lanes are zero.
    assert_eq!(m.get_f64(cache_index(&shape, 0, 1, 2, 0)), 10.0);
    assert_eq!(m.get_f64(cache_index(&shape, 0, 1, 3, 2)), -12.0);
    assert_eq!(m.get_f64(cache_index(&shape, 0, 1, 3, 3)), 0.0);
}

/// A sequence whose whole context is new (`q_len == kv_len`) is plain causal attention.
#[test]
fn full_prefill_equals_dense_causal_attention() {
    let spec = BatchSpec::new(&[(13, 13)], (2, 2), 16, 4, DType::F32);
    let x = make_batch(&spec);
    let opts = RpaOptions { sm_scale: 0.25, ..Default::default() };
    let (out, _) = ragged_paged_attention(&x, &opts);
    let (t, h, d) = (13, 2, 16);
    let q = x.queries.to_f64();
    let dense = dense_causal_attention(
        &q[..t * h * d],
        &x.keys.to_f64()[..t * h * d],
        &x.values.to_f64()[..t * h * d],
        t,
        h,
        d,
        0.25,
    );
    let got = out.to_f64();
    for i in 0..t * h * d {
        assert!((got[i] - dense[i]).abs() < 1e-6, "element {i}: {} vs {}", got[i], dense[i]);
    }
}

#[test]
fn the_cache_update_writes_exactly_the_new_slots() {
    let spec = BatchSpec::new(&[(3, 10), (1, 5), (4, 4)], (4, 2), 32, 4, DType::Bf16);
    let x = make_batch(&spec);
    let (_, cache) = ragged_paged_attention(&x, &RpaOptions::default());
    let shape = x.cache_shape();
    let pps = x.pages_per_seq();
    let mut written = vec![false; cache.len()];
    for (b, &(q, kv)) in spec.seq_lens.iter().enumerate() {
        for pos in kv - q..kv {
            let page = x.page_indices[b * pps + pos / 4] as usize;
            for c in 0..shape[2] * shape[3] {
                for dd in 0..shape[4] {
                    written[cache_index(&shape, page, pos % 4, c, dd)] = true;
                }
            }
        }
    }
    let new_rows = merge_kv(&x.keys, &x.values);
    let mut tok = 0;
    for (b, &(q, kv)) in spec.seq_lens.iter().enumerate() {
        for (i, pos) in (kv - q..kv).enumerate() {
            let page = x.page_indices[b * pps + pos / 4] as usize;
            let idx = cache_index(&shape, page, pos % 4, 1, 7);
            let src = cache_index(&[1, new_rows.shape()[0], shape[2], shape[3], shape[4]], 0, tok + i, 1, 7);
            assert_eq!(cache.bits()[idx], new_rows.bits()[src]);
        }
        tok += q;
    }
    for (i, &w) in written.iter().enumerate() {
        if !w {
            assert_eq!(cache.bits()[i], x.kv_cache.bits()[i], "byte outside the written slots changed at {i}");
        }
    }
}

#[test]
fn kv_share_reads_the_cache_and_writes_nothing() {
    let spec = BatchSpec::new(&[(2, 9)], (2, 1), 16, 4, DType::F32);
    let mut x = make_batch(&spec);
    // Fill the new tokens' slots too (KV-share: the cache already holds them).
    let (_, filled) = ragged_paged_attention(&x, &RpaOptions::default());
    x.kv_cache = filled;
    let opts = RpaOptions { update_kv_cache: false, ..Default::default() };
    let (out_a, cache_a) = ragged_paged_attention(&x, &opts);
    assert_eq!(cache_a, x.kv_cache);
    // Different new K/V do not change anything.
    let mut y = x.clone();
    y.keys = rpa_dsl::Array::zeros(DType::F32, x.keys.shape());
    let (out_b, _) = ragged_paged_attention(&y, &opts);
    assert_eq!(out_a, out_b);
    assert!(out_a.to_f64()[..2 * 2 * 16].iter().all(|v| v.is_finite()));
}

fn ok_batch() -> (RpaInputs, RpaOptions) {
    let x = make_batch(&BatchSpec::new(&[(3, 10), (1, 5), (4, 4)], (4, 2), 32, 4, DType::F32));
    validate_static(&x, &RpaOptions::default()).unwrap();
    validate_dynamic(&x, &RpaOptions::default()).unwrap();
    (x, RpaOptions::default())
}

fn seq_err(e: RpaError) -> (usize, &'static str, String) {
    match e {
        RpaError::Sequence { seq, field, message } => (seq, field, message),
        other => panic!("expected a sequence error, got {other}"),
    }
}

#[test]
fn bad_metadata_names_the_sequence_and_field() {
    let (x, opts) = ok_batch();
    let mut y = x.clone();
    y.kv_lens[1] = 0;
    let (seq, field, _) = seq_err(validate_dynamic(&y, &opts).unwrap_err());
    assert_eq!((seq, field), (1, "kv_lens"));

    let mut y = x.clone();
    y.cu_q_lens[2] = y.cu_q_lens[1];
    let (seq, field, msg) = seq_err(validate_dynamic(&y, &opts).unwrap_err());
    assert_eq!((seq, field), (1, "cu_q_lens"), "{msg}");

    let mut y = x.clone();
    let pps = y.pages_per_seq();
    y.page_indices[pps * 2] = 10_000;
    let (seq, field, msg) = seq_err(validate_dynamic(&y, &opts).unwrap_err());
    assert_eq!((seq, field), (2, "page_indices"), "{msg}");

    let mut y = x.clone();
    y.kv_lens[0] = 4 * y.pages_per_seq() as i32 + 1;
    let (seq, field, msg) = seq_err(validate_dynamic(&y, &opts).unwrap_err());
    assert_eq!((seq, field), (0, "kv_lens"), "{msg}");
    assert!(msg.contains("pages"), "{msg}");

    // Sharing a read-only prefix page is fine (prefix caching); writing into a shared page is not.
    let mut y = x.clone();
    y.page_indices[pps] = y.page_indices[0];
    validate_dynamic(&y, &opts).unwrap();
    y.page_indices[pps + 1] = y.page_indices[0];
    let (seq, field, msg) = seq_err(validate_dynamic(&y, &opts).unwrap_err());
    assert_eq!((seq, field), (1, "page_indices"), "{msg}");

    let mut y = x.clone();
    y.distribution = [0, 2, 1];
    assert!(matches!(validate_dynamic(&y, &opts), Err(RpaError::Batch { field: "distribution", .. })));

    let mut y = x.clone();
    y.distribution = [2, 2, 3];
    let (seq, field, msg) = seq_err(validate_dynamic(&y, &opts).unwrap_err());
    assert_eq!((seq, field), (0, "cu_q_lens"), "{msg}");
    assert!(msg.contains("decode"), "{msg}");
}

#[test]
fn static_rules_reject_bad_shapes_and_block_sizes() {
    let (x, opts) = ok_batch();
    let mut y = x.clone();
    y.keys = rpa_dsl::Array::zeros(DType::Bf16, x.keys.shape());
    assert!(validate_static(&y, &opts).unwrap_err().to_string().contains("cache dtype"));
    assert!(matches!(validate_static(&y, &opts), Err(RpaError::Argument { arg: "keys", .. })));
    let mut y = x.clone();
    y.kv_cache = rpa_dsl::Array::zeros(x.kv_cache.dtype(), &[1, 2, 3]);
    assert!(matches!(validate_static(&y, &opts), Err(RpaError::Argument { arg: "kv_cache", .. })));
    let bad = RpaOptions { sliding_window: Some(0), ..Default::default() };
    assert!(validate_static(&x, &bad).unwrap_err().to_string().contains("sliding_window must be positive"));
    let bad = RpaOptions { soft_cap: Some(0.0), ..Default::default() };
    assert!(validate_static(&x, &bad).unwrap_err().to_string().contains("soft_cap"));
    // Upstream's heuristic once produced (16, 80, 32, 48): 80 is not a multiple of 48.
    let b = BlockSizes { bq: 16, bkv: 80, bq_compute: 32, bkv_compute: 48 };
    assert!(matches!(validate_block_sizes(RpaCase::Mixed, b, 16), Err(RpaError::Argument { arg: "mixed_blocks", .. })));
    let b = BlockSizes { bq: 64, bkv: 256, bq_compute: 32, bkv_compute: 128 };
    assert!(validate_block_sizes(RpaCase::Mixed, b, 16).is_ok());
}

/// Each dynamic rule broken in turn, through the public entry point: the named error comes back
/// before any kernel is built or launched (a launch error would be `RpaError::Kernel`).
#[test]
fn every_dynamic_rule_broken_in_turn_is_refused_before_launch() {
    use rpa_kernels::rpa::launch::{run, Backend};
    let (x, opts) = ok_batch();
    let pps = x.pages_per_seq();
    type Breaker = fn(&mut RpaInputs, usize);
    let cases: [(&str, Breaker, Option<usize>, &str); 10] = [
        ("q_len = 0", |y, _| y.cu_q_lens[2] = y.cu_q_lens[1], Some(1), "cu_q_lens"),
        ("cu_q_lens past the tokens", |y, _| y.cu_q_lens[3] = 1000, Some(2), "cu_q_lens"),
        ("kv_len < q_len", |y, _| y.kv_lens[2] = 3, Some(2), "kv_lens"),
        ("kv_len needs too many pages", |y, pps| y.kv_lens[1] = (4 * pps + 1) as i32, Some(1), "kv_lens"),
        ("page id past the cache", |y, pps| y.page_indices[pps] = 10_000, Some(1), "page_indices"),
        ("negative page id", |y, _| y.page_indices[0] = -1, Some(0), "page_indices"),
        ("written page shared", |y, pps| y.page_indices[2 * pps] = y.page_indices[pps], Some(2), "page_indices"),
        ("distribution not ordered", |y, _| y.distribution = [2, 1, 3], None, "distribution"),
        ("distribution past max_num_seqs", |y, _| y.distribution = [0, 0, 100], None, "distribution"),
        ("prefill bucket without chunk size", |y, _| y.distribution = [0, 1, 3], None, "distribution"),
    ];
    for (what, breaker, seq, field) in cases {
        let mut y = x.clone();
        breaker(&mut y, pps);
        for backend in [Backend::Interpret, Backend::PjrtCpu] {
            match (run(backend, &y, &opts), seq) {
                (Err(RpaError::Sequence { seq: s, field: f, .. }), Some(want)) if s == want && f == field => {}
                (Err(RpaError::Batch { field: f, .. }), None) if f == field => {}
                (other, _) => panic!("{what} on {backend:?}: expected {field} of {seq:?}, got {:?}", other.err()),
            }
        }
    }
}

/// With validation switched off (trusted callers), bad metadata reaches the kernel: interpret mode
/// still refuses the out-of-bounds DMA with an error at the kernel's source line — never a panic
/// or a write outside the cache.
#[test]
fn unvalidated_bad_metadata_is_caught_by_interpret_mode() {
    use rpa_kernels::rpa::launch::{run, Backend};
    let (mut x, opts) = ok_batch();
    x.page_indices[0] = 10_000;
    let opts = RpaOptions { validate: false, ..opts };
    match run(Backend::Interpret, &x, &opts) {
        Err(RpaError::Kernel(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("kernels/src/rpa/kernel.rs:") && msg.contains("rpa_mixed"), "{msg}");
        }
        other => panic!("expected a kernel error, got {:?}", other.err()),
    }
}

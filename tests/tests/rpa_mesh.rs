//! RPA on a mesh (tensor parallel over heads, context parallel over each sequence's cached keys,
//! and both), the devices simulated one by one on interpret mode: the cache bit-identical to the
//! single-device run, outputs (merged over cp with their log-sum-exp) within the single-device
//! tolerance of the f64 reference. Small shapes and representative subsets of the upstream lists.

use rpa_dsl::DType;
use rpa_kernels::rpa::fuzz::{lse_tolerance, random_batch, tolerance};
use rpa_kernels::rpa::launch::{run, Backend};
use rpa_kernels::rpa::mesh::{run_devices, RpaMesh};
use rpa_kernels::rpa::reference::{self, RpaInputs};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, DECODE_KV, MIXED, PREFILL};
use rpa_kernels::rpa::validate::RpaError;
use rpa_kernels::rpa::RpaOptions;

/// Runs `x` on a `tp × cp` mesh and on one device; checks the cache bits and the outputs.
fn check(tp: usize, cp: usize, x: &RpaInputs, opts: &RpaOptions) {
    let mesh = RpaMesh::new(tp * cp, tp, cp).unwrap();
    let single = run(Backend::Interpret, x, opts).unwrap();
    let got = run_devices(Backend::Interpret, mesh, x, opts).unwrap_or_else(|e| panic!("tp {tp} cp {cp}: {e}"));
    let want = reference::run(x, opts);
    assert_eq!(got.kv_cache.shape(), single.kv_cache.shape());
    for i in 0..got.kv_cache.len() {
        assert_eq!(got.kv_cache.bits()[i], single.kv_cache.bits()[i], "tp {tp} cp {cp}: cache element {i} differs");
    }
    let tol = tolerance(x.queries.dtype(), x.kv_cache.dtype());
    let tokens = x.cu_q_lens[x.distribution[2] as usize] as usize;
    let row = x.num_q_heads() * x.head_dim();
    for i in 0..tokens * row {
        let (a, b) = (got.output.get_f64(i), want.output.get_f64(i));
        assert!(
            (a - b).abs() <= tol + tol * b.abs(),
            "tp {tp} cp {cp}: output token {} head {}: mesh {a}, reference {b} (single device {})",
            i / row,
            (i % row) / x.head_dim(),
            single.output.get_f64(i)
        );
    }
    if let Some(lse) = &got.lse {
        for i in 0..tokens * x.num_q_heads() {
            let (a, b) = (lse.get_f64(i), want.lse[i]);
            assert!((a - b).abs() <= lse_tolerance(opts) * (1.0 + b.abs()), "tp {tp} cp {cp}: lse {i}: {a} vs {b}");
        }
    }
    assert_eq!(got.head_shards.len(), tp);
    assert_eq!(got.device_stats.len(), tp * cp);
}

fn batch(lens: &[(usize, usize)], heads: (usize, usize), dtype: DType) -> RpaInputs {
    make_batch(&BatchSpec::new(lens, heads, 128, 16, dtype))
}

fn opts() -> RpaOptions {
    RpaOptions { sm_scale: 0.088, ..Default::default() }
}

#[test]
fn upstream_decode_prefill_and_mixed_subsets_on_tp_cp_and_both() {
    let decode: Vec<(usize, usize)> = DECODE_KV[..4].iter().map(|&kv| (1, kv)).collect();
    let mut x = batch(&decode, (4, 2), DType::F32);
    x.distribution = [4, 4, 4];
    let prefill = batch(&PREFILL[..3], (4, 2), DType::F32);
    let mixed = batch(&MIXED[..5], (4, 2), DType::F32);
    for (tp, cp) in [(2, 1), (1, 2), (2, 2), (1, 4)] {
        check(tp, cp, &x, &opts());
        check(tp, cp, &prefill, &opts());
        check(tp, cp, &mixed, &opts());
    }
}

#[test]
fn fewer_kv_heads_than_tp_replicates_them() {
    let x = batch(&MIXED[..3], (8, 2), DType::Bf16);
    check(4, 1, &x, &opts());
    check(8, 1, &x, &opts());
    check(4, 2, &x, &opts());
}

#[test]
fn sliding_window_soft_cap_and_lse_on_cp() {
    let x = batch(&MIXED[..4], (4, 2), DType::F32);
    let o = RpaOptions { sliding_window: Some(40), soft_cap: Some(5.0), return_lse: true, ..opts() };
    check(2, 2, &x, &o);
    check(1, 4, &x, &o);
}

#[test]
fn int8_and_fp8_caches_on_tp_and_cp() {
    for kv in [DType::I8, DType::F8E4M3] {
        let mut spec = BatchSpec::new(&MIXED[..3], (4, 2), 128, 16, DType::Bf16);
        spec.kv_dtype = kv;
        let x = make_batch(&spec);
        let scale = if kv == DType::I8 { 1.0 / 127.0 } else { 0.5 };
        let o = RpaOptions { k_scale: Some(scale), v_scale: Some(scale), ..opts() };
        check(2, 1, &x, &o);
        check(1, 2, &x, &o);
    }
}

#[test]
fn sequences_shorter_than_cp_pages_leave_devices_empty() {
    // 18 keys are 2 pages of 16: with cp = 4 two devices hold none of them.
    let x = batch(&[(5, 18), (1, 7), (3, 33)], (2, 1), DType::F32);
    check(1, 4, &x, &RpaOptions { return_lse: true, ..opts() });
}

#[test]
fn attention_sinks_join_the_cp_merge_once() {
    let x = batch(&MIXED[..3], (4, 2), DType::F32);
    let sinks = rpa_dsl::Array::from_f64(DType::F32, &[4], &[0.5, -1.0, 2.0, 0.0]);
    check(2, 2, &x, &RpaOptions { attention_sink: Some(sinks), return_lse: true, ..opts() });
}

#[test]
fn random_ragged_batches() {
    for seed in 0..6 {
        let b = random_batch(seed);
        let (hq, hkv) = (b.x.num_q_heads(), b.x.num_kv_heads());
        let tp = [4, 2, 1].into_iter().find(|&tp| RpaMesh { tp, cp: 1 }.check_heads(hq, hkv).is_ok()).unwrap();
        let cp = [2, 4][seed as usize % 2];
        eprintln!("seed {seed}: tp {tp} cp {cp}: {}", b.what);
        check(tp, cp, &b.x, &b.opts);
    }
}

#[test]
fn bad_meshes_are_refused_naming_the_value() {
    let err = RpaMesh::new(4, 3, 2).unwrap_err().to_string();
    assert!(err.contains("tp · cp = 3 · 2 = 6") && err.contains("4 devices"), "{err}");
    let x = batch(&MIXED[..2], (6, 3), DType::F32);
    let mesh = RpaMesh::new(2, 2, 1).unwrap();
    match run_devices(Backend::Interpret, mesh, &x, &opts()) {
        Err(RpaError::Argument { arg: "mesh", message }) => assert!(message.contains("tp = 2"), "{message}"),
        other => panic!("expected a mesh error, got {other:?}"),
    }
}

#[test]
fn shard_metadata_errors_name_the_sequence_and_field() {
    let x = batch(&MIXED[..2], (4, 2), DType::F32);
    let mut after = vec![0; x.max_num_seqs()];
    after[1] = -3;
    let err = rpa_kernels::rpa::launch::run_shard(Backend::Interpret, &x, &opts(), &after).unwrap_err();
    assert!(matches!(err, RpaError::Sequence { seq: 1, field: "keys_after", .. }), "{err}");
    let err = rpa_kernels::rpa::launch::run_shard(Backend::Interpret, &x, &opts(), &[0]).unwrap_err();
    assert!(matches!(err, RpaError::Argument { arg: "keys_after", .. }), "{err}");
}

#[test]
fn llama_3_8b_serving_batch_in_bf16_on_a_2x2_mesh() {
    let (x, o) = rpa_kernels::demo::serving_batch();
    check(2, 2, &x, &o);
}

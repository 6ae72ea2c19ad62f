//! RPA on a mesh as one SPMD program on PJRT-CPU devices (2, 4 and 8): the per-device kernels,
//! the log-sum-exp merge over `cp` and the all-gather over `tp` in one module. Checked against
//! the single-device run (cache bit-identical), the f64 reference (single-device tolerance) and
//! the same program in interpret mode. Needs the XLA:CPU plugin (`scripts/install-plugins`).

use rpa_dsl::DType;
use rpa_kernels::rpa::fuzz::random_batch;
use rpa_kernels::rpa::fuzz::{lse_tolerance, tolerance};
use rpa_kernels::rpa::launch::{run, Backend};
use rpa_kernels::rpa::mesh::spmd::{self, OutputSharding, SpmdBackend};
use rpa_kernels::rpa::mesh::{MeshOutput, RpaMesh};
use rpa_kernels::rpa::reference::{self, RpaInputs};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, DECODE_KV, MIXED, PREFILL};
use rpa_kernels::rpa::RpaOptions;

fn check(tp: usize, cp: usize, x: &RpaInputs, opts: &RpaOptions, out: OutputSharding) -> MeshOutput {
    let mesh = RpaMesh::new(tp * cp, tp, cp).unwrap();
    let got = spmd::run(SpmdBackend::Cpu, mesh, x, opts, out).unwrap_or_else(|e| panic!("tp {tp} cp {cp}: {e}"));
    let single = run(Backend::Interpret, x, opts).unwrap();
    assert!(got.kv_cache == single.kv_cache, "tp {tp} cp {cp}: the cache differs from the single-device run");
    let want = reference::run(x, opts);
    let tol = tolerance(x.queries.dtype(), x.kv_cache.dtype());
    let n = x.cu_q_lens[x.distribution[2] as usize] as usize * x.num_q_heads() * x.head_dim();
    for i in 0..n {
        let (a, b) = (got.output.get_f64(i), want.output.get_f64(i));
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "tp {tp} cp {cp}: output {i}: {a} vs reference {b}");
    }
    if let Some(lse) = &got.lse {
        for i in 0..n / x.head_dim() {
            let (a, b) = (lse.get_f64(i), want.lse[i]);
            assert!((a - b).abs() <= lse_tolerance(opts) * (1.0 + b.abs()), "tp {tp} cp {cp}: lse {i}: {a} vs {b}");
        }
    }
    got
}

fn batch(heads: (usize, usize), dtype: DType) -> RpaInputs {
    // Decode, prefill-like and mixed sequences; 18 and 7 keys are shorter than 4 pages of 16.
    let mut x = make_batch(&BatchSpec::new(&[(1, 129), (1, 7), (5, 18), (32, 100)], heads, 128, 16, dtype));
    x.distribution = [2, 2, 4];
    x
}

#[test]
fn tp_cp_and_both_on_2_4_and_8_cpu_devices() {
    let x = batch((8, 2), DType::F32);
    let o = RpaOptions { sm_scale: 0.088, return_lse: true, sliding_window: Some(64), ..Default::default() };
    let heads = check(2, 1, &x, &o, OutputSharding::Heads);
    let gathered = check(2, 1, &x, &o, OutputSharding::Gathered);
    assert!(heads.output == gathered.output, "the heads and gathered outputs differ");
    check(1, 2, &x, &o, OutputSharding::Gathered);
    check(2, 2, &x, &o, OutputSharding::Gathered);
    // 8 devices: kv heads replicated 4× over tp (Hkv = 2 < tp = 8).
    check(8, 1, &x, &o, OutputSharding::Gathered);
    check(4, 2, &x, &o, OutputSharding::Heads);
}

#[test]
fn bf16_int8_soft_cap_on_a_2x2_mesh_match_interpret_mode() {
    let mut spec = BatchSpec::new(&MIXED[..4], (4, 2), 128, 16, DType::Bf16);
    spec.kv_dtype = DType::I8;
    let x = make_batch(&spec);
    let o = RpaOptions {
        sm_scale: 0.088,
        soft_cap: Some(5.0),
        k_scale: Some(1.0 / 127.0),
        v_scale: Some(1.0 / 127.0),
        ..Default::default()
    };
    let cpu = check(2, 2, &x, &o, OutputSharding::Gathered);
    let mesh = RpaMesh::new(4, 2, 2).unwrap();
    let interp = spmd::run(SpmdBackend::Interpret, mesh, &x, &o, OutputSharding::Gathered).unwrap();
    assert!(cpu.kv_cache == interp.kv_cache);
    let tol = tolerance(DType::Bf16, DType::I8);
    for i in 0..interp.output.len() {
        let (a, b) = (cpu.output.get_f64(i), interp.output.get_f64(i));
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "output {i}: PJRT-CPU {a}, interpret {b}");
    }
}

#[test]
fn head_dim_256_and_attention_sinks_on_cp() {
    let x = make_batch(&BatchSpec::new(&[(3, 20), (1, 40)], (2, 2), 256, 16, DType::F32));
    let o = RpaOptions { sm_scale: 0.0625, return_lse: true, ..Default::default() };
    check(1, 2, &x, &o, OutputSharding::Gathered);
    // Sinks join the softmax once: on cp rank 0 only. The 7- and 18-key sequences leave cp ranks
    // without keys (their log-sum-exp is −∞ even with a sink of −∞).
    let x = batch((4, 2), DType::F32);
    let sinks = rpa_dsl::Array::from_f64(DType::F32, &[4], &[0.5, -1.0, 2.0, 0.0]);
    check(2, 2, &x, &RpaOptions { attention_sink: Some(sinks.clone()), ..o.clone() }, OutputSharding::Gathered);
    check(1, 4, &x, &RpaOptions { attention_sink: Some(sinks), ..o }, OutputSharding::Heads);
}

#[test]
fn llama_3_8b_serving_batch_in_bf16_on_4_cpu_devices() {
    let (x, o) = rpa_kernels::demo::serving_batch();
    check(2, 2, &x, &o, OutputSharding::Gathered);
}

#[test]
fn upstream_prefill_and_fp8_decode_subsets_and_random_batches() {
    let o = RpaOptions { sm_scale: 0.088, ..Default::default() };
    check(1, 2, &make_batch(&BatchSpec::new(&PREFILL[..3], (4, 2), 128, 16, DType::F32)), &o, OutputSharding::Heads);
    let decode: Vec<(usize, usize)> = DECODE_KV[..4].iter().map(|&kv| (1, kv)).collect();
    let mut spec = BatchSpec::new(&decode, (4, 2), 128, 16, DType::Bf16);
    spec.kv_dtype = DType::F8E4M3;
    let fp8 = RpaOptions { k_scale: Some(0.5), v_scale: Some(0.5), ..o };
    check(2, 2, &make_batch(&spec), &fp8, OutputSharding::Gathered);
    for seed in [3, 4] {
        let b = random_batch(seed);
        let (hq, hkv) = (b.x.num_q_heads(), b.x.num_kv_heads());
        let tp = [2, 1].into_iter().find(|&tp| RpaMesh { tp, cp: 1 }.check_heads(hq, hkv).is_ok()).unwrap();
        let cp = 2;
        eprintln!("seed {seed}: tp {tp} cp {cp}: {}", b.what);
        check(tp, cp, &b.x, &b.opts, OutputSharding::Gathered);
    }
}

#[test]
fn a_one_device_mesh_runs_the_mixed_kernel_alone() {
    let x = batch((4, 2), DType::F32);
    check(1, 1, &x, &RpaOptions { sm_scale: 0.088, ..Default::default() }, OutputSharding::Gathered);
}

//! Block sizes: the VMEM/SMEM estimates equal what the verifier counts, every default is valid (the
//! host defaults pass every generation's checks), and upstream's per-generation heuristic gives
//! kernels that libtpu compiles for a Llama-3-8B shape.

use rpa_dsl::ir::verify::{smem_usage, verify_targets, vmem_usage};
use rpa_dsl::tpu::compile_for;
use rpa_dsl::{DType, TargetCheck, TpuTarget};
use rpa_kernels::rpa::blocks::{
    default_block_sizes, smem_bytes, tpu_block_sizes, vmem_bytes, HOST_VMEM_BUDGET, TPU_VMEM_SHARE,
};
use rpa_kernels::rpa::kernel::{rpa_kernel, RpaConfig};
use rpa_kernels::rpa::launch::{build_for_target, config_for, config_for_cpu, config_for_target};
use rpa_kernels::rpa::reference::RpaInputs;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, MIXED};
use rpa_kernels::rpa::validate::validate_block_sizes;
use rpa_kernels::rpa::{RpaCase, RpaOptions};

const CASES: [RpaCase; 3] = [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed];

fn batch(heads: (usize, usize), d: usize, page: usize, q: DType, kv: DType, lens: &[(usize, usize)]) -> RpaInputs {
    let mut s = BatchSpec::new(lens, heads, d, page, q);
    s.kv_dtype = kv;
    make_batch(&s)
}

#[test]
fn estimates_equal_the_verifiers_count() {
    let lens = [(5, 40), (1, 33), (16, 64)];
    for (heads, d, q, kv) in [
        ((8, 2), 128, DType::F32, DType::F32),
        ((32, 8), 128, DType::Bf16, DType::Bf16),
        ((12, 2), 80, DType::Bf16, DType::F8E4M3),
        ((5, 1), 240, DType::F32, DType::I8),
        ((3, 3), 64, DType::Bf16, DType::Bf16),
    ] {
        let x = batch(heads, d, 16, q, kv, &lens);
        for return_lse in [false, true] {
            let opts = RpaOptions { chunk_prefill_size: Some(16), return_lse, ..Default::default() };
            for case in CASES {
                let cfg = config_for(&x, &opts, case);
                let k = rpa_kernel(&cfg).unwrap();
                assert_eq!(vmem_bytes(&cfg), vmem_usage(&k), "{}", cfg.name());
                assert_eq!(smem_bytes(&cfg), smem_usage(&k), "{}", cfg.name());
            }
        }
    }
}

#[test]
fn defaults_are_valid_and_fit_every_generation() {
    for (heads, d, page, pages_per_seq, dtype) in [
        ((32, 8), 128, 16, 64, DType::Bf16),
        ((8, 1), 64, 8, 3, DType::Bf16),
        ((64, 8), 256, 32, 40, DType::Bf16),
        ((32, 8), 128, 16, 128, DType::F32),
        ((64, 8), 256, 32, 128, DType::F32),
    ] {
        let mut lens: Vec<(usize, usize)> = vec![(7, 7), (1, page * pages_per_seq)];
        lens.extend((0..4).map(|_| (1024, 1024)));
        let x = batch(heads, d, page, dtype, dtype, &lens);
        let opts = RpaOptions { chunk_prefill_size: Some(64), ..Default::default() };
        for case in CASES {
            let cfg = config_for(&x, &opts, case);
            assert_eq!(cfg.blocks, default_block_sizes(&cfg));
            validate_block_sizes(case, cfg.blocks, page).unwrap();
            assert!(vmem_bytes(&cfg) <= HOST_VMEM_BUDGET, "{} needs {} bytes of VMEM", cfg.name(), vmem_bytes(&cfg));
            assert_eq!(cfg.vmem_limit, None, "{} fits every default scoped VMEM", cfg.name());
            for host in [cfg, config_for_cpu(&x, &opts, case)] {
                let k = rpa_kernel(&host).unwrap();
                verify_targets(&k, TargetCheck::All)
                    .unwrap_or_else(|e| panic!("{} {:?}: {e}", host.name(), host.blocks));
            }
            for t in TpuTarget::ALL {
                let tc = config_for_target(&x, &opts, case, t);
                assert_eq!(tc.blocks, tpu_block_sizes(t, &tc));
                validate_block_sizes(case, tc.blocks, page).unwrap();
                let limit = tc.vmem_limit.unwrap_or(t.default_scoped_vmem_bytes());
                assert!(vmem_bytes(&tc) <= limit && limit <= t.vmem_bytes(), "{} on {t}", tc.name());
                let share = t.vmem_bytes() * TPU_VMEM_SHARE.0 / TPU_VMEM_SHARE.1;
                assert!(vmem_bytes(&tc) <= share, "{} on {t} leaves no room for Mosaic's own scratch", tc.name());
            }
        }
    }
}

#[test]
fn host_defaults_over_the_budget_declare_a_vmem_limit_every_generation_accepts() {
    // 32 kv heads of 256 f32s: the keys and values of 128 tokens alone take 16 MiB, beyond the budget.
    let x = batch((32, 32), 256, 16, DType::F32, DType::F32, &[(3, 40), (1, 130)]);
    let opts = RpaOptions::default();
    for case in [RpaCase::Decode, RpaCase::Mixed] {
        let cfg = config_for(&x, &opts, case);
        assert!(vmem_bytes(&cfg) > 16 << 20, "{} needs {} bytes", cfg.name(), vmem_bytes(&cfg));
        assert_eq!(cfg.vmem_limit, Some(TpuTarget::V7x.vmem_bytes()), "{}", cfg.name());
        verify_targets(&rpa_kernel(&cfg).unwrap(), TargetCheck::All).unwrap();
        // Without the limit, v5e's default scoped VMEM (16 MiB) is the first to refuse it.
        let unlimited = rpa_kernel(&RpaConfig { vmem_limit: None, ..cfg }).unwrap();
        let err = verify_targets(&unlimited, TargetCheck::All).unwrap_err();
        assert!(err.first().message.contains("VMEM over budget on v5e"), "{err}");
        // A limit set in the options is kept.
        let opts = RpaOptions { vmem_limit: Some(100 << 20), ..Default::default() };
        assert_eq!(config_for(&x, &opts, case).vmem_limit, Some(100 << 20));
    }
}

#[test]
fn upstream_heuristic_on_a_llama_3_8b_shape_compiles_for_every_generation() {
    // Hq 32, Hkv 8, D 128, bf16, page 16, 2048-token contexts, 256 query tokens per step.
    let mut lens = vec![(128, 1024), (64, 2048)];
    lens.extend((0..62).map(|i| (1, 100 + 31 * i)));
    let x = batch((32, 8), 128, 16, DType::Bf16, DType::Bf16, &lens);
    let opts = RpaOptions { chunk_prefill_size: Some(64), ..Default::default() };
    for t in TpuTarget::ALL {
        for case in CASES {
            let k = build_for_target(&x, &opts, case, t).unwrap();
            let cfg = config_for_target(&x, &opts, case, t);
            let c = compile_for(&k, t).unwrap_or_else(|e| panic!("{} ({:?}) on {t}: {e}", cfg.name(), cfg.vmem_limit));
            assert!(c.code_size > 0);
        }
    }
}

#[test]
fn upstream_heuristic_on_the_f32_mixed_list_compiles_for_every_generation() {
    // Upstream's blocks are tuned for 16-bit data: f32 on v7x needed more VMEM than the chip has
    // (libtpu: "Used 69.45M of 63.94M vmem") until q blocks were halved to fit.
    let x = batch((32, 8), 128, 16, DType::F32, DType::F32, &MIXED);
    let opts = RpaOptions::default();
    for t in TpuTarget::ALL {
        let k = build_for_target(&x, &opts, RpaCase::Mixed, t).unwrap();
        let cfg = config_for_target(&x, &opts, RpaCase::Mixed, t);
        let c = compile_for(&k, t).unwrap_or_else(|e| panic!("{} ({:?}) on {t}: {e}", cfg.name(), cfg.vmem_limit));
        assert!(c.code_size > 0);
    }
}

#[test]
fn attention_sinks_compile_for_every_generation() {
    // gpt-oss-like heads: 64 query heads over 8 kv heads, D 64, bf16, one sink per query head.
    let lens = [(1, 300), (16, 16), (1, 40), (5, 77)];
    let mut x = batch((64, 8), 64, 16, DType::Bf16, DType::Bf16, &lens);
    x.distribution = [1, 1, 4];
    let sinks: Vec<f64> = (0..64).map(|h| h as f64 / 8.0 - 4.0).collect();
    let opts =
        RpaOptions { attention_sink: Some(rpa_dsl::Array::from_f64(DType::F32, &[64], &sinks)), ..Default::default() };
    for t in TpuTarget::ALL {
        for case in [RpaCase::Decode, RpaCase::Mixed] {
            let k = build_for_target(&x, &opts, case, t).unwrap();
            assert!(k.params.iter().any(|p| p.name == "sinks"), "the kernel takes the sinks");
            let c = compile_for(&k, t).unwrap_or_else(|e| panic!("{case:?} with sinks on {t}: {e}"));
            assert!(c.code_size > 0);
        }
    }
}

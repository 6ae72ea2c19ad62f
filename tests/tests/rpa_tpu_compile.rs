//! The RPA kernels' Mosaic AOT-compiles with libtpu for v5e, v6e and v7x (no TPU needed).

use rpa_dsl::tpu::compile_for;
use rpa_dsl::{DType, TpuTarget};
use rpa_kernels::rpa::launch::build;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
use rpa_kernels::rpa::{RpaCase, RpaOptions};

fn compile_all(dtype: DType, kv: DType) {
    let mut spec = BatchSpec::new(&[(5, 40), (1, 33), (16, 64)], (8, 2), 128, 16, dtype);
    spec.kv_dtype = kv;
    let x = make_batch(&spec);
    let opts = RpaOptions { chunk_prefill_size: Some(16), ..Default::default() };
    for case in [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed] {
        let k = build(&x, &opts, case).unwrap();
        for t in TpuTarget::ALL {
            let c = compile_for(&k, t).unwrap_or_else(|e| panic!("{case:?} {dtype}/{kv} on {t}: {e}"));
            assert!(c.code_size > 0, "{c:?}");
        }
    }
}

#[test]
fn rpa_f32_compiles_for_every_generation() {
    compile_all(DType::F32, DType::F32);
}

#[test]
fn rpa_bf16_compiles_for_every_generation() {
    compile_all(DType::Bf16, DType::Bf16);
}

#[test]
fn rpa_fp8_kv_compiles_for_every_generation() {
    compile_all(DType::Bf16, DType::F8E4M3);
}

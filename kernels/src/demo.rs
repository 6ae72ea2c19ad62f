//! The demo behind `rpa demo`: builds each kernel, runs it on the default backend (interpret mode),
//! checks it against its reference and reports error, bytes moved and time.

use crate::examples::{self, reference};
use rpa_dsl::interpret::{run, InterpretOptions, Outcome};
use rpa_dsl::{Array, DType, Kernel, KernelError};
use std::time::Instant;

/// One demo case's measurements.
#[derive(Debug)]
pub struct CaseReport {
    pub name: String,
    pub max_abs_err: f64,
    pub tolerance: f64,
    pub hbm_bytes: u64,
    pub build_us: f64,
    pub run_ms: f64,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.max_abs_err <= self.tolerance
    }
}

pub use crate::demo_values::random_values;

fn case(
    name: &str,
    tolerance: f64,
    build: impl Fn() -> Result<Kernel, KernelError>,
    inputs: Vec<Array>,
    expected: Vec<f64>,
) -> Result<CaseReport, KernelError> {
    let t = Instant::now();
    let kernel = build()?;
    let build_us = t.elapsed().as_secs_f64() * 1e6;
    let t = Instant::now();
    let Outcome { outputs, stats, .. } = run(&kernel, &inputs, &InterpretOptions::default())?;
    let run_ms = t.elapsed().as_secs_f64() * 1e3;
    let got = outputs[0].to_f64();
    let max_abs_err =
        got.iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, |m, d| if d.is_nan() { f64::NAN } else { m.max(d) });
    Ok(CaseReport { name: name.to_string(), max_abs_err, tolerance, hbm_bytes: stats.hbm_bytes(), build_us, run_ms })
}

/// Runs every example kernel on interpret mode against its reference.
pub fn run_examples() -> Result<Vec<CaseReport>, KernelError> {
    let mut reports = Vec::new();
    let rows = 256;
    let (x, y) = (random_values(rows * 128, 1), random_values(rows * 128, 2));
    let arr = |v: &[f64], shape: &[usize]| Array::from_f64(DType::F32, shape, v);
    reports.push(case(
        "elementwise_add",
        1e-6,
        || examples::elementwise_add(rows),
        vec![arr(&x, &[rows, 128]), arr(&y, &[rows, 128])],
        reference::elementwise_add(&arr(&x, &[rows, 128]).to_f64(), &arr(&y, &[rows, 128]).to_f64()),
    )?);
    let (m, n, k) = (256, 256, 512);
    let (a, b) = (random_values(m * k, 3), random_values(k * n, 4));
    reports.push(case(
        "tiled_matmul",
        1e-3,
        || examples::tiled_matmul(m, n, k, 128, 128, 128, DType::F32),
        vec![arr(&a, &[m, k]), arr(&b, &[k, n])],
        reference::matmul(&arr(&a, &[m, k]).to_f64(), &arr(&b, &[k, n]).to_f64(), m, n, k),
    )?);
    let blocks = 32;
    let s = random_values(blocks * 8 * 128, 5);
    reports.push(case(
        "double_buffered_scale",
        0.0,
        || examples::double_buffered_scale(blocks),
        vec![arr(&s, &[blocks * 8, 128])],
        reference::scale(&arr(&s, &[blocks * 8, 128]).to_f64(), 2.0),
    )?);
    let (r, c) = (64, 256);
    let z: Vec<f64> = random_values(r * c, 6).iter().map(|v| v * 8.0).collect();
    reports.push(case(
        "row_softmax",
        1e-6,
        || examples::row_softmax(r, c),
        vec![arr(&z, &[r, c])],
        reference::row_softmax(&arr(&z, &[r, c]).to_f64(), c),
    )?);
    Ok(reports)
}

/// The RPA part of the demo: one realistic ragged batch through the three kernels.
#[derive(Debug)]
pub struct RpaDemoReport {
    pub description: String,
    pub max_abs_err: f64,
    pub tolerance: f64,
    pub hbm_bytes: u64,
    pub min_bytes: u64,
    pub build_ms: f64,
    pub run_ms: f64,
    pub cache_bit_exact: bool,
    /// `(target, Ok(code size) | Err(message))` when libtpu is installed.
    pub tpu: Vec<(String, Result<i64, String>)>,
}

impl RpaDemoReport {
    pub fn passed(&self) -> bool {
        self.max_abs_err <= self.tolerance && self.cache_bit_exact && self.tpu.iter().all(|(_, r)| r.is_ok())
    }
}

/// `(q_len, kv_len)` of the serving batch: 6 decodes, 2 prefill chunks of 32, 4 mixed.
pub const SERVING_LENS: [(usize, usize); 12] = [
    (1, 230),
    (1, 1100),
    (1, 64),
    (1, 517),
    (1, 18),
    (1, 333),
    (32, 96),
    (32, 400),
    (5, 18),
    (120, 597),
    (3, 1229),
    (17, 40),
];

/// The serving batch with Llama-3-8B heads (32 q / 8 kv, head_dim 128, bf16, page 16).
pub fn serving_batch() -> (crate::rpa::reference::RpaInputs, crate::rpa::RpaOptions) {
    use crate::rpa::testing::{make_batch, BatchSpec};
    let mut x = make_batch(&BatchSpec::new(&SERVING_LENS, (32, 8), 128, 16, DType::Bf16));
    x.distribution = [6, 8, 12];
    let opts =
        crate::rpa::RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), chunk_prefill_size: Some(32), ..Default::default() };
    (x, opts)
}

/// A serving-shaped batch (Llama-3-8B heads: 32 q / 8 kv, head_dim 128, bf16, page 16): 6 decode
/// sequences, 2 chunked-prefill chunks of 32 tokens and 4 mixed sequences.
pub fn run_rpa_demo(compile_tpu: bool) -> Result<RpaDemoReport, crate::rpa::validate::RpaError> {
    use crate::rpa::launch::{build, ragged_paged_attention};
    use crate::rpa::reference;
    use crate::rpa::RpaCase;
    let (x, opts) = serving_batch();
    let lens = SERVING_LENS;
    let t = Instant::now();
    for case in [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed] {
        build(&x, &opts, case)?;
    }
    let build_ms = t.elapsed().as_secs_f64() * 1e3 / 3.0;
    let t = Instant::now();
    let (out, cache, report) = ragged_paged_attention(&x, &opts)?;
    let run_ms = t.elapsed().as_secs_f64() * 1e3;
    let (want, want_cache) = reference::ragged_paged_attention(&x, &opts);
    let n = x.cu_q_lens[12] as usize * 32 * 128;
    let max_abs_err = (0..n).map(|i| (out.get_f64(i) - want.get_f64(i)).abs()).fold(0.0, f64::max);
    // The minimum HBM traffic: every K/V row once, queries in, outputs out, new rows written.
    let row = 2 * 8 * 128 * 2;
    let kv_rows: usize = lens.iter().map(|l| l.1).sum();
    let q_tokens: usize = lens.iter().map(|l| l.0).sum();
    let min_bytes = (kv_rows * row + 2 * q_tokens * 32 * 128 * 2 + q_tokens * row) as u64;
    let mut tpu = Vec::new();
    if compile_tpu {
        for target in rpa_dsl::TpuTarget::ALL {
            let mut total = 0;
            let mut err = None;
            for case in [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed] {
                match rpa_dsl::tpu::compile_for(&build(&x, &opts, case)?, target) {
                    Ok(c) => total += c.code_size,
                    Err(e) => err = Some(e.to_string()),
                }
            }
            tpu.push((target.to_string(), err.map_or(Ok(total), Err)));
        }
    }
    Ok(RpaDemoReport {
        description: format!(
            "{} sequences (6 decode, 2 prefill chunks, 4 mixed), {q_tokens} new tokens, {kv_rows} context tokens; heads 32/8, head_dim 128, bf16, page 16",
            lens.len()
        ),
        max_abs_err,
        tolerance: 0.2,
        hbm_bytes: report.hbm_bytes(),
        min_bytes,
        build_ms,
        run_ms,
        cache_bit_exact: cache == want_cache,
        tpu,
    })
}

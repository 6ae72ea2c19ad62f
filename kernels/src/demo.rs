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

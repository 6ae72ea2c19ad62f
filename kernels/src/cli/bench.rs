//! `rpa bench`: a sweep over batch size, context length, q_len mix and dtype. Each point is timed
//! per call on interpret mode and/or PJRT-CPU; interpret mode also counts the HBM bytes moved, which
//! are divided by the minimum the call must move ([`super::batch::minimum_bytes`]).
//!
//! All points of a (dtype, batch size) group share their static shapes (the cache and page table
//! are padded to the longest context, the token arrays to the mix with the most tokens), so each of
//! the three kernels is compiled for XLA:CPU once per group. Those compiles run first, in parallel
//! and untimed; then every point is timed with nothing else running.

use super::batch::{Batch, BatchConfig, DtypeChoice, QueryDtype, Source};
use super::plot::{line_chart, Series};
use super::run::{launched_cases, require_plugin};
use super::{failed, BenchArgs, BenchBackends, CliError, CliResult};
use crate::rpa::launch::{self, Backend};
use crate::rpa::layout::align_to;
use crate::rpa::reference::RpaInputs;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rpa_dsl::cpu::CpuBackend;
use rpa_dsl::{Array, DType, Kernel};
use serde::Serialize;
use serde_json::json;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// How the q_lens of a batch are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// Every sequence decodes one token.
    Decode,
    /// Every sequence is a prefill chunk.
    Prefill,
    /// Cycling through a mixed-length chunk, a decode, a prefill chunk and a decode.
    Mixed,
}

impl Mix {
    pub fn name(self) -> &'static str {
        match self {
            Mix::Decode => "decode",
            Mix::Prefill => "prefill",
            Mix::Mixed => "mixed",
        }
    }

    /// The q_len of each of `n` sequences.
    pub fn q_lens(self, n: usize, chunk: usize) -> Vec<usize> {
        (0..n)
            .map(|i| match self {
                Mix::Decode => 1,
                Mix::Prefill => chunk,
                Mix::Mixed => [chunk / 2 + 3, 1, chunk, 1][i % 4],
            })
            .collect()
    }
}

/// The grid of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub name: &'static str,
    pub heads: (usize, usize),
    pub head_dim: usize,
    pub page_size: usize,
    /// The prefill chunk (q_len of prefill sequences).
    pub chunk: usize,
    pub batch_sizes: Vec<usize>,
    /// kv_len of every sequence (at least `chunk`).
    pub contexts: Vec<usize>,
    pub mixes: Vec<Mix>,
    pub dtypes: Vec<DType>,
    /// Timed PJRT-CPU calls per point (after one that compiles).
    pub cpu_calls: usize,
}

impl Sweep {
    /// Llama-3-8B heads (32 q / 8 kv, head_dim 128), batches of 1 and 8 sequences, contexts of
    /// 128 to 2048 tokens: 36 points, tens of minutes with PJRT-CPU (its compiles of these kernels
    /// take minutes each), a few minutes on interpret mode alone.
    pub fn full() -> Sweep {
        Sweep {
            name: "full",
            heads: (32, 8),
            head_dim: 128,
            page_size: 16,
            chunk: 32,
            batch_sizes: vec![1, 8],
            contexts: vec![128, 512, 2048],
            mixes: vec![Mix::Decode, Mix::Prefill, Mix::Mixed],
            dtypes: vec![DType::F32, DType::Bf16],
            cpu_calls: 2,
        }
    }

    /// 8 q / 2 kv heads, 4 sequences, contexts 64–1024: 18 points, under a minute and a half on
    /// two cores with PJRT-CPU (about a minute of it compiling six kernels).
    pub fn quick() -> Sweep {
        Sweep {
            name: "quick",
            heads: (8, 2),
            chunk: 16,
            batch_sizes: vec![4],
            contexts: vec![64, 256, 1024],
            cpu_calls: 2,
            ..Sweep::full()
        }
    }

    /// Two decode points, one kernel to compile (for tests).
    pub fn tiny() -> Sweep {
        Sweep {
            name: "tiny",
            heads: (2, 1),
            chunk: 8,
            batch_sizes: vec![2],
            contexts: vec![16, 40],
            mixes: vec![Mix::Decode],
            dtypes: vec![DType::F32],
            cpu_calls: 1,
            ..Sweep::full()
        }
    }

    /// The points, grouped by (dtype, mix, batch size), contexts innermost.
    pub fn points(&self) -> Vec<Point> {
        let mut v = Vec::new();
        for &dtype in &self.dtypes {
            for &mix in &self.mixes {
                for &batch in &self.batch_sizes {
                    for &context in &self.contexts {
                        v.push(Point { batch, context, mix, dtype });
                    }
                }
            }
        }
        v
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "heads": [self.heads.0, self.heads.1],
            "head_dim": self.head_dim,
            "page_size": self.page_size,
            "chunk": self.chunk,
            "batch_sizes": self.batch_sizes,
            "contexts": self.contexts,
            "mixes": self.mixes,
            "dtypes": self.dtypes.iter().map(|d| d.name()).collect::<Vec<_>>(),
            "cpu_calls": self.cpu_calls,
        })
    }

    /// The batch of a point, padded to its group's static shapes.
    pub fn batch(&self, p: &Point) -> Result<Batch, CliError> {
        let seqs = p.mix.q_lens(p.batch, self.chunk).into_iter().map(|q| (q, p.context)).collect();
        let config = BatchConfig {
            seqs,
            heads: self.heads,
            head_dim: self.head_dim,
            page_size: self.page_size,
            dtype: QueryDtype::of(p.dtype),
            chunk: Some(self.chunk),
            ..Default::default()
        };
        let mut b = Batch::from_config(config, Source::Flags)?;
        let longest = self.contexts.iter().copied().max().unwrap_or(p.context).max(p.context);
        let pps = longest.div_ceil(self.page_size).max(1);
        pad(&mut b.inputs, pps, p.batch * pps + 3);
        let tokens = self.mixes.iter().chain([&p.mix]).map(|m| m.q_lens(p.batch, self.chunk).iter().sum()).max();
        pad_tokens(&mut b.inputs, align_to(tokens.unwrap_or(1), 8));
        Ok(b)
    }

    /// The kernels the sweep launches, one per (dtype, batch size, case): `(label, kernel)`.
    pub fn kernels(&self) -> Result<Vec<(String, Kernel)>, CliError> {
        let mut out = Vec::new();
        for &dtype in &self.dtypes {
            for &batch in &self.batch_sizes {
                let mut cases = Vec::new();
                for &mix in &self.mixes {
                    let b = self.batch(&Point { batch, context: self.contexts[0], mix, dtype })?;
                    for case in launched_cases(&b) {
                        if !cases.contains(&case) {
                            cases.push(case);
                            let k = launch::build(&b.inputs, &b.opts, case).map_err(failed)?;
                            out.push((format!("{} {dtype} batch {batch}", k.name), k));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Compiles `kernels` for XLA:CPU on up to `available_parallelism` threads (into the process-wide
/// cache the launches use); returns `(label, ms, error)` per kernel.
pub fn precompile(kernels: Vec<(String, Kernel)>, tick: &(dyn Fn() + Sync)) -> Vec<(String, f64, Option<String>)> {
    let n = kernels.len();
    let queue = Mutex::new(kernels.into_iter().collect::<VecDeque<_>>());
    let done = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some((label, k)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else { break };
                let t = Instant::now();
                let r = CpuBackend::global().and_then(|b| b.compile(&k).map(|_| ()).map_err(|e| e.to_string()));
                done.lock().unwrap_or_else(|e| e.into_inner()).push((label, ms_since(t), r.err()));
                tick();
            });
        }
    });
    done.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Grows the token arrays (queries, new keys and values) to `tokens` rows of zeros.
pub fn pad_tokens(x: &mut RpaInputs, tokens: usize) {
    for a in [&mut x.queries, &mut x.keys, &mut x.values] {
        let shape = a.shape().to_vec();
        if tokens > shape[0] {
            let dtype = a.dtype();
            let row: usize = shape[1..].iter().product();
            let mut bits = std::mem::replace(a, Array::zeros(dtype, &[0])).into_bits();
            bits.resize(tokens * row, dtype.float_to_bits(0.0));
            let mut new_shape = shape;
            new_shape[0] = tokens;
            *a = Array::from_bits(dtype, &new_shape, bits);
        }
    }
}

/// Grows the page table to `pps` pages per sequence and the cache to `total_pages` (unused
/// entries and pages as `make_batch` leaves them: `i32::MIN` and NaN).
pub fn pad(x: &mut RpaInputs, pps: usize, total_pages: usize) {
    let (old, seqs) = (x.pages_per_seq(), x.max_num_seqs());
    if pps > old {
        let mut pi = vec![i32::MIN; seqs * pps];
        for b in 0..seqs {
            pi[b * pps..b * pps + old].copy_from_slice(&x.page_indices[b * old..(b + 1) * old]);
        }
        x.page_indices = pi;
    }
    let shape = x.kv_cache.shape().to_vec();
    if total_pages > shape[0] {
        let dtype = x.kv_cache.dtype();
        let per_page: usize = shape[1..].iter().product();
        let mut bits = std::mem::replace(&mut x.kv_cache, Array::zeros(dtype, &[0])).into_bits();
        bits.resize(total_pages * per_page, dtype.poison_bits());
        let mut new_shape = shape;
        new_shape[0] = total_pages;
        x.kv_cache = Array::from_bits(dtype, &new_shape, bits);
    }
}

/// A point of the sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub batch: usize,
    pub context: usize,
    pub mix: Mix,
    pub dtype: DType,
}

/// The measurements of a point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointResult {
    pub batch_size: usize,
    pub context_len: usize,
    pub mix: Mix,
    pub dtype: String,
    pub q_tokens: usize,
    pub kv_tokens: usize,
    pub min_bytes: u64,
    pub interpret_ms: Option<f64>,
    pub hbm_bytes: Option<u64>,
    pub bytes_ratio: Option<f64>,
    /// Mean of the timed calls (after a first, untimed one).
    pub cpu_ms: Option<f64>,
    pub cpu_first_call_ms: Option<f64>,
    /// Largest |PJRT-CPU output - interpret output| (when both ran).
    pub cpu_vs_interpret_max_abs_diff: Option<f64>,
    pub cpu_cache_matches_interpret: Option<bool>,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Measures one point.
pub fn measure(sweep: &Sweep, p: &Point, interpret: bool, cpu: bool, tick: &dyn Fn()) -> Result<PointResult, CliError> {
    let b = sweep.batch(p)?;
    let (q_tokens, kv_tokens) = b.tokens();
    let min_bytes = b.minimum_bytes();
    let mut r = PointResult {
        batch_size: p.batch,
        context_len: p.context,
        mix: p.mix,
        dtype: p.dtype.name().into(),
        q_tokens,
        kv_tokens,
        min_bytes,
        interpret_ms: None,
        hbm_bytes: None,
        bytes_ratio: None,
        cpu_ms: None,
        cpu_first_call_ms: None,
        cpu_vs_interpret_max_abs_diff: None,
        cpu_cache_matches_interpret: None,
    };
    let what = |backend: &str, e: String| CliError::Failed(format!("{backend} at {p:?}: {e}"));
    let mut reference = None;
    if interpret {
        let t = Instant::now();
        let out = launch::run(Backend::Interpret, &b.inputs, &b.opts).map_err(|e| what("interpret", e.to_string()))?;
        r.interpret_ms = Some(ms_since(t));
        let hbm = out.report.hbm_bytes();
        r.hbm_bytes = Some(hbm);
        r.bytes_ratio = Some(hbm as f64 / min_bytes as f64);
        reference = Some(out);
        tick();
    }
    if cpu {
        let t = Instant::now();
        launch::run(Backend::PjrtCpu, &b.inputs, &b.opts).map_err(|e| what("PJRT-CPU", e.to_string()))?;
        r.cpu_first_call_ms = Some(ms_since(t));
        let t = Instant::now();
        let mut out = None;
        for _ in 0..sweep.cpu_calls.max(1) {
            out = Some(launch::run(Backend::PjrtCpu, &b.inputs, &b.opts).map_err(|e| what("PJRT-CPU", e.to_string()))?);
        }
        r.cpu_ms = Some(ms_since(t) / sweep.cpu_calls.max(1) as f64);
        if let (Some(want), Some(got)) = (&reference, &out) {
            let n = q_tokens * b.inputs.num_q_heads() * b.inputs.head_dim();
            let diff = (0..n).map(|i| (got.output.get_f64(i) - want.output.get_f64(i)).abs()).fold(0.0, |m: f64, d| {
                if d.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(d)
                }
            });
            r.cpu_vs_interpret_max_abs_diff = Some(diff);
            r.cpu_cache_matches_interpret = Some(got.kv_cache == want.kv_cache);
        }
        tick();
    }
    Ok(r)
}

/// The CSV header of [`csv`].
pub const CSV_HEADER: &str =
    "batch_size,context_len,mix,dtype,q_tokens,kv_tokens,backend,ms_per_call,hbm_bytes,min_bytes,bytes_ratio";

/// One row per (point, backend measured).
pub fn csv(results: &[PointResult]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in results {
        let rows = [("interpret", r.interpret_ms, r.hbm_bytes, r.bytes_ratio), ("cpu", r.cpu_ms, None, None)];
        for (backend, ms, hbm, ratio) in rows {
            if let Some(ms) = ms {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{backend},{ms:.3},{},{},{}\n",
                    r.batch_size,
                    r.context_len,
                    r.mix.name(),
                    r.dtype,
                    r.q_tokens,
                    r.kv_tokens,
                    opt(hbm.map(|h| h.to_string())),
                    r.min_bytes,
                    opt(ratio.map(|x| format!("{x:.6}")))
                ));
            }
        }
    }
    s
}

/// The series of a chart: one per (batch size, mix, dtype), x = context length.
fn series(results: &[PointResult], y: impl Fn(&PointResult) -> Option<f64>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in results {
        let Some(v) = y(r) else { continue };
        let label = format!("{} × {} {}", r.batch_size, r.mix.name(), r.dtype);
        match out.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push((r.context_len as f64, v)),
            None => out.push(Series { label, points: vec![(r.context_len as f64, v)] }),
        }
    }
    out
}

/// Writes results.csv, results.json and the SVG charts into `dir`; returns the files.
pub fn write_outputs(
    dir: &Path,
    sweep: &Sweep,
    backends: &[&str],
    compiles: &[(String, f64, Option<String>)],
    results: &[PointResult],
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let write = |name: &str, text: String, files: &mut Vec<PathBuf>| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push(p);
        Ok::<(), String>(())
    };
    write("results.csv", csv(results), &mut files)?;
    let compiles: Vec<_> =
        compiles.iter().map(|(k, ms, e)| json!({"kernel": k, "cpu_compile_ms": ms, "error": e})).collect();
    let doc = json!({ "sweep": sweep.json(), "backends": backends, "cpu_compiles": compiles, "points": results });
    write("results.json", serde_json::to_string_pretty(&doc).expect("serializable") + "\n", &mut files)?;
    let heads =
        format!("{}/{} heads, head_dim {}, page {}", sweep.heads.0, sweep.heads.1, sweep.head_dim, sweep.page_size);
    let charts: [(&str, String, &str, Box<dyn Fn(&PointResult) -> Option<f64>>, bool); 3] = [
        (
            "time_vs_context_interpret.svg",
            format!("Interpret mode: ms per call ({heads})"),
            "ms per call",
            Box::new(|r| r.interpret_ms),
            true,
        ),
        (
            "time_vs_context_cpu.svg",
            format!("PJRT-CPU: ms per call ({heads})"),
            "ms per call",
            Box::new(|r| r.cpu_ms),
            true,
        ),
        (
            "bytes_ratio_vs_context.svg",
            format!("HBM bytes moved / minimum ({heads})"),
            "bytes moved / minimum",
            Box::new(|r| r.bytes_ratio),
            false,
        ),
    ];
    for (name, title, y_desc, y, log_y) in charts {
        let s = series(results, y);
        if s.is_empty() {
            continue;
        }
        let p = dir.join(name);
        line_chart(&p, &title, "context length (tokens per sequence)", y_desc, &s, log_y)?;
        files.push(p);
    }
    Ok(files)
}

/// `rpa bench`.
pub fn command(a: &BenchArgs) -> CliResult {
    let sweep = if a.tiny {
        Sweep::tiny()
    } else if a.quick {
        Sweep::quick()
    } else {
        Sweep::full()
    };
    let have_cpu = rpa_dsl::pjrt::cpu_plugin_path().exists();
    let which = a.backend.unwrap_or(if have_cpu { BenchBackends::Both } else { BenchBackends::Interpret });
    let (interpret, cpu) = (which != BenchBackends::Cpu, which != BenchBackends::Interpret);
    if cpu {
        require_plugin(Backend::PjrtCpu)?;
    }
    let backends: Vec<&str> = [("interpret", interpret), ("cpu", cpu)].iter().filter(|b| b.1).map(|b| b.0).collect();
    let points = sweep.points();
    println!(
        "rpa bench — {} sweep, {} points on {}; {}/{} heads, head_dim {}, page {}, prefill chunk {}{}",
        sweep.name,
        points.len(),
        backends.join(" and "),
        sweep.heads.0,
        sweep.heads.1,
        sweep.head_dim,
        sweep.page_size,
        sweep.chunk,
        if !have_cpu && a.backend.is_none() { " (PJRT-CPU plugin not installed)" } else { "" }
    );
    println!(
        "  {:>5} {:>7} {:<8} {:<5} {:>8} {:>12} {:>12} {:>12}",
        "batch", "context", "mix", "dtype", "tokens", "interpret ms", "bytes/min", "cpu ms"
    );
    let kernels = if cpu { sweep.kernels()? } else { Vec::new() };
    let pb = ProgressBar::new((points.len() * backends.len() + kernels.len()) as u64);
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:32} {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let mut compiles = Vec::new();
    if cpu {
        pb.set_message(format!("compiling {} kernels for XLA:CPU", kernels.len()));
        let t = Instant::now();
        let n = kernels.len();
        compiles = precompile(kernels, &|| pb.inc(1));
        pb.suspend(|| println!("  (compiled {n} kernels for XLA:CPU in {:.1} s, untimed)", t.elapsed().as_secs_f64()));
    }
    let mut results = Vec::new();
    for p in &points {
        pb.set_message(format!("batch {} ctx {} {} {}", p.batch, p.context, p.mix.name(), p.dtype));
        let r = measure(&sweep, p, interpret, cpu, &|| pb.inc(1));
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                pb.abandon();
                return Err(e);
            }
        };
        let cell = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
        pb.suspend(|| {
            println!(
                "  {:>5} {:>7} {:<8} {:<5} {:>8} {:>12} {:>12} {:>12}",
                r.batch_size,
                r.context_len,
                r.mix.name(),
                r.dtype,
                r.q_tokens,
                cell(r.interpret_ms, 1),
                cell(r.bytes_ratio, 4),
                cell(r.cpu_ms, 2)
            )
        });
        results.push(r);
    }
    pb.finish_and_clear();
    let mismatches: Vec<&PointResult> =
        results.iter().filter(|r| r.cpu_cache_matches_interpret == Some(false)).collect();
    let files = write_outputs(&a.out, &sweep, &backends, &compiles, &results).map_err(failed)?;
    println!("  {} points in {:.1} s", results.len(), start.elapsed().as_secs_f64());
    for f in &files {
        println!("  wrote {}", f.display());
    }
    if !mismatches.is_empty() {
        return Err(CliError::Failed(format!(
            "PJRT-CPU's updated cache differs from interpret mode's at {} points",
            mismatches.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_and_points() {
        assert_eq!(Mix::Mixed.q_lens(5, 16), vec![11, 1, 16, 1, 11]);
        assert_eq!(Mix::Prefill.q_lens(2, 8), vec![8, 8]);
        let s = Sweep::quick();
        assert_eq!(s.points().len(), 18);
        assert!(Sweep::full().contexts.iter().all(|&c| c >= Sweep::full().chunk));
        assert!(Sweep::tiny().contexts.iter().all(|&c| c >= Sweep::tiny().chunk));
    }

    #[test]
    fn a_group_shares_its_static_shapes() {
        use crate::rpa::RpaCase;
        let s = Sweep { mixes: vec![Mix::Decode, Mix::Prefill, Mix::Mixed], ..Sweep::tiny() };
        let statics: Vec<_> = s
            .points()
            .iter()
            .map(|p| {
                let b = s.batch(p).unwrap();
                let x = &b.inputs;
                let configs: Vec<String> = [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed]
                    .iter()
                    .map(|&c| format!("{:?}", launch::config_for(x, &b.opts, c)))
                    .collect();
                (x.kv_cache.shape().to_vec(), x.queries.shape().to_vec(), x.page_indices.len(), configs)
            })
            .collect();
        assert_eq!(statics.len(), 6);
        assert!(statics.windows(2).all(|w| w[0] == w[1]), "{statics:?}");
        assert_eq!(s.kernels().unwrap().len(), 3, "one kernel per case for the group");
        // The padded batches still run and match the reference.
        for p in [s.points()[0], s.points()[5]] {
            let b = s.batch(&p).unwrap();
            let out = launch::run(Backend::Interpret, &b.inputs, &b.opts).unwrap();
            let c = super::super::run::check(&b, &out, b.tolerance());
            assert!(c.passed(), "{p:?}: {c:?}");
            assert_eq!(out.report.hbm_bytes(), b.minimum_bytes(), "{p:?}");
        }
    }

    #[test]
    fn csv_has_a_row_per_backend_measured() {
        let r = PointResult {
            batch_size: 2,
            context_len: 64,
            mix: Mix::Decode,
            dtype: "f32".into(),
            q_tokens: 2,
            kv_tokens: 128,
            min_bytes: 1000,
            interpret_ms: Some(1.5),
            hbm_bytes: Some(1200),
            bytes_ratio: Some(1.2),
            cpu_ms: Some(0.25),
            cpu_first_call_ms: Some(900.0),
            cpu_vs_interpret_max_abs_diff: Some(0.0),
            cpu_cache_matches_interpret: Some(true),
        };
        let text = csv(&[r.clone(), PointResult { cpu_ms: None, ..r }]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "2,64,decode,f32,2,128,interpret,1.500,1200,1000,1.200000");
        assert_eq!(lines[2], "2,64,decode,f32,2,128,cpu,0.250,,1000,");
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.split(',').count() == CSV_HEADER.split(',').count()));
    }
}

//! `rpa run` (one batch on a backend, checked against the f64 reference) and `rpa demo`.

use super::batch::{dtype_name, Batch};
use super::{failed, npy, CliError, CliResult, DemoArgs, RunArgs};
use crate::rpa::launch::{self, Backend, RpaOutput};
use crate::rpa::{reference, RpaCase};
use rpa_dsl::Array;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use rpa_dsl::tool::Comparison;

/// A comparison in summary.json.
fn comparison_json(c: &Comparison) -> serde_json::Value {
    json!({
        "max_abs_err": c.max_abs_err,
        "tolerance": c.tolerance,
        "mismatches": c.mismatches,
        "nan_mismatches": c.nan_mismatches,
        "nan_in_both": c.nan_in_both,
        "ok": c.ok(),
    })
}

/// How a call's results compare with the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The output over the tokens the sequences own.
    pub output: Comparison,
    /// The log-sum-exp, when returned.
    pub lse: Option<Comparison>,
    pub cache_bit_exact: bool,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.output.ok() && self.lse.as_ref().is_none_or(Comparison::ok) && self.cache_bit_exact
    }
}

/// Compares `got` with the reference of `batch`.
pub fn check(batch: &Batch, got: &RpaOutput, tolerance: f64) -> Check {
    let x = &batch.inputs;
    let want = reference::run(x, &batch.opts);
    let tokens = x.cu_q_lens[x.distribution[2] as usize] as usize;
    let hq = x.num_q_heads();
    let output =
        Comparison::new(tokens * hq * x.head_dim(), |i| got.output.get_f64(i), |i| want.output.get_f64(i), tolerance);
    let lse_tolerance = crate::rpa::fuzz::lse_tolerance(&batch.opts);
    let lse =
        got.lse.as_ref().map(|lse| Comparison::new(tokens * hq, |i| lse.get_f64(i), |i| want.lse[i], lse_tolerance));
    Check { output, lse, cache_bit_exact: got.kv_cache == want.kv_cache }
}

/// The kernels a batch launches, in launch order.
pub fn launched_cases(batch: &Batch) -> Vec<RpaCase> {
    [RpaCase::Decode, RpaCase::Prefill, RpaCase::Mixed]
        .into_iter()
        .zip(batch.buckets)
        .filter(|(_, n)| *n > 0)
        .map(|(c, _)| c)
        .collect()
}

/// A clear error when `backend` needs a plugin that is not installed.
pub fn require_plugin(backend: Backend) -> CliResult {
    match backend {
        Backend::Interpret => Ok(()),
        Backend::PjrtCpu | Backend::PjrtCpuUnchecked => rpa_dsl::tool::require_cpu_plugin(),
        Backend::Tpu(_) => rpa_dsl::tool::require_libtpu(),
    }
}

fn case_name(c: RpaCase) -> &'static str {
    match c {
        RpaCase::Decode => "decode",
        RpaCase::Prefill => "prefill",
        RpaCase::Mixed => "mixed",
    }
}

/// `rpa run`.
pub fn run(a: &RunArgs) -> CliResult {
    let batch = a.batch.load(None)?;
    let backend = a.backend.backend();
    require_plugin(backend)?;
    batch.validate().map_err(failed)?;
    if let Some(mesh) = a.mesh() {
        return super::mesh::run(a, &batch, mesh);
    }
    println!("rpa run — backend: {}", a.backend.name());
    println!("  batch           {}", batch.describe());
    println!("  options         {}", batch.describe_options());
    if let Some(note) = &batch.reordered {
        println!("  note            {note}");
    }
    // Build each launched kernel once: its name and the build time.
    let cases = launched_cases(&batch);
    let t = Instant::now();
    let mut kernels = Vec::new();
    for &case in &cases {
        let k = match backend {
            Backend::Tpu(target) => launch::build_for_target(&batch.inputs, &batch.opts, case, target),
            _ => launch::build(&batch.inputs, &batch.opts, case),
        }
        .map_err(failed)?;
        let n = batch.buckets[case as usize];
        kernels.push(format!("{} ({n} seq{})", k.name, if n == 1 { "" } else { "s" }));
    }
    let build_ms = t.elapsed().as_secs_f64() * 1e3 / cases.len().max(1) as f64;
    println!("  kernels         {}", kernels.join(", "));
    let repeat = a.repeat.unwrap_or(if backend == Backend::Interpret { 1 } else { 2 }).max(1);
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let r = launch::run(backend, &batch.inputs, &batch.opts)
            .map_err(|e| CliError::Failed(format!("the call failed on {}: {e}", a.backend.name())))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        out = Some(r);
    }
    let out = out.expect("at least one call");
    let tolerance = a.tolerance.unwrap_or_else(|| batch.tolerance());
    let check = (!a.no_check).then(|| check(&batch, &out, tolerance));
    if let Some(c) = &check {
        print_check(&batch, c);
    } else {
        println!("  check           skipped (--no-check)");
    }
    let min_bytes = batch.minimum_bytes();
    let hbm = (backend == Backend::Interpret).then(|| out.report.hbm_bytes());
    if let Some(h) = hbm {
        println!("  HBM bytes       {h} moved / {min_bytes} minimum = {:.4}", h as f64 / min_bytes as f64);
    }
    let time = match times.as_slice() {
        [one] => format!("{one:.1} ms per call"),
        [first, rest @ ..] => format!(
            "{first:.1} ms for the first call{}, then {:.2} ms per call ({} calls)",
            if backend == Backend::Interpret { "" } else { " (compiles)" },
            rest.iter().sum::<f64>() / rest.len() as f64,
            rest.len()
        ),
        [] => unreachable!(),
    };
    println!("  time            {build_ms:.2} ms to build a kernel, {time}");
    if let Some(dir) = &a.out {
        let files = write_results(dir, &batch, &out, a, check.as_ref(), hbm, &times, build_ms)?;
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        println!("  wrote           {}", names.join(", "));
    }
    match check {
        Some(c) => verdict(&c),
        None => Ok(()),
    }
}

/// `Ok`, or the check's failures as an error.
pub(crate) fn verdict(c: &Check) -> CliResult {
    if c.passed() {
        return Ok(());
    }
    let mut what = Vec::new();
    if !c.output.ok() {
        what.push("the output is out of tolerance");
    }
    if !c.lse.as_ref().is_none_or(Comparison::ok) {
        what.push("the log-sum-exp is out of tolerance");
    }
    if !c.cache_bit_exact {
        what.push("the cache differs from the reference");
    }
    Err(CliError::Failed(format!("check failed: {}", what.join(", "))))
}

/// The output check's lines (shared with the mesh run).
pub(crate) fn print_check(batch: &Batch, c: &Check) {
    let o = &c.output;
    println!(
        "  max |error|     {:.3e} vs the f64 reference (tolerance {:e}·(1 + |ref|)): {}",
        o.max_abs_err,
        o.tolerance,
        o.verdict()
    );
    if let Some((i, got, want)) = o.first_mismatch {
        let row = i / (batch.inputs.num_q_heads() * batch.inputs.head_dim());
        println!("                  first mismatch: element {i} (token {row}): kernel {got}, reference {want}");
    }
    if o.nan_in_both > 0 {
        println!("                  {} elements NaN in the reference and the output (NaN inputs)", o.nan_in_both);
    }
    if let Some(l) = &c.lse {
        let (e, t) = (l.max_abs_err, l.tolerance);
        println!("  lse max |error| {e:.3e} (tolerance {t:e}·(1 + |ref|)): {}", l.verdict());
    }
    let (label, note) = if batch.opts.update_kv_cache { ("updated cache", "") } else { ("cache", " (KV-share)") };
    println!("  {label:<15} {}{note}", if c.cache_bit_exact { "bit-exact" } else { "MISMATCH" });
}

fn file_entry(a: &Array) -> serde_json::Value {
    json!({ "dtype": dtype_name(a.dtype()), "shape": a.shape(), "stored_as": npy::descr(a.dtype()) })
}

/// Writes output.npy, kv_cache.npy, lse.npy (with --lse), the inputs (with --save-inputs) and
/// summary.json into `dir`.
fn write_results(
    dir: &Path,
    batch: &Batch,
    out: &RpaOutput,
    a: &RunArgs,
    check: Option<&Check>,
    hbm: Option<u64>,
    times: &[f64],
    build_ms: f64,
) -> Result<Vec<PathBuf>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    let mut files = Vec::new();
    let mut entries = serde_json::Map::new();
    let mut put = |name: &str, array: &Array| -> CliResult {
        let p = dir.join(name);
        npy::write_array(&p, array).map_err(CliError::Failed)?;
        entries.insert(name.into(), file_entry(array));
        files.push(p);
        Ok(())
    };
    put("output.npy", &out.output)?;
    put("kv_cache.npy", &out.kv_cache)?;
    if let Some(lse) = &out.lse {
        put("lse.npy", lse)?;
    }
    if a.save_inputs {
        let inputs = dir.join("inputs");
        std::fs::create_dir_all(&inputs).map_err(|e| CliError::Failed(format!("{}: {e}", inputs.display())))?;
        files.extend(batch.save_inputs(&inputs).map_err(CliError::Failed)?);
    }
    let min_bytes = batch.minimum_bytes();
    let summary = json!({
        "backend": a.backend.name(),
        "batch": batch.config,
        "distribution": batch.inputs.distribution,
        "reordered": batch.reordered.is_some(),
        "description": batch.describe(),
        "options": batch.describe_options(),
        "check": check.map(|c| json!({
            "output": comparison_json(&c.output),
            "lse": c.lse.as_ref().map(comparison_json),
            "cache_bit_exact": c.cache_bit_exact,
        })),
        "passed": check.is_none_or(Check::passed),
        "hbm_bytes": hbm,
        "min_bytes": min_bytes,
        "bytes_ratio": hbm.map(|h| h as f64 / min_bytes as f64),
        "build_ms_per_kernel": build_ms,
        "call_ms": times,
        "files": entries,
    });
    let p = dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).expect("serializable") + "\n";
    std::fs::write(&p, text).map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?;
    files.push(p);
    Ok(files)
}

fn nan_max(m: f64, d: f64) -> f64 {
    if m.is_nan() || d.is_nan() {
        f64::NAN
    } else {
        m.max(d)
    }
}

/// The PJRT-CPU part of the demo: the serving batch on XLA:CPU, `(max |error|, cache bit-exact,
/// first call ms, second call ms)`.
fn demo_cpu() -> Result<(f64, bool, f64, f64), String> {
    let (x, opts) = crate::demo::serving_batch();
    let t = Instant::now();
    launch::run(Backend::PjrtCpu, &x, &opts).map_err(|e| e.to_string())?;
    let first = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let r = launch::run(Backend::PjrtCpu, &x, &opts).map_err(|e| e.to_string())?;
    let second = t.elapsed().as_secs_f64() * 1e3;
    let want = reference::run(&x, &opts);
    let n = x.cu_q_lens[x.distribution[2] as usize] as usize * x.num_q_heads() * x.head_dim();
    let err = (0..n).map(|i| (r.output.get_f64(i) - want.output.get_f64(i)).abs()).fold(0.0, nan_max);
    Ok((err, r.kv_cache == want.kv_cache, first, second))
}

/// The serving batch on a tp 2 × cp 2 mesh of PJRT-CPU devices: `(max |error|, cache bit-exact, ms)`.
fn demo_mesh() -> Result<(f64, bool, f64), String> {
    let (x, opts) = crate::demo::serving_batch();
    let mesh = crate::rpa::mesh::RpaMesh::new(4, 2, 2).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let r = crate::rpa::mesh::spmd::run_cpu(mesh, &x, &opts).map_err(|e| e.to_string())?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let want = reference::run(&x, &opts);
    let n = x.cu_q_lens[x.distribution[2] as usize] as usize * x.num_q_heads() * x.head_dim();
    let err = (0..n).map(|i| (r.output.get_f64(i) - want.output.get_f64(i)).abs()).fold(0.0, nan_max);
    Ok((err, r.kv_cache == want.kv_cache, ms))
}

/// `rpa demo`: what `rpa_kernels::demo` measures, plus the serving batch on PJRT-CPU when the
/// plugin is installed.
pub fn demo(a: &DemoArgs) -> CliResult {
    let libtpu = !a.interpret_only && rpa_dsl::pjrt::libtpu_path().exists();
    let cpu = !a.interpret_only && rpa_dsl::pjrt::cpu_plugin_path().exists();
    println!("rpa demo — backend: interpret (the reference semantics)\n");
    println!("Ragged paged attention (decode + prefill + mixed kernels, fused KV-cache update):");
    let mut ok = true;
    // XLA:CPU compiles of the three kernels take minutes: start them first, on another thread.
    let cpu_job = cpu.then(|| std::thread::spawn(demo_cpu));
    let r = crate::demo::run_rpa_demo(libtpu).map_err(failed)?;
    println!("  batch           {}", r.description);
    println!("  max |error|     {:.3e} vs the f64 reference (tolerance {})", r.max_abs_err, r.tolerance);
    println!("  updated cache   {}", if r.cache_bit_exact { "bit-exact" } else { "MISMATCH" });
    println!(
        "  HBM bytes       {} moved / {} minimum = {:.4}",
        r.hbm_bytes,
        r.min_bytes,
        r.hbm_bytes as f64 / r.min_bytes as f64
    );
    println!("  time            {:.2} ms to build a kernel, {:.1} ms to run all three", r.build_ms, r.run_ms);
    ok &= r.passed();
    if a.interpret_only {
        println!("  PJRT-CPU        skipped (--interpret-only)");
    } else if let Some(job) = cpu_job {
        use std::io::Write;
        print!("  PJRT-CPU        ");
        let _ = std::io::stdout().flush();
        match job.join().unwrap_or_else(|_| Err("the PJRT-CPU run panicked".into())) {
            Ok((err, exact, first, second)) => {
                println!(
                    "max |error| {err:.3e}, cache {}; {:.1} s for the first call (compiles), {second:.1} ms per call after",
                    if exact { "bit-exact" } else { "MISMATCH" },
                    first / 1e3
                );
                ok &= err <= r.tolerance && exact;
            }
            Err(e) => {
                println!("FAILED: {e}");
                ok = false;
            }
        }
    } else {
        println!("  PJRT-CPU        plugin not installed (run scripts/install-plugins to also run on XLA:CPU)");
    }
    if cpu {
        match demo_mesh() {
            Ok((err, exact, ms)) => {
                println!(
                    "  4 CPU devices   tp 2 × cp 2, one SPMD program: max |error| {err:.3e}, cache {}; {:.1} s (compiles)",
                    if exact { "bit-exact" } else { "MISMATCH" },
                    ms / 1e3
                );
                ok &= err <= r.tolerance && exact;
            }
            Err(e) => {
                println!("  4 CPU devices   FAILED: {e}");
                ok = false;
            }
        }
    }
    if a.interpret_only {
        println!("  TPU             skipped (--interpret-only)");
    } else if r.tpu.is_empty() {
        println!("  TPU             libtpu not installed (run scripts/install-plugins to AOT-compile for v5e/v6e/v7x)");
    }
    for (t, res) in &r.tpu {
        match res {
            Ok(size) => println!("  TPU {t:<11} AOT-compiles with libtpu ({size} bytes of code for the three kernels)"),
            Err(e) => println!("  TPU {t:<11} FAILED: {e}"),
        }
    }
    println!("\nThe book's example kernels:");
    let reports = crate::demo::run_examples().map_err(failed)?;
    println!(
        "  {:<24} {:>12} {:>10} {:>12} {:>10} {:>9}",
        "kernel", "max |err|", "tolerance", "HBM bytes", "build µs", "run ms"
    );
    for r in &reports {
        println!(
            "  {:<24} {:>12.3e} {:>10.1e} {:>12} {:>10.1} {:>9.2}  {}",
            r.name,
            r.max_abs_err,
            r.tolerance,
            r.hbm_bytes,
            r.build_us,
            r.run_ms,
            if r.passed() { "ok" } else { "MISMATCH" }
        );
        ok &= r.passed();
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Failed("the demo found a mismatch (see above)".into()))
    }
}

/// The name of a kernel case: `decode`, `prefill`, `mixed`.
pub fn case_label(c: RpaCase) -> &'static str {
    case_name(c)
}

//! RPA benchmark: HBM bytes moved (interpret-mode accounting) ÷ the minimum the attention must
//! touch, and wall time per call on interpret mode, on PJRT-CPU (the StableHLO lowering) and of a
//! dense reference written in jax.numpy and jitted on XLA:CPU (`python/dense_reference.py`, in the
//! venv `scripts/install-python` makes), for the upstream decode_only / prefill_only / mixed lists
//! and the Llama-3-8B shaped serving batch; and per batch
//! the time to build its kernels (the IR, then the Mosaic text) and to compile them with libtpu
//! for each TPU generation (when the libtpu wheel is installed: `./scripts/install-plugins`).
//! `cargo bench -p rpa-kernels --bench rpa`.
//!
//! Times are medians: interpret mode of 5 calls after a warm-up call, PJRT-CPU of 3 calls after a
//! first call that compiles (and is not counted); a call includes the host-side work (layouts,
//! upload, download) on both sides. PJRT-CPU runs unchecked, and again in checked mode (the
//! default outside benchmarks) to show what the run-time checks cost.

use rpa_dsl::DType;
use rpa_dsl::TpuTarget;
use rpa_kernels::cli::npy;
use rpa_kernels::rpa::launch::{
    build_for_target, launched_cases, ragged_paged_attention, ragged_paged_attention_on, Backend,
};
use rpa_kernels::rpa::reference::RpaInputs;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, DECODE_KV, MIXED, PREFILL};
use rpa_kernels::rpa::RpaOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Timed PJRT-CPU calls per measurement (after the compiling one).
const CPU_CALLS: usize = 3;
/// Timed interpret-mode calls per measurement (after a warm-up call).
const INTERPRET_CALLS: usize = 5;

/// Every K/V row read once, the queries read and the outputs written once, the new K/V written once.
fn minimum_bytes(x: &RpaInputs, lens: &[(usize, usize)]) -> u64 {
    let kv_row = 2 * x.num_kv_heads() * x.head_dim() * x.kv_cache.dtype().bytes();
    let q_row = x.num_q_heads() * x.head_dim() * x.queries.dtype().bytes();
    let kv: usize = lens.iter().map(|l| l.1).sum();
    let q: usize = lens.iter().map(|l| l.0).sum();
    (kv * kv_row + 2 * q * q_row + q * kv_row) as u64
}

fn ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

/// Median wall time of `calls` calls.
fn median_ms(calls: usize, f: &mut dyn FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..calls).map(|_| ms(f)).collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// The jitted jax.numpy dense reference on the batch: its first call (compile included) and the
/// median of `CPU_CALLS` more, in ms.
fn jnp_dense(name: &str, x: &RpaInputs, opts: &RpaOptions) -> Result<(f64, f64), String> {
    let root = workspace();
    let python = root.join(".cache/venv/bin/python");
    if !python.exists() {
        return Err("run scripts/install-python".into());
    }
    let dir = root.join("target/rpa-bench/dense").join(name.split(' ').next().unwrap_or("batch"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (file, array) in [("queries", &x.queries), ("keys", &x.keys), ("values", &x.values), ("kv_cache", &x.kv_cache)]
    {
        npy::write_array(&dir.join(format!("{file}.npy")), array)?;
    }
    for (file, v) in [
        ("kv_lens", &x.kv_lens[..]),
        ("page_indices", &x.page_indices[..]),
        ("cu_q_lens", &x.cu_q_lens[..]),
        ("distribution", &x.distribution[..]),
    ] {
        npy::write_i32(&dir.join(format!("{file}.npy")), &[v.len()], v)?;
    }
    let options = serde_json::json!({
        "q_dtype": x.queries.dtype().name(),
        "kv_dtype": x.kv_cache.dtype().name(),
        "sm_scale": opts.sm_scale,
        "sliding_window": opts.sliding_window,
        "soft_cap": opts.soft_cap,
        "mask_value": opts.mask_value,
        "causal": opts.causal,
        "update_kv_cache": opts.update_kv_cache,
    });
    std::fs::write(dir.join("options.json"), options.to_string()).map_err(|e| e.to_string())?;
    let out = Command::new(&python)
        .arg(root.join("python/dense_reference.py"))
        .arg(&dir)
        .args(["--calls", &CPU_CALLS.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed").to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok((v["first_ms"].as_f64().unwrap_or(f64::NAN), v["call_ms"].as_f64().unwrap_or(f64::NAN)))
}

fn bench(name: &str, x: &RpaInputs, opts: &RpaOptions, lens: &[(usize, usize)]) {
    // Interpret mode: one warm-up call, then the median of a few.
    let bytes = ragged_paged_attention(x, opts).expect("runs").2.hbm_bytes();
    let interpret = median_ms(INTERPRET_CALLS, &mut || drop(ragged_paged_attention(x, opts).unwrap()));
    let min = minimum_bytes(x, lens);
    // PJRT-CPU: the kernels (unchecked, then in checked mode), then the dense reference, each
    // compiled by its first call.
    let mut rpa = || drop(ragged_paged_attention_on(Backend::PjrtCpuUnchecked, x, opts).expect("runs on PJRT-CPU"));
    let rpa_first = ms(&mut rpa);
    let cpu = median_ms(CPU_CALLS, &mut rpa);
    let mut checked = || drop(ragged_paged_attention_on(Backend::PjrtCpu, x, opts).expect("runs checked on PJRT-CPU"));
    let checked_first = ms(&mut checked);
    let checked = median_ms(CPU_CALLS, &mut checked);
    let (dense_first, dense_ms) = jnp_dense(name, x, opts).unwrap_or_else(|e| {
        println!("{name:<32} (no jax.numpy dense reference: {e})");
        (f64::NAN, f64::NAN)
    });
    println!(
        "{name:<32} {:>6.3} bytes ratio | interpret {:>8.1} | PJRT-CPU {:>8.1} | checked {:>8.1} ({:+.0}%) | \
         jnp dense {:>8.1} | RPA/dense {:>5.2}   (first calls incl. compile: RPA {:.0}, checked {:.0}, dense {:.0})",
        bytes as f64 / min as f64,
        interpret,
        cpu,
        checked,
        (checked / cpu - 1.0) * 100.0,
        dense_ms,
        cpu / dense_ms,
        rpa_first,
        checked_first,
        dense_first
    );
}

/// Build and compile times of the batch's kernels, summed over its cases: the IR (median of 5),
/// the Mosaic text (median of 5), and per TPU generation one libtpu compile (rpa's verifier, the
/// Mosaic text, the custom call and libtpu's compile; the first compile also loads libtpu).
fn build_times(name: &str, x: &RpaInputs, opts: &RpaOptions) {
    let cases: Vec<_> = launched_cases(x).into_iter().map(|(case, _)| case).collect();
    let build = |case, target| build_for_target(x, opts, case, target).expect("builds");
    let ir: f64 = cases.iter().map(|&c| median_ms(5, &mut || drop(build(c, TpuTarget::V6e)))).sum();
    let kernels: Vec<_> = cases.iter().map(|&c| build(c, TpuTarget::V6e)).collect();
    let lower = |k| rpa_dsl::lower::mosaic::lower(k).expect("lowers to Mosaic");
    let mosaic: f64 = kernels.iter().map(|k| median_ms(5, &mut || drop(lower(k)))).sum();
    let lines: usize = kernels.iter().map(|k| lower(k).lines().count()).sum();
    let mut line = format!("{name:<32} build: IR {ir:>6.1} | Mosaic {mosaic:>6.1} ({lines} lines)");
    if rpa_dsl::pjrt::libtpu().is_ok() {
        for target in TpuTarget::ALL {
            let compile: f64 = cases
                .iter()
                .map(|&c| build(c, target))
                .map(|k| ms(&mut || drop(rpa_dsl::tpu::compile_for(&k, target).expect("compiles for the TPU"))))
                .sum();
            line += &format!(" | libtpu {target} {compile:>7.1}");
        }
    } else {
        line += " | libtpu not installed";
    }
    println!("{line}");
}

fn main() {
    println!("ms; bytes ratio = interpret-mode HBM bytes / minimum bytes");
    let opts = RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), ..Default::default() };
    let decode: Vec<(usize, usize)> = DECODE_KV.iter().map(|&kv| (1, kv)).collect();
    let mut x = make_batch(&BatchSpec::new(&decode, (32, 8), 128, 16, DType::F32));
    x.distribution = [16, 16, 16];
    let prefill = make_batch(&BatchSpec::new(&PREFILL, (32, 8), 128, 16, DType::F32));
    let mixed = make_batch(&BatchSpec::new(&MIXED, (32, 8), 128, 16, DType::F32));
    let (serving, serving_opts) = rpa_kernels::demo::serving_batch();
    let batches = [
        ("decode_only (32/8, D128, f32)", &x, &opts, &decode[..]),
        ("prefill_only (32/8, D128, f32)", &prefill, &opts, &PREFILL[..]),
        ("mixed (32/8, D128, f32)", &mixed, &opts, &MIXED[..]),
        ("Llama-3-8B serving batch (bf16)", &serving, &serving_opts, &rpa_kernels::demo::SERVING_LENS[..]),
    ];
    println!("\n== per call: bytes ratio, then wall time");
    for (name, x, opts, lens) in batches {
        bench(name, x, opts, lens);
    }
    println!("\n== kernel build (IR, Mosaic text) and libtpu compile, summed over the launched kernels");
    for (name, x, opts, _) in batches {
        build_times(name, x, opts);
    }
}

//! `rpa`: the command-line entry point. `rpa demo` runs the kernels on the default backend
//! (interpret mode) and checks them against their references.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: rpa demo\n\n  demo   build the kernels, run them on interpret mode, check them against their references");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("--help") | Some("-h") | Some("help") => {
            usage();
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

fn demo() -> ExitCode {
    let libtpu = rpa_dsl::pjrt::libtpu_path().exists();
    println!("rpa demo — backend: interpret (the reference semantics)\n");
    println!("Ragged paged attention (decode + prefill + mixed kernels, fused KV-cache update):");
    let mut ok = true;
    match rpa_kernels::demo::run_rpa_demo(libtpu) {
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Ok(r) => {
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
            if r.tpu.is_empty() {
                println!("  TPU             libtpu not installed (run scripts/install-plugins to AOT-compile for v5e/v6e/v7x)");
            }
            for (t, res) in &r.tpu {
                match res {
                    Ok(size) => {
                        println!("  TPU {t:<11} AOT-compiles with libtpu ({size} bytes of code for the three kernels)")
                    }
                    Err(e) => println!("  TPU {t:<11} FAILED: {e}"),
                }
            }
            ok &= r.passed();
        }
    }
    println!("\nThe book's example kernels:");
    match rpa_kernels::demo::run_examples() {
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Ok(reports) => {
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
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

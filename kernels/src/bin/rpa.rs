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
    println!("rpa demo — backend: interpret (the reference semantics)");
    match rpa_kernels::demo::run_examples() {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Ok(reports) => {
            println!(
                "{:<24} {:>12} {:>10} {:>12} {:>10} {:>9}",
                "kernel", "max |err|", "tolerance", "HBM bytes", "build µs", "run ms"
            );
            let mut ok = true;
            for r in &reports {
                println!(
                    "{:<24} {:>12.3e} {:>10.1e} {:>12} {:>10.1} {:>9.2}  {}",
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
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

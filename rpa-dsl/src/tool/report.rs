//! Output shared by the kernel tools: printing or writing a text, byte counts, the report of a
//! libtpu compile, and clear errors for a missing plugin.

use super::{CliError, CliResult};
use crate::tpu::TpuCompiled;
use crate::{Kernel, TpuTarget};
use std::path::Path;

/// Prints `text` (a closed pipe, as in `rpa ir | head`, is not an error), or writes it to `output`.
pub fn emit(text: &str, output: Option<&Path>) -> CliResult {
    match output {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let nl = if text.ends_with('\n') { "" } else { "\n" };
            match out.write_all(text.as_bytes()).and_then(|_| out.write_all(nl.as_bytes())).and_then(|_| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Failed(e.to_string())),
                _ => Ok(()),
            }
        }
        Some(p) => {
            std::fs::write(p, text).map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?;
            println!("wrote {} ({} lines)", p.display(), text.lines().count());
            Ok(())
        }
    }
}

/// `2.00 GiB`, `1.50 MiB`, `12.0 KiB`, `512 B`.
pub fn fmt_bytes(n: usize) -> String {
    if n >= 1 << 30 {
        format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64)
    } else if n >= 1 << 20 {
        format!("{:.2} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// Prints what libtpu reports about `kernel` compiled for `target`: VMEM and SMEM against the
/// limits, code size and XLA's cost analysis.
pub fn print_compiled(kernel: &Kernel, target: TpuTarget, c: &TpuCompiled) {
    let limit = kernel.vmem_limit.unwrap_or(target.default_scoped_vmem_bytes());
    let which = if kernel.vmem_limit.is_some() { "scoped limit set for the kernel" } else { "default scoped limit" };
    println!(
        "  VMEM            {} of the {} {which} ({:.1}%; the chip has {})",
        fmt_bytes(c.vmem_bytes),
        fmt_bytes(limit),
        100.0 * c.vmem_bytes as f64 / limit as f64,
        fmt_bytes(target.vmem_bytes())
    );
    println!(
        "  SMEM            {} of {} ({:.2}%)",
        fmt_bytes(c.smem_bytes),
        fmt_bytes(target.smem_bytes()),
        100.0 * c.smem_bytes as f64 / target.smem_bytes() as f64
    );
    println!(
        "  code size       {} bytes (serialized executable {} bytes; device kind {})",
        c.code_size,
        c.serialized_size,
        if c.device_kind.is_empty() { "?" } else { &c.device_kind }
    );
    if c.cost_analysis.is_empty() {
        println!("  cost analysis   (none reported)");
    }
    for (i, (key, v)) in c.cost_analysis.iter().enumerate() {
        let label = if i == 0 { "cost analysis" } else { "" };
        println!("  {label:<15} {key:<28} {v}");
    }
}

fn require(path: &Path, what: &str, env: &str) -> CliResult {
    if path.exists() {
        return Ok(());
    }
    Err(CliError::Failed(format!(
        "{what} is not installed ({} does not exist): run scripts/install-plugins, or set {env}",
        path.display()
    )))
}

/// A clear error when the PJRT-CPU plugin is not installed.
pub fn require_cpu_plugin() -> CliResult {
    require(&crate::pjrt::cpu_plugin_path(), "the PJRT-CPU plugin", crate::pjrt::CPU_PLUGIN_ENV)
}

/// A clear error when libtpu is not installed.
pub fn require_libtpu() -> CliResult {
    require(&crate::pjrt::libtpu_path(), "libtpu", crate::pjrt::LIBTPU_ENV)
}

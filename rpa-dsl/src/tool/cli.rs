//! The command line of a kernel tool (see the [module documentation](super)).
//!
//! Exit codes: 0 success; 1 a failed check, build or run (message on stderr); 2 a usage error
//! (unknown kernel, bad `--arg`, bad flag).

use super::registry::{Args, KernelSpec, Registry, ToolError};
use super::report::{emit, print_compiled, require_cpu_plugin, require_libtpu};
use super::{npy, CliError, CliResult, TargetsArg};
use crate::interpret::{trace::chrome_trace_json, InterpretOptions};
use crate::ir::printer::{print, PrintOptions};
use crate::{Array, Kernel};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(arg_required_else_help = true, max_term_width = 110)]
struct ToolCli {
    #[command(subcommand)]
    command: ToolCommand,
}

#[derive(Subcommand, Debug)]
enum ToolCommand {
    /// List the kernels with their comptime arguments and defaults
    List,
    /// Print a kernel's IR
    Ir(IrArgs),
    /// Print a kernel's Mosaic (MLIR `tpu` dialect) lowering
    Mosaic(MosaicArgs),
    /// Print a kernel's StableHLO lowering (what the PJRT-CPU backend compiles)
    Stablehlo(ShowArgs),
    /// AOT-compile kernels for a TPU generation with libtpu and report their resources
    Compile(CompileArgs),
    /// Run a kernel on a backend and check it against its reference
    Run(RunArgs),
    /// Run a kernel on interpret mode and write its Chrome/Perfetto event trace
    Trace(TraceArgs),
}

/// A kernel and its comptime arguments.
#[derive(clap::Args, Debug)]
struct KernelArgs {
    /// The kernel (`list` shows them)
    kernel: String,
    /// A comptime argument, NAME=VALUE (repeat it, or separate with commas)
    #[arg(short = 'a', long = "arg", value_name = "NAME=VALUE", value_delimiter = ',')]
    args: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ShowArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Write to FILE instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct IrArgs {
    #[command(flatten)]
    show: ShowArgs,
    /// End every line with the kernel author's source location
    #[arg(long)]
    locs: bool,
}

#[derive(clap::Args, Debug)]
struct MosaicArgs {
    #[command(flatten)]
    show: ShowArgs,
    /// Print the StableHLO module that wraps the Mosaic kernel in a tpu_custom_call (what libtpu compiles)
    #[arg(long)]
    custom_call: bool,
}

#[derive(clap::Args, Debug)]
struct CompileArgs {
    /// The kernel [default: every kernel, with its default arguments]
    kernel: Option<String>,
    /// A comptime argument, NAME=VALUE (repeat it, or separate with commas; needs a kernel)
    #[arg(short = 'a', long = "arg", value_name = "NAME=VALUE", value_delimiter = ',', requires = "kernel")]
    args: Vec<String>,
    /// The TPU generation
    #[arg(long, value_enum)]
    target: TargetsArg,
}

/// Where `run` runs a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Interpret mode: the reference semantics, counts bytes moved
    Interpret,
    /// XLA:CPU through PJRT (the StableHLO lowering)
    Cpu,
}

/// The inputs of `run` and `trace`.
#[derive(clap::Args, Debug)]
struct InputArgs {
    /// Read the operand NAME from a .npy file instead of making it (repeatable)
    #[arg(long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// The seed of the random inputs
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Where to run the kernel
    #[arg(long, value_enum, default_value_t = Backend::Interpret)]
    backend: Backend,
    #[command(flatten)]
    inputs: InputArgs,
    /// Write each output as OUTPUT_NAME.npy into DIR
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Error bound: |kernel - reference| <= X·(1 + |reference|) [default: the kernel's]
    #[arg(long, value_name = "X")]
    tolerance: Option<f64>,
    /// Skip the reference
    #[arg(long)]
    no_check: bool,
}

#[derive(clap::Args, Debug)]
struct TraceArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// The trace file (open it in ui.perfetto.dev or chrome://tracing)
    #[arg(long, value_name = "FILE", default_value = "trace.json")]
    out: PathBuf,
}

fn usage(e: ToolError) -> CliError {
    CliError::Usage(e.0)
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// The kernel spec, its arguments and the built kernel.
fn build<'r>(registry: &'r Registry, k: &KernelArgs) -> Result<(&'r KernelSpec, Args, Kernel), CliError> {
    let spec = registry.find(&k.kernel).map_err(usage)?;
    let args = spec.args(&k.args).map_err(usage)?;
    let kernel = spec.build(&args).map_err(failed)?;
    Ok((spec, args, kernel))
}

/// `list`.
fn list(registry: &Registry) -> CliResult {
    println!("{} — {} kernel{}", registry.name(), registry.kernels().len(), plural(registry.kernels().len()));
    for k in registry.kernels() {
        let check = if k.has_reference() { "" } else { " (no reference)" };
        println!("\n{}  {}{check}", k.name(), k.about());
        for p in k.params() {
            println!("  --arg {:<24} {}", format!("{}={}", p.name, p.default), p.help);
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `compile`.
fn compile(registry: &Registry, a: &CompileArgs) -> CliResult {
    let kernels: Vec<&KernelSpec> = match &a.kernel {
        Some(name) => vec![registry.find(name).map_err(usage)?],
        None => registry.kernels().iter().collect(),
    };
    require_libtpu()?;
    let targets = a.target.targets();
    let names: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    println!("{} compile — libtpu ahead-of-time compile for {}", registry.name(), names.join(", "));
    let mut failures = 0;
    for &target in &targets {
        for spec in &kernels {
            println!();
            let built = spec.args(&a.args).map_err(usage)?;
            let result = spec.build(&built).map_err(|e| e.0).and_then(|k| {
                println!("{target} {} ({}) — kernel `{}`", spec.name(), built.describe(), k.name);
                crate::tpu::compile_for(&k, target).map(|c| (k, c)).map_err(|e| e.to_string())
            });
            match result {
                Ok((k, c)) => print_compiled(&k, target, &c),
                Err(e) => {
                    println!("{target} {}: FAILED (the message is on stderr)", spec.name());
                    eprintln!("error: {target} {}: {e}", spec.name());
                    failures += 1;
                }
            }
        }
    }
    let total = targets.len() * kernels.len();
    if failures > 0 {
        return Err(CliError::Failed(format!("{failures} of {total} compiles failed")));
    }
    println!("\n{total} kernel{} compiled", plural(total));
    Ok(())
}

/// The most operand bytes `run` and `trace` allocate on the host (interpret mode and PJRT-CPU hold
/// every operand in memory).
pub const HOST_BYTES_LIMIT: usize = 4 << 30;

/// An error instead of an allocation failure when the operands cannot fit in host memory.
fn check_host_size(spec: &KernelSpec, args: &Args, kernel: &Kernel) -> CliResult {
    let bytes = kernel.operands().filter_map(|p| p.array.as_ref()).try_fold(0usize, |sum, ty| {
        ty.max_shape().iter().try_fold(ty.dtype.bytes(), |n, &d| n.checked_mul(d)).and_then(|n| sum.checked_add(n))
    });
    match bytes {
        Some(n) if n <= HOST_BYTES_LIMIT => Ok(()),
        _ => Err(CliError::Failed(format!(
            "`{}` ({}): its operands take {}, more than the {} the tools allocate for a host run",
            spec.name(),
            args.describe(),
            bytes.map_or("more than usize::MAX bytes".into(), super::fmt_bytes),
            super::fmt_bytes(HOST_BYTES_LIMIT)
        ))),
    }
}

/// The inputs of a run: made by the kernel spec, with `--input NAME=FILE` replacing operands.
fn load_inputs(spec: &KernelSpec, args: &Args, kernel: &Kernel, a: &InputArgs) -> Result<Vec<Array>, CliError> {
    check_host_size(spec, args, kernel)?;
    let mut inputs = spec.make_inputs(args, kernel, a.seed).map_err(failed)?;
    let params: Vec<_> = kernel.inputs().collect();
    for item in &a.inputs {
        let Some((name, file)) = item.split_once('=') else {
            return Err(CliError::Usage(format!("--input `{item}`: expected NAME=FILE.npy")));
        };
        let Some(i) = params.iter().position(|p| p.name == name) else {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            return Err(CliError::Usage(format!(
                "--input {name}: kernel `{}` has no input `{name}` (its inputs: {})",
                spec.name(),
                names.join(", ")
            )));
        };
        let ty = params[i].array.as_ref().expect("an operand has an array type");
        let read = npy::read(Path::new(file)).and_then(|n| n.to_array(ty.dtype));
        let array = read.map_err(|e| CliError::Failed(format!("--input {name}: {file}: {e}")))?;
        if array.shape() != ty.max_shape().as_slice() {
            return Err(CliError::Failed(format!(
                "--input {name}: {file} has shape {:?}; the kernel's `{name}` is {:?}",
                array.shape(),
                ty.max_shape()
            )));
        }
        inputs[i] = array;
    }
    Ok(inputs)
}

fn describe_inputs(kernel: &Kernel, a: &InputArgs) -> String {
    let parts: Vec<String> = kernel
        .inputs()
        .map(|p| {
            let ty = p.array.as_ref().expect("an operand has an array type");
            let from = a.inputs.iter().find_map(|i| i.strip_prefix(&format!("{}=", p.name)));
            let from = from.map_or(String::new(), |f| format!(" from {f}"));
            format!("{} {}{:?}{from}", p.name, super::dtype_name(ty.dtype), ty.max_shape())
        })
        .collect();
    parts.join(", ")
}

/// Runs the kernel once on `backend`: outputs, prints and (on interpret mode) HBM bytes.
fn call(kernel: &Kernel, inputs: &[Array], backend: Backend) -> Result<(Vec<Array>, Vec<String>, Option<u64>), String> {
    match backend {
        Backend::Interpret => {
            let out = crate::interpret::run(kernel, inputs, &InterpretOptions::default()).map_err(|e| e.to_string())?;
            Ok((out.outputs, out.prints, Some(out.stats.hbm_bytes())))
        }
        Backend::Cpu => {
            let (outputs, prints) = crate::cpu::run_with_prints(kernel, inputs).map_err(|e| e.to_string())?;
            Ok((outputs, prints, None))
        }
    }
}

/// `run`.
fn run(registry: &Registry, a: &RunArgs) -> CliResult {
    let t = Instant::now();
    let (spec, args, kernel) = build(registry, &a.kernel)?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    if a.backend == Backend::Cpu {
        require_cpu_plugin()?;
    }
    let inputs = load_inputs(spec, &args, &kernel, &a.inputs)?;
    let backend = a.backend.to_possible_value().expect("a value").get_name().to_string();
    println!("{} run — {} on {backend}", registry.name(), spec.name());
    println!("  arguments       {}", if args.describe().is_empty() { "none".into() } else { args.describe() });
    println!("  inputs          {}", describe_inputs(&kernel, &a.inputs));
    let t = Instant::now();
    let (outputs, prints, hbm) = call(&kernel, &inputs, a.backend)
        .map_err(|e| CliError::Failed(format!("`{}` failed on {backend}: {e}", spec.name())))?;
    let run_ms = t.elapsed().as_secs_f64() * 1e3;
    for line in &prints {
        println!("  debug_print     {line}");
    }
    let names: Vec<String> = kernel.outputs().map(|p| p.name.clone()).collect();
    let tolerance = a.tolerance.unwrap_or(spec.default_tolerance());
    let check = if a.no_check { None } else { spec.check(&args, &inputs, &outputs, tolerance) };
    let mut passed = true;
    match check {
        None if a.no_check => println!("  check           skipped (--no-check)"),
        None => println!("  check           none (the kernel has no reference)"),
        Some(Err(e)) => return Err(CliError::Failed(format!("the reference of `{}`: {e}", spec.name()))),
        Some(Ok(comparisons)) => {
            for (name, c) in names.iter().zip(&comparisons) {
                println!(
                    "  {:<15} max |error| {:.3e} vs the reference (tolerance {:e}·(1 + |ref|)): {}",
                    name,
                    c.max_abs_err,
                    c.tolerance,
                    c.verdict()
                );
                if let Some((i, got, want)) = c.first_mismatch {
                    println!("                  first mismatch: element {i}: kernel {got}, reference {want}");
                }
                passed &= c.ok();
            }
        }
    }
    if let Some(h) = hbm {
        println!("  HBM bytes       {h}");
    }
    println!("  time            {build_ms:.2} ms to build, {run_ms:.1} ms to run");
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
        let mut wrote = Vec::new();
        for (name, array) in names.iter().zip(&outputs) {
            let p = dir.join(format!("{name}.npy"));
            npy::write_array(&p, array).map_err(CliError::Failed)?;
            wrote.push(p.display().to_string());
        }
        println!("  wrote           {}", wrote.join(", "));
    }
    if passed {
        Ok(())
    } else {
        Err(CliError::Failed(format!("check failed: `{}` is out of tolerance", spec.name())))
    }
}

/// `trace`.
fn trace(registry: &Registry, a: &TraceArgs) -> CliResult {
    let (spec, args, kernel) = build(registry, &a.kernel)?;
    let inputs = load_inputs(spec, &args, &kernel, &a.inputs)?;
    let opts = InterpretOptions { trace: true, ..InterpretOptions::default() };
    let out = crate::interpret::run(&kernel, &inputs, &opts).map_err(failed)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    }
    let text = chrome_trace_json(&kernel.name, &out.events);
    std::fs::write(&a.out, text).map_err(|e| CliError::Failed(format!("{}: {e}", a.out.display())))?;
    println!("{} trace — {} ({}) on interpret", registry.name(), spec.name(), args.describe());
    let mut tracks: Vec<(&str, usize)> = Vec::new();
    for e in &out.events {
        match tracks.iter_mut().find(|(t, _)| *t == e.track) {
            Some((_, n)) => *n += 1,
            None => tracks.push((&e.track, 1)),
        }
    }
    for (track, n) in &tracks {
        println!("  {track:<20} {n:>7} events");
    }
    println!("  wrote           {} (open it in ui.perfetto.dev or chrome://tracing)", a.out.display());
    Ok(())
}

/// Runs the command line `args` (including the program name) for `registry`'s kernels and returns
/// the exit code.
pub fn run_cli<I, T>(registry: &Registry, args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let name = registry.name().to_string();
    let command = ToolCli::command().name(name.clone()).bin_name(name).about(registry.about_text().to_string());
    let cli = match command.try_get_matches_from(args).and_then(|m| ToolCli::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code() as u8;
        }
    };
    let result = match &cli.command {
        ToolCommand::List => list(registry),
        ToolCommand::Ir(a) => build(registry, &a.show.kernel)
            .and_then(|(_, _, k)| emit(&print(&k, PrintOptions { locs: a.locs }), a.show.output.as_deref())),
        ToolCommand::Mosaic(a) => build(registry, &a.show.kernel).and_then(|(_, _, k)| {
            let text = if a.custom_call { crate::tpu::stablehlo_module(&k) } else { crate::lower::mosaic::lower(&k) };
            emit(&text.map_err(failed)?, a.show.output.as_deref())
        }),
        ToolCommand::Stablehlo(a) => build(registry, &a.kernel)
            .and_then(|(_, _, k)| emit(&crate::lower::stablehlo::lower(&k).map_err(failed)?, a.output.as_deref())),
        ToolCommand::Compile(a) => compile(registry, a),
        ToolCommand::Run(a) => run(registry, a),
        ToolCommand::Trace(a) => trace(registry, a),
    };
    CliError::report(result)
}

#[cfg(unix)]
extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

/// Restores the default SIGPIPE action, so that `tool ... | head` ends quietly like other Unix
/// tools instead of panicking on a closed stdout (Rust ignores SIGPIPE by default). Call it first
/// thing in `main`, before any other thread exists.
pub fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: installs the default action (SIG_DFL = 0) for SIGPIPE (13 on Linux and macOS); the
    // caller promises no other thread exists yet.
    unsafe {
        signal(13, 0);
    }
}

/// A kernel tool's `main`: runs the process's command line for `registry`'s kernels.
pub fn main(registry: &Registry) -> ExitCode {
    default_sigpipe();
    // Loading libtpu sets its environment itself: set it before any thread starts.
    crate::pjrt::default_libtpu_env();
    ExitCode::from(run_cli(registry, std::env::args_os()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        ToolCli::command().debug_assert();
    }
}

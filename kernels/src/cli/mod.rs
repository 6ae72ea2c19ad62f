//! The `rpa` command line: argument parsing (clap) and the subcommands. `src/bin/rpa.rs` only calls
//! [`main`]; everything here is a library so that it can be tested.
//!
//! Exit codes: 0 success; 1 a failed check or a run error (message on stderr); 2 a usage error.

pub mod batch;
pub mod bench;
pub mod mesh;
pub mod npy;
pub mod plot;
pub mod run;
pub mod show;
pub mod trace;

use batch::BatchArgs;
use clap::{Parser, Subcommand, ValueEnum};
use rpa_dsl::TpuTarget;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

pub use rpa_dsl::tool::{CliError, CliResult, TargetArg, TargetsArg};

pub(crate) fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// rpa — Ragged Paged Attention kernels written in a Rust DSL for TPUs.
///
/// Run kernels on interpret mode (the reference semantics), on XLA:CPU through PJRT, or compile
/// them ahead of time for TPU v5e/v6e/v7x with libtpu. `scripts/install-plugins` installs the
/// PJRT CPU plugin and libtpu; without them interpret mode still works.
#[derive(Parser, Debug)]
#[command(name = "rpa", version, arg_required_else_help = true, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build the kernels, run them and check them against their references (the README's command)
    Demo(DemoArgs),
    /// Run one ragged batch on a backend and check it against the f64 reference
    Run(RunArgs),
    /// Print a kernel's IR
    Ir(IrArgs),
    /// Print a kernel's Mosaic (MLIR `tpu` dialect) lowering
    Mosaic(MosaicArgs),
    /// Print a kernel's StableHLO lowering (what the PJRT-CPU backend compiles)
    Stablehlo(ShowArgs),
    /// AOT-compile kernels for a TPU generation with libtpu and report their resources
    Compile(CompileArgs),
    /// Sweep batch size, context length, q_len mix and dtype; write CSV, JSON and SVG plots
    Bench(BenchArgs),
    /// Run a batch on interpret mode and write its Chrome/Perfetto event trace
    Trace(TraceArgs),
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Only interpret mode, even when the PJRT-CPU plugin or libtpu is installed
    #[arg(long)]
    pub interpret_only: bool,
}

/// Where `run` runs the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Interpret mode: the reference semantics, counts bytes moved
    Interpret,
    /// XLA:CPU through PJRT (the StableHLO lowering)
    Cpu,
    /// An attached TPU v5e through libtpu
    #[value(name = "tpu-v5e")]
    TpuV5e,
    /// An attached TPU v6e through libtpu
    #[value(name = "tpu-v6e")]
    TpuV6e,
    /// An attached TPU v7x through libtpu
    #[value(name = "tpu-v7x")]
    TpuV7x,
}

impl BackendArg {
    pub fn backend(self) -> crate::rpa::launch::Backend {
        use crate::rpa::launch::Backend;
        match self {
            BackendArg::Interpret => Backend::Interpret,
            BackendArg::Cpu => Backend::PjrtCpu,
            BackendArg::TpuV5e => Backend::Tpu(TpuTarget::V5e),
            BackendArg::TpuV6e => Backend::Tpu(TpuTarget::V6e),
            BackendArg::TpuV7x => Backend::Tpu(TpuTarget::V7x),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendArg::Interpret => "interpret",
            BackendArg::Cpu => "cpu",
            BackendArg::TpuV5e => "tpu-v5e",
            BackendArg::TpuV6e => "tpu-v6e",
            BackendArg::TpuV7x => "tpu-v7x",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Where to run the kernels
    #[arg(long, value_enum, default_value_t = BackendArg::Interpret)]
    pub backend: BackendArg,
    /// Write output.npy, kv_cache.npy (lse.npy with --lse) and summary.json into DIR
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also write the inputs (.npy files and batch.json) into DIR/inputs, so that `--input DIR/inputs`
    /// reruns the call
    #[arg(long, requires = "out")]
    pub save_inputs: bool,
    /// Calls to make [default: 1 on interpret mode, 2 elsewhere: the first one compiles]
    #[arg(long, value_name = "N")]
    pub repeat: Option<usize>,
    /// Output error bound: |kernel - reference| <= X·(1 + |reference|) [default: by dtype]
    #[arg(long, value_name = "X")]
    pub tolerance: Option<f64>,
    /// Skip the f64 reference (slow on large batches)
    #[arg(long)]
    pub no_check: bool,
    /// Run on a mesh of N devices (tensor parallel × context parallel): interpret mode simulates
    /// them one by one, `--backend cpu` runs them as PJRT-CPU devices [default: tp · cp]
    #[arg(long, value_name = "N")]
    pub devices: Option<usize>,
    /// Tensor-parallel devices: each takes Hq/T query heads and their kv heads [default: 1]
    #[arg(long, value_name = "T")]
    pub tp: Option<usize>,
    /// Context-parallel devices: each holds a contiguous range of every sequence's pages
    /// [default: devices / tp]
    #[arg(long, value_name = "C")]
    pub cp: Option<usize>,
}

impl RunArgs {
    /// `(devices, tp, cp)` when any of them is given.
    pub fn mesh(&self) -> Option<(usize, usize, usize)> {
        if self.devices.is_none() && self.tp.is_none() && self.cp.is_none() {
            return None;
        }
        let tp = self.tp.unwrap_or(1);
        let cp = self.cp.unwrap_or_else(|| self.devices.map_or(1, |n| (n / tp.max(1)).max(1)));
        Some((self.devices.unwrap_or(tp * cp), tp, cp))
    }
}

/// A kernel to print or compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelName {
    /// RPA decode kernel (q_len == 1)
    #[value(name = "rpa-decode")]
    RpaDecode,
    /// RPA chunked-prefill kernel (q_len == --chunk)
    #[value(name = "rpa-prefill")]
    RpaPrefill,
    /// RPA mixed kernel (any q_len)
    #[value(name = "rpa-mixed")]
    RpaMixed,
    /// Example: o = x + y, f32[256, 128]
    #[value(name = "elementwise_add", alias = "elementwise-add")]
    ElementwiseAdd,
    /// Example: 256×512 · 512×256 f32 in 128³ tiles
    #[value(name = "tiled_matmul", alias = "tiled-matmul")]
    TiledMatmul,
    /// Example: hand double-buffered DMAs, 32 blocks of 8×128
    #[value(name = "double_buffered_scale", alias = "double-buffered-scale")]
    DoubleBufferedScale,
    /// Example: softmax over rows of f32[64, 256]
    #[value(name = "row_softmax", alias = "row-softmax")]
    RowSoftmax,
}

impl KernelName {
    pub fn name(self) -> &'static str {
        match self {
            KernelName::RpaDecode => "rpa-decode",
            KernelName::RpaPrefill => "rpa-prefill",
            KernelName::RpaMixed => "rpa-mixed",
            KernelName::ElementwiseAdd => "elementwise_add",
            KernelName::TiledMatmul => "tiled_matmul",
            KernelName::DoubleBufferedScale => "double_buffered_scale",
            KernelName::RowSoftmax => "row_softmax",
        }
    }
}

/// The arguments of `ir`, `mosaic` and `stablehlo`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The kernel
    #[arg(long, value_enum, default_value_t = KernelName::RpaMixed)]
    pub kernel: KernelName,
    /// Use this TPU generation's block sizes (upstream's heuristic) for RPA kernels instead of the
    /// host backends' defaults
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// Write to FILE instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Shapes of the RPA kernels [default batch: --seqs 1:40,1:100,16:48,7:90 --chunk 16]
    #[command(flatten)]
    pub batch: BatchArgs,
}

#[derive(clap::Args, Debug)]
pub struct IrArgs {
    #[command(flatten)]
    pub show: ShowArgs,
    /// End every line with the kernel author's source location
    #[arg(long)]
    pub locs: bool,
}

#[derive(clap::Args, Debug)]
pub struct MosaicArgs {
    #[command(flatten)]
    pub show: ShowArgs,
    /// Print the StableHLO module that wraps the Mosaic kernel in a tpu_custom_call (what libtpu compiles)
    #[arg(long)]
    pub custom_call: bool,
}

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The TPU generation
    #[arg(long, value_enum)]
    pub target: TargetsArg,
    /// The kernel [default: every RPA kernel the batch launches]
    #[arg(long, value_enum)]
    pub kernel: Option<KernelName>,
    /// Compile RPA for a multi-chip topology of the target (e.g. 2x2; 2x2x1 for v7x) as one
    /// SPMD program on a `--tp` × `--cp` mesh of its devices (no TPU needed)
    #[arg(long, value_name = "AxB")]
    pub topology: Option<String>,
    /// Tensor-parallel devices of the topology's mesh [default: devices / cp]
    #[arg(long, value_name = "T", requires = "topology")]
    pub tp: Option<usize>,
    /// Context-parallel devices of the topology's mesh [default: 1]
    #[arg(long, value_name = "C", requires = "topology")]
    pub cp: Option<usize>,
    /// Shapes of the RPA kernels [default batch: --seqs 1:40,1:100,16:48,7:90 --chunk 16]
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// Backends of `bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchBackends {
    Interpret,
    Cpu,
    Both,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// A small sweep (8/2 heads, 18 points: under a minute and a half on two cores) instead of the
    /// full one (32/8 heads, 36 points: tens of minutes with PJRT-CPU, whose compiles dominate)
    #[arg(long)]
    pub quick: bool,
    /// The smallest sweep (two points, for tests)
    #[arg(long, hide = true, conflicts_with = "quick")]
    pub tiny: bool,
    /// Where to write results.csv, results.json and the SVG plots
    #[arg(long, value_name = "DIR", default_value = "target/rpa-bench")]
    pub out: PathBuf,
    /// Backends to time [default: both when the PJRT-CPU plugin is installed, else interpret]
    #[arg(long, value_enum)]
    pub backend: Option<BenchBackends>,
}

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The batch [default: --seqs 1:40,1:100,16:48,7:90 --chunk 16]
    #[command(flatten)]
    pub batch: BatchArgs,
    /// The trace file (open it in ui.perfetto.dev or chrome://tracing)
    #[arg(long, value_name = "FILE", default_value = "trace.json")]
    pub out: PathBuf,
}

/// Runs the command line `args` (including the program name) and returns the exit code.
pub fn run_cli<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code() as u8;
        }
    };
    let result = match cli.command {
        Command::Demo(a) => run::demo(&a),
        Command::Run(a) => run::run(&a),
        Command::Ir(a) => show::ir(&a),
        Command::Mosaic(a) => show::mosaic(&a),
        Command::Stablehlo(a) => show::stablehlo(&a),
        Command::Compile(a) => show::compile(&a),
        Command::Bench(a) => bench::command(&a),
        Command::Trace(a) => trace::command(&a),
    };
    CliError::report(result)
}

/// The `rpa` binary's `main`.
pub fn main() -> ExitCode {
    rpa_dsl::tool::default_sigpipe();
    // Loading libtpu sets these itself, which races with other threads reading the environment
    // (`rpa demo` runs PJRT-CPU on another thread): set them before any thread starts.
    rpa_dsl::pjrt::default_libtpu_env();
    ExitCode::from(run_cli(std::env::args_os()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn names_match_the_command_line_values() {
        for k in KernelName::value_variants() {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.name());
        }
        for b in BackendArg::value_variants() {
            assert_eq!(b.to_possible_value().unwrap().get_name(), b.name());
        }
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for args in [
            &["rpa"][..],
            &["rpa", "frobnicate"],
            &["rpa", "run", "--seqs", "1:x"],
            &["rpa", "run", "--seqs", "4:2"],
            &["rpa", "run", "--seqs", "1:8", "--backend", "gpu"],
            &["rpa", "run", "--seqs", "1:8", "--heads", "6:4"],
            &["rpa", "run", "--save-inputs", "--seqs", "1:8"],
            &["rpa", "compile"],
            &["rpa", "bench", "--quick", "--tiny"],
        ] {
            assert_eq!(Cli::try_parse_from(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
        assert_eq!(Cli::try_parse_from(["rpa", "run", "--help"]).unwrap_err().exit_code(), 0);
        let cli =
            Cli::try_parse_from(["rpa", "run", "--seqs", "1:8,4:9", "--kv-dtype", "int8", "--backend", "tpu-v7x"])
                .unwrap();
        let Command::Run(r) = cli.command else { panic!("run") };
        assert_eq!(r.batch.seqs, Some(vec![(1, 8), (4, 9)]));
        assert_eq!(r.backend.backend(), crate::rpa::launch::Backend::Tpu(TpuTarget::V7x));
    }
}

//! Kernel tools for any crate: register your kernels in a [`Registry`] and [`main`] gives your
//! binary the subcommands the `rpa` command has for its own kernels —
//!
//! ```text
//! list                                   the kernels, their comptime arguments and defaults
//! ir        KERNEL [--arg NAME=VALUE]…   the kernel's IR (--locs: with source lines)
//! mosaic    KERNEL [--arg …]             its Mosaic lowering (--custom-call: the module libtpu compiles)
//! stablehlo KERNEL [--arg …]             its StableHLO lowering (what PJRT-CPU runs)
//! compile   [KERNEL] --target v5e|v6e|v7x|all   AOT-compile with libtpu (every kernel by default)
//! run       KERNEL --backend interpret|cpu      run on inputs (random or --input NAME=FILE.npy),
//!                                               check against the reference
//! trace     KERNEL [--out trace.json]    an interpret-mode event trace (Chrome/Perfetto)
//! ```
//!
//! ```no_run
//! use rpa_dsl::prelude::*;
//! use rpa_dsl::tool::{KernelSpec, Registry};
//!
//! #[tpu_kernel(grid = [rows / 8])]
//! fn scale(
//!     #[comptime] rows: usize,
//!     #[block([8, 128], |i| [i, 0])] x: In![f32, [rows, 128]],
//!     #[block([8, 128], |i| [i, 0])] o: Out![f32, [rows, 128]],
//! ) {
//!     o.store(x.load() * 2.0);
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let registry = Registry::new("my-kernels").kernel(
//!         KernelSpec::new("scale", "o = 2·x", |a| Ok(scale(a.usize("rows")?)?))
//!             .arg("rows", 64usize, "rows of x (a multiple of 8)")
//!             .reference(|_, inputs| Ok(vec![inputs[0].to_f64().iter().map(|v| 2.0 * v).collect()])),
//!     );
//!     rpa_dsl::tool::main(&registry)
//! }
//! ```

mod cli;
mod compare;
pub mod npy;
mod registry;
mod report;

pub use cli::{default_sigpipe, main, run_cli};
pub use compare::Comparison;
pub use registry::{random_array, Args, KernelSpec, Registry, ToolError, Value};
pub use report::{emit, fmt_bytes, print_compiled, require_cpu_plugin, require_libtpu};

use crate::{DType, TpuTarget};

/// Why a command did not succeed.
#[derive(Clone, Debug, PartialEq)]
pub enum CliError {
    /// Bad arguments (exit code 2).
    Usage(String),
    /// A failed check or a run error (exit code 1).
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    /// A command's exit code: 0 on success, else the error printed to stderr and its code.
    pub fn report(result: Result<(), CliError>) -> u8 {
        let Err(e) = result else { return 0 };
        match &e {
            CliError::Usage(m) => eprintln!("error: {m}\n\nFor more information, try '--help'."),
            CliError::Failed(m) => eprintln!("error: {m}"),
        }
        e.exit_code()
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

/// A command's result.
pub type CliResult = Result<(), CliError>;

/// The command-line name of a dtype: [`DType::name`], but `fp8e4m3`, `fp8e5m2` and `int8`.
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F8E4M3 => "fp8e4m3",
        DType::F8E5M2 => "fp8e5m2",
        DType::I8 => "int8",
        d => d.name(),
    }
}

/// A TPU generation on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    V5e,
    V6e,
    V7x,
}

impl TargetArg {
    pub fn target(self) -> TpuTarget {
        match self {
            TargetArg::V5e => TpuTarget::V5e,
            TargetArg::V6e => TpuTarget::V6e,
            TargetArg::V7x => TpuTarget::V7x,
        }
    }
}

/// `compile --target`: a generation or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetsArg {
    V5e,
    V6e,
    V7x,
    All,
}

impl TargetsArg {
    pub fn targets(self) -> Vec<TpuTarget> {
        match self {
            TargetsArg::V5e => vec![TpuTarget::V5e],
            TargetsArg::V6e => vec![TpuTarget::V6e],
            TargetsArg::V7x => vec![TpuTarget::V7x],
            TargetsArg::All => TpuTarget::ALL.to_vec(),
        }
    }
}

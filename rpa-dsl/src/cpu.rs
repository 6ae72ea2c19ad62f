//! The CPU backend: a kernel lowered to pure StableHLO ([`crate::lower::stablehlo`]) and run by the
//! XLA:CPU PJRT plugin, with the semantics of interpret mode. Like interpret mode, it compiles
//! only kernels that pass the verifier for every TPU generation (or those of
//! [`CpuBackend::with_targets`]). By default kernels compile in checked mode: out-of-bounds indices,
//! waits no copy signals, unbalanced semaphores and reads of memory nothing wrote fail with
//! interpret mode's [`KernelError`] (DMA races are interpret mode's alone);
//! [`CpuBackend::with_checks`]`(false)` turns the checks off for speed.
//!
//! ```no_run
//! # fn demo(kernel: &rpa_dsl::Kernel, x: rpa_dsl::Array) -> Result<(), rpa_dsl::KernelError> {
//! let out = rpa_dsl::cpu::run(kernel, &[x])?; // lower, compile (cached), upload, execute, download
//! # Ok(()) }
//! ```
//!
//! Compiles are slow (tens to hundreds of milliseconds), so executables are cached per process,
//! keyed by the lowered module text.
//!
//! Any other StableHLO module (text with a `func.func @main`) runs the same way with [`run_module`],
//! e.g. a plain dense reference to compare a kernel with.

use crate::array::Array;
use crate::error::KernelError;
use crate::ir::verify::verify_targets;
use crate::ir::{Kernel, Loc};
use crate::lower::stablehlo::{CheckTable, PrintLog};
use crate::pjrt::{self, Client, CompileOptions, Device, LoadedExecutable, OptionOverride};
use crate::{DType, TargetCheck};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// A PJRT client of the XLA:CPU plugin with a cache of compiled kernels.
pub struct CpuBackend {
    client: Client,
    device: Device,
    options: CompileOptions,
    /// The TPU generations a kernel must pass the verifier for before it is compiled.
    targets: TargetCheck,
    /// Kernels compile in checked mode ([`crate::lower::stablehlo::lower_checked`]).
    checked: bool,
    cache: Mutex<HashMap<u64, Vec<Arc<CpuKernel>>>>,
    modules: Mutex<HashMap<u64, Vec<Arc<CpuModule>>>>,
}

/// A StableHLO module compiled for XLA:CPU (see [`CpuBackend::compile_module`]).
pub struct CpuModule {
    mlir: String,
    exe: LoadedExecutable,
    client: Client,
    device: Device,
}

impl std::fmt::Debug for CpuModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuModule").field("bytes", &self.mlir.len()).finish_non_exhaustive()
    }
}

/// A kernel compiled for XLA:CPU.
pub struct CpuKernel {
    name: String,
    loc: Loc,
    mlir: String,
    /// (name, dtype, shape) of each input, in launch order.
    inputs: Vec<(String, DType, Vec<usize>)>,
    /// In checked mode, what the last result (the check record) means.
    checks: Option<CheckTable>,
    /// If the kernel prints, what the print results (after the outputs) mean.
    prints: Option<PrintLog>,
    exe: LoadedExecutable,
    client: Client,
    device: Device,
}

impl std::fmt::Debug for CpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuKernel").field("name", &self.name).finish_non_exhaustive()
    }
}

fn start_error(e: pjrt::PjrtError) -> String {
    format!("cannot start the XLA:CPU PJRT backend: {e}")
}

fn kernel_error(kernel: &Kernel, msg: impl Into<String>) -> KernelError {
    KernelError::single(&kernel.name, None, kernel.loc, msg)
}

/// The compile options every CPU compile uses:
/// - no excess precision, and no platform-dependent math (XNNPACK/YNNPACK kernels then compute the
///   same on every CPU); narrow floats do not depend on either (the lowering keeps them as bits);
/// - LLVM at `-O2`: at XLA's default (`-O3`) LLVM fully unrolls small static loops of transcendental
///   functions, which made a compile of an RPA kernel take 30 s instead of 5 s (for ~5% of run time);
/// - the classic loop emitters instead of the MLIR fusion emitters: compiles ~40% faster, same speed.
///
/// A flag the plugin does not know is dropped (and the compile retried).
pub fn compile_options() -> CompileOptions {
    CompileOptions {
        env_option_overrides: vec![
            ("xla_allow_excess_precision".into(), OptionOverride::Bool(false)),
            ("xla_cpu_enable_platform_dependent_math".into(), OptionOverride::Bool(false)),
            ("xla_backend_optimization_level".into(), OptionOverride::Int(2)),
            ("xla_cpu_use_fusion_emitters".into(), OptionOverride::Bool(false)),
        ],
        ..CompileOptions::default()
    }
}

/// Compiles `mlir` with `options`; a flag the plugin does not know is dropped (and the compile
/// retried).
pub(crate) fn compile_dropping_unknown_flags(
    client: &Client,
    mlir: &str,
    options: &CompileOptions,
) -> Result<LoadedExecutable, pjrt::PjrtError> {
    let mut options = options.clone();
    loop {
        match client.compile(mlir, &options) {
            Ok(exe) => return Ok(exe),
            Err(e) => {
                // "No such compile option: 'name'": a flag of another XLA version.
                let unknown = e.message.split("No such compile option: '").nth(1).and_then(|r| r.split('\'').next());
                let before = options.env_option_overrides.len();
                if let Some(name) = unknown {
                    options.env_option_overrides.retain(|(k, _)| k != name);
                }
                if options.env_option_overrides.len() == before {
                    return Err(e);
                }
            }
        }
    }
}

impl CpuBackend {
    /// A backend on a new client of the XLA:CPU plugin (see [`pjrt::cpu_plugin`]).
    pub fn new() -> Result<CpuBackend, pjrt::PjrtError> {
        CpuBackend::with_options(compile_options())
    }

    /// A backend that compiles with `options` (e.g. other XLA flags).
    pub fn with_options(options: CompileOptions) -> Result<CpuBackend, pjrt::PjrtError> {
        let plugin = pjrt::cpu_plugin()?;
        let client = Client::new(&plugin, &[])?;
        let device = client
            .addressable_devices()?
            .into_iter()
            .next()
            .ok_or_else(|| pjrt::PjrtError::usage("the XLA:CPU client has no device"))?;
        Ok(CpuBackend {
            client,
            device,
            options,
            targets: TargetCheck::All,
            checked: true,
            cache: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// This backend checking kernels against `targets` instead of every TPU generation (e.g.
    /// [`TargetCheck::HostOnly`] for host-only experiments).
    pub fn with_targets(self, targets: TargetCheck) -> CpuBackend {
        CpuBackend { targets, ..self }
    }

    /// This backend with checked mode on (the default) or off. Checked kernels report what
    /// interpret mode reports (out-of-bounds indices, unbalanced semaphores, reads of memory nothing
    /// wrote) as the same [`KernelError`]; unchecked ones run faster and return whatever the
    /// program computed.
    pub fn with_checks(self, checked: bool) -> CpuBackend {
        CpuBackend { checked, ..self }
    }

    /// The process-wide backend (created on first use; checks every TPU generation; checked mode).
    pub fn global() -> Result<&'static CpuBackend, String> {
        static BACKEND: OnceLock<Result<CpuBackend, String>> = OnceLock::new();
        BACKEND.get_or_init(|| CpuBackend::new().map_err(start_error)).as_ref().map_err(Clone::clone)
    }

    /// The process-wide backend without checked mode (for benchmarks).
    pub fn global_unchecked() -> Result<&'static CpuBackend, String> {
        static BACKEND: OnceLock<Result<CpuBackend, String>> = OnceLock::new();
        let new = || CpuBackend::new().map(|b| b.with_checks(false)).map_err(start_error);
        BACKEND.get_or_init(new).as_ref().map_err(Clone::clone)
    }

    /// Verifies `kernel` for the backend's targets, lowers and compiles it, reusing a cached
    /// executable for the same module text. The returned kernel runs any number of times without
    /// further checks.
    pub fn compile(&self, kernel: &Kernel) -> Result<Arc<CpuKernel>, KernelError> {
        verify_targets(kernel, self.targets)?;
        let lowered = crate::lower::stablehlo::lower_program(kernel, self.checked)?;
        let (mlir, checks, prints) = (lowered.text, lowered.checks, lowered.prints);
        let mut h = DefaultHasher::new();
        mlir.hash(&mut h);
        let key = h.finish();
        if let Some(k) = self.lookup(key, &mlir) {
            return Ok(k);
        }
        let compiled = Arc::new(CpuKernel { checks, prints, ..self.compile_lowered(kernel, mlir)? });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.entry(key).or_default();
        match entry.iter().find(|k| k.mlir == compiled.mlir) {
            Some(k) => Ok(k.clone()),
            None => {
                entry.push(compiled.clone());
                Ok(compiled)
            }
        }
    }

    fn lookup(&self, key: u64, mlir: &str) -> Option<Arc<CpuKernel>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&key)?.iter().find(|k| k.mlir == mlir).cloned()
    }

    /// Compiles a module with the backend's options; a flag the plugin does not know is dropped.
    fn compile_text(&self, mlir: &str) -> Result<LoadedExecutable, pjrt::PjrtError> {
        compile_dropping_unknown_flags(&self.client, mlir, &self.options)
    }

    /// Compiles a StableHLO module (text with a `func.func @main`), reusing a cached executable for
    /// the same text.
    pub fn compile_module(&self, mlir: &str) -> Result<Arc<CpuModule>, String> {
        let mut h = DefaultHasher::new();
        mlir.hash(&mut h);
        let key = h.finish();
        let cached = |modules: &HashMap<u64, Vec<Arc<CpuModule>>>| {
            modules.get(&key).and_then(|v| v.iter().find(|m| m.mlir == mlir).cloned())
        };
        if let Some(m) = cached(&self.modules.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(m);
        }
        let exe = self.compile_text(mlir).map_err(|e| format!("XLA:CPU failed to compile the module: {e}"))?;
        let module = Arc::new(CpuModule {
            mlir: mlir.to_string(),
            exe,
            client: self.client.clone(),
            device: self.device.clone(),
        });
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cached(&modules) {
            return Ok(m);
        }
        modules.entry(key).or_default().push(module.clone());
        Ok(module)
    }

    /// Verifies `kernel` and compiles its (unchecked) lowered module `mlir` without looking at the
    /// cache (for benchmarks).
    pub fn compile_uncached(&self, kernel: &Kernel, mlir: String) -> Result<CpuKernel, KernelError> {
        verify_targets(kernel, self.targets)?;
        let mut prints_any = false;
        kernel.walk(&mut |i| prints_any |= matches!(i.op, crate::ir::Op::DebugPrint { .. }));
        let prints = if prints_any { crate::lower::stablehlo::lower_program(kernel, false)?.prints } else { None };
        Ok(CpuKernel { prints, ..self.compile_lowered(kernel, mlir)? })
    }

    fn compile_lowered(&self, kernel: &Kernel, mlir: String) -> Result<CpuKernel, KernelError> {
        let exe = self
            .compile_text(&mlir)
            .map_err(|e| kernel_error(kernel, format!("XLA:CPU failed to compile the StableHLO lowering: {e}")))?;
        let inputs = kernel
            .inputs()
            .map(|p| {
                let a = p.array.as_ref().expect("operands have an array type");
                (p.name.clone(), a.dtype, a.max_shape())
            })
            .collect();
        Ok(CpuKernel {
            name: kernel.name.clone(),
            loc: kernel.loc,
            mlir,
            inputs,
            checks: None,
            prints: None,
            exe,
            client: self.client.clone(),
            device: self.device.clone(),
        })
    }

    /// Runs `kernel` on `inputs` (scalar-prefetch operands, then inputs, in parameter order).
    pub fn run(&self, kernel: &Kernel, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        self.compile(kernel)?.run(inputs)
    }

    /// [`CpuBackend::run`], with the lines the kernel's `debug_print`s printed.
    pub fn run_with_prints(&self, kernel: &Kernel, inputs: &[Array]) -> Result<(Vec<Array>, Vec<String>), KernelError> {
        self.compile(kernel)?.run_with_prints(inputs)
    }

    /// Executables in the cache.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }
}

impl CpuKernel {
    /// The StableHLO module that was compiled.
    pub fn mlir(&self) -> &str {
        &self.mlir
    }

    fn err(&self, msg: impl Into<String>) -> KernelError {
        KernelError::single(&self.name, None, self.loc, msg)
    }

    /// Uploads `inputs`, executes and downloads the outputs.
    pub fn run(&self, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        Ok(self.run_with_prints(inputs)?.0)
    }

    /// [`CpuKernel::run`], with the lines the kernel's `debug_print`s printed (formatted as
    /// interpret mode's `Outcome::prints`).
    pub fn run_with_prints(&self, inputs: &[Array]) -> Result<(Vec<Array>, Vec<String>), KernelError> {
        if inputs.len() != self.inputs.len() {
            let names: Vec<&str> = self.inputs.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(self.err(format!(
                "expects {} input arrays ({}), got {}",
                self.inputs.len(),
                names.join(", "),
                inputs.len()
            )));
        }
        for (a, (name, dt, shape)) in inputs.iter().zip(&self.inputs) {
            if a.dtype() != *dt || a.shape() != shape.as_slice() {
                return Err(self.err(format!(
                    "input `{name}` expects {dt}{shape:?}, got {}{:?}",
                    a.dtype(),
                    a.shape()
                )));
            }
        }
        let mut outputs = execute(&self.client, &self.device, &self.exe, inputs).map_err(|e| self.err(e))?;
        if let Some(table) = &self.checks {
            let record = outputs.pop().ok_or_else(|| self.err("the checked program returned no check record"))?;
            if let Some(e) = table.error(&record.to_i64()) {
                return Err(e);
            }
        }
        let prints = match &self.prints {
            Some(log) => {
                let rows = outputs.pop().ok_or_else(|| self.err("the program returned no print log"))?;
                let count = outputs.pop().ok_or_else(|| self.err("the program returned no print count"))?;
                log.lines(&count, &rows)
            }
            None => Vec::new(),
        };
        Ok((outputs, prints))
    }
}

/// Uploads `inputs`, executes (donating the fresh input buffers, so that outputs aliasing an
/// input are updated in place) and downloads the outputs.
fn execute(client: &Client, device: &Device, exe: &LoadedExecutable, inputs: &[Array]) -> Result<Vec<Array>, String> {
    let pjrt = |what: &str, e: pjrt::PjrtError| format!("XLA:CPU {what}: {e}");
    let bufs = inputs
        .iter()
        .map(|a| client.buffer_from_host(a, device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pjrt("upload", e))?;
    let outs = exe.execute_donating(bufs).map_err(|e| pjrt("execute", e))?;
    outs.iter().map(|b| b.to_host().map_err(|e| pjrt("download", e))).collect()
}

impl CpuModule {
    /// The module text that was compiled.
    pub fn mlir(&self) -> &str {
        &self.mlir
    }

    /// Uploads `inputs` (the arguments of `@main`, in order), executes and downloads the results.
    pub fn run(&self, inputs: &[Array]) -> Result<Vec<Array>, String> {
        execute(&self.client, &self.device, &self.exe, inputs)
    }
}

/// Compiles (cached) and runs a StableHLO module on XLA:CPU with the process-wide [`CpuBackend`].
pub fn run_module(mlir: &str, inputs: &[Array]) -> Result<Vec<Array>, String> {
    CpuBackend::global()?.compile_module(mlir)?.run(inputs)
}

/// Runs `kernel` on XLA:CPU with the process-wide [`CpuBackend`] (compiles are cached), once it
/// passes the verifier for every TPU generation.
pub fn run(kernel: &Kernel, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
    let backend = CpuBackend::global().map_err(|e| kernel_error(kernel, e))?;
    backend.run(kernel, inputs)
}

/// [`run`], with the lines the kernel's `debug_print`s printed (interpret mode's
/// `Outcome::prints`).
pub fn run_with_prints(kernel: &Kernel, inputs: &[Array]) -> Result<(Vec<Array>, Vec<String>), KernelError> {
    let backend = CpuBackend::global().map_err(|e| kernel_error(kernel, e))?;
    backend.run_with_prints(kernel, inputs)
}

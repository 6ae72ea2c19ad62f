//! The TPU backend: verify → Mosaic → `tpu_custom_call` → libtpu through PJRT. On this CPU-only
//! machine kernels are compiled ahead of time against a topology; with a TPU client the same
//! executable runs. Compiler errors are mapped back to the kernel author's source line.

use crate::error::{Diagnostic, KernelError};
use crate::ir::{verify::verify, Kernel, Loc};
use crate::lower::{custom_call, mosaic};
use crate::pjrt::{self, CompileOptions, NamedValue, Topology};
use crate::TpuTarget;
use std::collections::BTreeMap;

/// What libtpu reports about a compiled kernel.
#[derive(Clone, Debug)]
pub struct TpuCompiled {
    pub target: TpuTarget,
    pub device_kind: String,
    pub code_size: i64,
    pub serialized_size: usize,
    pub cost_analysis: BTreeMap<String, f64>,
    /// VMEM and SMEM the verifier counts for the kernel's buffers.
    pub vmem_bytes: usize,
    pub smem_bytes: usize,
}

/// The StableHLO module (with the Mosaic kernel inside) that XLA compiles for `kernel`.
pub fn stablehlo_module(kernel: &Kernel) -> Result<String, KernelError> {
    let body = mosaic::lower(kernel)?;
    custom_call::wrap(kernel, &body)
}

/// Compiles `kernel` for `target` with libtpu (no TPU needed), after rpa's verifier.
pub fn compile_for(kernel: &Kernel, target: TpuTarget) -> Result<TpuCompiled, KernelError> {
    verify(kernel, target)?;
    compile_unverified(kernel, target)
}

/// Like [`compile_for`] without rpa's verifier, so libtpu's own checks (and messages) are seen.
pub fn compile_unverified(kernel: &Kernel, target: TpuTarget) -> Result<TpuCompiled, KernelError> {
    let body = mosaic::lower(kernel)?;
    let module = custom_call::wrap(kernel, &body)?;
    // Debugging aid: RPA_DUMP_MOSAIC=dir writes each kernel's Mosaic text there.
    if let Some(dir) = std::env::var_os("RPA_DUMP_MOSAIC") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{}.mlir", kernel.name)), &body);
    }
    let backend = |msg: String| KernelError::single(&kernel.name, None, kernel.loc, msg);
    let plugin = pjrt::libtpu().map_err(|e| backend(e.to_string()))?;
    let topology =
        Topology::new(&plugin, target.topology(), &[("chips_per_host_bounds", NamedValue::Int64List(vec![1, 1, 1]))])
            .map_err(|e| backend(format!("libtpu topology {}: {e}", target.topology())))?;
    let exe = topology
        .compile(&module, &CompileOptions::default())
        .map_err(|e| map_compiler_error(kernel, target, &with_mosaic_line(&e.to_string(), &body)))?;
    let cost_analysis = exe
        .cost_analysis()
        .map(|m| m.into_iter().filter_map(|(k, v)| v.as_f64().map(|f| (k, f))).collect())
        .unwrap_or_default();
    Ok(TpuCompiled {
        target,
        device_kind: topology.device_kinds().ok().and_then(|k| k.into_iter().next()).unwrap_or_default(),
        code_size: exe.code_size().unwrap_or(0),
        serialized_size: exe.serialized_size().unwrap_or(0),
        cost_analysis,
        vmem_bytes: crate::ir::verify::vmem_usage(kernel),
        smem_bytes: crate::ir::verify::smem_usage(kernel),
    })
}

/// Maps a compiler message to the kernel source: MLIR prints our `loc("file":line:col)` as
/// `file:line:col`; the first such location that names an op of the kernel becomes the
/// diagnostic's location.
pub fn map_compiler_error(kernel: &Kernel, target: TpuTarget, message: &str) -> KernelError {
    let mut locs = Vec::new();
    kernel.walk(&mut |i| locs.push(i.loc));
    let mut found: Option<Loc> = None;
    // MLIR prints a location as `file:line:col` or, in `loc(...)`, as `"file":line:col`.
    let position = |l: &Loc| {
        [format!("{}:{}:{}", l.file, l.line, l.col), format!("\"{}\":{}:{}", l.file, l.line, l.col)]
            .iter()
            .filter_map(|p| message.find(p.as_str()))
            .min()
    };
    let mut best = usize::MAX;
    for loc in &locs {
        if let Some(pos) = position(loc) {
            if pos < best {
                best = pos;
                found = Some(*loc);
            }
        }
    }
    let op = found.and_then(|l| {
        let mut name = None;
        kernel.walk(&mut |i| {
            if name.is_none() && i.loc == l {
                name = Some(i.op.name().to_string());
            }
        });
        name
    });
    KernelError::new(vec![Diagnostic {
        kernel: kernel.name.clone(),
        op,
        loc: found.unwrap_or(kernel.loc),
        message: format!("libtpu ({target}) rejected the kernel: {}", message.trim()),
    }])
}

/// A parse error in the Mosaic text (`-:line:col`) is an emitter bug: quote the line it points at.
fn with_mosaic_line(message: &str, mosaic: &str) -> String {
    let Some(pos) = message.find("-:") else { return message.to_string() };
    let rest = &message[pos + 2..];
    let line: Option<usize> = rest.split(':').next().and_then(|l| l.parse().ok());
    match line.and_then(|l| mosaic.lines().nth(l.saturating_sub(1))) {
        Some(text) => format!("{message}\n  in the Mosaic text: {}", text.trim()),
        None => message.to_string(),
    }
}

/// Runs `kernel` on an attached TPU: the same Mosaic module, compiled by a libtpu client and
/// executed through PJRT. Without a TPU this returns libtpu's client error (nothing is attached on
/// machines that only compile ahead of time).
pub fn run(kernel: &Kernel, inputs: &[crate::Array]) -> Result<Vec<crate::Array>, KernelError> {
    let err = |what: &str, e: String| KernelError::single(&kernel.name, None, kernel.loc, format!("TPU {what}: {e}"));
    let plugin = pjrt::libtpu().map_err(|e| err("plugin", e.to_string()))?;
    let client = pjrt::Client::new(&plugin, &[]).map_err(|e| err("client (is a TPU attached?)", e.to_string()))?;
    let device = client.addressable_devices().map_err(|e| err("devices", e.to_string()))?;
    let device = device.into_iter().next().ok_or_else(|| err("devices", "no addressable TPU device".into()))?;
    let kind = device.kind().unwrap_or_default();
    let target = [("v5", TpuTarget::V5e), ("v6", TpuTarget::V6e), ("7", TpuTarget::V7x)]
        .into_iter()
        .find(|(k, _)| kind.contains(k))
        .map_or(TpuTarget::V6e, |(_, t)| t);
    verify(kernel, target)?;
    let module = stablehlo_module(kernel)?;
    let exe = client
        .compile(&module, &CompileOptions::default())
        .map_err(|e| map_compiler_error(kernel, target, &e.to_string()))?;
    let bufs = inputs
        .iter()
        .map(|a| client.buffer_from_host(a, &device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("upload", e.to_string()))?;
    let refs: Vec<&pjrt::Buffer> = bufs.iter().collect();
    let outs = exe.execute(&refs).map_err(|e| err("execute", e.to_string()))?;
    outs.iter().map(|b| b.to_host().map_err(|e| err("download", e.to_string()))).collect()
}

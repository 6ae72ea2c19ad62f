//! A launch on a mesh compiled ahead of time by libtpu for a multi-chip topology (no TPU needed):
//! the SPMD module with the kernel's Mosaic `tpu_custom_call` as the per-device body.

use super::cpu::spmd_options;
use super::MeshLaunch;
use crate::ir::verify::{smem_usage, verify, vmem_usage};
use crate::lower::{custom_call, mosaic, spmd};
use crate::pjrt::{self, CompileOptions, CompiledMemoryStats, Topology};
use crate::{Kernel, KernelError, TpuTarget};

/// The collectives counted in the compiled program (HLO opcode names; XLA may turn a collective
/// into its asynchronous `-start`/`-done` pair).
pub const COLLECTIVE_OPCODES: [&str; 8] = [
    "all-gather",
    "all-gather-start",
    "all-reduce",
    "all-reduce-start",
    "reduce-scatter",
    "collective-permute",
    "collective-permute-start",
    "all-to-all",
];

/// What libtpu reports about a launch compiled for a topology.
#[derive(Clone, Debug)]
pub struct MeshTpuCompiled {
    pub topology: String,
    pub target: TpuTarget,
    /// Devices of the topology (TensorCores libtpu exposes as devices: two per v7x chip).
    pub devices: usize,
    pub device_kind: String,
    /// Generated code size in bytes (per device: the program is SPMD).
    pub code_size: i64,
    /// HBM per device: arguments, outputs, temporaries.
    pub memory: CompiledMemoryStats,
    /// VMEM and SMEM per device that the verifier counts for the kernel's buffers.
    pub vmem_bytes: usize,
    pub smem_bytes: usize,
    /// The collectives of the compiled program: (HLO opcode, count), those present.
    pub collectives: Vec<(String, usize)>,
    /// The module that was compiled.
    pub module: String,
}

/// The generation a topology name is of (`v5e:2x2`, `v6e:2x2`, `tpu7x:2x2x1`), after checking its
/// form: a known generation, then chip counts per dimension (`AxB` or `AxBxC`).
pub fn topology_target(topology: &str) -> Result<TpuTarget, String> {
    let bad = || {
        format!(
            "unknown TPU topology `{topology}`: expected v5e:AxB, v6e:AxB or tpu7x:AxBxC (e.g. v6e:2x2, tpu7x:2x2x1)"
        )
    };
    let (generation, dims) = topology.split_once(':').ok_or_else(bad)?;
    let (target, rank) = match generation {
        "v5e" => (TpuTarget::V5e, 2),
        "v6e" => (TpuTarget::V6e, 2),
        "tpu7x" => (TpuTarget::V7x, 3),
        _ => return Err(bad()),
    };
    let dims: Vec<&str> = dims.split('x').collect();
    if dims.len() != rank || dims.iter().any(|d| d.parse::<usize>().map_or(true, |n| n == 0)) {
        return Err(bad());
    }
    Ok(target)
}

impl MeshLaunch {
    /// Compiles `kernel` launched on `self.mesh` for the TPU topology `topology` with libtpu,
    /// after rpa's verifier for the topology's generation. The mesh must have as many devices
    /// as the topology.
    pub fn compile_tpu(&self, kernel: &Kernel, topology: &str) -> Result<MeshTpuCompiled, KernelError> {
        let err = |m: String| KernelError::single(&kernel.name, None, kernel.loc, m);
        let target = topology_target(topology).map_err(err)?;
        let plan = self.plan(kernel)?;
        verify(kernel, target)?;
        let plugin = pjrt::libtpu().map_err(|e| err(e.to_string()))?;
        let topo =
            Topology::new(&plugin, topology, &[]).map_err(|e| err(format!("libtpu topology {topology}: {e}")))?;
        let kinds = topo.device_kinds().map_err(|e| err(format!("libtpu topology {topology}: {e}")))?;
        if kinds.len() != self.mesh.devices() {
            return Err(err(format!(
                "the mesh ({}) has {} devices; topology {topology} has {}",
                self.mesh.describe(),
                self.mesh.devices(),
                kinds.len()
            )));
        }
        let body = mosaic::lower(kernel)?;
        let module = spmd::module(self, &plan, &kernel.name, &custom_call::wrap(kernel, &body)?, &[]);
        let ids: Vec<i64> = (0..kinds.len() as i64).collect();
        let exe = topo
            .compile(&module, &spmd_options(CompileOptions::default(), &ids))
            .map_err(|e| crate::tpu::map_compiler_error(kernel, target, &e.to_string()))?;
        let counts = exe.count_opcodes(&COLLECTIVE_OPCODES).map_err(|e| err(format!("libtpu program: {e}")))?;
        let collectives =
            COLLECTIVE_OPCODES.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(op, n)| (op.to_string(), n)).collect();
        Ok(MeshTpuCompiled {
            topology: topology.to_string(),
            target,
            devices: kinds.len(),
            device_kind: kinds.into_iter().next().unwrap_or_default(),
            code_size: exe.code_size().unwrap_or(0),
            memory: exe.memory_stats().unwrap_or_default(),
            vmem_bytes: vmem_usage(kernel),
            smem_bytes: smem_usage(kernel),
            collectives,
            module,
        })
    }
}

//! The sharded RPA program compiled ahead of time by libtpu for a multi-chip topology.

use super::spmd::{prepare, OutputSharding};
use super::RpaMesh;
use crate::rpa::launch::config_for_target;
use crate::rpa::reference::RpaInputs;
use crate::rpa::validate::RpaError;
use crate::rpa::{RpaCase, RpaOptions};

/// The devices a TPU topology name has: its chips (`v6e:2x2` = 4), two TensorCores per `tpu7x`
/// chip (`tpu7x:2x2x1` = 8); an unknown or malformed name is refused, naming it.
pub fn topology_devices(topology: &str) -> Result<usize, RpaError> {
    let bad = |message: String| RpaError::Argument { arg: "topology", message };
    rpa_dsl::mesh::topology_target(topology).map_err(bad)?;
    let (gen, dims) = topology.split_once(':').expect("a checked topology");
    let chips: usize = dims.split('x').map(|d| d.parse::<usize>().expect("a checked topology")).product();
    Ok(if gen == "tpu7x" { 2 * chips } else { chips })
}

/// AOT-compiles the mesh call for a TPU topology with libtpu (upstream's block sizes for its
/// generation). The mesh must have the topology's devices; both are checked before building.
pub fn compile_tpu(
    mesh: RpaMesh,
    x: &RpaInputs,
    opts: &RpaOptions,
    topology: &str,
) -> Result<rpa_dsl::mesh::MeshTpuCompiled, RpaError> {
    let devices = topology_devices(topology)?;
    if devices != mesh.devices() {
        let message = format!(
            "topology {topology} has {devices} devices; tp · cp = {} · {} = {}",
            mesh.tp,
            mesh.cp,
            mesh.devices()
        );
        return Err(RpaError::Argument { arg: "topology", message });
    }
    let target = rpa_dsl::mesh::topology_target(topology).expect("checked");
    let cfg = |x: &RpaInputs, o: &RpaOptions| config_for_target(x, o, RpaCase::Mixed, target);
    let call = prepare(mesh, x, opts, OutputSharding::Gathered, cfg)?;
    Ok(call.launch.compile_tpu(&call.kernel, topology)?)
}

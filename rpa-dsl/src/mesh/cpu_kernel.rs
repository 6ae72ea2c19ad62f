//! A launch on a mesh compiled for XLA:CPU: uploads shards, executes on every device, checks and
//! assembles the results.

use super::{MeshLaunch, MeshPlan};
use crate::lower::stablehlo::{CheckTable, PrintLog};
use crate::pjrt::{self, Buffer, Client, Device, LoadedExecutable};
use crate::{Array, KernelError, Loc};
use std::sync::Arc;

/// A launch on a mesh compiled for XLA:CPU ([`MeshCpu::compile`](super::MeshCpu::compile)): runs any
/// number of times.
pub struct MeshCpuKernel {
    pub(crate) name: String,
    pub(crate) loc: Loc,
    pub(crate) launch: MeshLaunch,
    pub(crate) plan: MeshPlan,
    /// In checked mode, what each device's check record means.
    pub(crate) checks: Option<CheckTable>,
    /// If the kernel prints, what each device's print count and rows mean.
    pub(crate) prints: Option<PrintLog>,
    pub(crate) mlir: String,
    pub(crate) exe: Arc<LoadedExecutable>,
    pub(crate) client: Client,
    /// The device of each partition.
    pub(crate) devices: Vec<Device>,
}

impl std::fmt::Debug for MeshCpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCpuKernel")
            .field("name", &self.name)
            .field("mesh", &self.launch.mesh)
            .finish_non_exhaustive()
    }
}

impl MeshCpuKernel {
    /// The SPMD module that was compiled.
    pub fn mlir(&self) -> &str {
        &self.mlir
    }

    /// Uploads each device's blocks of the global `inputs`, executes on every device and
    /// assembles the global results. In checked mode, the first device whose check record
    /// reports an error is named in it.
    pub fn run(&self, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        Ok(self.run_with_prints(inputs)?.0)
    }

    /// [`MeshCpuKernel::run`], with the lines the kernel's `debug_print`s printed: device 0's,
    /// then device 1's, ..., each prefixed with `[device d] `.
    pub fn run_with_prints(&self, inputs: &[Array]) -> Result<(Vec<Array>, Vec<String>), KernelError> {
        let err = |m: String| KernelError::single(&self.name, None, self.loc, m);
        self.plan.check_inputs(&self.launch, (&self.name, self.loc), inputs)?;
        let mut outs = self.execute(inputs).map_err(|e| err(format!("XLA:CPU {e}")))?;
        if let Some(table) = &self.checks {
            for (d, device_outs) in outs.iter().enumerate() {
                let record =
                    device_outs.last().ok_or_else(|| err("the checked program returned no check record".into()))?;
                if let Some(e) = table.error(&record.to_i64()) {
                    return Err(self.launch.on_device(e, d));
                }
            }
        }
        let kept = self.plan.outputs.len();
        let mut prints = Vec::new();
        for (d, device_outs) in outs.iter_mut().enumerate() {
            if let (Some(log), [count, rows, ..]) = (&self.prints, &device_outs[kept..]) {
                prints.extend(log.lines(count, rows).into_iter().map(|l| format!("[device {d}] {l}")));
            }
            device_outs.truncate(kept);
        }
        Ok((self.launch.assemble_outputs((&self.name, self.loc), &self.plan, outs)?, prints))
    }

    /// Uploads each partition's inputs to its device, executes, downloads each partition's
    /// results (`[partition][result]`).
    fn execute(&self, inputs: &[Array]) -> Result<Vec<Vec<Array>>, String> {
        let pjrt = |what: &str, e: pjrt::PjrtError| format!("{what}: {e}");
        let ids: Vec<i32> =
            self.devices.iter().map(|d| d.id()).collect::<Result<_, _>>().map_err(|e| pjrt("devices", e))?;
        let order: Vec<usize> = self
            .exe
            .addressable_devices()
            .map_err(|e| pjrt("devices", e))?
            .iter()
            .map(|d| d.id().ok().and_then(|id| ids.iter().position(|&x| x == id)).ok_or("an unknown device"))
            .collect::<Result<_, _>>()?;
        let mut lists: Vec<Vec<Buffer>> = Vec::new();
        for &p in &order {
            let local = self.launch.device_inputs(&self.plan, inputs, p);
            let bufs = local.iter().map(|a| self.client.buffer_from_host(a, &self.devices[p]));
            lists.push(bufs.collect::<Result<_, _>>().map_err(|e| pjrt("upload", e))?);
        }
        // The buffers are fresh copies: donate them, so outputs that alias an input update it in place.
        let outs = self.exe.execute_sharded_donating(lists).map_err(|e| pjrt("execute", e))?;
        let mut by_partition: Vec<Vec<Array>> = vec![Vec::new(); order.len()];
        for (&p, device_outs) in order.iter().zip(outs) {
            by_partition[p] =
                device_outs.iter().map(|b| b.to_host()).collect::<Result<_, _>>().map_err(|e| pjrt("download", e))?;
        }
        Ok(by_partition)
    }
}

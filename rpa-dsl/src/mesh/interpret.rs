//! Interpret mode on a mesh: the devices simulated one by one, then the epilogue on the host.

use super::host::{assemble, shard};
use super::{MeshLaunch, MeshPlan};
use crate::interpret::{self, InterpretOptions};
use crate::{Array, Kernel, KernelError, Loc};

impl MeshLaunch {
    /// Runs the launch in interpret mode (the reference semantics of every mesh backend): slices
    /// each device's inputs from the global `inputs`, interprets the kernel for each device in
    /// turn, runs the epilogue on the host and assembles the global results. Devices that the
    /// result shardings say hold the same block must have computed the same bits.
    pub fn interpret(&self, kernel: &Kernel, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        self.interpret_with(kernel, inputs, &InterpretOptions::default())
    }

    /// [`MeshLaunch::interpret`] with interpret-mode options.
    pub fn interpret_with(
        &self,
        kernel: &Kernel,
        inputs: &[Array],
        opts: &InterpretOptions,
    ) -> Result<Vec<Array>, KernelError> {
        Ok(self.interpret_with_prints(kernel, inputs, opts)?.0)
    }

    /// [`MeshLaunch::interpret_with`], with the lines the kernel's `debug_print`s printed: device
    /// 0's, then device 1's, ..., each prefixed with `[device d] `.
    pub fn interpret_with_prints(
        &self,
        kernel: &Kernel,
        inputs: &[Array],
        opts: &InterpretOptions,
    ) -> Result<(Vec<Array>, Vec<String>), KernelError> {
        let plan = self.plan(kernel)?;
        plan.check_inputs(self, (&kernel.name, kernel.loc), inputs)?;
        let mut devices = Vec::with_capacity(self.mesh.devices());
        let mut prints = Vec::new();
        for d in 0..self.mesh.devices() {
            let local = self.device_inputs(&plan, inputs, d);
            let outcome = interpret::run_owned(kernel, local, opts).map_err(|e| self.on_device(e, d))?;
            prints.extend(outcome.prints.into_iter().map(|l| format!("[device {d}] {l}")));
            devices.push(outcome.outputs);
        }
        for c in &self.epilogue {
            c.apply_host(&self.mesh, &mut devices);
        }
        Ok((self.assemble_outputs((&kernel.name, kernel.loc), &plan, devices)?, prints))
    }

    /// Device `d`'s blocks of the global `inputs`.
    pub(crate) fn device_inputs(&self, plan: &MeshPlan, inputs: &[Array], d: usize) -> Vec<Array> {
        inputs.iter().zip(&plan.inputs).map(|(a, arg)| shard(a, &arg.sharding, &self.mesh, d, &arg.local)).collect()
    }

    /// The global results from each device's results (`devices[d]`).
    pub(crate) fn assemble_outputs(
        &self,
        kernel: (&str, Loc),
        plan: &MeshPlan,
        devices: Vec<Vec<Array>>,
    ) -> Result<Vec<Array>, KernelError> {
        plan.outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let parts: Vec<Array> = devices.iter().map(|outs| outs[i].clone()).collect();
                assemble(&parts, &o.sharding, &self.mesh, &o.global).map_err(|m| {
                    KernelError::single(kernel.0, Some(&o.name), kernel.1, format!("output `{}`: {m}", o.name))
                })
            })
            .collect()
    }

    /// `e`, with each message saying which device it happened on.
    pub(crate) fn on_device(&self, mut e: KernelError, d: usize) -> KernelError {
        let coords: Vec<String> =
            self.mesh.axes().iter().zip(self.mesh.coords(d)).map(|((n, _), c)| format!("{n}={c}")).collect();
        for diag in &mut e.diagnostics {
            diag.message = format!("on device {d} ({}): {}", coords.join(", "), diag.message);
        }
        e
    }
}

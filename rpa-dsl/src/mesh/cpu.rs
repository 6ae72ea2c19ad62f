//! A launch on a mesh on XLA:CPU: one SPMD program on an N-device client.

pub use super::cpu_kernel::MeshCpuKernel;
use super::MeshLaunch;
use crate::cpu::{compile_dropping_unknown_flags, compile_options};
use crate::ir::verify::verify_targets;
use crate::lower::spmd;
use crate::lower::stablehlo;
use crate::pjrt::{self, Client, CompileOptions, Device, LoadedExecutable, NamedValue};
use crate::{Array, Kernel, KernelError, TargetCheck};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// An XLA:CPU client with several devices (the plugin's `cpu_device_count` create option) that
/// runs launches on meshes of up to that many devices, caching compiled programs by module text.
pub struct MeshCpu {
    client: Client,
    devices: Vec<Device>,
    checked: bool,
    cache: Mutex<HashMap<String, Arc<LoadedExecutable>>>,
}

impl std::fmt::Debug for MeshCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCpu").field("devices", &self.devices.len()).finish_non_exhaustive()
    }
}

/// The options of a compile for `devices` (the ids of partitions 0, 1, ...).
pub(crate) fn spmd_options(base: CompileOptions, devices: &[i64]) -> CompileOptions {
    CompileOptions {
        num_partitions: devices.len() as i64,
        use_spmd_partitioning: true,
        use_shardy_partitioner: true,
        device_assignment: devices.to_vec(),
        ..base
    }
}

impl MeshCpu {
    /// A new client of the XLA:CPU plugin with `devices` devices; checked mode on.
    pub fn new(devices: usize) -> Result<MeshCpu, pjrt::PjrtError> {
        if devices == 0 {
            return Err(pjrt::PjrtError::usage("an XLA:CPU client needs at least one device"));
        }
        let plugin = pjrt::cpu_plugin()?;
        let client = Client::new(&plugin, &[("cpu_device_count", NamedValue::Int64(devices as i64))])?;
        let found = client.addressable_devices()?;
        if found.len() < devices {
            return Err(pjrt::PjrtError::usage(format!(
                "asked XLA:CPU for {devices} devices, it made {}",
                found.len()
            )));
        }
        Ok(MeshCpu { client, devices: found, checked: true, cache: Mutex::new(HashMap::new()) })
    }

    /// The process-wide client with `devices` devices (created on first use).
    pub fn global(devices: usize) -> Result<Arc<MeshCpu>, String> {
        static CLIENTS: OnceLock<Mutex<HashMap<usize, Arc<MeshCpu>>>> = OnceLock::new();
        let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&devices) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            MeshCpu::new(devices).map_err(|e| format!("cannot start an XLA:CPU client of {devices} devices: {e}"))?,
        );
        clients.insert(devices, c.clone());
        Ok(c)
    }

    /// This client with checked mode on (the default) or off.
    pub fn with_checks(self, checked: bool) -> MeshCpu {
        MeshCpu { checked, ..self }
    }

    /// The number of devices.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// The SPMD module of `launch` for `kernel`, after the verifier, and what its extra results
    /// mean.
    pub fn module(&self, launch: &MeshLaunch, kernel: &Kernel) -> Result<(String, stablehlo::Lowered), KernelError> {
        verify_targets(kernel, TargetCheck::All)?;
        let plan = launch.plan(kernel)?;
        let body = stablehlo::lower_program(kernel, self.checked)?;
        let text = spmd::module(launch, &plan, &kernel.name, &body.text, &body.extras);
        Ok((text, body))
    }

    /// Verifies, lowers and compiles `kernel` launched on `launch.mesh` (the first
    /// `launch.mesh.devices()` devices), reusing a cached executable for the same module text.
    pub fn compile(&self, launch: &MeshLaunch, kernel: &Kernel) -> Result<MeshCpuKernel, KernelError> {
        let err = |m: String| KernelError::single(&kernel.name, None, kernel.loc, m);
        let n = launch.mesh.devices();
        self.check_devices(launch, kernel)?;
        let plan = launch.plan(kernel)?;
        let (mlir, body) = self.module(launch, kernel)?;
        let exe =
            self.compile_text(&mlir, n).map_err(|e| err(format!("XLA:CPU failed to compile the SPMD program: {e}")))?;
        Ok(MeshCpuKernel {
            name: kernel.name.clone(),
            loc: kernel.loc,
            launch: launch.clone(),
            plan,
            checks: body.checks,
            prints: body.prints,
            mlir,
            exe,
            client: self.client.clone(),
            devices: self.devices[..n].to_vec(),
        })
    }

    /// Compiles and runs `kernel` on `launch.mesh` ([`MeshCpuKernel::run`]).
    pub fn run(&self, launch: &MeshLaunch, kernel: &Kernel, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        self.check_devices(launch, kernel)?;
        let plan = launch.plan(kernel)?;
        plan.check_inputs(launch, (&kernel.name, kernel.loc), inputs)?;
        self.compile(launch, kernel)?.run(inputs)
    }

    fn check_devices(&self, launch: &MeshLaunch, kernel: &Kernel) -> Result<(), KernelError> {
        let n = launch.mesh.devices();
        if n <= self.devices.len() {
            return Ok(());
        }
        let m = format!(
            "the mesh ({}) has {n} devices; this XLA:CPU client has {}",
            launch.mesh.describe(),
            self.devices.len()
        );
        Err(KernelError::single(&kernel.name, None, kernel.loc, m))
    }

    /// Compiles `text`, an SPMD program of `n` partitions, for the first `n` devices.
    fn compile_text(&self, text: &str, n: usize) -> Result<Arc<LoadedExecutable>, pjrt::PjrtError> {
        if let Some(exe) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(text) {
            return Ok(exe.clone());
        }
        let ids = self.devices.iter().map(|d| d.id().map(i64::from)).collect::<Result<Vec<_>, _>>()?;
        let options = spmd_options(compile_options(), &ids[..n]);
        let exe = Arc::new(compile_dropping_unknown_flags(&self.client, text, &options)?);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(text.to_string(), exe.clone());
        Ok(exe)
    }
}

impl MeshLaunch {
    /// Runs `kernel` on XLA:CPU with the process-wide client of `self.mesh.devices()` devices
    /// ([`MeshCpu::global`]), in checked mode.
    pub fn run_cpu(&self, kernel: &Kernel, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        let cpu =
            MeshCpu::global(self.mesh.devices()).map_err(|e| KernelError::single(&kernel.name, None, kernel.loc, e))?;
        cpu.run(self, kernel, inputs)
    }
}

//! Launching a kernel on a device mesh, with `shard_map` semantics: the kernel is written for one
//! device's shapes, each launch argument is split over mesh axes (or replicated), every device
//! runs the kernel on its shard, and an epilogue of collectives (all-gather, log-sum-exp merge)
//! combines the per-device results.
//!
//! - [`Mesh`]: named axes with sizes (`Mesh::new(&[("tp", 2), ("cp", 2)])?`); device `d` sits at
//!   the row-major coordinates of `d` (the last axis varies fastest).
//! - [`Sharding`]: per array, which dims are split over which mesh axes (replicated otherwise).
//!   A global dim split over axes of sizes `a, b` holds `a·b` blocks; the device at coordinates
//!   `(i, j)` of those axes has block `i·b + j`.
//! - [`MeshLaunch`]: the mesh, a sharding per kernel input and per output, and the epilogue
//!   ([`Collective`]s), in order.
//!
//! Backends: [`MeshLaunch::interpret`] simulates the devices one by one in interpret mode and runs
//! the epilogue on the host (the reference semantics); [`MeshLaunch::run_cpu`] runs one SPMD
//! program on an N-device XLA:CPU client; [`MeshLaunch::compile_tpu`] compiles it ahead of time
//! with libtpu for a multi-chip topology (`v5e:2x2`, `v6e:2x2`, `tpu7x:2x2x1`).
//!
//! # The program
//! One StableHLO module with `mhlo.num_partitions = N` ([`crate::lower::spmd`]): `@main` takes
//! and returns global arrays; its body is one Shardy `sdy.manual_computation` over all mesh axes
//! whose region calls the per-device kernel (the StableHLO discharge program on CPU, the Mosaic
//! `tpu_custom_call` on TPU) as a private function, then runs the epilogue as StableHLO
//! collectives (`all_gather`, `all_reduce`), so XLA schedules them with the rest of the program.
//!
//! Why Shardy and not GSPMD's `@Sharding` / `@SPMDFullToShardShape` custom calls: both pinned
//! plugins (xla-cpu-pjrt 0.0.1 and libtpu 0.0.52) compile both forms, checked with the modules
//! jax 0.12 emits for one `shard_map`; Shardy is what jax emits by default, names the mesh axes in
//! the module, and gives each per-device result its sharding directly (GSPMD's form also needs a
//! `mhlo.sharding` on every result of `@main`). Two constraints found on the way: the compile
//! must set `use_shardy_partitioner` (otherwise XLA's GSPMD partitioner meets Shardy's custom calls
//! and fails a `RET_CHECK`), and the XLA:CPU plugin does not know the
//! `#stablehlo.replica_group_mesh_axes` attribute, so collectives list their replica groups
//! as dense device ids.
//!
//! # Details
//! - An output that aliases an input (`#[alias(x)]`) with the same global shape and sharding, and
//!   that no collective writes, updates the input's shards in place (`tf.aliasing_output`).
//! - A result the output sharding says several devices share (replicated over an axis it does
//!   not split) must be the same bits on each: interpret mode reports the first two devices that
//!   differ; XLA returns one of them.
//! - Checked mode works per device (its error names the device and its coordinates);
//!   [`MeshLaunch::interpret_with_prints`] and [`MeshCpuKernel::run_with_prints`] return what
//!   `debug_print` printed, each line prefixed with its device.
//!
//! ```no_run
//! # fn demo(kernel: &rpa_dsl::Kernel, x: rpa_dsl::Array, y: rpa_dsl::Array) -> Result<(), rpa_dsl::KernelError> {
//! use rpa_dsl::mesh::{Mesh, MeshLaunch, Sharding};
//! let mesh = Mesh::new(&[("tp", 2)]).expect("a valid mesh");
//! // `kernel` is built for one device: x [4, 128] of a global [8, 128] split over "tp" on dim 0.
//! let launch = MeshLaunch::new(mesh)
//!     .inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()])
//!     .outputs(vec![Sharding::replicated()])
//!     .all_gather(0, 0, "tp"); // output 0 gathered along dim 0 over "tp": every device has it all
//! let reference = launch.interpret(kernel, &[x.clone(), y.clone()])?;
//! let out = launch.run_cpu(kernel, &[x, y])?;
//! assert!(out[0].all_close(&reference[0], 1e-6, 1e-6)); // XLA's exp may differ in the last bit
//! // Per-device arrays by hand: device 1's block of x, and back.
//! let split = Sharding::split(0, "tp");
//! let block = split.shard(&launch.mesh, &out[0], 1).expect("divisible");
//! # Ok(()) }
//! ```

mod collective;
mod cpu;
mod cpu_kernel;
mod host;
mod interpret;
mod launch;
mod merge;
mod sharding;
mod tpu;

pub use collective::Collective;
pub use cpu::{MeshCpu, MeshCpuKernel};
pub use launch::{MeshArg, MeshLaunch, MeshPlan};
pub use sharding::Sharding;
pub use tpu::{topology_target, MeshTpuCompiled, COLLECTIVE_OPCODES};

use std::fmt;

/// A mesh or sharding that cannot be used, with the value at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshError {
    pub message: String,
}

impl MeshError {
    pub(crate) fn new(message: impl Into<String>) -> MeshError {
        MeshError { message: message.into() }
    }
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MeshError {}

/// A device mesh: named axes with sizes. Device `d` has the row-major coordinates of `d`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mesh {
    axes: Vec<(String, usize)>,
}

impl Mesh {
    /// A mesh of these axes, major to minor. Names must be non-empty identifiers and distinct,
    /// sizes at least 1.
    pub fn new(axes: &[(&str, usize)]) -> Result<Mesh, MeshError> {
        if axes.is_empty() {
            return Err(MeshError::new("a mesh needs at least one axis"));
        }
        for (i, &(name, size)) in axes.iter().enumerate() {
            let ident = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ident {
                return Err(MeshError::new(format!("mesh axis name `{name}` is not an identifier")));
            }
            if size == 0 {
                return Err(MeshError::new(format!("mesh axis `{name}` has size 0")));
            }
            if axes[..i].iter().any(|(n, _)| *n == name) {
                return Err(MeshError::new(format!("mesh axis `{name}` appears twice")));
            }
        }
        Ok(Mesh { axes: axes.iter().map(|&(n, s)| (n.to_string(), s)).collect() })
    }

    /// The axes (name, size), major to minor.
    pub fn axes(&self) -> &[(String, usize)] {
        &self.axes
    }

    /// The number of devices: the product of the axis sizes.
    pub fn devices(&self) -> usize {
        self.axes.iter().map(|(_, s)| s).product()
    }

    /// The position of axis `name`.
    pub fn axis(&self, name: &str) -> Option<usize> {
        self.axes.iter().position(|(n, _)| n == name)
    }

    /// The size of axis `name`.
    pub fn size(&self, name: &str) -> Option<usize> {
        self.axis(name).map(|a| self.axes[a].1)
    }

    /// The coordinates of device `device` (row-major).
    pub fn coords(&self, device: usize) -> Vec<usize> {
        let mut rest = device;
        let mut out = vec![0; self.axes.len()];
        for (a, (_, size)) in self.axes.iter().enumerate().rev() {
            out[a] = rest % size;
            rest /= size;
        }
        out
    }

    /// The device at `coords`.
    pub fn device(&self, coords: &[usize]) -> usize {
        coords.iter().zip(&self.axes).fold(0, |acc, (&c, (_, s))| acc * s + c)
    }

    /// The groups of devices that differ only in their coordinate along axis number `axis` (an
    /// axis of the mesh), each ordered by that coordinate (the replica groups of a collective
    /// over it).
    pub(crate) fn groups(&self, axis: usize) -> Vec<Vec<usize>> {
        let size = self.axes[axis].1;
        (0..self.devices())
            .filter(|&d| self.coords(d)[axis] == 0)
            .map(|d| {
                let mut c = self.coords(d);
                (0..size)
                    .map(|i| {
                        c[axis] = i;
                        self.device(&c)
                    })
                    .collect()
            })
            .collect()
    }

    /// `"tp=2, cp=2"`.
    pub fn describe(&self) -> String {
        self.axes.iter().map(|(n, s)| format!("{n}={s}")).collect::<Vec<_>>().join(", ")
    }
}

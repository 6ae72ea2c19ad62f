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
//! assert_eq!(out, reference);
//! # Ok(()) }
//! ```

mod collective;
mod cpu;
mod host;
mod interpret;
mod launch;
mod tpu;

pub use collective::Collective;
pub use cpu::MeshCpu;
pub use launch::{MeshArg, MeshLaunch, MeshPlan};
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

    /// The groups of devices that differ only in their coordinate along `axis`, each ordered by
    /// that coordinate (the replica groups of a collective over `axis`).
    pub fn groups(&self, axis: usize) -> Vec<Vec<usize>> {
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

/// How an array is laid out over a mesh: which dims are split over which mesh axes (several axes
/// on one dim: major first); replicated over the axes it does not name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sharding {
    splits: Vec<(usize, String)>,
}

impl Sharding {
    /// The whole array on every device.
    pub fn replicated() -> Sharding {
        Sharding::default()
    }

    /// Dim 0 split over every axis of `mesh`, in mesh order: device `d` holds block `d`.
    pub fn split_all(mesh: &Mesh) -> Sharding {
        Sharding { splits: mesh.axes.iter().map(|(a, _)| (0, a.clone())).collect() }
    }

    /// Dim `dim` split over mesh axis `axis`.
    pub fn split(dim: usize, axis: &str) -> Sharding {
        Sharding::default().and_split(dim, axis)
    }

    /// This sharding with dim `dim` also split over `axis` (minor to the axes already on `dim`).
    pub fn and_split(mut self, dim: usize, axis: &str) -> Sharding {
        self.splits.push((dim, axis.to_string()));
        self
    }

    /// The axes dim `dim` is split over, major first.
    pub fn axes_of(&self, dim: usize) -> Vec<&str> {
        self.splits.iter().filter(|(d, _)| *d == dim).map(|(_, a)| a.as_str()).collect()
    }

    /// Whether the sharding splits some dim over `axis`.
    pub fn uses(&self, axis: &str) -> bool {
        self.splits.iter().any(|(_, a)| a == axis)
    }

    /// Checks the sharding against `mesh` for an array of rank `rank`.
    pub fn check(&self, mesh: &Mesh, rank: usize) -> Result<(), MeshError> {
        for (i, (dim, axis)) in self.splits.iter().enumerate() {
            if *dim >= rank {
                return Err(MeshError::new(format!("splits dim {dim} of an array of rank {rank}")));
            }
            if mesh.axis(axis).is_none() {
                return Err(MeshError::new(format!(
                    "names mesh axis `{axis}`, which the mesh ({}) has not",
                    mesh.describe()
                )));
            }
            if self.splits[..i].iter().any(|(_, a)| a == axis) {
                return Err(MeshError::new(format!("uses mesh axis `{axis}` twice")));
            }
        }
        Ok(())
    }

    /// How many blocks dim `dim` is cut into.
    pub fn blocks(&self, mesh: &Mesh, dim: usize) -> usize {
        self.axes_of(dim).iter().map(|a| mesh.size(a).unwrap_or(1)).product()
    }

    /// The global shape of an array whose per-device shape is `local`.
    pub fn global_shape(&self, mesh: &Mesh, local: &[usize]) -> Vec<usize> {
        local.iter().enumerate().map(|(d, &n)| n * self.blocks(mesh, d)).collect()
    }

    /// The block of dim `dim` that `device` holds.
    pub fn block_index(&self, mesh: &Mesh, dim: usize, device: usize) -> usize {
        let coords = mesh.coords(device);
        self.axes_of(dim).iter().fold(0, |acc, a| {
            let ax = mesh.axis(a).expect("a checked sharding");
            acc * mesh.axes[ax].1 + coords[ax]
        })
    }
}

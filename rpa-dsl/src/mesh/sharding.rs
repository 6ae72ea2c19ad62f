//! Shardings: which dims of an array are split over which mesh axes.

use super::{host, Mesh, MeshError};
use crate::Array;

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

impl Sharding {
    /// The block of `global` that `device` of `mesh` holds (e.g. to build per-device inputs by
    /// hand).
    pub fn shard(&self, mesh: &Mesh, global: &Array, device: usize) -> Result<Array, MeshError> {
        self.check(mesh, global.shape().len())?;
        if device >= mesh.devices() {
            return Err(MeshError::new(format!(
                "device {device} is not on the mesh ({}): it has {}",
                mesh.describe(),
                mesh.devices()
            )));
        }
        let mut local = Vec::new();
        for (d, &n) in global.shape().iter().enumerate() {
            let blocks = self.blocks(mesh, d);
            if n % blocks != 0 {
                return Err(MeshError::new(format!(
                    "dim {d} of size {n} does not split into {blocks} blocks over {:?}",
                    self.axes_of(d)
                )));
            }
            local.push(n / blocks);
        }
        Ok(host::shard(global, self, mesh, device, &local))
    }

    /// The global array whose blocks the devices of `mesh` hold (`parts[d]` on device `d`);
    /// devices that hold the same block must agree bit for bit.
    pub fn assemble(&self, mesh: &Mesh, parts: &[Array]) -> Result<Array, MeshError> {
        if parts.len() != mesh.devices() {
            return Err(MeshError::new(format!(
                "{} parts for a mesh ({}) of {} devices",
                parts.len(),
                mesh.describe(),
                mesh.devices()
            )));
        }
        let (dtype, local) = (parts[0].dtype(), parts[0].shape());
        if let Some(d) = parts.iter().position(|p| p.dtype() != dtype || p.shape() != local) {
            return Err(MeshError::new(format!(
                "part {d} is {}{:?}, part 0 {dtype}{local:?}",
                parts[d].dtype(),
                parts[d].shape()
            )));
        }
        self.check(mesh, local.len())?;
        host::assemble(parts, self, mesh, &self.global_shape(mesh, local)).map_err(MeshError::new)
    }
}

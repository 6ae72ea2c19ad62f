//! Facts about the TPU generations rpa targets. Everything backend-independent about the hardware
//! (memory capacities, tiling) lives here once, so the verifier and every lowering agree.

use crate::dtype::DType;

/// A TPU generation the verifier and the Mosaic backend know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TpuTarget {
    V5e,
    V6e,
    V7x,
}

pub const MIB: usize = 1 << 20;

/// Lanes of a vector register (the minor dimension of a native tile).
pub const LANES: usize = 128;
/// Sublanes of a 32-bit vector register (the second-minor dimension of a native 32-bit tile).
pub const SUBLANES: usize = 8;

impl TpuTarget {
    pub const ALL: [TpuTarget; 3] = [TpuTarget::V5e, TpuTarget::V6e, TpuTarget::V7x];

    /// VMEM per TensorCore: 128 MiB on v5e and v6e, 64 MiB on v7x.
    pub const fn vmem_bytes(self) -> usize {
        match self {
            TpuTarget::V5e | TpuTarget::V6e => 128 * MIB,
            TpuTarget::V7x => 64 * MIB,
        }
    }

    /// The scoped VMEM limit XLA gives a Mosaic kernel that does not set `vmem_limit`.
    pub const fn default_scoped_vmem_bytes(self) -> usize {
        match self {
            TpuTarget::V5e => 16 * MIB,
            TpuTarget::V6e | TpuTarget::V7x => 32 * MIB,
        }
    }

    /// SMEM per TensorCore. The scalar memory is about 1 MiB on every generation rpa targets
    /// (vLLM keeps block tables under half of it; tpu-inference caps page indices at 128Ki i32).
    pub const fn smem_bytes(self) -> usize {
        MIB
    }

    /// The topology name libtpu accepts for a single chip of this generation.
    pub const fn topology(self) -> &'static str {
        match self {
            TpuTarget::V5e => "v5e:1x1",
            TpuTarget::V6e => "v6e:1x1",
            TpuTarget::V7x => "tpu7x:1x1x1",
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            TpuTarget::V5e => "v5e",
            TpuTarget::V6e => "v6e",
            TpuTarget::V7x => "v7x",
        }
    }

    pub fn from_name(name: &str) -> Option<TpuTarget> {
        match name {
            "v5e" => Some(TpuTarget::V5e),
            "v6e" => Some(TpuTarget::V6e),
            "v7x" | "tpu7x" => Some(TpuTarget::V7x),
            _ => None,
        }
    }
}

impl std::fmt::Display for TpuTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The TPU generations a kernel must compile for before a host backend (interpret mode,
/// PJRT-CPU) runs it: the verifier's hardware rules (tiling, memory spaces, VMEM and SMEM budgets)
/// of each, so that a kernel that runs on the host also compiles for a TPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TargetCheck {
    /// Every generation rpa supports ([`TpuTarget::ALL`]); the first that rejects the kernel is
    /// reported.
    #[default]
    All,
    /// One generation (a kernel written for it, e.g. with a `vmem_limit` only it has room for).
    Only(TpuTarget),
    /// No hardware rules: for host-only experiments that no TPU would compile.
    HostOnly,
}

impl TargetCheck {
    /// The generations checked, in order.
    pub fn targets(&self) -> &[TpuTarget] {
        match self {
            TargetCheck::All => &TpuTarget::ALL,
            TargetCheck::Only(target) => std::slice::from_ref(target),
            TargetCheck::HostOnly => &[],
        }
    }
}

/// The native tile of a VMEM buffer of `dtype`: (8 · packing, 128). The last two dimensions of a
/// VMEM block must be multiples of it, or equal to the full extent of the array.
pub const fn native_tile(dtype: DType) -> (usize, usize) {
    (SUBLANES * dtype.packing(), LANES)
}

/// Rows of the VMEM tile Mosaic gives a buffer whose second-minor dimension is `rows` (its memref
/// layout inference): the native tile once a full one fits, else the smallest power-of-two multiple
/// of the packing that covers `rows` (so a `[n, 4, 128]` f32 buffer is not padded to 8 rows).
pub fn vmem_tile_rows(dtype: DType, rows: usize) -> usize {
    let (native, _) = native_tile(dtype);
    if rows >= native {
        return native;
    }
    let mut tile = dtype.packing();
    while tile < rows.min(SUBLANES.max(dtype.packing())) {
        tile *= 2;
    }
    tile
}

/// Bytes a VMEM buffer of `shape` occupies once its last two dimensions are padded to its tile
/// ([`vmem_tile_rows`] × 128 lanes).
pub fn padded_vmem_bytes(dtype: DType, shape: &[usize]) -> usize {
    let mut dims = shape.to_vec();
    match dims.len() {
        0 => return 4,
        1 => {
            let n = dims[0];
            dims[0] = n.div_ceil(LANES) * LANES;
        }
        n => {
            dims[n - 1] = dims[n - 1].div_ceil(LANES) * LANES;
            let tile = vmem_tile_rows(dtype, dims[n - 2]);
            dims[n - 2] = dims[n - 2].div_ceil(tile) * tile;
        }
    }
    dims.iter().product::<usize>() * dtype.bytes()
}

/// Bytes an SMEM buffer occupies: scalars are stored one per 32-bit word.
pub fn smem_bytes(shape: &[usize]) -> usize {
    shape.iter().product::<usize>().max(1) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_second_minor_dims_get_small_tiles() {
        // Measured with libtpu (v5e, 16 MiB scoped VMEM): an f32 [6000, 4, 128] scratch (11.7 MiB
        // unpadded, 23.4 MiB with 8-row tiles) compiles, [12000, 4, 128] does not.
        let rows = |dt, r| vmem_tile_rows(dt, r);
        assert_eq!([1, 2, 4, 4, 8, 8, 8].map(|r| rows(DType::F32, r)), [1, 2, 4, 4, 8, 8, 8].map(|r: usize| r.max(1)));
        assert_eq!([1, 3, 4, 9, 12, 16, 40].map(|r| rows(DType::Bf16, r)), [2, 4, 4, 8, 8, 16, 16]);
        assert_eq!([1, 5, 31, 32].map(|r| rows(DType::I8, r)), [4, 8, 8, 32]);
        assert_eq!(padded_vmem_bytes(DType::F32, &[6000, 4, 128]), 6000 * 4 * 128 * 4);
        assert_eq!(padded_vmem_bytes(DType::F32, &[2, 12, 100]), 2 * 16 * 128 * 4);
        assert_eq!(padded_vmem_bytes(DType::Bf16, &[3, 128]), 4 * 128 * 2);
    }
}

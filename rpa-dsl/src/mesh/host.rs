//! Global arrays ↔ per-device shards on the host.

use super::collective::strides;
use super::{Mesh, Sharding};
use crate::Array;

/// The block of `global` that `device` holds, of shape `local`.
pub(crate) fn shard(global: &Array, sharding: &Sharding, mesh: &Mesh, device: usize, local: &[usize]) -> Array {
    let starts: Vec<usize> = (0..local.len()).map(|d| sharding.block_index(mesh, d, device) * local[d]).collect();
    let (gs, ls) = (strides(global.shape()), strides(local));
    let n: usize = local.iter().product();
    let bits = (0..n)
        .map(|k| {
            let g: usize = (0..local.len()).map(|d| ((k / ls[d]) % local[d] + starts[d]) * gs[d]).sum();
            global.bits()[g]
        })
        .collect();
    Array::from_bits(global.dtype(), local, bits)
}

/// The global array whose blocks the devices hold (`parts[d]` on device `d`). Devices that hold
/// the same block (the array is replicated over an axis) must agree bit for bit; otherwise the
/// error names the first two that differ.
pub(crate) fn assemble(parts: &[Array], sharding: &Sharding, mesh: &Mesh, global: &[usize]) -> Result<Array, String> {
    let local = parts[0].shape().to_vec();
    let (gs, ls) = (strides(global), strides(&local));
    let mut bits = vec![0u32; global.iter().product()];
    let mut owner: Vec<Option<usize>> = vec![None; bits.len()];
    for (device, part) in parts.iter().enumerate() {
        let starts: Vec<usize> = (0..local.len()).map(|d| sharding.block_index(mesh, d, device) * local[d]).collect();
        for (k, &b) in part.bits().iter().enumerate() {
            let g: usize = (0..local.len()).map(|d| ((k / ls[d]) % local[d] + starts[d]) * gs[d]).sum();
            match owner[g] {
                None => {
                    owner[g] = Some(device);
                    bits[g] = b;
                }
                Some(first) if bits[g] != b => {
                    return Err(format!(
                        "devices {first} and {device} hold different values at element {g} of an output its \
                         sharding says they share (replicated over the mesh axes it does not split)"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(Array::from_bits(parts[0].dtype(), global, bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn shards_round_trip() {
        let mesh = Mesh::new(&[("a", 2), ("b", 2)]).unwrap();
        let sharding = Sharding::split(1, "b").and_split(0, "a");
        let global = Array::from_i32(&[4, 4], &(0..16).collect::<Vec<_>>());
        let parts: Vec<Array> = (0..4).map(|d| shard(&global, &sharding, &mesh, d, &[2, 2])).collect();
        // Device 1 = (a 0, b 1): rows 0..2, columns 2..4.
        assert_eq!(parts[1].to_i64(), [2, 3, 6, 7]);
        assert_eq!(assemble(&parts, &sharding, &mesh, &[4, 4]).unwrap(), global);
    }

    #[test]
    fn public_shard_and_assemble_check_their_arguments() {
        let mesh = Mesh::new(&[("a", 2)]).unwrap();
        let s = Sharding::split(0, "a");
        let global = Array::from_i32(&[4], &[1, 2, 3, 4]);
        assert_eq!(s.shard(&mesh, &global, 1).unwrap().to_i64(), [3, 4]);
        assert!(s.shard(&mesh, &global, 2).unwrap_err().message.contains("device 2 is not on the mesh (a=2)"));
        let odd = Array::from_i32(&[3], &[1, 2, 3]);
        assert!(s.shard(&mesh, &odd, 0).unwrap_err().message.contains("dim 0 of size 3 does not split into 2 blocks"));
        let parts = [Array::from_i32(&[2], &[1, 2]), Array::from_i32(&[2], &[3, 4])];
        assert_eq!(s.assemble(&mesh, &parts).unwrap(), global);
        assert!(s.assemble(&mesh, &parts[..1]).unwrap_err().message.contains("1 parts for a mesh (a=2) of 2 devices"));
    }

    #[test]
    fn replicas_must_agree() {
        let mesh = Mesh::new(&[("a", 2)]).unwrap();
        let parts = [Array::filled(DType::F32, &[2], 1.0), Array::filled(DType::F32, &[2], 2.0)];
        let err = assemble(&parts, &Sharding::replicated(), &mesh, &[2]).unwrap_err();
        assert!(err.contains("devices 0 and 1"), "{err}");
    }
}

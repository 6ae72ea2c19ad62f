//! Launches on a mesh compiled ahead of time by libtpu for multi-chip topologies (no TPU needed):
//! the SPMD module with the Mosaic kernel as the per-device body and its collectives. Needs libtpu
//! (`scripts/install-plugins`).

use rpa_dsl::mesh::{Mesh, MeshLaunch, Sharding};
use rpa_dsl::prelude::*;

/// `o = softmax(x) · w` per row, eight rows per grid step.
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
fn softmax_scale(
    #[comptime] rows: usize,
    #[block([8, 128], |i| [i, 0])] x: In![f32, [rows, 128]],
    #[block([8, 128], |i| [0, 0])] w: In![f32, [8, 128]],
    #[block([8, 128], |i| [i, 0])] o: Out![f32, [rows, 128]],
) {
    let v = x.load();
    let e = (v - v.reduce_max(1)).exp();
    o.store(e / e.reduce_sum(1) * w.load());
}

/// Rows split over "tp", gathered back over it; the other axis replicates.
fn gathered(axes: &[(&str, usize)]) -> MeshLaunch {
    MeshLaunch::new(Mesh::new(axes).unwrap())
        .inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()])
        .outputs(vec![Sharding::replicated()])
        .all_gather(0, 0, "tp")
}

#[test]
fn sharded_kernel_with_all_gather_compiles_for_multi_chip_topologies() {
    let kernel = softmax_scale(16).unwrap();
    for (topology, axes, kind) in [
        ("v5e:2x2", [("dp", 2), ("tp", 2)], "v5"),
        ("v6e:2x2", [("dp", 2), ("tp", 2)], "v6"),
        // Two TensorCores per v7x chip: 8 devices.
        ("tpu7x:2x2x1", [("dp", 4), ("tp", 2)], "7"),
    ] {
        let c = gathered(&axes).compile_tpu(&kernel, topology).unwrap_or_else(|e| panic!("{topology}: {e}"));
        eprintln!(
            "{topology}: {} x {}, code {} B, VMEM {} B, HBM temp {} B, collectives {:?}",
            c.devices, c.device_kind, c.code_size, c.vmem_bytes, c.memory.temp_size_in_bytes, c.collectives
        );
        assert_eq!(c.devices, axes.iter().map(|a| a.1).product::<usize>(), "{topology}");
        assert!(c.device_kind.contains(kind), "{topology}: {}", c.device_kind);
        assert!(c.code_size > 0 && c.vmem_bytes > 0, "{topology}: {c:?}");
        let gathers: usize = c.collectives.iter().filter(|(op, _)| op.starts_with("all-gather")).map(|(_, n)| n).sum();
        assert!(gathers >= 1, "{topology}: collectives {:?}", c.collectives);
        assert!(c.module.contains("sdy.manual_computation") && c.module.contains("@tpu_custom_call"));
    }
}

#[test]
fn topologies_and_device_counts_are_checked_before_compiling() {
    let kernel = softmax_scale(16).unwrap();
    let launch = gathered(&[("dp", 2), ("tp", 2)]);
    for bad in ["v9z:2x2", "v6e", "v6e:2x0", "tpu7x:2x2"] {
        let e = launch.compile_tpu(&kernel, bad).unwrap_err().to_string();
        assert!(e.contains(&format!("unknown TPU topology `{bad}`")), "{e}");
    }
    // Well-formed, but no layout libtpu knows: its error, naming the topology.
    let e = launch.compile_tpu(&kernel, "v6e:3x3").unwrap_err().to_string();
    assert!(e.contains("libtpu topology v6e:3x3") && e.contains("not divisible"), "{e}");
    let e = gathered(&[("dp", 1), ("tp", 2)]).compile_tpu(&kernel, "v6e:2x2").unwrap_err().to_string();
    assert!(e.contains("the mesh (dp=1, tp=2) has 2 devices; topology v6e:2x2 has 4"), "{e}");
}

/// Attention of each row over `cols` keys (see `mesh_cpu.rs`): out on 256 lanes, its lse on 128.
#[tpu_kernel]
fn partial_attention(
    #[comptime] cols: usize,
    s: In![f32, [8, cols]],
    v: In![f32, [8, cols]],
    out: Out![f32, [8, 256]],
    lse: Out![f32, [8, 128]],
    sv: Vmem![f32, [8, cols]],
    vv: Vmem![f32, [8, cols]],
    ov: Vmem![f32, [8, 256]],
    lv: Vmem![f32, [8, 128]],
    sem: DmaSems<1>,
) {
    copy(s, sv, sem.at(0)).start_and_wait();
    copy(v, vv, sem.at(0)).start_and_wait();
    let logits = sv.load();
    let m = logits.reduce_max(1);
    let e = select(cmp::eq(logits, f32::NEG_INFINITY), zeros(&[8, cols], F32), (logits - m).exp());
    let l = e.reduce_sum(1);
    ov.store(((e * vv.load()).reduce_sum(1) / l).broadcast_to(&[8, 256]));
    lv.store((m + l.log()).broadcast_to(&[8, 128]));
    copy(ov, out, sem.at(0)).start_and_wait();
    copy(lv, lse, sem.at(0)).start_and_wait();
}

#[test]
fn lse_merge_compiles_to_all_reduces_on_v6e() {
    let launch = MeshLaunch::new(Mesh::new(&[("cp", 4)]).unwrap())
        .inputs(vec![Sharding::split(1, "cp"), Sharding::split(1, "cp")])
        .outputs(vec![Sharding::replicated(), Sharding::replicated()])
        .lse_merge(0, 1, &[0], "cp"); // lse's lanes are copies
    let c = launch.compile_tpu(&partial_attention(128).unwrap(), "v6e:2x2").unwrap_or_else(|e| panic!("{e}"));
    eprintln!("v6e:2x2 LSE merge: code {} B, collectives {:?}", c.code_size, c.collectives);
    let reduces: usize = c.collectives.iter().filter(|(op, _)| op.starts_with("all-reduce")).map(|(_, n)| n).sum();
    assert!(reduces >= 1, "collectives {:?}", c.collectives);
    assert_eq!(c.module.matches("\"stablehlo.all_reduce\"").count(), 3);
}

/// `x ← 2·x + 1`, in place.
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
fn double_in_place(
    #[comptime] rows: usize,
    #[block([8, 128], |i| [i, 0])] x: In![f32, [rows, 128]],
    #[alias(x)]
    #[block([8, 128], |i| [i, 0])]
    o: Out![f32, [rows, 128]],
) {
    o.store(x.load() * 2.0 + 1.0);
}

#[test]
fn in_place_outputs_alias_their_input_shards_on_v6e() {
    let launch = MeshLaunch::new(Mesh::new(&[("tp", 4)]).unwrap())
        .inputs(vec![Sharding::split(0, "tp")])
        .outputs(vec![Sharding::split(0, "tp")]);
    let c = launch.compile_tpu(&double_in_place(16).unwrap(), "v6e:2x2").unwrap_or_else(|e| panic!("{e}"));
    // Each device's 16 x 128 f32 shard is updated in place.
    assert_eq!(c.memory.alias_size_in_bytes, 16 * 128 * 4, "{:?}", c.memory);
}

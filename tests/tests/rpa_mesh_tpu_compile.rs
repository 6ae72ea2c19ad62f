//! The sharded RPA module (one SPMD program: per-device Mosaic kernel, log-sum-exp merge over cp,
//! all-gather over tp) AOT-compiled by libtpu for multi-chip topologies, one small configuration
//! per topology, with the per-chip VMEM reported. Needs libtpu (`scripts/install-plugins`).

use rpa_dsl::DType;
use rpa_kernels::rpa::mesh::spmd::{compile_tpu, topology_devices};
use rpa_kernels::rpa::mesh::RpaMesh;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, MIXED};
use rpa_kernels::rpa::validate::RpaError;
use rpa_kernels::rpa::RpaOptions;

#[test]
fn sharded_rpa_compiles_for_v5e_v6e_and_tpu7x_topologies() {
    if !rpa_dsl::pjrt::libtpu_path().exists() {
        eprintln!("skipped: libtpu is not installed");
        return;
    }
    let x = make_batch(&BatchSpec::new(&MIXED[..4], (16, 8), 128, 16, DType::Bf16));
    let o = RpaOptions { sm_scale: 0.088, ..Default::default() };
    for (topology, tp, cp) in [("v5e:2x2", 4, 1), ("v6e:2x2", 2, 2), ("tpu7x:2x2x1", 4, 2)] {
        let mesh = RpaMesh::new(tp * cp, tp, cp).unwrap();
        let c = compile_tpu(mesh, &x, &o, topology).unwrap_or_else(|e| panic!("{topology}: {e}"));
        eprintln!(
            "{topology} tp {tp} cp {cp}: {} devices ({}), VMEM {} bytes per chip, code {} bytes, collectives {:?}",
            c.devices, c.device_kind, c.vmem_bytes, c.code_size, c.collectives
        );
        assert_eq!(c.devices, tp * cp);
        assert!(c.vmem_bytes > 0 && c.vmem_bytes <= c.target.vmem_bytes(), "{topology}: VMEM {}", c.vmem_bytes);
        let ops: Vec<&str> = c.collectives.iter().map(|(op, _)| op.as_str()).collect();
        assert!(ops.iter().any(|op| op.starts_with("all-gather")), "{topology}: no all-gather over tp: {ops:?}");
        if cp > 1 {
            assert!(ops.iter().any(|op| op.starts_with("all-reduce")), "{topology}: no merge all-reduce: {ops:?}");
        }
    }
}

#[test]
fn bad_topologies_are_refused_before_compiling() {
    let err = topology_devices("v9z:2x2").unwrap_err();
    assert!(matches!(err, RpaError::Argument { arg: "topology", .. }) && err.to_string().contains("v9z:2x2"), "{err}");
    assert_eq!(topology_devices("tpu7x:2x2x1").unwrap(), 8);
    let x = make_batch(&BatchSpec::new(&MIXED[..2], (4, 2), 128, 16, DType::F32));
    let err = compile_tpu(RpaMesh::new(2, 2, 1).unwrap(), &x, &RpaOptions::default(), "v6e:2x2").unwrap_err();
    assert!(err.to_string().contains("topology v6e:2x2 has 4 devices; tp · cp = 2 · 1 = 2"), "{err}");
}

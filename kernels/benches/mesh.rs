//! Benchmark: RPA on a mesh of 1, 2 and 4 devices (tensor parallel or context parallel) for the
//! upstream mixed list (heads 8/4, head_dim 128, bf16, page 16): per-call time of the SPMD program
//! on PJRT-CPU devices, HBM bytes each device moves (interpret mode counts them) and the bytes each
//! device puts into the epilogue's collectives. Run with `cargo bench -p rpa-kernels --bench mesh`.
//! On a small host the devices share its cores: the number to read is bytes per device.

use rpa_dsl::DType;
use rpa_kernels::rpa::launch::Backend;
use rpa_kernels::rpa::mesh::{collective_bytes, run_devices, spmd, RpaMesh};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, MIXED};
use rpa_kernels::rpa::RpaOptions;
use std::time::Instant;

fn main() {
    let x = make_batch(&BatchSpec::new(&MIXED, (8, 4), 128, 16, DType::Bf16));
    let opts = RpaOptions { sm_scale: 1.0 / 128f64.sqrt(), ..Default::default() };
    let cpu = rpa_dsl::pjrt::cpu_plugin_path().exists();
    println!("upstream mixed list (16 sequences), heads 8/4, head_dim 128, bf16, page 16");
    println!(
        "{:<8} {:>3} {:>3} {:>16} {:>16} {:>14} {:>14}",
        "devices", "tp", "cp", "HBM B/device", "× 1 device", "collective B", "ms per call"
    );
    let mut single = 0u64;
    for (tp, cp) in [(1, 1), (2, 1), (1, 2), (4, 1), (1, 4), (2, 2)] {
        let mesh = RpaMesh::new(tp * cp, tp, cp).expect("a mesh");
        let sim = run_devices(Backend::Interpret, mesh, &x, &opts).expect("the mesh runs");
        let bytes = *sim.hbm_bytes_per_device().iter().max().expect("devices");
        if tp * cp == 1 {
            single = bytes;
        }
        let ms = if cpu { time_cpu(mesh, &x, &opts) } else { f64::NAN };
        println!(
            "{:<8} {tp:>3} {cp:>3} {bytes:>16} {:>16.3} {:>14} {ms:>14.1}",
            tp * cp,
            bytes as f64 / single as f64,
            collective_bytes(mesh, &x, &opts, true),
        );
    }
    if !cpu {
        println!("(ms per call: the PJRT-CPU plugin is not installed; run scripts/install-plugins)");
    }
    println!("HBM B/device: the most any device moves (interpret mode); collective B: per device.");
}

/// Median of 5 calls of the SPMD program after a first call that compiles it.
fn time_cpu(mesh: RpaMesh, x: &rpa_kernels::rpa::reference::RpaInputs, opts: &RpaOptions) -> f64 {
    spmd::run_cpu(mesh, x, opts).expect("the SPMD program runs");
    let mut ms: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            spmd::run_cpu(mesh, x, opts).expect("the SPMD program runs");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[2]
}

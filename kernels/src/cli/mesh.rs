//! `rpa run --devices N --tp T --cp C`: one batch on a tensor × context parallel mesh.

use super::batch::Batch;
use super::run::{check, print_check, verdict};
use super::{BackendArg, CliError, CliResult, RunArgs};
use crate::rpa::launch::{Backend, RpaOutput};
use crate::rpa::mesh::{self, MeshOutput, RpaMesh};
use std::time::Instant;

/// Runs `batch` on the `(devices, tp, cp)` mesh and checks it against the f64 reference.
pub fn run(a: &RunArgs, batch: &Batch, (devices, tp, cp): (usize, usize, usize)) -> CliResult {
    let x = &batch.inputs;
    let bad = |e: crate::rpa::validate::RpaError| CliError::Usage(e.to_string());
    let m = RpaMesh::new(devices, tp, cp).map_err(bad)?;
    m.check_heads(x.num_q_heads(), x.num_kv_heads()).map_err(bad)?;
    let how = match a.backend {
        BackendArg::Interpret => "interpret, the devices simulated one by one",
        BackendArg::Cpu => "cpu, one SPMD program on PJRT-CPU devices",
        _ => {
            return Err(CliError::Usage(format!(
                "--backend {} runs one chip; compile a mesh for TPU chips with `rpa compile --topology`",
                a.backend.name()
            )))
        }
    };
    println!("rpa run — backend: {how}");
    println!("  batch           {}", batch.describe());
    println!("  options         {}", batch.describe_options());
    println!("  mesh            {devices} devices = tp {tp} × cp {cp}: {}", describe(m, batch));
    let t = Instant::now();
    let out = match a.backend {
        BackendArg::Cpu => mesh::spmd::run_cpu(m, x, &batch.opts),
        _ => mesh::run_devices(Backend::Interpret, m, x, &batch.opts),
    }
    .map_err(|e| CliError::Failed(format!("the mesh call failed on {}: {e}", a.backend.name())))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let checked = (!a.no_check).then(|| {
        let single = RpaOutput {
            output: out.output.clone(),
            kv_cache: out.kv_cache.clone(),
            lse: out.lse.clone(),
            report: Default::default(),
        };
        check(batch, &single, a.tolerance.unwrap_or_else(|| batch.tolerance()))
    });
    match &checked {
        Some(c) => print_check(batch, c),
        None => println!("  check           skipped (--no-check)"),
    }
    print_traffic(m, batch, &out);
    println!("  time            {ms:.1} ms for the call (all devices)");
    checked.as_ref().map_or(Ok(()), verdict)
}

fn describe(m: RpaMesh, batch: &Batch) -> String {
    let (hq, hkv) = (batch.inputs.num_q_heads(), batch.inputs.num_kv_heads());
    let heads = if hkv >= m.tp {
        format!("{} q / {} kv heads per device", hq / m.tp, hkv / m.tp)
    } else {
        format!("{} q heads and 1 kv head (replicated {}×) per device", hq / m.tp, m.tp / hkv)
    };
    let pages =
        if m.cp == 1 { String::new() } else { format!(", each sequence's pages in {} contiguous ranges", m.cp) };
    heads + &pages
}

fn print_traffic(m: RpaMesh, batch: &Batch, out: &MeshOutput) {
    let per = out.hbm_bytes_per_device();
    if !per.is_empty() {
        let list: Vec<String> = per.iter().map(u64::to_string).collect();
        println!("  HBM bytes       {} per device (max {})", list.join(", "), per.iter().max().unwrap_or(&0));
    }
    let c = mesh::collective_bytes(m, &batch.inputs, &batch.opts, true);
    println!("  collectives     {c} bytes per device (log-sum-exp merge over cp, all-gather of heads over tp)");
}

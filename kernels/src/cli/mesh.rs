//! `rpa run --devices N --tp T --cp C`: one batch on a tensor × context parallel mesh.

use super::batch::Batch;
use super::run::require_plugin;
use super::run::{check, print_check, verdict};
use super::show::batch_or_default;
use super::{failed, BackendArg, CliError, CliResult, CompileArgs, RunArgs, TargetsArg};
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

/// `rpa compile --target G --topology AxB --tp T --cp C`: the sharded RPA program compiled by
/// libtpu for the topology `G:AxB`.
pub fn compile(a: &CompileArgs, dims: &str) -> CliResult {
    let gen = match a.target {
        TargetsArg::V5e => "v5e",
        TargetsArg::V6e => "v6e",
        TargetsArg::V7x => "tpu7x",
        TargetsArg::All => return Err(CliError::Usage("--topology needs one --target generation, not all".into())),
    };
    if a.kernel.is_some_and(|k| k.case().is_none()) {
        return Err(CliError::Usage("--topology compiles RPA: leave out --kernel or name an rpa kernel".into()));
    }
    let topology = format!("{gen}:{dims}");
    let bad = |e: crate::rpa::validate::RpaError| CliError::Usage(e.to_string());
    let devices = mesh::tpu::topology_devices(&topology).map_err(bad)?;
    let cp = a.cp.unwrap_or(1);
    let tp = a.tp.unwrap_or(devices / cp.max(1));
    let m = RpaMesh::new(devices, tp, cp).map_err(bad)?;
    let batch = batch_or_default(&a.batch)?;
    m.check_heads(batch.inputs.num_q_heads(), batch.inputs.num_kv_heads()).map_err(bad)?;
    require_plugin(Backend::Tpu(rpa_dsl::TpuTarget::V5e))?;
    println!("rpa compile — libtpu ahead-of-time compile of RPA on topology {topology}: tp {tp} × cp {cp}");
    println!("  batch           {}", batch.describe());
    println!("  mesh            {}", describe(m, &batch));
    let c = mesh::tpu::compile_tpu(m, &batch.inputs, &batch.opts, &topology).map_err(failed)?;
    println!("  devices         {} × {}", c.devices, c.device_kind);
    println!("  VMEM            {} bytes per chip (the kernel's buffers, as the verifier counts them)", c.vmem_bytes);
    println!("  SMEM            {} bytes per chip", c.smem_bytes);
    let mem = &c.memory;
    println!(
        "  HBM per device  {} bytes of arguments, {} of outputs ({} aliased), {} temporary",
        mem.argument_size_in_bytes, mem.output_size_in_bytes, mem.alias_size_in_bytes, mem.temp_size_in_bytes
    );
    println!("  code size       {} bytes", c.code_size);
    let ops: Vec<String> = c.collectives.iter().map(|(op, n)| format!("{n} {op}")).collect();
    println!("  collectives     {}", ops.join(", "));
    Ok(())
}

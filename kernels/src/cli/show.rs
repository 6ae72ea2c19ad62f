//! `rpa ir`, `rpa mosaic`, `rpa stablehlo` (print a kernel and its lowerings) and `rpa compile`
//! (AOT-compile for a TPU generation with libtpu).

use super::batch::{parse_seqs, Batch, BatchArgs};
use super::run::{launched_cases, require_plugin};
use super::{failed, CliError, CliResult, CompileArgs, IrArgs, KernelName, MosaicArgs, ShowArgs};
use crate::examples;
use crate::rpa::kernel::RpaConfig;
use crate::rpa::launch::{self, Backend};
use crate::rpa::RpaCase;
use rpa_dsl::ir::printer::{print, PrintOptions};
use rpa_dsl::{DType, Kernel, TpuTarget};
use std::path::Path;

/// The batch of `ir`, `mosaic`, `stablehlo`, `compile` and `trace` when none is given.
pub const DEFAULT_SEQS: &str = "1:40,1:100,16:48,7:90";
/// Its chunked-prefill size.
pub const DEFAULT_CHUNK: usize = 16;

/// The batch of `args`, or the default small batch (2 decode, 1 prefill chunk of 16, 1 mixed).
pub fn batch_or_default(args: &BatchArgs) -> Result<Batch, CliError> {
    if args.seqs.is_none() && args.input.is_none() {
        let mut a = args.clone();
        a.seqs = Some(parse_seqs(DEFAULT_SEQS).expect("default sequences parse"));
        a.chunk = a.chunk.or(Some(DEFAULT_CHUNK));
        a.load(None)
    } else {
        args.load(None)
    }
}

impl KernelName {
    /// The RPA case of an RPA kernel.
    pub fn case(self) -> Option<RpaCase> {
        match self {
            KernelName::RpaDecode => Some(RpaCase::Decode),
            KernelName::RpaPrefill => Some(RpaCase::Prefill),
            KernelName::RpaMixed => Some(RpaCase::Mixed),
            _ => None,
        }
    }

    pub fn of_case(case: RpaCase) -> KernelName {
        match case {
            RpaCase::Decode => KernelName::RpaDecode,
            RpaCase::Prefill => KernelName::RpaPrefill,
            RpaCase::Mixed => KernelName::RpaMixed,
        }
    }
}

/// Builds `name` (RPA kernels for `batch`, with `target`'s block sizes when given); for RPA kernels
/// also returns the configuration.
pub fn build_kernel(
    name: KernelName,
    batch: Option<&Batch>,
    target: Option<TpuTarget>,
) -> Result<(Kernel, Option<RpaConfig>), CliError> {
    let example = |k: Result<Kernel, rpa_dsl::KernelError>| k.map(|k| (k, None)).map_err(failed);
    match (name.case(), batch) {
        (Some(case), Some(b)) => {
            if case == RpaCase::Prefill && b.opts.chunk_prefill_size.is_none() {
                eprintln!("note: no --chunk: the prefill kernel is built for chunks of 1 token");
            }
            let (x, o) = (&b.inputs, &b.opts);
            crate::rpa::validate::validate_static(x, o).map_err(failed)?;
            let (kernel, cfg) = match target {
                Some(t) => (launch::build_for_target(x, o, case, t), launch::config_for_target(x, o, case, t)),
                None => (launch::build(x, o, case), launch::config_for(x, o, case)),
            };
            Ok((kernel.map_err(failed)?, Some(cfg)))
        }
        (Some(_), None) => Err(CliError::Failed("an RPA kernel needs a batch".into())),
        (None, _) => match name {
            KernelName::ElementwiseAdd => example(examples::elementwise_add(256)),
            KernelName::TiledMatmul => example(examples::tiled_matmul(256, 256, 512, 128, 128, 128, DType::F32)),
            KernelName::DoubleBufferedScale => example(examples::double_buffered_scale(32)),
            _ => example(examples::row_softmax(64, 256)),
        },
    }
}

fn show_kernel(a: &ShowArgs) -> Result<Kernel, CliError> {
    let batch = match a.kernel.case() {
        Some(_) => Some(batch_or_default(&a.batch)?),
        None => None,
    };
    Ok(build_kernel(a.kernel, batch.as_ref(), a.target.map(|t| t.target()))?.0)
}

/// Prints `text`, or writes it to `output`.
fn emit(text: &str, output: Option<&Path>) -> CliResult {
    rpa_dsl::tool::emit(text, output)
}

/// `rpa ir`.
pub fn ir(a: &IrArgs) -> CliResult {
    let k = show_kernel(&a.show)?;
    emit(&print(&k, PrintOptions { locs: a.locs }), a.show.output.as_deref())
}

/// `rpa mosaic`.
pub fn mosaic(a: &MosaicArgs) -> CliResult {
    let k = show_kernel(&a.show)?;
    let text = if a.custom_call { rpa_dsl::tpu::stablehlo_module(&k) } else { rpa_dsl::lower::mosaic::lower(&k) };
    emit(&text.map_err(failed)?, a.show.output.as_deref())
}

/// `rpa stablehlo`.
pub fn stablehlo(a: &ShowArgs) -> CliResult {
    let k = show_kernel(a)?;
    emit(&rpa_dsl::lower::stablehlo::lower(&k).map_err(failed)?, a.output.as_deref())
}

pub use rpa_dsl::tool::fmt_bytes;

/// `rpa compile`.
pub fn compile(a: &CompileArgs) -> CliResult {
    if let Some(topology) = &a.topology {
        return super::mesh::compile(a, topology);
    }
    require_plugin(Backend::Tpu(TpuTarget::V5e))?;
    let rpa = a.kernel.is_none_or(|k| k.case().is_some());
    let batch = if rpa { Some(batch_or_default(&a.batch)?) } else { None };
    let kernels: Vec<KernelName> = match (a.kernel, &batch) {
        (Some(k), _) => vec![k],
        (None, Some(b)) => launched_cases(b).into_iter().map(KernelName::of_case).collect(),
        (None, None) => vec![],
    };
    let targets = a.target.targets();
    let names: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    println!("rpa compile — libtpu ahead-of-time compile for {}", names.join(", "));
    if let Some(b) = &batch {
        println!("  batch           {}", b.describe());
    }
    let mut failures = 0;
    for &target in &targets {
        for &k in &kernels {
            println!();
            let built = build_kernel(k, batch.as_ref(), Some(target));
            let (kernel, cfg) = match built {
                Ok(b) => b,
                Err(e) => {
                    println!("{target} {}: FAILED to build", k.name());
                    eprintln!("error: {target} {}: {e}", k.name());
                    failures += 1;
                    continue;
                }
            };
            println!("{target} {} — kernel `{}`", k.name(), kernel.name);
            if let Some(c) = &cfg {
                let b = c.blocks;
                println!(
                    "  block sizes     bq {} tokens, bkv {} tokens ({} pages); computed in {}×{} sub-tiles",
                    b.bq,
                    b.bkv,
                    b.bkv / c.page_size,
                    b.bq_compute,
                    b.bkv_compute
                );
            }
            match rpa_dsl::tpu::compile_for(&kernel, target) {
                Ok(c) => rpa_dsl::tool::print_compiled(&kernel, target, &c),
                Err(e) => {
                    println!("  FAILED (the compiler's message is on stderr)");
                    eprintln!("error: {target} {}: {e}", k.name());
                    failures += 1;
                }
            }
        }
    }
    let total = targets.len() * kernels.len();
    if failures > 0 {
        return Err(CliError::Failed(format!("{failures} of {total} compiles failed")));
    }
    println!("\n{total} kernel{} compiled", if total == 1 { "" } else { "s" });
    Ok(())
}

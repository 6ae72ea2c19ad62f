//! The public entry point: validates, prepares the kernel layouts, chains the decode, prefill and
//! mixed kernels over the same output and cache, and restores the caller's layout.

use super::kernel::{rpa_kernel, RpaConfig};
use super::layout::{align_to, merge_kv, quantize};
use super::reference::{RpaInputs, RpaShapes};
use super::validate::{validate_block_sizes, validate_shard_metadata, validate_static, RpaError, RpaMetadata};
use super::{blocks, BlockSizes, RpaCase, RpaOptions};
use rpa_dsl::interpret::{self, Event, InterpretOptions, Stats};
use rpa_dsl::{Array, DType, Kernel, KernelError, TpuTarget};

/// What a call did, besides its results.
#[derive(Clone, Debug, Default)]
pub struct RpaReport {
    /// Interpret-mode counters of each launched kernel (decode, prefill, mixed).
    pub stats: Vec<(RpaCase, Stats)>,
    /// Interpret-mode event traces of each launched kernel (with [`run_traced`]).
    pub traces: Vec<(RpaCase, String, Vec<Event>)>,
}

impl RpaReport {
    /// HBM bytes moved by all launches.
    pub fn hbm_bytes(&self) -> u64 {
        self.stats.iter().map(|(_, s)| s.hbm_bytes()).sum()
    }
}

/// The kernel configuration of one case for these inputs, with the host backends' default block
/// sizes where `opts` gives none (and a scoped VMEM limit when its blocks need one, unless `opts`
/// sets one), so that it passes the checks of every TPU generation.
pub fn config_for(x: &RpaInputs, opts: &RpaOptions, case: RpaCase) -> RpaConfig {
    host_config(x, opts, case, blocks::default_block_sizes)
}

/// [`config_for`] with the block sizes of PJRT-CPU ([`blocks::cpu_block_sizes`]).
pub fn config_for_cpu(x: &RpaInputs, opts: &RpaOptions, case: RpaCase) -> RpaConfig {
    host_config(x, opts, case, blocks::cpu_block_sizes)
}

fn host_config(x: &RpaInputs, opts: &RpaOptions, case: RpaCase, default: fn(&RpaConfig) -> BlockSizes) -> RpaConfig {
    let mut cfg = base_config(&x.shapes(), opts, case);
    cfg.blocks = case_blocks(opts, case).unwrap_or_else(|| default(&cfg));
    cfg.vmem_limit = opts.vmem_limit.or_else(|| blocks::host_vmem_limit(&cfg));
    cfg
}

/// The configuration for a TPU generation: upstream's block-size heuristic where `opts` gives
/// none, and a scoped VMEM limit raised when the blocks need it (unless `opts` sets one).
pub fn config_for_target(x: &RpaInputs, opts: &RpaOptions, case: RpaCase, target: TpuTarget) -> RpaConfig {
    config_for_target_shapes(&x.shapes(), opts, case, target)
}

/// [`config_for_target`] from the static part of a call alone.
pub fn config_for_target_shapes(s: &RpaShapes, opts: &RpaOptions, case: RpaCase, target: TpuTarget) -> RpaConfig {
    let mut cfg = base_config(s, opts, case);
    cfg.blocks = case_blocks(opts, case).unwrap_or_else(|| blocks::tpu_block_sizes(target, &cfg));
    cfg.vmem_limit = opts.vmem_limit.or_else(|| blocks::tpu_vmem_limit(target, &cfg));
    cfg
}

fn case_blocks(opts: &RpaOptions, case: RpaCase) -> Option<BlockSizes> {
    match case {
        RpaCase::Decode => opts.decode_blocks,
        RpaCase::Prefill => opts.prefill_blocks,
        RpaCase::Mixed => opts.mixed_blocks,
    }
}

/// Everything but the block sizes (which start as single tokens and pages).
fn base_config(s: &RpaShapes, opts: &RpaOptions, case: RpaCase) -> RpaConfig {
    let (hq, hkv, d) = (s.num_q_heads(), s.num_kv_heads(), s.head_dim());
    let page = s.page_size();
    RpaConfig {
        case,
        blocks: BlockSizes { bq: 1, bkv: page, bq_compute: 1, bkv_compute: page },
        max_num_seqs: s.max_num_seqs,
        pages_per_seq: s.pages_per_seq(),
        total_pages: s.total_pages(),
        page_size: page,
        max_num_tokens: s.num_tokens(),
        num_kv_heads: hkv,
        group: hq / hkv,
        head_dim: align_to(d, 128),
        head_dim_actual: d,
        q_dtype: s.queries.0,
        kv_dtype: s.kv_cache.0,
        causal: opts.causal,
        update_kv_cache: opts.update_kv_cache,
        logit_scale: opts.sm_scale * opts.k_scale.unwrap_or(1.0) * opts.q_scale.unwrap_or(1.0),
        v_scale: opts.v_scale,
        q_scale: opts.q_scale,
        sliding_window: opts.sliding_window,
        soft_cap: opts.soft_cap,
        mask_value: opts.mask_value(),
        acc_dtype: opts.acc_dtype(),
        chunk_prefill_size: opts.chunk_prefill_size.unwrap_or(1),
        vmem_limit: opts.vmem_limit,
        return_lse: opts.return_lse,
        sinks: opts.attention_sink.is_some(),
        keys_after: false,
    }
}

/// Builds the kernel of one case for a TPU generation (see [`config_for_target`]).
pub fn build_for_target(
    x: &RpaInputs,
    opts: &RpaOptions,
    case: RpaCase,
    target: TpuTarget,
) -> Result<Kernel, RpaError> {
    build_config(&config_for_target(x, opts, case, target))
}

/// [`build_for_target`] from the static part of a call alone (e.g. at JAX trace time).
pub fn build_for_shapes(
    s: &RpaShapes,
    opts: &RpaOptions,
    case: RpaCase,
    target: TpuTarget,
) -> Result<Kernel, RpaError> {
    build_config(&config_for_target_shapes(s, opts, case, target))
}

/// Builds the kernel of one case.
pub fn build(x: &RpaInputs, opts: &RpaOptions, case: RpaCase) -> Result<Kernel, RpaError> {
    build_config(&config_for(x, opts, case))
}

/// Checks the block sizes of `cfg` and builds its kernel.
pub(crate) fn build_config(cfg: &RpaConfig) -> Result<Kernel, RpaError> {
    validate_block_sizes(cfg.case, cfg.blocks, cfg.page_size)?;
    Ok(rpa_kernel(cfg)?)
}

/// Queries `[T, Hq, D]` → `[Hkv, T, G, Dp]` (zero-padded head_dim), optionally quantized.
pub fn prepare_queries(queries: &Array, hkv: usize, q_scale: Option<f64>, kv_dtype: DType) -> Array {
    let (t, hq, d) = (queries.shape()[0], queries.shape()[1], queries.shape()[2]);
    let (g, dp) = (hq / hkv, align_to(d, 128));
    let mut out = Array::zeros(queries.dtype(), &[hkv, t, g, dp]);
    for tok in 0..t {
        for h in 0..hq {
            for x in 0..d {
                let src = (tok * hq + h) * d + x;
                let dst = ((h / g * t + tok) * g + h % g) * dp + x;
                match q_scale {
                    None => out.bits_mut()[dst] = queries.bits()[src],
                    // Quantize to the cache dtype (q / q_scale, clipped, rounded), keep the q dtype.
                    Some(s) => out.set_f64(dst, quantize(kv_dtype, queries.get_f64(src) / s)),
                }
            }
        }
    }
    out
}

/// `[Hkv, T, G, Dp]` → `[T, Hq, D]`.
pub fn restore_output(o: &Array, d: usize) -> Array {
    let (hkv, t, g, dp) = (o.shape()[0], o.shape()[1], o.shape()[2], o.shape()[3]);
    let hq = hkv * g;
    let mut out = Array::zeros(o.dtype(), &[t, hq, d]);
    for tok in 0..t {
        for h in 0..hq {
            for x in 0..d {
                out.bits_mut()[(tok * hq + h) * d + x] = o.bits()[((h / g * t + tok) * g + h % g) * dp + x];
            }
        }
    }
    out
}

/// Where the kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Interpret mode, the reference semantics (reports bytes moved).
    Interpret,
    /// XLA's CPU compiler through PJRT (the StableHLO lowering), in checked mode: a kernel that
    /// indexes out of bounds or reads memory nothing wrote fails as in interpret mode.
    PjrtCpu,
    /// The same without the checks (faster; for benchmarks).
    PjrtCpuUnchecked,
    /// An attached TPU of this generation, through libtpu (upstream's block-size heuristic).
    Tpu(TpuTarget),
}

/// What a call returns.
#[derive(Clone, Debug)]
pub struct RpaOutput {
    /// `[tokens, Hq, D]` in the query dtype; rows of tokens no sequence owns keep the queries.
    pub output: Array,
    /// The updated cache.
    pub kv_cache: Array,
    /// With `return_lse`: f32 `[tokens, Hq]`, NaN for tokens no sequence owns.
    pub lse: Option<Array>,
    pub report: RpaReport,
}

/// Ragged paged attention on interpret mode: `(output [T, Hq, D], updated cache)`.
pub fn ragged_paged_attention(x: &RpaInputs, opts: &RpaOptions) -> Result<(Array, Array, RpaReport), RpaError> {
    ragged_paged_attention_on(Backend::Interpret, x, opts)
}

/// Ragged paged attention on `backend`: `(output [T, Hq, D], updated cache)`.
pub fn ragged_paged_attention_on(
    backend: Backend,
    x: &RpaInputs,
    opts: &RpaOptions,
) -> Result<(Array, Array, RpaReport), RpaError> {
    let r = run(backend, x, opts)?;
    Ok((r.output, r.kv_cache, r.report))
}

/// Ragged paged attention on `backend`: validates, then chains the decode, prefill and mixed kernels.
pub fn run(backend: Backend, x: &RpaInputs, opts: &RpaOptions) -> Result<RpaOutput, RpaError> {
    launch(backend, x, opts, &InterpretOptions::default(), None)
}

/// [`run`] for one context-parallel shard: the cache holds a contiguous range of each sequence's
/// keys (`kv_lens` of them), and `keys_after[s]` more of sequence `s`'s keys follow it on other
/// devices (see [`RpaConfig::keys_after`]). Queries, new K/V and `cu_q_lens` are the whole
/// batch's; the new tokens whose positions fall in this range are written into this cache.
pub fn run_shard(
    backend: Backend,
    x: &RpaInputs,
    opts: &RpaOptions,
    keys_after: &[i32],
) -> Result<RpaOutput, RpaError> {
    launch(backend, x, opts, &InterpretOptions::default(), Some(keys_after))
}

/// The scalar-prefetch `kv_lens` operand: the lengths, then `keys_after` if any.
pub fn kv_lens_operand(kv_lens: &[i32], keys_after: Option<&[i32]>) -> Array {
    let v: Vec<i32> = kv_lens.iter().chain(keys_after.unwrap_or(&[])).copied().collect();
    Array::from_i32(&[v.len()], &v)
}

/// [`run`] on interpret mode, recording each kernel's event trace (DMA streams and compute) into
/// `report.traces` — see `rpa_dsl::interpret::trace::chrome_trace_json`.
pub fn run_traced(x: &RpaInputs, opts: &RpaOptions) -> Result<RpaOutput, RpaError> {
    launch(Backend::Interpret, x, opts, &InterpretOptions { trace: true, ..Default::default() }, None)
}

/// The kernels a batch launches, each with its sequences: `distribution = [i, j, k]` gives decode
/// `0..i`, prefill `i..j` and mixed `j..k`; a case with no sequences launches nothing.
pub fn launched_cases(x: &RpaInputs) -> Vec<(RpaCase, std::ops::Range<usize>)> {
    let [i, j, k] = x.distribution;
    [(RpaCase::Decode, 0, i), (RpaCase::Prefill, i, j), (RpaCase::Mixed, j, k)]
        .into_iter()
        .filter(|&(_, lo, hi)| lo < hi)
        .map(|(case, lo, hi)| (case, lo as usize..hi as usize))
        .collect()
}

fn launch(
    backend: Backend,
    x: &RpaInputs,
    opts: &RpaOptions,
    interpret: &InterpretOptions,
    keys_after: Option<&[i32]>,
) -> Result<RpaOutput, RpaError> {
    validate_static(x, opts)?;
    if opts.validate || keys_after.is_some_and(|a| a.len() != x.max_num_seqs()) {
        let meta = RpaMetadata {
            kv_lens: &x.kv_lens,
            page_indices: &x.page_indices,
            cu_q_lens: &x.cu_q_lens,
            distribution: x.distribution,
        };
        validate_shard_metadata(&x.shapes(), &meta, opts, keys_after)?;
    }
    let shard = |cfg: RpaConfig| RpaConfig { keys_after: keys_after.is_some(), ..cfg };
    let hkv = x.num_kv_heads();
    let mut q = prepare_queries(&x.queries, hkv, opts.q_scale, x.kv_cache.dtype());
    let kv_new = merge_kv(&x.keys, &x.values);
    let mut cache = x.kv_cache.clone();
    let prefetch = |v: &[i32]| Array::from_i32(&[v.len()], v);
    let tokens = x.queries.shape()[0];
    let mut lse = opts
        .return_lse
        .then(|| Array::from_f64(DType::F32, &[tokens, x.num_q_heads()], &vec![f64::NAN; tokens * x.num_q_heads()]));
    let sinks = opts.attention_sink.as_ref().map(|s| sinks_per_kv_head(s, hkv));
    let mut report = RpaReport::default();
    for (case, seqs) in launched_cases(x) {
        let kernel = build_config(&shard(match backend {
            Backend::Tpu(target) => config_for_target(x, opts, case, target),
            Backend::PjrtCpu | Backend::PjrtCpuUnchecked => config_for_cpu(x, opts, case),
            Backend::Interpret => config_for(x, opts, case),
        }))?;
        let mut inputs = vec![
            kv_lens_operand(&x.kv_lens, keys_after),
            prefetch(&x.page_indices),
            prefetch(&x.cu_q_lens),
            prefetch(&x.distribution),
            q,
            kv_new.clone(),
            cache,
        ];
        inputs.extend(sinks.clone());
        let outputs = match backend {
            Backend::Interpret => {
                let res = interpret::run_owned(&kernel, inputs, interpret)?;
                report.stats.push((case, res.stats));
                if interpret.trace {
                    report.traces.push((case, kernel.name.clone(), res.events));
                }
                res.outputs
            }
            Backend::PjrtCpu => rpa_dsl::cpu::run(&kernel, &inputs)?,
            Backend::PjrtCpuUnchecked => rpa_dsl::cpu::CpuBackend::global_unchecked()
                .map_err(|e| KernelError::single(&kernel.name, None, kernel.loc, e))?
                .run(&kernel, &inputs)?,
            Backend::Tpu(_) => rpa_dsl::tpu::run(&kernel, &inputs)?,
        };
        let mut outs = outputs.into_iter();
        q = outs.next().expect("output");
        cache = outs.next().expect("cache");
        if let Some(lse) = &mut lse {
            // This launch wrote the tokens of its sequences.
            let part = outs.next().expect("lse");
            let rows = x.cu_q_lens[seqs.start] as usize..x.cu_q_lens[seqs.end] as usize;
            copy_lse_rows(&part, lse, rows);
        }
    }
    Ok(RpaOutput { output: restore_output(&q, x.head_dim()), kv_cache: cache, lse, report })
}

/// Sinks `[Hq]` in the kernel's layout `[Hkv, G, 128]` (lane-replicated; query head `h` is group
/// `h % G` of kv head `h / G`).
pub fn sinks_per_kv_head(sinks: &Array, hkv: usize) -> Array {
    let hq = sinks.len();
    let per_lane: Vec<u32> = (0..hq * 128).map(|i| sinks.bits()[i / 128]).collect();
    Array::from_bits(DType::F32, &[hkv, hq / hkv, 128], per_lane)
}

/// Kernel layout `[Hkv, T, G, 128]` (lane-replicated) → `[T, Hq]`, for tokens `rows`.
fn copy_lse_rows(part: &Array, lse: &mut Array, rows: std::ops::Range<usize>) {
    let (hkv, t, g) = (part.shape()[0], part.shape()[1], part.shape()[2]);
    for tok in rows {
        for h in 0..hkv * g {
            lse.bits_mut()[tok * hkv * g + h] = part.bits()[((h / g * t + tok) * g + h % g) * 128];
        }
    }
}

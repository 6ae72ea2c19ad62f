//! RPA on a mesh as one SPMD program (`rpa_dsl::mesh`): every device runs the mixed kernel on its
//! shard (all sequences in one launch, so the merge runs once), then the epilogue merges the cp
//! partials by their log-sum-exp (`all_reduce`s over `cp`) and, if asked, all-gathers the heads
//! over `tp`. The mesh is `cp × tp` (device `d = c·tp + t`); every kernel operand is each
//! device's own array, stacked along dim 0 (`Sharding::split_all`).

use super::merge::gather_heads;
use super::shard::{shard_inputs, unshard_cache, DeviceShard};
use super::{validate, MeshOutput, RpaMesh};
use crate::rpa::kernel::RpaConfig;
use crate::rpa::launch::{
    self, build_config, config_for_cpu, kv_lens_operand, prepare_queries, restore_output, sinks_per_kv_head, Backend,
};
use crate::rpa::layout::merge_kv;
use crate::rpa::reference::RpaInputs;
use crate::rpa::validate::RpaError;
use crate::rpa::{RpaCase, RpaOptions};
use rpa_dsl::mesh::{Mesh, MeshLaunch, Sharding};
use rpa_dsl::{Array, DType, Kernel};

/// How the SPMD program returns the output (and log-sum-exp): each tp rank's heads, or gathered
/// on every device. [`MeshOutput`] holds both views either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputSharding {
    Heads,
    Gathered,
}

/// Where the SPMD program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpmdBackend {
    /// `MeshLaunch::interpret`: the devices one by one on interpret mode, the epilogue on the host.
    Interpret,
    /// One SPMD program on an N-device XLA:CPU client (checked mode).
    Cpu,
}

/// A mesh call ready to run: the per-device kernel, the launch and the stacked operands.
pub struct SpmdCall {
    pub launch: MeshLaunch,
    pub kernel: Kernel,
    pub inputs: Vec<Array>,
    shards: Vec<DeviceShard>,
}

/// Validates and prepares a mesh call; `config` picks the kernel configuration of a device's shard.
pub fn prepare(
    mesh: RpaMesh,
    x: &RpaInputs,
    opts: &RpaOptions,
    out: OutputSharding,
    config: impl Fn(&RpaInputs, &RpaOptions) -> RpaConfig,
) -> Result<SpmdCall, RpaError> {
    validate(mesh, x, opts)?;
    let mut x = x.clone();
    x.distribution = [0, 0, x.distribution[2]];
    let mut shards = shard_inputs(mesh, &x, opts);
    if mesh.cp > 1 {
        sinks_on_first_cp_rank(&mut shards, opts);
    }
    let first = &shards[0];
    let cfg = RpaConfig { keys_after: mesh.cp > 1, ..config(&first.inputs, &first.opts) };
    let kernel = build_config(&RpaConfig { case: RpaCase::Mixed, ..cfg })?;
    let per_device: Vec<Vec<Array>> = shards.iter().map(operands).collect();
    let inputs = (0..per_device[0].len()).map(|i| stack(per_device.iter().map(|d| &d[i]))).collect();
    Ok(SpmdCall { launch: launch(mesh, per_device[0].len(), first.opts.return_lse, out), kernel, inputs, shards })
}

/// Attention sinks over `cp`: they join the softmax once, so cp rank 0 holds them and the other
/// ranks start from a sink of −∞ (`m = −∞`, `l = 1`: it adds nothing, and a rank that sees no key
/// still ends with log-sum-exp −∞).
fn sinks_on_first_cp_rank(shards: &mut [DeviceShard], opts: &RpaOptions) {
    let Some(sinks) = &opts.attention_sink else { return };
    for s in shards {
        let first = s.rank.0 == 0;
        let v: Vec<f64> = s.q_heads.clone().map(|h| if first { sinks.get_f64(h) } else { f64::NEG_INFINITY }).collect();
        s.opts.attention_sink = Some(Array::from_f64(DType::F32, &[v.len()], &v));
    }
}

/// The kernel operands of one device, as `launch::run` passes them.
fn operands(s: &DeviceShard) -> Vec<Array> {
    let (x, o) = (&s.inputs, &s.opts);
    let prefetch = |v: &[i32]| Array::from_i32(&[v.len()], v);
    let mut ops = vec![
        kv_lens_operand(&x.kv_lens, s.keys_after.as_deref()),
        prefetch(&x.page_indices),
        prefetch(&x.cu_q_lens),
        prefetch(&x.distribution),
        prepare_queries(&x.queries, x.num_kv_heads(), o.q_scale, x.kv_cache.dtype()),
        merge_kv(&x.keys, &x.values),
        x.kv_cache.clone(),
    ];
    ops.extend(o.attention_sink.as_ref().map(|a| sinks_per_kv_head(a, x.num_kv_heads())));
    ops
}

/// Arrays of one shape stacked along dim 0.
fn stack<'a>(parts: impl Iterator<Item = &'a Array>) -> Array {
    let parts: Vec<&Array> = parts.collect();
    let mut shape = parts[0].shape().to_vec();
    shape[0] *= parts.len();
    Array::from_bits(parts[0].dtype(), &shape, parts.iter().flat_map(|p| p.bits().iter().copied()).collect())
}

/// Block `i` of `n` along dim 0.
fn block(a: &Array, i: usize, n: usize) -> Array {
    let mut shape = a.shape().to_vec();
    shape[0] /= n;
    let len = a.len() / n;
    Array::from_bits(a.dtype(), &shape, a.bits()[i * len..(i + 1) * len].to_vec())
}

/// The launch: operands per device; outputs `o`, the cache and the log-sum-exp.
fn launch(m: RpaMesh, operands: usize, lse: bool, out: OutputSharding) -> MeshLaunch {
    let mesh = Mesh::new(&[("cp", m.cp), ("tp", m.tp)]).expect("a valid mesh");
    let heads = match out {
        OutputSharding::Heads => Sharding::split(0, "tp"),
        OutputSharding::Gathered => Sharding::replicated(),
    };
    let inputs = vec![Sharding::split_all(&mesh); operands];
    let mut outputs = vec![heads.clone(), Sharding::split_all(&mesh)];
    outputs.extend(lse.then_some(heads));
    let mut l = MeshLaunch::new(mesh.clone()).inputs(inputs).outputs(outputs);
    if m.cp > 1 {
        // The log-sum-exp [Hkv, T, G, 128] is lane-replicated: its dims 0-2 are the output's.
        l = l.lse_merge(0, 2, &[0, 1, 2], "cp");
    }
    if out == OutputSharding::Gathered {
        l = l.all_gather(0, 0, "tp");
        if lse {
            l = l.all_gather(2, 0, "tp");
        }
    }
    l
}

impl SpmdCall {
    /// Runs the program and brings its results back to the single-device layout.
    pub fn run(
        self,
        backend: SpmdBackend,
        mesh: RpaMesh,
        x: &RpaInputs,
        opts: &RpaOptions,
    ) -> Result<MeshOutput, RpaError> {
        let res = match backend {
            SpmdBackend::Interpret => self.launch.interpret(&self.kernel, &self.inputs)?,
            SpmdBackend::Cpu => self.launch.run_cpu(&self.kernel, &self.inputs)?,
        };
        let mut res = res.into_iter();
        let (o, cache) = (res.next().expect("o"), res.next().expect("cache"));
        let caches: Vec<Array> = (0..mesh.devices()).map(|d| block(&cache, d, mesh.devices())).collect();
        let kv_cache = unshard_cache(mesh, x, &self.shards, caches.iter());
        let tokens = x.cu_q_lens[x.distribution[2] as usize] as usize;
        let head_shards: Vec<Array> = (0..mesh.tp)
            .map(|t| {
                keep_query_rows(
                    restore_output(&block(&o, t, mesh.tp), x.head_dim()),
                    &self.shards[t].inputs.queries,
                    tokens,
                )
            })
            .collect();
        let lse = res.next().filter(|_| opts.return_lse).map(|l| {
            let parts: Vec<Array> = (0..mesh.tp).map(|t| lse_rows(&block(&l, t, mesh.tp), tokens)).collect();
            gather_heads(parts.iter())
        });
        Ok(MeshOutput {
            output: gather_heads(head_shards.iter()),
            head_shards,
            kv_cache,
            lse,
            device_stats: Vec::new(),
        })
    }
}

/// Rows of tokens no sequence owns keep the queries, as on one device.
fn keep_query_rows(mut out: Array, queries: &Array, tokens: usize) -> Array {
    let row = out.len() / out.shape()[0];
    out.bits_mut()[tokens * row..].copy_from_slice(&queries.bits()[tokens * row..]);
    out
}

/// Kernel layout `[Hkv, T, G, 128]` → f32 `[T, Hkv·G]`, NaN for tokens no sequence owns.
fn lse_rows(part: &Array, tokens: usize) -> Array {
    let (hkv, t, g) = (part.shape()[0], part.shape()[1], part.shape()[2]);
    let mut out = Array::from_f64(DType::F32, &[t, hkv * g], &vec![f64::NAN; t * hkv * g]);
    for tok in 0..tokens {
        for h in 0..hkv * g {
            out.bits_mut()[tok * hkv * g + h] = part.bits()[((h / g * t + tok) * g + h % g) * 128];
        }
    }
    out
}

/// RPA on `mesh` as one SPMD program on `backend`, with the PJRT-CPU block sizes.
pub fn run(
    backend: SpmdBackend,
    mesh: RpaMesh,
    x: &RpaInputs,
    opts: &RpaOptions,
    out: OutputSharding,
) -> Result<MeshOutput, RpaError> {
    if mesh.devices() == 1 {
        // XLA:CPU does not partition a one-device program (its Shardy calls stay unresolved):
        // the same mixed launch on one device.
        validate(mesh, x, opts)?;
        let backend = if backend == SpmdBackend::Cpu { Backend::PjrtCpu } else { Backend::Interpret };
        let r = launch::run(backend, &RpaInputs { distribution: [0, 0, x.distribution[2]], ..x.clone() }, opts)?;
        let head_shards = vec![r.output.clone()];
        return Ok(MeshOutput {
            output: r.output,
            head_shards,
            kv_cache: r.kv_cache,
            lse: r.lse,
            device_stats: Vec::new(),
        });
    }
    let cfg = |x: &RpaInputs, o: &RpaOptions| config_for_cpu(x, o, RpaCase::Mixed);
    prepare(mesh, x, opts, out, cfg)?.run(backend, mesh, x, opts)
}

/// [`run`] on PJRT-CPU devices, the output gathered.
pub fn run_cpu(mesh: RpaMesh, x: &RpaInputs, opts: &RpaOptions) -> Result<MeshOutput, RpaError> {
    run(SpmdBackend::Cpu, mesh, x, opts, OutputSharding::Gathered)
}

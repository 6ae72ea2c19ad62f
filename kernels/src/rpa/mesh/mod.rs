//! Ragged paged attention on a mesh of devices: tensor parallel (`tp`: the heads) times context
//! parallel (`cp`: each sequence's cached keys).
//!
//! - **Tensor parallel.** Device `t` of the `tp` axis takes the query heads `[t·Hq/tp, (t+1)·Hq/tp)`
//!   and their kv heads: the new K/V and the cache hold only those heads, in the same TPU layout.
//!   With `Hkv < tp` each kv head is replicated on `tp / Hkv` devices (as upstream), which split its
//!   query heads and write the same rows into their copies.
//! - **Context parallel.** Each sequence's pages are cut into `cp` contiguous ranges of
//!   `cdiv(pages, cp)` pages; device `c` holds range `c` (a sequence shorter than `cp` pages leaves
//!   the last devices empty). Every device sees all queries and new K/V; a query keeps its absolute
//!   position (`keys_after`, see [`RpaConfig::keys_after`](super::kernel::RpaConfig::keys_after)),
//!   so the causal mask and the sliding window follow, and each new token is written by the device
//!   whose range holds its position. The partial outputs are merged exactly with their
//!   log-sum-exp ([`merge`]).
//!
//! Device `d` of the mesh is `(c, t) = (d / tp, d % tp)`.

pub mod merge;
pub mod shard;
pub mod spmd;

use super::launch::{self, Backend};
use super::reference::RpaInputs;
use super::validate::{validate_static, RpaError};
use super::RpaOptions;
use rpa_dsl::interpret::Stats;
use rpa_dsl::Array;
pub use shard::{shard_inputs, unshard_cache, DeviceShard};

/// A `tp × cp` mesh of devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpaMesh {
    pub tp: usize,
    pub cp: usize,
}

impl RpaMesh {
    /// The mesh of `devices` devices as `tp × cp`; refuses `tp · cp ≠ devices`, naming the values.
    pub fn new(devices: usize, tp: usize, cp: usize) -> Result<RpaMesh, RpaError> {
        if tp == 0 || cp == 0 {
            return Err(mesh_error(format!("tp ({tp}) and cp ({cp}) must be positive")));
        }
        if tp * cp != devices {
            return Err(mesh_error(format!("tp · cp = {tp} · {cp} = {} is not the {devices} devices", tp * cp)));
        }
        Ok(RpaMesh { tp, cp })
    }

    pub fn devices(&self) -> usize {
        self.tp * self.cp
    }

    /// Checks that the heads split over `tp`: `Hkv` a multiple of `tp`, or (replicated kv heads)
    /// `tp` a multiple of `Hkv` and `Hq` a multiple of `tp`.
    pub fn check_heads(&self, num_q_heads: usize, num_kv_heads: usize) -> Result<(), RpaError> {
        let (tp, hq, hkv) = (self.tp, num_q_heads, num_kv_heads);
        if hkv.is_multiple_of(tp) {
            return Ok(());
        }
        if tp.is_multiple_of(hkv) && hq.is_multiple_of(tp) {
            return Ok(());
        }
        Err(mesh_error(format!(
            "tp = {tp} splits neither the {hkv} kv heads (tp must divide them) nor, replicating kv heads, \
             the {hq} query heads (tp must be a multiple of {hkv} dividing {hq})"
        )))
    }

    /// The query heads of tp rank `t`.
    pub fn q_heads(&self, num_q_heads: usize, t: usize) -> std::ops::Range<usize> {
        let n = num_q_heads / self.tp;
        t * n..(t + 1) * n
    }

    /// The kv heads of tp rank `t` (one replicated head when `Hkv < tp`).
    pub fn kv_heads(&self, num_kv_heads: usize, t: usize) -> std::ops::Range<usize> {
        if num_kv_heads >= self.tp {
            let n = num_kv_heads / self.tp;
            t * n..(t + 1) * n
        } else {
            let h = t / (self.tp / num_kv_heads);
            h..h + 1
        }
    }
}

fn mesh_error(message: String) -> RpaError {
    RpaError::Argument { arg: "mesh", message }
}

/// What a mesh call returns.
#[derive(Clone, Debug)]
pub struct MeshOutput {
    /// `[tokens, Hq, D]`: the tp ranks' head shards, gathered.
    pub output: Array,
    /// Per tp rank, its query heads `[tokens, Hq / tp, D]` (merged over cp): the output sharded by heads.
    pub head_shards: Vec<Array>,
    /// The updated cache in the single-device layout.
    pub kv_cache: Array,
    /// With `return_lse`: f32 `[tokens, Hq]`.
    pub lse: Option<Array>,
    /// Interpret-mode counters of each device's launches (empty on other backends).
    pub device_stats: Vec<Vec<Stats>>,
}

impl MeshOutput {
    /// HBM bytes each device moved (interpret mode).
    pub fn hbm_bytes_per_device(&self) -> Vec<u64> {
        self.device_stats.iter().map(|s| s.iter().map(Stats::hbm_bytes).sum()).collect()
    }
}

/// Bytes each device puts into the SPMD epilogue's collectives (their operands): with `cp > 1`
/// the log-sum-exp merge's three all-reduces over `cp` (max and sum of the f32 log-sum-exp, kept
/// lane-replicated as `[Hkv/tp, T, G, 128]`, and the f32 weighted output `[Hkv/tp, T, G, Dp]`);
/// with `gather`, the all-gather of the output (and log-sum-exp) heads over `tp`.
pub fn collective_bytes(mesh: RpaMesh, x: &RpaInputs, opts: &RpaOptions, gather: bool) -> u64 {
    let t = x.queries.shape()[0];
    let rows = (t * x.num_q_heads() / mesh.tp) as u64; // tokens × this device's query heads
    let dp = super::layout::align_to(x.head_dim(), 128) as u64;
    let lse = rows * 128 * 4;
    let merge = if mesh.cp > 1 { 2 * lse + rows * dp * 4 } else { 0 };
    let with_lse = opts.return_lse as u64;
    let gathered = if gather && mesh.tp > 1 {
        (rows * dp * x.queries.dtype().bytes() as u64 + with_lse * lse) * (mesh.tp as u64 - 1)
    } else {
        0
    };
    merge + gathered
}

/// Checks a mesh call before anything is built: the call itself, then the mesh against its heads.
pub fn validate(mesh: RpaMesh, x: &RpaInputs, opts: &RpaOptions) -> Result<(), RpaError> {
    validate_static(x, opts)?;
    mesh.check_heads(x.num_q_heads(), x.num_kv_heads())?;
    if opts.validate {
        super::validate::validate_dynamic(x, opts)?;
    }
    Ok(())
}

/// Ragged paged attention on a mesh, the devices run one by one on `backend` (interpret mode
/// simulates them): shards the inputs, runs each device's part, merges over `cp` and gathers.
pub fn run_devices(backend: Backend, mesh: RpaMesh, x: &RpaInputs, opts: &RpaOptions) -> Result<MeshOutput, RpaError> {
    validate(mesh, x, opts)?;
    let shards = shard_inputs(mesh, x, opts);
    let mut outs = Vec::with_capacity(shards.len());
    let mut device_stats = Vec::with_capacity(shards.len());
    for s in &shards {
        let local_opts = RpaOptions { validate: false, ..s.opts.clone() };
        let r = match &s.keys_after {
            Some(after) => launch::run_shard(backend, &s.inputs, &local_opts, after)?,
            None => launch::run(backend, &s.inputs, &local_opts)?,
        };
        device_stats.push(r.report.stats.iter().map(|(_, st)| st.clone()).collect());
        outs.push(r);
    }
    let kv_cache = unshard_cache(mesh, x, &shards, outs.iter().map(|o| &o.kv_cache));
    let parts: Vec<merge::Partial> =
        outs.into_iter().map(|o| merge::Partial { output: o.output, lse: o.lse }).collect();
    let merged = merge::merge_mesh(mesh, x, opts, parts);
    Ok(MeshOutput { output: merged.output, head_shards: merged.head_shards, kv_cache, lse: merged.lse, device_stats })
}
